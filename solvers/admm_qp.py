r"""Quadratic programs by OSQP's ADMM: the entry point `admm_qp`, numpy or JAX, one problem or
a batch.

Problem (OSQP's form; Stellato, Banjac, Goulart, Bemporad & Boyd, "OSQP: an operator splitting
solver for quadratic programs", Math. Prog. Comp. 2020):

$$
\min_x\ \tfrac12 x^\top P x + q^\top x \quad\text{s.t.}\quad l \le Ax \le u,
\qquad P \succeq 0,\ l_i \in \mathbb{R}\cup\{-\infty\},\ u_i \in \mathbb{R}\cup\{+\infty\}.
$$

The algorithm is the ADMM core of `cvxkit.solvers.admm` with the box instance of
`cvxkit.solvers.admm_box` (Ruiz scaling, linear systems, polishing, certificates); the checks,
the certificates and the adaptive penalty are documented there.

**Back ends.** numpy: dense or scipy.sparse data; the loop runs in Python over scipy/LAPACK
kernels. JAX: dense data, the whole loop jitted; a batch (arrays with a leading batch dimension)
is one ``jax.vmap``-ed loop in one call, iterating until every member has stopped (stopped
members are frozen; `cvxkit.solvers.admm_batch`: compaction, one block of members per device).
Compilation is cached per shape and reported in ``Result.compile_time``.

**Anderson acceleration** (one problem on numpy, ``acceleration=True``;
`cvxkit.solvers.anderson`): each block of ``check_every`` iterations starts from the
extrapolation of the last 10 blocks, kept only when it does not raise the fixed-point residual.
On the shared Maros-Meszaros half at a 10 s limit it raised the problems solved from 53 to 55
at 1e-3 and from 40 to 45 at 1e-6 (no false answers either way) and cut the shifted geometric
mean time by 23 %.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time

import numpy as np

from cvxkit.solvers import admm_traced, anderson, implicit, kkt, validate
from cvxkit.solvers.admm import (Data, Settings, Splitting, State, per_block, residuals,
                                 termination_flag)
from cvxkit.solvers.admm_check import (MemberChecks, UserCheck, confirmed_run, confirmed_status,
                                       polar)
from cvxkit.solvers.admm_batch import (aot, default_device, host_devices, one_device_mesh,
                                       per_device, run_batch)
from cvxkit.solvers.admm_box import (ALG_DENSE, ALG_DENSE_BATCH, ALG_INVERSE_BATCH,
                                     ALG_INVERSE_XLA_BATCH, ALG_SPARSE, INVERSE_MAX_N, QP_DENSE,
                                     QP_DENSE_INVERSE, QP_DENSE_INVERSE_XLA, UNROLLED_MAX_N,
                                     box_polar, certificate_error, polish_state, setup_dense,
                                     setup_sparse)
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Final, Options, finish, run
from cvxkit.solvers.primal_dual import (INF_BOUND, INFEASIBLE_OBJECTIVE, RUNNING, SOLVED,
                                        certificate, loop_verdict, warm_parts)
from cvxkit.solvers.result import Result, Status, batch_message
from cvxkit.solvers.validate import float_array


def _vector(name, v, size, fill=None):
    """``v`` as a float64 array (``None``: ``size`` copies of ``fill``; a scalar with a ``fill``:
    ``size`` copies of it), else ValueError."""
    if v is None and size is not None:
        return np.full((size,), fill, dtype=np.float64)
    v = float_array(name, v)
    if v.ndim == 0 and fill is not None:
        v = np.full((size,), float(v))
    return v


def check_q(q):
    """``q`` as a float64 array of shape (n,) or (batch, n) with finite entries, else
    ValueError."""
    q = float_array("q", q)
    if q.ndim not in (1, 2):
        raise ValueError(f"q must have shape (n,) or (batch, n), got {q.shape}")
    if not np.isfinite(q).all():
        raise ValueError("q contains NaN or infinite entries")
    return q


def check_bounds(l, u, m: int):
    """``(l, u)`` as float64 arrays of shape (m,) or (batch, m) (``None``: all infinite; a
    scalar: m copies), magnitudes ``>= INF_BOUND`` made infinite, with ``l <= u``, ``l < +inf``
    and ``u > -inf``, else ValueError."""
    l = _vector("l", l, m, -np.inf)
    u = _vector("u", u, m, np.inf)
    for name, b in (("l", l), ("u", u)):
        if b.ndim not in (1, 2) or b.shape[-1] != m:
            raise ValueError(f"{name} must have shape (m,) = ({m},) (or (batch, m)), got {b.shape}")
        if np.isnan(b).any():
            raise ValueError(f"{name} contains NaN entries")
    l = np.where(l <= -INF_BOUND, -np.inf, l)
    u = np.where(u >= INF_BOUND, np.inf, u)
    if (l == np.inf).any() or (u == -np.inf).any():
        raise ValueError("l must be < +inf and u > -inf")
    bad = l > u
    if bad.any():
        i = np.argwhere(bad)[0]
        raise ValueError(f"l > u at index {tuple(int(k) for k in i)}: {l[tuple(i)]:.6g} > {u[tuple(i)]:.6g}")
    return l, u


#: a sparse P with at most this many entries is checked for symmetry as a dense copy
SMALL_DENSE = 40_000


def validate_qp(P, q, A=None, l=None, u=None, *, symmetry_rtol: float = 1e-9):
    """Check and normalize QP data; returns ``(P, q, A, l, u, batch)``.

    ``P`` (n, n) symmetric, ``q`` (n,), ``A`` (m, n) (``None``: no constraints), ``l``, ``u`` (m,)
    with ``l <= u``; ``+-inf`` (or magnitude ``>= 1e20``) bounds are infinite; ``l``/``u`` may be
    ``None`` (all ``-inf``/``+inf``). ``P`` and ``A`` may be in any scipy.sparse format. ``batch``
    is ``None`` for one problem, else ``B``: any of ``P`` (B, n, n), ``q`` (B, n), ``A`` (B, m, n),
    ``l``, ``u`` (B, m) may carry a leading batch dimension (dense arrays only); the others are
    shared by all members and broadcast. Raises ``ValueError`` naming the argument for anything
    else (None, complex, object, ragged, non-finite or misshapen input).
    """
    P = validate.matrix("P", P)
    q = check_q(q)
    n = q.shape[-1]
    if n == 0:
        raise ValueError("the problem has no variables (q is empty)")
    if P.ndim in (2, 3) and P.shape[-1] == P.shape[-2] and P.shape[-1] != n and P.shape[-1] > 0:
        raise ValueError(f"q must have shape (n,) = ({P.shape[-1]},) (or (batch, n)) to match P "
                         f"of shape {P.shape}, got {q.shape}")
    if A is None:
        A = np.zeros((0, n))
    A = validate.matrix("A", A)
    sparse = kkt.is_sparse(P) or kkt.is_sparse(A)
    if P.ndim not in (2, 3) or P.shape[-2:] != (n, n):
        raise ValueError(f"P must have shape (n, n) = ({n}, {n}) (or (batch, n, n)), got {P.shape}")
    if A.ndim not in (2, 3) or A.shape[-1] != n:
        raise ValueError(f"A must have shape (m, n) with n = {n} (or (batch, m, n)), got {A.shape}")
    m = A.shape[-2]
    l, u = check_bounds(l, u, m)
    sizes = {name: arr.shape[0] for name, arr, nd in
             (("P", P, 3), ("q", q, 2), ("A", A, 3), ("l", l, 2), ("u", u, 2)) if arr.ndim == nd}
    batch = None
    if sizes:
        if sparse:  # shared sparse matrices in a batch: the batch path is dense
            P = P.toarray() if kkt.is_sparse(P) else P
            A = A.toarray() if kkt.is_sparse(A) else A
        if len(set(sizes.values())) != 1:
            raise ValueError(f"batch dimensions differ: {sizes}")
        batch = next(iter(sizes.values()))
        if batch == 0:
            raise ValueError("the batch is empty")
    # symmetry (P is taken as given: OSQP users holding only the upper triangle must symmetrize);
    # a small sparse P is checked as a dense copy (scipy.sparse costs ~100 us an operation)
    Pc = P.toarray() if kkt.is_sparse(P) and n * n <= SMALL_DENSE else P
    if kkt.is_sparse(Pc):
        asym = abs(Pc - Pc.T).max() if Pc.nnz else 0.0
        scale = abs(Pc).max() if Pc.nnz else 0.0
    else:
        asym = np.abs(Pc - np.swapaxes(Pc, -1, -2)).max(initial=0.0)
        scale = np.abs(Pc).max(initial=0.0)
    if asym > symmetry_rtol * max(scale, 1e-300):
        raise ValueError(
            f"P must be symmetric (max |P - P^T| = {asym:.3g}); if you hold OSQP's upper triangle "
            "U, pass U + U.T - diag(diag(U))")
    diag = Pc.diagonal() if kkt.is_sparse(Pc) else np.diagonal(Pc, axis1=-2, axis2=-1)
    if (diag < -symmetry_rtol * max(scale, 1e-300)).any():
        raise ValueError(f"P must be positive semidefinite; it has a negative diagonal entry "
                         f"({diag.min():.3g})")
    return P, q, A, l, u, batch


def _warm(warm_start, n, m, batch):
    """``(x0, y0, rho0)`` (unscaled) from a Result, a dict or a pair ``(x, y)``; zeros if None.

    Non-finite entries (e.g. from an infeasible solve) become 0.
    """
    shape_x = (n,) if batch is None else (batch, n)
    shape_y = (m,) if batch is None else (batch, m)
    parts = warm_parts(warm_start, "warm_start must be a Result of admm_qp, a dict with 'x' "
                       "(and 'y', 'rho'), or a pair (x, y)", ("x", "y", "rho"))
    if parts is None:
        return np.zeros(shape_x), np.zeros(shape_y), None
    x, y, rho = parts["x"], parts["y"], parts["rho"]
    x = np.zeros(shape_x) if x is None else _vector("warm_start x", x, None)
    y = np.zeros(shape_y) if y is None else _vector("warm_start y", y, None)
    if x.shape != shape_x or y.shape != shape_y:
        raise ValueError(f"warm_start has shapes x {x.shape}, y {y.shape}; expected {shape_x}, {shape_y}")
    if rho is not None:
        shape_rho = () if batch is None else (batch,)
        rho = _vector("warm_start rho", rho, None)
        if rho.shape not in ((), shape_rho):
            raise ValueError(f"warm_start rho has shape {rho.shape}; expected () or {shape_rho}")
        rho = np.broadcast_to(rho, shape_rho)
        rho = np.where(np.isfinite(rho) & (rho > 0), rho, np.nan)
    return np.where(np.isfinite(x), x, 0.0), np.where(np.isfinite(y), y, 0.0), rho


def admm_qp(P, q, A=None, l=None, u=None, *, backend="numpy", tol=1e-3, eps_abs=None, eps_rel=None,
            max_iter=4000, time_limit=math.inf, verbose=False, progress: bool | None = None,
            callback=None, check_every=25, seed=0, warm_start=None, dtype="float64", rho=0.1,
            sigma=1e-6, alpha=1.6, adaptive_rho=True, adaptive_rho_tolerance=5.0, scaling=10,
            eps_primal_infeasible=1e-4, eps_dual_infeasible=1e-4, check_gap=True, polish=False,
            polish_refine_iter=3, delta=1e-6, linsys="auto", mesh=None,
            acceleration=True) -> Result:
    r"""Solve $\min \tfrac12 x^\top Px + q^\top x$ s.t. $l \le Ax \le u$ by OSQP's ADMM.

    Args:
        P: (n, n) symmetric positive semidefinite, dense or scipy.sparse.
        q: (n,).
        A: (m, n) dense or scipy.sparse, or ``None`` (no constraints).
        l, u: (m,) bounds, ``-inf``/``+inf`` (or magnitude $\ge 10^{20}$) where absent; ``None``
            means all infinite. Equality rows have ``l == u``.
            A batch: any of ``P`` (B, n, n), ``q`` (B, n), ``A`` (B, m, n), ``l``, ``u`` (B, m)
            may have a leading batch dimension; the rest is shared. On JAX the batch is one
            vmapped, jitted call; on numpy a loop of single solves.
        tol: sets ``eps_abs = eps_rel = tol`` unless they are given (OSQP's default 1e-3).
        eps_abs, eps_rel: absolute and relative tolerances (module docstring); ``eps_rel=0`` is
            allowed (purely absolute tests, as qpbenchmark uses), ``eps_abs`` must be positive.
        max_iter: ADMM iterations (OSQP's default 4000).
        check_every: iterations between termination checks and penalty updates (OSQP's
            ``check_termination``, 25).
        warm_start: a previous `Result` of this solver (its ``x``, ``info['y']`` and
            ``info['rho']``), a dict with ``x`` and optionally ``y``, ``rho``, or a pair
            ``(x, y)``; for a batch, arrays with the batch dimension.
        rho, sigma, alpha: initial penalty, x-regularization, over-relaxation (0.1, 1e-6, 1.6).
        adaptive_rho, adaptive_rho_tolerance: penalty updates at checks, refactoring when the
            estimate moves by more than this factor (5).
        scaling: Ruiz equilibration rounds (10; 0 switches scaling off).
        eps_primal_infeasible, eps_dual_infeasible: infeasibility certificate tolerances (1e-4).
        check_gap: also require the duality gap test (OSQP 1.x does).
        polish, polish_refine_iter, delta: solution polishing (off by default, as in OSQP).
        linsys: ``"auto"``, ``"dense"`` (reduced system, dense Cholesky) or ``"sparse"`` (full
            KKT, LDL^T via qdldl; numpy only). See `cvxkit.solvers.kkt.choose_linsys`.
        mesh: a batch on JAX only: a ``jax.sharding.Mesh`` with one axis; each of its devices
            solves its own share of the members (no communication). For several CPU cores,
            start Python with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and pass
            ``Mesh(jax.devices(), ("batch",))``. Default: one device.
        acceleration: Anderson acceleration of the iterations (one problem on numpy;
            `cvxkit.solvers.anderson`); ``False`` runs plain ADMM. Batches and JAX run without.
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on a
            terminal.
        time_limit, verbose, callback, seed, dtype: see `cvxkit.solvers.driver`.

    Returns:
        `Result` with ``x`` the primal solution (NaN when infeasible or unbounded),
        ``objective`` $\tfrac12 x^\top Px + q^\top x$ (``+inf`` for primal infeasible, ``-inf``
        for unbounded), ``primal_residual`` $\lVert \hat Ax - \hat z\rVert_\infty$,
        ``dual_residual`` $\lVert \hat Px + \hat q + \hat A^\top \hat y\rVert_\infty$ (in the
        normalized units of the module docstring, as the tolerances), and in ``info``: ``y``
        (duals, user units; $y > 0$ on upper bounds, $< 0$ on lower), ``z``
        ($= \Pi_{[l,u]}(Ax)$ at convergence), ``gap``, ``eps_prim``, ``eps_dual``, ``eps_gap``
        (normalized units), ``rho`` (final), ``rho_updates`` (refactorizations after the first),
        ``linsys``, ``polish`` (``"off"``, ``"success"``, ``"failed"``), ``anderson``
        (extrapolations accepted and rejected, with ``acceleration``) and, when infeasible,
        ``certificate`` ($\delta y$ or $\delta x$, unscaled, unit infinity norm, checked by
        `certificate_error`). ``message`` says why a certificate was or was not accepted. The history holds, per check: ``iteration``, ``objective``,
        ``prim_res``, ``dual_res``, ``gap``, ``rho``. ``dual`` is ``info['y']``.

        A batch returns one `Result` with a leading batch axis on every array field: ``x``
        (B, n), ``dual`` (B, m), ``objective`` (B,), ``status`` a numpy array (dtype object)
        of one `Status` per member, ``iterations``, ``primal_residual``, ``dual_residual``
        (B,); ``message`` counts the members per status ("k of B members optimal; ...") and
        ``converged`` is true when every member is optimal. ``info`` keeps per-member arrays
        (``y``, ``z``, ``statuses`` as a list, ``iterations``, ``objectives``, ``gap``,
        ``rho``, ``certificates``, ``messages``, ...); ``solve_time`` and ``history`` are
        the batch's.
    """
    # the options as given (the arguments after the data, less warm_start)
    options = {k: v for k, v in locals().items() if k not in ("P", "q", "A", "l", "u", "warm_start")}
    t_setup = time.perf_counter()
    traced = implicit.is_traced(P, q, A, l, u)  # inside jax.jit / vmap / grad: `admm_traced`
    P, q, A, l, u, batch = (P, q, A, l, u, None) if traced else validate_qp(P, q, A, l, u)
    return _solve(P, q, A, l, u, batch, traced, warm_start, t_setup, **configure(q, batch, **options))


def configure(q, batch, *, backend, tol, eps_abs, eps_rel, max_iter, time_limit, verbose, progress,
              callback, check_every, seed, dtype, rho, sigma, alpha, adaptive_rho,
              adaptive_rho_tolerance, scaling, eps_primal_infeasible, eps_dual_infeasible,
              check_gap, polish, polish_refine_iter, delta, linsys, mesh,
              acceleration=True) -> dict:
    """Check `admm_qp`'s options (all of them but ``warm_start``) for the validated ``q`` and
    ``batch``; returns what a solve needs: ``backend``, ``opts`` (the driver's `Options`),
    ``cfg`` (the `Settings` as a dict), ``pol`` (polish, delta, refinement steps), ``scaling``,
    ``linsys``, ``rho0``, ``mesh`` and ``dtype``. Raises ValueError naming a bad option."""
    v = validate
    tol = v.positive("tol", tol)
    eps_abs = v.positive("eps_abs", tol if eps_abs is None else eps_abs)
    eps_rel = v.positive("eps_rel", tol if eps_rel is None else eps_rel, allow_zero=True)
    rho0 = v.positive("rho", rho)
    sigma = v.positive("sigma", sigma)
    alpha = v.positive("alpha", alpha, upper=2.0)
    v.positive("delta", delta)
    eps_primal_infeasible = v.positive("eps_primal_infeasible", eps_primal_infeasible)
    eps_dual_infeasible = v.positive("eps_dual_infeasible", eps_dual_infeasible)
    if v.positive("adaptive_rho_tolerance", adaptive_rho_tolerance) < 1:
        raise ValueError(f"adaptive_rho_tolerance must be >= 1, got {adaptive_rho_tolerance!r}")
    scaling = v.integer("scaling", scaling, minimum=0)
    polish_refine_iter = v.integer("polish_refine_iter", polish_refine_iter, minimum=0)
    check_every = v.integer("check_every", check_every)
    max_iter = v.integer("max_iter", max_iter)
    adaptive_rho, check_gap, polish, acceleration = (v.boolean(name, val) for name, val in (
        ("adaptive_rho", adaptive_rho), ("check_gap", check_gap), ("polish", polish),
        ("acceleration", acceleration)))
    linsys = v.choice("linsys", linsys, ("auto", "dense", "sparse"))
    if not isinstance(backend, Backend):
        backend = v.choice("backend", backend, ("numpy", "jax"))
    if (backend == "jax" or batch is not None) and linsys == "sparse":
        raise ValueError("the JAX back end and batches solve the dense reduced system: use "
                         "linsys='auto' or 'dense'")
    if mesh is not None and (backend != "jax" or batch is None):
        raise ValueError("mesh= splits a batch over devices: it needs backend='jax' and a batch")
    if mesh is not None and len(getattr(mesh, "axis_names", ())) != 1:
        raise ValueError(f"mesh must be a jax.sharding.Mesh with one axis, got {mesh!r}")
    if host_devices(mesh) and (q.shape[-1] > UNROLLED_MAX_N or polish):
        raise ValueError(
            f"a mesh of several CPU devices takes batches of at most {UNROLLED_MAX_N} variables "
            f"without polish (got n = {q.shape[-1]}, polish={bool(polish)}): XLA:CPU deadlocks "
            "when two host devices make LAPACK calls at once, and larger or polished members "
            "need them. Use one device (mesh=None) or GPUs.")
    if isinstance(max_iter, np.integer):
        max_iter = int(max_iter)
    opts = Options(tol=min(eps_abs, eps_rel) or eps_abs, max_iter=max_iter, time_limit=time_limit,
                   verbose=verbose, callback=callback, check_every=None, seed=seed, dtype=dtype,
                   progress=progress)
    cfg = dict(sigma=sigma, alpha=alpha, eps_abs=eps_abs, eps_rel=eps_rel, eps_pinf=eps_primal_infeasible,
               eps_dinf=eps_dual_infeasible, rho_tolerance=float(adaptive_rho_tolerance),
               adaptive=bool(adaptive_rho), check_gap=bool(check_gap), block=int(check_every),
               max_iter=int(max_iter), acceleration=bool(acceleration))
    pol = (bool(polish), float(delta), int(polish_refine_iter))
    return dict(backend=backend, opts=opts, cfg=cfg, pol=pol, scaling=int(scaling), linsys=linsys,
                rho0=rho0, mesh=mesh, dtype=dtype)


def _solve(P, q, A, l, u, batch, traced, warm_start, t_setup, *, backend, opts, cfg, pol, scaling,
           linsys, rho0, mesh, dtype) -> Result:
    if traced:
        if backend != "jax" or mesh is not None:
            raise ValueError("inside jax.jit, vmap or grad admm_qp needs backend='jax' (and no "
                             "mesh: vmap makes the batch)")
        warm = None if warm_start is None else (warm_parts(warm_start, "warm_start must be a "
                                                           "Result or a pair (x, y)"))
        return admm_traced.solve(P, q, A, l, u, cfg=cfg, scaling=int(scaling), polish=pol,
                                 rho0=rho0, warm=None if warm is None else (warm["x"], warm["y"]))
    bk = get_backend(backend, dtype)
    n, m = q.shape[-1], A.shape[-2]
    x0, y0, rho_w = _warm(warm_start, n, m, batch)
    rho_start = np.where(np.isnan(rho_w), rho0, rho_w) if rho_w is not None else \
        (np.full(batch, rho0) if batch is not None else rho0)
    if batch is not None and backend == "numpy":
        return _numpy_batch_loop(P, q, A, l, u, x0, y0, rho_start, batch, t_setup, opts, cfg,
                                 int(scaling), pol)
    if batch is not None:
        return _jax_batch(bk, P, q, A, l, u, x0, y0, rho_start, batch, t_setup, opts, cfg,
                          int(scaling), pol, mesh)
    if backend == "jax":
        return _jax_single(bk, P, q, A, l, u, x0, y0, float(rho_start), t_setup, opts, cfg,
                           int(scaling), pol)
    return _numpy_single(P, q, A, l, u, x0, y0, float(rho_start), t_setup, opts, cfg, int(scaling),
                         pol, linsys)


def _settings(bk, cfg) -> Settings:
    # numpy scalars on both back ends: compiled JAX code takes them as they are (cheaper than a
    # device transfer each). np.bool_, not bool: the flags are negated with ``~`` (``~True == -2``)
    def f(v):
        return np.asarray(v, dtype=bk.dtype)

    i = np.int32 if bk.name == "jax" else int
    b = np.bool_
    return Settings(f(cfg["sigma"]), f(cfg["alpha"]), f(cfg["eps_abs"]), f(cfg["eps_rel"]),
                    f(cfg["eps_pinf"]), f(cfg["eps_dinf"]), f(cfg["rho_tolerance"]),
                    b(cfg["adaptive"]), b(cfg["check_gap"]), i(cfg["block"]), i(cfg["max_iter"]))


def _driver(alg, opts: Options, cfg, jax: bool, batched: bool = False):
    """The driver `Algorithm` and `Options` of a solve: one driver step is one block of
    ``check_every`` iterations (`per_block`); JAX syncs with the host every ~100 iterations (a
    batch: ~500, its loop also stops to compact)."""
    sync = max(1, (500 if batched else 100) // cfg["block"]) if jax else 1
    return per_block(alg, cfg["block"]), dataclasses.replace(opts, check_every=sync)


def _final_status(bk, sp, d, s: State, driver_status: Status) -> Status:
    """`loop_verdict` for a numpy run (the relaxed flag computed here)."""
    relaxed = s.flag
    if int(s.flag) == RUNNING:
        relaxed = termination_flag(bk, sp, d, s, residuals(bk, sp, d, s.x, s.z, s.y), relax=10.0)
    return loop_verdict(s.flag, driver_status, relaxed)


def _unscale(d_D, d_E, d_c, x, z, y):
    return x * d_D, z / d_E, y * d_E / d_c


def _result_single(P, q, A, x, z, y, s_np: dict, status, out, setup_time, backend, linsys,
                   polish_info, cert, message="") -> Result:
    """The `Result` of one problem from unscaled numpy vectors; ``status`` is the final verdict
    (`loop_verdict`, then `_verified`)."""
    info = {"y": y, "z": z, "gap": s_np["gap"], "eps_prim": s_np["eps_prim"],
            "eps_dual": s_np["eps_dual"], "eps_gap": s_np["eps_gap"], "rho": s_np["rho"],
            "rho_updates": s_np["n_refactor"], "linsys": linsys, "polish": polish_info}
    if status in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE):
        info.update(certificate=cert, y=np.full_like(y, np.nan))
        x = np.full_like(x, np.nan)
        obj = INFEASIBLE_OBJECTIVE[status]
    else:
        obj = float(0.5 * x @ (P @ x) + q @ x)
    final = Final(x=x, objective=obj, dual=info["y"], primal_residual=s_np["prim_res"],
                  dual_residual=s_np["dual_res"], info=info, status=status, message=message,
                  iterations=s_np["k"])
    return finish(final, method="admm", backend=backend, run=out, setup_time=setup_time)


def _verified(status, cert, P, q, A, l, u, cfg):
    """``(status, message)``: a certificate status is kept only if `certificate_error` finds
    nothing wrong with the certificate on the user's data; else ``numerical_error``."""
    if status not in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE):
        return status, ""
    why = certificate_error(P, q, A, l, u, status, cert, cfg["eps_pinf"], cfg["eps_dinf"])
    if why is None:
        return status, f"{status.value}: the certificate holds on the unscaled data"
    return Status.NUMERICAL_ERROR, (f"stopped on a {status.value} certificate candidate that "
                                    f"does not hold on the unscaled data: {why}")


#: sparse data solved with the dense reduced system is made dense below this many entries
DENSIFY_MAX = 2_000_000


def _numpy_single(P, q, A, l, u, x0, y0, rho0, t_setup, opts, cfg, scaling, pol, linsys) -> Result:
    try:
        P, A, d, s, sp = numpy_setup(P, q, A, l, u, x0, y0, rho0, cfg, scaling, linsys)
    except np.linalg.LinAlgError as e:
        return _failed(q, A, str(e), time.perf_counter() - t_setup, "numpy")
    return numpy_solve(P, q, A, l, u, d, s, sp, time.perf_counter() - t_setup, opts, cfg, pol)[0]


def numpy_setup(P, q, A, l, u, x0, y0, rho0, cfg, scaling: int, linsys: str):
    """``(P, A, d, s, sp)``: the numpy set-up of one validated QP (``P``, ``A`` made dense when
    small and solved by the dense reduced system), its scaled `Data`, first `State` and
    `Splitting`. Raises ``numpy.linalg.LinAlgError`` when the first factorization fails."""
    bk = get_backend("numpy")
    st = _settings(bk, cfg)
    if linsys == "auto":
        linsys = kkt.choose_linsys(P, A)
    n, m = q.shape[0], A.shape[0]
    if linsys == "dense" and (kkt.is_sparse(P) or kkt.is_sparse(A)) and m * n + n * n <= DENSIFY_MAX:
        # small: dense arrays avoid scipy.sparse's per-product overhead (~70 us a call)
        P = P.toarray() if kkt.is_sparse(P) else P
        A = A.toarray() if kkt.is_sparse(A) else A
    if kkt.is_sparse(P) or kkt.is_sparse(A) or linsys == "sparse":
        import scipy.sparse as sps

        d, s, sp = setup_sparse(sps.csc_matrix(P), q, sps.csc_matrix(A), l, u, x0, y0,
                                rho0, st, scaling, linsys, user_units=cfg["eps_rel"] == 0)
    else:
        d, s = setup_dense(bk, P, q, A, l, u, x0, y0, rho0, st, scaling,
                           user_units=cfg["eps_rel"] == 0)
        sp = QP_DENSE
    return P, A, d, s, sp


def numpy_solve(P, q, A, l, u, d, s, sp, setup_time, opts, cfg, pol, info=None):
    """``(result, state)``: the ADMM loop from the set-up ``(d, s, sp)`` of `numpy_setup`, the
    final status (verified on the user's data ``P, q, A, l, u``), polishing and the `Result`
    (``info``: extra entries for ``Result.info``); ``state`` is the final `State` (``None``
    when a refactorization failed)."""
    bk = get_backend("numpy")
    alg, dopts = _driver(ALG_DENSE if sp is QP_DENSE else ALG_SPARSE, opts, cfg, jax=False)
    user = UserCheck.of(P, q, A, l, u, cfg)
    if cfg["acceleration"]:
        s = s._replace(accel=anderson.Memory(interval=cfg["block"]))
    try:  # until an optimal candidate passes the tests on the user's data (`admm_check`)
        out, s, polish_info = confirmed_run(
            bk, alg, sp, d, s, dopts, cfg["max_iter"], pol, user,
            kkt.is_sparse(kkt.as_scipy(d.P)) or A.shape[0] + A.shape[1] > 3000)
    except np.linalg.LinAlgError as e:  # a refactorization failed
        return _failed(q, A, str(e), setup_time, "numpy"), None
    status = confirmed_status(bk, sp, d, s, out.status, user)
    x, z, y = _unscale(d.D, d.E, d.c, s.x, s.z, s.y)
    y = polar(y, l, u)
    cert = certificate(status, d.E * box_polar(bk, d, s.dy), d.D * s.dx)
    status, message = _verified(status, cert, P, q, A, l, u, cfg)
    message, info = message or user.message(status), {**user.info(), **(info or {})}
    if s.accel is not None:
        info["anderson"] = s.accel.counts()
    s_np = {k: float(getattr(s, k)) for k in ("gap", "eps_prim", "eps_dual", "eps_gap", "rho",
                                               "prim_res", "dual_res")}
    s_np.update(k=int(s.k), n_refactor=int(s.n_refactor))
    label = "dense reduced (Cholesky)" if sp is QP_DENSE else f"sparse KKT ({d.lin.backend} LDL^T)"
    res = _result_single(P, q, A, x, z, y, s_np, status, out, setup_time, "numpy", label,
                         polish_info, cert, message)
    return (res if info is None else res.replace(info={**res.info, **info})), s


def _failed(q, A, msg, setup_time, backend):
    """A factorization failed (before or inside the loop): no iterate to report."""
    final = Final(x=np.full(q.shape[-1], np.nan), objective=float("nan"),
                  dual=np.full(A.shape[-2], np.nan), info={"error": f"factorization failed: {msg}"},
                  status=Status.NUMERICAL_ERROR, message=f"factorization failed: {msg}")
    return finish(final, method="admm", backend=backend, setup_time=setup_time)


@functools.lru_cache(maxsize=32)
def _setup_callable(bk, scaling: int, batched: bool, sp: Splitting, user_units: bool = False):

    def one(P, q, A, l, u, x0, y0, rho0, st):
        return setup_dense(bk, P, q, A, l, u, x0, y0, rho0, st, scaling, sp,
                           user_units=user_units)

    if not batched:
        return one
    return bk._jax.vmap(one, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None))


@functools.lru_cache(maxsize=32)
def _finish_callable(bk, polish: bool, refine: int, batched: bool):
    """Polish (optional), relaxed flag, certificates' inputs, unscaled vectors; jit/vmap-able."""

    def one(d: Data, s: State, delta):
        ok = bk.xp.asarray(False)
        if polish:
            s_pol, ok = polish_state(bk, QP_DENSE, d, s, delta, refine)
            ok = ok & (s.flag == SOLVED)
            s = bk._jax.tree_util.tree_map(lambda a, b: bk.xp.where(ok, a, b), s_pol, s)
        r = residuals(bk, QP_DENSE, d, s.x, s.z, s.y)
        relaxed = termination_flag(bk, QP_DENSE, d, s, r, relax=10.0)
        x, z, y = _unscale(d.D, d.E, d.c, s.x, s.z, s.y)
        cert_y = d.E * box_polar(bk, d, s.dy)
        cert_x = d.D * s.dx
        return dict(x=x, z=z, y=y, flag=s.flag, relaxed=relaxed, k=s.k, prim_res=s.prim_res,
                    dual_res=s.dual_res, gap=s.gap, eps_prim=s.eps_prim, eps_dual=s.eps_dual,
                    eps_gap=s.eps_gap, rho=s.rho, n_refactor=s.n_refactor, polished=ok,
                    cert_y=cert_y, cert_x=cert_x)

    if not batched:
        return one
    return bk._jax.vmap(one, in_axes=(0, 0, None))


def _jax_inputs(bk, P, q, A, l, u, x0, y0, rho0, batch):
    """Dense arrays in the back end's dtype (broadcast over the batch when there is one); numpy,
    which compiled code takes as they are."""
    def dense(M):
        return M.toarray() if kkt.is_sparse(M) else M

    P, A = dense(P), dense(A)
    if batch is not None:
        n, m = q.shape[-1], A.shape[-2]
        P = np.broadcast_to(P, (batch, n, n))
        A = np.broadcast_to(A, (batch, m, n))
        q = np.broadcast_to(q, (batch, n))
        l = np.broadcast_to(l, (batch, m))
        u = np.broadcast_to(u, (batch, m))
        rho0 = np.broadcast_to(np.asarray(rho0, dtype=np.float64), (batch,))
    return tuple(np.asarray(v, dtype=bk.dtype) for v in (P, q, A, l, u, x0, y0, rho0))


def _jax_run(bk, P, q, A, l, u, x0, y0, rho0, batch, opts, cfg, scaling, pol, mesh=None,
             checks: MemberChecks | None = None):
    """Set-up, loop and finish on JAX; returns (finished dict of numpy arrays, out, times).
    With ``checks``, optimal members that fail their tests on the user's data go on with
    tighter tolerances (`cvxkit.solvers.admm_check`).

    A batch runs on the devices of ``mesh`` (default: one device), each on its own block of
    members (`per_device`); it is padded with copies of its last member to a multiple of the
    number of devices, and the copies are dropped at the end."""
    jax = bk._jax
    batched = batch is not None
    with bk.precision():
        args = _jax_inputs(bk, P, q, A, l, u, x0, y0, rho0, batch)
        st = _settings(bk, cfg)
        inverse = batched and q.shape[-1] <= INVERSE_MAX_N
        sp = (QP_DENSE_INVERSE_XLA if host_devices(mesh) else QP_DENSE_INVERSE) if inverse else \
            QP_DENSE
        user_units = cfg["eps_rel"] == 0  # absolute tests in the user's units (`_norms`)
        setup_fn = _setup_callable(bk, scaling, batched, sp, user_units)
        finish_fn = _finish_callable(bk, pol[0], pol[2], batched)
        if batched:
            mesh = mesh if mesh is not None else one_device_mesh(default_device(jax))
            pad = -batch % mesh.devices.size
            args = tuple(np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a
                         for a in args)
            setup_fn = per_device(bk, mesh, setup_fn, (True,) * 8 + (False,))
            finish_fn = per_device(bk, mesh, finish_fn, (True, True, False))
        setup, c1 = aot(bk, ("setup", scaling, batched, sp, mesh, user_units), setup_fn, *args,
                        st)
        t0 = time.perf_counter()
        d, s = setup(*args, st)
        if batched and pad:  # the padding copies start stopped: they never run, nor count
            s = s._replace(flag=jax.device_put(s.flag.at[batch:].set(SOLVED), s.flag.sharding))
        bk.block(s.x)
        setup_time = time.perf_counter() - t0
        alg, dopts = _driver({QP_DENSE_INVERSE: ALG_INVERSE_BATCH, QP_DENSE: ALG_DENSE_BATCH,
                              QP_DENSE_INVERSE_XLA: ALG_INVERSE_XLA_BATCH}[sp] if batched else
                             ALG_DENSE, opts, cfg, jax=True, batched=batched)
        out = run_batch(alg, bk, s, d, dopts, mesh) if batched else run(alg, bk, s, d, dopts)
        delta = np.asarray(pol[1], dtype=bk.dtype)
        finish, c2 = aot(bk, ("finish", pol[0], pol[2], batched, mesh), finish_fn, d, out.state,
                          delta)
        t1 = time.perf_counter()
        fin = jax.device_get(finish(d, out.state, delta))
        if checks is not None:  # optimal candidates and certificates on the user's data
            fin, out = checks.confirm(
                jax, fin, out, d, dopts, opts.time_limit,
                lambda s, d, o: run_batch(alg, bk, s, d, o, mesh) if batched else
                run(alg, bk, s, d, o), lambda s: jax.device_get(finish(d, s, delta)))
        if batched:
            fin = {k: v[:batch] for k, v in fin.items()}
        finish_time = time.perf_counter() - t1
    return fin, out, setup_time, finish_time, c1 + c2


def _jax_single(bk, P, q, A, l, u, x0, y0, rho0, t_setup, opts, cfg, scaling, pol) -> Result:
    pre = time.perf_counter() - t_setup
    user = UserCheck.of(P, q, A, l, u, cfg)
    fin, out, setup_time, finish_time, compile_extra = _jax_run(
        bk, P, q, A, l, u, x0, y0, rho0, None, opts, cfg, scaling, pol,
        checks=MemberChecks([user], cfg["max_iter"]))
    status = loop_verdict(fin["flag"], out.status, fin["relaxed"])
    out = out._replace(solve_time=out.solve_time + finish_time,
                       compile_time=out.compile_time + compile_extra)
    x, z, y = (np.asarray(fin[k], dtype=np.float64) for k in ("x", "z", "y"))
    cert = certificate(status, fin["cert_y"], fin["cert_x"])
    status, message = _verified(status, cert, P, q, A, l, u, cfg)
    s_np = {k: float(fin[k]) for k in ("gap", "eps_prim", "eps_dual", "eps_gap", "rho", "prim_res",
                                       "dual_res")}
    s_np.update(k=int(fin["k"]), n_refactor=int(fin["n_refactor"]))
    polish_info = "off" if not (pol[0] and status is Status.OPTIMAL) else \
        ("success" if bool(fin["polished"]) else "failed")
    res = _result_single(P, q, A, x, z, y, s_np, status, out, pre + setup_time, "jax",
                         "dense reduced (Cholesky, XLA)", polish_info, cert,
                         message or user.message(status))
    return res.replace(info={**res.info, **user.info()})


def _jax_batch(bk, P, q, A, l, u, x0, y0, rho0, batch, t_setup, opts, cfg, scaling, pol,
               mesh) -> Result:
    pre = time.perf_counter() - t_setup
    pick = lambda M, i, nd: M[i] if np.ndim(M) == nd else M  # noqa: E731
    checks = MemberChecks([UserCheck.of(pick(P, i, 3), pick(q, i, 2), pick(A, i, 3),
                                        pick(l, i, 2), pick(u, i, 2), cfg)
                           for i in range(batch)], cfg["max_iter"])
    fin, out, setup_time, finish_time, compile_extra = _jax_run(
        bk, P, q, A, l, u, x0, y0, rho0, batch, opts, cfg, scaling, pol, mesh, checks)
    statuses = [loop_verdict(f, out.status, r) for f, r in zip(fin["flag"], fin["relaxed"])]
    out = out._replace(solve_time=out.solve_time + finish_time,
                       compile_time=out.compile_time + compile_extra)
    linsys = "dense reduced (explicit inverse, XLA)" if q.shape[-1] <= INVERSE_MAX_N else \
        "dense reduced (Cholesky, XLA)"
    return _batch_result(P, q, A, fin, statuses, out, pre + setup_time, "jax", pol, linsys,
                         l=l, u=u, cfg=cfg)


def _batch_result(P, q, A, fin, statuses, out, setup_time, backend, pol,
                  linsys="dense reduced (Cholesky)", l=None, u=None, cfg=None,
                  solve_time=None) -> Result:
    """The batch `Result` (a leading batch axis on every field, one `Status` per member) from
    the members' unscaled vectors ``fin`` and statuses; ``out`` the batch's driver `Run`
    (``None`` for a loop of single solves, whose ``solve_time`` is given)."""
    B, n = np.shape(fin["x"])
    x = np.array(fin["x"], dtype=np.float64)
    y = np.array(fin["y"], dtype=np.float64)
    Pb = np.broadcast_to(P.toarray() if kkt.is_sparse(P) else P, (B, n, n))
    qb = np.broadcast_to(q, (B, n))
    objs = np.einsum("bi,bij,bj->b", x, Pb, x) * 0.5 + np.einsum("bi,bi->b", qb, x)
    certs = [None] * B
    statuses = list(statuses)
    messages = list(fin.get("messages", [""] * B))
    pick = lambda M, i, nd: M[i] if np.ndim(M) == nd else M  # noqa: E731
    for i, stt in enumerate(statuses):
        if stt in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE):
            certs[i] = certificate(stt, fin["cert_y"][i], fin["cert_x"][i])
            if cfg is not None:  # (members of a numpy batch were verified by their own solve)
                statuses[i], messages[i] = _verified(stt, certs[i], pick(P, i, 3), pick(q, i, 2),
                                                     pick(A, i, 3), pick(l, i, 2), pick(u, i, 2),
                                                     cfg)
        stt = statuses[i]
        if stt in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE):
            objs[i] = INFEASIBLE_OBJECTIVE[stt]
            x[i] = np.nan
            y[i] = np.nan
    status = np.empty(B, dtype=object)
    status[:] = statuses
    polished = np.asarray(fin.get("polished", np.zeros(B, bool)))
    info = {"y": y, "z": np.asarray(fin["z"]), "statuses": statuses,
            "iterations": np.asarray(fin["k"], dtype=int), "objectives": objs,
            "prim_res": np.asarray(fin["prim_res"]), "dual_res": np.asarray(fin["dual_res"]),
            "gap": np.asarray(fin["gap"]), "eps_prim": np.asarray(fin["eps_prim"]),
            "eps_dual": np.asarray(fin["eps_dual"]), "eps_gap": np.asarray(fin["eps_gap"]),
            "rho": np.asarray(fin["rho"]),
            "rho_updates": np.asarray(fin["n_refactor"], dtype=int), "certificates": certs,
            "polish": "off" if not pol[0] else polished, "linsys": linsys, "messages": messages}
    final = Final(x=x, objective=objs, dual=y,
                  primal_residual=np.asarray(fin["prim_res"], dtype=np.float64),
                  dual_residual=np.asarray(fin["dual_res"], dtype=np.float64), info=info,
                  status=status, message=batch_message(statuses, messages),
                  iterations=np.asarray(fin["k"], dtype=int))
    return finish(final, method="admm", backend=backend, run=out, setup_time=setup_time,
                  solve_time=solve_time, history=None if out is not None else {})


