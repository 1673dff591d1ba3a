r"""QP test sets in OSQP's form (the Maros–Meszaros collection), and qpbenchmark's success test.

**Files.** One ``.npz`` per problem (no pickled objects) holding
$\min \tfrac12 x^\top Px + q^\top x + r$ s.t. $l \le Ax \le u$: the CSC parts of ``P`` (the
**full** symmetric matrix) and ``A`` (``P_data``, ``P_indices``, ``P_indptr``, ``P_shape``, the
same for ``A``), the vectors ``q``, ``l``, ``u`` and the scalar ``r``; bounds of magnitude
$\ge 10^{20}$ are infinite. `read_npz` returns the arrays, `load` a `QuadraticProgram` (with
``offset = r``).

**Success, as qpbenchmark judges it** (`judge`), from a returned primal-dual pair $(x, y)$ on the
unscaled data, with an *absolute* accuracy $\epsilon$ (qpbenchmark's "low" $10^{-3}$, "mid"
$10^{-6}$, "high" $10^{-9}$) and infinity norms:

* primal residual $r_p = \lVert Ax - \Pi_{[l,u]}(Ax)\rVert = \max_i \max((Ax - u)_i^+, (l - Ax)_i^+)$;
* dual residual $r_d = \lVert Px + q + A^\top y\rVert$;
* duality gap $g = \lvert x^\top Px + q^\top x + \sum_i u_i y_i^+ + \sum_i l_i y_i^-\rvert$
  ($y^+ = \max(y, 0)$, $y^- = \min(y, 0)$); a multiplier $y_i > \epsilon$ on an infinite
  $u_i$ or $y_i < -\epsilon$ on an infinite $l_i$ makes the gap infinite (failed). Smaller ones
  are rounding (OSQP and SCS return entries of $10^{-18}$ there) and their terms are dropped, as
  qpsolvers' ``Solution.duality_gap`` drops the terms of infinite bounds; they still count in
  the dual residual;
* success when $r_p \le \epsilon$, $r_d \le \epsilon$ and $g \le \epsilon$; a non-finite entry
  of $x$ or $y$ fails all three.

The sign convention is OSQP's: $y_i > 0$ where the upper bound is active, $< 0$ at the lower one,
so that $Px + q + A^\top y = 0$ at a solution. The gap is the difference of the primal
objective and the dual objective $-\tfrac12 x^\top Px - \sum_i (u_i y_i^+ + l_i y_i^-)$ at a
point with zero dual residual; the constant $r$ cancels.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from cvxkit.problems.conic import QuadraticProgram
from cvxkit.solvers.primal_dual import INF_BOUND

#: qpbenchmark's accuracies (absolute)
ACCURACIES = {"low": 1e-3, "mid": 1e-6, "high": 1e-9}


def read_npz(path) -> dict:
    """The arrays of one problem file: ``P``, ``A`` (scipy CSC), ``q``, ``l``, ``u`` (infinite
    bounds as ``+-inf``) and ``r`` (float). Raises ``ValueError`` for a path that is not an
    existing file or a file without these keys."""
    import scipy.sparse as sp

    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise ValueError(f"read_npz needs the path of an existing .npz file, got {path!r}")
    with np.load(path) as f:
        keys = ("q", "l", "u") + tuple(f"{M}_{p}" for M in "PA"
                                      for p in ("data", "indices", "indptr", "shape"))
        missing = [k for k in keys if k not in f.files]
        if missing:
            raise ValueError(f"{path} lacks the keys {', '.join(missing)} (see read_npz)")
        out = {M: sp.csc_matrix((f[f"{M}_data"], f[f"{M}_indices"], f[f"{M}_indptr"]),
                                shape=tuple(int(s) for s in f[f"{M}_shape"])) for M in "PA"}
        out["q"] = np.asarray(f["q"], dtype=np.float64)
        l, u = (np.asarray(f[k], dtype=np.float64) for k in ("l", "u"))
        out["l"] = np.where(l <= -INF_BOUND, -np.inf, l)
        out["u"] = np.where(u >= INF_BOUND, np.inf, u)
        out["r"] = float(f["r"]) if "r" in f.files else 0.0
    return out


def load(path) -> QuadraticProgram:
    """The `QuadraticProgram` of one problem file (its constant ``r`` in ``offset``)."""
    d = read_npz(path)
    qp = QuadraticProgram(d["P"], d["q"], d["A"], d["l"], d["u"])
    qp.offset = d["r"]
    return qp


class Judgement(NamedTuple):
    """qpbenchmark's residuals of a primal-dual pair (module docstring) and the verdict ``ok``
    at the accuracy ``eps``."""

    primal: float
    dual: float
    gap: float
    eps: float
    ok: bool


def judge(P, q, A, l, u, x, y, eps: float) -> Judgement:
    """qpbenchmark's success test of ``(x, y)`` for the QP ``(P, q, A, l, u)`` at the absolute
    accuracy ``eps`` (module docstring). ``P``, ``A`` dense or scipy.sparse; ``x`` or ``y``
    ``None`` (no answer) fails."""
    if x is None or y is None:
        return Judgement(np.inf, np.inf, np.inf, eps, False)
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    l = np.where(np.asarray(l, dtype=np.float64) <= -INF_BOUND, -np.inf, l)
    u = np.where(np.asarray(u, dtype=np.float64) >= INF_BOUND, np.inf, u)
    if x.shape != np.shape(q) or y.shape != l.shape or not (
            np.isfinite(x).all() and np.isfinite(y).all()):
        return Judgement(np.inf, np.inf, np.inf, eps, False)
    Ax = np.asarray(A @ x).ravel()
    Px = np.asarray(P @ x).ravel()
    primal = float(np.max(np.maximum(Ax - u, l - Ax), initial=0.0))
    dual = float(np.max(np.abs(Px + q + np.asarray(A.T @ y).ravel()), initial=0.0))
    yp, ym = np.maximum(y, 0.0), np.minimum(y, 0.0)
    if ((yp > eps) & ~np.isfinite(u)).any() or ((ym < -eps) & ~np.isfinite(l)).any():
        gap = np.inf
    else:
        support = float(np.where(np.isfinite(u), u, 0.0) @ yp + np.where(np.isfinite(l), l, 0.0) @ ym)
        gap = abs(float(x @ Px) + float(q @ x) + support)
    primal = max(primal, 0.0)
    return Judgement(primal, dual, gap, eps, bool(primal <= eps and dual <= eps and gap <= eps))
