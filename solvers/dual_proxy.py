r"""Dual conic proxies by Dual Lagrangian Learning (DLL).

Tanneau & Van Hentenryck, "Dual Lagrangian Learning for Conic Optimization", NeurIPS 2024
(arXiv 2402.03086). A network maps the parameters $\theta$ of a parametric conic program to
dual variables that are dual-feasible by construction, so that every output gives a valid
lower bound on the optimal value; it is trained by maximizing that bound (no solver in the loop).

Problem (the data are affine in $\theta \in \mathbb{R}^p$; as plain arrays, see `FIELDS`):

$$
\min_x\ c(\theta)^\top x + d(\theta)\quad\text{s.t.}\quad A(\theta)x + b(\theta) \in K,\quad
l \le x \le u,\quad 2x_{i_k}x_{j_k} \ge \kappa_k^2,\ x_{i_k}, x_{j_k} \ge 0,
$$

$K$ a product of zero cones, nonnegative orthants and second-order cones
$Q^k = \{(t, s): \lVert s\rVert_2 \le t\}$; the last group are rotated-cone constraints
$(x_i, x_j, \kappa) \in Q_r^3$ with a constant third entry (the paper's production planning).

DLL, for one $\theta$:

1. network: $\bar y = \mathrm{MLP}((\theta - \mu)/\sigma)$ (one output per row of $K$);
2. conic projection layer: $\hat y = e^{s}\,\Pi_{K^*}(\bar y)$ ($s$ a trained scalar) — identity on zero-cone rows, softplus (or
   ReLU, the Euclidean projection) on orthant rows, the Euclidean projection on each SOC block;
3. dual completion (closed form): with the reduced cost $r = c - A^\top\hat y$, the bound
   multipliers are $z_l = r_+$, $z_u = r_-$ and each rotated cone gets
   $(r_i, r_j, -\sqrt{2r_ir_j})$; $(\hat y, z)$ is dual feasible whenever $r_i, r_j \ge 0$ on
   the pairs (guaranteed by the data of production planning);
4. Lagrangian bound:
   $g(\hat y) = d - b^\top\hat y + \sum_{j\ \text{box}} \min(l_jr_j, u_jr_j)
   + \sum_k \kappa_k\sqrt{2 r_{i_k} r_{j_k}}$ (and $-\infty$ if a pair's reduced cost is
   negative), which is $\le$ the optimal value by weak duality;
5. training: maximize the mean of $g$ over parameter samples with Adam (optax).

Bounds valid in floating point (`ProxyNetwork.bound`): evaluated in float64 whatever precision the
network trained in; the SOC part of $\hat y$ is nudged inward by $(k+2)\,\epsilon\lVert s\rVert$
so that $\hat y \in K^*$ holds for the floating-point numbers themselves; every reduced cost
is widened by a forward rounding-error bound
$\delta = 2\gamma_N(|c| + |A|^\top|\hat y|)$ (with $\gamma_N = N\epsilon/(1-N\epsilon)$, $N$
the longest sum, data magnitudes from the absolute maps $|M||\theta|$), the box and pair terms
use the worst reduced cost in $[\hat r - \delta, \hat r + \delta]$, and the final sum is lowered by
$2\gamma_N$ times the sum of the absolute values of its terms. Non-finite network outputs are
replaced by 0 (a feasible dual point); a NaN bound becomes $-\infty$.
"""
from __future__ import annotations

import functools
import math
import time
import types
from collections.abc import Mapping

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.cones import safe_norm, soc_parts
from cvxkit.solvers.driver import Final, ProgressBar, finish
from cvxkit.solvers.result import Result, Status

DEFAULT_EPOCHS = 1000
"""The most epochs `ProxyNetwork.fit` trains by default (its plateau schedule stops sooner)."""

FIELDS = ("n", "m", "p", "cones", "A_rows", "A_cols", "A_map", "c_map", "b_map", "d_map", "lb",
          "ub", "pairs_i", "pairs_j", "kappa")
"""The plain arrays a proxy runs on (a mapping with these keys; `cvxkit.problems.ConicData`
validates and builds them, ``ConicData.arrays()``):

- ``n``, ``m``, ``p``: numbers of variables, cone rows and parameters;
- ``cones``: ``((kind, dim), ...)``, kind in ``"zero"``, ``"nonneg"``, ``"soc"``, over the m rows;
- ``A_rows``, ``A_cols`` (nnz,): the fixed pattern of $A(\theta)$; ``A_map`` (nnz, p + 1),
  ``c_map`` (n, p + 1), ``b_map`` (m, p + 1), ``d_map`` (1, p + 1): scipy.sparse affine maps
  acting on $(\theta, 1)$;
- ``lb``, ``ub`` (n,): variable bounds; ``pairs_i``, ``pairs_j``, ``kappa`` (P,): rotated-cone
  pairs.
"""


