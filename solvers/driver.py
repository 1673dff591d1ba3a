"""The shared iteration driver.

An algorithm is written once as pure functions over a `cvxkit.solvers.backend.Backend`:

* ``step(bk, state, data) -> state``: one iteration;
* ``monitor(bk, state, data) -> dict``: scalars recorded in ``Result.history`` and printed in
  verbose mode (residuals, objective, ...);
* ``converged(bk, state, data) -> bool``: the stopping test, traceable by JAX.

`run` drives it. With numpy it is a Python loop that checks every ``check_every``
iterations. With JAX, ``check_every`` iterations run inside one jitted ``lax.while_loop`` (which
also stops as soon as ``converged`` holds), so the device is synchronized only at checks; compile
time is measured apart. `while_solve` is the same loop as one pure JAX function, for
``jax.vmap`` over a batch of problems.

Common options (`Options`): ``tol``, ``max_iter``, ``time_limit`` (seconds),
``verbose``, ``callback`` (called at every check with a dict of the monitored values; return
``True`` to stop), ``check_every``, ``seed``, ``warm_start``, ``dtype``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, NamedTuple

from cvxkit.solvers.backend import Backend
from cvxkit.solvers.result import Status


@dataclasses.dataclass(frozen=True)
class Options:
    """Options every iterative solver accepts (see the module docstring)."""

    tol: float = 1e-6
    max_iter: int = 10_000
    time_limit: float = math.inf
    verbose: bool = False
    callback: Callable[[dict], Any] | None = None
    check_every: int | None = None
    seed: int = 0
    warm_start: Any = None
    dtype: str = "float64"

    def __post_init__(self):
        from cvxkit.solvers import validate as v

        v.positive("tol", self.tol)
        v.integer("max_iter", self.max_iter)
        v.positive("time_limit", self.time_limit, allow_inf=True)
        v.boolean("verbose", self.verbose)
        v.integer("check_every", self.check_every, allow_none=True)
        v.integer("seed", self.seed, minimum=0)
        if self.callback is not None and not callable(self.callback):
            raise v.ArgumentTypeError(f"callback must be callable, got {type(self.callback).__name__}")
        v.choice("dtype", self.dtype, ("float64", "float32"))


class Algorithm(NamedTuple):
    """The pure functions of one iterative method (see the module docstring)."""

    name: str
    step: Callable
    monitor: Callable
    converged: Callable


class Run(NamedTuple):
    """What `run` hands back to the solver that called it."""

    state: Any
    status: Status
    iterations: int
    history: dict
    solve_time: float
    compile_time: float


def _should_print(n_checks: int) -> bool:
    return n_checks <= 10 or n_checks % 10 == 0


class _Monitor:
    """Records history, prints the verbose table and decides whether to stop."""

    def __init__(self, name: str, opts: Options, t0: float):
        self.opts, self.t0, self.name = opts, t0, name
        self.history: dict[str, list] = {"iteration": [], "time": []}
        self.n_checks = 0
        self.header_done = False

    def check(self, it: int, values: dict, converged: bool) -> Status | None:
        values = {k: float(v) for k, v in values.items()}
        elapsed = time.perf_counter() - self.t0
        self.n_checks += 1
        self.history["iteration"].append(it)
        self.history["time"].append(elapsed)
        for k, v in values.items():
            self.history.setdefault(k, []).append(v)
        status = None
        if not all(math.isfinite(v) for v in values.values()):
            status = Status.NUMERICAL_ERROR
        elif converged:
            status = Status.OPTIMAL
        elif self.opts.callback is not None and self.opts.callback({"iteration": it, **values}):
            status = Status.INTERRUPTED
        elif elapsed > self.opts.time_limit:
            status = Status.TIME_LIMIT
        elif it >= self.opts.max_iter:
            status = Status.MAX_ITER
        if self.opts.verbose and (status is not None or _should_print(self.n_checks)):
            self._print(it, values, elapsed, status)
        return status

    def _print(self, it, values, elapsed, status):
        if not self.header_done:
            cols = "".join(f"{k:>13}" for k in values)
            print(f"cvxkit {self.name}: tol={self.opts.tol:.1e}, max_iter={self.opts.max_iter}")
            print(f"{'iter':>8}{cols}{'time (s)':>11}")
            self.header_done = True
        row = "".join(f"{v:>13.4e}" for v in values.values())
        print(f"{it:>8}{row}{elapsed:>11.3f}")
        if status is not None:
            print(f"status: {status.value} after {it} iterations, {elapsed:.3f} s")


def run(alg: Algorithm, bk: Backend, state, data, opts: Options) -> Run:
    """Iterate ``alg.step`` from ``state`` until convergence or a limit (see module docstring)."""
    if bk.name == "jax":
        return _run_jax(alg, bk, state, data, opts)
    k = opts.check_every or 1
    t0 = time.perf_counter()
    mon = _Monitor(alg.name, opts, t0)
    it = 0
    status = mon.check(0, alg.monitor(bk, state, data), bool(alg.converged(bk, state, data)))
    while status is None:
        for _ in range(min(k, opts.max_iter - it)):
            state = alg.step(bk, state, data)
            it += 1
        status = mon.check(it, alg.monitor(bk, state, data), bool(alg.converged(bk, state, data)))
    return Run(state, status, it, mon.history, time.perf_counter() - t0, 0.0)


def _advance_fn(alg: Algorithm, bk: Backend):
    """``(state, data, n) -> (state, i)``: at most ``n`` steps, stopping once converged."""
    lax = bk._jax.lax

    def advance(state, data, n):
        def cond(carry):
            i, s = carry
            return (i < n) & ~alg.converged(bk, s, data)

        def body(carry):
            i, s = carry
            return i + 1, alg.step(bk, s, data)

        i, state = lax.while_loop(cond, body, (0, state))
        return state, i

    return advance


def while_solve(alg: Algorithm, bk: Backend, state, data, max_iter: int):
    """One pure JAX function: iterate until ``converged`` or ``max_iter``; vmap-able.

    Returns ``(state, iterations)``. Use it under ``jax.vmap`` to solve a batch of problems
    with one call (iterations then run until every member has converged).
    """
    return _advance_fn(alg, bk)(state, data, max_iter)


_COMPILED: dict = {}


def signature(jax, tree) -> tuple:
    """``(treedef, shapes and dtypes of the leaves)``: a cache key for compiled code (built
    without string conversions: it is computed on every call of a batched solve)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((x.shape, x.dtype) if hasattr(x, "dtype") else (type(x),) for x in leaves)


