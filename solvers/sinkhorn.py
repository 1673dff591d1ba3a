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

Stopping rule: ``||P 1 - a||_1 + ||P^T 1 - b||_1 <= tol`` at the target ``eps`` (after each
iteration the columns are exact, so this is the row error, computed for free).
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Options, run, while_solve
from cvxkit.solvers.result import Result, Status, as_numpy_history
from cvxkit.solvers.validate import float_array


def validate_marginals(a, b, C=None, *, mass_rtol: float = 1e-8):
    """Check histograms ``a`` (n,), ``b`` (m,) and cost ``C`` (n, m); return float64 arrays.

    Raises ``ValueError`` for wrong shapes, non-finite or negative entries, zero total mass,
    or totals that differ (the message names both sums).
    """
    a = finite_array("a", a, 1)
    b = finite_array("b", b, 1)
    for name, h in (("a", a), ("b", b)):
        if h.size == 0:
            raise ValueError(f"{name} is empty")
        if (h < 0).any():
            raise ValueError(f"{name} has negative entries (min {h.min():.3g}); histograms must be >= 0")
    sa, sb = a.sum(), b.sum()
    if sa <= 0 or sb <= 0:
        raise ValueError(f"a and b must have positive total mass, got sum(a)={sa:.6g}, sum(b)={sb:.6g}")
    if abs(sa - sb) > mass_rtol * max(sa, sb):
        raise ValueError(
            f"a and b must have the same total mass: sum(a)={sa:.12g}, sum(b)={sb:.12g}"
        )
    if C is None:
        return a, b
    C = finite_array("C", C, 2)
    if C.shape != (a.size, b.size):
        raise ValueError(f"C must have shape (len(a), len(b)) = {(a.size, b.size)}, got {C.shape}")
    return a, b, C


