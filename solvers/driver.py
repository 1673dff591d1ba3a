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
``verbose``, ``progress``, ``callback`` (called at every check with a dict of the monitored
values; return ``True`` to stop), ``check_every``, ``seed``, ``warm_start``, ``dtype``.

An algorithm whose step performs a fixed block of iterations says so in
``Algorithm.iterations_per_step`` (its last block must stop at ``max_iter``, which the step reads
from its data); ``max_iter``, ``Result.iterations`` and ``history["iteration"]`` always count
iterations, never steps.

`finish` builds every solver's `Result` from the loop's `Run` and the algorithm's `Final`
(its postprocessed solution in the user's units). The status rule it enforces: the status is
the loop's, unless the algorithm's final check on the user's data names another — and a final
check never turns a loop that did not meet its stopping test into ``optimal``.

Compiled code lives in bounded `LRUCache` objects (`compile_cache`), keyed by shapes, dtypes
and static options.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import sys
import time
from typing import Any, Callable, NamedTuple

from cvxkit.solvers.backend import Backend
from cvxkit.solvers.result import Result, Status, as_numpy_history, register_pytree

PROGRESS_AFTER = 5.0
"""Seconds after which ``progress=None`` (auto) shows a progress bar, on a terminal only."""


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
    progress: bool | None = None

    def __post_init__(self):
        from cvxkit.solvers import validate as v

        v.positive("tol", self.tol)
        v.integer("max_iter", self.max_iter)
        v.positive("time_limit", self.time_limit, allow_inf=True)
        v.boolean("verbose", self.verbose)
        if self.progress is not None:
            v.boolean("progress", self.progress)
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
    iterations_per_step: int = 1


class Run(NamedTuple):
    """What `run` hands back to the solver that called it."""

    state: Any
    status: Status
    iterations: int
    history: dict
    solve_time: float
    compile_time: float


class ProgressBar:
    """A progress bar (``tqdm.auto``) over ``total`` units: always with ``progress=True``;
    with ``progress=None``, once the work has lasted `PROGRESS_AFTER` seconds on a terminal;
    never with ``False``."""

    def __init__(self, progress: bool | None, total, desc: str, unit: str):
        self.progress, self.total, self.desc, self.unit = progress, total, desc, unit
        self.bar = None

    def update(self, n: int, elapsed: float, postfix: dict, done: bool = False):
        """Advance to ``n`` units after ``elapsed`` seconds, showing ``postfix`` (strings);
        ``done`` closes the bar (and opens none)."""
        want = self.progress
        if want is None:
            want = elapsed > PROGRESS_AFTER and sys.stderr.isatty()
        if self.bar is None and want and not done:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, leave=False)
        if self.bar is not None:
            self.bar.update(n - self.bar.n)
            self.bar.set_postfix(postfix, refresh=False)
            if done:
                self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _should_print(n_checks: int) -> bool:
    return n_checks <= 10 or n_checks % 10 == 0


class _Monitor:
    """Records history, prints the verbose table and decides whether to stop."""

    def __init__(self, name: str, opts: Options, t0: float):
        self.opts, self.t0, self.name = opts, t0, name
        self.history: dict[str, list] = {"iteration": [], "time": []}
        self.n_checks = 0
        self.header_done = False
        total = opts.max_iter if math.isfinite(opts.max_iter) else None
        self.bar = ProgressBar(opts.progress, total, f"cvxkit {name}", "it")

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
        self.bar.update(it, elapsed, {k: f"{v:.2e}" for k, v in list(values.items())[:3]},
                        done=status is not None)
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
    per = alg.iterations_per_step
    t0 = time.perf_counter()
    mon = _Monitor(alg.name, opts, t0)
    it = 0
    status = mon.check(0, alg.monitor(bk, state, data), bool(alg.converged(bk, state, data)))
    while status is None:
        for _ in range(min(k, _steps_left(opts.max_iter - it, per))):
            state = alg.step(bk, state, data)
            it = min(it + per, opts.max_iter)
        status = mon.check(it, alg.monitor(bk, state, data), bool(alg.converged(bk, state, data)))
    return Run(state, status, it, mon.history, time.perf_counter() - t0, 0.0)


