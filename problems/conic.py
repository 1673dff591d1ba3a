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

Method ``"admm"``: the OSQP algorithm (`cvxkit.solvers.admm_qp`), numpy or JAX. Reference:
the CVXPY model of `to_cvxpy`, solved by Clarabel at tolerance 1e-9.

``LinearProgram(c, A_ub, b_ub, A_eq, b_eq, lb, ub)`` (scipy.optimize.linprog's form), from
arrays, ``from_cvxpy``, ``from_mps`` (HiGHS's reader) or ``from_npz`` (the Netlib copies):
method ``"halpern_pdhg"``, the restarted reflected Halpern PDHG (`cvxkit.solvers.halpern_pdhg`,
Lu & Yang, arXiv 2407.16144), numpy or JAX; reference: ``scipy.optimize.linprog(method="highs")``.
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np

from cvxkit.problems.base import Problem
from cvxkit.problems.mps import mps_scan
from cvxkit.solvers.admm_qp import admm_qp, check_bounds, check_q, validate_qp
from cvxkit.solvers.ipm_qp import ipm_qp
from cvxkit.solvers.kkt import is_sparse
from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.scaling import units_dense, units_sparse
from cvxkit.solvers.validate import float_array


def _write_back(problem, chain, inverse, result: Result, value: float, primal: dict, duals):
    """Invert CVXPY's reduction ``chain`` on our ``result`` and unpack it into ``problem`` (its
    variables' values, the duals that ``duals()`` returns, its value and status), as
    ``problem.solve()`` would; return {variable: value}."""
    from cvxpy import settings as cps
    from cvxpy.reductions.solution import Solution, failure_solution

    status = {Status.OPTIMAL: cps.OPTIMAL, Status.OPTIMAL_INACCURATE: cps.OPTIMAL_INACCURATE,
              Status.PRIMAL_INFEASIBLE: cps.INFEASIBLE,
              Status.DUAL_INFEASIBLE: cps.UNBOUNDED}.get(result.status, cps.USER_LIMIT)
    if status in cps.SOLUTION_PRESENT:
        sol = Solution(status, value, primal, duals(), {})
    else:
        sol = failure_solution(status)
    for reduction, inv in reversed(list(zip(chain.reductions[:-1], inverse[:-1]))):
        sol = reduction.invert(sol, inv)
    problem.unpack(sol)
    return {v: v.value for v in problem.variables()}


def _updated(problem, **vectors):
    """A shallow copy of ``problem`` with new (validated) vectors: matrices and any solver
    workspace shared, what belonged to the old data dropped (the cached reference, the link to
    a CVXPY problem, a recorded optimal value)."""
    new = copy.copy(problem)
    for name, v in vectors.items():
        setattr(new, name, v)
    new._reference = None
    new._cvxpy = None
    new.__dict__.pop("known_objective", None)
    new._resolve = True
    return new


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

    **Re-solves.** `update` returns the QP with a new ``q``, ``l`` or ``u``; its next solve
    (method ``"admm"``, one QP) keeps this one's scaling and factorization and starts from its
    last solution (`cvxkit.solvers.qp_workspace`).

    The solution ``Result.x`` is ``x`` ((B, n) for a batch); ``Result.dual`` (and
    ``Result.info['y']``) holds the duals ($y_i > 0$ when the upper bound is active, $< 0$ for
    the lower one), so that $Px + q + A^\top y = 0$ at a solution. A batch's `Result` has a
    leading batch axis on every array field (``objective`` (B,), ``status`` one `Status` per
    member, ...; see `cvxkit.solvers.admm_qp.admm_qp`).
    """

    family = "qp"
    methods = {"admm": "_solve_admm", "ipm": "_solve_ipm"}
    #: the objective's constant term (nonzero only for QPs built by `from_cvxpy`)
    offset: float = 0.0

    def __init__(self, P, q, A=None, l=None, u=None):
        self.P, self.q, self.A, self.l, self.u, self.batch = validate_qp(P, q, A, l, u)
        self.n, self.m = self.q.shape[-1], self.A.shape[-2]
        self._set_units()
        self._cvxpy = None  # (problem, chain, inverse_data) when built by from_cvxpy
        #: the `QPWorkspace` of the last admm solve, shared with the QPs made by `update`
        self._workspace = None
        self._resolve = False  # made by `update`: solve warm-started from the workspace

    def _set_units(self):
        #: the data's units (`cvxkit.solvers.scaling`): row norms ``a``, length ``beta = D0``,
        #: cost ``gamma = 1 / c0``; the solver's tolerances hold in these units
        self.units = units_sparse(self.P, self.q, self.A, self.l, self.u) \
            if is_sparse(self.P) or is_sparse(self.A) else \
            units_dense(np, self.P, self.q, self.A, self.l, self.u)
        #: the floor of the relative gap's denominator in `check`: 1e-9 of the cost unit
        #: gamma = max(beta^2 ||P||, beta ||q||) (of the largest member of a batch), so that
        #: scaling the data scales it too
        self.objective_scale = 1e-9 / float(np.min(self.units.c0))

    def update(self, q=None, l=None, u=None) -> "QuadraticProgram":
        """This QP with a new ``q``, ``l`` and/or ``u`` (``None``: keep), as a new problem
        (this one is unchanged); ``P`` and ``A`` are shared, not checked again.

        Its next `solve` by ``"admm"`` with the options (and backend) of this problem's last
        one reuses that solve's workspace (`cvxkit.solvers.qp_workspace`): scaling, penalty
        weights and factorization kept (refactored if the equality/free pattern of ``l``, ``u``
        changed; ``Result.info['workspace']`` says which), started from the workspace's last
        solution unless ``warm_start`` says otherwise. Raises ``ValueError`` for bad vectors
        (as the constructor) and for a batch.
        """
        if self.batch is not None:
            raise ValueError("update() takes one QP; a batch holds its parameter values along "
                             "its batch axis")
        q = self.q if q is None else check_q(q)
        if q.shape != (self.n,):
            raise ValueError(f"q must have shape ({self.n},), got {q.shape}")
        l, u = check_bounds(self.l if l is None else l, self.u if u is None else u, self.m)
        if l.ndim != 1 or u.ndim != 1:
            raise ValueError(f"l and u must have shape ({self.m},), got {l.shape}, {u.shape}")
        new = _updated(self, q=q, l=l, u=u)
        new._set_units()
        return new

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
        problem, chain, inverse = self._cvxpy
        solver = chain.reductions[-1]
        return _write_back(problem, chain, inverse, result, result.objective + self.offset,
                           {solver.VAR_ID: np.asarray(result.x)},
                           lambda: solver.extract_duals_from_solution_attribute(result.info["y"],
                                                                                inverse[-1]))

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
        x = float_array("x", x)
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

    def max_violation(self, x) -> float:
        r"""The largest relative bound violation: row $i$'s violation divided by
        $a_i\max(\beta, \max_k |A_k x|/a_k)$ (row norms $a$ and length unit $\beta$ of `units`),
        the form of the solver's tolerance $\epsilon_{abs} + \epsilon_{rel}\max(\ldots)$ in
        normalized units; so `check`'s ``atol`` means the same whatever the scale of each row and
        of the right-hand sides."""
        _, _, Ax = self._products(x)
        a = np.broadcast_to(self.units.a, Ax.shape)
        beta = np.reshape(self.units.D0, (-1, self.n))[:, :1]
        with np.errstate(invalid="ignore"):
            viol = np.nan_to_num(np.maximum(np.maximum(self.l - Ax, Ax - self.u), 0.0))
            act = np.max(np.nan_to_num(np.abs(Ax)) / a, axis=-1, keepdims=True, initial=0.0)
        return float(np.max(viol / (a * np.maximum(beta, act)), initial=0.0))

    def kkt_residuals(self, x, y) -> dict[str, float]:
        r"""KKT residuals of a primal-dual pair (infinity norms; a batch: maxima over members).

        ``primal``: the bound violation of $Ax$; ``dual``: $\lVert Px + q + A^\top y\rVert$;
        ``complementarity``: $\max_i |y_i|\,\text{dist}_i$, where $\text{dist}_i$ is the
        distance of $z = \Pi_{[l,u]}(Ax)$ to the bound that the sign of $y_i$ calls for
        ($y_i > 0$ needs $z_i = u_i$, $y_i < 0$ needs $z_i = l_i$), or $|y_i|$ itself where that
        bound is infinite: 0 exactly when $y$ lies in the normal cone of $[l, u]$ at $z$.
        """
        x, Px, Ax = self._products(x)
        y = float_array("y", y)
        if y.shape != ((self.m,) if self.batch is None else (self.batch, self.m)):
            raise ValueError(f"y must have shape ({self.m},) (a batch: "
                             f"(B, m)), got {y.shape}")
        y = y.reshape(-1, self.m)
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

    def check(self, result: Result, rtol: float = 1e-6, atol: float = 1e-6,
              reference: Result | None = None):
        """`Problem.check`; a batch's result (one `Status` per member) is compared as a whole:
        the objectives summed over the members, ``ok`` only if every member is optimal, and the
        report's status the first non-optimal member's (``optimal`` when all are)."""
        status = result.status
        if isinstance(status, np.ndarray):
            bad = [Status(s) for s in status.ravel() if Status(s) is not Status.OPTIMAL]
            result = result.replace(status=bad[0] if bad else Status.OPTIMAL,
                                    objective=float(np.sum(result.objective)))
        return super().check(result, rtol=rtol, atol=atol, reference=reference)

    # --- adapter ------------------------------------------------------------------------
    def _solve_admm(self, backend="numpy", **options):
        if self.batch is not None:
            return admm_qp(self.P, self.q, self.A, self.l, self.u, backend=backend, **options)
        from cvxkit.solvers.qp_workspace import admm_qp_setup

        warm = options.pop("warm_start", None)
        if self._workspace is None or not self._workspace.same_options(backend=backend, **options):
            self._workspace = admm_qp_setup(self.P, self.q, self.A, self.l, self.u,
                                            backend=backend, **options)
        # a plain solve starts cold (zeros, the option rho): the iterates of admm_qp
        warm = self._resolve if warm is None else warm
        return self._workspace.solve(self.q, self.l, self.u, warm_start=warm)

    def _solve_ipm(self, backend="numpy", **options):
        if self.batch is not None:
            raise ValueError("method 'ipm' solves one QP; for a batch use method 'admm', or "
                             "jax.vmap over cvxkit.solvers.ipm_qp")
        return ipm_qp(self.P, self.q, self.A, self.l, self.u, backend=backend, **options)


# ============================================================================================
# Linear programs
# ============================================================================================
_LINPROG_STATUS = {0: Status.OPTIMAL, 1: Status.MAX_ITER, 2: Status.PRIMAL_INFEASIBLE,
                   3: Status.DUAL_INFEASIBLE}


def _lp_matrix(name, A, b, n, b_name, allow_inf):
    """``(A, b)`` checked against ``n`` columns; ``A=None`` gives an empty (0, n) block. ``A``
    is dense or in any scipy.sparse format (`cvxkit.solvers.validate.matrix`)."""
    from cvxkit.solvers import validate

    if A is None:
        if b is not None and float_array(b_name, b).size > 0:
            raise ValueError(f"{b_name} is given without {name}")
        return np.zeros((0, n)), np.zeros(0)
    A = validate.matrix(name, A)
    if A.ndim != 2 or A.shape[1] != n:
        raise ValueError(f"{name} must have shape (m, n) with n = len(c) = {n}, got {A.shape}")
    if b is None:
        raise ValueError(f"{name} is given without {b_name}")
    return (A.tocsr() if is_sparse(A) else A), _lp_rhs(b_name, b, A.shape[0], name, allow_inf)


def _lp_rhs(b_name, b, m, name, allow_inf):
    """The right-hand side ``b`` of the ``m`` rows of ``name`` as a float64 (m,) array."""
    b = float_array(b_name, b)
    b = b.reshape(-1) if b.ndim <= 1 else b
    if b.shape != (m,):
        raise ValueError(f"{b_name} must have shape ({m},) to match {name}, got {b.shape}")
    if np.isnan(b).any():
        raise ValueError(f"{b_name} contains NaN entries")
    if (b == -np.inf).any() or (not allow_inf and not np.isfinite(b).all()):
        raise ValueError(f"{b_name} must be finite{' or +inf' if allow_inf else ''}")
    return b


def _lp_box(lb, ub, n):
    """``(lb, ub)`` as float64 (n,) arrays (a number: n copies; None: infinite), checked."""
    lb, ub = _lp_bound("lb", lb, n, -np.inf), _lp_bound("ub", ub, n, np.inf)
    if (lb == np.inf).any() or (ub == -np.inf).any():
        raise ValueError("lb must be < +inf and ub > -inf")
    bad = np.flatnonzero(lb > ub)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"lb > ub at index {i}: {lb[i]:.6g} > {ub[i]:.6g}")
    return lb, ub


def _lp_bound(name, v, n, default):
    if v is None:
        return np.full(n, default)
    v = float_array(name, v)
    v = np.full(n, float(v)) if v.ndim == 0 else v
    if v.shape != (n,):
        raise ValueError(f"{name} must be a number or have shape ({n},), got {v.shape}")
    if np.isnan(v).any():
        raise ValueError(f"{name} contains NaN entries")
    return v


class LinearProgram(Problem):
    r"""$\min_x c^\top x$ s.t. $A_{ub}x \le b_{ub}$, $A_{eq}x = b_{eq}$, $lb \le x \le ub$
    (scipy.optimize.linprog's form).

    Args:
        c: (n,) cost.
        A_ub, b_ub: (m_ub, n) dense or scipy.sparse and (m_ub,) (``+inf`` entries allowed), or None.
        A_eq, b_eq: (m_eq, n) and (m_eq,), or None.
        lb, ub: numbers or (n,) arrays; ``-inf``/``+inf`` (or None) where a side is absent.
            Default ``lb = 0``, ``ub = +inf``.

    Bad data raises ``ValueError``: wrong shapes, NaN (or infinite matrix entries), ``lb > ub``,
    ``lb = +inf``, ``ub = -inf``, ``b_ub = -inf`` or a non-finite ``b_eq``.

    ``LinearProgram.from_cvxpy(problem)`` and ``LinearProgram.from_mps(path)`` build one from a
    CVXPY problem or an MPS file. Method ``"halpern_pdhg"`` (`cvxkit.solvers.halpern_pdhg`,
    numpy or JAX); reference: ``scipy.optimize.linprog(method="highs")`` (`reference`), or the
    CVXPY model (`to_cvxpy`) with ``reference(solver=...)``. ``Result.info['y']`` holds the duals
    of the equality rows then the inequality rows (``y = d objective / d b``, so ``<= 0`` on
    ``A_ub`` rows, as linprog's marginals).
    """

    family = "lp"
    methods = {"halpern_pdhg": "_solve_halpern_pdhg"}
    #: the objective's constant term (from `from_cvxpy` / `from_mps`); `objective` excludes it
    offset: float = 0.0

    def __init__(self, c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, lb=0.0, ub=np.inf):
        from cvxkit.solvers.pdhg_setup import validate_cost

        c = validate_cost(c)
        n = c.shape[0]
        self.c, self.n = c, n
        self.A_ub, self.b_ub = _lp_matrix("A_ub", A_ub, b_ub, n, "b_ub", allow_inf=True)
        self.A_eq, self.b_eq = _lp_matrix("A_eq", A_eq, b_eq, n, "b_eq", allow_inf=False)
        self.lb, self.ub = _lp_box(lb, ub, n)
        self.m_ub, self.m_eq = self.A_ub.shape[0], self.A_eq.shape[0]
        self._cvxpy = None
        self._K = None  # [A_eq; A_ub] (CSR), made once
        self._last = None  # the last Result of halpern_pdhg on this LP
        self._warm_from = None  # made by `update`: the Result its solve starts from
        self._set_scale()

    def _set_scale(self):
        #: the floor of the relative gap of `check`, |obj - ref| / max(|ref|, objective_scale):
        #: 1e-9 ||c||_inf sigma_x, sigma_x the magnitude of x that the bounds and rows set
        #: (`cvxkit.solvers.pdhg_setup.data_scales`), so that it scales with the data
        from cvxkit.solvers.pdhg_setup import data_scales

        _, K, lc, uc, lv, uv = self.bound_form()
        _, _, _, _, cinf, xscale = data_scales(self.c, K, lc, uc, lv, uv)
        self.objective_scale = max(1e-9 * cinf * (xscale or 1.0), 1e-300)

    def update(self, c=None, b_ub=None, b_eq=None, lb=None, ub=None) -> "LinearProgram":
        """This LP with new vectors (``None``: keep), as a new problem (this one is unchanged);
        the matrices are shared, not checked again. Its next `solve` starts from this problem's
        last solution (``halpern_pdhg``'s warm start; its set-up, a few passes over the
        nonzeros, is redone) unless ``warm_start`` is given. Raises ``ValueError`` for bad
        vectors, as the constructor."""
        from cvxkit.solvers.pdhg_setup import validate_cost

        c = self.c if c is None else validate_cost(c)
        if c.shape != (self.n,):
            raise ValueError(f"c must have shape ({self.n},), got {c.shape}")
        vec = {"c": c, "b_ub": self.b_ub if b_ub is None else
               _lp_rhs("b_ub", b_ub, self.m_ub, "A_ub", allow_inf=True),
               "b_eq": self.b_eq if b_eq is None else
               _lp_rhs("b_eq", b_eq, self.m_eq, "A_eq", allow_inf=False)}
        vec["lb"], vec["ub"] = _lp_box(self.lb if lb is None else lb,
                                       self.ub if ub is None else ub, self.n)
        warm = self._last if self._last is not None else self._warm_from
        new = _updated(self, **vec, _warm_from=warm, _last=None)
        new._set_scale()
        return new

    # --- the bound form of the solvers ----------------------------------------------------
    def bound_form(self):
        """``(c, K, lc, uc, lb, ub)`` with ``K = [A_eq; A_ub]`` (scipy.sparse CSR) and row bounds
        ``lc = [b_eq, -inf]``, ``uc = [b_eq, b_ub]``."""
        import scipy.sparse as sp

        if self._K is None:
            self._K = sp.vstack([sp.csr_matrix(self.A_eq), sp.csr_matrix(self.A_ub)]).tocsr()
        K = self._K
        lc = np.concatenate([self.b_eq, np.full(self.m_ub, -np.inf)])
        uc = np.concatenate([self.b_eq, self.b_ub])
        return self.c, K, lc, uc, self.lb, self.ub

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_cvxpy(cls, problem) -> "LinearProgram":
        """The LP of a CVXPY problem, through CVXPY's conic canonicalization (Clarabel's form).

        ``x`` is the stacked vector of the canonicalized variables (which may include auxiliary
        ones); `unpack` writes a `Result` back into ``problem``'s variables. A maximization is
        turned into the minimization of the negated objective. The constant term is kept in
        ``offset``. Raises ``ValueError`` when the problem is not an LP (not DCP, a quadratic
        objective, or cones other than zero and nonnegative ones).
        """
        import cvxpy as cp

        if not isinstance(problem, cp.Problem):
            raise ValueError(f"from_cvxpy needs a cvxpy.Problem, got {type(problem).__name__}")
        try:
            data, chain, inverse = problem.get_problem_data(cp.CLARABEL)
        except (cp.error.DCPError, cp.error.SolverError, cp.error.ParameterError, ValueError) as e:
            raise ValueError(f"the CVXPY problem cannot be canonicalized as a conic program: {e}") \
                from None
        dims = data["dims"]
        other = [k for k, v in (("second-order", dims.soc), ("PSD", dims.psd),
                                ("exponential", dims.exp), ("power", dims.p3d)) if v]
        if other or (data.get("P") is not None and data["P"].nnz):
            what = ", ".join(other) + " cones" if other else "a quadratic objective"
            raise ValueError(f"the CVXPY problem is not a linear program (it has {what})")
        A, b, z = data["A"].tocsr(), data["b"], dims.zero
        n = data["c"].shape[0]
        lb = data.get("lower_bounds")
        ub = data.get("upper_bounds")
        lp = cls(data["c"], A[z:], b[z:], A[:z], b[:z],
                 lb=-np.inf if lb is None else lb, ub=np.inf if ub is None else ub)
        assert lp.n == n
        # constant term: the objective at zero, in the minimization sense of c
        sign = 1.0 if isinstance(problem.objective, cp.Minimize) else -1.0
        saved = [v.value for v in problem.variables()]
        for v in problem.variables():
            v.value = np.zeros(v.shape)
        try:
            lp.offset = sign * float(problem.objective.value)
        finally:
            for v, val in zip(problem.variables(), saved):
                v.value = val
        lp._cvxpy = (problem, chain, inverse, sign)
        return lp

    def unpack(self, result: Result) -> dict:
        """Write ``result.x`` into the variables of the CVXPY problem given to `from_cvxpy` (and
        its ``value``); return {variable: value}."""
        if self._cvxpy is None:
            raise ValueError("unpack needs a LinearProgram built by from_cvxpy")
        problem, chain, inverse, sign = self._cvxpy
        solver = chain.reductions[-1]
        return _write_back(problem, chain, inverse, result, sign * (result.objective + self.offset),
                           {inverse[-1][solver.VAR_ID]: np.asarray(result.x)}, dict)

    @classmethod
    def from_npz(cls, path) -> "LinearProgram":
        """Read the ``.npz`` layout of cvxkit's Netlib copies (tests/data/netlib/README.md):
        ``c``, CSR parts ``A_ub_data/indices/indptr/shape``, ``b_ub``, the same for ``A_eq``,
        ``lb``, ``ub``; the recorded optimal value ``obj`` (if any) goes to ``known_objective``.
        Raises ``ValueError`` for a ``path`` that is not an existing file or a file without
        these keys."""
        import os

        import scipy.sparse as sp

        if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
            raise ValueError(f"from_npz needs the path of an existing .npz file, got {path!r}")
        with np.load(path) as f:
            missing = [k for k in ("c", "b_ub", "b_eq", "lb", "ub") + tuple(
                f"{m}_{p}" for m in ("A_ub", "A_eq") for p in ("data", "indices", "indptr", "shape"))
                if k not in f.files]
            if missing:
                raise ValueError(f"{path} lacks the keys {', '.join(missing)} (see from_npz)")
            mats = {k: sp.csr_matrix((f[f"{k}_data"], f[f"{k}_indices"], f[f"{k}_indptr"]),
                                     shape=tuple(f[f"{k}_shape"])) for k in ("A_ub", "A_eq")}
            lp = cls(f["c"], mats["A_ub"], f["b_ub"], mats["A_eq"], f["b_eq"], f["lb"], f["ub"])
            lp.known_objective = float(f["obj"]) if "obj" in f.files else float("nan")
        return lp

    @classmethod
    def from_mps(cls, path) -> "LinearProgram":
        """Read an (free or fixed) MPS file with HiGHS's reader (``pip install highspy``).

        Ranged rows become two inequalities; a maximization is turned into the minimization of
        the negated objective; the objective constant goes to ``offset``. Integrality markers
        are ignored (the LP relaxation). Raises ``ValueError`` (with HiGHS's message) if the
        file cannot be read, names a row or column that is not defined, or holds a malformed
        number, and for a ``path`` that is not a path.
        """
        import os

        import scipy.sparse as sp

        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"from_mps needs the path of an MPS file (str or os.PathLike), "
                             f"got {type(path).__name__}")
        try:
            import highspy
        except ImportError:
            raise ImportError("LinearProgram.from_mps needs HiGHS's Python package: "
                              "pip install highspy") from None
        if not os.path.isfile(path):
            raise ValueError(f"no such MPS file: {path}")
        # HiGHS's free-format reader first; a file it reads only with warnings (names with
        # spaces in the fixed columns, as Meszaros's model8) is read again in fixed format
        for free in (True, False):
            h = highspy.Highs()
            h.setOptionValue("log_to_console", False)
            h.setOptionValue("mps_parser_type_free", free)
            log = []
            h.cbLogging.subscribe(lambda e, log=log: log.append(str(e.message).strip()))
            status = h.readModel(str(path))
            h.cbLogging.clear()
            # HiGHS reads a row or column name it does not know with a warning only: refuse it
            found = [line for line in log if line and (
                line.upper().startswith(("WARNING", "ERROR")) or "not defined" in line
                or "not in" in line or "ignored" in line)]
            if status != highspy.HighsStatus.kError and not found:
                break
            problems = found if free else problems  # the free reader's words are reported
        if status == highspy.HighsStatus.kError or found:
            why = "; ".join(problems) or f"HiGHS status {status.name}"
            raise ValueError(f"HiGHS could not read the model in {path}: {why}")
        mps_scan(path)
        lp = h.getLp()
        n, m = lp.num_col_, lp.num_row_
        a = lp.a_matrix_
        if a.format_ == highspy.MatrixFormat.kRowwise:
            A = sp.csr_matrix((a.value_, a.index_, a.start_), shape=(m, n))
        else:
            A = sp.csc_matrix((a.value_, a.index_, a.start_), shape=(m, n)).tocsr()
        sign = -1.0 if lp.sense_ == highspy.ObjSense.kMaximize else 1.0
        rl, ru = np.asarray(lp.row_lower_, float), np.asarray(lp.row_upper_, float)
        rl = np.where(rl <= -1e20, -np.inf, rl)
        ru = np.where(ru >= 1e20, np.inf, ru)
        eq = rl == ru
        up = ~eq & np.isfinite(ru)
        lo = ~eq & np.isfinite(rl)
        A_ub = sp.vstack([A[up], -A[lo]]).tocsr()
        b_ub = np.concatenate([ru[up], -rl[lo]])
        cl, cu = np.asarray(lp.col_lower_, float), np.asarray(lp.col_upper_, float)
        out = cls(sign * np.asarray(lp.col_cost_, float), A_ub, b_ub, A[eq], rl[eq],
                  lb=np.where(cl <= -1e20, -np.inf, cl), ub=np.where(cu >= 1e20, np.inf, cu))
        out.offset = sign * float(lp.offset_)
        return out

    # --- the Problem interface ------------------------------------------------------------
    def default_method(self) -> str:
        return "halpern_pdhg"

    def objective(self, x) -> float:
        """$c^\\top x$ (without the constant ``offset``)."""
        return float(self.c @ self._check_x(x))

    def residuals(self, x) -> dict[str, float]:
        """Largest violations: ``inequality`` max(A_ub x - b_ub)+, ``equality`` max|A_eq x - b_eq|,
        ``bounds`` max(lb - x, x - ub)+."""
        x = self._check_x(x)
        return {"inequality": float(np.max(self.A_ub @ x - self.b_ub, initial=0.0)),
                "equality": float(np.max(np.abs(self.A_eq @ x - self.b_eq), initial=0.0)),
                "bounds": float(max(np.max(self.lb - x, initial=0.0), np.max(x - self.ub, initial=0.0)))}

    def to_cvxpy(self):
        """``(cvxpy.Problem, x)``: ``c @ x`` with the rows and finite bounds as constraints."""
        import cvxpy as cp

        x = cp.Variable(self.n)
        cons = []
        fin = np.isfinite(self.b_ub)
        if fin.any():
            cons.append(self.A_ub[np.flatnonzero(fin)] @ x <= self.b_ub[fin])
        if self.m_eq:
            cons.append(self.A_eq @ x == self.b_eq)
        for mask, make in ((np.isfinite(self.lb), lambda i: x[i] >= self.lb[i]),
                           (np.isfinite(self.ub), lambda i: x[i] <= self.ub[i])):
            if mask.any():
                cons.append(make(np.flatnonzero(mask)))
        return cp.Problem(cp.Minimize(self.c @ x), cons), x

    def reference(self, **solver_options) -> Result:
        """``scipy.optimize.linprog(method="highs")`` (cached); with options (e.g.
        ``solver="CLARABEL"``), the CVXPY model of `to_cvxpy` instead."""
        if solver_options:
            return super().reference(**solver_options)
        cached = getattr(self, "_reference", None)
        if cached is not None:
            return cached
        from scipy.optimize import linprog

        ub_rows = np.isfinite(self.b_ub)
        t0 = time.perf_counter()
        rows = dict(A_ub=self.A_ub[np.flatnonzero(ub_rows)] if self.m_ub else None,
                    b_ub=self.b_ub[ub_rows] if self.m_ub else None,
                    A_eq=self.A_eq if self.m_eq else None, b_eq=self.b_eq if self.m_eq else None,
                    bounds=np.column_stack([self.lb, self.ub]), method="highs")
        res = linprog(self.c, **rows)
        if res.status == 4:  # HiGHS ends some tiny unbounded LPs "unknown": ask Clarabel
            self._reference = super().reference(**super().reference_options())
            return self._reference
        status = _LINPROG_STATUS.get(res.status, Status.NUMERICAL_ERROR)
        if status is Status.PRIMAL_INFEASIBLE and linprog(np.zeros(self.n), **rows).status == 0:
            # HiGHS's presolve reports "infeasible or unbounded" as infeasible: it is feasible
            status = Status.DUAL_INFEASIBLE
        x = np.asarray(res.x) if res.x is not None else None
        obj = float(res.fun) if status is Status.OPTIMAL else (
            math.inf if status is Status.PRIMAL_INFEASIBLE else
            -math.inf if status is Status.DUAL_INFEASIBLE else float("nan"))
        self._reference = Result(
            x=x, status=status, objective=obj,
            primal_residual=self.max_violation(x) if x is not None else float("nan"),
            iterations=int(getattr(res, "nit", 0)), solve_time=time.perf_counter() - t0,
            method="scipy/highs", info={"message": res.message})
        return self._reference

    # --- adapter --------------------------------------------------------------------------
    def _solve_halpern_pdhg(self, backend="numpy", **options):
        from cvxkit.solvers.halpern_pdhg import halpern_pdhg

        if options.get("warm_start") is None and self._warm_from is not None:
            options["warm_start"] = self._warm_from  # made by `update`
        self._last = halpern_pdhg(*self.bound_form(), backend=backend, **options)
        return self._last
