r"""Metric-constrained problems: metric nearness and correlation clustering.

Both optimize over the metrics on $n$ points, the matrices $X$ with

$$
X = X^\top,\quad \operatorname{diag} X = 0,\quad X \ge 0,\quad
X_{ij} \le X_{ik} + X_{kj}\ \ \forall i, j, k,
$$

a set cut out by $3\binom{n}{3}$ triangle inequalities. A generic conic solver (the CVXPY
reference) handles a few dozen points; Project and Forget (Sonthalia & Gilbert, JMLR 2022)
keeps only the constraints it has found violated and whose duals are nonzero, and scales to
thousands of points.

* ``MetricNearness(D, norm, weights)``: $\min_X \sum_{i<j} w_{ij}\,\ell(X_{ij} - D_{ij})$,
  $\ell(r) = r^2/2$ (``"l2"``) or $|r|$ (``"l1"``).
* ``CorrelationClustering(W_plus, W_minus)``: the LP relaxation
  $\min_X \sum_{i<j} W^+_{ij} X_{ij} + W^-_{ij} (1 - X_{ij})$ over metrics with $X \le 1$
  ($X_{ij}$ is the "distance" of $i$ and $j$: 0 = same cluster), a certified lower bound on
  the best clustering, and a pivot rounding to an actual clustering.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from cvxkit.problems.base import REFERENCE_SETTINGS, Problem
from cvxkit.solvers import validate
from cvxkit.solvers.result import Result, Status


# --- family validation and objective (the metric family's knowledge; the solver checks its own
# arrays separately) ---------------------------------------------------------------------------
def symmetric_matrix(name: str, M, n: int | None = None, floor: float = 1.0) -> np.ndarray:
    """``M`` as a symmetrized float64 (n, n) array (`cvxkit.solvers.validate.symmetric`)."""
    return validate.symmetric(name, M, n, floor)


def validate_dissimilarity(D, name: str = "D") -> np.ndarray:
    """``D`` as a float64 (n, n) symmetric, nonnegative, finite array with zero diagonal.

    Raises ``ValueError`` naming the first defect found.
    """
    D = symmetric_matrix(name, D)
    if D.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 points, got shape {D.shape}")
    if (D < 0).any():
        raise ValueError(f"{name} has negative entries (min {D.min():.3g}); dissimilarities are >= 0")
    if np.abs(np.diag(D)).max() > 0:
        raise ValueError(f"{name} must have a zero diagonal")
    return D


def validate_weights(W, n: int) -> np.ndarray:
    """Weights ``W``: ``None`` (all ones), or a symmetric (n, n) array, positive off the diagonal."""
    if W is None:
        return np.ones((n, n))
    W = symmetric_matrix("weights", W, n, floor=0.0)
    off = ~np.eye(n, dtype=bool)
    if (W[off] <= 0).any():
        raise ValueError(
            f"weights must be positive off the diagonal (min {W[off].min():.3g}); the Bregman "
            "projections need a strictly convex objective"
        )
    np.fill_diagonal(W, 1.0)
    return W


def check_magnitude(d, w, loss: str, name: str = "D") -> None:
    r"""``ValueError`` when the objective could overflow float64: $\sum w\,\max(d)^k$ ($k$ = 2
    for L2, 1 for L1) must be finite (rescale the data otherwise)."""
    power = 2 if loss == "l2" else 1
    with np.errstate(over="ignore"):
        size = np.float64(d.max()) ** power * np.float64(w.max()) * d.shape[0] ** 2
    if not np.isfinite(size):
        raise ValueError(f"{name} is too large for the {loss.upper()} objective (max {name}"
                         f"^{power} x max weight x n^2 overflows float64); rescale {name}")


def metric_objective(x, d, w, loss) -> float:
    r"""The metric nearness objective $\phi(x) = \sum_{i<j} w_{ij}\,\ell(x_{ij} - d_{ij})$,
    $\ell(r) = r^2/2$ for ``loss="l2"``, $|r|$ for ``loss="l1"``."""
    iu = np.triu_indices(d.shape[0], 1)
    r = x[iu] - d[iu]
    if loss == "l2":
        return float(0.5 * np.sum(w[iu] * r * r))
    return float(np.sum(w[iu] * np.abs(r)))


def max_triangle_violation(X) -> float:
    r"""$\max_{i,j,k} X_{ij} - X_{ik} - X_{kj}$ (0 for a metric); $O(n^3)$ time, $O(n^2)$ memory."""
    from cvxkit.solvers.metric_kernels import max_triangle_violation as kernel

    return float(kernel(np.ascontiguousarray(X, dtype=np.float64)))


def _candidate(X, n: int) -> np.ndarray:
    """A candidate solution ``X`` as a real (n, n) array (``ValueError`` naming ``X``)."""
    X = validate.matrix("X", X, finite=False, sparse=False)
    if X.shape != (n, n):
        raise ValueError(f"X must have shape {(n, n)}, got {X.shape}")
    return X


def metric_residuals(X, n: int, upper: float | None = None) -> dict[str, float]:
    """Largest violation of each group of metric constraints by ``X`` (n, n)."""
    X = _candidate(X, n)
    res = {
        "triangle": max(0.0, max_triangle_violation(X)),
        "negativity": max(0.0, float(-X.min())),
        "asymmetry": float(np.abs(X - X.T).max()),
        "diagonal": float(np.abs(np.diag(X)).max()),
    }
    if upper is not None:
        res["upper_bound"] = max(0.0, float(X.max() - upper))
    return res


class _NormalizedReference:
    """The CVXPY reference solved on data normalized to unit magnitude and mapped back: the
    reference solvers' tolerances are absolute, so data of size 1e-9 or 1e9 would otherwise get
    a wrong or an inaccurate reference. Families supply `_normalized`."""

    def _normalized(self):
        """``(problem on normalized data, scale of x, scale of the objective)``."""
        raise NotImplementedError

    def _solve_cvxpy(self, opts: dict) -> Result:
        prob, xs, fs = self._normalized()
        res = Problem._solve_cvxpy(prob, opts)
        loose = {k: v for k, v in opts.items() if k not in REFERENCE_SETTINGS}
        if res.status is Status.NUMERICAL_ERROR and loose != opts:
            # Clarabel sometimes fails at 1e-9 on these models: its default tolerances
            res = Problem._solve_cvxpy(prob, loose)
        if xs == 1.0 and fs == 1.0:
            return res
        if res.x is None:
            return res.replace(objective=res.objective * fs)
        x = res.x * xs
        return res.replace(x=x, objective=res.objective * fs, primal_residual=self.max_violation(x))


def _cvxpy_metric(n: int, upper: float | None = None):
    """A symmetric CVXPY variable and the metric constraints on it (n matrix inequalities)."""
    import cvxpy as cp

    X = cp.Variable((n, n), symmetric=True)
    ones = np.ones((n, 1))
    cons = [X >= 0, cp.diag(X) == 0]
    cons += [X <= X[:, [k]] @ ones.T + ones @ X[[k], :] for k in range(n)]
    if upper is not None:
        cons.append(X <= upper)
    return X, cons


class MetricNearness(_NormalizedReference, Problem):
    r"""The metric nearest to a dissimilarity matrix in a weighted L2 or L1 norm.

    $\min_X \tfrac12 \sum_{i<j} w_{ij} (X_{ij} - D_{ij})^2$ (``norm="l2"``) or
    $\sum_{i<j} w_{ij} |X_{ij} - D_{ij}|$ (``norm="l1"``) over metrics $X$ (module docstring).

    Args:
        D: (n, n) dissimilarities: symmetric, nonnegative, finite, zero diagonal.
        norm: ``"l2"`` or ``"l1"``.
        weights: (n, n) symmetric weights, positive off the diagonal, or ``None`` (all ones).

    Raises ``ValueError`` on any defect of ``D`` or ``weights`` (the message names it); ``D``
    and ``weights`` may be dense or any scipy.sparse format (densified).

    Tolerances are relative to the data (see `cvxkit.solvers.project_forget`): the violation to
    $\max D$, the duality gap to $\max(|\phi|, \bar w \max(D)^k)$ ($k$ = 2 for L2, 1 for L1), so
    $D \cdot 10^k$ gives the same status, the metric times $10^k$ and the objective times
    $10^{2k}$ (L2) or $10^k$ (L1). `check` compares with a reference solved on $D/\max D$ and
    $W/\max W$ and scaled back, with the objective gap floored at $\bar w\max(D)^k$.
    """

    family = "metric"
    methods = {"project_forget": "_solve_project_forget"}

    def __init__(self, D, norm: str = "l2", weights=None):
        validate.choice("norm", norm, ("l2", "l1"))
        self.D = validate_dissimilarity(D)
        self.n = self.D.shape[0]
        self.norm = norm
        self.W = validate_weights(weights, self.n)
        check_magnitude(self.D, self.W, norm)
        dmax = float(self.D.max())
        self._dscale = dmax if dmax > 0 else 1.0
        off = ~np.eye(self.n, dtype=bool)
        self._wscale = float(self.W[off].max())
        power = 2 if norm == "l2" else 1
        self.objective_scale = float(self.W[off].mean()) * self._dscale ** power

    def check(self, result: Result, rtol: float = 1e-6, atol: float = 1e-6, reference=None):
        r"""`Problem.check` with ``atol`` relative to $\max D$ (the violation's unit)."""
        return super().check(result, rtol, atol * self._dscale, reference)

    def _normalized(self):
        power = 2 if self.norm == "l2" else 1
        xs, ws = self._dscale, self._wscale
        if xs == 1.0 and ws == 1.0:
            return self, 1.0, 1.0
        return (MetricNearness(self.D / xs, self.norm, self.W / ws), xs, ws * xs ** power)

    def default_method(self) -> str:
        return "project_forget"

    def objective(self, X) -> float:
        return metric_objective(_candidate(X, self.n), self.D, self.W, self.norm)

    def residuals(self, X) -> dict[str, float]:
        return metric_residuals(X, self.n)

    def reference_options(self) -> dict:
        # the L1 problem is an LP: HiGHS solves it exactly
        return {"solver": "HIGHS"} if self.norm == "l1" else super().reference_options()

    def to_cvxpy(self):
        import cvxpy as cp

        X, cons = _cvxpy_metric(self.n)
        W = np.triu(self.W, 1)
        r = X - self.D
        obj = (0.5 * cp.sum(cp.multiply(W, cp.square(r))) if self.norm == "l2"
               else cp.sum(cp.multiply(W, cp.abs(r))))
        return cp.Problem(cp.Minimize(obj), cons), X

    def _solve_project_forget(self, backend="numpy", **options) -> Result:
        from cvxkit.solvers.project_forget import project_forget

        return project_forget(self.D, self.W, loss=self.norm, backend=backend, **options)


def _validate_signed(name: str, W) -> np.ndarray:
    W = symmetric_matrix(name, W)
    if (W < 0).any():
        raise ValueError(f"{name} has negative entries (min {W.min():.3g}); weights are >= 0")
    np.fill_diagonal(W, 0.0)
    return W


class CorrelationClustering(_NormalizedReference, Problem):
    r"""Weighted correlation clustering: its LP relaxation over metrics, and a rounding.

    A clustering costs $\sum_{i<j \text{ together}} W^-_{ij} + \sum_{i<j \text{ apart}} W^+_{ij}$
    (disagreements). The LP relaxation (module docstring) is an L1 metric nearness problem
    with $d_{ij} = 1[W^-_{ij} > W^+_{ij}]$, $w_{ij} = |W^+_{ij} - W^-_{ij}|$ plus the constant
    $\sum_{i<j}\min(W^+_{ij}, W^-_{ij})$; its value is a lower bound on every clustering's cost.
    Pairs with $W^+ = W^-$ get a tiny weight ($10^{-6} \max w$) so the solver's objective stays
    strictly convex; objectives are always evaluated with the true weights.

    Args:
        W_plus: (n, n) symmetric nonnegative weights of "similar" pairs.
        W_minus: (n, n) symmetric nonnegative weights of "dissimilar" pairs.

    ``solve`` returns the LP solution ``x`` (n, n) and in ``info``: ``labels`` (n,) the rounded
    clustering, ``clustering_cost``, ``lower_bound`` (certified, from the duals) and
    ``lp_value``.
    """

    family = "metric"
    methods = {"project_forget": "_solve_project_forget"}
    tiny_weight = 1e-6

    def __init__(self, W_plus, W_minus):
        self.W_plus = _validate_signed("W_plus", W_plus)
        self.W_minus = _validate_signed("W_minus", W_minus)
        if self.W_plus.shape != self.W_minus.shape:
            raise ValueError("W_plus and W_minus must have the same shape, got "
                             f"{self.W_plus.shape} and {self.W_minus.shape}")
        self.n = self.W_plus.shape[0]
        with np.errstate(over="ignore"):
            total = np.float64(self.W_plus.sum()) + np.float64(self.W_minus.sum())
        if not np.isfinite(total):
            raise ValueError("W_plus and W_minus are too large: the sum of the weights (the "
                             "objective's scale) overflows float64; rescale them")
        if self.n < 2:
            raise ValueError("correlation clustering needs at least 2 nodes")
        diff = self.W_plus - self.W_minus
        self.d = (diff < 0).astype(np.float64)
        np.fill_diagonal(self.d, 0.0)
        wmax = np.abs(diff).max()
        self.w = np.maximum(np.abs(diff), self.tiny_weight * (wmax if wmax > 0 else 1.0))
        iu = np.triu_indices(self.n, 1)
        self.constant = float(np.minimum(self.W_plus, self.W_minus)[iu].sum())
        wmax = max(float(self.W_plus.max()), float(self.W_minus.max()))
        self._wscale = wmax if wmax > 0 else 1.0
        self.objective_scale = 1e-9 * self._wscale

    def _normalized(self):
        s = self._wscale
        if s == 1.0:
            return self, 1.0, 1.0
        return CorrelationClustering(self.W_plus / s, self.W_minus / s), 1.0, s

    @classmethod
    def from_graph(cls, A, negative=None):
        """From a similarity graph: adjacency ``A`` (n, n), weights >= 0, as positive pairs; the
        negative pairs are ``negative`` (n, n), or by default every non-adjacent pair (weight 1)."""
        A = symmetric_matrix("A", A)
        if negative is None:
            negative = (A == 0).astype(np.float64)
        return cls(A, negative)

    def default_method(self) -> str:
        return "project_forget"

    def objective(self, X) -> float:
        X = _candidate(X, self.n)
        iu = np.triu_indices(self.n, 1)
        return float(np.sum(self.W_plus[iu] * X[iu] + self.W_minus[iu] * (1.0 - X[iu])))

    def residuals(self, X) -> dict[str, float]:
        return metric_residuals(X, self.n, upper=1.0)

    def reference_options(self) -> dict:
        return {"solver": "HIGHS"}

    def to_cvxpy(self):
        import cvxpy as cp

        X, cons = _cvxpy_metric(self.n, upper=1.0)
        obj = cp.sum(cp.multiply(np.triu(self.W_plus, 1), X)
                     + cp.multiply(np.triu(self.W_minus, 1), 1 - X))
        return cp.Problem(cp.Minimize(obj), cons), X

    def clustering_cost(self, labels) -> float:
        """Disagreements of a clustering ``labels`` (n,) (any hashable cluster ids)."""
        labels = np.asarray(labels)
        if labels.shape != (self.n,):
            raise ValueError(f"labels must have shape {(self.n,)}, got {labels.shape}")
        same = labels[:, None] == labels[None, :]
        iu = np.triu_indices(self.n, 1)
        return float(np.sum(np.where(same, self.W_minus, self.W_plus)[iu]))

    def round(self, X, trials: int = 50, thresholds=(0.5 - 1e-6, 0.5 + 1e-6),
              seed: int = 0) -> np.ndarray:
        r"""Pivot rounding of an LP solution ``X``: in a random order, each unclustered pivot
        $p$ takes every unclustered $j$ with $X_{pj} <$ threshold. Returns the cheapest labels
        (n,) in $0, 1, \dots$ over ``trials`` random orders and each of ``thresholds`` (two
        thresholds around 1/2 by default, so half-integral LP solutions do not depend on
        round-off)."""
        X = _candidate(X, self.n)
        trials = validate.integer("trials", trials)
        rng = np.random.default_rng(seed)
        best, best_cost = None, np.inf
        for _ in range(trials):
            order = rng.permutation(self.n)
            for threshold in np.atleast_1d(thresholds):
                labels = self._pivot(X, order, threshold)
                cost = self.clustering_cost(labels)
                if cost < best_cost:
                    best, best_cost = labels, cost
        return best

    def _pivot(self, X, order, threshold) -> np.ndarray:
        labels = np.full(self.n, -1)
        cluster = 0
        for p in order:
            if labels[p] >= 0:
                continue
            members = (labels < 0) & (X[p] < threshold)
            members[p] = True
            labels[members] = cluster
            cluster += 1
        return labels

    def _solve_project_forget(self, backend="numpy", **options) -> Result:
        from cvxkit.solvers.project_forget import project_forget

        res = project_forget(self.d, self.w, loss="l1", backend=backend, **options)
        X = np.minimum(res.x, 1.0)  # a metric truncated at 1 is a metric, never worse here
        labels = self.round(X)
        iu = np.triu_indices(self.n, 1)
        tiny = np.abs(self.W_plus - self.W_minus)[iu] < self.w[iu]
        bound = res.info["lower_bound"] + self.constant
        bound -= float(np.sum(self.w[iu][tiny]))  # the tiny weights' worst-case contribution
        lp = self.objective(X)
        info = {**res.info, "labels": labels, "clustering_cost": self.clustering_cost(labels),
                "lower_bound": bound, "lp_value": lp}
        return dataclasses.replace(res, x=X, objective=lp, info=info)