def _numpy_batch_loop(P, q, A, l, u, x0, y0, rho0, batch, t_setup, opts, cfg, scaling, pol) -> Result:
    """numpy: a batch is solved member by member (the JAX back end vmaps it)."""
    def member(M, i, nd):
        return M[i] if np.ndim(M) == nd else M

    results = []
    for i in range(batch):
        results.append(_numpy_single(
            member(P, i, 3), member(q, i, 2), member(A, i, 3), member(l, i, 2), member(u, i, 2),
            x0[i], y0[i], float(np.asarray(rho0)[i]), time.perf_counter(), opts,
            {**cfg, "acceleration": False}, scaling, pol, "dense"))  # as the JAX batch
    fin = {"x": np.stack([r.x for r in results]),
           # a member whose factorization failed has no y, z: NaN, as its x
           "y": np.stack([r.info.get("y", np.full(np.shape(y0)[-1], np.nan)) for r in results]),
           "z": np.stack([r.info.get("z", np.full(np.shape(y0)[-1], np.nan)) for r in results]),
           "k": [r.iterations for r in results],
           "prim_res": [r.primal_residual for r in results],
           "dual_res": [r.dual_residual for r in results],
           **{k: [r.info.get(k, np.nan) for r in results]
              for k in ("gap", "eps_prim", "eps_dual", "eps_gap", "rho")},
           "n_refactor": [r.info.get("rho_updates", 0) for r in results],
           "polished": np.array([r.info.get("polish") == "success" for r in results]),
           "messages": [r.message for r in results]}
    cy = [r.info.get("certificate") if r.status is Status.PRIMAL_INFEASIBLE else None for r in results]
    cx = [r.info.get("certificate") if r.status is Status.DUAL_INFEASIBLE else None for r in results]
    fin["cert_y"], fin["cert_x"] = cy, cx
    statuses = [r.status for r in results]
    solve_time = sum(r.solve_time for r in results)
    return _batch_result(P, q, A, fin, statuses, None, time.perf_counter() - t_setup - solve_time,
                         "numpy", pol, solve_time=solve_time)
