r"""Implicit differentiation of a solver's answer, once for every method.

A solver returns $z^\star(\theta)$ with $F(z^\star, \theta) = 0$ for an *optimality map* $F$
(the KKT conditions of a QP, a fixed point $z = T(z, \theta)$ written as $T(z,\theta) - z$,
...). By the implicit function theorem $\partial z^\star = -(\partial_z F)^{-1}\partial_\theta F$,
so a vector-Jacobian product needs one linear solve with the transposed Jacobian,

$$
(\partial_z F)^\top w = -\bar z, \qquad \bar\theta = (\partial_\theta F)^\top w,
$$

and no unrolling of the iterations (Krantz & Parks, *The implicit function theorem*, 2002; for
optimization layers: Amos & Kolter, OptNet, ICML 2017; Blondel et al., "Efficient and modular
implicit differentiation", NeurIPS 2022). `root_vjp` wraps a solver in a ``jax.custom_vjp``
whose backward pass does exactly this, with $(\partial_z F)^\top w$ and
$(\partial_\theta F)^\top w$ from ``jax.vjp`` of $F$ (matrix-free).

**The linear solve.** ``"gmres"``: matrix-free GMRES (``jax.scipy.sparse.linalg.gmres``), which
minimizes the residual over a Krylov space, so on a singular system (a degenerate active set,
a non-unique solution) it returns a least-squares solution instead of failing. ``"dense"``:
the Jacobian is materialized (one VJP per unknown) and solved in the least-squares,
minimum-norm sense (``lstsq``): the gradient of the pseudo-inverse where the Jacobian is
singular. ``"auto"`` (default): dense up to ``DENSE_MAX`` unknowns, GMRES above.
"""
from __future__ import annotations

import math
from typing import Callable

def is_traced(*arrays) -> bool:
    """True when any argument is a JAX tracer (a call inside ``jit``, ``vmap`` or ``grad``);
    never imports JAX."""
    import sys

    jax = sys.modules.get("jax")
    return jax is not None and any(isinstance(a, jax.core.Tracer) for a in arrays)


#: ``linear_solve="auto"`` materializes the Jacobian up to this many unknowns
DENSE_MAX = 400


def _solve_transposed(jax, vjp_z: Callable, rhs, method: str, size: int, tol: float):
    """``w`` with ``(d_z F)^T w = rhs`` (``vjp_z(v) = (d_z F)^T v``; pytrees allowed)."""
    jnp = jax.numpy
    flat, unravel = jax.flatten_util.ravel_pytree(rhs)
    if method == "auto":
        method = "dense" if size <= DENSE_MAX else "gmres"
    if method == "dense":
        def row(e):
            return jax.flatten_util.ravel_pytree(vjp_z(unravel(e)))[0]

        JT = jax.vmap(row)(jnp.eye(size, dtype=flat.dtype)).T  # column i: (d_z F)^T e_i
        w = jnp.linalg.lstsq(JT, flat)[0]
        return unravel(w)
    if method == "gmres":
        w, _ = jax.scipy.sparse.linalg.gmres(
            lambda v: jax.flatten_util.ravel_pytree(vjp_z(unravel(v)))[0], flat,
            tol=tol, atol=0.0, restart=min(size, 60), maxiter=max(10, math.ceil(4 * size / 60)))
        return unravel(w)
    raise ValueError(f"linear_solve must be 'auto', 'dense' or 'gmres', got {method!r}")