def box_mask(n: int, pairs_i, pairs_j) -> np.ndarray:
    """(n,) mask of the variables completed by their bounds (all but the pair variables)."""
    mask = np.ones(int(n), dtype=bool)
    mask[np.asarray(pairs_i, np.int64)] = mask[np.asarray(pairs_j, np.int64)] = False
    return mask


def cone_index(cones) -> dict:
    """Row indices by cone kind: ``{"zero": (k,), "nonneg": (k,), "soc": {dim: (blocks, dim)}}``."""
    out = {"zero": [], "nonneg": [], "soc": {}}
    start = 0
    for kind, dim in cones:
        rows = np.arange(start, start + dim)
        if kind == "soc":
            out["soc"].setdefault(dim, []).append(rows)
        else:
            out[kind].extend(rows)
        start += dim
    return {"zero": np.asarray(out["zero"], np.int64),
            "nonneg": np.asarray(out["nonneg"], np.int64),
            "soc": {k: np.stack(v) for k, v in out["soc"].items()}}


def _arrays(data) -> types.SimpleNamespace:
    """The plain arrays of ``data`` (a mapping with the keys `FIELDS`), plus ``box``."""
    if not isinstance(data, Mapping):
        raise ValueError("the proxy's data must be a mapping of plain arrays with the keys "
                         f"{', '.join(FIELDS)} (e.g. cvxkit.problems.ConicData.arrays()); got "
                         f"{type(data).__name__}")
    missing = [k for k in FIELDS if k not in data]
    if missing:
        raise ValueError(f"the proxy's data lacks {', '.join(missing)}")
    a = types.SimpleNamespace(**{k: data[k] for k in FIELDS})
    a.box = box_mask(a.n, a.pairs_i, a.pairs_j)
    return a


# --- JAX pieces (imported lazily) ------------------------------------------------------------
def _jax():
    import jax
    import jax.numpy as jnp

    return jax, jnp


def device_data(data, dtype):
    """The maps of ``data`` (a mapping of the plain arrays `FIELDS`) on the device, in ``dtype``:
    gathers or COO triplets (value and absolute value), bounds, cone rows, pairs."""
    _, jnp = _jax()
    data = _arrays(data)

    def trip(M):
        """A map as a gather (rows with at most one parameter entry: ``const + coef * t[idx]``,
        the common case of parameters entering the data directly) or as COO triplets."""
        lin = M[:, :-1].tocsr()
        if np.all(np.diff(lin.indptr) <= 1):
            idx = np.zeros(M.shape[0], np.int64)
            coef = np.zeros(M.shape[0])
            has = np.diff(lin.indptr) == 1
            idx[has], coef[has] = lin.indices, lin.data
            const = M[:, -1].toarray().ravel()
            return ("gather", jnp.asarray(const, dtype), jnp.asarray(idx, jnp.int32),
                    jnp.asarray(coef, dtype))
        C = M.tocoo()
        return ("coo", jnp.asarray(C.row, jnp.int32), jnp.asarray(C.col, jnp.int32),
                jnp.asarray(C.data, dtype), C.shape[0])

    fin = lambda v: jnp.asarray(np.where(np.isfinite(v), v, 0.0), dtype)  # noqa: E731
    idx = cone_index(data.cones)
    return {
        "A": trip(data.A_map), "c": trip(data.c_map), "b": trip(data.b_map), "d": trip(data.d_map),
        "rows": jnp.asarray(data.A_rows, jnp.int32), "cols": jnp.asarray(data.A_cols, jnp.int32),
        # A's pattern is the full m x n matrix in row-major order: A'y as a dense product
        "dense": bool(data.A_rows.size == data.m * data.n and np.array_equal(
            data.A_rows * data.n + data.A_cols, np.arange(data.m * data.n))),
        "lb": fin(data.lb), "ub": fin(data.ub),
        "box": jnp.asarray(data.box), "pi": jnp.asarray(data.pairs_i, jnp.int32),
        "pj": jnp.asarray(data.pairs_j, jnp.int32), "kappa": jnp.asarray(data.kappa, dtype),
        "nonneg": jnp.asarray(idx["nonneg"], jnp.int32),
        "soc": {k: jnp.asarray(v, jnp.int32) for k, v in idx["soc"].items()},
        "n": data.n, "m": data.m,
        # N of gamma_N: the longest floating-point sum in the bound (data, A'y, the total)
        "N": data.p + 3 + data.m + data.n + data.pairs_i.size,
    }


