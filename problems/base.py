"""The Problem base class every family derives from, and the check report.

A problem holds the data of one instance (validated on construction) and knows its objective,
its constraint residuals, its CVXPY model and how to hand itself to each solver that fits::

    prob = OptimalTransport(a, b, C, reg=0.05)
    res = prob.solve(method="sinkhorn", backend="jax", tol=1e-9)
    report = prob.check(res)        # against the cached CVXPY reference
    report.ok, report.rel_gap, report.max_violation
"""
from __future__ import annotations

import ast
import contextlib
import functools
import dataclasses
import inspect
import os
import sys
import textwrap
import time
from typing import Any

import numpy as np

from cvxkit.solvers.registry import get_method
from cvxkit.solvers.result import Result, Status

_CVXPY_STATUS = {
    "optimal": Status.OPTIMAL,
    "optimal_inaccurate": Status.OPTIMAL_INACCURATE,
    "infeasible": Status.PRIMAL_INFEASIBLE,
    "infeasible_inaccurate": Status.PRIMAL_INFEASIBLE,
    "unbounded": Status.DUAL_INFEASIBLE,
    "unbounded_inaccurate": Status.DUAL_INFEASIBLE,
    "user_limit": Status.MAX_ITER,
}

#: Clarabel settings used for reference solves (tighter than its defaults).
REFERENCE_SETTINGS = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}


@contextlib.contextmanager
def _quiet_fd1(active: bool):
    """Silence C-level writes to stdout (HiGHS prints a banner even when not verbose)."""
    if not active:
        yield
        return
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (some embedded interpreters)
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def user_callables(failure: str):
    """Re-raise an error from a user's callable as a ``ValueError`` that starts with ``failure``
    (a ``ValueError`` passes through unchanged)."""
    try:
        yield
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - report what the user's callable raised
        raise ValueError(f"{failure}: {type(e).__name__}: {e}") from None


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """A solver's answer compared with the problem's reference solution.

    ``rel_gap = |objective - reference_objective| / max(|reference_objective|, scale)``,
    ``max_violation`` is the largest constraint residual of the answer, ``distance`` the
    relative Frobenius distance to the reference solution. ``ok`` holds when the answer
    converged, ``rel_gap <= rtol`` and ``max_violation <= atol``.
    """

    objective: float
    reference_objective: float
    rel_gap: float
    max_violation: float
    distance: float
    status: Status
    reference_status: Status
    rtol: float
    atol: float
    ok: bool

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "NOT OK"
        return (
            f"{verdict}: objective {self.objective:.10g} vs reference {self.reference_objective:.10g} "
            f"(rel. gap {self.rel_gap:.2e} <= {self.rtol:.0e}?), max violation "
            f"{self.max_violation:.2e} (<= {self.atol:.0e}?), distance to reference "
            f"{self.distance:.2e}, status {self.status.value}"
        )


@functools.lru_cache(maxsize=None)
def _solver_options(solver) -> tuple[str, ...]:
    """The keyword-only parameters of a solver function: the options a user may pass."""
    params = inspect.signature(solver).parameters
    return tuple(sorted(p for p, v in params.items() if v.kind is v.KEYWORD_ONLY))


