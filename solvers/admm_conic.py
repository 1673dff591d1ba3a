r"""Conic programs by ADMM: the entry point `admm_conic`, the cone instance of the ADMM core.

Problem (SCS's and COSMO's form):

$$
\min_x\ \tfrac12 x^\top P x + c^\top x \quad\text{s.t.}\quad Ax + s = b,\quad s \in K,
$$

with $P \succeq 0$ and $K$ a product of a zero cone, a nonnegative orthant and second-order
cones, given by SCS's cone dict ``{"z": z, "l": l, "q": [k_1, ...]}`` (`cvxkit.solvers.cones`;
the rows of $A$ and $b$ in that order: the $z$ equality rows first, then the $l$ inequality rows
$(Ax)_i \le b_i$, then each second-order cone's $k$ rows $(t, s)$ with $\lVert s\rVert \le t$).
Exponential and PSD cones are not supported.

**The algorithm** is the ADMM core of `cvxkit.solvers.admm` with $z = Ax$ in the set
$C = b - K$ (O'Donoghue, Chu, Parikh & Boyd, "Conic optimization via operator splitting and
homogeneous self-dual embedding", JOTA 2016 (SCS); Garstka, Cannon & Goulart, "COSMO: a conic
operator splitting method for convex conic problems", JOTA 2021): the same linear systems as the
QP (`cvxkit.solvers.admm_box`: the reduced system with a dense Cholesky factorization, or the
full quasi-definite KKT system with a sparse LDL^T on numpy), the projection
$\Pi_C(v) = b - \Pi_K(b - v)$ onto the cones (`cvxkit.solvers.cones`: all second-order cones in
one pass), penalties $\rho_i = 10^3\rho$ on the zero cone's rows and $\rho$ elsewhere, adaptive
$\rho$, over-relaxation.

**Scaling.** Ruiz equilibration with cost scaling as for the QP, started from the data's units
(`cvxkit.solvers.scaling`), except that each second-order cone gets one row scale, the
smallest of the Ruiz factors of its rows (at the start and after every round): $E K = K$ then,
so the scaled problem has the same cones. The smallest factor is Ruiz's step for the block
taken as one row (its largest row norm goes to 1), so the rounds converge; the mean of the
factors, used before, let a block with one short row grow without end (on random SOCPs the
column scales spread over four decades after 25 rounds and the ADMM needed up to 50 times the
iterations).

**Anderson acceleration** (numpy back end, ``acceleration=True``; `cvxkit.solvers.anderson`):
each block of ``check_every`` iterations is one application of a fixed-point map, extrapolated
from the last 10 blocks with a safeguard, as SCS 3 does. On the random SOCP family of
`benchmarks/socp.py` it cut the iterations 2-20 times.

**Dual variables** $y$ are those of Clarabel, SCS and CVXPY's conic interfaces: at a solution
$Px + c + A^\top y = 0$, $y \in K^*$ (free on the zero cone, $y_i \ge 0$ on the orthant,
$y_0 \ge \lVert y_{1:}\rVert$ on each second-order cone) and $s^\top y = 0$; so
$y = -\partial p^\star/\partial b$.

**Stopping** (every ``check_every`` iterations, as for the QP, in normalized units;
`cvxkit.solvers.admm`, "Checks"): primal residual $\lVert Ax - z\rVert$ with $z \in b - K$, dual
residual $\lVert Px + c + A^\top y\rVert$, and the gap $|x^\top Px + c^\top x + b^\top y|$, each
below $\epsilon_{abs} + \epsilon_{rel}\cdot$(the magnitude of its terms).

**Certificates** (tested relative to the data's magnitudes, then re-checked on the user's
unscaled data by `certificate_error` before a status is reported; a candidate that fails there
gives ``numerical_error``):

* primal infeasible: $y \in K^*$ with $|(A^\top y)_j| \le \epsilon_{pinf}\max_i(|A_{ij}|/a_i)
  \max_i a_i|y_i|$ and $b^\top y < -\epsilon_{pinf}\sum_i|b_i y_i|$ (Farkas: then no $x$ has
  $b - Ax \in K$);
* dual infeasible (unbounded): $d$ with $Pd \approx 0$, $Ad \in -K$ up to
  $\epsilon_{dinf}a_i\lVert d\rVert$ on row $i$ (the distance of $-(Ad)$ to $K$, by row) and
  $c^\top d < -\epsilon_{dinf}|c|^\top|d|$.
"""
from __future__ import annotations