def _apply(trip, t1, absolute=False):
    """``M @ t1`` for a COO map (``|M| @ |t1|`` when ``absolute``)."""
    jax, jnp = _jax()
    if trip[0] == "gather":
        _, const, idx, coef = trip
        if absolute:
            return jnp.abs(const) + jnp.abs(coef) * jnp.abs(t1[idx])
        return const + coef * t1[idx]
    _, row, col, val, rows = trip
    v, t = (jnp.abs(val), jnp.abs(t1)) if absolute else (val, t1)
    return jax.ops.segment_sum(v * t[col], row, num_segments=rows)


def _at_y(dd, vals, y):
    """$A^\top y$ from the entries ``vals`` of $A$ (dense product when the pattern is full)."""
    jax, jnp = _jax()
    if dd["dense"]:
        return vals.reshape(dd["m"], dd["n"]).T @ y
    return jax.ops.segment_sum(vals * y[dd["rows"]], dd["cols"], num_segments=dd["n"])


def project_dual_cone(ybar, dd, orthant: str = "softplus", safe: bool = False, scale=1.0):
    r"""Conic projection layer $\bar y \mapsto \hat y \in K^*$ for one instance ((m,) -> (m,)).

    Zero-cone rows: identity ($K^*$ is free there); orthant rows: ``softplus`` (smooth, as in the
    authors' code) or ``relu`` (the Euclidean projection); SOC blocks (self-dual): the Euclidean
    projection $\Pi(t, s) = (t, s)$ if $\lVert s\rVert \le t$, $0$ if $\lVert s\rVert \le -t$,
    else $\tfrac{t + \lVert s\rVert}{2}(1, s/\lVert s\rVert)$ (`cvxkit.solvers.cones.soc_parts`).
    The result is multiplied by ``scale > 0`` ($K^*$ is a cone, so this keeps membership). With
    ``safe``, non-finite inputs become 0 and $t$ is raised to
    $\max(t, \lVert s\rVert) + (k+2)\epsilon\lVert s\rVert$, so the floating-point output
    satisfies $\lVert s\rVert \le t$ exactly.
    """
    jax, jnp = _jax()
    if safe:
        ybar = jnp.where(jnp.isfinite(ybar), ybar, 0.0)
    y = ybar
    if dd["nonneg"].size:
        v = ybar[dd["nonneg"]]
        v = jax.nn.softplus(v) if orthant == "softplus" else jnp.maximum(v, 0.0)
        y = y.at[dd["nonneg"]].set(v)
    y = y * scale
    eps = jnp.finfo(ybar.dtype).eps
    for k, idx in dd["soc"].items():
        blk = ybar[idx] * scale                                # (blocks, k)
        t, s = blk[:, 0], blk[:, 1:]
        t_out, f = soc_parts(jnp, t, safe_norm(jnp, jnp.sum(s * s, axis=1)))
        s_out = f[:, None] * s
        if safe:
            n_out = jnp.sqrt(jnp.sum(s_out * s_out, axis=1))
            t_out = jnp.maximum(t_out, n_out) + (k + 2) * eps * n_out
        y = y.at[idx].set(jnp.concatenate([t_out[:, None], s_out], axis=1))
    return y


def lagrangian_bound(y, theta, dd, certify: bool = False, penalty: float = 0.0):
    r"""Dual completion and Lagrangian bound $g(\hat y)$ at one ``theta`` ((m,), (p,) -> scalar).

    With ``certify`` the rounding-error slack of the module docstring is applied (float64 use)
    and a negative pair reduced cost gives ``-inf``; otherwise (training) it gives the smooth
    penalty ``-penalty * r_-`` instead. Returns ``(bound, r)``.
    """
    _, jnp = _jax()
    t1 = jnp.append(theta, jnp.ones((), theta.dtype))
    vals = _apply(dd["A"], t1)
    c, b, d = _apply(dd["c"], t1), _apply(dd["b"], t1), _apply(dd["d"], t1)[0]
    r = c - _at_y(dd, vals, y)
    lb, ub = dd["lb"], dd["ub"]
    if certify:
        eps = jnp.finfo(y.dtype).eps / 2
        N = dd["N"]
        gam = 2 * N * eps / (1 - N * eps)
        ay = jnp.abs(y)
        delta = gam * (_apply(dd["c"], t1, True) + _at_y(dd, _apply(dd["A"], t1, True), ay))
        # worst reduced cost over [r - delta, r + delta]: min(l r', u r') is concave in r'
        box = jnp.minimum(jnp.minimum(lb * (r - delta), ub * (r - delta)),
                          jnp.minimum(lb * (r + delta), ub * (r + delta)))
        box = jnp.where(dd["box"], box, 0.0)
        ri, rj = r[dd["pi"]] - delta[dd["pi"]], r[dd["pj"]] - delta[dd["pj"]]
        pair = dd["kappa"] * jnp.sqrt(2 * jnp.maximum(ri, 0) * jnp.maximum(rj, 0))
        bty = b @ y
        total = d - bty + box.sum() + pair.sum()
        size = jnp.abs(d) + _apply(dd["b"], t1, True) @ ay + jnp.abs(box).sum() + pair.sum()
        total = total - gam * size
        bad = jnp.any(ri < 0) | jnp.any(rj < 0) | jnp.isnan(total)
        return jnp.where(bad, -jnp.inf, total), r
    box = jnp.where(r > 0, lb * r, ub * r)
    box = jnp.where(dd["box"], box, 0.0)
    ri, rj = r[dd["pi"]], r[dd["pj"]]
    prod = 2 * jnp.maximum(ri, 0) * jnp.maximum(rj, 0)
    safe = jnp.where(prod > 0, prod, 1.0)
    pair = dd["kappa"] * jnp.where(prod > 0, jnp.sqrt(safe), 0.0)
    pen = penalty * (jnp.maximum(-ri, 0) + jnp.maximum(-rj, 0))
    return d - b @ y + box.sum() + (pair - pen).sum(), r


