r"""Bilevel programs by implicit differentiation: hypergradients from the implicit function theorem,
with the linear system solved matrix-free by conjugate gradient, inside a projected gradient method.

Paper: J. Lorraine, P. Vicol and D. Duvenaud, "Optimizing Millions of Hyperparameters by Implicit
Differentiation", AISTATS 2020 (PMLR 108:1540-1552). Problem (notation of
`cvxkit.solvers.bilevel_core`):

$$
\min_{x \in X} F(x) = f(x, y^*(x)), \qquad y^*(x) = \arg\min_{y \in Y} g(x, y),
$$

$g(x, \cdot)$ strongly convex on the free coordinates of $y^*$; $X$, $Y$ boxes.

**Hypergradient** (implicit function theorem at $y = y^*(x)$, $H = \nabla^2_{yy} g$):

$$
\nabla F(x) = \nabla_x f(x, y) - \nabla^2_{xy} g(x, y)\, v, \qquad H v = \nabla_y f(x, y),
$$

restricted to the free coordinates of $y$ when $Y$ is a box (coordinates held at a bound do not
move with $x$). This is the backward pass every traced cvxkit solver uses
(`cvxkit.solvers.implicit.adjoint`, on the optimality map $\nabla_y g = 0$ of the lower level,
`cvxkit.solvers.bilevel_core.implicit_hypergradient`); here its linear system, symmetric, is
solved by conjugate gradient with Hessian-vector products, warm-started from the previous outer
step; $\nabla^2_{xy} g\, v$ is one vector-Jacobian product. The paper approximates $H^{-1}$ by a truncated Neumann series
and names CG as the alternative; we use CG, which converges in far fewer products on the
well-conditioned problems hyperparameter tuning gives.

**One outer step** (`cvxkit.solvers.bilevel_core.outer_step`): $x^+ = P_X(x - s\nabla F(x))$,
Barzilai–Borwein trial step, Armijo backtracking on $F$ (every trial point costs one lower-level
solve), or a fixed step ``step``. The lower level is solved to ``lower_tol`` (gradient-mapping
norm) at every trial point by the closed form when the problem gives one, else by accelerated
projected gradient warm-started from the last solution. The paper alternates a few inner
optimizer steps with one hyperstep; we solve the lower level to tolerance so that the
hypergradient is exact up to ``lower_tol`` and ``cg_rtol``, which the stopping test needs.

**Stopping**: ``optimal`` when $\|x - P_X(x - \nabla F(x))\|_2 \le$ ``tol`` and the last lower
solve met ``lower_tol``; ``numerical_error`` when CG meets non-positive curvature (the lower
level is not strongly convex at $y^*$) or the line search cannot decrease $F$; ``max_iter``,
``time_limit`` otherwise (the message notes iterates that grew by more than $10^6$ while $F$
fell: a sign of an upper level unbounded below on $X$, not a certificate).
"""
from __future__ import annotations

import numpy as np

from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.bilevel_core import (
    BilevelFunctions, Boxes, Outer, check_options, clip, counts, finish, implicit_hypergradient,
    lower_solve, outer_parts, projected_gradient_norm, run_outer,
)
from cvxkit.solvers.driver import Options


