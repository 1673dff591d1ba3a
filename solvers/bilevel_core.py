r"""Pieces shared by the bilevel solvers: the oracle, the lower-level solver, conjugate gradient,
the outer projected-gradient step and the run/result glue.

A bilevel program, in the notation of every cvxkit bilevel method:

$$
\min_{x \in X} F(x) := f(x, y^*(x)), \qquad y^*(x) = \arg\min_{y \in Y} g(x, y),
$$

with $f$ the upper level, $g$ the lower level (convex in $y$), $X$ and $Y$ boxes. The three
methods (`cvxkit.solvers.implicit_diff`, `cvxkit.solvers.bilevel_penalty`,
`cvxkit.solvers.lv_hba`) take a `BilevelFunctions` of JAX callables and the boxes as arrays.

* `lower_solve`: accelerated projected gradient (FISTA, Beck & Teboulle 2009) with backtracking
  on the step and the function-value restart of O'Donoghue & Candès (2015), stopped when the
  gradient mapping $\|y - P_Y(y - \nabla_y g)\|_2 \le$ ``tol``.
* `cg_solve`: conjugate gradient on $M H M + (I - M)$ (a Hessian $H$ restricted by a 0/1 mask
  $M$, as a matrix-free operator), warm-started, relative tolerance; it flags non-positive
  curvature.
* `outer_step`: one projected gradient step $x^+ = P_X(x - s\,h)$ on a value oracle, with
  Barzilai–Borwein step lengths and Armijo backtracking (or a fixed step).

Everything is pure JAX and runs inside the shared driver (`cvxkit.solvers.driver`): ``"jax"``
fuses ``check_every`` outer steps in a ``lax.while_loop``, ``"numpy"`` drives the same jitted
step from a Python loop (history at every outer step).
"""
from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.driver import (
    Algorithm, Final, Options, compile_cache, finish as _finish, run, signature,
)
from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.validate import float_array


class BilevelFunctions(NamedTuple):
    r"""The callables of a bilevel program (JAX-traceable, float64 inside solves).

    ``upper(x, y) -> scalar`` ($f$), ``lower(x, y) -> scalar`` ($g$, convex in ``y``),
    ``lower_solution(x) -> y`` an optional closed form of $y^*(x)$, ``constraints(x, y) -> (m,)``
    optional lower-level constraints $c(x, y) \le 0$ (used by ``lv_hba`` only).
    """

    upper: Callable
    lower: Callable
    lower_solution: Callable | None = None
    constraints: Callable | None = None


class Boxes(NamedTuple):
    """Box bounds of ``x`` and ``y`` (entries may be infinite)."""

    x_lo: object
    x_hi: object
    y_lo: object
    y_hi: object


def _jax():
    import jax
    import jax.numpy as jnp

    return jax, jnp


def clip(v, lo, hi):
    """Projection onto the box ``[lo, hi]``."""
    _, jnp = _jax()
    return jnp.minimum(jnp.maximum(v, lo), hi)


# --------------------------------------------------------------------------------------
# lower level: accelerated projected gradient
# --------------------------------------------------------------------------------------
class LowerSolve(NamedTuple):
    y: object
    L: object  # last accepted Lipschitz estimate (warm start of the next solve)
    iterations: object  # gradient steps taken
    residual: object  # gradient-mapping norm at y