import functools
import math
import time

import numpy as np

from cvxkit.solvers import anderson, kkt, validate
from cvxkit.solvers import cones as K
from cvxkit.solvers.admm import (Splitting, make_algorithm, set_certificate_error)
from cvxkit.solvers.admm_box import (DENSE_LINSYS, RHO_EQ_OVER_INEQ, SPARSE_LINSYS, Rows,
                                     setup_dense, setup_sparse)
from cvxkit.solvers.admm_qp import (DENSIFY_MAX, _driver, _final_status, _settings, _unscale,
                                    validate_qp)
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.driver import Final, Options, finish, run
from cvxkit.solvers.primal_dual import INFEASIBLE_OBJECTIVE, certificate, warm_parts
from cvxkit.solvers.result import Result, Status

_CONE = dict(project=lambda bk, d, v: K.project_set(bk, d.cset, v),
             polar=lambda bk, d, y: K.polar(bk, d.cset, y),
             support=lambda bk, d, y: K.support(bk, d.cset, y),
             in_recession=lambda bk, d, v, tol: K.in_recession(bk, d.cset, v, tol),
             support_mag=lambda bk, d, y: K.support_mag(bk, d.cset, y))
#: the cone instance with the reduced system and a dense Cholesky factorization (numpy or JAX)
CONE_DENSE = Splitting(**DENSE_LINSYS, **_CONE)
#: the cone instance with the full KKT system and a sparse LDL^T factorization (numpy)
CONE_SPARSE = Splitting(**SPARSE_LINSYS, **_CONE)
ALG_DENSE = make_algorithm("admm_conic", CONE_DENSE)
ALG_SPARSE = make_algorithm("admm_conic", CONE_SPARSE)
#: how `certificate_error` names the pieces of C = b - K
CONE_NAMES = {"domain": "y is not in the dual cone K*", "support": "b'y", "set": "b - K (-K)"}


def _rows(cs: K.ConeSet) -> Rows:
    """The set-up's view of $C = b - K$ for the layout ``cs``: the scaled right-hand side, the
    penalty weights, one row scale per second-order cone."""
    def make(xp, E, l, u):
        return cs._replace(b=E * l), xp.where(cs.zero, RHO_EQ_OVER_INEQ, 1.0)

    return Rows(CONE_DENSE, CONE_SPARSE, make, functools.partial(K.block_min, cs))


def validate_conic(P, c, A, b, cones):
    """Check and normalize conic data; returns ``(P, c, A, b, cs)`` with ``cs`` the cone layout
    (`cvxkit.solvers.cones.ConeSet`, ``b`` in it).

    ``P`` (n, n) symmetric positive semidefinite or ``None`` (a linear objective), ``c`` (n,),
    ``A`` (m, n), ``b`` (m,) finite, ``cones`` SCS's dict covering the m rows. ``P`` and ``A``
    may be in any scipy.sparse format. Raises ``ValueError`` naming the argument otherwise.
    """
    import scipy.sparse as sps

    c = validate.float_array("c", c, ndim=1, nonempty=True, finite=True)
    n = c.shape[0]
    P = sps.csc_matrix((n, n)) if P is None else validate.matrix("P", P)
    A = validate.matrix("A", A)
    b = validate.float_array("b", b, ndim=1, finite=True)
    if P.ndim != 2 or P.shape != (n, n):
        raise ValueError(f"P must have shape (n, n) = ({n}, {n}) to match c, got {P.shape}")
    if A.ndim != 2 or A.shape[1] != n:
        raise ValueError(f"A must have shape (m, n) with n = {n}, got {A.shape}")
    if b.shape != (A.shape[0],):
        raise ValueError(f"b must have shape (m,) = ({A.shape[0]},) to match A, got {b.shape}")
    cs = K.layout(cones, A.shape[0])
    P, c, A, _, _, _ = validate_qp(P, c, A, b, b)  # symmetry and the diagonal of P
    return P, c, A, b, cs._replace(b=b)


