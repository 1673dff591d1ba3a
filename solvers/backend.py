"""Array back ends: one algorithm written once over numpy or jax.numpy.

A `Backend` bundles the array namespace ``xp`` with the few operations whose spelling
differs between eager numpy and traced JAX code: a two-branch conditional, ``logsumexp`` and
moving arrays to and from the host. JAX is imported only when the ``"jax"`` back end is asked
for, so ``import cvxkit`` stays quick.

Float64: JAX computes in float32 unless x64 is enabled. cvxkit enables it only inside its own
solves (``with backend.precision():``), so the user's other JAX code keeps its setting.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import numpy as np

BACKENDS = ("numpy", "jax")


class Backend:
    """Operations an algorithm needs beyond the array namespace ``xp``."""

    name: str = "numpy"

    def __init__(self, dtype: str = "float64"):
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        self.dtype = dtype
        self.xp = np

    def __eq__(self, other):
        return type(self) is type(other) and self.dtype == other.dtype

    def __hash__(self):
        return hash((self.name, self.dtype))

    def precision(self):
        """Context in which arrays of ``self.dtype`` can be made."""
        return contextlib.nullcontext()

    def asarray(self, x) -> Any:
        return np.asarray(x, dtype=self.dtype)

    @staticmethod
    def to_numpy(x) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def cond(pred, true_fn: Callable, false_fn: Callable, *operands):
        """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``."""
        return true_fn(*operands) if bool(pred) else false_fn(*operands)

    def logsumexp(self, M, axis: int):
        """Numerically stable ``log(sum(exp(M), axis))``; rows of all ``-inf`` give ``-inf``."""
        xp = self.xp
        mx = xp.max(M, axis=axis, keepdims=True)
        mx = xp.where(xp.isfinite(mx), mx, 0.0)
        out = xp.log(xp.sum(xp.exp(M - mx), axis=axis)) + xp.squeeze(mx, axis=axis)
        return out

    @staticmethod
    def fori(count, body: Callable, carry):
        """``carry = body(carry)`` repeated ``count`` times (``lax.fori_loop`` on JAX)."""
        for _ in range(int(count)):
            carry = body(carry)
        return carry

    def jit(self, fn: Callable, **kw) -> Callable:
        return fn

    def block(self, x):
        """Wait for ``x`` to be computed (JAX is asynchronous)."""
        return x


class JaxBackend(Backend):
    """JAX back end: jitted loops, ``lax.cond``; float64 enabled inside solves only."""

    name = "jax"

    def __init__(self, dtype: str = "float64"):
        super().__init__(dtype)
        import jax
        import jax.numpy as jnp

        self._jax = jax
        self.xp = jnp
        from cvxkit.solvers.result import register_pytree

        register_pytree(jax)

    def precision(self):
        return self._jax.enable_x64(self.dtype == "float64")

    def asarray(self, x):
        return self.xp.asarray(np.asarray(x), dtype=self.dtype)

    def cond(self, pred, true_fn, false_fn, *operands):
        return self._jax.lax.cond(pred, true_fn, false_fn, *operands)

    def fori(self, count, body, carry):
        return self._jax.lax.fori_loop(0, count, lambda i, c: body(c), carry)

    def jit(self, fn, **kw):
        """``jax.jit(fn, **kw)`` for a solver's own function ``fn``, kept in the bounded
        ``driver.compile_cache`` (keyed by ``fn`` and the static jit options; the jitted
        function compiles once per argument shape) so that repeated solves reuse it."""
        from cvxkit.solvers.driver import compile_cache  # lazy: the driver imports this module

        key = ("backend.jit", fn, tuple(sorted(kw.items())))
        return compile_cache.get(key, lambda: self._jax.jit(fn, **kw))

    def block(self, x):
        return self._jax.block_until_ready(x)


def get_backend(backend: str | Backend = "numpy", dtype: str = "float64") -> Backend:
    """Return the `Backend` named ``backend`` (``"numpy"`` or ``"jax"``)."""
    if isinstance(backend, Backend):
        return backend
    if backend == "numpy":
        return Backend(dtype)
    if backend == "jax":
        return JaxBackend(dtype)
    raise ValueError(f"unknown backend {backend!r}; valid choices: {', '.join(BACKENDS)}")
