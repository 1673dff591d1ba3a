r"""Small dense quadratic programs by a primal-dual interior point method, differentiable in JAX.

Problem (as `cvxkit.solvers.admm_qp`): $\min_x \tfrac12 x^\top Px + q^\top x$ s.t.
$l \le Ax \le u$, with slacks and multipliers for the finite bounds only,

$$
Ax + s_u = u,\quad -Ax + s_l = -l,\qquad s_u, s_l, z_u, z_l \ge 0,\qquad
Px + q + A^\top(z_u - z_l) = 0,\quad s_u \circ z_u = s_l \circ z_l = 0 .
$$

**The algorithm**: Mehrotra's predictor-corrector (Mehrotra, "On the implementation of a
primal-dual interior point method", SIAM J. Optim. 1992), as in the batched solver of OptNet
(Amos & Kolter, ICML 2017). Each iteration solves the Newton system of the conditions above
twice with one Cholesky factorization of the reduced matrix
$M = P + A^\top\mathrm{diag}(z_u/s_u + z_l/s_l)A$ (n x n): an affine step, then a corrector
aimed at $\sigma\mu$ with $\mu = (s^\top z)/p$ over the $p$ finite bounds and
$\sigma = (\mu_{\text{aff}}/\mu)^3$; the step goes to 0.99 of the distance to the boundary.
A ridge ``RIDGE`` $(1 + \max_i P_{ii})$ keeps $M$ definite when $P$ is singular and no bound is
active in some direction. Iterations: about 10 to 20, independent of the conditioning that
slows first-order methods; each costs $O(n^3 + mn^2)$, so the method is for small dense
problems (QP layers, batches under ``jax.vmap``), where `admm_qp` needs hundreds of iterations.

**Stopping** (every iteration, on the user's data: no scaling), with $y = z_u - z_l$: the tests
of `admm_qp` with ``eps_rel`` on the magnitudes of the terms, primal
$\lVert Ax - \Pi_{[l,u]}(Ax)\rVert_\infty$, dual $\lVert Px + q + A^\top y\rVert_\infty$ and gap
$|x^\top Px + q^\top x + u^\top y^+ + l^\top y^-|$ (and the interior point's own gap
$s_u^\top z_u + s_l^\top z_l$, which the implicit gradients need small), each at most
``eps_abs + eps_rel * (its largest term)``. So ``optimal`` holds on the user's data by
construction. The method has no infeasibility certificates: an infeasible or unbounded problem
ends ``max_iter``, or ``numerical_error`` once the Newton system breaks down.

**Gradients** (``jax.grad`` through a traced solve; `cvxkit.solvers.implicit.root_vjp`): the
implicit function theorem on the conditions above with $s\circ z = s^\star\circ z^\star$ held
fixed (OptNet's gradients). For a loss of $x$ alone the transposed Jacobian system reduces to
$M w_x = -\bar x$ with the last $M$, then $\bar q = w_x$ and $\bar l$, $\bar u$, $\bar A$,
$\bar P$ from $w_x$ and $(z/s)\circ(Aw_x)$. Near the solution $z/s$ reaches $10^{12}$ and more
on active bounds, and $M$ is then too ill-conditioned for this solve; `_transposed_solve`
solves the same system in a form of size n + m that stays well conditioned (and also takes
cotangents on the duals).
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from cvxkit.solvers import kkt, validate
from cvxkit.solvers.admm_qp import validate_qp
from cvxkit.solvers.admm_traced import traced_qp
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, finish, run, traced_result, while_solve
from cvxkit.solvers.implicit import is_traced, root_vjp
from cvxkit.solvers.primal_dual import warm_parts
from cvxkit.solvers.result import Result, Status

METHOD = "ipm"
#: fraction of the distance to the boundary that a step goes
STEP_FRACTION = 0.99
#: ridge of the reduced matrix, relative to 1 + max diag(P)
RIDGE = 1e-13


class Data(NamedTuple):
    P: object
    q: object
    A: object
    u: object  # finite bounds, 0 where infinite
    l: object
    fu: object  # masks of the finite bounds
    fl: object
    p: object  # number of finite bounds (at least 1)
    ridge: object
    eps_abs: object
    eps_rel: object


class State(NamedTuple):
    x: object
    su: object
    sl: object
    zu: object
    zl: object
    ok: object  # False once the Newton system broke down (the last finite iterate is kept)


def _factor(bk: Backend, M):
    """The Cholesky factor of ``M`` (`cvxkit.solvers.kkt`); NaN where ``M`` is not positive
    definite (numpy raises there, JAX returns NaN), so that every solve with it is NaN."""
    try:
        return kkt.cholesky(bk, M)
    except np.linalg.LinAlgError:
        return np.full_like(M, np.nan)


def _ridge(xp, P):
    """The ridge of the reduced matrix: ``RIDGE (1 + max |diag P|)``."""
    return RIDGE * (1.0 + xp.max(xp.abs(xp.diagonal(P)), initial=0.0))


def _reduced(bk: Backend, d: Data, s: State):
    r"""The reduced Newton matrix $P + A^\top\mathrm{diag}(z_u/s_u + z_l/s_l)A$ + ridge."""
    xp = bk.xp
    w = xp.where(d.fu, s.zu / s.su, 0.0) + xp.where(d.fl, s.zl / s.sl, 0.0)
    return d.P + d.A.T @ (w[:, None] * d.A) + d.ridge * xp.eye(d.q.shape[0], dtype=d.q.dtype)


def _newton(bk: Backend, d: Data, s: State, L, rd, rpu, rpl, rcu, rcl):
    """The Newton step ``(dx, dsu, dsl, dzu, dzl)`` for the residuals ``rd`` (dual), ``rp``
    (primal) and ``rc`` (complementarity) of the module docstring, with ``L`` the Cholesky
    factor of the reduced matrix (one factorization serves both solves of an iteration)."""
    xp = bk.xp
    tu = (-rcu + s.zu * rpu) / s.su
    tl = (-rcl + s.zl * rpl) / s.sl
    dx = kkt.cho_solve(bk, L, -rd - d.A.T @ xp.where(d.fu, tu, 0.0)
                       + d.A.T @ xp.where(d.fl, tl, 0.0))
    Adx = d.A @ dx
    dsu = xp.where(d.fu, -rpu - Adx, 0.0)
    dsl = xp.where(d.fl, -rpl + Adx, 0.0)
    dzu = xp.where(d.fu, (-rcu - s.zu * dsu) / s.su, 0.0)
    dzl = xp.where(d.fl, (-rcl - s.zl * dsl) / s.sl, 0.0)
    return dx, dsu, dsl, dzu, dzl


def _max_step(xp, v, dv):
    """The largest ``a <= 1`` with ``v + a dv >= 0`` (``v > 0``)."""
    neg = dv < 0
    return xp.minimum(1.0, xp.min(xp.where(neg, -v / xp.where(neg, dv, -1.0), xp.inf), initial=xp.inf))


def _step_length(xp, s: State, dsu, dsl, dzu, dzl):
    """The largest step ``<= 1`` that keeps the slacks and multipliers nonnegative."""
    return xp.minimum(xp.minimum(_max_step(xp, s.su, dsu), _max_step(xp, s.sl, dsl)),
                      xp.minimum(_max_step(xp, s.zu, dzu), _max_step(xp, s.zl, dzl)))


def _step(bk: Backend, s: State, d: Data) -> State:
    """One predictor-corrector iteration; a non-finite result keeps ``s`` and clears ``ok``."""
    xp = bk.xp
    Ax = d.A @ s.x
    rd = d.P @ s.x + d.q + d.A.T @ (s.zu - s.zl)
    rpu = xp.where(d.fu, Ax + s.su - d.u, 0.0)
    rpl = xp.where(d.fl, -Ax + s.sl + d.l, 0.0)
    cu, cl = xp.where(d.fu, s.su * s.zu, 0.0), xp.where(d.fl, s.sl * s.zl, 0.0)
    mu = (xp.sum(cu) + xp.sum(cl)) / d.p
    L = _factor(bk, _reduced(bk, d, s))
    dx, dsu, dsl, dzu, dzl = _newton(bk, d, s, L, rd, rpu, rpl, cu, cl)
    a = _step_length(xp, s, dsu, dsl, dzu, dzl)
    mu_aff = (xp.sum(xp.where(d.fu, (s.su + a * dsu) * (s.zu + a * dzu), 0.0))
              + xp.sum(xp.where(d.fl, (s.sl + a * dsl) * (s.zl + a * dzl), 0.0))) / d.p
    sigma = xp.clip(mu_aff / xp.where(mu > 0, mu, 1.0), 0.0, 1.0) ** 3
    rcu = xp.where(d.fu, cu + dsu * dzu - sigma * mu, 0.0)
    rcl = xp.where(d.fl, cl + dsl * dzl - sigma * mu, 0.0)
    dx, dsu, dsl, dzu, dzl = _newton(bk, d, s, L, rd, rpu, rpl, rcu, rcl)
    a = STEP_FRACTION * _step_length(xp, s, dsu, dsl, dzu, dzl)
    new = State(s.x + a * dx, s.su + a * dsu, s.sl + a * dsl, s.zu + a * dzu, s.zl + a * dzl,
                s.ok)
    ok = xp.isfinite(a) & xp.all(xp.isfinite(new.x)) & xp.all(new.su > 0) & xp.all(new.sl > 0) \
        & xp.all(xp.isfinite(new.zu)) & xp.all(xp.isfinite(new.zl))
    keep = [xp.where(ok, n_, o) for n_, o in zip(new[:5], s[:5])]
    return State(*keep, s.ok & ok)


def _tests(bk: Backend, s: State, d: Data):
    """``(prim, dual, gap)`` residuals and their thresholds ``eps_abs + eps_rel * terms``."""
    xp = bk.xp
    y = s.zu - s.zl
    Ax, Px, Aty = d.A @ s.x, d.P @ s.x, d.A.T @ y
    lo = xp.where(d.fl, d.l, -xp.inf)
    hi = xp.where(d.fu, d.u, xp.inf)
    z = xp.clip(Ax, lo, hi)

    def inf(v):
        return xp.max(xp.abs(v), initial=0.0)

    sig = d.u @ xp.maximum(y, 0.0) + d.l @ xp.minimum(y, 0.0)
    xPx, qx = s.x @ Px, d.q @ s.x
    # the interior point's own gap s'z too: (x, y) can pass the three tests far from the
    # central path (q = 0 at the start: z_u = z_l = 1), where its implicit gradient is wrong
    comp = xp.sum(xp.where(d.fu, s.su * s.zu, 0.0)) + xp.sum(xp.where(d.fl, s.sl * s.zl, 0.0))
    res = (inf(Ax - z), inf(Px + d.q + Aty), xp.maximum(xp.abs(xPx + qx + sig), comp))
    mag = (xp.maximum(inf(Ax), inf(z)), xp.maximum(xp.maximum(inf(Px), inf(Aty)), inf(d.q)),
           xp.maximum(xp.maximum(xp.abs(xPx), xp.abs(qx)), xp.abs(sig)))
    return res, tuple(d.eps_abs + d.eps_rel * m for m in mag)


def _met(res, eps):
    """All three tests of `_tests` hold."""
    return (res[0] <= eps[0]) & (res[1] <= eps[1]) & (res[2] <= eps[2])


def _monitor(bk, s: State, d: Data):
    (prim, dual, gap), _ = _tests(bk, s, d)
    return {"objective": 0.5 * s.x @ (d.P @ s.x) + d.q @ s.x, "prim_res": prim, "dual_res": dual,
            "gap": gap}


def _converged(bk, s: State, d: Data):
    return _met(*_tests(bk, s, d)) | ~s.ok


ALGORITHM = Algorithm(METHOD, _step, _monitor, _converged)


def _setup(bk: Backend, P, q, A, l, u, x0, z0, eps_abs, eps_rel):
    """Data and the first state: ``x0``, slacks ``max(distance to the bound, 1)``,
    multipliers ``1`` (plus the part of the sign of each bound of a warm ``y`` ``z0``)."""
    xp = bk.xp
    fu, fl = xp.isfinite(u), xp.isfinite(l)
    u0, l0 = xp.where(fu, u, 0.0), xp.where(fl, l, 0.0)
    ridge = _ridge(xp, P)
    p = xp.maximum(xp.sum(fu) + xp.sum(fl), 1)
    d = Data(P, q, A, u0, l0, fu, fl, p, ridge, eps_abs, eps_rel)
    Ax = A @ x0
    one = xp.ones_like(u0)
    su = xp.where(fu, xp.maximum(u0 - Ax, 1.0), 1.0)
    sl = xp.where(fl, xp.maximum(Ax - l0, 1.0), 1.0)
    zu = xp.where(fu, xp.maximum(z0, 0.0) + 1.0 if z0 is not None else one, 0.0)
    zl = xp.where(fl, xp.maximum(-z0, 0.0) + 1.0 if z0 is not None else one, 0.0)
    return d, State(x0, su, sl, zu, zl, xp.asarray(True))


def _warm(warm_start, n, m):
    """``(x0, y0, state)``: a warm start from a `Result` of this method (its final iterate,
    ``info['state']``), a dict with ``x`` (and ``y``) or a pair ``(x, y)``."""
    if isinstance(warm_start, Result) and isinstance((warm_start.info or {}).get("state"), tuple):
        return None, None, tuple(np.asarray(v, np.float64) for v in warm_start.info["state"])
    parts = warm_parts(warm_start, "warm_start must be a Result of ipm_qp, a dict with 'x' and "
                                   "optionally 'y', or a pair (x, y)")
    if parts is None:
        return None, None, None
    x0 = None if parts["x"] is None else validate.float_array("warm_start x", parts["x"], ndim=1)
    y0 = None if parts["y"] is None else validate.float_array("warm_start y", parts["y"], ndim=1)
    if (x0 is not None and x0.shape != (n,)) or (y0 is not None and y0.shape != (m,)):
        raise ValueError(f"warm_start must have x of shape ({n},) and y of shape ({m},)")
    return x0, y0, None


def ipm_qp(P, q, A=None, l=None, u=None, *, backend="numpy", tol=1e-8, eps_abs=None,
           eps_rel=None, max_iter=100, time_limit=math.inf, verbose=False, progress=None,
           callback=None, check_every=1, seed=0, warm_start=None, dtype="float64") -> Result:
    r"""Solve $\min \tfrac12 x^\top Px + q^\top x$ s.t. $l \le Ax \le u$ by Mehrotra's
    predictor-corrector interior point method (module docstring); dense, for small problems.

    Inside ``jax.jit``, ``jax.vmap`` or ``jax.grad`` (any of ``P, q, A, l, u`` a JAX tracer) the
    solve is one pure JAX function and ``jax.grad`` flows to every input (module docstring).

    Args:
        P: (n, n) symmetric positive semidefinite (dense; scipy.sparse is densified).
        q: (n,).
        A: (m, n), or ``None`` (no constraints).
        l, u: (m,) bounds, ``-inf``/``+inf`` (or magnitude ``>= 1e20``) where absent; ``None``
            for all absent.
        backend: ``"numpy"`` or ``"jax"`` (one jitted loop; traced inputs always use JAX).
        tol: ``eps_abs = eps_rel = tol`` unless those are given.
        eps_abs, eps_rel: the tolerances of the stopping tests (module docstring), in the
            units of the data.
        max_iter: iterations (each one Cholesky factorization of an n x n matrix).
        warm_start: a `Result` of ``ipm_qp`` (its final iterate), a dict with ``x`` and
            optionally ``y``, or a pair ``(x, y)``.
        time_limit, verbose, progress, callback, check_every, seed, dtype: the common options
            (`cvxkit.solvers.driver.Options`; ``seed`` is unused).

    Returns:
        `Result` with ``x`` (n,), ``dual`` $y = z_u - z_l$ (m,) ($Px + q + A^\top y = 0$ at a
        solution, $y_i > 0$ on an active upper bound), ``objective``, ``primal_residual`` and
        ``dual_residual`` (infinity norms, the user's units), ``history`` (``objective``,
        ``prim_res``, ``dual_res``, ``gap`` per check), ``info`` with ``y``, ``gap`` and
        ``state`` (the final iterate, for warm starts).
    """
    if is_traced(P, q, A, l, u):
        return _traced(P, q, A, l, u, tol=tol, eps_abs=eps_abs, eps_rel=eps_rel,
                       max_iter=max_iter)
    t0 = time.perf_counter()
    P, q, A, l, u, batch = validate_qp(P, q, A, l, u)
    if batch is not None:
        raise ValueError("ipm_qp solves one problem; for a batch use jax.vmap over ipm_qp")
    P = P.toarray() if hasattr(P, "toarray") else np.asarray(P)
    A = A.toarray() if hasattr(A, "toarray") else np.asarray(A)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                   progress=progress)
    e_abs = float(opts.tol) if eps_abs is None else validate.nonnegative("eps_abs", eps_abs)
    e_rel = float(opts.tol) if eps_rel is None else validate.nonnegative("eps_rel", eps_rel)
    n, m = q.size, A.shape[0]
    x0, y0, state = _warm(warm_start, n, m)
    bk = get_backend(backend, dtype)
    with bk.precision():
        args = [bk.asarray(v) for v in (P, q, A, l, u)]
        x0 = bk.xp.zeros(n, dtype=args[1].dtype) if x0 is None else bk.asarray(x0)
        d, s0 = _setup(bk, *args, x0, None if y0 is None else bk.asarray(y0),
                       bk.asarray(e_abs), bk.asarray(e_rel))
        if state is not None:
            s0 = State(*(bk.asarray(v) for v in state), bk.xp.asarray(True))
        setup_time = time.perf_counter() - t0
        with np.errstate(all="ignore"):  # a breakdown is detected and reported (``ok``)
            out = run(ALGORITHM, bk, s0, d, opts)
    s = out.state
    x, su, sl, zu, zl = (np.asarray(bk.to_numpy(v), np.float64) for v in s[:5])
    y = zu - zl
    # the tests once more, in float64 on the user's data
    host = get_backend("numpy")
    res, eps = _tests(host, State(x, su, sl, zu, zl, True),
                      _setup(host, P, q, A, l, u, x, None, e_abs, e_rel)[0])
    status, message = None, ""
    if not bool(s.ok):
        status = Status.NUMERICAL_ERROR
        message = ("the Newton system broke down (a non-finite step); the problem may be "
                   "infeasible, unbounded or too badly scaled for an interior point method")
    elif out.status is Status.OPTIMAL and not _met(res, eps):
        status = Status.OPTIMAL_INACCURATE
        message = (f"the tests recomputed in float64 miss the tolerances (primal {res[0]:.2e}, "
                   f"dual {res[1]:.2e}, gap {res[2]:.2e}): the {dtype} iterations cannot reach them")
    final = Final(x=x, objective=float(0.5 * x @ P @ x + q @ x), dual=y, primal_residual=res[0],
                  dual_residual=res[1], status=status, message=message,
                  info={"y": y, "gap": res[2], "state": (x, su, sl, zu, zl)})
    return finish(final, method=METHOD, backend=bk.name, run=out, setup_time=setup_time)


def _optimality(z, theta):
    """The conditions of the module docstring with ``s o z`` fixed at the solution's."""
    import jax

    (x, su, sl, zu, zl), (P, q, A, l, u) = z, theta
    fu, fl = jax.numpy.isfinite(u), jax.numpy.isfinite(l)
    cu, cl = jax.lax.stop_gradient(su * zu), jax.lax.stop_gradient(sl * zl)
    Ax = A @ x
    return (P @ x + q + A.T @ (zu - zl),
            jax.numpy.where(fu, Ax + su - jax.numpy.where(fu, u, 0.0), su - 1.0),
            jax.numpy.where(fl, -Ax + sl + jax.numpy.where(fl, l, 0.0), sl - 1.0),
            jax.numpy.where(fu, su * zu - cu, zu), jax.numpy.where(fl, sl * zl - cl, zl))