def certificate_error(P, c, A, b, cones, status, v, eps_pinf: float, eps_dinf: float):
    r"""Why ``v`` is not an infeasibility certificate of the conic program ``(P, c, A, b,
    cones)`` (the user's unscaled data), or ``None`` if it is one (module docstring,
    "Certificates"; `cvxkit.solvers.admm.set_certificate_error` with $C = b - K$).
    ``cones``: SCS's dict or a `cvxkit.solvers.cones.ConeSet`; ``P`` may be ``None``."""
    cs = cones if isinstance(cones, K.ConeSet) else K.layout(cones, np.shape(b)[0])
    P = np.zeros((np.shape(c)[0],) * 2) if P is None else P
    return set_certificate_error(CONE_DENSE, cs._replace(b=np.asarray(b, float)), P, c, A,
                                 status, v, eps_pinf, eps_dinf, CONE_NAMES)


#: the options checked by `_config`: name -> (check, keyword arguments of the check)
_CHECKS = {"tol": ("positive", {}), "rho": ("positive", {}), "sigma": ("positive", {}),
           "alpha": ("positive", {"upper": 2.0}), "eps_primal_infeasible": ("positive", {}),
           "eps_dual_infeasible": ("positive", {}), "adaptive_rho_tolerance": ("positive", {}),
           "scaling": ("integer", {"minimum": 0}), "check_every": ("integer", {}),
           "max_iter": ("integer", {}), "adaptive_rho": ("boolean", {}),
           "check_gap": ("boolean", {}), "acceleration": ("boolean", {})}


def _config(o: dict):
    """``(Options, cfg)`` from the options ``o`` of `admm_conic`, each checked."""
    v = {k: getattr(validate, check)(k, o[k], **kw) for k, (check, kw) in _CHECKS.items()}
    for k in ("eps_abs", "eps_rel"):
        v[k] = validate.positive(k, v["tol"] if o[k] is None else o[k])
    if v["adaptive_rho_tolerance"] < 1:
        raise ValueError("adaptive_rho_tolerance must be >= 1, got "
                         f"{o['adaptive_rho_tolerance']!r}")
    opts = Options(tol=min(v["eps_abs"], v["eps_rel"]), max_iter=v["max_iter"],
                   time_limit=o["time_limit"], verbose=o["verbose"], callback=o["callback"],
                   seed=o["seed"], dtype=o["dtype"], progress=o["progress"])
    cfg = dict(sigma=v["sigma"], alpha=v["alpha"], eps_abs=v["eps_abs"], eps_rel=v["eps_rel"],
               eps_pinf=v["eps_primal_infeasible"], eps_dinf=v["eps_dual_infeasible"],
               rho_tolerance=v["adaptive_rho_tolerance"], adaptive=v["adaptive_rho"],
               check_gap=v["check_gap"], block=v["check_every"], max_iter=v["max_iter"],
               rho=v["rho"], scaling=v["scaling"], acceleration=v["acceleration"])
    return opts, cfg


