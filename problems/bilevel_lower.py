r"""The lower level of a bilevel program (`cvxkit.problems.bilevel`): input checks, the checks
of the callables at the start, and its reference solutions.

$y^*(x) = \arg\min_{y \in Y}\{g(x, y): c(x, y) \le 0\}$ at a numeric $x$: the CVXPY model the
user gives (``lower_cvxpy``, solved by Clarabel at tolerance $10^{-9}$) or, with constraints and
no model, scipy's SLSQP with JAX derivatives.
"""
from __future__ import annotations

import numpy as np

from cvxkit.problems.base import _CVXPY_STATUS, _quiet_fd1, user_callables
from cvxkit.solvers.result import Status
from cvxkit.solvers.validate import float_array


def x64():
    """JAX in float64 (the precision of every evaluation here)."""
    from cvxkit.solvers.backend import get_backend

    return get_backend("jax").precision()


def vector(name, v, size=None):
    """``v`` as a 1-D float array (a scalar becomes one entry), of ``size`` entries if given."""
    v = float_array(name, v, copy=True)
    if v.ndim == 0:
        v = v.reshape(1)
    v = float_array(name, v, ndim=1, nonempty=True)
    if size is not None and v.size != size:
        raise ValueError(f"{name} must have {size} entries, got {v.size}")
    return v


def box(name, bounds, n):
    """``(lo, hi)`` arrays of shape (n,) from a pair of scalars or (n,) arrays (infinite
    allowed, NaN not); ``ValueError`` naming ``name`` otherwise."""
    if bounds is None:
        return np.full(n, -np.inf), np.full(n, np.inf)
    if isinstance(bounds, (str, bytes)) or not hasattr(bounds, "__len__") or len(bounds) != 2:
        raise ValueError(f"{name} must be a pair (lo, hi) of scalars or arrays of {n} entries")
    out = []
    for side, v in zip(("lo", "hi"), bounds):
        a = float_array(f"{name} {side}", v, copy=True).reshape(-1)
        if a.size == 1:
            a = np.full(n, a[0])
        if a.shape != (n,):
            raise ValueError(f"{name} {side} must be a scalar or have {n} entries, got "
                             f"{a.size}")
        out.append(a)
    lo, hi = out
    if np.isnan(lo).any() or np.isnan(hi).any() or (lo > hi).any():
        raise ValueError(f"{name}: need lo <= hi without NaN")
    if (lo == np.inf).any() or (hi == -np.inf).any():
        raise ValueError(f"{name}: lo = +inf or hi = -inf leaves no feasible point")
    return lo, hi


def check_callables(fns, x0, y0, y_lo, y_hi) -> tuple[int, bool]:
    """Evaluate the `BilevelFunctions` ``fns`` at ``(x0, y0)``: scalar, finite values and
    gradients, a 1-D finite ``constraints``, a ``lower_solution`` of shape (d,), a convex lower
    level (`check_convex`); ``ValueError`` otherwise. Returns ``(m, strongly convex)``."""
    import jax
    import jax.numpy as jnp

    d, m = y0.size, 0
    with x64(), user_callables("evaluating upper, lower or their gradients at (x0, y0) failed"):
        x, y = jnp.asarray(x0), jnp.asarray(y0)

        def probe(x, y):  # one compilation for every value and gradient
            return [(fn(x, y),) + jax.grad(fn, argnums=(0, 1))(x, y)
                    for fn in (fns.upper, fns.lower)]

        for nm, (v, gx, gy) in zip(("upper", "lower"), jax.jit(probe)(x, y)):
            if v.shape != ():
                raise ValueError(f"{nm}(x, y) must return a scalar, got shape {v.shape}")
            if not (jnp.isfinite(v) and jnp.isfinite(gx).all() and jnp.isfinite(gy).all()):
                raise ValueError(f"{nm} or its gradient is not finite at (x0, y0)")
        if fns.constraints is not None:
            c = jnp.asarray(fns.constraints(x, y))
            if c.ndim != 1:
                raise ValueError(f"lower_constraints(x, y) must return a 1-D array, got "
                                 f"shape {c.shape}")
            if not jnp.isfinite(c).all():
                raise ValueError("lower_constraints is not finite at (x0, y0)")
            m = int(c.size)
        if fns.lower_solution is not None:
            ys = jnp.asarray(fns.lower_solution(x))
            if ys.shape != (d,):
                raise ValueError(f"lower_solution(x) must have shape ({d},), got {ys.shape}")
            if not jnp.isfinite(ys).all():
                raise ValueError("lower_solution is not finite at x0")
        return m, check_convex(fns.lower, x, y, y_lo, y_hi)


