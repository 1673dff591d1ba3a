r"""Entropic optimal transport by stabilized Sinkhorn iterations with epsilon scaling.

Problem (POT's convention for the entropy):

$$
\min_{P \ge 0,\ P 1 = a,\ P^\top 1 = b} \langle C, P\rangle + \varepsilon \sum_{ij} P_{ij}\log P_{ij}
$$

Dual potentials ``f`` (n,), ``g`` (m,) give the plan $P = \exp((f_i + g_j - C_{ij})/\varepsilon)$.
Sinkhorn alternately makes the row and the column marginals exact (Cuturi, NeurIPS 2013).

Numerics (Schmitzer, SIAM J. Sci. Comput. 2019, "Stabilized sparse scaling algorithms"):
the potentials are split as ``f + eps*log(u)``, ``g + eps*log(v)``; the cheap kernel-domain
updates ``u = a / (K v)``, ``v = b / (K^T u)`` run on the stabilized kernel
``K = exp((f + g - C)/eps)``, and whenever ``u`` or ``v`` leave a safe range, or a kernel sum
underflows to zero, the scalings are absorbed into ``(f, g)`` and one exact log-domain
(``logsumexp``) iteration rebuilds ``K``. So no NaN is produced at any ``eps`` while most
iterations cost two matrix-vector products. Epsilon scaling starts at a large ``eps`` and
divides it by ``1/eps_decay`` each time the marginal error falls below ``stage_tol``, which
warm-starts the potentials of each stage from the previous one.

Scale: the iterations run on a normalized instance (mass 1, costs shifted by ``min C`` and
divided by ``max C - min C``, ``reg`` divided by the same), and the plan, objective and
potentials are mapped back, so scaling the mass, or ``C`` and ``reg`` together, by any factor
gives the same iterates, the same status and the scaled answer.

Unbalanced OT (``reg_m``, KL-relaxed marginals) runs on this loop with its own scaling updates,
normalization and stopping rule: `cvxkit.solvers.sinkhorn_unbalanced`.

Stopping rule: ``(||P 1 - a||_1 + ||P^T 1 - b||_1) / sum(a) <= tol`` at the target ``eps`` (after
each iteration the columns are exact, so this is the row error, computed for free); the status
``optimal`` is confirmed by recomputing this relative error in float64 on the user's data.
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, Run, finish, run, while_solve
from cvxkit.solvers.implicit import is_traced
from cvxkit.solvers.result import Result, Status, batch_message
from cvxkit.solvers import validate
from cvxkit.solvers.validate import float_array


def validate_marginals(a, b, *, mass_rtol: float = 1e-8, equal_mass: bool = True):
    """Check histograms ``a`` (n,), ``b`` (m,); return them as float64 arrays.

    Raises ``ValueError`` (naming the argument) for missing, ragged, complex, empty, non-finite or
    negative input, zero or overflowing total mass, or (``equal_mass``, balanced transport)
    totals that differ by more than ``mass_rtol`` relative (the message names both sums).
    Totals within ``mass_rtol`` are taken as round-off: ``b`` is rescaled to ``sum(a)`` (every
    solver and residual uses that ``b``). ``equal_mass=False`` (unbalanced transport) keeps
    both totals as given.
    """
    a = finite_array("a", a, 1, nonempty=True)
    b = finite_array("b", b, 1, nonempty=True)
    for name, h in (("a", a), ("b", b)):
        if (h < 0).any():
            raise ValueError(f"{name} has negative entries (min {h.min():.3g}); histograms must be >= 0")
    with np.errstate(over="ignore"):
        sa, sb = a.sum(), b.sum()
    if not (math.isfinite(sa) and math.isfinite(sb)):
        raise ValueError(f"the total mass of a and b overflows: sum(a)={sa}, sum(b)={sb}")
    if sa <= 0 or sb <= 0:
        raise ValueError(f"a and b must have positive total mass, got sum(a)={sa:.6g}, sum(b)={sb:.6g}")
    if not equal_mass:
        return a, b
    if abs(sa - sb) > mass_rtol * max(sa, sb):
        raise ValueError(
            f"a and b must have the same total mass: sum(a)={sa:.12g}, sum(b)={sb:.12g}"
        )
    if sa != sb:
        b = b * (sa / sb)
    return a, b


def validate_cost(C, shape: tuple[int, int], name: str = "C") -> np.ndarray:
    """The cost matrix as a dense float64 ``ndarray`` of ``shape`` with finite entries, else
    ``ValueError`` naming ``name``. Any scipy.sparse format is densified: an absent entry is a
    cost of 0 (not a forbidden pair)."""
    if C is None:
        raise ValueError(f"{name} is required: a cost matrix of shape {shape}, got None")
    C = validate.matrix(name, C, finite=True, sparse=False)
    if C.shape != tuple(shape):
        raise ValueError(f"{name} must have shape (len(a), len(b)) = {tuple(shape)}, got {C.shape}")
    return C


def validate_ot(a, b, C):
    """`validate_marginals` and `validate_cost`: ``(a, b, C)`` as float64 arrays."""
    a, b = validate_marginals(a, b)
    return a, b, validate_cost(C, (a.size, b.size))


def normalize_cost(C, fallback: float = 1.0) -> tuple[np.ndarray, float, float]:
    r"""``(Cn, shift, scale)`` with $C = \text{scale}\cdot C_n + \text{shift}$, ``Cn`` in [0, 1].

    ``shift = min(C)``, ``scale = max(C) - min(C)`` (``fallback`` for a constant ``C``). Solvers
    work on ``Cn`` so that neither the sign nor the magnitude of the costs matters.
    """
    lo, hi = float(C.min()), float(C.max())
    spread = hi - lo
    if spread == 0:
        return np.zeros_like(C), lo, float(fallback)
    if math.isfinite(spread):
        Cn = C - lo  # in place from here: one n x m array, not two
        Cn /= spread
        return Cn, lo, spread
    # |max - min| overflows float64: scale first, then shift
    big = max(abs(lo), abs(hi))
    Cs = C / big
    lo_s = float(Cs.min())
    spread_s = float(Cs.max()) - lo_s
    return (Cs - lo_s) / spread_s, lo_s * big, spread_s * big


def validate_reg(reg) -> float:
    """The entropic regularization as a positive finite float (``validate.positive``)."""
    return validate.positive("reg", reg)


def marginal_error(P, a, b, xp=np):
    """L1 marginal error ``||P 1 - a||_1 + ||P^T 1 - b||_1`` (any array namespace ``xp``)."""
    return xp.sum(xp.abs(xp.sum(P, axis=1) - a)) + xp.sum(xp.abs(xp.sum(P, axis=0) - b))


def finite_array(name, x, ndim, nonempty: bool = False):
    """``x`` as a float64 array with ``ndim`` dimensions and finite entries, else ``ValueError``."""
    return float_array(name, x, ndim=ndim, finite=True, nonempty=nonempty)


class Data(NamedTuple):
    a: object
    b: object
    C: object
    log_a: object
    log_b: object
    eps_target: object
    eps_decay: object
    stage_tol: object
    tol: object
    big: object  # scalings outside [1/big, big] are absorbed
    rho_a: object = None  # unbalanced only: 1/reg_m per side on the normalized instance (0: exact)
    rho_b: object = None


class State(NamedTuple):
    f: object  # absorbed potentials, (n,)
    g: object  # (m,)
    u: object  # kernel scalings, (n,)
    v: object  # (m,)
    K: object  # exp((f + g - C) / eps), (n, m)
    Kv: object  # K @ v, (n,)
    err: object  # stopping error: L1 marginal error (unbalanced: fixed-point residual)
    eps: object  # current epsilon of the scaling schedule


def exp_floor(bk: Backend, M):
    """``exp(M)`` with ``M`` raised to ``log(tiny)`` of the dtype (-700 in float64): an
    exponential that would be subnormal or 0 is the tiny value instead (at most ``m * 1e-304``
    of mass per row, below any tolerance), because libm's ``exp`` is 5-30x slower there, and
    at small ``eps`` most entries of a kernel are there."""
    floor = -700.0 if bk.dtype == "float64" else -80.0
    if bk.name == "numpy":  # one n x m temporary fewer
        M = np.maximum(M, floor)
        return np.exp(M, out=M)
    return bk.xp.exp(bk.xp.maximum(M, floor))


def _lse(bk: Backend, M, axis: int):
    """``logsumexp`` of a finite ``M`` along ``axis``, the exponentials by `exp_floor`."""
    mx = bk.xp.max(M, axis=axis, keepdims=True)
    return bk.xp.log(bk.xp.sum(exp_floor(bk, M - mx), axis=axis)) + bk.xp.squeeze(mx, axis=axis)


def _log_iteration(bk: Backend, f, g, eps, d: Data):
    """One exact log-domain Sinkhorn iteration (rows, then columns) at ``eps``."""
    f = eps * d.log_a - eps * _lse(bk, (g[None, :] - d.C) / eps, axis=1)
    g = eps * d.log_b - eps * _lse(bk, (f[:, None] - d.C) / eps, axis=0)
    return f, g


def _exponent(bk: Backend, f, g, C, eps):
    """``(f_i + g_j - C_ij) / eps`` (n, m); on numpy in one n x m array (no temporaries: each
    fresh n x m array costs page faults comparable to its arithmetic)."""
    if bk.name == "numpy":
        M = np.subtract(f[:, None], C)
        M += g[None, :]
        M /= eps
        return M
    return (f[:, None] + g[None, :] - C) / eps


def _rebuild(bk: Backend, f, g, eps, d: Data, log_step=True) -> State:
    """A fresh stabilized kernel with unit scalings, after a log-domain iteration if ``log_step``."""
    xp = bk.xp
    f, g = bk.cond(log_step, lambda f, g: _log_iteration(bk, f, g, eps, d), lambda f, g: (f, g), f, g)
    K = exp_floor(bk, _exponent(bk, f, g, d.C, eps))
    Kv = xp.sum(K, axis=1)
    # both marginals: a rebuilt kernel (new eps, absorbed scalings) matches neither exactly, and a
    # stage that converges at once must not stop on the row error alone (n = 1: rows exact)
    err = xp.sum(xp.abs(Kv - d.a)) + xp.sum(xp.abs(xp.sum(K, axis=0) - d.b))
    return State(f, g, xp.ones_like(f), xp.ones_like(g), K, Kv, err, eps)


def scalings(bk: Backend, s: State, d: Data):
    """One kernel-domain iteration: ``(u, v, K v, row error)`` for `accept`."""
    u = d.a / s.Kv
    v = d.b / (u @ s.K)  # u @ K, not K.T @ u: XLA on CPU copies the transpose
    Kv = s.K @ v
    return u, v, Kv, bk.xp.sum(bk.xp.abs(u * Kv - d.a))


def _step(bk: Backend, s: State, d: Data) -> State:
    return accept(bk, s, d, *scalings(bk, s, d), _rebuild)


def accept(bk: Backend, s: State, d: Data, u, v, Kv, err, rebuild) -> State:
    """The new scalings ``(u, v)``, ``Kv = K v`` and stopping error ``err`` of one kernel-domain
    iteration, or ``rebuild(bk, f, g, eps, d, log_step)`` from the absorbed potentials: with a
    log-domain iteration when a scaling left ``[1/big, big]`` or a kernel sum underflowed,
    without one (at the next ``eps``) when the stage ended."""
    xp = bk.xp
    lo = 1.0 / d.big
    bad = ~(
        xp.all(Kv > 0) & xp.all(xp.isfinite(v)) & xp.isfinite(err)
        & (xp.max(u) < d.big) & (xp.min(u) > lo) & (xp.max(v) < d.big) & (xp.min(v) > lo)
    )
    advance = (err <= d.stage_tol) & (s.eps > d.eps_target)

    def absorb(s):
        eps = xp.where(advance, xp.maximum(s.eps * d.eps_decay, d.eps_target), s.eps)
        # a new stage from valid scalings needs no log-domain iteration; a failure does
        return rebuild(bk, s.f + s.eps * xp.log(s.u), s.g + s.eps * xp.log(s.v), eps, d, bad)

    def keep(s):
        return State(s.f, s.g, u, v, s.K, Kv, err, s.eps)

    return bk.cond(bad | advance, absorb, keep, s)


def _monitor(bk, s: State, d: Data):
    return {"marginal_err": s.err, "eps": s.eps}


def _converged(bk, s: State, d: Data):
    return (s.err <= d.tol) & (s.eps <= d.eps_target)


ALGORITHM = Algorithm("sinkhorn", _step, _monitor, _converged)


def _setup(bk: Backend, a, b, C, reg, tol, eps_init, eps_decay, stage_tol, warm, rho=None,
           rebuild=_rebuild):
    """Data and first state on a normalized instance (unit mass, costs in [0, 1]; unbalanced:
    ``rho = (1/lam_a, 1/lam_b)``, the user's masses, its ``rebuild`` and a dimensionless
    stopping error, see `cvxkit.solvers.sinkhorn_unbalanced`)."""
    spread = float(np.max(C) - np.min(C))
    if eps_init is None:
        eps_init = max(reg, spread)
    eps0 = reg if warm is not None else max(float(eps_init), reg)
    big = 1e100 if bk.dtype == "float64" else 1e15
    st = max(tol, stage_tol * (float(np.sum(a)) if rho is None else 1.0))
    d = Data(*(bk.asarray(x) for x in (a, b, C, np.log(a), np.log(b))),
             *(bk.asarray(x) for x in (reg, eps_decay, st, tol, big)),
             *(() if rho is None else (bk.asarray(r) for r in rho)))
    if warm is None:
        f0, g0 = bk.xp.zeros_like(d.a), bk.xp.zeros_like(d.b)
    else:
        f0, g0 = bk.asarray(warm[0]), bk.asarray(warm[1])
    return d, bk.jit(rebuild, static_argnums=(0, 5))(bk, f0, g0, bk.asarray(eps0), d, False)


class _Normalized(NamedTuple):
    r"""The instance on its support (``a > 0``, ``b > 0``) with unit mass and costs in [0, 1].

    With ``M = sum(a)``, ``C = scale * Cn + shift`` and ``eps = reg / scale``, the plan of the
    user's problem is ``M * Pn`` and its potentials are
    ``f = scale * fn + shift + reg * log(M)``, ``g = scale * gn`` (so that
    $P_{ij} = \exp((f_i + g_j - C_{ij})/\mathrm{reg})$). Sinkhorn's iterates, tolerances and
    thresholds therefore do not depend on the mass or on the units and sign of the costs.
    """

    a: np.ndarray
    b: np.ndarray
    C: np.ndarray
    reg: float  # reg / scale
    mass: float
    shift: float
    scale: float
    rows: np.ndarray
    cols: np.ndarray
    full: bool


def _normalize(a, b, C, reg, unbalanced: bool = False) -> _Normalized:
    """`_Normalized` instance; ``unbalanced``: costs divided by ``max|C|`` only (no shift and
    unit ``mass``: neither leaves an unbalanced plan unchanged, see `sinkhorn_unbalanced`)."""
    rows, cols = a > 0, b > 0
    full = bool(rows.all() and cols.all())
    Cs = C if full else C[np.ix_(rows, cols)]
    if unbalanced:
        top = float(np.abs(Cs).max())
        mass, shift, scale = 1.0, 0.0, (top if top > 0 else reg)
        Cn, what = Cs / scale, "max|C|"
    else:
        mass = float(a.sum())
        Cn, shift, scale = normalize_cost(Cs, fallback=reg)
        what = "the cost spread max(C) - min(C)"
    reg_n = reg / scale
    if not (reg_n > 0 and math.isfinite(reg_n)):
        raise ValueError(f"reg={reg!r} relative to {what} = {scale:.3g} "
                         f"is not representable in float64 (ratio {reg_n:.3g})")
    return _Normalized(a[rows] / mass, b[cols] / mass, Cn, reg_n, mass, shift, scale, rows, cols,
                       full)


def _to_user(nz: _Normalized, P, f, g, eps):
    """Plan and potentials (at the normalized ``eps``) in the user's units, on the full grid."""
    eps_user = nz.scale * eps
    P = np.asarray(P, dtype=np.float64)
    if nz.mass != 1.0:
        P = nz.mass * P
    f = nz.scale * np.asarray(f, dtype=np.float64) + nz.shift + eps_user * math.log(nz.mass)
    g = nz.scale * np.asarray(g, dtype=np.float64)
    if not nz.full:
        P_full = np.zeros((nz.rows.size, nz.cols.size))
        P_full[np.ix_(nz.rows, nz.cols)] = P
        P, f, g = P_full, _embed(f, nz.rows), _embed(g, nz.cols)
    return P, f, g


