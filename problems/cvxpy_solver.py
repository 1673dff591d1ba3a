r"""A CVXPY solver backed by cvxkit: ``problem.solve(solver=cvxkit.CvxpySolver(...))``.

`CvxpySolver` is a CVXPY "custom solver" (an instance of a subclass of CVXPY's
``ConicSolver``, passed as ``solver=``). CVXPY canonicalizes the problem into its conic form
(Clarabel's layout),

$$
\min_x\ \tfrac12 x^\top P x + c^\top x \quad\text{s.t.}\quad Ax + s = b,\quad
s \in \{0\}^{z} \times \mathbb{R}_+^{l} \times \mathcal{Q}^{k_1}\times\cdots,\quad
lb \le x \le ub,
$$

and hands the arrays to `CvxpySolver.solve_via_data`, which solves them with

* ``admm_conic`` (`cvxkit.solvers.admm_conic.admm_conic`, the conic ADMM) when there are
  second-order cones $\mathcal{Q}^k$ (or when asked for): the data as it is, with one
  nonnegative row $\pm x_j + s = \pm\,$bound per finite variable bound, after the cone's
  inequality rows;
* ``admm`` (`cvxkit.solvers.admm_qp.admm_qp`, OSQP's ADMM) when the objective is quadratic
  ($P \ne 0$): rows $b_i \le (Ax)_i \le b_i$ for the zero cone, $(Ax)_i \le b_i$ for the
  nonnegative cone, and one row $lb_j \le x_j \le ub_j$ per variable with a finite bound;
* ``halpern_pdhg`` (`cvxkit.solvers.halpern_pdhg.halpern_pdhg`, restarted Halpern PDHG) when it
  is linear, with the variable bounds kept as bounds.

The duals handed back are in the convention of CVXPY's conic solvers (Clarabel's): $z$ with
$Px + c + A^\top z = 0$ and $z_i \ge 0$ on the nonnegative cone, that is
$z = -\partial p^\star / \partial b$, $z \in K^*$ (a second-order cone's $z$ in that cone);
CVXPY turns them into each constraint's ``dual_value`` (nonnegative for an inequality,
whichever way it is written). ``admm``'s and ``admm_conic``'s multipliers $y$ are $z$ itself;
``halpern_pdhg``'s are $-z$. For an infeasible problem the duals are a Farkas certificate
($A^\top z = 0$, $b^\top z < 0$, $z \in K^*$, scaled to unit infinity norm).

Exponential, power and semidefinite cones are not supported: CVXPY's solver selection raises
``cvxpy.error.SolverError`` naming the missing cones. The module imports CVXPY;
``import cvxkit`` does not (``cvxkit.CvxpySolver`` loads this module on first use).
"""
from __future__ import annotations

import functools
import inspect
import time

import cvxpy.settings as cps
import numpy as np
import scipy.sparse as sp
from cvxpy.constraints import SOC, NonNeg, Zero
from cvxpy.error import SolverError
from cvxpy.reductions.solution import Solution, failure_solution
from cvxpy.reductions.solvers import utilities
from cvxpy.reductions.solvers.conic_solvers.conic_solver import ConicSolver
from cvxpy.reductions.solvers.solver import expand_cones

from cvxkit.solvers.admm_conic import admm_conic
from cvxkit.solvers.admm_qp import admm_qp
from cvxkit.solvers.halpern_pdhg import halpern_pdhg
from cvxkit.solvers.qp_workspace import admm_qp_setup
from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.validate import boolean, choice

#: the solver each method name selects
_SOLVERS = {"admm": admm_qp, "halpern_pdhg": halpern_pdhg, "admm_conic": admm_conic}
METHODS = ("auto",) + tuple(_SOLVERS)

#: defaults this front end sets where the user does not (tight enough for CVXPY's 4-place checks)
DEFAULTS = {"admm": {"tol": 1e-6, "max_iter": 20_000, "polish": True},
            "halpern_pdhg": {"tol": 1e-7}, "admm_conic": {"tol": 1e-6, "max_iter": 50_000}}

#: cvxkit status -> CVXPY status
STATUS_MAP = {Status.OPTIMAL: cps.OPTIMAL, Status.OPTIMAL_INACCURATE: cps.OPTIMAL_INACCURATE,
              Status.PRIMAL_INFEASIBLE: cps.INFEASIBLE, Status.DUAL_INFEASIBLE: cps.UNBOUNDED,
              Status.MAX_ITER: cps.USER_LIMIT, Status.TIME_LIMIT: cps.USER_LIMIT,
              Status.INTERRUPTED: cps.USER_LIMIT, Status.NUMERICAL_ERROR: cps.SOLVER_ERROR}

