r"""Net-Trim: layer-wise convex pruning of a trained ReLU network (the problem and the network).

Aghasi, Abdi, Nguyen & Romberg, NeurIPS 2017; Aghasi, Abdi & Romberg, "Fast convex pruning of
deep neural networks", SIAM J. Math. Data Sci. 2020 (arXiv 1806.06457).

One layer (`NetTrim`): input $X \in \mathbb{R}^{N\times P}$ (features x samples), trained
weights $W_0 \in \mathbb{R}^{N\times M}$, response $Y = \mathrm{ReLU}(W_0^\top X)$, support
$\Omega = \{Y > 0\}$:

$$
\min_W \lVert W\rVert_1 \quad\text{s.t.}\quad \lVert(W^\top X - Y)_\Omega\rVert_F \le \epsilon,
\qquad (W^\top X)_{\Omega^c} \le V_{\Omega^c}
$$

($V = 0$ by default; ``relu=False``: a linear layer, $\lVert W^\top X - Y\rVert_F \le \epsilon$
only). Method ``"net_trim"`` (`cvxkit.solvers.net_trim`: the prox-ADMM core with the Net-Trim
set's projection). `net_trim_network` prunes a whole multilayer perceptron layer by layer.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from cvxkit.problems.base import Problem
from cvxkit.solvers import validate
from cvxkit.solvers.net_trim import check_layer, violations
from cvxkit.solvers.result import Result


class NetTrim(Problem):
    r"""One layer's Net-Trim program (module docstring).

    Args:
        X: layer input (N, P), features x samples (any scipy.sparse format is densified).
        W0: trained weights (N, M) (with ``bias=True``: (N + 1, M), the bias as the last row);
            then ``Y = ReLU(W0^T X)`` (``relu=False``: ``W0^T X``). Give ``W0`` or ``Y``.
        Y: the response to keep (M, P).
        eps: the misfit allowed: times $\lVert Y\rVert_F$ when ``relative`` (default 0.05),
            else in the units of Y.
        relative: whether ``eps`` is relative to $\lVert Y\rVert_F$.
        V: the bound off the support (M, P), default 0 (the parallel scheme); ReLU layers only.
        relu: a ReLU layer (``False``: linear, no support, no inequality).
        bias: append a row of ones to ``X`` (the answer's last row is the bias).

    Bad input raises ``ValueError`` naming the argument. The answer ``Result.x`` is W (N, M)
    (N + 1 rows with ``bias``).
    """

    family = "net_trim"
    methods = {"net_trim": "_solve_net_trim"}

    def __init__(self, X, W0=None, Y=None, eps: float = 0.05, relative: bool = True, V=None,
                 relu: bool = True, bias: bool = False):
        relu = validate.boolean("relu", relu)
        bias = validate.boolean("bias", bias)
        relative = validate.boolean("relative", relative)
        X = validate.matrix("X (N features, P samples)", X, nonempty=True, sparse=False)
        if X.ndim != 2:
            raise ValueError(f"X (N features, P samples) must be a 2-D array, got shape {X.shape}")
        if bias:
            X = np.vstack([X, np.ones((1, X.shape[1]))])
        if (W0 is None) == (Y is None):
            raise ValueError("give either W0 (the trained weights; Y = ReLU(W0^T X)) or Y "
                             "(the response), not both or neither")
        if W0 is not None:
            W0 = validate.float_array("W0", W0, ndim=2, nonempty=True, finite=True)
            if W0.shape[0] != X.shape[0]:
                raise ValueError(f"W0 must have {X.shape[0]} rows (one per feature of X"
                                 f"{', plus the bias row' if bias else ''}), got shape {W0.shape}")
            Y = W0.T @ X
            Y = np.maximum(Y, 0.0) if relu else Y
        if V is not None and not relu:
            raise ValueError("V (the bound off the support) applies to a ReLU layer; a linear "
                             "layer (relu=False) has none")
        Y = validate.float_array("Y (M outputs, P samples)", Y, ndim=2, nonempty=True,
                                 finite=True)
        if Y.shape[1] != X.shape[1]:
            raise ValueError(f"Y must have shape (M, {X.shape[1]}) (one column per sample of X), "
                             f"got {Y.shape}")
        eps = validate.nonnegative("eps", eps)
        if relu and V is None:
            V = np.zeros_like(Y)
        self.X, self.Y, self.V, self.eps, self.mask = check_layer(
            X, Y, V, eps * float(np.linalg.norm(Y)) if relative else eps, None)
        self.W0, self.relu, self.bias = W0, relu, bias
        self.shape = (X.shape[0], Y.shape[0])
        # floor of check's relative gap: ||W||_1 >= ||W^T X||_F / ||X||_2 ~ ||Y||_F / ||X||_2
        # (a zero Y or X counts as 1)
        sx, sy = float(np.linalg.norm(self.X, 2)), float(np.linalg.norm(self.Y))
        self.objective_scale = (sy if sy > 0 else 1.0) / (sx if sx > 0 else 1.0)

    def default_method(self) -> str:
        return "net_trim"

    def _check_W(self, W) -> np.ndarray:
        W = validate.float_array("W", W, finite=False)
        if W.shape != self.shape:
            raise ValueError(f"W must have shape {self.shape}, got {W.shape}")
        return W

    def objective(self, W) -> float:
        """$\\lVert W\\rVert_1$."""
        return float(np.sum(np.abs(self._check_W(W))))

    def residuals(self, W) -> dict[str, float]:
        """``misfit``: $(\\lVert(W^\\top X - Y)_\\Omega\\rVert_F - \\epsilon)_+$; ``off_support``:
        $\\max_{\\Omega^c}(W^\\top X - V)_+$ (units of Y)."""
        fit, off = violations(self._check_W(W), self.X, self.Y, self.V, self.eps, self.mask)
        return {"misfit": fit, "off_support": off}

    def to_cvxpy(self):
        import cvxpy as cp

        W = cp.Variable(self.shape)
        Z = cp.vec(W.T @ self.X, order="C")
        on, off = np.flatnonzero(self.mask), np.flatnonzero(~self.mask)
        cons = [cp.norm(Z[on] - self.Y.ravel()[on], 2) <= self.eps]
        if off.size:
            cons.append(Z[off] <= self.V.ravel()[off])
        return cp.Problem(cp.Minimize(cp.sum(cp.abs(W))), cons), W

    def _solve_net_trim(self, backend="numpy", **options) -> Result:
        from cvxkit.solvers.net_trim import net_trim

        return net_trim(self.X, self.Y, self.V, self.eps, self.mask if self.relu else None,
                        backend=backend, **options)

    def split(self, W):
        """``(weights, bias)`` of an answer: W (N, M) and None, or with ``bias`` its first N
        rows and its last row (M,)."""
        W = self._check_W(W)
        return (W[:-1], W[-1]) if self.bias else (W, None)


# --- whole networks -------------------------------------------------------------------------------
class PrunedNetwork(NamedTuple):
    """`net_trim_network`'s answer: the pruned ``weights`` and ``biases`` (as given: (n_in,
    n_out) and (n_out,) or None) and each layer's `Result`."""

    weights: list
    biases: list
    results: list