def _warm_potentials(warm_start, nz: _Normalized, reg: float, methods=("sinkhorn",)):
    """Normalized potentials from a previous `Result` of one of ``methods`` (``info['f']``,
    ``info['g']``) or a pair ``(f, g)`` in the user's units; ``ValueError`` saying what is
    expected otherwise."""
    if warm_start is None:
        return None
    n, m = nz.rows.size, nz.cols.size
    names = " or ".join(repr(name) for name in methods)
    expected = (f"warm_start must be a Result of method {names} or a pair (f, g) of dual "
                f"potentials with shapes ({n},) and ({m},)")
    if isinstance(warm_start, Result):
        info = warm_start.info if isinstance(warm_start.info, dict) else {}
        if warm_start.method not in methods or "f" not in info or "g" not in info:
            raise ValueError(f"{expected}; got a Result of method {warm_start.method!r}")
        pair = (info["f"], info["g"])
    elif isinstance(warm_start, (tuple, list)) and len(warm_start) == 2:
        pair = warm_start
    else:
        raise ValueError(f"{expected}; got {type(warm_start).__name__}")
    try:
        f = float_array("warm_start f", pair[0], ndim=1)
        g = float_array("warm_start g", pair[1], ndim=1)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{expected}; {e}") from None
    if f.shape != (n,) or g.shape != (m,):
        raise ValueError(f"{expected}; got shapes {f.shape} and {g.shape}")
    f, g = f[nz.rows], g[nz.cols]
    if not (np.isfinite(f).all() and np.isfinite(g).all()):
        raise ValueError(f"{expected}, finite where a > 0 and b > 0")
    return (f - nz.shift - reg * math.log(nz.mass)) / nz.scale, g / nz.scale


