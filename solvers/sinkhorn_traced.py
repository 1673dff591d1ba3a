r"""`cvxkit.solvers.sinkhorn` inside JAX programs (``jax.jit``, ``jax.vmap``, ``jax.grad``).

When ``a``, ``b`` or ``C`` is a JAX tracer, `sinkhorn` calls `solve`. The potentials are
computed on the host by the numpy solver (`cvxkit.solvers.implicit.host_solver`, a
``jax.pure_callback``; under ``vmap`` one member after the other; for one device call over many
problems of one shape use `cvxkit.solvers.sinkhorn.sinkhorn_batch`), and everything after them
is traced: the plan $P_{ij} = \exp((f_i + g_j - C_{ij})/\varepsilon)$ (unbalanced:
$a_i b_j\exp(\cdot)$), the objective and the `Result`.

**Gradients** (`cvxkit.solvers.implicit.root_vjp`, no unrolling) come from the implicit
function theorem on the Sinkhorn fixed point, in the user's units
(Cuturi, NeurIPS 2013; Luise et al., NeurIPS 2018, for the derivative of the plan):

$$
f_i = \varepsilon\log a_i - \varepsilon\,\mathrm{LSE}_j\big((g_j - C_{ij})/\varepsilon\big),
\qquad
g_j = \varepsilon\log b_j - \varepsilon\,\mathrm{LSE}_i\big((f_i - C_{ij})/\varepsilon\big),
$$

whose Jacobian is singular along $(f + t, g - t)$ (the potentials are defined up to that
shift); the map fixes the shift by adding $g_0 - g_0^\star$ to the second equation, which leaves
the solution and every derivative of the plan unchanged. Unbalanced (KL-relaxed sides,
`cvxkit.solvers.sinkhorn_unbalanced`): $f_i = -\tau_a\varepsilon\,\mathrm{LSE}_j((g_j -
C_{ij})/\varepsilon + \log b_j)$ and symmetrically, with no shift. So ``jax.grad`` of any
function of the plan, the potentials or the objective reaches ``a``, ``b`` and ``C``; for
the entropic objective $\partial W_\varepsilon/\partial C = P^\star$.

Weights must be positive under tracing (zero weights make potentials infinite: NaN gradients).
"""
from __future__ import annotations

import numpy as np

from cvxkit.solvers.driver import traced_result
from cvxkit.solvers.implicit import host_solver, root_vjp
from cvxkit.solvers.result import Status


def _fixed_point(reg, reg_m):
    """The optimality map ``F((f, g), (a, b, C))`` of the module docstring."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    def balanced(z, theta):
        (f, g), (a, b, C) = z, theta
        Ff = f - reg * jnp.log(a) + reg * logsumexp((g[None, :] - C) / reg, axis=1)
        Fg = g - reg * jnp.log(b) + reg * logsumexp((f[:, None] - C) / reg, axis=0)
        return Ff, Fg + (g[0] - jax.lax.stop_gradient(g[0]))

    def unbalanced(z, theta):
        (f, g), (a, b, C) = z, theta
        ta, tb = (lam / (lam + reg) if np.isfinite(lam) else 1.0 for lam in reg_m)
        Ff = f + ta * reg * logsumexp((g[None, :] - C) / reg + jnp.log(b)[None, :], axis=1)
        Fg = g + tb * reg * logsumexp((f[:, None] - C) / reg + jnp.log(a)[:, None], axis=0)
        return Ff, Fg

    return balanced if reg_m is None else unbalanced


def _kl(jnp, p, q):
    """Generalized KL divergence ``sum p log(p/q) - p + q``."""
    return jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0) / q), 0.0) - p + q)


def solve(a, b, C, reg: float, reg_m, options: dict, linear_solve: str = "auto"):
    """The traced solve of the module docstring; ``options`` go to the host `sinkhorn`."""
    import jax
    import jax.numpy as jnp

    from cvxkit.solvers.sinkhorn import sinkhorn

    C = jnp.asarray(C)
    dt = C.dtype
    a, b = jnp.asarray(a, dt), jnp.asarray(b, dt)
    if C.ndim != 2 or a.shape != (C.shape[0],) or b.shape != (C.shape[1],):
        raise ValueError(f"inside jit/vmap/grad sinkhorn takes a (n,), b (m,) and C (n, m); got "
                         f"{a.shape}, {b.shape} and {C.shape}")
    n, m = C.shape

    def host(a, b, C):
        r = sinkhorn(*(np.asarray(v, np.float64) for v in (a, b, C)), reg, reg_m=reg_m,
                     backend="numpy", **options)
        f, g = (np.asarray(v, np.float64) for v in r.dual)
        return (f.astype(dt), g.astype(dt)), (np.asarray(Status(r.status).code, np.int32),
                                              np.asarray(r.iterations, np.int32))

    shapes = ((jax.ShapeDtypeStruct((n,), dt), jax.ShapeDtypeStruct((m,), dt)),
              (jax.ShapeDtypeStruct((), jnp.int32), jax.ShapeDtypeStruct((), jnp.int32)))
    (f, g), (status, iterations) = root_vjp(host_solver(host, shapes), _fixed_point(reg, reg_m),
                                            linear_solve=linear_solve)((a, b, C))
    logP = (f[:, None] + g[None, :] - C) / reg
    if reg_m is None:
        P = jnp.exp(logP)
        objective = jnp.sum(C * P) + reg * jnp.sum(jnp.where(P > 0, P * logP, 0.0))
        err = jnp.sum(jnp.abs(P.sum(1) - a)) + jnp.sum(jnp.abs(P.sum(0) - b))
    else:
        P = a[:, None] * b[None, :] * jnp.exp(logP)
        objective = jnp.sum(C * P) + reg * _kl(jnp, P, a[:, None] * b[None, :]) + sum(
            lam * _kl(jnp, marg, h) for lam, marg, h in
            ((reg_m[0], P.sum(1), a), (reg_m[1], P.sum(0), b)) if np.isfinite(lam))
        err = sum(jnp.sum(jnp.abs(marg - h)) for lam, marg, h in
                  ((reg_m[0], P.sum(1), a), (reg_m[1], P.sum(0), b)) if not np.isfinite(lam))
        err = jnp.asarray(err, dt)
    return traced_result(x=P, status=status, objective=objective, dual=(f, g),
                         primal_residual=err, iterations=iterations,
                         info={"f": f, "g": g, "transport_cost": jnp.sum(C * P)},
                         method="sinkhorn")