def lower_solve(obj: Callable, y0, lo, hi, L0, tol, max_iter) -> LowerSolve:
    r"""$\min_{y \in [lo, hi]}$ ``obj(y)`` by FISTA with backtracking and function restart.

    Stops when $\|y - P(y - \nabla\,\mathrm{obj}(y))\|_2 \le$ ``tol`` or after ``max_iter``
    steps. ``L0`` is the first Lipschitz estimate (halved at the start, doubled on failed
    sufficient-decrease tests). Pure JAX (``lax.while_loop``)."""
    jax, jnp = _jax()
    lax = jax.lax
    vg = jax.value_and_grad(obj)

    def resid(y, gy):
        return jnp.linalg.norm(y - clip(y - gy, lo, hi))

    f0, g0 = vg(y0)

    def cond(c):
        y, yp, t, L, it, fy, gy = c
        return (it < max_iter) & (resid(y, gy) > tol) & jnp.isfinite(fy)

    def body(c):
        y, yp, t, L, it, fy, gy = c
        t_new = 0.5 * (1 + jnp.sqrt(1 + 4 * t * t))
        w = y + ((t - 1) / t_new) * (y - yp)
        w = clip(w, lo, hi)
        fw, gw = vg(w)

        def bt_cond(b):
            L, yn, fn, k = b
            d = yn - w
            return (fn > fw + jnp.vdot(gw, d) + 0.5 * L * jnp.vdot(d, d)
                    + 1e-14 * jnp.abs(fw)) & (k < 60)

        def bt_body(b):
            L, _, _, k = b
            L = 2 * L
            yn = clip(w - gw / L, lo, hi)
            return L, yn, obj(yn), k + 1

        yn = clip(w - gw / L, lo, hi)
        L, yn, fn, _ = lax.while_loop(bt_cond, bt_body, (L, yn, obj(yn), 0))
        fn, gn = vg(yn)
        restart = fn > fy
        # function restart: drop the momentum (next extrapolation is zero)
        t_new = jnp.where(restart, 1.0, t_new)
        yp = jnp.where(restart, yn, y)
        return yn, yp, t_new, L, it + 1, fn, gn

    y, _, _, L, it, _, gy = lax.while_loop(
        cond, body, (y0, y0, jnp.asarray(1.0, y0.dtype), 0.5 * L0, 0, f0, g0))
    return LowerSolve(y, L, it, resid(y, gy))


# --------------------------------------------------------------------------------------
# conjugate gradient (matrix-free)
# --------------------------------------------------------------------------------------
class CGSolve(NamedTuple):
    v: object
    iterations: object
    residual: object  # ||A v - b|| / max(||b||, tiny)
    negative_curvature: object  # True when p^T A p <= 0 was met


def cg_solve(matvec: Callable, b, v0, rtol, max_iter) -> CGSolve:
    """Conjugate gradient for ``matvec(v) = b`` from ``v0`` (``matvec`` symmetric positive
    definite); stops at ``||r|| <= rtol ||b||``, ``max_iter`` steps or non-positive curvature."""
    jax, jnp = _jax()
    bnorm = jnp.maximum(jnp.linalg.norm(b), 1e-300)
    r0 = b - matvec(v0)

    def cond(c):
        v, r, p, rr, it, neg = c
        return (it < max_iter) & (jnp.sqrt(rr) > rtol * bnorm) & ~neg

    def body(c):
        v, r, p, rr, it, neg = c
        Ap = matvec(p)
        pAp = jnp.vdot(p, Ap)
        neg = pAp <= 1e-300 * jnp.maximum(jnp.vdot(p, p), 1e-300)
        a = jnp.where(neg, 0.0, rr / jnp.where(neg, 1.0, pAp))
        v = v + a * p
        r = r - a * Ap
        rr_new = jnp.vdot(r, r)
        p = r + (rr_new / jnp.maximum(rr, 1e-300)) * p
        return v, r, p, rr_new, it + 1, neg

    v, r, _, rr, it, neg = jax.lax.while_loop(
        cond, body, (v0, r0, r0, jnp.vdot(r0, r0), 0, jnp.asarray(False)))
    return CGSolve(v, it, jnp.sqrt(rr) / bnorm, neg)


def free_mask(y, gy, lo, hi):
    """1 where ``y_i`` is not held at a bound by the gradient, else 0 (the active set of the box)."""
    _, jnp = _jax()
    span = 1e-10 * (1 + jnp.abs(y))
    at_lo = (y <= lo + span) & (gy >= 0)
    at_hi = (y >= hi - span) & (gy <= 0)
    return jnp.where(at_lo | at_hi, 0.0, 1.0).astype(y.dtype)