def _layers(weights, biases, X):
    weights = [validate.float_array(f"weights[{i}]", W, ndim=2, nonempty=True, finite=True)
               for i, W in enumerate(weights)]
    if not weights:
        raise ValueError("weights must list at least one layer's (n_in, n_out) matrix")
    if biases is None:
        biases = [None] * len(weights)
    if len(biases) != len(weights):
        raise ValueError(f"biases must have one entry per layer ({len(weights)}), got "
                         f"{len(biases)}")
    biases = [None if b is None else validate.float_array(f"biases[{i}]", b, ndim=1,
                                                           finite=True)
              for i, b in enumerate(biases)]
    X = validate.matrix("X (n_features, P samples)", X, nonempty=True, sparse=False)
    if X.ndim != 2:
        raise ValueError(f"X (n_features, P samples) must be a 2-D array, got shape {X.shape}")
    n = X.shape[0]
    if weights[0].shape[0] != n:
        raise ValueError(f"X must have {weights[0].shape[0]} rows (the features of weights[0]; "
                         f"samples as columns), got shape {X.shape}")
    for i, (W, b) in enumerate(zip(weights, biases)):
        if W.shape[0] != n:
            raise ValueError(f"weights[{i}] must have {n} rows (the previous layer's width), "
                             f"got shape {W.shape}")
        if b is not None and b.shape != (W.shape[1],):
            raise ValueError(f"biases[{i}] must have shape ({W.shape[1]},), got {b.shape}")
        n = W.shape[1]
    return weights, biases, X