def sinkhorn(a, b, C, reg, *, reg_m=None, backend="numpy", tol=1e-9, max_iter=100_000,
             time_limit=math.inf, verbose=False, progress=None, callback=None, check_every=None,
             seed=0, warm_start=None, dtype="float64", eps_init=None, eps_decay=0.5,
             stage_tol=1e-2) -> Result:
    """Solve entropic OT between histograms ``a`` (n,) and ``b`` (m,) with cost ``C`` (n, m).

    Args:
        a, b: nonnegative weights with equal totals (zero entries are allowed; with ``reg_m``
            the totals may differ).
        C: cost matrix (any real values; scipy.sparse is densified), same units as ``reg``.
        reg: entropic regularization ``eps > 0`` (units of ``C``: scaling ``C`` and ``reg``
            together leaves the plan unchanged and scales the objective).
        reg_m: ``None`` (balanced OT), or the marginal relaxation of unbalanced OT, in units
            of ``C``: a float ``lam > 0`` for both sides or a pair ``(lam_a, lam_b)``;
            ``math.inf`` on a side keeps that marginal exact. Unbalanced OT uses POT's
            ``reg_type="kl"`` objective, its own stopping rule and normalization: see
            `cvxkit.solvers.sinkhorn_unbalanced`.
        tol: stop when the relative L1 marginal error
            ``(||P1-a||_1 + ||P^T 1-b||_1) / sum(a) <= tol`` (``history['marginal_err']`` records
            this relative error, ``history['eps']`` the schedule in units of ``C``). The final
            status is decided on this error recomputed in float64 on the user's data: a
            ``tol`` the working ``dtype`` cannot reach ends ``optimal_inaccurate`` or
            ``max_iter``, never ``optimal``. Unbalanced: the fixed-point residual instead.
        eps_init: first ``eps`` of the scaling schedule, in units of ``C`` (default:
            ``max(C) - min(C)``); set ``eps_init=reg`` to switch epsilon scaling off.
        eps_decay: factor in (0, 1) applied to ``eps`` at each stage.
        stage_tol: relative marginal error (unbalanced: fixed-point residual) that ends a stage.
        warm_start: a previous sinkhorn `Result` or a pair of potentials ``(f, g)``.
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        Other options: see `cvxkit.solvers.driver`.

    Balanced, the iterations run on the normalized instance (unit mass, costs in [0, 1], see
    `_Normalized`), so the mass and the units of ``C`` change neither the iterates nor the status.

    Returns:
        `Result` with ``x`` the plan (n, m), ``objective`` the entropic objective
        ``<C,P> + reg*sum(P log P)``, ``primal_residual`` the L1 marginal error (absolute, in
        units of mass), ``dual`` the potentials ``(f, g)``, and in ``info``: ``transport_cost``
        ``<C,P>``, potentials ``f`` (n,), ``g`` (m,), ``dual_objective`` ``<f,a> + <g,b>``
        (equal to the primal objective at an exact solution), ``relative_marginal_error``.
        Unbalanced: see `cvxkit.solvers.sinkhorn_unbalanced.final`.
    """
    t_setup = time.perf_counter()
    if is_traced(a, b, C):  # inside jax.jit / vmap / grad
        if backend != "jax":
            raise ValueError("inside jax.jit, vmap or grad sinkhorn needs backend='jax'")
        from cvxkit.solvers import sinkhorn_unbalanced, sinkhorn_traced

        return sinkhorn_traced.solve(a, b, C, validate_reg(reg), None if reg_m is None else
                                     sinkhorn_unbalanced.validate_reg_m(reg_m), dict(
            tol=tol, max_iter=max_iter, seed=seed, warm_start=warm_start, eps_init=eps_init,
            eps_decay=eps_decay, stage_tol=stage_tol))
    ub = None
    if reg_m is not None:
        from cvxkit.solvers import sinkhorn_unbalanced as ub

        reg_m = ub.validate_reg_m(reg_m)
        a, b = validate_marginals(a, b, equal_mass=ub.exact(reg_m))
        C = validate_cost(C, (a.size, b.size))
    else:
        a, b, C = validate_ot(a, b, C)
    reg = validate_reg(reg)
    eps_decay = validate.positive("eps_decay", eps_decay, upper=1.0)
    stage_tol = validate.positive("stage_tol", stage_tol)
    eps_init = validate.positive("eps_init", eps_init, allow_none=True)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                   progress=progress)
    nz = _normalize(a, b, C, reg, unbalanced=ub is not None)
    rho = None if ub is None else ub.normalized_rho(reg_m, nz)
    warm = _warm_potentials(warm_start, nz, reg)
    bk = get_backend(backend, dtype)
    with bk.precision():
        d, state = _setup(bk, nz.a, nz.b, nz.C, nz.reg, float(opts.tol),
                          None if eps_init is None else eps_init / nz.scale, eps_decay,
                          stage_tol, warm, rho, _rebuild if ub is None else ub.rebuild)
        setup_time = time.perf_counter() - t_setup
        out = run(ALGORITHM if ub is None else ub.ALGORITHM, bk, state, d, opts)
        out, P, f, g = plan_and_potentials(bk, out, nz)
    if ub is None:
        final = _final(P, f, g, a, b, C, reg, float(opts.tol), dtype, out.status)
    else:
        final = ub.final(P, f, g, a, b, C, reg, reg_m, float(opts.tol), dtype, out.status)
    return finish(final, method="sinkhorn", backend=bk.name, run=out, setup_time=setup_time)