def implicit_hypergradient(fns: BilevelFunctions, x, y, v0, lo, hi, rtol, max_iter):
    r"""$\nabla F(x) = \nabla_x f + (\partial_x F)^\top w$ by `cvxkit.solvers.implicit.adjoint`
    on the lower level's optimality map $F(y, x) = M\nabla_y g(x, My + (I - M)y^*) + (I - M)(y -
    y^*)$, $M$ the free set of the box $Y$ (active coordinates of $y^*$ do not move with $x$):
    $(M H M + I - M)\,w = -M\nabla_y f$, $H = \nabla^2_{yy} g(x, y)$, solved by CG (symmetric;
    Hessian-vector products by autodiff) warm-started from ``v0`` (the previous ``w``).

    Returns ``(hypergradient, CGSolve)`` (``CGSolve.v`` is ``w``)."""
    from cvxkit.solvers.implicit import adjoint

    jax, jnp = _jax()
    gy_lower = jax.grad(fns.lower, argnums=1)
    m = free_mask(y, gy_lower(x, y), lo, hi)
    y_fixed = jax.lax.stop_gradient(y)

    def optimality(yy, xx):
        return m * gy_lower(xx, m * yy + (1 - m) * y_fixed) + (1 - m) * (yy - y_fixed)

    def cg(matvec, rhs):
        s = cg_solve(matvec, rhs, m * v0, rtol, max_iter)
        return s.v, s

    gxf, gyf = jax.grad(fns.upper, argnums=(0, 1))(x, y)
    # only the free coordinates of y move with x: the adjoint of the others is 0
    (cross,), _, solve = adjoint(optimality, y, x, m * gyf, cg)
    return gxf + cross, solve


# --------------------------------------------------------------------------------------
# outer projected gradient step (BB step length, Armijo backtracking)
# --------------------------------------------------------------------------------------
class Outer(NamedTuple):
    x: object
    value: object  # the upper-level objective the method decreases, at x
    grad: object  # its gradient at x
    step: object  # next trial step length
    aux: object  # method-specific warm starts (pytree)
    counts: object  # int array: [lower solves, lower gradient steps, CG/HVP steps]
    failed: object  # int32 code: 0 fine, 1 non-positive curvature, 2 line search stalled


def outer_step(st: Outer, value_fn: Callable, grad_fn: Callable, x_lo, x_hi, fixed_step,
               max_backtracks: int = 30, precision: Callable | None = None,
               tol=None) -> Outer:
    r"""One projected gradient step on ``value_fn`` (see the module docstring).

    ``value_fn(x, aux) -> (value, aux, counts)`` evaluates the objective (solving what it needs
    warm-started from ``aux``); ``grad_fn(x, aux) -> (grad, aux, counts, failed)`` its gradient.
    Step: $x^+ = P_X(x - s h)$, accepted when
    $v(x^+) \le v(x) + 10^{-4} h^\top (x^+ - x)$ (Armijo), else $s \leftarrow s/2$. With
    ``fixed_step > 0`` the step is $s$ = ``fixed_step`` without a test. The next trial step is
    the Barzilai–Borwein length $\langle\Delta x, \Delta x\rangle / \langle\Delta x, \Delta h\rangle$
    (clipped to $[10^{-10}, 10^{10}]$; doubled when the curvature is not positive).

    ``precision(x, aux)``, when given, is the rounding-error floor of the gradient at ``x``; a
    new point whose projected gradient is at most ``tol`` while the floor exceeds ``tol`` gets
    the failure code 3 (stationarity cannot be certified at this precision: typically iterates
    that grew without bound)."""
    jax, jnp = _jax()
    lax = jax.lax
    fixed = fixed_step > 0
    s0 = jnp.where(fixed, fixed_step, st.step)

    def trial(s):
        xn = clip(st.x - s * st.grad, x_lo, x_hi)
        val, aux, cnt = value_fn(xn, st.aux)
        return xn, val, aux, cnt

    def accept(xn, val):
        dec = jnp.vdot(st.grad, xn - st.x)
        ok = val <= st.value + 1e-4 * dec + 1e-13 * jnp.abs(st.value)
        return fixed | (ok & jnp.isfinite(val))

    xn, val, aux, cnt = trial(s0)

    def bt_cond(c):
        s, xn, val, aux, cnt, k = c
        return ~accept(xn, val) & (k < max_backtracks)

    def bt_body(c):
        s, _, _, _, cnt, k = c
        s = 0.5 * s
        xn, val, aux, cnt2 = trial(s)
        return s, xn, val, aux, cnt + cnt2, k + 1

    s, xn, val, aux, cnt, k = lax.while_loop(bt_cond, bt_body, (s0, xn, val, aux, cnt, 0))
    stalled = ~accept(xn, val)
    g, aux, cnt_g, bad = grad_fn(xn, aux)
    code = jnp.where(bad, 1, jnp.where(stalled, 2, 0)).astype(jnp.int32)
    if precision is not None:
        lost = ((projected_gradient_norm(xn, g, x_lo, x_hi) <= tol)
                & (precision(xn, aux) > tol))
        code = jnp.where((code == 0) & lost, 3, code).astype(jnp.int32)
    bad_values = ~jnp.isfinite(val) | ~jnp.isfinite(g).all() | ~jnp.isfinite(xn).all()
    code = jnp.where((code == 0) & bad_values, 4, code).astype(jnp.int32)
    dx, dg = xn - st.x, g - st.grad
    curv = jnp.vdot(dx, dg)
    bb = jnp.where(curv > 0, jnp.vdot(dx, dx) / jnp.where(curv > 0, curv, 1.0), 2 * s)
    bb = jnp.clip(bb, 1e-10, 1e10)
    return Outer(xn, val, g, bb, aux, st.counts + cnt + cnt_g, jnp.maximum(st.failed, code))


