r"""Wasserstein barycenters on a fixed support.

``Barycenter(A, C, reg, weights)``: given histograms $a_1, \dots, a_K$ (the rows of ``A``, equal
masses $M$), positive weights $w$ (normalized to sum 1) and a cost $C$ (n, m) from the
barycenter's n support points to the measures' m points,

* ``reg > 0`` (entropic, method ``"barycenter"``, `cvxkit.solvers.barycenter`):
  $\min_{p \ge 0} \sum_k w_k \mathrm{OT}_{\mathrm{reg}}(p, a_k)$ with the entropic OT of
  `cvxkit.problems.OptimalTransport` (POT's ``ot.bregman.barycenter``);
* ``reg=None``: the exact barycenter linear program $\min_p \sum_k w_k \mathrm{OT}(p, a_k)$,
  available as the CVXPY reference only (`to_cvxpy`, `reference`; a tiny instance's check of
  the entropic barycenter as ``reg`` shrinks).

The solution ``Result.x`` is the barycenter $p$ (n,); ``Result.info["plans"]`` the plans.
`objective` of a candidate $p$ solves the K transport problems from $p$ (Sinkhorn at
``tol=1e-12``, or the network simplex for ``reg=None``), so `check` compares values.

Reference: Agueh & Carlier, "Barycenters in the Wasserstein space", SIAM J. Math. Anal. 2011;
Benamou, Carlier, Cuturi, Nenna & Peyré, SIAM J. Sci. Comput. 2015 (the algorithm).
"""
from __future__ import annotations

import numpy as np

from cvxkit.problems.base import Problem
from cvxkit.solvers.barycenter import barycenter, validate_barycenter
from cvxkit.solvers.network_simplex import network_simplex
from cvxkit.solvers.sinkhorn import sinkhorn, validate_reg
from cvxkit.solvers.validate import float_array


class Barycenter(Problem):
    """Fixed-support Wasserstein barycenter (see the module docstring).

    Args:
        A: histograms (K, m), one per row, nonnegative, equal masses.
        C: cost matrix (n, m) from the barycenter's support to the measures' support.
        reg: entropic regularization ``> 0`` (units of ``C``), or ``None`` for the exact LP
            (CVXPY reference only).
        weights: (K,) positive weights (normalized to sum 1; default uniform).
    """

    family = "transport"
    methods = {"barycenter": "_solve_barycenter"}

    def __init__(self, A, C, reg=None, weights=None):
        self.A, self.C, self.weights = validate_barycenter(A, C, weights)
        self.reg = None if reg is None else validate_reg(reg)
        self.mass = float(self.A[0].sum())
        self.objective_scale = 1e-9 * self.mass * max(float(np.abs(self.C).max()), 1e-300)

    def default_method(self) -> str:
        return "barycenter"

    def _check_p(self, p) -> np.ndarray:
        p = float_array("barycenter", p, ndim=1)
        if p.shape != (self.C.shape[0],):
            raise ValueError(f"the barycenter must have shape ({self.C.shape[0]},), got {p.shape}")
        return p

    def objective(self, p) -> float:
        """``sum_k w_k OT(p, a_k)`` (entropic with ``reg``), ``p`` rescaled to the mass of the
        measures (`residuals` reports the mass error)."""
        p = np.maximum(self._check_p(p), 0.0)
        p = p * (self.mass / p.sum())
        total = 0.0
        for w, a in zip(self.weights, self.A):
            if self.reg is None:
                res = network_simplex(p, a, self.C, max_iter=10**7)
            else:
                res = sinkhorn(p, a, self.C, self.reg, tol=1e-12, max_iter=10**6)
            total += w * res.objective
        return float(total)

    def residuals(self, p) -> dict[str, float]:
        p = self._check_p(p)
        return {"mass": abs(float(p.sum()) - self.mass), "negativity": max(0.0, -float(p.min()))}

    def reference_options(self) -> dict:
        """Exact barycenter: HiGHS (an LP); entropic: Clarabel."""
        return {"solver": "HIGHS"} if self.reg is None else super().reference_options()

    def to_cvxpy(self):
        """The barycenter ``p`` and one plan per measure: an LP (``reg=None``) or an
        exponential-cone program (``- reg * entr``)."""
        import cvxpy as cp

        n, m = self.C.shape
        p = cp.Variable(n, nonneg=True)
        obj, cons = 0, []
        for w, a in zip(self.weights, self.A):
            P = cp.Variable((n, m), nonneg=True)
            cons += [cp.sum(P, axis=1) == p, cp.sum(P, axis=0) == a]
            term = cp.sum(cp.multiply(self.C, P))
            if self.reg is not None:
                term = term - self.reg * cp.sum(cp.entr(P))
            obj = obj + w * term
        return cp.Problem(cp.Minimize(obj), cons), p

    def _solve_barycenter(self, backend="numpy", **options):
        if self.reg is None:
            raise ValueError("method 'barycenter' solves the entropic barycenter (reg > 0); the "
                             "exact LP (reg=None) is available as to_cvxpy() / reference()")
        return barycenter(self.A, self.C, self.reg, weights=self.weights, backend=backend,
                          **options)