def _compiled(alg: Algorithm, bk: Backend, state, data):
    """AOT-compiled ``advance`` and monitor for this algorithm and these shapes (cached)."""
    jax = bk._jax
    key = (alg, bk, *signature(jax, (state, data)))
    if key not in _COMPILED:
        probe = lambda s, d: (alg.monitor(bk, s, d), alg.converged(bk, s, d))  # noqa: E731
        _COMPILED[key] = (
            jax.jit(_advance_fn(alg, bk)).lower(state, data, 0).compile(),
            jax.jit(probe).lower(state, data).compile(),
        )
    return _COMPILED[key]


def _run_jax(alg: Algorithm, bk: Backend, state, data, opts: Options) -> Run:
    jax = bk._jax
    k = opts.check_every or 10
    tc = time.perf_counter()
    advance, monitor = _compiled(alg, bk, state, data)
    compile_time = time.perf_counter() - tc
    t0 = time.perf_counter()
    mon = _Monitor(alg.name, opts, t0)
    it = 0
    values, conv = jax.device_get(monitor(state, data))
    status = mon.check(0, values, bool(conv))
    while status is None:
        state, i = advance(state, data, min(k, opts.max_iter - it))
        it += int(i)
        values, conv = jax.device_get(monitor(state, data))
        status = mon.check(it, values, bool(conv))
    return Run(state, status, it, mon.history, time.perf_counter() - t0, compile_time)