def outer_parts(value_fn: Callable, grad_fn: Callable, lower_residual: Callable,
                extra: Callable | None = None, precision: Callable | None = None):
    """``(step, monitor, converged)`` of an outer loop of `outer_step` (driver signatures).

    ``value_fn(d)`` / ``grad_fn(d)`` build the oracles of `outer_step` from the data dict,
    ``lower_residual(state)`` is the last lower-level residual, ``extra(state)`` optional
    monitored values, ``precision(d)`` optional: builds the ``precision(x, aux)`` of
    `outer_step` (a rounding-error floor of the gradient; optimal also needs floor <= ``tol``). Monitored: ``objective`` (the value the loop decreases),
    ``stationarity`` (projected gradient norm), ``lower_residual``, ``lower_solves``.
    Converged: stationarity <= ``tol`` and lower residual <= ``lower_tol``, or a failure."""

    def step(bk, st, d):
        return outer_step(st, value_fn(d), grad_fn(d), d["x_lo"], d["x_hi"], d["fixed_step"],
                          precision=None if precision is None else precision(d), tol=d["tol"])

    def monitor(bk, st, d):
        out = {"objective": st.value,
               "stationarity": projected_gradient_norm(st.x, st.grad, d["x_lo"], d["x_hi"]),
               "lower_residual": lower_residual(st), "lower_solves": st.counts[0]}
        return {**out, **(extra(st) if extra is not None else {})}

    def converged(bk, st, d):
        _, jnp = _jax()
        pg = projected_gradient_norm(st.x, st.grad, d["x_lo"], d["x_hi"])
        ok = (pg <= d["tol"]) & (lower_residual(st) <= d["lower_tol"])
        if precision is not None:
            ok = ok & (precision(d)(st.x, st.aux) <= d["tol"])
        return ok | (st.failed > 0)

    return step, monitor, converged


def projected_gradient_norm(x, g, lo, hi):
    r"""$\|x - P_X(x - g)\|_2$: zero exactly at stationary points of the box-constrained problem."""
    _, jnp = _jax()
    return jnp.linalg.norm(x - clip(x - g, lo, hi))


# --------------------------------------------------------------------------------------
# run glue
# --------------------------------------------------------------------------------------
def aot(fn: Callable, *args, static=None):
    """``fn`` (with ``static`` bound as its first argument when given) compiled ahead of time
    for the shapes and dtypes of ``args``, cached in `cvxkit.solvers.driver.compile_cache`;
    returns ``(compiled, seconds spent compiling)`` (0 on a cache hit)."""
    import jax

    spent = [0.0]

    def build():
        t0 = time.perf_counter()
        jitted = jax.jit(fn) if static is None else jax.jit(fn, static_argnums=0)
        compiled = jitted.lower(*((static,) if static is not None else ()), *args).compile()
        spent[0] = time.perf_counter() - t0
        return compiled

    return compile_cache.get(("bilevel_core.aot", fn, static, *signature(jax, args)), build), \
        spent[0]


def method_functions(owner: str, make: Callable, fns: BilevelFunctions, x0, y0):
    """``make(fns)``, a method's pure JAX pieces for these callables, cached in
    `cvxkit.solvers.driver.compile_cache` next to the shapes and dtypes of ``x0``, ``y0``: the
    same callables reuse the same pieces, hence the compiled code keyed by them."""
    import jax

    key = (owner, fns, *signature(jax, (np.asarray(x0), np.asarray(y0))))
    return compile_cache.get(key, lambda: make(fns))