# --- the proxy -------------------------------------------------------------------------------
class ProxyNetwork:
    r"""A learned dual proxy over plain arrays: $\theta \mapsto$ dual-feasible $(\hat y, z)$ and
    the bound $g(\hat y)$ (the algorithm; the front end accepting a CVXPY problem is
    `cvxkit.problems.DualProxy`).

    Args:
        data: a mapping of the plain arrays `FIELDS` (``cvxkit.problems.ConicData.arrays()``).
        hidden: widths of the hidden layers (default: two layers of
            ``max(32, min(256, 2 (m + n)))``, the paper uses ``2 (m + n)`` for the LP).
        activation: ``"sigmoid"`` (the paper), ``"relu"``, ``"tanh"`` or ``"softplus"``.
        orthant: projection of orthant rows, ``"softplus"`` or ``"relu"``.
        seed: network initialization and minibatch order.
        dtype: training precision, ``"float32"`` (default) or ``"float64"``; `bound` always
            evaluates in float64.

    Every variable outside the rotated-cone pairs needs finite bounds (else the dual function
    is $-\infty$ for almost every dual point): ``ValueError`` otherwise.
    """

    def __init__(self, data, *, hidden=None, activation: str = "sigmoid",
                 orthant: str = "softplus", seed: int = 0, dtype: str = "float32"):
        self._arrays = _arrays(data)
        self._data_map = data
        D = self._arrays
        free = D.box & ~(np.isfinite(D.lb) & np.isfinite(D.ub))
        if free.any():
            raise ValueError(
                f"{int(free.sum())} variable(s) have an infinite bound (first: index "
                f"{int(np.flatnonzero(free)[0])}); DLL's bounded dual completion needs finite "
                "bounds l <= x <= u on every variable (add them to the model)")
        if D.m == 0:
            raise ValueError("the problem has no cone rows to predict duals for")
        acts = ("sigmoid", "relu", "tanh", "softplus")
        if activation not in acts:
            raise ValueError(f"unknown activation {activation!r}; valid choices: {', '.join(acts)}")
        if orthant not in ("softplus", "relu"):
            raise ValueError(f"orthant must be 'softplus' or 'relu', got {orthant!r}")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        width = max(32, min(256, 2 * (D.m + D.n)))
        if hidden is not None and (isinstance(hidden, (str, bytes))
                                   or not isinstance(hidden, (tuple, list)) or not hidden):
            raise ValueError(f"hidden must be a non-empty tuple of layer widths, got {hidden!r}")
        self.hidden = tuple(validate.integer("hidden (layer width)", h)
                            for h in (hidden if hidden is not None else (width, width)))
        seed = validate.integer("seed", seed, minimum=0)
        self.activation, self.orthant, self.seed, self.dtype = activation, orthant, seed, dtype
        self.history: dict = {}
        self.net = None
        self._fns: dict = {}
        self._init_net(mean=np.zeros(D.p), std=np.ones(D.p), log_scale=0.0)

    # --- network ------------------------------------------------------------------------
    def _init_net(self, mean, std, log_scale):
        jax, jnp = _jax()
        import equinox as eqx

        act = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "tanh": jnp.tanh,
               "softplus": jax.nn.softplus}[self.activation]
        dt = jnp.float32 if self.dtype == "float32" else jnp.float64
        with jax.enable_x64(True):
            key = jax.random.PRNGKey(self.seed)
            layers = []
            sizes = (self._arrays.p,) + self.hidden + (self._arrays.m,)
            keys = jax.random.split(key, len(sizes) - 1)
            for a, b_, k in zip(sizes[:-1], sizes[1:], keys):
                layers.append(eqx.nn.Linear(a, b_, key=k, dtype=dt))
            self.net = _net_cls()(tuple(layers), act, jnp.asarray(mean, dt), jnp.asarray(std, dt),
                            jnp.asarray(log_scale, dt))
        self._fns = {}

    def _dd(self, dtype):
        key = ("dd", dtype)
        if key not in self._fns:
            self._fns[key] = device_data(self._data_map, dtype)
        return self._fns[key]

    def _check_thetas(self, thetas) -> np.ndarray:
        T = validate.float_array("thetas", thetas)
        if T.ndim == 1:
            T = T[None]
        if T.ndim != 2 or T.shape[1] != self._arrays.p:
            raise ValueError(f"thetas must have shape (B, {self._arrays.p}), got {np.shape(thetas)}")
        if not np.all(np.isfinite(T)):
            raise ValueError("thetas have NaN or infinite entries")
        return T

    def _certified_fn(self):
        """``(net, thetas) -> (bound, y, r)`` batched, in float64 (network in its precision)."""
        jax, jnp = _jax()
        dd = self._dd(jnp.float64)
        return lambda net, T: _certified_batch()(net, T, dd, self.orthant)

    # --- public API ---------------------------------------------------------------------
    def bound(self, thetas) -> np.ndarray:
        r"""Certified lower bounds $g(\hat y(\theta)) \le$ OPT$(\theta)$, shape (B,) (float64).

        ``thetas``: (B, p) or (p,). Batched with ``vmap`` under one ``jit`` (compiled once per
        batch size). Valid for any network weights, trained or not.
        """
        jax, jnp = _jax()
        T = self._check_thetas(thetas)
        with jax.enable_x64(True):
            g, _, _ = self._certified_fn()(self.net, jnp.asarray(T, jnp.float64))
            return np.asarray(jax.block_until_ready(g))

    def duals(self, thetas) -> dict:
        r"""Dual-feasible duals at each $\theta$: ``y`` (B, m) $\in K^*$; bound multipliers
        ``z_lower = r_+`` and ``z_upper = r_-`` (B, n), zero on pair variables; ``z_pairs``
        (B, P, 3) $= (r_i, r_j, -\sqrt{2 r_i r_j})$ for the rotated cones (the last entry shrunk by
        $4\epsilon$ relative so that it lies in the cone in floating point); ``bound`` (B,).
        They satisfy $c - A^\top y = z_l - z_u + $ (pair duals on their variables) with $r$
        computed in float64."""
        jax, jnp = _jax()
        T = self._check_thetas(thetas)
        with jax.enable_x64(True):
            g, y, r = self._certified_fn()(self.net, jnp.asarray(T, jnp.float64))
            g, y, r = (np.asarray(v) for v in (g, y, r))
        box = self._arrays.box
        zl = np.where(box, np.maximum(r, 0.0), 0.0)
        zu = np.where(box, np.maximum(-r, 0.0), 0.0)
        ri, rj = r[:, self._arrays.pairs_i], r[:, self._arrays.pairs_j]
        # sigma a few ulps inside the cone boundary, so sigma^2 <= 2 r_i r_j in floating point
        sig = -np.sqrt(2 * np.maximum(ri, 0) * np.maximum(rj, 0)) * (1 - 4 * np.finfo(float).eps)
        zp = np.stack([ri, rj, sig], axis=-1)
        return {"y": y, "z_lower": zl, "z_upper": zu, "z_pairs": zp, "bound": g}

    def fit(self, thetas, *, epochs: int = DEFAULT_EPOCHS, batch_size: int = 128,
            lr: float = 1e-3, val_thetas=None, val_fraction: float = 0.1,
            patience: int = 10, min_lr: float | None = None, time_limit: float = math.inf,
            verbose: bool = False, progress: bool | None = None) -> "ProxyNetwork":
        r"""Train by maximizing the mean Lagrangian bound over ``thetas`` (B, p) (self-supervised).

        Adam (optax) at learning rate ``lr`` with the paper's plateau schedule
        (`PlateauSchedule`): after every epoch the mean bound on the validation set is compared
        with the best so far; after ``patience`` epochs without improvement the best weights
        (and their optimizer state) are reloaded and the learning rate is halved; training stops
        when the rate would fall below ``min_lr`` (default ``lr / 256``: eight halvings), after
        ``epochs`` epochs (a maximum) or after ``time_limit`` seconds. The weights kept are the
        best on validation. Inputs are standardized with the training set's mean and standard
        deviation; the output scale starts at the best of a grid of factors $10^{-4..4}$ times
        $\mathrm{mean}|c| / \mathrm{mean}|A_{ij}|$ (best mean bound of the initial network).
        One epoch is one ``lax.scan`` over the minibatches.

        Args:
            thetas: (B, p) training parameters.
            epochs: the most epochs to train (early stopping usually ends sooner).
            batch_size: minibatch size (capped at the training set's size).
            lr: initial learning rate of Adam.
            val_thetas: (V, p) validation parameters; default: ``val_fraction`` of ``thetas``
                (a seeded random split, at least one draw; none if fewer than 10 draws, then
                the plateau is judged on the training bound).
            val_fraction: share of ``thetas`` held out for validation when ``val_thetas`` is
                not given (0: no split).
            patience: epochs without a new best validation bound before the learning rate
                halves (and the best weights are reloaded).
            min_lr: training stops when the halved rate would fall below it.
            time_limit: seconds of training after which it stops (best weights kept).
            verbose: print the progress every few epochs and a summary at the end.
            progress: show a progress bar (tqdm); None: only once training has lasted a few
                seconds, on a terminal.

        ``history``: per-epoch ``train_bound`` (mean uncertified bound over the minibatches),
        ``val_bound`` (mean uncertified bound on the validation set), ``lr`` and ``time``;
        ``history["stop"]`` says why training ended. After fit, ``validation_bound_`` is the mean
        certified bound on the validation set (``validation_thetas_``).
        """
        jax, jnp = _jax()
        import equinox as eqx
        import optax

        T = self._check_thetas(thetas)
        epochs = validate.integer("epochs", epochs)
        batch_size = validate.integer("batch_size", batch_size)
        lr = validate.positive("lr", lr)
        val_fraction = validate.nonnegative("val_fraction", val_fraction, upper=1.0)
        patience = validate.integer("patience", patience)
        min_lr = validate.positive("min_lr", min_lr, allow_none=True)
        min_lr = lr / 256 if min_lr is None else min_lr
        time_limit = validate.positive("time_limit", time_limit, allow_inf=True)
        verbose = validate.boolean("verbose", verbose)
        if progress is not None:
            validate.boolean("progress", progress)
        rng = np.random.default_rng(self.seed)
        if val_thetas is not None:
            V = self._check_thetas(val_thetas)
        elif val_fraction > 0 and len(T) >= 10:
            perm = rng.permutation(len(T))
            k = max(1, int(round(val_fraction * len(T))))
            V, T = T[perm[:k]], T[perm[k:]]
        else:
            V = None
        bs = min(int(batch_size), T.shape[0])
        nb = T.shape[0] // bs
        mean, std = T.mean(0), T.std(0)
        std = np.where(std > 1e-12 * (1 + np.abs(mean)), std, 1.0)
        scale = self._dual_scale(T[: min(64, len(T))])
        self._init_net(mean, std, np.log(scale))
        dt = jnp.float32 if self.dtype == "float32" else jnp.float64
        with jax.enable_x64(True):
            dd = self._dd(dt)
            cmax = float(np.abs(self._arrays.c_map @ np.append(T[0], 1.0)).max())
            penalty = 1e3 * (1.0 + cmax)
            orthant = self.orthant

            def mean_bound(net, batch):
                def one(theta):
                    y = project_dual_cone(net(theta), dd, orthant, scale=net.scale())
                    return lagrangian_bound(y, theta, dd, penalty=penalty)[0]
                return jnp.mean(jax.vmap(one)(batch))

            opt = optax.inject_hyperparams(optax.adam)(learning_rate=lr)
            net = self.net

            @eqx.filter_jit
            def epoch(net, opt_state, batches):
                params, static = eqx.partition(net, eqx.is_inexact_array)

                def step(carry, batch):
                    params, opt_state = carry
                    val, grads = jax.value_and_grad(
                        lambda p_: -mean_bound(eqx.combine(p_, static), batch))(params)
                    updates, opt_state = opt.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), val

                (params, opt_state), vals = jax.lax.scan(step, (params, opt_state), batches)
                return eqx.combine(params, static), opt_state, -jnp.mean(vals)

            evaluate = eqx.filter_jit(mean_bound)
            net = self._tune_scale(net, jnp.asarray(T[: min(256, len(T))], dt), dd, penalty)
            opt_state = opt.init(eqx.filter(net, eqx.is_inexact_array))
            hist = {"epoch": [], "train_bound": [], "val_bound": [], "lr": [], "time": []}
            sched = PlateauSchedule(lr, patience=patience, min_lr=min_lr)
            best = (net, opt_state)
            stop = "epochs"
            t0 = time.perf_counter()
            Tj = jnp.asarray(T, dt)
            Vj = None if V is None else jnp.asarray(V, dt)
            bar = ProgressBar(progress, epochs, "cvxkit dual_proxy fit", "epoch")
            for e in range(epochs):
                perm = rng.permutation(T.shape[0])[: nb * bs]
                batches = Tj[perm].reshape(nb, bs, -1)
                net, opt_state, tb = epoch(net, opt_state, batches)
                tb = float(tb)
                vb = tb if Vj is None else float(evaluate(net, Vj))
                hist["epoch"].append(e + 1)
                hist["train_bound"].append(tb)
                hist["val_bound"].append(vb)
                hist["lr"].append(sched.lr)
                elapsed = time.perf_counter() - t0
                hist["time"].append(elapsed)
                action = sched.step(vb)
                if action == "best":
                    best = (net, opt_state)
                elif action in ("halve", "stop"):
                    net, opt_state = best
                    opt_state.hyperparams["learning_rate"] = jnp.asarray(
                        sched.lr, opt_state.hyperparams["learning_rate"].dtype)
                bar.update(e + 1, elapsed, {"val bound": f"{vb:.4g}", "lr": f"{sched.lr:.4g}"})
                if verbose and (e == 0 or (e + 1) % 25 == 0 or action in ("halve", "stop")):
                    print(f"epoch {e + 1:5d}  train bound {tb:.6g}  val bound {vb:.6g}  "
                          f"best {sched.best:.6g}  lr {hist['lr'][-1]:.2e}"
                          + ("  -> halve lr, reload best" if action == "halve" else ""))
                if action == "stop":
                    stop = "min_lr"
                    break
                if elapsed > time_limit:
                    stop = "time_limit"
                    break
            bar.close()
        self.net = best[0]
        self.history = {k: np.asarray(v) for k, v in hist.items()}
        self.history["stop"] = stop
        self.validation_thetas_ = T if V is None else V
        self.validation_bound_ = float(np.mean(self.bound(self.validation_thetas_)))
        if verbose:
            print(f"stopped after {len(hist['epoch'])} epochs ({stop}) in "
                  f"{hist['time'][-1] if hist['time'] else 0.0:.1f} s; mean certified bound on "
                  f"{'validation' if V is not None else 'training'} "
                  f"({len(self.validation_thetas_)} draws): {self.validation_bound_:.6g}")
        return self

    def _tune_scale(self, net, T, dd, penalty):
        """Start the output scale where the initial network's mean bound is best: a grid of 49
        factors 10^-4 .. 10^4 around the `_dual_scale` guess (cheap: one batched evaluation)."""
        jax, jnp = _jax()
        import equinox as eqx

        offsets = (jnp.linspace(-4.0, 4.0, 49) * np.log(10.0)).astype(T.dtype)
        orthant = self.orthant

        @eqx.filter_jit
        def grid(net, T, dd, offsets):
            def mean_bound(off):
                shifted = eqx.tree_at(lambda n_: n_.log_scale, net, net.log_scale + off)

                def one(theta):
                    y = project_dual_cone(shifted(theta), dd, orthant, scale=shifted.scale())
                    return lagrangian_bound(y, theta, dd, penalty=penalty)[0]
                return jnp.mean(jax.vmap(one)(T))
            return jax.vmap(mean_bound)(offsets)

        vals = np.asarray(grid(net, T, dd, offsets))
        vals = np.where(np.isfinite(vals), vals, -np.inf)
        best = offsets[int(np.argmax(vals))]
        return eqx.tree_at(lambda n_: n_.log_scale, net, net.log_scale + best.astype(T.dtype))

    def _dual_scale(self, T) -> float:
        """A typical dual magnitude, mean|c| / mean|A_ij| over a few samples (1 if degenerate)."""
        T1 = np.hstack([T, np.ones((len(T), 1))])
        cm = np.abs(self._arrays.c_map @ T1.T).mean()
        am = np.abs(self._arrays.A_map @ T1.T).mean() if self._arrays.A_map.shape[0] else 0.0
        s = cm / am if am > 0 and cm > 0 else 1.0
        return float(np.clip(s, 1e-6, 1e6))

    def result(self, theta, reference: float | None = None, *,
               setup_time: float = 0.0) -> Result:
        """The bound at one ``theta`` as a `Result` (``objective`` = certified bound,
        ``x`` = the duals of `duals`, ``iterations`` = training epochs, ``history`` = the
        training's; ``setup_time``: the training's seconds). ``optimal`` when the bound is
        finite (valid by construction), else ``numerical_error``."""
        t0 = time.perf_counter()
        duals = {k: v[0] for k, v in self.duals(theta).items()}
        elapsed = time.perf_counter() - t0
        g = float(duals["bound"])
        status = Status.OPTIMAL if np.isfinite(g) else Status.NUMERICAL_ERROR
        final = Final(x=duals, objective=g, info={"dual_bound": True, "proxy": self},
                      status=status, iterations=int(len(self.history.get("epoch", []))))
        return finish(final, method="dual_proxy", backend="jax", setup_time=setup_time,
                      solve_time=elapsed, history=dict(self.history))