def check_convex(lower, x, y, y_lo, y_hi) -> bool:
    """Curvature of ``lower`` in ``y`` at ``y`` and a random nearby point: all eigenvalues of
    the Hessian when $d \\le 200$, else $v^\\top H v$ along 32 random directions. ``ValueError``
    for a negative curvature; returns whether the lower level is strongly convex there."""
    import jax
    import jax.numpy as jnp

    d = y.size
    rng = np.random.default_rng(0)
    y2 = jnp.clip(y + jnp.asarray(rng.standard_normal(d)), y_lo, y_hi)
    gy = jax.grad(lower, argnums=1)
    if d <= 200:
        hess = jax.jit(jax.jacfwd(gy, argnums=1))
        curv = lambda yy: np.linalg.eigvalsh(  # noqa: E731
            0.5 * (np.asarray(hess(x, yy)) + np.asarray(hess(x, yy)).T))
    else:
        V = jnp.asarray(rng.standard_normal((32, d)) / np.sqrt(d))
        hvps = jax.jit(jax.vmap(lambda yy, v: jax.jvp(lambda t: gy(x, t), (yy,), (v,))[1],
                                (None, 0)))
        curv = lambda yy: np.sort(np.sum(np.asarray(hvps(yy, V)) * np.asarray(V), 1))  # noqa: E731
    worst = np.inf
    for yy in (y, y2):
        ev = curv(yy)
        if not np.isfinite(ev).all():
            raise ValueError("the Hessian of lower in y is not finite at (x0, y0)")
        scale = max(1.0, float(np.abs(ev).max()))
        if ev[0] < -1e-8 * scale:
            raise ValueError(f"the lower level is not convex in y: its Hessian has "
                             f"curvature {ev[0]:.3g} at x0 (bilevel methods here need a "
                             f"convex lower level)")
        worst = min(worst, ev[0] / scale)
    return bool(worst > 1e-10)


def slsqp(fns, x, y0, y_lo, y_hi) -> np.ndarray:
    """The constrained lower level at ``x`` by scipy's SLSQP from ``y0``, JAX derivatives."""
    import jax
    import jax.numpy as jnp
    from scipy.optimize import minimize

    with x64():
        g = jax.jit(lambda y: fns.lower(jnp.asarray(x), y))
        gg = jax.jit(jax.grad(lambda y: fns.lower(jnp.asarray(x), y)))
        c = jax.jit(lambda y: -fns.constraints(jnp.asarray(x), y))
        cj = jax.jit(jax.jacfwd(lambda y: -fns.constraints(jnp.asarray(x), y)))
        bounds = list(zip(np.where(np.isfinite(y_lo), y_lo, None),
                          np.where(np.isfinite(y_hi), y_hi, None)))
        r = minimize(lambda y: float(g(y)), y0, jac=lambda y: np.asarray(gg(y)),
                     method="SLSQP", bounds=bounds,
                     constraints=[{"type": "ineq", "fun": lambda y: np.asarray(c(y)),
                                   "jac": lambda y: np.asarray(cj(y))}],
                     options={"ftol": 1e-14, "maxiter": 2000})
    return np.asarray(r.x)


def cvxpy_model(lower_cvxpy, x, d, y_lo, y_hi):
    """``(cvxpy.Problem, y_var)``: the lower level at the numeric ``x`` from the user's
    ``lower_cvxpy(x, y_var) -> (objective, constraints)`` and the box $Y$."""
    import cvxpy as cp

    y = cp.Variable(d)
    obj, cons = lower_cvxpy(x, y)
    cons = list(cons)
    if np.isfinite(y_lo).any():
        idx = np.isfinite(y_lo)
        cons.append(y[np.flatnonzero(idx)] >= y_lo[idx])
    if np.isfinite(y_hi).any():
        idx = np.isfinite(y_hi)
        cons.append(y[np.flatnonzero(idx)] <= y_hi[idx])
    return cp.Problem(cp.Minimize(obj), cons), y


def cvxpy_solve(prob, y, opts: dict, retry: bool = True) -> tuple[np.ndarray, Status]:
    """``(y, status)`` of the CVXPY model ``prob`` solved with ``opts``; an
    ``optimal_inaccurate`` answer (exponential cones) is solved again at Clarabel's defaults when
    ``retry``."""
    import cvxpy as cp

    try:
        with _quiet_fd1(True):
            prob.solve(**opts)
    except cp.error.SolverError:
        return np.full(y.size, np.nan), Status.NUMERICAL_ERROR
    status = _CVXPY_STATUS.get(prob.status, Status.NUMERICAL_ERROR)
    if status is Status.OPTIMAL_INACCURATE and retry:  # exponential cones: Clarabel's defaults
        with _quiet_fd1(True):
            prob.solve(solver="CLARABEL")
        status = _CVXPY_STATUS.get(prob.status, Status.NUMERICAL_ERROR)
    yv = np.full(y.size, np.nan) if y.value is None else np.asarray(y.value)
    return yv, status