def adjoint(optimality: Callable, z, theta, z_bar, linear_solve="auto", tol: float = 1e-10,
            transposed_solve: Callable | None = None):
    r"""The backward pass of the implicit function theorem at a root ``z`` of
    ``optimality(z, theta)``: ``(theta_bar, w, info)`` with $(\partial_z F)^\top w = -\bar z$
    and ``theta_bar`` $= (\partial_\theta F)^\top w$ (a 1-tuple: the cotangent of ``theta``).

    ``linear_solve``: ``"auto"``, ``"dense"``, ``"gmres"`` (module docstring; ``info`` None) or a
    callable ``(matvec, rhs) -> (w, info)`` with ``matvec(v)`` $= (\partial_z F)^\top v$, for a
    method's own solver (e.g. warm-started conjugate gradient when the Jacobian is symmetric).
    ``transposed_solve``: ``(z, theta, rhs) -> w``, a method's direct solve at the solution
    (a structured factorization); it replaces ``linear_solve``.
    """
    import jax
    import jax.flatten_util  # noqa: F401  (ravel_pytree)

    _, vjp_z = jax.vjp(lambda zz: optimality(zz, theta), z)
    rhs = jax.tree_util.tree_map(lambda g: -g, z_bar)
    if transposed_solve is not None:
        w, info = transposed_solve(z, theta, rhs), None
    elif callable(linear_solve):
        w, info = linear_solve(lambda v: vjp_z(v)[0], rhs)
    else:
        size = jax.flatten_util.ravel_pytree(z)[0].size
        w, info = _solve_transposed(jax, lambda v: vjp_z(v)[0], rhs, linear_solve, size, tol), None
    _, vjp_theta = jax.vjp(lambda th: optimality(z, th), theta)
    return vjp_theta(w), w, info


def root_vjp(solver: Callable, optimality: Callable, *, linear_solve: str = "auto",
             tol: float = 1e-10, transposed_solve: Callable | None = None) -> Callable:
    r"""``theta -> (z, aux)``: ``solver(theta) -> (z, aux)``, differentiable in ``theta`` by the
    implicit function theorem (module docstring).

    Args:
        solver: ``theta -> (z, aux)`` with ``optimality(z, theta) = 0`` at the returned ``z``
            (pytrees); ``aux`` (statuses, counts, ...) is not differentiated.
        optimality: ``(z, theta) -> F`` with ``F`` of the structure of ``z`` (a square system).
        linear_solve: ``"auto"``, ``"dense"`` or ``"gmres"`` (module docstring).
        tol: relative residual tolerance of GMRES.
        transposed_solve: ``(z, theta, rhs) -> w`` solving $(\partial_z F)^\top w = $ ``rhs``
            at the solution, a method's own structured solve (`adjoint`).

    Only reverse mode (``jax.grad``, ``jax.vjp``) is defined; the function works under ``jax.jit``
    and ``jax.vmap``.
    """
    import jax
    import jax.flatten_util  # noqa: F401  (ravel_pytree)

    @jax.custom_vjp
    def solve(theta):
        return solver(theta)

    def fwd(theta):
        z, aux = solver(theta)
        return (z, aux), (z, theta)

    def bwd(res, cotangent):
        z, theta = res
        z_bar = jax.tree_util.tree_map(
            lambda g, v: jax.numpy.zeros_like(v) if g is None or g.dtype == jax.dtypes.float0
            else g, cotangent[0], z, is_leaf=lambda g: g is None)
        return adjoint(optimality, z, theta, z_bar, linear_solve, tol, transposed_solve)[0]

    solve.defvjp(fwd, bwd)

    def call(theta):
        # numpy leaves (also the values of vmap's tracers over numpy arguments) become JAX
        # values first: custom_vjp takes no numpy constants
        return solve(jax.tree_util.tree_map(
            lambda v: v + jax.numpy.zeros((), v.dtype) if isinstance(v, jax.core.Tracer)
            else jax.numpy.asarray(v), theta))

    return call


def host_solver(fn: Callable, shapes) -> Callable:
    """``theta -> fn(*theta)`` inside traced code, ``fn`` running on the host on numpy arrays
    (``jax.pure_callback``; under ``jax.vmap`` the members are solved one after the other).

    ``shapes`` is the output structure of ``fn`` as ``jax.ShapeDtypeStruct`` leaves; pair it
    with `root_vjp` for gradients (the callback itself is not differentiated).
    """
    import jax

    def solver(theta):
        return jax.pure_callback(fn, shapes, *theta, vmap_method="sequential")

    return solver
