r"""`cvxkit.solvers.halpern_pdhg` inside JAX programs (``jax.jit``, ``jax.vmap``, ``jax.grad``).

When any of ``c, K, lc, uc, lv, uv`` is a JAX tracer, `halpern_pdhg` calls `solve`. The LP is
solved on the host by the numpy solver, whose preconditioning and checks need concrete values
(`cvxkit.solvers.implicit.host_solver`: a ``jax.pure_callback``; under ``vmap`` the members are
solved one after the other; for one compiled call over many LPs of one shape on the device use
`cvxkit.solvers.lp_batch.halpern_pdhg_batch`). The `Result` is traced (``status`` an integer
code).

**Gradients** by implicit differentiation (`cvxkit.solvers.implicit.root_vjp`) of the KKT
conditions of the active set, the QP's map (`cvxkit.solvers.admm_traced.kkt_map`) with $P = 0$,
the rows $K$ and the identity (the variable bounds) stacked, and multipliers
$y_{ADMM} = -(y, r)$ with $r = c - K^\top y$ the reduced costs. At a nondegenerate vertex this
gives the derivative of the solution (zero in $c$, the solution is piecewise constant in the
cost) and the envelope formulas for the optimal value: $\partial(c^\top x^\star)/\partial c =
x^\star$, $\partial/\partial u_c = $ the multipliers of the active upper row bounds. Where the
active set is degenerate the solution has no derivative; the least-squares adjoint solve then
returns the minimum-norm (pseudo-inverse) one, which is what the value's gradient needs.
"""
from __future__ import annotations

import numpy as np

from cvxkit.solvers.admm_traced import kkt_map
from cvxkit.solvers.driver import traced_result
from cvxkit.solvers.implicit import host_solver, root_vjp
from cvxkit.solvers.result import Status


def _stacked(theta):
    """``(P, q, A, l, u)`` of the LP ``theta = (c, K, lc, uc, lv, uv)`` (rows K, then I)."""
    import jax.numpy as jnp

    c, K, lc, uc, lv, uv = theta
    n = c.shape[0]
    return (jnp.zeros((n, n), c.dtype), c, jnp.concatenate([K, jnp.eye(n, dtype=c.dtype)]),
            jnp.concatenate([lc, lv]), jnp.concatenate([uc, uv]))


def solve(c, K, lc, uc, lv, uv, options: dict, linear_solve: str = "auto"):
    """The traced solve of the module docstring; ``options`` go to the host `halpern_pdhg`."""
    import jax
    import jax.numpy as jnp

    from cvxkit.solvers.halpern_pdhg import halpern_pdhg

    c = jnp.asarray(c)
    dt = c.dtype
    n = c.shape[0]
    K = jnp.zeros((0, n), dt) if K is None else jnp.asarray(K, dt)
    m = K.shape[0]

    def bound(v, size, fill):
        return jnp.full(size, fill, dt) if v is None else jnp.broadcast_to(jnp.asarray(v, dt), (size,))

    theta = (c, K, bound(lc, m, -jnp.inf), bound(uc, m, jnp.inf), bound(lv, n, -jnp.inf),
             bound(uv, n, jnp.inf))
    if c.ndim != 1 or K.shape != (m, n):
        raise ValueError(f"c must have shape (n,) and K shape (m, n) inside jit/vmap/grad, got "
                         f"{c.shape} and {K.shape}")

    def host(c, K, lc, uc, lv, uv):
        r = halpern_pdhg(*(np.asarray(v, np.float64) for v in (c, K, lc, uc, lv, uv)),
                         backend="numpy", **options)
        x = np.nan_to_num(np.asarray(r.x, np.float64))
        y = np.nan_to_num(np.asarray(r.dual, np.float64))
        reduced = np.asarray(c, np.float64) - np.asarray(K, np.float64).T @ y
        aux = (np.asarray(Status(r.status).code, np.int32), np.asarray(r.iterations, np.int32),
               np.asarray(r.primal_residual, dt), np.asarray(r.dual_residual, dt))
        return (x.astype(dt), (-np.concatenate([y, reduced])).astype(dt)), aux

    shapes = ((jax.ShapeDtypeStruct((n,), dt), jax.ShapeDtypeStruct((m + n,), dt)),
              (jax.ShapeDtypeStruct((), jnp.int32), jax.ShapeDtypeStruct((), jnp.int32),
               jax.ShapeDtypeStruct((), dt), jax.ShapeDtypeStruct((), dt)))
    (x, y), (status, iterations, prim, dual) = root_vjp(
        host_solver(host, shapes), lambda z, th: kkt_map(z, _stacked(th)),
        linear_solve=linear_solve)(theta)
    solved = (status == Status.OPTIMAL.code) | (status == Status.OPTIMAL_INACCURATE.code) | (
        status == Status.MAX_ITER.code) | (status == Status.TIME_LIMIT.code)
    x = jnp.where(solved, x, jnp.nan)
    objective = jnp.where(status == Status.PRIMAL_INFEASIBLE.code, jnp.inf, jnp.where(
        status == Status.DUAL_INFEASIBLE.code, -jnp.inf, c @ x))
    return traced_result(x=x, status=status, objective=objective, dual=-y[:m],
                         primal_residual=prim, dual_residual=dual, iterations=iterations,
                         info={"y": -y[:m], "reduced_costs": -y[m:]}, method="halpern_pdhg")