class PlateauSchedule:
    """The paper's learning-rate schedule: halve on a validation plateau, stop below a floor.

    ``step(value)`` takes the epoch's validation value (higher is better: a mean bound) and
    returns ``"best"`` (a new best: keep these weights), ``"wait"``, ``"halve"`` (``patience``
    epochs without a new best: the caller reloads the best weights; ``lr`` is now halved) or
    ``"stop"`` (the halved rate would fall below ``min_lr``; the caller reloads the best
    weights and stops). A value counts as better when it exceeds the best by more than
    ``rtol * (1 + |best|)``.
    """

    def __init__(self, lr: float, *, patience: int = 10, min_lr: float = 0.0,
                 rtol: float = 1e-6):
        self.lr, self.patience, self.min_lr, self.rtol = float(lr), int(patience), min_lr, rtol
        self.best = -math.inf
        self.wait = 0
        self.halvings = 0

    def step(self, value: float) -> str:
        value = float(value)
        if np.isfinite(value) and (not np.isfinite(self.best)
                                   or value > self.best + self.rtol * (1 + abs(self.best))):
            self.best, self.wait = value, 0
            return "best"
        self.wait += 1
        if self.wait < self.patience:
            return "wait"
        self.wait = 0
        if self.lr / 2 < self.min_lr:
            return "stop"
        self.lr /= 2
        self.halvings += 1
        return "halve"