def plan_and_potentials(bk: Backend, out: Run, nz: _Normalized):
    """``(out, P, f, g)``: the plan and potentials of the loop's final `State` ``out.state`` in
    the user's units (`_to_user`), and ``out`` with its ``eps`` history in the units of ``C``
    (the stopping error is relative already)."""
    s = out.state
    f = bk.to_numpy(s.f + s.eps * bk.xp.log(s.u))
    g = bk.to_numpy(s.g + s.eps * bk.xp.log(s.v))
    if bk.name == "numpy":  # the kernel is dead after the loop: the plan takes its memory
        P = np.multiply(s.K, s.v[None, :], out=s.K)
        P *= s.u[:, None]
    else:
        P = bk.to_numpy(s.u[:, None] * s.K * s.v[None, :])
    P, f, g = _to_user(nz, P, f, g, float(s.eps))
    if "eps" in out.history:
        out = out._replace(history={**out.history, "eps": [nz.scale * e for e in out.history["eps"]]})
    return out, P, f, g


def _embed(x, mask):
    y = np.full(mask.shape, -np.inf)
    y[mask] = x
    return y


def _final(P, f, g, a, b, C, reg, tol, dtype, loop: Status) -> Final:
    r"""The plan and potentials as a `Final`, the loop's status ``loop`` checked on the user's
    data in float64: ``numerical_error`` for a non-finite plan, ``optimal_inaccurate`` for an
    ``optimal`` loop whose relative marginal error recomputed here exceeds ``tol``.

    ``P`` is ``exp((f_i + g_j - C_ij) / reg)`` entrywise (`plan_and_potentials`), so the
    entropic term is $\mathrm{reg}\sum_{ij} P_{ij}\log P_{ij} = \langle f, P1\rangle +
    \langle g, P^\top 1\rangle - \langle C, P\rangle$ (rows and columns of zero mass, where
    the potentials are ``-inf``, carry no mass): three passes over ``P`` in all, no n x m
    temporary. (Entries whose kernel `exp_floor` raised to ``exp(-700)`` differ there by less
    than ``1e-299`` each.)"""
    P = np.asarray(P, dtype=np.float64)
    mass = float(a.sum())
    r, c = P.sum(axis=1), P.sum(axis=0)
    err = float(np.sum(np.abs(r - a)) + np.sum(np.abs(c - b)))
    rel = err / mass
    status, message = None, ""
    fin_f, fin_g = np.isfinite(f), np.isfinite(g)
    with np.errstate(all="ignore"):
        cost = float(np.vdot(C, P))
        entropic = float(np.dot(f[fin_f], r[fin_f]) + np.dot(g[fin_g], c[fin_g])) - cost
    if not (np.isfinite(r).all() and np.isfinite(c).all()):
        status = Status.NUMERICAL_ERROR
        message = "the plan has non-finite entries"
    elif loop is Status.OPTIMAL and not rel <= tol:
        status = Status.OPTIMAL_INACCURATE
        message = (f"the relative marginal error recomputed in float64 on the user's data is "
                   f"{rel:.2e} > tol={tol:.1e} (the {dtype} iterations cannot reach this tol)")
    dual = float(np.dot(f[fin_f], a[fin_f]) + np.dot(g[fin_g], b[fin_g]))
    return Final(
        x=P, objective=cost + entropic, dual=(f, g), primal_residual=err, status=status,
        message=message,
        info={"transport_cost": cost, "f": f, "g": g, "dual_objective": dual, "reg": reg,
              "relative_marginal_error": rel},
    )