def _warm(warm_start, n: int, m: int):
    """``(x0, y0, rho0 or None)`` (unscaled) from a `Result`, a dict or a pair ``(x, y)``."""
    expected = (f"warm_start must be a Result of admm_conic, a dict with 'x' (and 'y', 'rho') or "
                f"a pair (x, y) with x of shape ({n},) and y of shape ({m},)")
    parts = warm_parts(warm_start, expected, ("x", "y", "rho"))
    if parts is None:
        return np.zeros(n), np.zeros(m), None
    x0, y0 = ((np.zeros(k) if parts[key] is None else
               validate.warm_array(expected, f"warm_start {key}", parts[key], (k,)))
              for key, k in (("x", n), ("y", m)))
    rho = parts["rho"]
    ok = isinstance(rho, (int, float, np.floating)) and math.isfinite(rho) and rho > 0
    return x0, y0, float(rho) if ok else None


def admm_conic(P, c, A, b, cones, *, backend="numpy", tol=1e-4, eps_abs=None, eps_rel=None,
               max_iter=10_000, time_limit=math.inf, verbose=False, progress: bool | None = None,
               callback=None, check_every=25, seed=0, warm_start=None, dtype="float64", rho=0.1,
               sigma=1e-6, alpha=1.6, adaptive_rho=True, adaptive_rho_tolerance=5.0, scaling=10,
               eps_primal_infeasible=1e-4, eps_dual_infeasible=1e-4, check_gap=True,
               linsys="auto", acceleration=True) -> Result:
    r"""Solve $\min \tfrac12 x^\top Px + c^\top x$ s.t. $Ax + s = b$, $s \in K$ by ADMM.

    Args:
        P: (n, n) symmetric positive semidefinite, dense or scipy.sparse, or ``None`` (an LP or
            SOCP with a linear objective).
        c: (n,).
        A: (m, n), dense or scipy.sparse.
        b: (m,).
        cones: SCS's cone dict ``{"z": z, "l": l, "q": [k_1, k_2, ...]}``: the first ``z`` rows
            are equalities ($s_i = 0$), the next ``l`` inequalities ($s_i \ge 0$), then one
            second-order cone of ``k_j`` rows per entry of ``q`` ($s = (t, u)$ with
            $\lVert u\rVert_2 \le t$); missing keys mean none, and the sizes add up to m.
        tol: sets ``eps_abs = eps_rel = tol`` unless they are given (SCS's default 1e-4).
        eps_abs: absolute tolerance of the residuals and the gap (module docstring).
        eps_rel: relative tolerance.
        max_iter: ADMM iterations.
        check_every: iterations between termination checks and penalty updates (25).
        warm_start: a previous `Result` of this solver (its ``x``, ``info['y']`` and
            ``info['rho']``), a dict with ``x`` and optionally ``y``, ``rho``, or a pair
            ``(x, y)`` (``y`` the duals, in this solver's sign convention).
        rho: initial penalty (0.1).
        sigma: x-regularization (1e-6).
        alpha: over-relaxation in (0, 2) (1.6).
        adaptive_rho: update the penalty at checks (OSQP's rule).
        adaptive_rho_tolerance: refactor when the estimate moves by more than this factor (5).
        scaling: Ruiz equilibration rounds (10; 0 switches it off).
        eps_primal_infeasible: primal infeasibility certificate tolerance (1e-4).
        eps_dual_infeasible: dual infeasibility certificate tolerance (1e-4).
        check_gap: also require the duality gap test.
        linsys: ``"auto"``, ``"dense"`` (reduced system, dense Cholesky) or ``"sparse"`` (full
            KKT, LDL^T; numpy only), as in `cvxkit.solvers.admm_qp.admm_qp`.
        acceleration: Anderson acceleration of the iterations (numpy back end; module
            docstring); ``False`` runs plain ADMM.
        backend: ``"numpy"`` or ``"jax"`` (dense data, the loop jitted; the set-up and the final
            checks run in numpy, float64).
        progress: show a progress bar (tqdm); None: only for long runs on a terminal.
        time_limit: seconds (see `cvxkit.solvers.driver`).
        verbose: print a table of the residuals at checks.
        callback: called at every check with the monitored values; return True to stop.
        seed: unused (the method is deterministic); accepted as everywhere.
        dtype: ``"float64"`` or ``"float32"`` (JAX: the loop's precision).

    Returns:
        `Result` with ``x`` the primal solution (NaN when infeasible or unbounded), ``dual`` the
        duals $y$ (module docstring: $Px + c + A^\top y = 0$, $y \in K^*$), ``objective``
        $\tfrac12 x^\top Px + c^\top x$ (``+inf`` primal infeasible, ``-inf`` unbounded),
        ``primal_residual`` and ``dual_residual`` (normalized units, as the tolerances), and in
        ``info``: ``y``, ``s`` ($= b - z \in K$, the slack), ``gap``, ``eps_prim``,
        ``eps_dual``, ``eps_gap``, ``rho``, ``rho_updates``, ``linsys``, ``cones``,
        ``anderson`` (extrapolations accepted and rejected, with ``acceleration``) and, when
        infeasible, ``certificate`` ($y$ or $d$, unit infinity norm, checked on the user's data
        by `certificate_error`). The history holds, per check: ``iteration``, ``objective``,
        ``prim_res``, ``dual_res``, ``gap``, ``rho``.
    """
    t_setup = time.perf_counter()
    P, c, A, b, cs = validate_conic(P, c, A, b, cones)
    opts, cfg = _config(dict(locals()))
    linsys = validate.choice("linsys", linsys, ("auto", "dense", "sparse"))
    backend = validate.choice("backend", backend, ("numpy", "jax"))
    if backend == "jax" and linsys == "sparse":
        raise ValueError("the JAX back end solves the dense reduced system: use linsys='auto' "
                         "or 'dense'")
    n, m = c.shape[0], b.shape[0]
    x0, y0, rho_w = _warm(warm_start, n, m)
    rho0 = rho_w if rho_w is not None else cfg["rho"]
    if linsys == "auto":
        linsys = "dense" if backend == "jax" else kkt.choose_linsys(P, A)
    if linsys == "dense" and (backend == "jax" or m * n + n * n <= DENSIFY_MAX):
        P, A = (M.toarray() if kkt.is_sparse(M) else M for M in (P, A))
    data = (P, c, A, b, cs)
    try:
        if kkt.is_sparse(P) or kkt.is_sparse(A) or linsys == "sparse":
            import scipy.sparse as sps

            d, s, sp = setup_sparse(sps.csc_matrix(P), c, sps.csc_matrix(A), b, b, x0, y0, rho0,
                                    _settings(get_backend("numpy"), cfg), cfg["scaling"],
                                    linsys, _rows(cs))
        else:
            d, s = setup_dense(get_backend("numpy"), P, c, A, b, b, x0, y0, rho0,
                               _settings(get_backend("numpy"), cfg), cfg["scaling"],
                               rows=_rows(cs))
            sp = CONE_DENSE
    except np.linalg.LinAlgError as e:
        return _failed(n, m, str(e), time.perf_counter() - t_setup, backend)
    try:
        if backend == "jax":
            return _solve_jax(data, d, s, opts, cfg, t_setup)
        if cfg["acceleration"]:
            s = s._replace(accel=anderson.Memory(interval=cfg["block"]))
        setup_time = time.perf_counter() - t_setup
        alg, dopts = _driver(ALG_DENSE if sp is CONE_DENSE else ALG_SPARSE, opts, cfg, jax=False)
        out = run(alg, get_backend("numpy"), s, d, dopts)
    except np.linalg.LinAlgError as e:  # a refactorization failed
        return _failed(n, m, str(e), time.perf_counter() - t_setup, backend)
    label = "dense reduced (Cholesky)" if sp is CONE_DENSE else \
        f"sparse KKT ({d.lin.backend} LDL^T)"
    return _result(data, sp, d, out.state, out, cfg, setup_time, "numpy", label)


