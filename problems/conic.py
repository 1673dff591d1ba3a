r"""Quadratic programs in OSQP's form, from arrays or from a CVXPY problem; batches of them.

``QuadraticProgram(P, q, A, l, u)``:

$$
\min_x\ \tfrac12 x^\top P x + q^\top x \quad\text{s.t.}\quad l \le Ax \le u,
$$

with $P$ symmetric positive semidefinite (dense or scipy.sparse), $l_i = -\infty$ or
$u_i = +\infty$ where a side is absent, and $l_i = u_i$ for an equality. Arrays with a leading
batch dimension (any of ``P`` (B, n, n), ``q`` (B, n), ``A`` (B, m, n), ``l``, ``u`` (B, m); the
others are shared) define B independent QPs solved in one call: on the JAX back end as one
vmapped, jitted loop.

``QuadraticProgram.from_cvxpy(problem)`` takes a CVXPY problem that is a QP (through CVXPY's
own QP canonicalization), and ``qp.unpack(result)`` writes a solution back into that problem's
variables and constraints.

Method ``"admm"``: the OSQP algorithm (`cvxkit.solvers.admm`), numpy or JAX. Reference:
the CVXPY model of `to_cvxpy`, solved by Clarabel at tolerance 1e-9.
"""
from __future__ import annotations

import numpy as np

from cvxkit.problems.base import Problem
from cvxkit.solvers.admm import admm_qp, validate_qp
from cvxkit.solvers.kkt import is_sparse
from cvxkit.solvers.result import Result, Status


