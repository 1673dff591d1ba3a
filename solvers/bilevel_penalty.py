r"""Bilevel programs by the fully first-order penalty method of Kwon, Kwon, Wright and Nowak.

Paper: J. Kwon, D. Kwon, S. Wright and R. Nowak, "On Penalty Methods for Nonconvex Bilevel
Optimization and First-Order Stochastic Approximation", ICLR 2024 (arXiv:2309.01753).
Problem (notation of `cvxkit.solvers.bilevel_core`): $\min_{x \in X} f(x, y^*(x))$,
$y^*(x) = \arg\min_{y \in Y} g(x, y)$, $X$, $Y$ boxes.

**Penalty surrogate.** With $h_\sigma = \sigma f + g$ and $l(x, \sigma) = \min_{y \in Y} h_\sigma(x, y)$,

$$
\psi_\sigma(x) = \frac{l(x, \sigma) - l(x, 0)}{\sigma}, \qquad
\nabla\psi_\sigma(x) = \nabla_x f(x, z) + \frac{\nabla_x g(x, z) - \nabla_x g(x, y)}{\sigma},
$$

$z = \arg\min_Y h_\sigma(x, \cdot)$, $y = \arg\min_Y g(x, \cdot)$ (a Danskin-type formula: no
second derivatives). $|\psi_\sigma - F| = O(\sigma)$ and
$\|\nabla\psi_\sigma - \nabla F\| = O(\sigma)$ under the paper's proximal error bound, so a
stationary point of $\psi_\sigma$ is an $O(\sigma)$-stationary point of $F$.

**Iteration** (the paper's deterministic double-loop method): warm-started projected gradient
solves of $y$ (on $g$) and $z$ (on $h_\sigma$) to ``lower_tol`` (accelerated, see
`cvxkit.solvers.bilevel_core.lower_solve`; the closed form for $y$ when the problem gives one),
then $x^+ = P_X(x - \alpha\nabla\psi_\sigma(x))$. The paper takes a fixed $\alpha \le 1/L$ with
$L$ the smoothness of $\psi_\sigma$ (unknown in practice); by default we use Barzilai–Borwein
trial steps with Armijo backtracking on $\psi_\sigma$ (``step`` gives the fixed-step method).
$\sigma$ is fixed (the paper's $\sigma = O(\epsilon)$); we evaluate
$\psi_\sigma = f(x, z) + (g(x, z) - g(x, y))/\sigma$, which avoids the cancellation in
$(h_\sigma(x, z) - g(x, y))/\sigma$.

**Stopping**: ``optimal`` when $\|x - P_X(x - \nabla\psi_\sigma)\|_2 \le$ ``tol`` and both
inner solves met ``lower_tol``: an approximately stationary point of $\psi_\sigma$, whose
distance to a stationary point of $F$ is $O(\sigma)$. ``Result.objective`` is $f(x, y)$.
The gradient divides a difference of lower-level gradients by $\sigma$, so its rounding error is
about $\epsilon_{\rm mach}\max(1, \|x\|_\infty, \|y\|_\infty, \|z\|_\infty)/\sigma$; ``optimal``
also needs this floor $\le$ ``tol``. A point whose projected gradient is below ``tol`` while the
floor is above it ends as ``numerical_error`` (precision lost; typically iterates that grew
without bound on an upper level unbounded below: before this check such a run reported
``optimal`` at $x \approx 10^{12}$, where $z - y$ rounds to 0). A run that stops otherwise
says in its message when the iterates grew by more than $10^6$ while the objective fell (a
sign of an unbounded upper level; no certificate, so never ``dual_infeasible``).
"""
from __future__ import annotations

import numpy as np

from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.bilevel_core import (
    BilevelFunctions, Boxes, Outer, clip, counts, finish, lower_solve, outer_parts,
    projected_gradient_norm, run_outer,
)
from cvxkit.solvers.driver import Options


