"""The one result type every cvxkit solver returns, and its status enum.

A solver that stops without meeting its tolerance says so in ``Result.status``; it never
returns a silently wrong answer. ``Status.INFEASIBLE`` and ``Status.UNBOUNDED`` are aliases of
``PRIMAL_INFEASIBLE`` and ``DUAL_INFEASIBLE`` (the OSQP/SCS names).
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np


class Status(str, enum.Enum):
    """Why a solver stopped."""

    OPTIMAL = "optimal"
    OPTIMAL_INACCURATE = "optimal_inaccurate"
    PRIMAL_INFEASIBLE = "primal_infeasible"
    DUAL_INFEASIBLE = "dual_infeasible"
    MAX_ITER = "max_iter"
    TIME_LIMIT = "time_limit"
    NUMERICAL_ERROR = "numerical_error"
    INTERRUPTED = "interrupted"  # a callback asked to stop
    INFEASIBLE = "primal_infeasible"  # alias
    UNBOUNDED = "dual_infeasible"  # alias

    def __str__(self) -> str:
        return self.value

    @property
    def converged(self) -> bool:
        """True only when the tolerance was met (``optimal``)."""
        return self is Status.OPTIMAL

    @property
    def message(self) -> str:
        """What this status promises, in words (the default `Result.message`)."""
        return _MESSAGES[self.value]

    @property
    def code(self) -> int:
        """The integer a traced `Result` carries for this status (``Status(code)`` inverts it)."""
        return CODES.index(self.value)

    @classmethod
    def _missing_(cls, value):
        # an integer code, e.g. ``Status(int(res.status))`` for a Result returned by jax.jit
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
                and 0 <= value < len(CODES):
            return cls(CODES[int(value)])
        return None


#: the integer codes of the statuses (a traced `Result.status` is one of these)
CODES = ("optimal", "optimal_inaccurate", "primal_infeasible", "dual_infeasible", "max_iter",
         "time_limit", "numerical_error", "interrupted")


_MESSAGES = {
    "optimal": "the stopping criterion holds at the requested tolerance, on the user's data",
    "optimal_inaccurate": "the solver finished, but a final check on the user's data missed the "
                          "requested tolerance",
    "primal_infeasible": "infeasible: a certificate was found and verified on the user's data",
    "dual_infeasible": "unbounded: a certificate (a ray) was found and verified on the user's data",
    "max_iter": "the iteration limit was reached before the tolerance was met",
    "time_limit": "the time limit was reached before the tolerance was met",
    "numerical_error": "a computed value is not finite, or a factorization failed",
    "interrupted": "the callback asked to stop",
}


@dataclasses.dataclass(frozen=True)
class Result:
    """Outcome of one solve.

    Attributes:
        x: the solution in the problem's own terms (a transport plan, a distance matrix, ...).
        status: why the solver stopped (`Status`).
        objective: objective value at ``x`` (the quantity the problem minimizes).
        primal_residual: the solver's primal feasibility measure at ``x`` (documented per solver).
        dual_residual: the solver's dual/optimality measure, ``nan`` where not defined.
        iterations: iterations performed.
        solve_time: seconds in the iteration loop (JAX compile time excluded).
        setup_time: seconds spent before the loop (validation, scaling, factorizations).
        compile_time: seconds of JAX tracing and compilation (0 for numpy).
        history: per-check arrays (``"iteration"``, residuals, objective ...) for plots.
        backend: ``"numpy"`` or ``"jax"``.
        method: the registered method name.
        info: solver-specific extras (dual potentials, schedules, certificates ...).
        dual: the family's natural dual (QP/LP multipliers, OT potentials, ...), ``None`` where
            the solver does not set it.
        message: why the solver stopped, in words; empty means the status's default message
            (`Status.message`), which the constructor fills in.
    """

    x: Any
    status: Status
    objective: float
    primal_residual: float = float("nan")
    dual_residual: float = float("nan")
    iterations: int = 0
    solve_time: float = 0.0
    setup_time: float = 0.0
    compile_time: float = 0.0
    history: dict = dataclasses.field(default_factory=dict)
    backend: str = "numpy"
    method: str = ""
    info: dict = dataclasses.field(default_factory=dict)
    dual: Any = None
    message: str = ""

    def __post_init__(self):
        if not self.message:
            try:
                object.__setattr__(self, "message", Status(self.status).message)
            except (TypeError, ValueError):  # a traced or batched status (no single message)
                pass

    @property
    def converged(self) -> bool:
        """True when the solver met its tolerance (a batch: every member did)."""
        if isinstance(self.status, np.ndarray):  # a batch: one Status per member
            return bool(all(Status(s) is Status.OPTIMAL for s in self.status.ravel()))
        return self.status.converged

    def replace(self, **changes) -> "Result":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        shape = getattr(self.x, "shape", None)
        if not isinstance(self.status, (Status, np.ndarray)) or (
                isinstance(self.status, np.ndarray) and self.status.dtype != object):
            # a traced Result (inside jax.jit / vmap), or one returned by them: integer codes
            return (f"Result(status={self.status!r} (codes: Status(int(code))), objective="
                    f"{self.objective!r}, method={self.method!r}, x.shape={shape})")
        if isinstance(self.status, np.ndarray):  # a batch: per-member fields
            n_opt = sum(Status(s) is Status.OPTIMAL for s in self.status.ravel())
            return (
                f"Result(batch={self.status.size}, optimal={n_opt}/{self.status.size}, "
                f"objective={np.asarray(self.objective)!r}, iterations max "
                f"{int(np.max(self.iterations, initial=0))}, solve_time={self.solve_time:.3g}s, "
                f"backend={self.backend!r}, method={self.method!r}, x.shape={shape})"
            )
        return (
            f"Result(status={self.status.value}, objective={self.objective:.10g}, "
            f"primal_residual={self.primal_residual:.3g}, iterations={self.iterations}, "
            f"solve_time={self.solve_time:.3g}s, backend={self.backend!r}, method={self.method!r}, "
            f"x.shape={shape})"
        )


def batch_message(statuses, messages=None) -> str:
    """``"k of B members optimal; ..."``: the count of each status, then the first member of
    each other status with its own message."""
    statuses = [Status(s) for s in statuses]
    B = len(statuses)
    n_opt = sum(s is Status.OPTIMAL for s in statuses)
    parts = [f"{n_opt} of {B} members optimal"]
    for st in dict.fromkeys(s for s in statuses if s is not Status.OPTIMAL):
        idx = [i for i, s in enumerate(statuses) if s is st]
        why = (messages[idx[0]] if messages is not None and messages[idx[0]] else st.message)
        parts.append(f"{len(idx)} {st.value} (first: member {idx[0]}: {why})")
    return "; ".join(parts)


def as_numpy_history(history: dict[str, list]) -> dict[str, np.ndarray]:
    """Turn lists of per-check values into numpy arrays."""
    return {k: np.asarray(v) for k, v in history.items()}


#: `Result` fields that hold arrays (traced under jax.jit/vmap); the others are static metadata
ARRAY_FIELDS = ("x", "status", "objective", "primal_residual", "dual_residual", "iterations",
                "dual", "info", "history")
STATIC_FIELDS = ("solve_time", "setup_time", "compile_time", "backend", "method", "message")


def register_pytree(jax) -> None:
    """Make `Result` a JAX pytree (idempotent): the `ARRAY_FIELDS` are children, so under
    ``jax.vmap`` each gains the batch axis; the `STATIC_FIELDS` are auxiliary data."""
    if getattr(register_pytree, "done", False):
        return

    def flatten(r: Result):
        return tuple(getattr(r, k) for k in ARRAY_FIELDS), tuple(getattr(r, k) for k in STATIC_FIELDS)

    def unflatten(aux, children):
        r = object.__new__(Result)  # no __post_init__: children may be tracers or placeholders
        for k, v in zip(ARRAY_FIELDS + STATIC_FIELDS, tuple(children) + tuple(aux)):
            object.__setattr__(r, k, v)
        return r

    jax.tree_util.register_pytree_node(Result, flatten, unflatten)
    register_pytree.done = True