def _solve_jax(data, d, s, opts, cfg, t_setup) -> Result:
    """The loop on JAX from the numpy set-up ``(d, s)`` (dense): the data and state moved to
    the device in the back end's dtype, the factorization redone there; the final state comes
    back to numpy for the final checks on ``d``."""
    bk = get_backend("jax", opts.dtype)
    jax = bk._jax
    with bk.precision():
        def conv(v):
            a = np.asarray(v)
            kind = a.dtype.kind
            return bk.xp.asarray(a, dtype=bk.dtype if kind == "f" else
                                 (bk.xp.int32 if kind in "iu" else a.dtype))

        dj = jax.tree_util.tree_map(conv, d._replace(settings=None))._replace(
            settings=_settings(bk, cfg))
        sj = jax.tree_util.tree_map(conv, s._replace(factor=None))
        sj = sj._replace(factor=CONE_DENSE.factorize(bk, dj, sj.rho))
        bk.block(sj.factor)
        setup_time = time.perf_counter() - t_setup
        alg, dopts = _driver(ALG_DENSE, opts, cfg, jax=True)
        out = run(alg, bk, sj, dj, dopts)
        state = jax.device_get(out.state._replace(factor=None))
    return _result(data, CONE_DENSE, d, state, out, cfg, setup_time, "jax",
                   "dense reduced (Cholesky, XLA)")


