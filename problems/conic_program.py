r"""Conic programs in SCS's form: zero, nonnegative and second-order cones.

``ConicProgram(P, c, A, b, cones)``:

$$
\min_x\ \tfrac12 x^\top P x + c^\top x \quad\text{s.t.}\quad Ax + s = b,\quad s \in K,
$$

with $K$ given by SCS's cone dict ``{"z": z, "l": l, "q": [k_1, ...]}`` (the rows in that
order: equalities, inequalities $(Ax)_i \le b_i$, then second-order cones $(t, u)$ with
$\lVert u\rVert_2 \le t$; `cvxkit.solvers.cones`).

Method ``"admm_conic"``: the conic ADMM (`cvxkit.solvers.admm_conic`), numpy or JAX.
Reference: the CVXPY model of `to_cvxpy`, solved by Clarabel at tolerance 1e-9. A CVXPY
model is solved directly with ``problem.solve(solver=cvxkit.CvxpySolver())``
(`cvxkit.problems.cvxpy_solver`).
"""
from __future__ import annotations

import numpy as np

from cvxkit.problems.base import Problem
from cvxkit.solvers import cones as K
from cvxkit.solvers.admm_conic import admm_conic, validate_conic
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.kkt import is_sparse
from cvxkit.solvers.result import Result
from cvxkit.solvers.scaling import units_dense, units_sparse
from cvxkit.solvers.validate import float_array

_NP = get_backend("numpy")


class ConicProgram(Problem):
    r"""$\min \tfrac12 x^\top Px + c^\top x$ s.t. $Ax + s = b$, $s \in K$ (zero, nonnegative
    and second-order cones).

    Args:
        P: (n, n) symmetric positive semidefinite, dense or scipy.sparse, or ``None`` for a
            linear objective.
        c: (n,).
        A: (m, n), dense or scipy.sparse.
        b: (m,).
        cones: SCS's cone dict ``{"z": z, "l": l, "q": [k_1, ...]}`` covering the m rows.

    Bad data raises ``ValueError`` naming the argument. ``Result.x`` is $x$; ``Result.dual``
    holds $y$ with $Px + c + A^\top y = 0$, $y \in K^*$ (Clarabel's and CVXPY's convention).
    """

    family = "conic"
    methods = {"admm_conic": "_solve_admm_conic"}

    def __init__(self, P, c, A, b, cones):
        self.P, self.c, self.A, self.b, self.cset = validate_conic(P, c, A, b, cones)
        self.cones = K.dims(self.cset)
        self.n, self.m = self.c.shape[0], self.b.shape[0]
        #: the data's units (`cvxkit.solvers.scaling`, with $b$ as the bounds)
        self.units = units_sparse(self.P, self.c, self.A, self.b, self.b) \
            if is_sparse(self.P) or is_sparse(self.A) else \
            units_dense(np, self.P, self.c, self.A, self.b, self.b)
        #: the floor of the relative gap's denominator in `check`: 1e-9 of the cost unit
        self.objective_scale = 1e-9 / float(self.units.c0)

    def default_method(self) -> str:
        return "admm_conic"

    def _slack(self, x):
        """$s = b - Ax$ and $s - \\Pi_K(s)$, row by row."""
        s = self.b - np.asarray(self.A @ self._check_x(x)).ravel()
        return s, s - K.project(_NP, self.cset, s)

    def objective(self, x) -> float:
        r"""$\tfrac12 x^\top Px + c^\top x$."""
        x = self._check_x(x)
        return float(0.5 * x @ (self.P @ x) + self.c @ x)

    def residuals(self, x) -> dict[str, float]:
        """Largest violations of $s = b - Ax \\in K$ on each kind of cone (the distance of $s$
        to $K$, by row)."""
        _, gap = self._slack(x)
        cs = self.cset
        out = {}
        for kind, rows in (("zero", cs.zero), ("nonneg", ~cs.zero & ~cs.soc), ("soc", cs.soc)):
            out[kind] = float(np.max(np.abs(gap[rows]), initial=0.0))
        return out

    def max_violation(self, x) -> float:
        r"""The largest relative cone violation: row $i$'s distance to $K$ divided by
        $a_i\max(\beta, \max_k |A_k x|/a_k)$ (row norms $a$ and length unit $\beta$ of `units`),
        as `cvxkit.problems.QuadraticProgram.max_violation`."""
        x = self._check_x(x)
        with np.errstate(invalid="ignore"):
            _, gap = self._slack(x)
            Ax = np.asarray(self.A @ x).ravel()
            a, beta = self.units.a, float(np.ravel(self.units.D0)[0])
            act = np.max(np.nan_to_num(np.abs(Ax)) / a, initial=0.0)
            return float(np.max(np.nan_to_num(np.abs(gap), nan=np.inf) / (a * max(beta, act)),
                                initial=0.0))

    def kkt_residuals(self, x, y) -> dict[str, float]:
        r"""KKT residuals of a primal-dual pair (infinity norms): ``primal`` the distance of
        $s = b - Ax$ to $K$, ``dual`` $\lVert Px + c + A^\top y\rVert$, ``dual_cone`` the
        distance of $y$ to $K^*$, ``complementarity`` $|s^\top y|$."""
        s, gap = self._slack(x)
        x = self._check_x(x)
        y = float_array("y", y)
        if y.shape != (self.m,):
            raise ValueError(f"y must have shape ({self.m},), got {y.shape}")
        return {"primal": float(np.max(np.abs(gap), initial=0.0)),
                "dual": float(np.max(np.abs(self.P @ x + self.c + self.A.T @ y), initial=0.0)),
                "dual_cone": float(np.max(np.abs(y - K.polar(_NP, self.cset, y)), initial=0.0)),
                "complementarity": abs(float(s @ y))}

    def to_cvxpy(self):
        """``(cvxpy.Problem, x)``: ``0.5 quad_form(x, P) + c @ x`` with ``s = b - A x``:
        ``s == 0`` on the zero cone, ``s >= 0`` on the orthant, ``cp.SOC(s[h], s[h+1:h+k])``
        for each second-order cone."""
        import cvxpy as cp

        x = cp.Variable(self.n)
        nonzero = (self.P.nnz > 0) if is_sparse(self.P) else bool(np.any(self.P))
        obj = self.c @ x + (0.5 * cp.quad_form(x, cp.psd_wrap(self.P)) if nonzero else 0)
        s = self.b - self.A @ x
        z, nl = self.cones["z"], self.cones["l"]
        cons = ([s[:z] == 0] if z else []) + ([s[z:z + nl] >= 0] if nl else [])
        for h, k in zip(np.asarray(self.cset.heads), self.cones["q"]):
            cons.append(cp.SOC(s[int(h)], s[int(h) + 1:int(h) + k]) if k > 1 else s[int(h)] >= 0)
        return cp.Problem(cp.Minimize(obj), cons), x

    def _solve_admm_conic(self, backend="numpy", **options) -> Result:
        return admm_conic(self.P, self.c, self.A, self.b, self.cones, backend=backend,
                          **options)
