r"""Optimal transport on the transport polytope :math:`U(a, b) = \{P \ge 0 : P1 = a,\ P^\top 1 = b\}`.

``OptimalTransport(a, b, C, reg=None)``:

* ``reg=None``: exact OT, :math:`\min_{P \in U(a,b)} \langle C, P\rangle` (method
  ``"network_simplex"``, reference: the CVXPY linear program);
* ``reg > 0``: entropic OT, :math:`\min_{P \in U(a,b)} \langle C, P\rangle + \mathrm{reg}
  \sum_{ij} P_{ij}\log P_{ij}` (method ``"sinkhorn"``, numpy or JAX; reference: the CVXPY
  exponential-cone model).

References: Cuturi, "Sinkhorn distances", NeurIPS 2013; Peyré & Cuturi, "Computational optimal
transport", 2019.
"""
from __future__ import annotations

import numpy as np

from cvxkit.problems.base import Problem
from cvxkit.solvers.network_simplex import network_simplex
from cvxkit.solvers.sinkhorn import sinkhorn, validate_marginals


def marginal_residuals(P, a, b) -> dict[str, float]:
    """L1 row and column marginal errors of ``P`` and its most negative entry (as >= 0)."""
    P = np.asarray(P, dtype=np.float64)
    return {
        "row_marginal": float(np.abs(P.sum(axis=1) - a).sum()),
        "col_marginal": float(np.abs(P.sum(axis=0) - b).sum()),
        "negativity": float(max(0.0, -P.min())),
    }


def check_shape(P, shape) -> np.ndarray:
    """``P`` as a float array of the given shape, else ``ValueError``."""
    P = np.asarray(P, dtype=np.float64)
    if P.shape != shape:
        raise ValueError(f"plan must have shape {shape}, got {P.shape}")
    return P


class OptimalTransport(Problem):
    """Exact (``reg=None``) or entropic (``reg > 0``) optimal transport.

    Args:
        a: source weights, shape (n,), nonnegative.
        b: target weights, shape (m,), nonnegative, same total as ``a``.
        C: cost matrix, shape (n, m), finite.
        reg: entropic regularization (units of ``C``), or ``None`` for exact OT.

    The solution ``Result.x`` is the transport plan (n, m); ``Result.info['transport_cost']``
    is :math:`\\langle C, P\\rangle` (for exact OT it equals ``Result.objective``).
    """

    family = "transport"
    methods = {"network_simplex": "_solve_network_simplex", "sinkhorn": "_solve_sinkhorn"}

    def __init__(self, a, b, C, reg: float | None = None):
        self.a, self.b, self.C = validate_marginals(a, b, C)
        if reg is not None:
            if not (np.isscalar(reg) and np.isfinite(reg) and reg > 0):
                raise ValueError(f"reg must be a positive finite number or None, got {reg!r}")
            reg = float(reg)
        self.reg = reg
        self.objective_scale = 1e-9 * self.a.sum() * max(float(np.abs(self.C).max()), 1e-300)

    @property
    def shape(self) -> tuple[int, int]:
        return self.C.shape

    def default_method(self) -> str:
        return "network_simplex" if self.reg is None else "sinkhorn"

    def transport_cost(self, P) -> float:
        r""":math:`\langle C, P\rangle`."""
        return float(np.vdot(self.C, check_shape(P, self.shape)))

    def objective(self, P) -> float:
        P = check_shape(P, self.shape)
        cost = float(np.vdot(self.C, P))
        if self.reg is None:
            return cost
        Pp = np.maximum(P, 0.0)
        return cost + self.reg * float(np.sum(Pp * np.log(np.where(Pp > 0, Pp, 1.0))))

    def residuals(self, P) -> dict[str, float]:
        return marginal_residuals(check_shape(P, self.shape), self.a, self.b)

    def reference_options(self) -> dict:
        """Exact OT: HiGHS (a simplex solution, exact to round-off); entropic: Clarabel."""
        return {"solver": "HIGHS"} if self.reg is None else super().reference_options()

    def to_cvxpy(self):
        import cvxpy as cp

        P = cp.Variable(self.shape, nonneg=True)
        obj = cp.sum(cp.multiply(self.C, P))
        if self.reg is not None:
            obj = obj - self.reg * cp.sum(cp.entr(P))
        cons = [cp.sum(P, axis=1) == self.a, cp.sum(P, axis=0) == self.b]
        return cp.Problem(cp.Minimize(obj), cons), P

    # --- adapters ---------------------------------------------------------------------
    def _solve_network_simplex(self, backend="numpy", **options):
        if self.reg is not None:
            raise ValueError("network_simplex solves exact OT (reg=None); for reg > 0 use method='sinkhorn'")
        return network_simplex(self.a, self.b, self.C, **options)

    def _solve_sinkhorn(self, backend="numpy", **options):
        if self.reg is None:
            raise ValueError("sinkhorn solves entropic OT: give reg > 0, or use method='network_simplex'")
        return sinkhorn(self.a, self.b, self.C, self.reg, backend=backend, **options)