def drive(name: str, step: Callable, monitor: Callable, converged: Callable, state, data,
          backend: str, opts: Options):
    """Run ``step`` with the shared driver. ``"numpy"``: a Python loop over the jitted step;
    ``"jax"``: ``lax.while_loop`` over ``check_every`` steps. Returns ``driver.Run``; its
    ``compile_time`` includes the compilation of the numpy loop's step."""
    bk_jax = get_backend("jax", opts.dtype)
    if backend == "jax":
        alg = Algorithm(name, step, monitor, converged)
        return run(alg, bk_jax, state, data, opts)
    if backend != "numpy":
        raise ValueError(f"unknown backend {backend!r}; valid choices: numpy, jax")
    (jstep, t1), (jmon, t2), (jconv, t3) = (aot(f, state, data, static=bk_jax)
                                           for f in (step, monitor, converged))
    alg = Algorithm(name, lambda bk, s, d: jstep(s, d), lambda bk, s, d: jmon(s, d),
                    lambda bk, s, d: bool(jconv(s, d)))
    r = run(alg, get_backend("numpy"), state, data, opts)
    return r._replace(compile_time=t1 + t2 + t3)


FAILURES = {
    1: "non-positive curvature of the lower-level Hessian (lower level not strongly convex at y*)",
    2: "line search stalled: the objective cannot be decreased along the negative gradient, "
       "either at the precision of the lower solves (loosen tol or tighten lower_tol) or at a "
       "kink of F (where the active set of the lower level changes, e.g. the elastic net's "
       "support)",
    3: "precision lost: the projected gradient is below tol, but at the size the iterates "
       "have reached its rounding error exceeds tol, so stationarity cannot be certified",
    4: "non-finite values: the lower level may be unbounded (not convex) at the current x, the "
       "upper level unbounded below, or the steps diverged",
}


def growth_message(x0, x, value0, value) -> str:
    """A note when the iterates grew by a factor above 1e6 while the objective fell: a sign of
    an upper level unbounded below on X (not a certificate; '' otherwise)."""
    n0 = float(np.max(np.abs(x0), initial=0.0))
    n1 = float(np.max(np.abs(x), initial=0.0))
    if not (n1 > 1e6 * max(n0, 1.0)) or not (value < value0):
        return ""
    return (f"; the iterates grew from |x| = {n0:.3g} to {n1:.3g} while the objective fell from "
            f"{value0:.6g} to {value:.6g}: the upper level may be unbounded below on X")


def finish(r, method: str, backend: str, x, y, objective: float, stationarity: float,
           failed: int, counts, setup_time: float, info: dict, init_compile: float = 0.0,
           start=None, primal_residual: float = math.nan, inaccurate: str = "") -> Result:
    """The `Result` of a bilevel solve (built by `cvxkit.solvers.driver.finish`): ``x`` the
    upper-level variable, ``dual`` (and ``info["y"]``, kept) the lower-level solution y,
    ``dual_residual`` the stationarity measure, counts of lower solves and steps.

    Final check: ``failed``, a code of `FAILURES` (0: none), or non-finite values make it
    ``numerical_error``; ``inaccurate``, a reason the answer misses its target (e.g. a final
    lower solve), turns an ``optimal`` loop into ``optimal_inaccurate`` with that message.
    ``start`` optional ``(x0, objective at x0)`` for the `growth_message` of a run that did not
    converge."""
    status, message = None, ""
    if failed:
        status, message = Status.NUMERICAL_ERROR, FAILURES[failed]
    elif (r.status is Status.NUMERICAL_ERROR or not np.isfinite(objective)
          or not np.isfinite(np.asarray(x)).all()):
        status, message = Status.NUMERICAL_ERROR, FAILURES[4]
    elif r.status is Status.MAX_ITER:
        message = f"maximum iterations reached with stationarity {stationarity:.3g}"
    elif r.status is Status.TIME_LIMIT:
        message = f"time limit reached with stationarity {stationarity:.3g}"
    if start is not None and (r.status if status is None else status) is not Status.OPTIMAL:
        message += growth_message(start[0], np.asarray(x), start[1], objective)
    if status is None and r.status is Status.OPTIMAL and inaccurate:
        status, message = Status.OPTIMAL_INACCURATE, inaccurate
    counts = np.asarray(counts)
    info = {"y": np.asarray(y), "lower_solves": int(counts[0]),
            "lower_gradient_steps": int(counts[1]), "hessian_vector_products": int(counts[2]),
            "message": message, **info}
    final = Final(x=np.asarray(x), objective=float(objective), dual=np.asarray(y),
                  primal_residual=primal_residual, dual_residual=float(stationarity), info=info,
                  status=status, message=message)
    return _finish(final, method=method, backend=backend, setup_time=setup_time,
                   run=r._replace(compile_time=r.compile_time + init_compile))