def positive_number(name: str, value) -> float:
    """``value`` as a float, else ``ValueError`` unless it is a positive finite real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def validate_reg(reg) -> float:
    """The entropic regularization as a float (`positive_number`)."""
    return positive_number("reg", reg)


def marginal_error(P, a, b, xp=np):
    """L1 marginal error ``||P 1 - a||_1 + ||P^T 1 - b||_1`` (any array namespace ``xp``)."""
    return xp.sum(xp.abs(xp.sum(P, axis=1) - a)) + xp.sum(xp.abs(xp.sum(P, axis=0) - b))


def finite_array(name, x, ndim):
    """``x`` as a float64 array with ``ndim`` dimensions and finite entries, else ``ValueError``."""
    return float_array(name, x, ndim=ndim, finite=True)


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


class State(NamedTuple):
    f: object  # absorbed potentials, (n,)
    g: object  # (m,)
    u: object  # kernel scalings, (n,)
    v: object  # (m,)
    K: object  # exp((f + g - C) / eps), (n, m)
    Kv: object  # K @ v, (n,)
    err: object  # L1 marginal error of the current plan
    eps: object  # current epsilon of the scaling schedule


def _log_iteration(bk: Backend, f, g, eps, d: Data):
    """One exact log-domain Sinkhorn iteration (rows, then columns) at ``eps``."""
    f = eps * d.log_a - eps * bk.logsumexp((g[None, :] - d.C) / eps, axis=1)
    g = eps * d.log_b - eps * bk.logsumexp((f[:, None] - d.C) / eps, axis=0)
    return f, g


def _rebuild(bk: Backend, f, g, eps, d: Data, log_step=True) -> State:
    """A fresh stabilized kernel with unit scalings, after a log-domain iteration if ``log_step``."""
    xp = bk.xp
    f, g = bk.cond(log_step, lambda f, g: _log_iteration(bk, f, g, eps, d), lambda f, g: (f, g), f, g)
    K = xp.exp((f[:, None] + g[None, :] - d.C) / eps)
    Kv = xp.sum(K, axis=1)
    err = xp.sum(xp.abs(Kv - d.a))
    return State(f, g, xp.ones_like(f), xp.ones_like(g), K, Kv, err, eps)


def _step(bk: Backend, s: State, d: Data) -> State:
    xp = bk.xp
    u = d.a / s.Kv
    v = d.b / (u @ s.K)  # u @ K, not K.T @ u: XLA on CPU copies the transpose
    Kv = s.K @ v
    err = xp.sum(xp.abs(u * Kv - d.a))
    lo = 1.0 / d.big
    bad = ~(
        xp.all(Kv > 0) & xp.all(xp.isfinite(v)) & xp.isfinite(err)
        & (xp.max(u) < d.big) & (xp.min(u) > lo) & (xp.max(v) < d.big) & (xp.min(v) > lo)
    )
    advance = (err <= d.stage_tol) & (s.eps > d.eps_target)

    def rebuild(s):
        eps = xp.where(advance, xp.maximum(s.eps * d.eps_decay, d.eps_target), s.eps)
        # a new stage from valid scalings needs no log-domain iteration; a failure does
        return _rebuild(bk, s.f + s.eps * xp.log(s.u), s.g + s.eps * xp.log(s.v), eps, d, bad)

    def keep(s):
        return State(s.f, s.g, u, v, s.K, Kv, err, s.eps)

    return bk.cond(bad | advance, rebuild, keep, s)


def _monitor(bk, s: State, d: Data):
    return {"marginal_err": s.err, "eps": s.eps}


def _converged(bk, s: State, d: Data):
    return (s.err <= d.tol) & (s.eps <= d.eps_target)


ALGORITHM = Algorithm("sinkhorn", _step, _monitor, _converged)


def _setup(bk: Backend, a, b, C, reg, tol, eps_init, eps_decay, stage_tol, warm):
    mass = float(np.sum(a))
    spread = float(np.max(C) - np.min(C))
    if eps_init is None:
        eps_init = max(reg, spread)
    eps0 = reg if warm is not None else max(float(eps_init), reg)
    big = 1e100 if bk.dtype == "float64" else 1e15
    st = max(tol, stage_tol * mass)
    d = Data(*(bk.asarray(x) for x in (a, b, C, np.log(a), np.log(b))),
             *(bk.asarray(x) for x in (reg, eps_decay, st, tol, big)))
    if warm is None:
        f0, g0 = bk.xp.zeros_like(d.a), bk.xp.zeros_like(d.b)
    else:
        f0, g0 = bk.asarray(warm[0]), bk.asarray(warm[1])
    return d, bk.jit(_rebuild, static_argnums=(0, 5))(bk, f0, g0, bk.asarray(eps0), d, False)


def _warm_potentials(warm_start, n, m):
    """Accept a previous Result (its ``info['f']``, ``info['g']``) or a pair ``(f, g)``."""
    if warm_start is None:
        return None
    if isinstance(warm_start, Result):
        warm_start = (warm_start.info["f"], warm_start.info["g"])
    f, g = (np.asarray(w, dtype=np.float64) for w in warm_start)
    if f.shape != (n,) or g.shape != (m,):
        raise ValueError(f"warm_start potentials must have shapes ({n},), ({m},); got {f.shape}, {g.shape}")
    return f, g


def sinkhorn(a, b, C, reg, *, backend="numpy", tol=1e-9, max_iter=100_000, time_limit=math.inf,
             verbose=False, callback=None, check_every=None, seed=0, warm_start=None,
             dtype="float64", eps_init=None, eps_decay=0.5, stage_tol=1e-2) -> Result:
    """Solve entropic OT between histograms ``a`` (n,) and ``b`` (m,) with cost ``C`` (n, m).

    Args:
        a, b: nonnegative weights with equal totals (zero entries are allowed).
        C: cost matrix, same units as ``reg``.
        reg: entropic regularization ``eps > 0`` (units of ``C``).
        tol: stop when the L1 marginal error ``||P1-a||_1 + ||P^T 1-b||_1 <= tol``.
        eps_init: first ``eps`` of the scaling schedule (default: ``max(C) - min(C)``);
            set ``eps_init=reg`` to switch epsilon scaling off.
        eps_decay: factor in (0, 1) applied to ``eps`` at each stage.
        stage_tol: relative marginal error (times the total mass) that ends a stage.
        warm_start: a previous `Result` or a pair of potentials ``(f, g)``.
        Other options: see `cvxkit.solvers.driver`.

    Returns:
        `Result` with ``x`` the plan (n, m), ``objective`` the entropic objective
        ``<C,P> + reg*sum(P log P)``, ``primal_residual`` the L1 marginal error, and in ``info``:
        ``transport_cost`` ``<C,P>``, potentials ``f`` (n,), ``g`` (m,), ``dual_objective``
        ``<f,a> + <g,b>`` (equal to the primal objective at an exact solution).
    """
    t_setup = time.perf_counter()
    a, b, C = validate_marginals(a, b, C)
    reg = validate_reg(reg)
    if not 0 < eps_decay < 1:
        raise ValueError(f"eps_decay must lie in (0, 1), got {eps_decay!r}")
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype)
    warm = _warm_potentials(warm_start, a.size, b.size)
    # rows/columns of zero mass carry no plan entries: solve on the support, embed back
    rows, cols = a > 0, b > 0
    full = rows.all() and cols.all()
    if not full:
        C_s = C[np.ix_(rows, cols)]
        warm = None if warm is None else (warm[0][rows], warm[1][cols])
    bk = get_backend(backend, dtype)
    with bk.precision():
        d, state = _setup(bk, a[rows], b[cols], C if full else C_s, float(reg), tol,
                          eps_init, eps_decay, stage_tol, warm)
        setup_time = time.perf_counter() - t_setup
        out = run(ALGORITHM, bk, state, d, opts)
        s = out.state
        f = bk.to_numpy(s.f + s.eps * bk.xp.log(s.u))
        g = bk.to_numpy(s.g + s.eps * bk.xp.log(s.v))
        P = bk.to_numpy(s.u[:, None] * s.K * s.v[None, :])
    if not full:
        P_full = np.zeros((a.size, b.size))
        P_full[np.ix_(rows, cols)] = P
        P = P_full
        f = _embed(f, rows)
        g = _embed(g, cols)
    return _result(P, f, g, a, b, C, float(reg), out, setup_time, bk.name)


def _embed(x, mask):
    y = np.full(mask.shape, -np.inf)
    y[mask] = x
    return y


def _result(P, f, g, a, b, C, reg, out, setup_time, backend) -> Result:
    P = np.asarray(P, dtype=np.float64)
    err = float(marginal_error(P, a, b))
    cost = float(np.vdot(C, P))
    ent = float(np.sum(P * np.log(np.where(P > 0, P, 1.0))))
    status = out.status
    if not np.isfinite(P).all():
        status = Status.NUMERICAL_ERROR
    fin_f, fin_g = np.isfinite(f), np.isfinite(g)
    dual = float(np.dot(f[fin_f], a[fin_f]) + np.dot(g[fin_g], b[fin_g]))
    return Result(
        x=P, status=status, objective=cost + reg * ent, primal_residual=err,
        iterations=out.iterations, solve_time=out.solve_time, setup_time=setup_time,
        compile_time=out.compile_time, history=as_numpy_history(out.history), backend=backend,
        method="sinkhorn",
        info={"transport_cost": cost, "f": f, "g": g, "dual_objective": dual, "reg": reg},
    )


def sinkhorn_batch(a, b, C, reg, *, tol=1e-9, max_iter=100_000, dtype="float64",
                   eps_init=None, eps_decay=0.5, stage_tol=1e-2):
    """Solve a batch of entropic OT problems in one JAX call (``jax.vmap`` of one while loop).

    Args:
        a: (B, n), b: (B, m), C: (B, n, m) or (n, m) shared; reg: one float for all problems.
    Returns:
        ``(P, iterations, marginal_err)``: plans (B, n, m) and per-problem numpy arrays. All
        weights must be positive (no zero-mass rows or columns).
    """
    import jax

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    C = np.asarray(C, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have shapes (B, n) and (B, m); got {a.shape}, {b.shape}")
    if C.ndim == 2:
        C = np.broadcast_to(C, (a.shape[0],) + C.shape)
    for i in range(a.shape[0]):
        validate_marginals(a[i], b[i], C[i])
        if (a[i] <= 0).any() or (b[i] <= 0).any():
            raise ValueError("sinkhorn_batch needs strictly positive weights")
    bk = get_backend("jax", dtype)
    with bk.precision():
        def one(ai, bi, Ci):
            d, s = _setup(bk, ai, bi, Ci, float(reg), tol, eps_init, eps_decay, stage_tol, None)
            return d, s

        ds, ss = [], []
        for i in range(a.shape[0]):
            d_i, s_i = one(a[i], b[i], C[i])
            ds.append(d_i)
            ss.append(s_i)
        stack = lambda xs: jax.tree_util.tree_map(lambda *z: bk.xp.stack(z), *xs)  # noqa: E731
        d, s = stack(ds), stack(ss)
        solve = jax.jit(jax.vmap(lambda s, d: while_solve(ALGORITHM, bk, s, d, max_iter)))
        s, its = solve(s, d)
        P = s.u[:, :, None] * s.K * s.v[:, None, :]
        return np.asarray(P), np.asarray(its), np.asarray(s.err)