def _functions(fns: BilevelFunctions):
    """The pure JAX pieces of the method for one set of callables (cached by `run_outer`: no
    recompilation)."""
    import jax.numpy as jnp

    def lower_at(x, y, L, d):
        if fns.lower_solution is not None:
            y = clip(fns.lower_solution(x), d["y_lo"], d["y_hi"])
            return y, L, counts(1, 0, 0), jnp.zeros(())
        s = lower_solve(lambda yy: fns.lower(x, yy), y, d["y_lo"], d["y_hi"], L,
                        d["lower_tol"], d["lower_max_iter"])
        return s.y, s.L, counts(1, s.iterations, 0), s.residual

    def value_fn(d):
        def value(x, aux):
            y, L, v, _ = aux
            y, L, cnt, res = lower_at(x, y, L, d)
            return fns.upper(x, y), (y, L, v, res), cnt
        return value

    def grad_fn(d):
        def grad(x, aux):
            y, L, v, res = aux
            h, cg = implicit_hypergradient(fns, x, y, v, d["y_lo"], d["y_hi"], d["cg_rtol"],
                                           d["cg_max_iter"])
            return h, (y, L, cg.v, res), counts(0, 0, cg.iterations), cg.negative_curvature
        return grad

    def init(x0, y0, d):
        aux0 = (y0, jnp.ones((), x0.dtype), jnp.zeros_like(y0), jnp.zeros((), x0.dtype))
        val, aux, c1 = value_fn(d)(x0, aux0)
        g, aux, c2, bad = grad_fn(d)(x0, aux)
        return Outer(x0, val, g, jnp.asarray(d["step0"], x0.dtype), aux, c1 + c2,
                     jnp.where(bad, 1, 0).astype(jnp.int32))

    step, monitor, converged = outer_parts(value_fn, grad_fn, lambda st: st.aux[3])
    return init, step, monitor, converged


def implicit_diff(fns: BilevelFunctions, x0, y0, boxes: Boxes, *, tol: float = 1e-6,
                  max_iter: int = 500, lower_tol: float = 1e-12, lower_max_iter: int = 20_000,
                  cg_rtol: float = 1e-10, cg_max_iter: int | None = None,
                  step: float | None = None, step0: float = 1.0, time_limit: float = float("inf"),
                  verbose: bool = False, progress: bool | None = None, callback=None,
                  check_every: int | None = None, warm_start=None, dtype: str = "float64",
                  backend: str = "numpy"):
    r"""Minimize $F(x) = f(x, y^*(x))$ over the box $X$ by implicit-differentiation hypergradients.

    Args:
        fns: the `BilevelFunctions` (JAX callables). x0: (p,) start in $X$. y0: (d,) start of
            the first lower solve. boxes: `Boxes` of $X$ and $Y$ (arrays, infinite allowed).
        tol: stop at projected hypergradient norm $\|x - P_X(x - \nabla F)\|_2 \le$ ``tol``.
        max_iter: outer steps. lower_tol, lower_max_iter: lower-level gradient-mapping tolerance
            and step cap. cg_rtol, cg_max_iter: CG relative residual and cap (default $2d + 20$).
        step: a fixed outer step (no line search); default None: BB steps with Armijo
            backtracking, the first trial ``step0``.
        warm_start: a `Result` of the same problem (its ``x`` and ``info["y"]``) or a pair
            ``(x, y)`` of arrays of shapes (p,), (d,), to start from instead of ``(x0, y0)``;
            ``ValueError`` otherwise.
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        time_limit, verbose, callback, check_every, dtype: as in `cvxkit.solvers.driver.Options`.
        backend: ``"numpy"`` (Python loop over the jitted step) or ``"jax"`` (fused loop).

    Returns:
        `Result` with ``x`` (p,), ``objective`` $F(x)$, ``dual_residual`` the projected
        hypergradient norm, ``info``: ``y`` (d,), ``hypergradient``, ``lower_solves``,
        ``lower_gradient_steps``, ``hessian_vector_products`` (CG steps), ``message``.
    """
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   progress=progress, callback=callback, check_every=check_every,
                   warm_start=warm_start, dtype=dtype)
    check_options(integers={"cg_max_iter": (cg_max_iter, True)})
    r, d, setup, tc, start = run_outer(
        "implicit_diff", _functions, fns, x0, y0, boxes, backend, opts,
        {"lower_tol": lower_tol, "cg_rtol": cg_rtol, "step0": step0}, step, lower_max_iter,
        cg_max_iter=np.int32(cg_max_iter or 2 * np.size(y0) + 20))
    with get_backend("jax", dtype).precision():
        st = r.state
        pg = float(projected_gradient_norm(st.x, st.grad, d["x_lo"], d["x_hi"]))
        return finish(r, "implicit_diff", backend, st.x, st.aux[0], float(st.value), pg,
                      int(st.failed), st.counts, setup, {"hypergradient": np.asarray(st.grad)}, tc,
                      start=start)
