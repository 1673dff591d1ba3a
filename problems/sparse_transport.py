r"""Sparsity-constrained optimal transport.

``SparsityConstrainedTransport(a, b, C, reg, max_nz)``: quadratically regularized OT with at
most ``max_nz`` nonzeros in each column of the plan (method ``"sparse_ot"``,
`cvxkit.solvers.sparse_ot`; reference: POT's ``ot.smooth.smooth_ot_dual(...,
reg_type="sparsity_constrained", max_nz=k)`` and, for ``max_nz`` at least the support of the
unconstrained solution's columns, the CVXPY quadratic program).

Reference: Liu, Puigcerver & Blondel, "Sparsity-constrained optimal transport", ICLR 2023.
"""
from __future__ import annotations

import numpy as np

from cvxkit.problems.base import Problem
from cvxkit.solvers import validate
from cvxkit.solvers.sinkhorn import validate_ot, validate_reg
from cvxkit.solvers.sparse_ot import sparse_ot
from cvxkit.solvers.validate import float_array


class SparsityConstrainedTransport(Problem):
    r"""Sparsity-constrained OT: $\min_{T \in U(a,b)} \langle C, T\rangle + \frac{\mathrm{reg}}2
    \lVert T\rVert_F^2$ with at most ``max_nz`` nonzeros in each column of $T$ (Liu,
    Puigcerver & Blondel, ICLR 2023; method ``"sparse_ot"``, `cvxkit.solvers.sparse_ot`).

    Args:
        a: source weights (n,), nonnegative.
        b: target weights (m,), the same total.
        C: cost matrix (n, m), finite.
        reg: quadratic regularization ``> 0``.
        max_nz: the most nonzeros per column (``max_nz * m >= n``).

    `residuals` adds ``cardinality``: how many nonzeros the fullest column has beyond
    ``max_nz``. `to_cvxpy` is the quadratically regularized OT without the cardinality
    constraint: the reference (`check`) when ``max_nz`` is at least the number of nonzeros of
    its solution's columns (else the constrained optimum is larger).
    """

    family = "transport"
    methods = {"sparse_ot": "_solve_sparse_ot"}

    def __init__(self, a, b, C, reg, max_nz):
        self.a, self.b, self.C = validate_ot(a, b, C)
        self.reg = validate_reg(reg)
        self.max_nz = validate.integer("max_nz", max_nz)
        n, m = self.C.shape
        if self.max_nz * m < n:
            raise ValueError(f"max_nz={self.max_nz} is infeasible: needs max_nz * m >= n "
                             f"({self.max_nz} * {m} < {n})")
        self.objective_scale = 1e-9 * self.a.sum() * max(float(np.abs(self.C).max()), 1e-300)

    def default_method(self) -> str:
        return "sparse_ot"

    def _plan(self, T) -> np.ndarray:
        T = float_array("plan", T, ndim=2)
        if T.shape != self.C.shape:
            raise ValueError(f"plan must have shape {self.C.shape}, got {T.shape}")
        return T

    def objective(self, T) -> float:
        T = self._plan(T)
        return float(np.vdot(self.C, T) + 0.5 * self.reg * np.sum(T * T))

    def residuals(self, T) -> dict[str, float]:
        T = self._plan(T)
        return {"row_marginal": float(np.abs(T.sum(axis=1) - self.a).sum()),
                "col_marginal": float(np.abs(T.sum(axis=0) - self.b).sum()),
                "negativity": max(0.0, -float(T.min())),
                "cardinality": float(max(0, int((T != 0).sum(axis=0).max()) - self.max_nz))}

    def to_cvxpy(self):
        import cvxpy as cp

        T = cp.Variable(self.C.shape, nonneg=True)
        obj = cp.sum(cp.multiply(self.C, T)) + 0.5 * self.reg * cp.sum_squares(T)
        return cp.Problem(cp.Minimize(obj), [cp.sum(T, axis=1) == self.a,
                                             cp.sum(T, axis=0) == self.b]), T

    def _solve_sparse_ot(self, backend="numpy", **options):
        return sparse_ot(self.a, self.b, self.C, self.reg, self.max_nz, backend=backend,
                         **options)