def sinkhorn_batch(a, b, C, reg, *, tol=1e-9, max_iter=100_000, dtype="float64",
                   eps_init=None, eps_decay=0.5, stage_tol=1e-2) -> Result:
    """Solve a batch of entropic OT problems in one JAX call (``jax.vmap`` of one while loop).

    Args:
        a: (B, n), strictly positive (no zero-mass rows).
        b: (B, m), strictly positive (no zero-mass columns).
        C: (B, n, m), or (n, m) shared by every problem.
        reg: one float for all problems.
        tol: relative L1 marginal error, as in `sinkhorn`.

    Returns:
        One `Result` with a leading batch axis on every array field: ``x`` the plans
        (B, n, m), ``dual`` the potentials ``(f, g)`` of shapes (B, n) and (B, m),
        ``objective`` (B,) the entropic objectives, ``status`` a numpy array (dtype object) of
        one `Status` per member (decided as in `sinkhorn`, on each member's data in float64:
        ``max_iter`` for a member that did not converge), ``iterations`` and
        ``primal_residual`` (the absolute L1 marginal errors) (B,); ``message`` counts the
        members per status; ``info``: ``f``, ``g``, ``transport_cost``, ``dual_objective``,
        ``relative_marginal_error`` (B,) and ``reg``.
    """
    import jax

    t_setup = time.perf_counter()
    a = float_array("a", a, ndim=2, finite=True, nonempty=True)
    b = float_array("b", b, ndim=2, finite=True, nonempty=True)
    C = float_array("C", C, finite=True)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have shapes (B, n) and (B, m); got {a.shape}, {b.shape}")
    if C.ndim == 2:
        C = np.broadcast_to(C, (a.shape[0],) + C.shape)
    if C.shape != (a.shape[0], a.shape[1], b.shape[1]):
        raise ValueError(f"C must have shape (n, m) or (B, n, m) = {(a.shape[0], a.shape[1], b.shape[1])}"
                         f", got {C.shape}")
    reg = validate_reg(reg)
    tol = validate.positive("tol", tol)
    max_iter = validate.integer("max_iter", max_iter)
    validate.choice("dtype", dtype, ("float64", "float32"))
    eps_decay = validate.positive("eps_decay", eps_decay, upper=1.0)
    stage_tol = validate.positive("stage_tol", stage_tol)
    eps_init = validate.positive("eps_init", eps_init, allow_none=True)
    nzs, members = [], []
    for i in range(a.shape[0]):
        if (a[i] <= 0).any() or (b[i] <= 0).any():
            raise ValueError("sinkhorn_batch needs strictly positive weights a and b")
        ai, bi = validate_marginals(a[i], b[i])
        members.append((ai, bi))
        nzs.append(_normalize(ai, bi, C[i], reg))
    bk = get_backend("jax", dtype)
    with bk.precision():
        ds, ss = [], []
        for nz in nzs:
            d_i, s_i = _setup(bk, nz.a, nz.b, nz.C, nz.reg, tol,
                              None if eps_init is None else eps_init / nz.scale, eps_decay,
                              stage_tol, None)
            ds.append(d_i)
            ss.append(s_i)
        stack = lambda xs: jax.tree_util.tree_map(lambda *z: bk.xp.stack(z), *xs)  # noqa: E731

        def solve(s, d):
            s, its = jax.vmap(lambda s, d: while_solve(ALGORITHM, bk, s, d, max_iter))(s, d)
            conv = jax.vmap(lambda s, d: _converged(bk, s, d))(s, d)
            f = s.f + s.eps[:, None] * bk.xp.log(s.u)
            g = s.g + s.eps[:, None] * bk.xp.log(s.v)
            return s.u[:, :, None] * s.K * s.v[:, None, :], f, g, s.eps, its, conv

        d, s = stack(ds), stack(ss)
        setup_time = time.perf_counter() - t_setup
        t0 = time.perf_counter()
        compiled = jax.jit(solve).lower(s, d).compile()
        compile_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        P, f, g, eps, its, conv = jax.device_get(compiled(s, d))
        solve_time = time.perf_counter() - t0
    finals, statuses = [], []
    for i, nz in enumerate(nzs):
        Pi, fi, gi = _to_user(nz, P[i], f[i], g[i], float(eps[i]))
        loop = Status.OPTIMAL if bool(conv[i]) else Status.MAX_ITER
        fin = _final(Pi, fi, gi, members[i][0], members[i][1], C[i], reg, float(tol), dtype, loop)
        finals.append(fin)
        statuses.append(fin.status or loop)
    status = np.empty(len(finals), dtype=object)
    status[:] = statuses
    fs = np.stack([r.info["f"] for r in finals])
    gs = np.stack([r.info["g"] for r in finals])
    per = lambda key: np.array([r.info[key] for r in finals])  # noqa: E731
    final = Final(
        x=np.stack([r.x for r in finals]), objective=np.array([r.objective for r in finals]),
        dual=(fs, gs), primal_residual=np.array([r.primal_residual for r in finals]),
        status=status, message=batch_message(statuses, [r.message for r in finals]),
        iterations=np.asarray(its, dtype=int),
        info={"f": fs, "g": gs, "transport_cost": per("transport_cost"),
              "dual_objective": per("dual_objective"),
              "relative_marginal_error": per("relative_marginal_error"), "reg": reg},
    )
    # one vmapped loop for the batch: its times; the status is per member (``final.status``)
    batch_run = Run(None, Status.OPTIMAL if bool(np.all(conv)) else Status.MAX_ITER,
                    int(np.max(its, initial=0)), {}, solve_time, compile_time)
    return finish(final, method="sinkhorn", backend=bk.name, run=batch_run,
                  setup_time=setup_time)