def mlp_activations(weights, biases, X) -> list:
    """Every layer's output of the MLP $a_\\ell = \\mathrm{ReLU}(W_\\ell^\\top a_{\\ell-1} +
    b_\\ell)$, the last layer linear: a list ``[X, a_1, ..., a_L]`` of (n_l, P) arrays for
    ``X`` (n_0, P) (samples as columns); ``weights[l]`` (n_l, n_{l+1}), ``biases[l]``
    (n_{l+1},) or None (``biases`` None: no biases)."""
    weights, biases, X = _layers(weights, biases, X)
    out = [X]
    for i, (W, b) in enumerate(zip(weights, biases)):
        z = W.T @ out[-1] + (0.0 if b is None else b[:, None])
        out.append(z if i == len(weights) - 1 else np.maximum(z, 0.0))
    return out


def _aug(a, bias: bool):
    return np.vstack([a, np.ones((1, a.shape[1]))]) if bias else a


def net_trim_network(weights, biases, X, eps: float | Sequence[float] = 0.05, *,
                     scheme: str = "parallel", gamma: float = 1.0, method: str = "net_trim",
                     **options) -> PrunedNetwork:
    r"""Prune every layer of a multilayer perceptron by Net-Trim.

    Args:
        weights: the layers' matrices ``W_l`` (n_l, n_{l+1}) (sklearn's ``coefs_``).
        biases: the layers' ``b_l`` (n_{l+1},) (sklearn's ``intercepts_``), or None.
        X: the data (n_0, P), samples as columns (``X_train.T``).
        eps: the relative misfit $\epsilon_\ell / \lVert Y_\ell\rVert_F$, one value or one per
            layer (cascade: the first layer's only).
        scheme: ``"parallel"``: layer $\ell$ is fitted on the original network's input
            $a_{\ell-1}$ with $V = 0$; ``"cascade"``: on the pruned network's $\hat a_{\ell-1}$,
            with $V = W_\ell^\top\hat a_{\ell-1} + b_\ell$ (the original weights on the new
            input, so they stay feasible) and $\epsilon_\ell$ ``gamma`` times their own misfit
            (layers after the first).
        gamma: the cascade's factor ($\ge 1$).
        method: the solver of each layer.
        **options: passed to each layer's ``solve`` (``tol``, ``max_iter``, ...).

    The last layer is linear (no ReLU). Returns a `PrunedNetwork`.
    """
    weights, biases, X = _layers(weights, biases, X)
    validate.choice("scheme", scheme, ("parallel", "cascade"))
    if validate.positive("gamma", gamma) < 1:
        raise ValueError(f"gamma must be >= 1 (the original weights stay feasible), got {gamma}")
    L = len(weights)
    eps = [eps] * L if np.ndim(eps) == 0 else list(eps)
    if len(eps) != L:
        raise ValueError(f"eps must be one number or one per layer ({L}), got {len(eps)}")
    acts = mlp_activations(weights, biases, X)
    new_w, new_b, results = [], [], []
    inp = X
    for i, (W, b) in enumerate(zip(weights, biases)):
        relu, has_b = i < L - 1, b is not None
        W0 = np.vstack([W, b]) if has_b else W
        Y = acts[i + 1]
        if scheme == "parallel" or i == 0:
            prob = NetTrim(_aug(acts[i], has_b), Y=Y, eps=eps[i], relu=relu)
        else:
            A = _aug(inp, has_b)
            Z0 = W0.T @ A
            misfit = float(np.linalg.norm((Z0 - Y)[Y > 0] if relu else Z0 - Y))
            prob = NetTrim(A, Y=Y, eps=gamma * misfit, relative=False, V=Z0 if relu else None,
                           relu=relu)
        res = prob.solve(method, **options)
        Wn = np.asarray(res.x)
        new_w.append(Wn[:-1] if has_b else Wn)
        new_b.append(Wn[-1] if has_b else None)
        results.append(res)
        if scheme == "cascade":
            z = Wn.T @ _aug(inp, has_b)
            inp = np.maximum(z, 0.0) if relu else z
    return PrunedNetwork(new_w, new_b if any(b is not None for b in biases) else None, results)
