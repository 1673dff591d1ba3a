r"""Two-layer ReLU network training as a convex program; fit/predict; the recovered network.

Pilanci & Ergen, "Neural networks are convex regularizers", ICML 2020; Bai, Gautam & Sojoudi,
SIMODS 2023 (ADMM, adversarial training; arXiv 2201.01965) and Bai, Gautam, Gai & Sojoudi,
ACC 2022 (robust formulation); Mishkin, Sahiner & Pilanci, ICML 2022 (gated ReLU).

Data $X \in \mathbb{R}^{n\times d}$ (rows are samples), targets $y \in \mathbb{R}^n$. Activation
patterns $D_i = \operatorname{diag}(1[Xg_i \ge 0])$ come from ``n_patterns`` Gaussian gates
$g_i \sim N(0, I_d)$ (duplicate and all-zero patterns removed; ``P`` is the number kept).

* ``variant="relu"`` (C-ReLU):
  $\min_{v,w}\ \ell\big(\sum_i D_iX(v_i - w_i), y\big) + \beta\sum_i(\lVert v_i\rVert_2 + \lVert w_i\rVert_2)$
  s.t. $(2D_i - I)Xv_i \ge 0$, $(2D_i - I)Xw_i \ge 0$ — equal to the non-convex training of a ReLU
  network with weight decay $\tfrac\beta2(\lVert W_1\rVert_F^2 + \lVert w_2\rVert^2)$ once the
  patterns are all those of the data (a sampled set gives an upper bound).
* ``variant="gated"`` (C-GReLU): $\min_u \ell(\sum_i D_iXu_i, y) + \beta\sum_i\lVert u_i\rVert_2$,
  an unconstrained group lasso (a gated ReLU network $x \mapsto \sum_i 1[g_i^\top x \ge 0]\,x^\top u_i$).
* ``regularizer`` (the penalty $\beta R(U)$ on the stacked weights $U$, rows the neurons'
  $v_i, w_i$, columns the input features): ``"neuron_gl1"`` (the default, above)
  $R = \sum_j\lVert u_j\rVert_2$, a group per neuron, which selects neurons;
  ``"feature_gl1"`` $R = \sum_f\lVert U_{:,f}\rVert_2$, a group per input feature across all
  neurons, which selects features (scnn's ``FeatureGL1``, whose penalty is $\sqrt d$ times
  this); ``"l1"`` $R = \sum_{j,f}|U_{jf}|$, entrywise.
* Losses: ``"squared"`` $\tfrac12\lVert\hat y - y\rVert^2$, ``"logistic"``
  $\sum_k\log(1 + e^{-y_k\hat y_k})$ and ``"hinge"`` $\sum_k(1 - y_k\hat y_k)_+$ ($y \in \{\pm1\}$).
* ``epsilon > 0`` (ReLU variant): the $\ell_\infty$-robust program of Bai et al. — the patterns are
  kept for every $\lVert\delta_k\rVert_\infty \le \epsilon$,
  $(2D_i - I)Xv_i - \epsilon\lVert v_i\rVert_1 \ge 0$ (same for $w_i$), and the loss is its worst
  case with the patterns fixed: with $a_k = \sum_i d_{ik}(v_i - w_i)$,
  $\tfrac12(|x_k^\top a_k - y_k| + \epsilon\lVert a_k\rVert_1)^2$ (squared) or
  $\ell(y_kx_k^\top a_k - \epsilon\lVert a_k\rVert_1)$ (classification).

Methods: ``"relu_admm"`` (every variant; `cvxkit.solvers.relu_admm` on the splitting of
`cvxkit.problems.relu_splitting`), ``"relu_al"`` (the augmented Lagrangian of Mishkin, Sahiner &
Pilanci with R-FISTA subproblems, every variant but the robust one; `cvxkit.solvers.relu_al` on
`relu_model`), ``"rfista"`` (gated, squared and logistic losses) and ``"bcd"`` (gated, squared
loss: block coordinate descent, one block per pattern; `cvxkit.solvers.bcd`). The default
depends on the variant and loss (`ConvexReLU.default_method`). ``relu_al`` and ``rfista`` solve
every regularizer; ``relu_admm`` and ``bcd`` only ``neuron_gl1`` (others: ``ValueError``).
The solution ``Result.x`` is (2, P, d) (``v``, ``w``) for ReLU, (P, d) for gated.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, NamedTuple

import numpy as np

from cvxkit.problems.base import Problem
from cvxkit.problems.relu_splitting import LOSS_KINDS, relu_program
from cvxkit.solvers.relu_admm import relu_admm
from cvxkit.solvers.result import Result
from cvxkit.solvers import validate
from cvxkit.solvers.validate import float_array

VARIANTS = ("relu", "gated")
#: the regularizers, and the `cvxkit.solvers.fista.LinearModel` penalty of each (U's rows are
#: the neurons' weights, its columns the input features)
REGULARIZERS = {"neuron_gl1": "rows", "feature_gl1": "columns", "l1": "l1"}
#: `ConvexReLU.prune` treats blocks below this fraction of the largest block norm as zero
ZERO_BLOCK = 1e-8


def _samples(X, nonempty: bool = True) -> np.ndarray:
    """``X`` as a finite 2-D float64 array (every scipy.sparse format densified), else
    ``ValueError`` naming ``X``."""
    name = "X (n samples, d features)"
    X = validate.matrix(name, X, nonempty=nonempty, sparse=False)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {X.shape}")
    return X


def _data(X, y):
    X = _samples(X)
    y = float_array("y", y, nonempty=True, finite=True)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X {X.shape}, got {y.shape}")
    return X, y


def _new_data(X, d: int) -> np.ndarray:
    """New samples ``X`` (n, d) as a finite float64 array, else ``ValueError`` naming ``X``."""
    X = _samples(X, nonempty=False)
    if X.shape[1] != d:
        raise ValueError(f"X must have {d} features (columns), as the model was trained with, "
                         f"got shape {X.shape}")
    return X


def _targets(y, n: int) -> np.ndarray:
    """Numeric targets ``y`` (n,), else ``ValueError`` naming ``y``."""
    y = float_array("y", y, ndim=1, finite=True)
    if y.shape[0] != n:
        raise ValueError(f"y must have length {n} (one target per row of X), got {y.shape[0]}")
    return y


def _labels(y, n: int | None = None) -> np.ndarray:
    """Class labels ``y`` (n,): numbers, strings or bools in a 1-D array, else ``ValueError``."""
    if y is None:
        raise ValueError("y is required, got None")
    validate.reject_complex("y", y)
    try:
        y = np.asarray(y)
    except ValueError:
        raise ValueError("y must be a 1-D array of labels, got a ragged nested list") from None
    if y.ndim != 1 or y.dtype == object:
        raise ValueError(f"y must be a 1-D array of labels (numbers or strings), got "
                         f"{'dtype object' if y.dtype == object else f'shape {y.shape}'}")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinite labels")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"y must have length {n} (one label per row of X), got {y.shape[0]}")
    return y


# --- the model: predictions and objectives -----------------------------------------------------
def relu_predict(X, D, W):
    """$\\sum_i D_iX(v_i - w_i)$ for weights ``W`` (2, P, d) or gated (P, d)."""
    U = W[0] - W[1] if W.ndim == 3 else W
    return np.sum(D * (X @ U.T), axis=1)


def loss_value(loss: str, pred, y) -> float:
    """The training loss: squared $\\tfrac12\\sum(\\hat y - y)^2$, logistic, hinge (sums)."""
    if loss == "squared":
        return 0.5 * float(np.sum((pred - y) ** 2))
    if loss == "logistic":
        return float(np.sum(np.logaddexp(0.0, -y * pred)))
    return float(np.sum(np.maximum(0.0, 1.0 - y * pred)))


def penalty(W, regularizer: str = "neuron_gl1") -> float:
    r"""$R(W)$ of weights ``W`` (2, P, d) or gated (P, d) (`REGULARIZERS`): ``neuron_gl1``
    $\sum\lVert\text{blocks}\rVert_2$, ``feature_gl1`` $\sum_f\lVert W_{\dots,f}\rVert_2$ (the
    norm of every weight on input feature $f$), ``l1`` $\sum|W|$."""
    if regularizer == "l1":
        return float(np.sum(np.abs(W)))
    if regularizer == "feature_gl1":
        return float(np.sum(np.linalg.norm(W.reshape(-1, W.shape[-1]), axis=0)))
    return float(np.sum(np.linalg.norm(W, axis=-1)))


def relu_objective(X, y, D, W, beta, loss, regularizer: str = "neuron_gl1") -> float:
    """Loss plus $\\beta R(W)$ (`penalty`) of weights ``W``."""
    return loss_value(loss, relu_predict(X, D, W), y) + beta * penalty(W, regularizer)


def robust_objective(X, y, D, W, beta, loss, epsilon) -> float:
    """Worst-case loss over $\\lVert\\delta_k\\rVert_\\infty \\le \\epsilon$ with the patterns
    fixed, plus the group penalty."""
    U = W[0] - W[1]
    a = np.einsum("kp,pq->kq", D, U)  # (n, d): a_k
    pred = np.sum(X * a, axis=1)
    l1 = epsilon * np.sum(np.abs(a), axis=1)
    if loss == "squared":
        val = 0.5 * float(np.sum((np.abs(pred - y) + l1) ** 2))
    elif loss == "logistic":
        val = float(np.sum(np.logaddexp(0.0, -y * pred + l1)))
    else:
        val = float(np.sum(np.maximum(0.0, 1.0 - y * pred + l1)))
    return val + beta * float(np.sum(np.linalg.norm(W, axis=-1)))


def sample_patterns(X, n_patterns: int, seed: int = 0, gates=None):
    """Activation patterns ``D`` (n, P) in {0, 1} and their gates ``G`` (d, P).

    ``gates`` (d, m) given: ``D = 1[X G >= 0]``; else ``n_patterns`` gates ``N(0, I)`` drawn with
    ``seed``. Duplicate patterns (first kept) and the all-zero pattern are removed.
    """
    X = _samples(X)
    if gates is None:
        n_patterns = validate.integer("n_patterns", n_patterns)
        seed = validate.integer("seed", seed, minimum=0)
        G = np.random.default_rng(seed).standard_normal((X.shape[1], n_patterns))
    else:
        G = float_array("gates", gates, ndim=2, nonempty=True, finite=True)
        if G.shape[0] != X.shape[1]:
            raise ValueError(f"gates must be a ({X.shape[1]}, m) array, got shape {G.shape}")
    D = (X @ G >= 0).astype(np.float64)
    _, first = np.unique(D, axis=1, return_index=True)
    keep = np.sort(first)
    keep = keep[D[:, keep].any(axis=0)]
    if keep.size == 0:
        raise ValueError("every activation pattern is zero (x^T g < 0 for every sample x and "
                         "gate g): sample more patterns (n_patterns), another seed, or pass gates")
    return D[:, keep], G[:, keep]


class ReluData(NamedTuple):
    """The operator data of `relu_model`: ``X`` (n, d), ``Ds`` (n, m) signed pattern columns
    (``+D_i`` for $v_i$, ``-D_i`` for $w_i$; gated: ``D``), ``E`` (n, m) the cone signs
    $2D_i - I$ (``None`` for gated)."""

    X: Any
    Ds: Any
    E: Any


def _relu_forward(bk, lin: ReluData, U):
    """$z = \\sum_j D_{s,j}\\circ Xu_j$ and the cone values $c_j = E_j\\circ Xu_j$."""
    XU = lin.X @ U.T
    return bk.xp.sum(lin.Ds * XU, axis=1), (None if lin.E is None else lin.E * XU)


def _relu_adjoint(bk, lin: ReluData, gz, gc):
    W = lin.Ds * gz[:, None]
    if gc is not None:
        W = W + lin.E * gc
    return W.T @ lin.X


def relu_model(X, y, D, beta: float, loss: str, cones: bool, objective,
               regularizer: str = "neuron_gl1"):
    """The convex (``cones``) or gated ReLU program as a `cvxkit.solvers.fista.LinearModel`:
    $U$ (m, d) stacks $v_1..v_P, w_1..w_P$ (gated: $u_1..u_P$); ``objective(W)`` reports the
    program's objective at weights of the answer's shape; ``regularizer`` picks the model's
    penalty (`REGULARIZERS`)."""
    from cvxkit.solvers.fista import LinearModel

    P, d = D.shape[1], X.shape[1]
    Ds = np.concatenate([D, -D], axis=1) if cones else D
    E = np.concatenate([2 * D - 1, 2 * D - 1], axis=1) if cones else None

    def build(bk):
        with bk.precision():
            f = bk.asarray
            return ReluData(f(X), f(Ds), None if E is None else f(E))

    out_shape = (2, P, d) if cones else (P, d)
    return LinearModel(_relu_forward, _relu_adjoint, build, y, loss, beta, (Ds.shape[1], d),
                       out_shape, objective, cones, penalty=REGULARIZERS[regularizer])


@dataclasses.dataclass(frozen=True)
class TwoLayerNetwork:
    r"""A two-layer network $x \mapsto \sum_j \sigma_j(x)\,w_{2,j}$ with
    $\sigma_j(x) = (x^\top W_{1,j})_+$ (ReLU) or $1[x^\top g_j \ge 0]\,x^\top W_{1,j}$ (gated, when
    ``gates`` is set). ``W1`` (m, d), ``w2`` (m,), ``gates`` (m, d) or ``None``."""

    W1: np.ndarray
    w2: np.ndarray
    gates: np.ndarray | None = None

    @property
    def hidden(self) -> int:
        """Number of hidden neurons."""
        return self.W1.shape[0]

    def predict(self, X) -> np.ndarray:
        """(n,) outputs for ``X`` (n, d); ``ValueError`` naming ``X`` for another shape."""
        X = _new_data(X, self.W1.shape[1])
        H = X @ self.W1.T
        act = np.maximum(H, 0.0) if self.gates is None else (X @ self.gates.T >= 0) * H
        return act @ self.w2

    def regularized_loss(self, X, y, beta: float, loss: str = "squared",
                         regularizer: str = "neuron_gl1") -> float:
        r"""Training loss plus the regularizer of the convex program it came from:
        ``neuron_gl1``, weight decay $\tfrac\beta2(\lVert W_1\rVert_F^2 + \lVert w_2\rVert^2)$;
        ``feature_gl1`` and ``l1``, $\beta R$ of the effective weights $|w_{2,j}|W_{1,j}$ (rows),
        $R = \sum_f\lVert\cdot_{:,f}\rVert_2$ or $\sum|\cdot|$. The last two are unchanged when
        a neuron's $(W_{1,j}, w_{2,j})$ becomes $(aW_{1,j}, w_{2,j}/a)$, $a > 0$ (the same
        network). At the network of `ConvexReLU.network` each equals the convex objective."""
        validate.choice("regularizer", regularizer, tuple(REGULARIZERS))
        y = _targets(y, len(self.predict(X)))
        fit = loss_value(loss, self.predict(X), y)
        if regularizer == "neuron_gl1":
            return fit + 0.5 * beta * float(np.sum(self.W1 ** 2) + np.sum(self.w2 ** 2))
        return fit + beta * penalty(np.abs(self.w2)[:, None] * self.W1, regularizer)


@dataclasses.dataclass(frozen=True)
class ReluPath:
    """Solutions of a `ConvexReLU` along a regularization path (`ConvexReLU.path`): ``betas``
    (k,) in decreasing order and one `Result` per value."""

    problem: "ConvexReLU"
    betas: np.ndarray
    results: list

    @property
    def objectives(self) -> np.ndarray:
        """(k,) objective of each solve at its own ``beta``."""
        return np.array([r.objective for r in self.results])

    @property
    def statuses(self) -> list:
        """The `Status` of each solve."""
        return [r.status for r in self.results]

    def weights(self, prune: bool = False) -> list:
        """The weights of each solve (``prune``: after `ConvexReLU.prune`, the minimal network)."""
        return [self.problem.prune(r.x) if prune else self.problem._weights(r.x)
                for r in self.results]

    def neurons(self, prune: bool = False) -> np.ndarray:
        """(k,) number of nonzero blocks (hidden neurons) of each solution."""
        return np.array([int(np.count_nonzero(np.linalg.norm(W.reshape(-1, self.problem.d),
                                                              axis=1)))
                         for W in self.weights(prune)])

    def predictions(self, X=None) -> np.ndarray:
        """(k, n) outputs of each solution on the training data (``X=None``) or on ``X``."""
        return np.array([self.problem.predict(r.x, X) for r in self.results])


class ConvexReLU(Problem):
    r"""Convex training of a two-layer (gated) ReLU network (module docstring).

    Args:
        X: (n, d) data (append a column of ones for a first-layer bias).
        y: (n,) targets; ``+1``/``-1`` labels for ``logistic`` and ``hinge``.
        n_patterns: gates sampled (>= 1); ``P`` <= this many patterns are kept.
        beta: regularization weight (>= 0).
        loss: ``"squared"``, ``"logistic"`` or ``"hinge"``.
        variant: ``"relu"`` or ``"gated"``.
        seed: seed of the gates.
        gates: (d, m) gate vectors to use instead of sampling.
        epsilon: radius of the $\ell_\infty$ adversary (``relu`` only; 0 = standard training).
        regularizer: the penalty $\beta R$ (module docstring): ``"neuron_gl1"`` (group per
            neuron), ``"feature_gl1"`` (group per input feature) or ``"l1"`` (entrywise);
            the last two with ``epsilon = 0`` only, solved by ``relu_al`` and ``rfista``.

    Bad input raises ``ValueError``: shapes, NaN/inf, ``n_patterns < 1``, ``beta < 0``,
    ``epsilon < 0``, labels other than +-1 for classification, unknown loss, variant or
    regularizer.
    """

    family = "convex_relu"
    methods = {"relu_admm": "_solve_admm", "bcd": "_solve_bcd", "relu_al": "_solve_al",
               "rfista": "_solve_rfista"}

    def __init__(self, X, y, n_patterns: int = 50, beta: float = 1e-3, loss: str = "squared",
                 variant: str = "relu", seed: int = 0, gates=None, epsilon: float = 0.0,
                 regularizer: str = "neuron_gl1"):
        self.X, self.y = _data(X, y)
        n_patterns = validate.integer("n_patterns (P)", n_patterns)
        beta = validate.nonnegative("beta", beta)
        epsilon = validate.nonnegative("epsilon", epsilon)
        validate.choice("loss", loss, LOSS_KINDS)
        validate.choice("variant", variant, VARIANTS)
        validate.choice("regularizer", regularizer, tuple(REGULARIZERS))
        seed = validate.integer("seed", seed, minimum=0)
        if loss != "squared" and not np.isin(self.y, (-1.0, 1.0)).all():
            raise ValueError(f"the {loss} loss needs labels y in {{-1, +1}}")
        if epsilon > 0 and variant != "relu":
            raise ValueError("the robust program (epsilon > 0) is formulated for variant='relu'")
        if epsilon > 0 and regularizer != "neuron_gl1":
            raise ValueError(f"the robust program (epsilon > 0) is formulated with "
                             f"regularizer='neuron_gl1', got {regularizer!r}")
        self.regularizer = regularizer
        self.n, self.d = self.X.shape
        self.beta, self.loss, self.variant = float(beta), loss, variant
        self.epsilon = float(epsilon)
        self.D, self.gates = sample_patterns(self.X, int(n_patterns), seed, gates)
        self.P = self.D.shape[1]
        self.shape = (2, self.P, self.d) if variant == "relu" else (self.P, self.d)
        # denominator floor of check's relative gap: 1e-9 of the objective at zero weights (the
        # loss of a zero prediction), so that it scales with the data (y -> s y: s^2)
        self.objective_scale = max(1e-9 * loss_value(loss, np.zeros(self.n), self.y), 1e-300)

    def default_method(self) -> str:
        """The fastest method that met the benchmark's accuracy target (objective within 1e-4
        of Clarabel's, cone violation at most 1e-6 max|Xu|) for this variant and loss
        (docs/convex_relu.md, "Which method"): ``relu_al`` for the ReLU variant with the
        squared and logistic losses, ``rfista`` for the gated variant with the logistic loss,
        ``relu_admm`` otherwise (gated squared and hinge, ReLU hinge, the robust program). With
        a ``regularizer`` other than ``neuron_gl1`` (not measured): ``rfista`` for the gated
        variant with a smooth loss, ``relu_al`` otherwise (the methods that solve it)."""
        if self.regularizer != "neuron_gl1":
            return "rfista" if self.variant == "gated" and self.loss != "hinge" else "relu_al"
        if self.epsilon > 0:
            return "relu_admm"
        if self.variant == "relu":
            return "relu_admm" if self.loss == "hinge" else "relu_al"
        return "rfista" if self.loss == "logistic" else "relu_admm"

    # --- the model --------------------------------------------------------------------------
    def _weights(self, W) -> np.ndarray:
        W = float_array("weights", W)
        if W.size != int(np.prod(self.shape)):
            raise ValueError(f"weights must have {self.shape} entries, got shape {W.shape}")
        return W.reshape(self.shape)

    def objective(self, W) -> float:
        return self._objective(self._weights(W))

    def _objective(self, W) -> float:
        """The objective at weights ``W`` of shape ``self.shape`` (not validated)."""
        if self.epsilon > 0:
            return robust_objective(self.X, self.y, self.D, W, self.beta, self.loss, self.epsilon)
        return relu_objective(self.X, self.y, self.D, W, self.beta, self.loss, self.regularizer)

    def residuals(self, W) -> dict[str, float]:
        """``cone``: largest violation of $(2D_i - I)Xv_i \\ge \\epsilon\\lVert v_i\\rVert_1$ (and
        $w_i$); 0 for the gated variant."""
        W = self._weights(W)
        if self.variant == "gated":
            return {"cone": 0.0}
        E = 2 * self.D - 1
        worst = 0.0
        for U in W:
            slack = E * (self.X @ U.T) - self.epsilon * np.abs(U).sum(axis=1)
            worst = max(worst, float(-slack.min()))
        return {"cone": max(0.0, worst)}

    def predict(self, W, X=None) -> np.ndarray:
        """Outputs of the model with weights ``W``: on the training data (``X=None``) the convex
        model's $\\sum_i D_iX(v_i - w_i)$; on new data the network's (`network`)."""
        W = self._weights(W)
        if X is None:
            return relu_predict(self.X, self.D, W)
        return self.network(W).predict(_new_data(X, self.d))

    def network(self, W) -> TwoLayerNetwork:
        r"""The two-layer network of the convex weights: for each nonzero block $u$ a neuron with
        first-layer weights $u/\sqrt{\lVert u\rVert}$ and output weight $\pm\sqrt{\lVert u\rVert}$
        (``+`` for $v_i$, ``-`` for $w_i$), so that its weight decay equals the group penalty
        (any regularizer: its effective weights $|w_{2,j}|W_{1,j}$ are the blocks, so
        ``regularized_loss(X, y, beta, loss, regularizer)`` equals the convex objective)."""
        W = self._weights(W)
        if self.variant == "gated":
            blocks, signs, gates = W, np.ones(self.P), self.gates.T
        else:
            blocks = W.reshape(2 * self.P, self.d)
            signs = np.concatenate([np.ones(self.P), -np.ones(self.P)])
            gates = None
        norms = np.linalg.norm(blocks, axis=1)
        nz = norms > 0
        root = np.sqrt(norms[nz])
        return TwoLayerNetwork(blocks[nz] / root[:, None], signs[nz] * root,
                               None if gates is None else gates[nz])

    def prune(self, W, rtol: float = 1e-10) -> np.ndarray:
        r"""Optimal pruning (Mishkin & Pilanci, ICML 2023): weights with the same predictions and,
        at an optimum, the same objective, whose active blocks have linearly independent
        contributions $c_j = \pm D_iXu_j$ (so at most $\operatorname{rank}$ of them, $\le n$).

        While the $c_j$ of the nonzero blocks are dependent ($\sigma_{\min} \le$ ``rtol``
        $\sigma_{\max}$ of $[c_j]$, or more blocks than samples), take a null vector $b$ of
        $[c_j]$ with $\max_j b_j > 0$ and scale each block by $1 - b_j/\max b \ge 0$: the
        prediction $\sum_j c_j$ is unchanged, one block becomes zero and every block keeps its
        direction (the cones hold). At an optimum $\beta\lVert u_j\rVert = \langle\rho^\star,
        c_j\rangle$ for the active blocks ($\rho^\star$ the optimal dual vector), so the penalty
        is unchanged too; at an approximate answer it changes by the answer's error. Blocks below
        `ZERO_BLOCK` times the largest norm are set to zero first (an interior-point answer has
        no exact zeros). Returns the pruned weights (shape of ``W``); ``network(prune(W))`` is
        the smaller network.

        With ``regularizer="l1"`` the same holds: the penalty $\beta\lVert u_j\rVert_1$ is
        separate per block and positively homogeneous, so optimality in the scale of block $j$
        gives $\beta\lVert u_j\rVert_1 = \langle\rho^\star, c_j\rangle$ again. With
        ``"feature_gl1"`` it does not: $\sum_f\lVert U_{:,f}\rVert_2$ couples the blocks and is
        strictly convex along the scalings, so pruning would raise the objective
        (``ValueError``)."""
        if self.regularizer == "feature_gl1":
            raise ValueError("prune keeps the objective for regularizer 'neuron_gl1' or 'l1' "
                             "(a penalty separate per neuron); with 'feature_gl1' scaling "
                             "neurons changes the feature-group norms and raises the objective")
        W = self._weights(W).copy()
        blocks = W.reshape(-1, self.d)  # a view: scaled in place
        norms = np.linalg.norm(blocks, axis=1)
        blocks[norms <= ZERO_BLOCK * norms.max()] = 0.0  # an interior-point answer's near-zeros
        signs = np.ones(len(blocks)) if self.variant == "gated" else np.repeat([1.0, -1.0], self.P)
        pattern = np.arange(len(blocks)) % self.P
        while True:
            act = np.flatnonzero(np.linalg.norm(blocks, axis=1) > 0)
            if act.size == 0:
                return W
            C = signs[act] * self.D[:, pattern[act]] * (self.X @ blocks[act].T)  # (n, k)
            _, sv, Vt = np.linalg.svd(C)
            if act.size <= C.shape[0] and sv[-1] > rtol * sv[0]:
                return W
            b = Vt[-1]
            b = b if b.max() > 0 else -b
            scale = np.maximum(1.0 - b / b.max(), 0.0)
            scale[np.argmax(b)] = 0.0
            blocks[act] *= scale[:, None]

    # --- regularization path --------------------------------------------------------------------
    def at_beta(self, beta: float) -> "ConvexReLU":
        """This problem (same data, same patterns) with the regularization weight ``beta`` (and
        no cached reference solution: `reference` solves it afresh)."""
        prob = copy.copy(self)
        prob.beta = float(validate.nonnegative("beta", beta))
        prob.__dict__.pop("_reference", None)
        return prob

    def beta_max(self) -> float:
        r"""The smallest $\beta$ at which zero weights are optimal (Mishkin & Pilanci, ICML 2023,
        the constrained group lasso's $\lambda_{\max}$).

        With $\rho = -\nabla\ell(0)$ ($y$ for the squared and hinge losses, $y/2$ for the
        logistic) and $g_j = A_j^\top\rho$ ($A_j = \pm D_iX$), zero is optimal iff
        $\langle g, U\rangle \le \beta R(U)$ for every feasible $U$, i.e. $\beta \ge
        \max\{\langle g, U\rangle : u_j \in K_j,\ R(U) \le 1\}$.

        * Gated ($K_j = \mathbb R^d$): the dual norm $R_*(g)$: $\max_i\lVert X^\top D_i\rho\rVert$
          (``neuron_gl1``), $\max_f\lVert(X^\top D_i\rho)_{f,\,i=1..P}\rVert$ over the
          features (``feature_gl1``), $\max_{i,f}|(X^\top D_i\rho)_f|$ (``l1``).
        * ReLU, ``neuron_gl1`` ($K_j = \{u : (2D_i - I)Xu \ge 0\}$): by Moreau's decomposition
          the inner maximum is $\lVert\Pi_{K_j}(g_j)\rVert$, the projection computed exactly from
          its dual, a nonnegative least-squares problem $\min_{\lambda \ge 0}\lVert G^\top\lambda
          + g\rVert$ ($G = (2D_i - I)X$, projection $g + G^\top\lambda$).
        * ReLU, ``l1`` and ``feature_gl1``: the maximum above, a linear program (``l1``) or a
          second-order cone program (``feature_gl1``), solved by CVXPY + Clarabel at tolerance
          $10^{-10}$ (relative to $\max|g|$).

        Same units as ``beta``; not defined for the robust program (``epsilon > 0``:
        ``ValueError``)."""
        from scipy.optimize import nnls

        if self.epsilon > 0:
            raise ValueError("beta_max is defined for the standard program (epsilon = 0)")
        rho = self.y / 2 if self.loss == "logistic" else self.y
        corr = (self.D * rho[:, None]).T @ self.X  # (P, d): X^T D_i rho
        if self.variant == "gated":
            if self.regularizer == "l1":
                return float(np.abs(corr).max())
            axis = 0 if self.regularizer == "feature_gl1" else 1
            return float(np.linalg.norm(corr, axis=axis).max())
        if self.regularizer != "neuron_gl1":
            return self._beta_max_conic(np.concatenate([corr, -corr]))
        best = 0.0
        for i in range(self.P):
            G = (2 * self.D[:, i] - 1)[:, None] * self.X
            for g in (corr[i], -corr[i]):
                lam = nnls(G.T, -g, maxiter=50 * G.shape[0])[0]
                best = max(best, float(np.linalg.norm(g + G.T @ lam)))
        return best

    def _beta_max_conic(self, g) -> float:
        r"""$\max\{\langle g, U\rangle : (2D_i - I)Xu_j \ge 0,\ R(U) \le 1\}$ for ``g`` (2P, d)
        (`beta_max`, ReLU, ``l1`` or ``feature_gl1``), by CVXPY + Clarabel on ``g / max|g|``."""
        import cvxpy as cp

        unit = float(np.abs(g).max())
        if unit == 0.0:
            return 0.0
        U = cp.Variable(g.shape)
        E = np.concatenate([2 * self.D - 1, 2 * self.D - 1], axis=1)
        R = cp.sum(cp.abs(U)) if self.regularizer == "l1" else cp.sum(cp.norm(U, 2, axis=0))
        prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(g / unit, U))),
                          [cp.multiply(E, self.X @ U.T) >= 0, R <= 1])
        prob.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        if prob.status not in ("optimal", "optimal_inaccurate"):
            raise ValueError(f"beta_max: the conic program ended {prob.status}")
        return max(0.0, float(prob.value)) * unit

    def path(self, betas=None, method: str | None = None, n_betas: int = 20,
             ratio: float = 1e-3, **options) -> "ReluPath":
        r"""Solutions along a regularization path, each solve warm started from the previous
        solution's weights. (Not from its multipliers and penalty: with ``relu_al``, a run
        started from those of a larger $\beta$ took 2-5x the iterations of a cold one at the
        smaller values, measured on a (200, 10, 20) instance; from the weights it takes about
        as many as a cold one.)

        Args:
            betas: the values of $\beta$ (any order; solved from the largest down, since the
                solution moves away from zero as $\beta$ decreases); default ``n_betas``
                values spaced geometrically below `beta_max`, $\beta_{\max}r^{k/n}$ for
                $k = 1..n$ (``ratio`` $r$). Not $\beta_{\max}$ itself: there the solution is
                zero but approached only in the limit, a slow solve.
            method: the method of every solve (default: `default_method`).
            n_betas: number of default values.
            ratio: smallest default value over `beta_max`.
            **options: solver options of every solve (``tol``, ``max_iter``, ...).

        Returns:
            `ReluPath` with the values in decreasing order and one `Result` per value (its
            ``x`` the weights of this problem's shape).
        """
        if betas is None:
            validate.integer("n_betas", n_betas)
            ratio = validate.positive("ratio", ratio)
            if ratio >= 1:
                raise ValueError(f"ratio must be below 1, got {ratio}")
            betas = self.beta_max() * ratio ** (np.arange(1, n_betas + 1) / n_betas)
        betas = float_array("betas", betas, ndim=1, nonempty=True, finite=True)
        if (betas < 0).any():
            raise ValueError("betas must be nonnegative")
        betas = np.sort(betas)[::-1]
        method = method or self.default_method()
        if "warm_start" in options:
            raise ValueError("path warm starts every solve from the previous one; "
                             "warm_start cannot be given")
        results, last = [], None
        for beta in betas:
            res = self.at_beta(beta).solve(method, warm_start=last, **options)
            results.append(res)
            if res.x is not None and np.isfinite(res.x).all():
                last = np.asarray(res.x)  # the weights only (see the docstring)
        return ReluPath(self, betas, results)

    # --- reference ----------------------------------------------------------------------------
    def to_cvxpy(self):
        """The CVXPY model; its variable is $U$ (2P, d) = $(v_1..v_P, w_1..w_P)$ (gated: (P, d))."""
        import cvxpy as cp

        X, y, D, P, n = self.X, self.y, self.D, self.P, self.n
        relu = self.variant == "relu"
        U = cp.Variable((2 * P if relu else P, self.d))
        Ds = np.concatenate([D, -D], axis=1) if relu else D
        XU = X @ U.T
        cons = []
        if relu:
            E = np.concatenate([2 * D - 1, 2 * D - 1], axis=1)
            slack = cp.multiply(E, XU)
            if self.epsilon > 0:
                l1 = cp.reshape(cp.norm(U, 1, axis=1), (1, 2 * P), order="C")
                slack = slack - self.epsilon * (np.ones((n, 1)) @ l1)
            cons.append(slack >= 0)
        if self.regularizer == "l1":
            reg = self.beta * cp.sum(cp.abs(U))
        else:  # a group per row (neuron) or per column (input feature)
            axis = 0 if self.regularizer == "feature_gl1" else 1
            reg = self.beta * cp.sum(cp.norm(U, 2, axis=axis))
        if self.epsilon > 0:
            a = D @ (U[:P] - U[P:])  # (n, d)
            pred = cp.sum(cp.multiply(X, a), axis=1)
            l1 = self.epsilon * cp.norm(a, 1, axis=1)
            if self.loss == "squared":
                t = cp.Variable(n)
                cons += [t >= pred - y + l1, t >= y - pred + l1]
                fit = 0.5 * cp.sum_squares(t)
            else:
                margin = cp.multiply(y, pred) - l1
                fit = cp.sum(cp.logistic(-margin)) if self.loss == "logistic" else \
                    cp.sum(cp.pos(1 - margin))
        else:
            pred = cp.sum(cp.multiply(Ds, XU), axis=1)
            if self.loss == "squared":
                fit = 0.5 * cp.sum_squares(pred - y)
            elif self.loss == "logistic":
                fit = cp.sum(cp.logistic(-cp.multiply(y, pred)))
            else:
                fit = cp.sum(cp.pos(1 - cp.multiply(y, pred)))
        return cp.Problem(cp.Minimize(fit + reg), cons), U

    def _solve_cvxpy(self, opts: dict) -> Result:
        """The reference solve, on the instance normalized to ``max|y| = 1`` (squared loss:
        ``y / s`` and ``beta / s`` have the optimal weights ``W / s``): Clarabel's tolerances are
        absolute, and at ``y ~ 1e-9`` they left its objective 12% above the optimum."""
        s = float(np.max(np.abs(self.y))) if self.loss == "squared" else 1.0
        if s in (0.0, 1.0):
            res = super()._solve_cvxpy(opts)
            return res if res.x is None else res.replace(x=self._weights(res.x))
        unit = copy.copy(self)
        unit.y, unit.beta = self.y / s, self.beta / s
        res = Problem._solve_cvxpy(unit, opts)
        if res.x is None:
            return res
        W = s * unit._weights(res.x)
        return res.replace(x=W, objective=self.objective(W), primal_residual=self.max_violation(W))

    # --- adapters -----------------------------------------------------------------------------
    def prox_program(self):
        """The `cvxkit.solvers.relu_admm.ProxProgram` of this instance (`relu_program`;
        ``regularizer='neuron_gl1'`` only)."""
        self._only_neuron_gl1("relu_admm")
        return relu_program(self.X, self.y, self.D, beta=self.beta, loss=self.loss,
                            cones=self.variant == "relu", epsilon=self.epsilon,
                            objective=self._objective)

    def _only_neuron_gl1(self, method: str):
        """``ValueError`` for a method that solves only the neuron group-l1 program."""
        if self.regularizer != "neuron_gl1":
            raise ValueError(f"method {method!r} solves regularizer='neuron_gl1' only; "
                             f"regularizer={self.regularizer!r} is solved by method "
                             f"'relu_al' (or 'rfista': gated, squared or logistic loss)")

    def _solve_admm(self, backend="numpy", **options) -> Result:
        self._only_neuron_gl1("relu_admm")
        return relu_admm(self.prox_program(), backend=backend, **options)

    def linear_model(self):
        """The `cvxkit.solvers.fista.LinearModel` of this instance (`relu_model`), for
        ``relu_al`` and ``rfista``."""
        if self.epsilon > 0:
            raise ValueError("methods 'relu_al' and 'rfista' solve the standard program "
                             "(epsilon = 0); the robust one is solved by method='relu_admm'")
        return relu_model(self.X, self.y, self.D, self.beta, self.loss,
                          self.variant == "relu", self._objective, self.regularizer)

    def _solve_al(self, backend="numpy", **options) -> Result:
        from cvxkit.solvers.relu_al import relu_al

        return relu_al(self.linear_model(), backend=backend, **options)

    def _solve_rfista(self, backend="numpy", **options) -> Result:
        from cvxkit.solvers.relu_al import rfista

        if self.variant != "gated" or self.loss == "hinge":
            raise ValueError("method 'rfista' solves the gated variant with the squared or "
                             "logistic loss (use method='relu_al' for the others)")
        return rfista(self.linear_model(), backend=backend, **options)

    def _solve_bcd(self, backend="numpy", **options) -> Result:
        from cvxkit.solvers.bcd import bcd

        self._only_neuron_gl1("bcd")
        if self.variant != "gated" or self.loss != "squared" or self.epsilon > 0:
            raise ValueError("method 'bcd' solves the gated variant with the squared loss "
                             "(use method='relu_admm' for the others)")
        A = np.ascontiguousarray((self.D.T[:, :, None] * self.X[None, :, :]))  # (P, n, d)
        res = bcd(A, self.y, lam=self.beta, penalty="group", backend=backend,
                  **{"update": "prox_gradient", **options})  # fastest with Anderson (benchmark)
        return res.replace(objective=self.objective(res.x))


class ConvexReLUNet:
    """An sklearn-style estimator: a two-layer ReLU network trained by the convex program.

    ``ConvexReLUNet(n_patterns=50, beta=1e-3, loss="squared", variant="relu", epsilon=0.0,
    fit_intercept=True, method=None, backend="numpy", seed=0, solver_options=None,
    standardize=False, regularizer="neuron_gl1")`` (``regularizer``: `ConvexReLU`'s).
    ``fit(X, y)`` builds a `ConvexReLU` (a ones column appended when
    ``fit_intercept``; with ``standardize`` the columns of ``X`` first centred and scaled to unit
    standard deviation, and new data transformed alike) and solves it; ``predict(X)`` returns
    values (squared loss) or class labels (classification, any labels); ``decision_function(X)``
    the network output; ``score(X, y)`` the R^2 (regression; averaged over outputs) or the
    accuracy (classification); ``get_params()``/``set_params()`` as in scikit-learn (which is
    not needed). After ``fit``: ``problem_``, ``result_``, ``network_`` (`TwoLayerNetwork`),
    ``classes_`` (classification).

    **Several classes or outputs** (scnn's one-vs-all): with more than two classes, one network
    per class is trained on "this class against the rest" (labels +1/-1, the same gates), and
    ``predict`` returns the class of the largest output; with targets ``y`` of shape (n, k)
    (squared loss), one network per column. Their estimators are in ``estimators_``;
    ``decision_function`` returns (n, k) and ``problem_``/``result_``/``network_`` are unset.
    """

    _PARAMS = ("n_patterns", "beta", "loss", "variant", "epsilon", "fit_intercept", "method",
               "backend", "seed", "solver_options", "standardize", "regularizer")

    def __init__(self, n_patterns: int = 50, beta: float = 1e-3, loss: str = "squared",
                 variant: str = "relu", epsilon: float = 0.0, fit_intercept: bool = True,
                 method: str | None = None, backend: str = "numpy", seed: int = 0,
                 solver_options: dict | None = None, standardize: bool = False,
                 regularizer: str = "neuron_gl1"):
        self.n_patterns, self.beta, self.loss, self.variant = n_patterns, beta, loss, variant
        self.epsilon, self.fit_intercept, self.method = epsilon, fit_intercept, method
        self.backend, self.seed = backend, seed
        self.solver_options, self.standardize = solver_options, standardize
        self.regularizer = regularizer

    def get_params(self, deep: bool = True) -> dict:
        """The constructor arguments."""
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params) -> "ConvexReLUNet":
        for k, v in params.items():
            if k not in self._PARAMS:
                raise ValueError(f"unknown parameter {k!r}; valid: {', '.join(self._PARAMS)}")
            setattr(self, k, v)
        return self

    def _features(self, X, fitted: bool = True):
        """``X`` (n, d) checked (finite, 2-D; after ``fit`` the same d), ones column appended."""
        if fitted:
            X = _new_data(X, self.n_features_in_)
        else:
            X = _samples(X)
            validate.boolean("standardize", self.standardize)
            self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0)
            self.scale_[self.scale_ == 0] = 1.0  # constant columns: centred only
        if self.standardize:
            X = (X - self.mean_) / self.scale_
        return np.hstack([X, np.ones((X.shape[0], 1))]) if self.fit_intercept else X

    def _problem(self, X, y) -> ConvexReLU:
        """The `ConvexReLU` of the data (sets ``classes_`` and ``n_features_in_``)."""
        validate.boolean("fit_intercept", self.fit_intercept)
        if not (self.solver_options is None or isinstance(self.solver_options, dict)):
            raise TypeError(f"solver_options must be a dict or None, got "
                            f"{type(self.solver_options).__name__}")
        F = self._features(X, fitted=False)
        self.n_features_in_ = F.shape[1] - int(self.fit_intercept)
        if self.loss != "squared":
            y = _labels(y, F.shape[0])
            self.classes_ = np.unique(y)
            if self.classes_.size < 2:
                raise ValueError(f"classification needs at least two classes in y, got "
                                 f"{self.classes_.size}")
            y = np.where(y == self.classes_[1], 1.0, -1.0)
        else:
            y = _targets(y, F.shape[0])
        return ConvexReLU(F, y, n_patterns=self.n_patterns, beta=self.beta, loss=self.loss,
                          variant=self.variant, seed=self.seed, epsilon=self.epsilon,
                          regularizer=self.regularizer)

    def _fitted(self, problem: ConvexReLU, result: Result) -> "ConvexReLUNet":
        self.problem_, self.result_ = problem, result
        self.network_ = problem.network(result.x)
        return self

    def _split(self, X, y) -> list | None:
        """One binary (or single-output) target per network for more than two classes (or a
        2-D ``y``): ``[(name, y_k), ...]``; ``None`` for a single program."""
        if self.loss == "squared":
            y = np.asarray(y) if hasattr(y, "__len__") else y
            if getattr(y, "ndim", 1) == 2:
                return [(k, y[:, k]) for k in range(y.shape[1])]
            return None
        y = _labels(y)
        classes = np.unique(y)
        if classes.size <= 2:
            return None
        self.classes_ = classes
        return [(c, np.where(y == c, 1.0, -1.0)) for c in classes]

    def _fit_each(self, X, parts) -> "ConvexReLUNet":
        for name in ("problem_", "result_", "network_"):
            self.__dict__.pop(name, None)
        self.estimators_ = [copy.copy(self).fit(X, yk) for _, yk in parts]
        self.n_features_in_ = self.estimators_[0].n_features_in_
        return self

    def fit(self, X, y) -> "ConvexReLUNet":
        self.__dict__.pop("estimators_", None)
        parts = self._split(X, y)
        if parts is not None:
            return self._fit_each(X, parts)
        problem = self._problem(X, y)
        return self._fitted(problem, problem.solve(self.method, backend=self.backend,
                                                   **(self.solver_options or {})))

    def path(self, X, y, betas=None, n_betas: int = 20, ratio: float = 1e-3,
             prune: bool = False) -> list:
        """Fit along a regularization path (`ConvexReLU.path`: warm started, from the largest
        ``beta`` down; default ``n_betas`` values geometrically below the problem's
        `ConvexReLU.beta_max`, down to ``ratio`` times it).

        Returns:
            One fitted copy of this estimator per value, in decreasing ``beta`` (each with its
            ``beta``, ``problem_``, ``result_`` and ``network_``; ``prune``: the network of the
            pruned weights, `ConvexReLU.prune`, with the same predictions and fewer neurons).
        """
        if self._split(X, y) is not None:
            raise ValueError("path fits one program: a single output, or two classes")
        problem = self._problem(X, y)
        trace = problem.path(betas, self.method, n_betas=n_betas, ratio=ratio,
                             backend=self.backend, **(self.solver_options or {}))
        fitted = []
        for beta, res in zip(trace.betas, trace.results):
            est = copy.copy(self).set_params(beta=float(beta))
            one = problem.at_beta(beta)
            if prune:
                W = one.prune(res.x)
                res = res.replace(x=W, objective=one.objective(W))
            fitted.append(est._fitted(one, res))
        return fitted

    def _check_fitted(self):
        if not (hasattr(self, "network_") or hasattr(self, "estimators_")):
            raise ValueError("this ConvexReLUNet is not fitted yet: call fit(X, y) first")

    def decision_function(self, X) -> np.ndarray:
        """The network's output (n,); (n, k) for k classes (over two) or outputs."""
        self._check_fitted()
        if hasattr(self, "estimators_"):
            return np.stack([e.decision_function(X) for e in self.estimators_], axis=1)
        return self.network_.predict(self._features(X))

    def predict(self, X) -> np.ndarray:
        out = self.decision_function(X)
        if self.loss == "squared":
            return out
        if out.ndim == 2:
            return self.classes_[np.argmax(out, axis=1)]
        return np.where(out >= 0, self.classes_[1], self.classes_[0])

    def score(self, X, y) -> float:
        """R^2 (squared loss) or accuracy (classification)."""
        pred = self.predict(X)
        if self.loss != "squared":
            return float(np.mean(pred == _labels(y, pred.shape[0])))
        if pred.ndim == 2:
            y = float_array("y", y, ndim=2, finite=True)
            if y.shape != pred.shape:
                raise ValueError(f"y must have shape {pred.shape}, got {y.shape}")
            cols = [y[:, k] for k in range(y.shape[1])]
            return float(np.mean([_r2(c, p) for c, p in zip(cols, pred.T)]))
        return _r2(_targets(y, pred.shape[0]), pred)


def _r2(y, pred) -> float:
    """The coefficient of determination of ``pred`` for targets ``y`` (n,)."""
    return 1.0 - float(np.sum((y - pred) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-300))