#: CVXPY's cone classes, in words (for the error naming what is not supported)
_CONE_NAMES = {"ExpCone": "exponential cone (ExpCone)",
               "PSD": "positive semidefinite cone (PSD)", "SvecPSD": "positive semidefinite "
               "cone (PSD)", "PowCone3D": "power cone (PowCone3D)",
               "PowConeND": "power cone (PowConeND)"}

#: solve() keywords that steer CVXPY's canonicalization, not the solver
_CANON_KEYS = ("use_quad_obj",)


def _solver(method: str):
    return _SOLVERS[method]


@functools.lru_cache(maxsize=None)
def _accepted(method: str) -> frozenset:
    """The options a user may pass to ``method``'s solver (its keyword-only parameters, less
    the ones this front end sets itself)."""
    params = inspect.signature(_solver(method)).parameters
    return frozenset(p for p, v in params.items()
                     if v.kind is v.KEYWORD_ONLY and p not in ("backend", "warm_start"))


def _allowed(method: str) -> frozenset:
    return frozenset().union(*(_accepted(m) for m in _SOLVERS)) if method == "auto" \
        else _accepted(method)


def _check_names(method: str, options: dict, where: str) -> None:
    unknown = sorted(set(options) - _allowed(method))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} {where} with method "
                         f"{method!r}; valid options: backend, "
                         f"{', '.join(sorted(_allowed(method)))}")