class QuadraticProgram(Problem):
    r"""$\min \tfrac12 x^\top Px + q^\top x$ s.t. $l \le Ax \le u$ (OSQP's form), or a batch of them.

    Args:
        P: (n, n) symmetric positive semidefinite, dense or scipy.sparse (a batch: (B, n, n)).
        q: (n,) (a batch: (B, n)).
        A: (m, n), dense or scipy.sparse, or ``None`` for no constraints (a batch: (B, m, n)).
        l, u: (m,) bounds with ``l <= u``; ``-inf``/``+inf`` (or magnitude $\ge 10^{20}$) where
            a side is absent; ``None`` means all infinite (a batch: (B, m)).

    Bad data raises ``ValueError``: wrong shapes, NaN or infinite matrix entries, ``l > u``, a
    non-symmetric ``P`` or one with a negative diagonal entry. (Positive semidefiniteness is not
    checked further: a non-convex ``P`` makes ADMM diverge, which it reports as
    ``numerical_error``.)

    The solution ``Result.x`` is ``x`` ((B, n) for a batch); ``Result.info['y']`` holds the
    duals ($y_i > 0$ when the upper bound is active, $< 0$ for the lower one), so that
    $Px + q + A^\top y = 0$ at a solution.
    """

    family = "qp"
    methods = {"admm": "_solve_admm"}
    #: the objective's constant term (nonzero only for QPs built by `from_cvxpy`)
    offset: float = 0.0

    def __init__(self, P, q, A=None, l=None, u=None):
        self.P, self.q, self.A, self.l, self.u, self.batch = validate_qp(P, q, A, l, u)
        self.n, self.m = self.q.shape[-1], self.A.shape[-2]
        if is_sparse(self.P):
            pmax = float(abs(self.P).max()) if self.P.nnz else 0.0
        else:
            pmax = float(np.abs(self.P).max(initial=0.0))
        #: the floor of the relative gap's denominator in `check`
        self.objective_scale = 1e-9 * max(1.0, pmax, float(np.abs(self.q).max(initial=0.0)))
        self._cvxpy = None  # (problem, chain, inverse_data) when built by from_cvxpy

    # --- construction from CVXPY --------------------------------------------------------
    @classmethod
    def from_cvxpy(cls, problem) -> "QuadraticProgram":
        """The QP of a CVXPY problem, through CVXPY's QP canonicalization (its OSQP interface).

        ``x`` is the stacked vector of the canonicalized problem's variables (which may include
        auxiliary ones); use `unpack` to map a `Result` back to ``problem``'s variables. The
        objective's constant term is kept in ``offset`` (`objective` excludes it; `unpack` adds
        it back). Parameters are read at their current values. Raises ``ValueError`` when the
        problem is not a QP (not DCP, or with cones other than linear ones).
        """
        import cvxpy as cp
        import scipy.sparse as sp
        from cvxpy import settings as cps

        if not isinstance(problem, cp.Problem):
            raise ValueError(f"from_cvxpy needs a cvxpy.Problem, got {type(problem).__name__}")
        try:
            data, chain, inverse = problem.get_problem_data(cp.OSQP)
        except (cp.error.DCPError, cp.error.SolverError, cp.error.ParameterError,
                ValueError) as e:
            raise ValueError(f"the CVXPY problem is not a QP that OSQP's form can hold: {e}") from None
        A = sp.vstack([data["A"], data["F"]]).tocsc()
        n_ineq = data["G"].shape[0]
        l = np.concatenate([data["b"], np.full(n_ineq, -np.inf)])
        u = np.concatenate([data["b"], data["G"]])
        qp = cls(sp.csc_matrix(data["P"]), data["q"], A, l, u)
        qp.offset = float(inverse[-1][cps.OFFSET])
        qp._cvxpy = (problem, chain, inverse)
        return qp

    def unpack(self, result: Result) -> dict:
        """Write ``result`` into the CVXPY problem given to `from_cvxpy`; return {variable: value}.

        Sets each variable's ``value``, each constraint's ``dual_value`` and the problem's
        ``value`` (``result.objective`` plus the constant ``offset``) and status, as
        ``problem.solve()`` would.
        """
        if self._cvxpy is None:
            raise ValueError("unpack needs a QuadraticProgram built by from_cvxpy")
        import cvxpy as cp
        from cvxpy import settings as cps
        from cvxpy.reductions.solution import Solution, failure_solution

        problem, chain, inverse = self._cvxpy
        solver = chain.reductions[-1]
        status = {Status.OPTIMAL: cps.OPTIMAL, Status.OPTIMAL_INACCURATE: cps.OPTIMAL_INACCURATE,
                  Status.PRIMAL_INFEASIBLE: cps.INFEASIBLE,
                  Status.DUAL_INFEASIBLE: cps.UNBOUNDED}.get(result.status, cps.USER_LIMIT)
        if status in cps.SOLUTION_PRESENT:
            duals = solver.extract_duals_from_solution_attribute(result.info["y"], inverse[-1])
            sol = Solution(status, result.objective + self.offset,
                           {solver.VAR_ID: np.asarray(result.x)}, duals, {})
        else:
            sol = failure_solution(status)
        for reduction, inv in reversed(list(zip(chain.reductions[:-1], inverse[:-1]))):
            sol = reduction.invert(sol, inv)
        problem.unpack(sol)
        return {v: v.value for v in problem.variables()}

    # --- batches ------------------------------------------------------------------------
    def member(self, i: int) -> "QuadraticProgram":
        """The ``i``-th QP of a batch (a plain QuadraticProgram)."""
        if self.batch is None:
            raise ValueError("member() is for a batch of QPs")
        pick = lambda M, nd: M[i] if np.ndim(M) == nd else M  # noqa: E731
        return QuadraticProgram(pick(self.P, 3), pick(self.q, 2), pick(self.A, 3), pick(self.l, 2),
                                pick(self.u, 2))

    def _members(self):
        return [self.member(i) for i in range(self.batch)] if self.batch is not None else [self]

    def _products(self, x):
        """``(x, Px, Ax)`` with a leading member axis (B or 1), for any x of the right shape."""
        x = self._check_x(x).reshape(-1, self.n)
        if self.batch is None:
            return x, (self.P @ x[0])[None], (self.A @ x[0])[None]
        Px = np.einsum("bij,bj->bi", np.broadcast_to(self.P, (self.batch, self.n, self.n)), x)
        Ax = np.einsum("bij,bj->bi", np.broadcast_to(self.A, (self.batch, self.m, self.n)), x)
        return x, Px, Ax

    # --- the Problem interface ----------------------------------------------------------
    def default_method(self) -> str:
        return "admm"

    def _check_x(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        shape = (self.n,) if self.batch is None else (self.batch, self.n)
        if x.shape != shape:
            raise ValueError(f"x must have shape {shape}, got {x.shape}")
        return x

    def objectives(self, x) -> np.ndarray:
        r"""$\tfrac12 x^\top Px + q^\top x$ of each member (shape (B,); (1,) for a single QP)."""
        x, Px, _ = self._products(x)
        return 0.5 * np.einsum("bi,bi->b", x, Px) + np.einsum("bi,bi->b", np.broadcast_to(
            self.q, x.shape), x)

    def objective(self, x) -> float:
        """$\tfrac12 x^\top Px + q^\top x$ (a batch: the sum over its members)."""
        return float(self.objectives(x).sum())

    def residuals(self, x) -> dict[str, float]:
        """Largest violations of the lower and upper bounds, ``max(l - Ax)_+``, ``max(Ax - u)_+``."""
        _, _, Ax = self._products(x)
        return {"lower": float(np.max(self.l - Ax, initial=0.0)),
                "upper": float(np.max(Ax - self.u, initial=0.0))}

    def kkt_residuals(self, x, y) -> dict[str, float]:
        r"""KKT residuals of a primal-dual pair (infinity norms; a batch: maxima over members).

        ``primal``: the bound violation of $Ax$; ``dual``: $\lVert Px + q + A^\top y\rVert$;
        ``complementarity``: $\max_i |y_i|\,\text{dist}_i$, where $\text{dist}_i$ is the
        distance of $z = \Pi_{[l,u]}(Ax)$ to the bound that the sign of $y_i$ calls for
        ($y_i > 0$ needs $z_i = u_i$, $y_i < 0$ needs $z_i = l_i$), or $|y_i|$ itself where that
        bound is infinite: 0 exactly when $y$ lies in the normal cone of $[l, u]$ at $z$.
        """
        x, Px, Ax = self._products(x)
        y = np.asarray(y, dtype=np.float64).reshape(-1, self.m)
        if self.batch is None:
            Aty = (self.A.T @ y[0])[None]
        else:
            Aty = np.einsum("bij,bi->bj", np.broadcast_to(self.A, (self.batch, self.m, self.n)), y)
        l, u = np.broadcast_to(self.l, Ax.shape), np.broadcast_to(self.u, Ax.shape)
        z = np.clip(Ax, l, u)
        with np.errstate(invalid="ignore"):
            dist = np.where(y > 0, u - z, np.where(y < 0, z - l, 0.0))
        # a sign on a row whose bound is infinite is wrong outright: count |y_i| itself
        viol = np.where(np.isfinite(dist), np.abs(y) * dist, np.abs(y))
        return {"primal": float(np.max(np.abs(Ax - z), initial=0.0)),
                "dual": float(np.max(np.abs(Px + self.q + Aty), initial=0.0)),
                "complementarity": float(np.max(viol, initial=0.0))}

    def to_cvxpy(self):
        """``(cvxpy.Problem, x)``: ``0.5 quad_form(x, P) + q @ x`` with ``A x == l`` on equality
        rows, ``A x >= l`` and ``A x <= u`` on the finite sides of the others (a batch: the sum of
        its members' objectives over a variable of shape (B, n))."""
        import cvxpy as cp

        x = cp.Variable(self.n if self.batch is None else (self.batch, self.n))
        obj, cons = 0, []
        for i, qp in enumerate(self._members()):
            xi = x if self.batch is None else x[i]
            P = qp.P
            nonzero = (P.nnz > 0) if is_sparse(P) else bool(np.any(P))
            if nonzero:
                obj = obj + 0.5 * cp.quad_form(xi, cp.psd_wrap(P))
            obj = obj + qp.q @ xi
            eq = np.isfinite(qp.l) & (qp.l == qp.u)
            lo = np.isfinite(qp.l) & ~eq
            up = np.isfinite(qp.u) & ~eq
            for rows, bound, make in ((eq, qp.l, lambda e, b: e == b),
                                      (lo, qp.l, lambda e, b: e >= b),
                                      (up, qp.u, lambda e, b: e <= b)):
                if rows.any():
                    idx = np.flatnonzero(rows)
                    cons.append(make(qp.A[idx] @ xi, bound[idx]))
        return cp.Problem(cp.Minimize(obj), cons), x

    # --- adapter ------------------------------------------------------------------------
    def _solve_admm(self, backend="numpy", **options):
        return admm_qp(self.P, self.q, self.A, self.l, self.u, backend=backend, **options)