def warm_start_point(warm_start, x0, y0):
    r"""``(x, y, result)`` from a ``warm_start``: a `Result` of the same problem (its ``x`` and
    ``info["y"]``; ``result`` is then the Result, whose other fields a method may reuse) or a
    pair ``(x, y)`` of finite arrays of the shapes of ``x0`` and ``y0`` flattened
    (`cvxkit.solvers.validate.warm_pair`)."""
    return validate.warm_pair(warm_start, ("x", "y"), (np.size(x0), np.size(y0)))


def check_options(positive: dict = (), integers: dict = (), optional_positive: dict = ()):
    """Type and range checks of method options (`cvxkit.solvers.validate`): ``positive``
    name -> value, finite and > 0; ``integers`` name -> (value, allow None);
    ``optional_positive`` name -> value, None or finite > 0."""
    for nm, v in dict(positive).items():
        validate.positive(nm, v)
    for nm, (v, none) in dict(integers).items():
        validate.integer(nm, v, allow_none=none)
    for nm, v in dict(optional_positive).items():
        validate.positive(nm, v, allow_none=True)


def run_outer(name: str, make: Callable, fns: BilevelFunctions, x0, y0, boxes: Boxes,
              backend: str, opts: Options, positive: dict, step, lower_max_iter: int, **scalars):
    """The common body of the two outer-loop methods (``implicit_diff``, ``bilevel_penalty``).

    Validates the positive parameters ``positive`` (name -> value) and ``step``, builds the data
    dict (boxes, ``opts.tol``, ``positive``, ``scalars``, the int32 ``lower_max_iter``, the
    fixed step), compiles and runs ``init`` (``make(fns) = (init, step, monitor, converged)``,
    cached by `method_functions`), then the driver. Returns ``(driver.Run, data, setup seconds,
    init compile seconds, start)``, ``start = (x0, objective at x0)`` (for `finish`)."""
    _, jnp = _jax()
    t0 = now()
    check_options(positive, {"lower_max_iter": (lower_max_iter, False)}, {"step": step})
    if backend not in ("numpy", "jax"):
        raise ValueError(f"unknown backend {backend!r}; valid choices: numpy, jax")
    if opts.warm_start is not None:
        x0, y0, _ = warm_start_point(opts.warm_start, x0, y0)
    init, step_fn, monitor, converged = method_functions(name, make, fns, x0, y0)
    bk = get_backend("jax", opts.dtype)
    with bk.precision():
        d = {k: bk.asarray(v) for k, v in boxes._asdict().items()}
        d.update({k: bk.asarray(v) for k, v in {**positive, **scalars}.items()})
        d.update(tol=bk.asarray(opts.tol), fixed_step=bk.asarray(step or 0.0),
                 lower_max_iter=jnp.asarray(lower_max_iter, jnp.int32))
        x0 = clip(bk.asarray(x0), d["x_lo"], d["x_hi"])
        y0 = clip(bk.asarray(y0), d["y_lo"], d["y_hi"])
        jinit, tc = aot(init, x0, y0, d)
        state = jinit(x0, y0, d)
        setup = now() - t0 - tc
        start = (np.asarray(x0), float(state.value))
        return (drive(name, step_fn, monitor, converged, state, d, backend, opts), d, setup, tc,
                start)


def now() -> float:
    return time.perf_counter()


def counts(solves, steps, hvps):
    """The int32 counter vector ``[lower solves, lower gradient steps, Hessian-vector products]``."""
    _, jnp = _jax()
    return jnp.stack([jnp.asarray(solves, jnp.int32), jnp.asarray(steps, jnp.int32),
                      jnp.asarray(hvps, jnp.int32)])