def _functions(fns: BilevelFunctions):
    import jax
    import jax.numpy as jnp

    gx_f = jax.grad(fns.upper, argnums=0)
    gx_g = jax.grad(fns.lower, argnums=0)

    def value_fn(d):
        sigma = d["sigma"]

        def value(x, aux):
            y, z, Ly, Lz, _ = aux
            if fns.lower_solution is not None:
                y = clip(fns.lower_solution(x), d["y_lo"], d["y_hi"])
                sy = None
            else:
                sy = lower_solve(lambda v: fns.lower(x, v), y, d["y_lo"], d["y_hi"], Ly,
                                 d["lower_tol"], d["lower_max_iter"])
                y, Ly = sy.y, sy.L
            sz = lower_solve(lambda v: sigma * fns.upper(x, v) + fns.lower(x, v), z,
                             d["y_lo"], d["y_hi"], Lz, d["lower_tol"], d["lower_max_iter"])
            res = sz.residual if sy is None else jnp.maximum(sy.residual, sz.residual)
            steps = sz.iterations + (0 if sy is None else sy.iterations)
            psi = fns.upper(x, sz.y) + (fns.lower(x, sz.y) - fns.lower(x, y)) / sigma
            return psi, (y, sz.y, Ly, sz.L, res), counts(2, steps, 0)
        return value

    def grad_fn(d):
        def grad(x, aux):
            y, z = aux[0], aux[1]
            g = gx_f(x, z) + (gx_g(x, z) - gx_g(x, y)) / d["sigma"]
            return g, aux, counts(0, 0, 0), jnp.asarray(False)
        return grad

    def init(x0, y0, d):
        one = jnp.ones((), x0.dtype)
        aux0 = (y0, y0, one, one, jnp.zeros((), x0.dtype))
        val, aux, c1 = value_fn(d)(x0, aux0)
        g, aux, _, _ = grad_fn(d)(x0, aux)
        return Outer(x0, val, g, jnp.asarray(d["step0"], x0.dtype), aux, c1,
                     jnp.zeros((), jnp.int32))

    def precision(d):
        def floor(x, aux):
            # the gradient divides a difference of lower-level gradients at y and z by sigma:
            # y and z are known to eps |y|, eps |z| at best (and x to eps |x|)
            size = jnp.maximum(jnp.max(jnp.abs(x)),
                               jnp.maximum(jnp.max(jnp.abs(aux[0])), jnp.max(jnp.abs(aux[1]))))
            return jnp.finfo(x.dtype).eps * jnp.maximum(size, 1.0) / d["sigma"]
        return floor

    step, monitor, converged = outer_parts(
        value_fn, grad_fn, lambda st: st.aux[4],
        lambda st: {"upper": fns.upper(st.x, st.aux[0])},  # objective: psi_sigma
        precision=precision)
    return init, step, monitor, converged


def bilevel_penalty(fns: BilevelFunctions, x0, y0, boxes: Boxes, *, sigma: float = 1e-4,
                    tol: float = 1e-6, max_iter: int = 500, lower_tol: float = 1e-12,
                    lower_max_iter: int = 20_000, step: float | None = None, step0: float = 1.0,
                    time_limit: float = float("inf"), verbose: bool = False,
                    progress: bool | None = None, callback=None, check_every: int | None = None,
                    warm_start=None, dtype: str = "float64", backend: str = "numpy"):
    r"""Minimize the penalty surrogate $\psi_\sigma(x)$ of $F(x) = f(x, y^*(x))$ over the box $X$.

    Args:
        fns: `BilevelFunctions`. x0: (p,) start. y0: (d,) start of both inner sequences.
        boxes: `Boxes` of $X$ and $Y$.
        sigma: the penalty parameter $\sigma > 0$ (bias $O(\sigma)$; smaller needs tighter
            inner solves: the error of $\nabla\psi_\sigma$ is about ``lower_tol``/($\mu\sigma$)).
        tol: projected-gradient tolerance on $\psi_\sigma$. max_iter: outer steps.
        lower_tol, lower_max_iter: inner gradient-mapping tolerance and step cap (both solves).
        step: fixed outer step $\alpha$ (the paper's method); default None: BB + Armijo,
            first trial ``step0``.
        warm_start: a `Result` of the same problem or ``(x, y)`` (shapes (p,), (d,)).
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        time_limit, verbose, callback, check_every, dtype: as in
            `cvxkit.solvers.driver.Options`. backend: ``"numpy"`` or ``"jax"``.

    Returns:
        `Result`: ``x`` (p,), ``objective`` $f(x, y)$, ``dual_residual`` the projected gradient
        norm of $\psi_\sigma$, ``info``: ``y``, ``z``, ``psi``, ``sigma``, ``lower_solves``
        (each outer trial point costs two), ``lower_gradient_steps``, ``message``.
    """
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   progress=progress, callback=callback, check_every=check_every,
                   warm_start=warm_start, dtype=dtype)
    r, d, setup, tc, start = run_outer(
        "bilevel_penalty", _functions, fns, x0, y0, boxes, backend, opts,
        {"sigma": sigma, "lower_tol": lower_tol, "step0": step0}, step, lower_max_iter)
    with get_backend("jax", dtype).precision():
        st = r.state
        pg = float(projected_gradient_norm(st.x, st.grad, d["x_lo"], d["x_hi"]))
        return finish(r, "bilevel_penalty", backend, st.x, st.aux[0],
                      float(fns.upper(st.x, st.aux[0])), pg, int(st.failed), st.counts, setup,
                      {"z": np.asarray(st.aux[1]), "psi": float(st.value), "sigma": sigma,
                       "hypergradient": np.asarray(st.grad)}, tc, start=start)