class CvxpySolver(ConicSolver):
    """cvxkit as a CVXPY solver: ``problem.solve(solver=CvxpySolver(...))``.

    Takes LPs, QPs and SOCPs (equality and inequality constraints, second-order cones, variable
    bounds, a linear or convex quadratic objective); see the module docstring and
    docs/cvxpy.md for the mapping.

    Args:
        method: ``"auto"`` (``admm_conic`` when there are second-order cones, else ``admm``
            for a quadratic objective and ``halpern_pdhg`` for a linear one), ``"admm_conic"``
            (any problem here), ``"admm"`` (any LP or QP) or ``"halpern_pdhg"`` (LPs only).
        backend: ``"numpy"`` or ``"jax"``.
        warm_start: start each solve from the last solution (primal and dual; an optimal or
            iteration-limited one, not a certificate) that this object found for a problem of
            the same shape and method; ``problem.solve(warm_start=False)`` switches it off for
            one call.
        reuse_setup: ``admm``: when CVXPY hands over the same ``P`` and ``A`` (same sparsity
            and values) as in this object's last solve of a problem of that shape, with the
            same options, only the vectors (``q``, the bounds) are new (a problem whose
            parameters enter only them): re-solve with the kept scaling and factorization
            (`cvxkit.solvers.qp_workspace`; from zeros with the kept penalty unless warm
            starts are on). ``solver_stats.extra_stats['workspace']`` says what was kept.
            ``False``: a new set-up for every solve.
        **options: passed to the solver (``tol``, ``eps_abs``, ``eps_rel``, ``max_iter``,
            ``time_limit``, ``verbose``, ``check_every``, ``dtype``, ``polish``, ...). With
            ``method="auto"`` an option that only some of the solvers take (``polish`` for
            ``admm``; ``reflection`` for ``halpern_pdhg``; ...) applies to those only. Unset,
            ``admm`` gets ``tol=1e-6, max_iter=20000, polish=True``, ``admm_conic``
            ``tol=1e-6, max_iter=50000`` and ``halpern_pdhg`` ``tol=1e-7`` (`DEFAULTS`). An
            unknown option raises ``ValueError`` naming the valid ones; so does one passed to
            ``problem.solve``, where any of them (and ``backend``) may also be given for one
            call (``method`` may not: ``problem.solve`` takes that keyword itself).

    After a solve, ``problem.solver_stats`` holds ``solve_time``, ``setup_time`` (cvxkit's own:
    data conversion, validation, scaling, factorization), ``num_iters`` and ``extra_stats``:
    a dict with the cvxkit ``result`` (`Result`), its ``status``, ``message``, ``method``,
    ``backend``, ``compile_time`` and ``workspace`` (``admm``: what a re-solve kept, see
    ``reuse_setup``; else ``None``). ``last_result`` is the same `Result`.
    """

    MIP_CAPABLE = False
    BOUNDED_VARIABLES = True
    SUPPORTED_CONSTRAINTS = [Zero, NonNeg, SOC]

    def __init__(self, method: str = "auto", backend: str = "numpy", warm_start: bool = False,
                 reuse_setup: bool = True, **options) -> None:
        super().__init__()
        self.method = choice("method", method, METHODS)
        self.backend = choice("backend", backend, ("numpy", "jax"))
        self.warm_start = boolean("warm_start", warm_start)
        self.reuse_setup = boolean("reuse_setup", reuse_setup)
        _check_names(self.method, options, "for CvxpySolver")
        self.options = dict(options)
        #: the last `Result` per problem shape ``(method, n, rows, zero rows, bounded
        #: variables)``, for warm starts
        self._last: dict[tuple, Result] = {}
        #: per problem shape: ``(P, A, QPWorkspace)`` of the last admm solve
        self._workspaces: dict[tuple, tuple] = {}
        self.last_result: Result | None = None

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return (f"CvxpySolver(method={self.method!r}, backend={self.backend!r}, "
                f"warm_start={self.warm_start}{opts})")

    # --- CVXPY's solver interface ---------------------------------------------------------
    def name(self) -> str:
        """The name CVXPY reports (``problem.solver_stats.solver_name``)."""
        return "CVXKIT"

    def import_solver(self) -> None:
        """Nothing to import: cvxkit is already loaded."""

    def supports_quad_obj(self) -> bool:
        """A quadratic objective is taken as it is (``P``), not through a cone."""
        return True

    def can_solve(self, problem_form) -> bool:
        """True for LPs, QPs and SOCPs; else raise ``cvxpy.error.SolverError`` naming the cones that
        CVXPY's canonicalization needs and this solver lacks (CVXPY calls it on a custom
        solver before building the chain; its own message would not say what is missing)."""
        if problem_form.is_mixed_integer():
            return False  # CVXPY says so itself: the solver is not MIP-capable
        quad = self.supports_quad_obj() and problem_form.has_quadratic_objective()
        cones, _, _ = expand_cones(problem_form.cones(quad_obj=quad).copy(),
                                   frozenset(self.SUPPORTED_CONSTRAINTS))
        missing = sorted({_CONE_NAMES.get(c.__name__, c.__name__)
                          for c in cones - set(self.SUPPORTED_CONSTRAINTS)})
        if missing:
            raise SolverError(
                f"{self.name()} (cvxkit.CvxpySolver) solves LPs, QPs and SOCPs (linear "
                f"equality and inequality constraints, second-order cones, variable bounds, a "
                f"linear or convex quadratic objective); this problem needs "
                f"{' and '.join(missing)} constraints after CVXPY's canonicalization, which it "
                f"does not support. Solve it with a conic solver, e.g. solver=cvxpy.CLARABEL.")
        return True

    def apply(self, problem):
        """CVXPY's conic data (``ConicSolver.apply``), plus the sizes ``n_var``, ``n_eq`` and
        ``n_ineq`` that CVXPY's QP interfaces report (numbers of variables, equality and
        inequality rows; the variable bounds are not rows)."""
        data, inv_data = super().apply(problem)
        dims = data[self.DIMS]
        data.update(n_var=data[cps.C].shape[0], n_eq=dims.zero, n_ineq=dims.nonneg)
        return data, inv_data

    def cite(self, data) -> str:
        """Citations of the algorithms (OSQP's ADMM; the conic ADMM; restarted Halpern PDHG)."""
        return ("Stellato, Banjac, Goulart, Bemporad & Boyd, OSQP: an operator splitting solver "
                "for quadratic programs, Math. Prog. Comp. 2020; O'Donoghue, Chu, Parikh & Boyd, "
                "Conic optimization via operator splitting and homogeneous self-dual embedding, "
                "JOTA 2016; Garstka, Cannon & Goulart, COSMO: a conic operator splitting method "
                "for convex conic problems, JOTA 2021; Lu & Yang, Restarted Halpern PDHG for "
                "linear programming, arXiv 2407.16144")

    def solve_via_data(self, data, warm_start: bool, verbose: bool, solver_opts,
                       solver_cache=None) -> Result:
        """Solve CVXPY's conic data (``data`` from ``apply``) and return the cvxkit `Result`
        (with ``info['cvxpy_dual']``, the duals in CVXPY's convention, and
        ``info['cvxpy_status']``); ``solver_opts`` are ``problem.solve``'s extra keywords."""
        t0 = time.perf_counter()
        opts = {k: v for k, v in (solver_opts or {}).items() if k not in _CANON_KEYS}
        method = self.method
        backend = choice("backend", opts.pop("backend", self.backend), ("numpy", "jax"))
        _check_names(method, opts, "for problem.solve")
        opts = {**self.options, **opts}
        c = np.asarray(data[cps.C], dtype=np.float64)
        n = c.shape[0]
        P = data.get(cps.P)
        A = sp.csr_matrix(data[cps.A]) if data[cps.A] is not None else sp.csr_matrix((0, n))
        b = np.asarray(data[cps.B], dtype=np.float64)
        dims = data[self.DIMS]
        zero, nonneg, soc = dims.zero, dims.nonneg, [int(k) for k in dims.soc]
        lb, ub = data.get(cps.LOWER_BOUNDS), data.get(cps.UPPER_BOUNDS)
        lb = np.full(n, -np.inf) if lb is None else np.asarray(lb, dtype=np.float64)
        ub = np.full(n, np.inf) if ub is None else np.asarray(ub, dtype=np.float64)
        quadratic = P is not None and sp.csr_matrix(P).count_nonzero() > 0
        if method == "auto":
            method = "admm_conic" if soc else ("admm" if quadratic else "halpern_pdhg")
        elif soc and method != "admm_conic":
            raise SolverError(f"method {method!r} takes no second-order cones and this problem "
                              "has some: use method='admm_conic' or 'auto'")
        elif method == "halpern_pdhg" and quadratic:
            raise SolverError("method 'halpern_pdhg' solves LPs only and this problem has a "
                              "quadratic objective: use method='admm' or 'auto'")
        accepted = _accepted(method)
        opts = {**DEFAULTS[method], **{k: v for k, v in opts.items() if k in accepted}}
        opts["verbose"] = bool(opts.get("verbose", False) or verbose)
        key = (method, n, A.shape[0], zero, tuple(soc), int(np.sum(np.isfinite(lb))),
               int(np.sum(np.isfinite(ub))), int(np.sum(np.isfinite(lb) | np.isfinite(ub))))
        warm = self._last.get(key) if (self.warm_start and warm_start) else None
        conversion = time.perf_counter() - t0
        if method == "admm":
            res = self._admm(P, c, A, b, zero, lb, ub, backend, warm, opts, key)
        elif method == "admm_conic":
            res = self._admm_conic(P, c, A, b, (zero, nonneg, soc), lb, ub, backend, warm, opts)
        else:
            res = self._pdhg(c, A, b, zero, lb, ub, backend, warm, opts)
        res = res.replace(setup_time=res.setup_time + conversion)
        if res.info["cvxpy_status"] in cps.SOLUTION_PRESENT:  # (not a certificate's iterate)
            self._last[key] = res
        self.last_result = res
        if opts["verbose"]:
            print(f"cvxkit ({method}, {backend}): {Status(res.status).value}: {res.message}")
        return res

    def _admm(self, P, c, A, b, zero, lb, ub, backend, warm, opts, key) -> Result:
        """OSQP's form: the cone rows, then one row per finitely bounded variable."""
        n, m = c.shape[0], A.shape[0]
        boxed = np.flatnonzero(np.isfinite(lb) | np.isfinite(ub))
        rows = sp.vstack([A, sp.csr_matrix((np.ones(boxed.size), (np.arange(boxed.size), boxed)),
                                           shape=(boxed.size, n))]).tocsc()
        l = np.concatenate([b[:zero], np.full(m - zero, -np.inf), lb[boxed]])
        u = np.concatenate([b, ub[boxed]])
        P = sp.csc_matrix((n, n)) if P is None else sp.csc_matrix(P)
        if not self.reuse_setup:
            res = _solver("admm")(P, c, rows, l, u, backend=backend, warm_start=warm, **opts)
        else:
            res = self._resolve(key, P, c, rows, l, u, backend, warm, opts)
        ray = res.info.get("certificate") if res.status is Status.PRIMAL_INFEASIBLE else None
        y = ray if ray is not None else res.info.get("y")
        return _with_duals(res, None if y is None else np.asarray(y)[:m])

    def _resolve(self, key, P, q, A, l, u, backend, warm, opts) -> Result:
        """The QP by the workspace of this shape's last solve when ``P``, ``A`` and the options
        are the same (a re-solve with new vectors), else by a new workspace."""
        held = self._workspaces.get(key)
        if held is not None and held[2].same_options(backend=backend, **opts) and \
                _same_matrix(held[0], P) and _same_matrix(held[1], A):
            ws = held[2]
            return ws.solve(q, l, u, warm_start=warm if warm is not None else {"rho": ws.rho})
        ws = admm_qp_setup(P, q, A, l, u, backend=backend, warm_start=warm, **opts)
        self._workspaces[key] = (P.copy(), A.copy(), ws)
        return ws.solve()

    @staticmethod
    def _admm_conic(P, c, A, b, cones, lb, ub, backend, warm, opts) -> Result:
        """SCS's form as it is, with one nonnegative row per finite variable bound placed after
        the inequality rows (a second-order cone's rows come last); their duals are dropped."""
        zero, nonneg, soc = cones
        n, k = c.shape[0], zero + nonneg
        lo, up = np.flatnonzero(np.isfinite(lb)), np.flatnonzero(np.isfinite(ub))
        E = sp.csr_matrix((np.concatenate([-np.ones(lo.size), np.ones(up.size)]),
                           (np.arange(lo.size + up.size), np.concatenate([lo, up]))),
                          shape=(lo.size + up.size, n))
        rows = sp.vstack([A[:k], E, A[k:]]).tocsc()
        rhs = np.concatenate([b[:k], -lb[lo], ub[up], b[k:]])
        res = _solver("admm_conic")(P, c, rows, rhs, {"z": zero, "l": nonneg + E.shape[0],
                                                      "q": soc},
                                    backend=backend, warm_start=warm, **opts)
        ray = res.info.get("certificate") if res.status is Status.PRIMAL_INFEASIBLE else None
        y = ray if ray is not None else res.info.get("y")
        return _with_duals(res, None if y is None else np.delete(
            np.asarray(y), np.arange(k, k + E.shape[0])))

    @staticmethod
    def _pdhg(c, A, b, zero, lb, ub, backend, warm, opts) -> Result:
        """The bound form ``lc <= Ax <= uc, lb <= x <= ub``; its row duals are ``-z``."""
        m = A.shape[0]
        lc = np.concatenate([b[:zero], np.full(m - zero, -np.inf)])
        res = _solver("halpern_pdhg")(c, A, lc, b, lb, ub, backend=backend, warm_start=warm,
                                      **opts)
        y = res.info.get("certificate") if res.status is Status.PRIMAL_INFEASIBLE \
            else res.info.get("y")
        return _with_duals(res, None if y is None else -np.asarray(y))

    def invert(self, solution: Result, inverse_data) -> Solution:
        """CVXPY's `Solution` from the `Result` of `solve_via_data`: status (see
        `STATUS_MAP`), value (plus CVXPY's constant offset), primal and dual values (a Farkas
        certificate as the duals of an infeasible problem) and the solver statistics."""
        res = solution
        status = res.info["cvxpy_status"]
        attr = {cps.SOLVE_TIME: res.solve_time, cps.SETUP_TIME: res.setup_time,
                cps.NUM_ITERS: int(res.iterations),
                cps.EXTRA_STATS: {"result": res, "status": Status(res.status).value,
                                  "message": res.message, "method": res.method,
                                  "backend": res.backend, "compile_time": res.compile_time,
                                  "workspace": res.info.get("workspace")}}
        z = res.info.get("cvxpy_dual")
        duals = {}
        if z is not None and status in cps.SOLUTION_PRESENT + [cps.INFEASIBLE]:
            zero = inverse_data[self.DIMS].zero
            duals = utilities.get_dual_values(z[:zero], utilities.extract_dual_value,
                                              inverse_data[self.EQ_CONSTR])
            duals.update(utilities.get_dual_values(z[zero:], utilities.extract_dual_value,
                                                   inverse_data[self.NEQ_CONSTR]))
        if status in cps.SOLUTION_PRESENT:
            return Solution(status, float(res.objective) + inverse_data[cps.OFFSET],
                            {inverse_data[self.VAR_ID]: np.asarray(res.x)}, duals, attr)
        return failure_solution(status, attr, duals or None)


def _same_matrix(M, N) -> bool:
    """Two CSC matrices with the same shape, sparsity pattern and values."""
    return M.shape == N.shape and M.nnz == N.nnz and np.array_equal(M.indptr, N.indptr) and \
        np.array_equal(M.indices, N.indices) and np.array_equal(M.data, N.data)


def _with_duals(res: Result, z) -> Result:
    """``res`` with CVXPY's duals ``z`` (or certificate) and status in ``info``."""
    status = STATUS_MAP.get(Status(res.status), cps.SOLVER_ERROR)
    if z is not None and not np.all(np.isfinite(z)):
        z = None
    return res.replace(info={**res.info, "cvxpy_dual": z, "cvxpy_status": status})


def solve(problem, **options):
    """``problem.solve(solver=CvxpySolver(**options))``: solve a CVXPY problem with cvxkit and
    return its optimal value (``problem``'s variables, duals and status are set as by any
    CVXPY solve).

    Args:
        problem: a ``cvxpy.Problem`` (an LP or a QP).
        **options: `CvxpySolver`'s arguments (``method``, ``backend``, ``warm_start`` and the
            solver options).
    """
    return problem.solve(solver=CvxpySolver(**options))