@functools.cache
def _certified_batch():
    """One jitted, vmapped certified evaluation shared by every proxy (equinox's filter_jit
    traces the arrays and keys the cache on the rest, so equal shapes reuse the compiled code)."""
    jax, jnp = _jax()
    import equinox as eqx

    @eqx.filter_jit
    def run(net, T, dd, orthant):
        def one(theta):
            ybar = net(theta.astype(net.mean.dtype)).astype(jnp.float64)
            y = project_dual_cone(ybar, dd, orthant, safe=True,
                                  scale=net.scale().astype(jnp.float64))
            g, r = lagrangian_bound(y, theta, dd, certify=True)
            return g, y, r
        return jax.vmap(one)(T)

    return run


@functools.cache
def _net_cls():
    """The equinox module of the network (defined on first use: equinox is imported lazily)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    class Net(eqx.Module):
        """``theta -> MLP((theta - mean) / std)`` (mean, std not trained); ``scale()`` =
        ``exp(log_scale)`` multiplies the projected output."""

        layers: tuple
        act: object = eqx.field(static=True)
        mean: object
        std: object
        log_scale: object

        def __call__(self, theta):
            h = (theta - jax.lax.stop_gradient(self.mean)) / jax.lax.stop_gradient(self.std)
            for layer in self.layers[:-1]:
                h = self.act(layer(h))
            return self.layers[-1](h)

        def scale(self):
            """The positive factor applied after the projection layer."""
            return jnp.exp(self.log_scale)

    return Net


def dual_proxy_bound(data, train_thetas, theta, *, epochs: int = 50,
                     batch_size: int = 64, lr: float = 1e-3, hidden=None, seed: int = 0,
                     backend: str = "jax") -> Result:
    """Train a `ProxyNetwork` on ``train_thetas`` (B, p) and return its certified bound at
    ``theta`` (p,) as a `Result` (the registry's entry point; JAX only). ``data``: a mapping of
    the plain arrays `FIELDS` (``cvxkit.problems.ConicData.arrays()``)."""
    if backend != "jax":
        raise ValueError(f"dual_proxy runs on the 'jax' backend only, got {backend!r}")
    # options checked before the network is built (fit checks them again)
    validate.integer("epochs", epochs)
    validate.integer("batch_size", batch_size)
    validate.positive("lr", lr)
    t0 = time.perf_counter()
    proxy = ProxyNetwork(data, hidden=hidden, seed=seed).fit(train_thetas, epochs=epochs,
                                                          batch_size=batch_size, lr=lr)
    setup = time.perf_counter() - t0
    proxy.bound(theta)  # compile for a batch of one
    return proxy.result(theta, setup_time=setup)
