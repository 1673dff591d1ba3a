r"""Entropic transport plans between point clouds, evaluated by blocks of rows.

Between points $x_1..x_n$ and $y_1..y_m$ in $\mathbb{R}^d$ with a cost $c(x, y)$
(``"sqeuclidean"``: $|x - y|^2$, ``"euclidean"``: $|x - y|$) and potentials $f$, $g$, the plan

$$
P_{ij} = \exp\big((f_i + g_j - c(x_i, y_j))/\varepsilon\big)
$$

is never stored: every quantity (the Sinkhorn half-updates, marginals, $P v$, $P^\top u$,
$\langle C, P\rangle$, $\sum P\log P$, the gradients of $\langle C, P\rangle$ w.r.t. the points)
is a pass over blocks of ``block`` rows, each block's costs computed on the fly from the
points, so memory is $O((n + m)\cdot\text{block})$ — the "online" evaluation of Feydy et al.
("Interpolating between optimal transport and MMD using Sinkhorn divergences", AISTATS 2019),
here with dense blocks (``jax.lax.map``/``lax.scan`` on JAX, a Python loop on numpy).

Numerics: every pass runs on the points in a normalized `Frame`: centred at the middle of their
joint bounding box and divided by its diagonal $D$, so that every normalized cost is in
$[0, 1]$ and costs are $D^2 c_n$ (``sqeuclidean``) or $D c_n$ (``euclidean``). Squared
distances are expanded as $|x|^2 + |y|^2 - 2x\cdot y$ (one matrix product per block); in the
log-sum-exp of a half-update the $|x_i|^2$ term is taken out of the sum and the $|y_j|^2$
term folded into the potential, so no cancellation happens inside the exponentials; where a
cost itself is needed it is clamped at 0. Euclidean distances are computed from the coordinate
differences (the expansion would lose half the digits of small distances under the square
root).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from cvxkit.solvers.backend import Backend, get_backend

COSTS = ("sqeuclidean", "euclidean")
#: entries of one (block, m) cost block that the default block size aims at (64 MB in float64)
BLOCK_ENTRIES = 2**23
#: plans with more entries are not materialized unless asked (``materialize(max_entries=...)``)
DENSE_LIMIT = 10**8


class Frame(NamedTuple):
    """Normalized coordinates: ``x_n = (x - center) / length``; costs ``C = scale * C_n``."""

    center: np.ndarray
    length: float  # the diagonal D of the joint bounding box (1 if every point is the same)
    scale: float  # D**2 (sqeuclidean) or D (euclidean); ``fallback`` if every cost is 0


def frame(x, y, cost: str, fallback: float = 1.0) -> Frame:
    """The `Frame` of two clouds ``x`` (n, d), ``y`` (m, d) (float64); ``ValueError`` if the
    spread of the costs is not representable in float64."""
    lo = np.minimum(x.min(axis=0), y.min(axis=0))
    hi = np.maximum(x.max(axis=0), y.max(axis=0))
    center = lo / 2 + hi / 2
    with np.errstate(over="ignore"):
        length = float(np.linalg.norm(hi / 2 - lo / 2)) * 2  # halves: hi - lo may overflow
        scale = length**2 if cost == "sqeuclidean" else length
    if not (math.isfinite(length) and math.isfinite(scale)):
        raise ValueError(f"the points' spread (bounding-box diagonal {length:.3g}) gives costs "
                         f"that are not representable in float64")
    if length == 0:
        return Frame(center, 1.0, float(fallback))
    return Frame(center, length, scale)


def dense_cost(x, y, cost: str) -> np.ndarray:
    """The (n, m) cost matrix from the coordinate differences (small problems, references)."""
    diff = np.asarray(x, dtype=np.float64)[:, None, :] - np.asarray(y, dtype=np.float64)[None, :, :]
    sq = np.sum(diff * diff, axis=-1)
    return sq if cost == "sqeuclidean" else np.sqrt(sq)


def balanced_block(n: int, block: int, parts: int = 1) -> tuple[int, int]:
    """``(blocks, size)``: at most ``block`` rows a block, a number of blocks divisible by
    ``parts``, the rows spread evenly (padding below one row per block)."""
    nb = -(-n // max(1, min(block, n)))
    nb = parts * -(-nb // parts)
    return nb, -(-n // nb)


def default_block(n: int, m: int) -> int:
    """Rows per block such that one (block, m) block has about `BLOCK_ENTRIES` entries."""
    return max(1, min(n, BLOCK_ENTRIES // max(m, 1)))


def pad_rows(X, rows: int, fill=0.0) -> np.ndarray:
    """``X`` (n, ...) with ``rows - n`` rows of ``fill`` appended."""
    X = np.asarray(X)
    extra = rows - X.shape[0]
    if extra == 0:
        return X
    return np.concatenate([X, np.full((extra,) + X.shape[1:], fill, dtype=X.dtype)])


def blocks(X, nb: int, size: int, fill=0.0) -> np.ndarray:
    """``X`` (n, ...) padded with ``fill`` and reshaped to (nb, size, ...)."""
    X = pad_rows(X, nb * size, fill)
    return X.reshape((nb, size) + X.shape[1:])


# --------------------------------------------------------------------------------------
# per-block kernels (any array namespace)
# --------------------------------------------------------------------------------------
def sq_norms(xp, X):
    return xp.sum(X * X, axis=-1)


def cost_block(xp, cost: str, xb, y):
    """Normalized costs ``c(xb_i, y_j)`` of a block ``xb`` (B, d) against ``y`` (m, d)."""
    if cost == "sqeuclidean":
        return xp.maximum(sq_norms(xp, xb)[:, None] + sq_norms(xp, y)[None, :]
                          - 2.0 * xp.matmul(xb, y.T), 0.0)
    diff = xb[:, None, :] - y[None, :, :]
    return xp.sqrt(xp.sum(diff * diff, axis=-1))


def map_blocks(bk: Backend, fn, *xs):
    """``fn`` applied to the blocks of ``xs`` (leading axis), results stacked: ``lax.map`` on
    JAX (one block in memory at a time), a loop on numpy."""
    if bk.name == "jax":
        return bk._jax.lax.map(lambda args: fn(*args), xs)
    return np.stack([fn(*(x[k] for x in xs)) for k in range(xs[0].shape[0])])


def scan_blocks(bk: Backend, fn, init, *xs):
    """``(sum over blocks of fn's first output, stacked second outputs)``, ``fn(*blocks) ->
    (terms, outs)`` with ``terms`` a dict of arrays shaped like ``init``'s: ``lax.scan`` on JAX,
    a loop on numpy."""
    if bk.name == "jax":
        jax = bk._jax

        def body(carry, args):
            terms, outs = fn(*args)
            return jax.tree_util.tree_map(lambda c, t: c + t, carry, terms), outs

        return jax.lax.scan(body, init, xs)
    carry, outs = dict(init), []
    for k in range(xs[0].shape[0]):
        terms, out = fn(*(x[k] for x in xs))
        carry = {key: carry[key] + terms[key] for key in carry}
        outs.append(out)
    return carry, {key: np.stack([o[key] for o in outs]) for key in outs[0]} if outs[0] else {}


def softmin(bk: Backend, cost: str, xb, y, pot, eps):
    r"""$\log\sum_j \exp((\mathrm{pot}_j - c(x_i, y_j))/\varepsilon)$ for every row point of the
    blocks ``xb`` (nb, B, d) against all of ``y`` (m, d): a flat (nb * B,) array."""
    xp = bk.xp
    if cost == "sqeuclidean":
        h = (pot - sq_norms(xp, y)) / eps
        y2 = (2.0 / eps) * y

        def one(xi):
            return bk.logsumexp(h[None, :] + xp.matmul(xi, y2.T), axis=1) - sq_norms(xp, xi) / eps
    else:
        def one(xi):
            return bk.logsumexp((pot[None, :] - cost_block(xp, cost, xi, y)) / eps, axis=1)
    return map_blocks(bk, one, xb).reshape(-1)


def plan_pass(bk: Backend, cost: str, xb, fb, y, g, eps, V=None, Ub=None, grad=False,
              dense=False) -> dict:
    """One pass over the row blocks of the plan ``exp((f_i + g_j - C_ij)/eps)``.

    ``xb`` (nb, B, d), ``fb`` (nb, B) the blocked rows; ``y`` (m, d), ``g`` (m,) the columns.
    Returns ``rows`` (nb, B), ``cols`` (m,), ``cost`` <C, P>, ``entropy`` sum P log P, and as
    asked: ``PV`` (nb, B, k) for ``V`` (m, k), ``PTU`` (k, m) for blocked ``Ub`` (nb, B, k),
    ``grad`` the gradients of <C, P> at fixed P (``gx`` (nb, B, d), ``gy`` (m, d)), ``dense``
    the plan's blocks (nb, B, m).
    """
    xp = bk.xp
    m, d = y.shape
    zero = xp.zeros((), dtype=g.dtype)
    init = {"cols": xp.zeros_like(g), "cost": zero, "entropy": zero}
    if Ub is not None:
        init["PTU"] = xp.zeros((Ub.shape[-1], m), dtype=g.dtype)
    if grad:
        init["wcols"] = xp.zeros_like(g)
        init["wTx"] = xp.zeros((d, m), dtype=g.dtype)

    def one(xi, fi, *ui):
        C = cost_block(xp, cost, xi, y)
        logP = (fi[:, None] + g[None, :] - C) / eps
        P = xp.exp(logP)
        terms = {"cols": xp.sum(P, axis=0), "cost": xp.sum(P * C),
                 "entropy": xp.sum(P * xp.where(P > 0, logP, 0.0))}
        outs = {"rows": xp.sum(P, axis=1)}
        if V is not None:
            outs["PV"] = xp.matmul(P, V)
        if ui:
            terms["PTU"] = xp.matmul(ui[0].T, P)
        if grad:
            # d c / d x = w(x, y) (x - y): w = 2 (sqeuclidean), 1/|x - y| (euclidean; 0 at 0)
            W = 2.0 * P if cost == "sqeuclidean" else xp.where(C > 0, P / xp.where(C > 0, C, 1.0), 0.0)
            outs["gx"] = xi * xp.sum(W, axis=1)[:, None] - xp.matmul(W, y)
            terms["wcols"] = xp.sum(W, axis=0)
            terms["wTx"] = xp.matmul(xi.T, W)
        if dense:
            outs["dense"] = P
        return terms, outs

    xs = (xb, fb) if Ub is None else (xb, fb, Ub)
    sums, outs = scan_blocks(bk, one, init, *xs)
    out = {**sums, **outs}
    if grad:
        out["gy"] = y * out.pop("wcols")[:, None] - out.pop("wTx").T
    return out


# --------------------------------------------------------------------------------------
# the lazy plan
# --------------------------------------------------------------------------------------
class PointCloudPlan:
    r"""The entropic plan $P_{ij} = \exp((f_i + g_j - c(x_i, y_j))/\mathrm{reg})$ between two
    point clouds, as an operator: nothing of size (n, m) is stored.

    Every method is one blockwise pass over the points in float64 (see the module docstring),
    on the back end the plan was made for (``"jax"``: one jitted ``lax.scan``; ``"numpy"``).
    `cvxkit.solvers.sinkhorn_points` returns one in ``Result.x``; one can also be built from
    any potentials in the user's units.

    Args:
        x: source points (n, d).
        y: target points (m, d).
        f: row potentials (n,) (``-inf`` for rows of zero mass).
        g: column potentials (m,).
        reg: the entropic regularization (units of the cost).
        cost: ``"sqeuclidean"`` ($|x - y|^2$) or ``"euclidean"`` ($|x - y|$).
        block: rows per block (default: about `BLOCK_ENTRIES` entries per block).
        backend: ``"jax"`` or ``"numpy"``.
    """

    def __init__(self, x, y, f, g, reg, *, cost="sqeuclidean", block=None, backend="jax"):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        f, g = np.asarray(f, dtype=np.float64), np.asarray(g, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
            raise ValueError(f"x and y must be point arrays (n, d) and (m, d); got {x.shape}, {y.shape}")
        if f.shape != (x.shape[0],) or g.shape != (y.shape[0],):
            raise ValueError(f"f and g must have shapes ({x.shape[0]},) and ({y.shape[0]},); "
                             f"got {f.shape}, {g.shape}")
        if cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(map(repr, COSTS))}, got {cost!r}")
        self.shape = (x.shape[0], y.shape[0])
        self.cost_name, self.reg = cost, float(reg)
        self.frame = fr = frame(x, y, cost, fallback=self.reg)
        n, m = self.shape
        nb, size = balanced_block(n, default_block(n, m) if block is None else int(block))
        self._nb, self._size = nb, size
        self._bk = get_backend(backend, "float64")
        self._eps = self.reg / fr.scale
        # normalized: C = scale * C_n, so log P = (f/scale + g/scale - C_n) / (reg/scale)
        self._xb = blocks((x - fr.center) / fr.length, nb, size)
        self._fb = blocks(f / fr.scale, nb, size, fill=-np.inf)
        self._y = (y - fr.center) / fr.length
        self._g = g / fr.scale

    # -- one pass ----------------------------------------------------------------------
    def _pass(self, V=None, U=None, grad=False, dense=False) -> dict:
        bk = self._bk
        Ub = None if U is None else blocks(U, self._nb, self._size)
        with bk.precision():
            args = [bk.asarray(v) for v in (self._xb, self._fb, self._y, self._g, self._eps)]
            extra = [None if v is None else bk.asarray(v) for v in (V, Ub)]
            fn = bk.jit(plan_pass, static_argnums=(0, 1, 9, 10))
            out = fn(bk, self.cost_name, *args, *extra, grad, dense)
            return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}

    def _rows(self, v) -> np.ndarray:
        """A blocked row quantity (nb, B, ...) flattened to its n rows."""
        return v.reshape((-1,) + v.shape[2:])[: self.shape[0]]

    @staticmethod
    def _operand(v, size: int, name: str):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim not in (1, 2) or v.shape[0] != size:
            raise ValueError(f"{name} must have shape ({size},) or ({size}, k), got {v.shape}")
        return v

    # -- public ------------------------------------------------------------------------
    def apply(self, v) -> np.ndarray:
        """``P @ v`` for ``v`` of shape (m,) or (m, k)."""
        v = self._operand(v, self.shape[1], "v")
        out = self._rows(self._pass(V=v.reshape(v.shape[0], -1))["PV"])
        return out[:, 0] if v.ndim == 1 else out

    def apply_transpose(self, u) -> np.ndarray:
        """``P.T @ u`` for ``u`` of shape (n,) or (n, k)."""
        u = self._operand(u, self.shape[0], "u")
        out = self._pass(U=u.reshape(u.shape[0], -1))["PTU"].T
        return out[:, 0] if u.ndim == 1 else out

    def marginals(self) -> tuple[np.ndarray, np.ndarray]:
        """``(P 1, P^T 1)``."""
        out = self._pass()
        return self._rows(out["rows"]), out["cols"]

    def summary(self) -> dict:
        """One pass: ``rows`` ``P 1``, ``cols`` ``P^T 1``, ``cost`` $\\langle C, P\\rangle$ and
        ``entropy`` $\\sum P\\log P$ (user's units)."""
        out = self._pass()
        return {"rows": self._rows(out["rows"]), "cols": out["cols"],
                "cost": self.frame.scale * float(out["cost"]),
                "entropy": float(out["entropy"])}

    def cost(self) -> float:
        r"""$\langle C, P\rangle = \sum_{ij} c(x_i, y_j) P_{ij}$."""
        return self.summary()["cost"]

    def entropy(self) -> float:
        r"""$\sum_{ij} P_{ij}\log P_{ij}$ (POT's convention; $0\log 0 = 0$)."""
        return self.summary()["entropy"]

    def grad_cost(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Gradients of $\langle C(x, y), P\rangle$ w.r.t. ``x`` (n, d) and ``y`` (m, d) at
        fixed $P$: $\sum_j P_{ij}\nabla_x c(x_i, y_j)$ and $\sum_i P_{ij}\nabla_y c(x_i, y_j)$
        (sqeuclidean: $2(a_i x_i - (P y)_i)$ with $a = P1$). At the optimal plan these are the
        gradients of the entropic OT value (envelope theorem)."""
        out = self._pass(grad=True)
        k = self.frame.scale / self.frame.length  # d C / d x = (scale / length) d C_n / d x_n
        return k * self._rows(out["gx"]), k * out["gy"]

    def materialize(self, max_entries: int = DENSE_LIMIT) -> np.ndarray:
        """The dense (n, m) plan; ``ValueError`` when it has more than ``max_entries`` entries."""
        n, m = self.shape
        if n * m > max_entries:
            raise ValueError(f"the plan has {n} x {m} = {n * m:.3g} entries > max_entries="
                             f"{max_entries:.3g}; use apply/apply_transpose/marginals, or raise "
                             f"max_entries")
        return self._rows(self._pass(dense=True)["dense"])

    def __array__(self, dtype=None, copy=None):
        P = self.materialize()
        return P if dtype is None else P.astype(dtype)

    def __repr__(self) -> str:
        n, m = self.shape
        return (f"PointCloudPlan(shape=({n}, {m}), cost={self.cost_name!r}, reg={self.reg:.3g}, "
                f"block={self._size}, backend={self._bk.name!r})")