def _transposed_solve(z, theta, rhs):
    r"""$(\partial_z F)^\top w = $ ``rhs`` for `_optimality` (module docstring, "Gradients").

    Per finite bound the transposed system has two rows, $A_i w_x + s_i w_{c,i} = r_{z,i}$ and
    $w_{p,i} + z_i w_{c,i} = r_{s,i}$; eliminating $w_{c,i}$ gives
    $\tfrac{z_i}{s_i} A_i w_x - w_{p,i} = c_i := \tfrac{z_i}{s_i} r_{z,i} - r_{s,i}$ (lower
    bounds with $-A_i$). Only $v = w_{p,u} - w_{p,l}$ enters the rows of $x$, and
    $v = W A w_x - (c_u - c_l)$ with the barrier weight $W = z_u/s_u + z_l/s_l$. Divided by
    $1 + W$, each constraint row reads $\theta A_i w_x - (1 - \theta) v_i = \ldots$ with
    $\theta = W/(1 + W)$: it tends to $A_i w_x = r_{z,i}$ on an active bound and to
    $v_i = -c_i$ on an inactive one, well conditioned at any accuracy (the reduced matrix
    $P + A^\top W A$ is not, once $W$ reaches $10^{12}$). One LU solve of size n + m."""
    import jax.numpy as jnp

    (x, su, sl, zu, zl), (P, q, A, l, u) = z, theta
    fu, fl = jnp.isfinite(u), jnp.isfinite(l)
    rx, rsu, rsl, rzu, rzl = rhs
    n, m = x.shape[0], su.shape[0]
    # 0 on infinite bounds (z = 0, s = 1: their rows give w_p = r_s, w_c = r_z -/+ A w_x)
    ru, rl = jnp.where(fu, zu / su, 0.0), jnp.where(fl, zl / sl, 0.0)
    W = ru + rl
    # c_u = (z_u/s_u) r_zu - r_su and c_l = (z_l/s_l) r_zl - r_sl (w_p,l = -(z_l/s_l) A w_x - c_l)
    cu = jnp.where(fu, ru * rzu - rsu, 0.0)
    cl = jnp.where(fl, rl * rzl - rsl, 0.0)
    theta_ = W / (1.0 + W)
    ridge = _ridge(jnp, P)
    K = jnp.block([[P + ridge * jnp.eye(n, dtype=x.dtype), A.T],
                   [theta_[:, None] * A, -jnp.diag(1.0 - theta_)]])
    sol = jnp.linalg.solve(K, jnp.concatenate([rx, (cu - cl) / (1.0 + W)]))
    wx, v = sol[:n], sol[n:]
    Awx = A @ wx
    # w_p of each bound: from its own row where its weight is the smaller one, else from v
    wpu_own = jnp.where(fu, ru * Awx - cu, rsu)
    wpl_own = jnp.where(fl, -rl * Awx - cl, rsl)
    upper_own = ru <= rl
    wpu = jnp.where(upper_own, wpu_own, jnp.where(fu, v + jnp.where(fl, wpl_own, 0.0), rsu))
    wpl = jnp.where(upper_own, jnp.where(fl, jnp.where(fu, wpu_own, 0.0) - v, rsl), wpl_own)
    # the multipliers of the complementarity rows, from the better conditioned of the two rows
    wcu = jnp.where(zu > su, (rsu - wpu) / jnp.where(zu > su, zu, 1.0), (rzu - Awx) / su)
    wcl = jnp.where(zl > sl, (rsl - wpl) / jnp.where(zl > sl, zl, 1.0), (rzl + Awx) / sl)
    return wx, wpu, wpl, wcu, wcl