@functools.lru_cache(maxsize=None)
def _adapter_sets(cls, adapter: str, solver: str) -> frozenset[str]:
    """The keyword arguments an adapter passes to ``solver`` itself (read from its source), which
    a user therefore may not pass to `Problem.solve`."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(cls, adapter))))
    except (OSError, TypeError):  # no source (frozen installs): nothing is known to be set
        return frozenset()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            called = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if called == solver:
                names.update(k.arg for k in node.keywords if k.arg is not None)
    return frozenset(names)


class Problem:
    """Base of every problem family (see the module docstring).

    Subclasses set ``family``, ``methods`` (method name -> name of the adapter method that
    solves this problem with it) and implement `default_method`, `objective`,
    `residuals` and `to_cvxpy`.
    """

    family: str = ""
    methods: dict[str, str] = {}
    #: denominator floor of the relative objective gap in `check`
    objective_scale: float = 1e-12

    # --- to implement in a family -------------------------------------------------------
    def default_method(self) -> str:
        raise NotImplementedError

    def objective(self, x) -> float:
        """Objective value of a candidate solution ``x`` (the problem's own view)."""
        raise NotImplementedError

    def residuals(self, x) -> dict[str, float]:
        """Nonnegative constraint violations of ``x``, by constraint group."""
        raise NotImplementedError

    def _check_x(self, x) -> np.ndarray:
        """``x`` as a float array of shape ``(self.n,)`` (``ValueError`` otherwise)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.n,):
            raise ValueError(f"x must have shape ({self.n},), got {x.shape}")
        return x

    def to_cvxpy(self) -> tuple[Any, Any]:
        """``(cvxpy.Problem, variable)``: the reference model and the variable holding ``x``."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------
    def solve(self, method: str | None = None, backend: str | None = None, **options) -> Result:
        """Solve with ``method`` (default: the family's default) on ``backend`` (default: the
        method's first back end, ``cvxkit.solvers.methods()[method].backends[0]``).

        Raises ``ValueError`` naming the valid choices for an unknown method, backend or option.
        """
        method = method or self.default_method()
        if method not in self.methods:
            raise ValueError(
                f"method {method!r} does not solve {type(self).__name__}; valid choices: "
                f"{', '.join(self.methods)}"
            )
        info = get_method(method, backend)
        backend = info.backends[0] if backend is None else backend
        adapter = getattr(self, self.methods[method])
        allowed = [p for p in _solver_options(info.load())
                   if p != "backend" and p not in _adapter_sets(type(self), self.methods[method],
                                                               info.function)]
        adapter_params = inspect.signature(adapter).parameters
        allowed += [p for p, v in adapter_params.items()
                    if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY) and p != "backend" and p not in allowed]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} for method {method!r} on "
                f"{type(self).__name__} (the problem sets them itself or the method has none); "
                f"valid options: {', '.join(sorted(allowed))}"
            )
        return adapter(backend=backend, **options)

    def reference_options(self) -> dict:
        """CVXPY ``solve`` options of the reference solve (default: Clarabel, tight tolerances)."""
        return {"solver": "CLARABEL", **REFERENCE_SETTINGS}

    def max_violation(self, x) -> float:
        """Largest entry of `residuals`."""
        return max(float(v) for v in self.residuals(x).values())

    def reference(self, **solver_options) -> Result:
        """Solve `to_cvxpy` (see `reference_options`); cached on the instance."""
        cached = getattr(self, "_reference", None)
        if cached is not None and not solver_options:
            return cached
        opts = {**self.reference_options(), **solver_options}
        res = self._solve_cvxpy(opts)
        tight = {k: v for k, v in opts.items() if k not in REFERENCE_SETTINGS}
        if (not solver_options and tight != opts
                and res.status in (Status.OPTIMAL_INACCURATE, Status.NUMERICAL_ERROR)):
            # Clarabel could not reach 1e-9 (exponential cones) or failed at it (a 7x7 metric
            # nearness): its default tolerances
            res = self._solve_cvxpy(tight)
        if not solver_options:
            self._reference = res
        return res

    def _solve_cvxpy(self, opts: dict) -> Result:
        import cvxpy as cp

        prob, var = self.to_cvxpy()
        t0 = time.perf_counter()
        try:
            with _quiet_fd1(not opts.get("verbose", False)):
                prob.solve(**opts)
        except cp.error.SolverError as e:
            return Result(x=None, status=Status.NUMERICAL_ERROR, objective=float("nan"),
                          method=f"cvxpy/{opts['solver']}", info={"error": str(e)})
        x = None if var.value is None else np.asarray(var.value)
        return Result(
            x=x, status=_CVXPY_STATUS.get(prob.status, Status.NUMERICAL_ERROR),
            objective=float(prob.value) if prob.value is not None else float("nan"),
            primal_residual=self.max_violation(x) if x is not None else float("nan"),
            iterations=int(prob.solver_stats.num_iters or 0),
            solve_time=time.perf_counter() - t0, method=f"cvxpy/{opts['solver']}",
            info={"cvxpy_status": prob.status, "settings": opts},
        )

    def check(self, result: Result, rtol: float = 1e-6, atol: float = 1e-6,
              reference: Result | None = None) -> CheckReport:
        """Compare ``result`` with the reference solution (default `reference`)."""
        ref = self.reference() if reference is None else reference
        obj = self.objective(result.x)
        gap = abs(obj - ref.objective) / max(abs(ref.objective), self.objective_scale)
        viol = self.max_violation(result.x)
        if ref.x is not None and result.x is not None:
            dist = float(np.linalg.norm(np.asarray(result.x) - ref.x)
                         / max(np.linalg.norm(ref.x), 1e-300))
        else:
            dist = float("nan")
        ok = bool(result.status.converged and ref.status.converged and gap <= rtol and viol <= atol)
        return CheckReport(obj, ref.objective, gap, viol, dist, result.status, ref.status,
                           rtol, atol, ok)