def _result(data, sp, d, s, out, cfg, setup_time, backend, label) -> Result:
    """The `Result` from the final scaled state ``s`` (numpy arrays) and the scaled data
    ``d``: the verdict (relaxed tolerances for optimal_inaccurate), the unscaled vectors, the
    certificate checked on the user's ``data``."""
    P, c, A, b, cs = data
    bk = get_backend("numpy")
    status = _final_status(bk, sp, d, s, out.status)
    x, z, y = _unscale(d.D, d.E, d.c, *(np.asarray(v, np.float64) for v in (s.x, s.z, s.y)))
    cert = certificate(status, d.E * K.polar(bk, d.cset, np.asarray(s.dy, np.float64)),
                       d.D * np.asarray(s.dx, np.float64))
    message = ""
    if cert is not None:
        why = certificate_error(P, c, A, b, cs, status, cert, cfg["eps_pinf"], cfg["eps_dinf"])
        message = f"{status.value}: the certificate holds on the unscaled data" if why is None \
            else (f"stopped on a {status.value} certificate candidate that does not hold on the "
                  f"unscaled data: {why}")
        status = status if why is None else Status.NUMERICAL_ERROR
    info = {"y": y, "s": b - z, "gap": float(s.gap), "eps_prim": float(s.eps_prim),
            "eps_dual": float(s.eps_dual), "eps_gap": float(s.eps_gap), "rho": float(s.rho),
            "rho_updates": int(s.n_refactor), "linsys": label, "cones": K.dims(cs)}
    if s.accel is not None:
        info["anderson"] = s.accel.counts()
    if status in INFEASIBLE_OBJECTIVE:
        info.update(certificate=cert, y=np.full_like(y, np.nan), s=np.full_like(z, np.nan))
        x, obj = np.full_like(x, np.nan), INFEASIBLE_OBJECTIVE[status]
    else:
        obj = float(0.5 * x @ (P @ x) + c @ x)
    final = Final(x=x, objective=obj, dual=info["y"], primal_residual=float(s.prim_res),
                  dual_residual=float(s.dual_res), info=info, status=status, message=message,
                  iterations=int(s.k))
    return finish(final, method="admm_conic", backend=backend, run=out, setup_time=setup_time)


def _failed(n, m, msg, setup_time, backend) -> Result:
    """A factorization failed (a non-convex P): no iterate to report."""
    final = Final(x=np.full(n, np.nan), objective=float("nan"), dual=np.full(m, np.nan),
                  info={"error": f"factorization failed: {msg}"},
                  status=Status.NUMERICAL_ERROR, message=f"factorization failed: {msg}")
    return finish(final, method="admm_conic", backend=backend, setup_time=setup_time)