def _traced(P, q, A, l, u, *, tol, eps_abs, eps_rel, max_iter):
    """`ipm_qp` on traced data: one pure JAX function, differentiable (module docstring)."""
    import jax.numpy as jnp

    P, q, A, l, u = traced_qp(P, q, A, l, u)
    dt = q.dtype
    bk = get_backend("jax", "float64" if dt == jnp.float64 else "float32")
    n = q.shape[0]
    e_abs = jnp.asarray(tol if eps_abs is None else eps_abs, dt)
    e_rel = jnp.asarray(tol if eps_rel is None else eps_rel, dt)

    def solver(theta):
        d, s0 = _setup(bk, *theta, jnp.zeros(n, dt), None, e_abs, e_rel)
        s, k = while_solve(ALGORITHM, bk, s0, d, int(max_iter))
        res, eps = _tests(bk, s, d)
        return tuple(s[:5]), (k, s.ok, res, eps)

    z, (k, ok, res, eps) = root_vjp(solver, _optimality, transposed_solve=_transposed_solve)(
        (P, q, A, l, u))
    x = z[0]
    status = jnp.where(~ok, Status.NUMERICAL_ERROR.code,
                       jnp.where(_met(res, eps), Status.OPTIMAL.code, Status.MAX_ITER.code))
    y = z[3] - z[4]
    return traced_result(x=x, status=status, objective=0.5 * x @ (P @ x) + q @ x, dual=y,
                         primal_residual=res[0], dual_residual=res[1], iterations=k,
                         info={"y": y, "gap": res[2]}, method=METHOD)