def _steps_left(iterations: int, per: int) -> int:
    """Steps of ``per`` iterations that cover ``iterations`` (the last step may overshoot)."""
    return -(-iterations // per)


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


class LRUCache:
    """A bounded least-recently-used cache of compiled code.

    Keys must identify what was compiled: shapes, dtypes and static options (see
    `signature`); a user callable may be part of a key only next to its array signature.
    """

    def __init__(self, maxsize: int = 32):
        self.maxsize = maxsize
        self._items: collections.OrderedDict = collections.OrderedDict()

    def get(self, key, build: Callable[[], Any]):
        """The value cached at ``key``, built by ``build()`` on a miss (evicting the oldest)."""
        try:
            self._items.move_to_end(key)
            return self._items[key]
        except KeyError:
            value = build()
            self._items[key] = value
            if len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return value

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()


compile_cache = LRUCache(maxsize=64)
"""The one cache of compiled JAX code shared by every solver (keys start with the owner's
name)."""


def signature(jax, tree) -> tuple:
    """``(treedef, shapes and dtypes of the leaves)``: a cache key for compiled code (built
    without string conversions: it is computed on every call of a batched solve)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((x.shape, x.dtype) if hasattr(x, "dtype") else (type(x),) for x in leaves)


def _compiled(alg: Algorithm, bk: Backend, state, data):
    """AOT-compiled ``advance`` and monitor for this algorithm and these shapes (cached)."""
    jax = bk._jax

    def build():
        probe = lambda s, d: (alg.monitor(bk, s, d), alg.converged(bk, s, d))  # noqa: E731
        return (jax.jit(_advance_fn(alg, bk)).lower(state, data, 0).compile(),
                jax.jit(probe).lower(state, data).compile())

    return compile_cache.get(("driver.run", alg, bk, *signature(jax, (state, data))), build)


def _run_jax(alg: Algorithm, bk: Backend, state, data, opts: Options) -> Run:
    jax = bk._jax
    k = opts.check_every or 10
    per = alg.iterations_per_step
    tc = time.perf_counter()
    advance, monitor = _compiled(alg, bk, state, data)
    compile_time = time.perf_counter() - tc
    t0 = time.perf_counter()
    mon = _Monitor(alg.name, opts, t0)
    it = 0
    values, conv = jax.device_get(monitor(state, data))
    status = mon.check(0, values, bool(conv))
    while status is None:
        state, i = advance(state, data, min(k, _steps_left(opts.max_iter - it, per)))
        it = min(it + int(i) * per, opts.max_iter)
        values, conv = jax.device_get(monitor(state, data))
        status = mon.check(it, values, bool(conv))
    return Run(state, status, it, mon.history, time.perf_counter() - t0, compile_time)


class Final(NamedTuple):
    """What an algorithm's postprocessing hands `finish`, in the user's units.

    ``status`` is the verdict of a final check on the user's data (a verified certificate,
    ``optimal_inaccurate`` when the check misses the tolerance, ``numerical_error``), or
    ``None`` to keep the loop's status; ``iterations`` overrides the loop's count where the
    method counts differently (e.g. oracle calls).
    """

    x: Any
    objective: Any
    dual: Any = None
    primal_residual: Any = math.nan
    dual_residual: Any = math.nan
    info: dict = {}
    status: Any = None
    message: str = ""
    iterations: Any = None


def _allowed(loop: Status, final: Status) -> bool:
    """A final check may confirm, downgrade or name a certificate, never promote a loop that
    did not meet its stopping test to ``optimal``."""
    return final is not Status.OPTIMAL or loop is Status.OPTIMAL


def finish(final: Final, *, method: str, backend: str, run: Run | None = None,
           setup_time: float = 0.0, solve_time: float | None = None,
           history: dict | None = None) -> Result:
    """The `Result` of one solve (or of a batch, when ``final.status`` is an array).

    Fields come from ``final`` and the loop's ``run`` (iterations, history with true iteration
    numbers, solve and compile times); a solver without a driver loop (a direct method) passes
    ``run=None`` and its own ``status``, ``solve_time`` and ``history``.
    """
    status = final.status
    if run is not None:
        if status is None:
            status = run.status
        elif isinstance(status, Status) and not _allowed(run.status, status):
            raise RuntimeError(f"{method}: a final check may not turn {run.status.value} into "
                               f"{status.value}")
    if status is None:
        raise ValueError(f"{method}: a solve without a driver loop must state its status")
    hist = run.history if run is not None and history is None else (history or {})
    iterations = final.iterations if final.iterations is not None else (
        run.iterations if run is not None else 0)
    return Result(
        x=final.x, status=status, objective=final.objective,
        primal_residual=final.primal_residual, dual_residual=final.dual_residual,
        iterations=iterations,
        solve_time=solve_time if solve_time is not None else (run.solve_time if run else 0.0),
        setup_time=setup_time, compile_time=run.compile_time if run is not None else 0.0,
        history=as_numpy_history(hist), backend=backend, method=method, info=dict(final.info),
        dual=final.dual, message=final.message)


def traced_result(*, x, status, objective, dual=None, primal_residual=math.nan,
                  dual_residual=math.nan, iterations=0, info=None, method: str) -> Result:
    """The `Result` of a solve traced by JAX (inside ``jit``, ``vmap`` or ``grad``): array
    fields are traced, ``status`` is a `Status` code (``Status(int(res.status))`` once
    concrete), no history, no timings (`cvxkit.solvers.result.register_pytree`)."""
    import jax

    register_pytree(jax)
    return Result(x=x, status=status, objective=objective, primal_residual=primal_residual,
                  dual_residual=dual_residual, iterations=iterations, backend="jax",
                  method=method, info=dict(info or {}), dual=dual)

