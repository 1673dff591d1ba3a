r"""Products of cones for conic programs: the layout, projections, dual cones, support functions.

A cone $K$ here is a product, in this order over the rows, of the zero cone $\{0\}^z$, the
nonnegative orthant $\mathbb{R}_+^l$ and second-order cones
$\mathcal{Q}^k = \{(t, s) \in \mathbb{R}\times\mathbb{R}^{k-1} : \lVert s\rVert_2 \le t\}$, given as
SCS does: a dict ``{"z": z, "l": l, "q": [k_1, k_2, ...]}`` (`layout`). Its dual cone
$K^* = \mathbb{R}^z \times \mathbb{R}_+^l \times \mathcal{Q}^{k_1}\times\cdots$ (the orthant and
second-order cones are self-dual; the zero cone's dual is the whole space).

The Euclidean projections, written once over numpy or jax.numpy (a `Backend`):

* zero cone: $0$ (dual: the identity); orthant: $\max(v, 0)$;
* second-order cone, for $(t, s)$: $(t, s)$ if $\lVert s\rVert \le t$, $0$ if
  $\lVert s\rVert \le -t$, else $\tfrac{t + \lVert s\rVert}{2}\,(1, s/\lVert s\rVert)$
  (`soc_parts`; the dual conic proxies of `cvxkit.solvers.dual_proxy` use the same formula).

All SOC blocks are projected at once: the squared norms of their tails are segment sums over the
block index of each row, so blocks of any sizes cost one pass over the rows.

For the set $C = b - K$ that a conic ADMM keeps $z = Ax$ in (`cvxkit.solvers.admm_conic`):
$\Pi_C(v) = b - \Pi_K(b - v)$; its recession cone is $-K$, the polar of that is $K^*$, and its
support function on $K^*$ is $\sigma_C(y) = b^\top y$.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

#: the cone keys `layout` accepts (SCS's names), in the order of the rows
CONE_KEYS = ("z", "l", "q")
#: SCS's other cone keys, refused with a message naming them
UNSUPPORTED = {"f": "'f' (the zero cone's old SCS name: use 'z')", "s": "'s' (PSD cones)",
               "ep": "'ep' (exponential cones)", "ed": "'ed' (dual exponential cones)",
               "p": "'p' (power cones)", "bu": "'bu'/'bl' (box cones)", "bl": "'bu'/'bl' (box "
               "cones)"}


class ConeSet(NamedTuple):
    """$C = b - K$: the right-hand side and the layout of $K$ over the m rows (arrays, so that
    JAX can trace them; the number of SOC blocks is the static length of ``heads``).

    ``b`` (m,); ``zero``, ``soc``, ``head`` (m,) masks of the zero-cone rows, the rows in a
    second-order cone and the first row ($t$) of each SOC block; ``seg`` (m,) the SOC block of
    each row (0 elsewhere); ``heads`` (G,) the rows of the heads; ``size`` (G,) the block sizes.
    """

    b: Any
    zero: Any
    soc: Any
    head: Any
    seg: Any
    heads: Any
    size: Any


def layout(cones, m: int | None = None) -> ConeSet:
    """The `ConeSet` (with ``b = 0``) of SCS's cone dict ``{"z": int, "l": int, "q": [int,
    ...]}`` (missing keys mean none); ``m``: the number of rows it must cover. Raises
    ``ValueError`` naming the problem for anything else (unknown or unsupported keys,
    negative or non-integer sizes, an SOC of size 0, sizes that do not add up to ``m``)."""
    if not isinstance(cones, dict):
        raise ValueError(f"cones must be a dict like {{'z': 1, 'l': 2, 'q': [3]}}, got "
                         f"{type(cones).__name__}")
    bad = [UNSUPPORTED.get(k, repr(k)) for k in cones if k not in CONE_KEYS]
    if bad:
        raise ValueError(f"cones has unsupported key(s) {', '.join(bad)}; admm_conic takes "
                         "'z' (zero cone), 'l' (nonnegative orthant) and 'q' (second-order "
                         "cones)")

    def count(key, v):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"cones[{key!r}] must be a nonnegative integer, got {v!r}")
        return int(v)

    z, nl = count("z", cones.get("z", 0)), count("l", cones.get("l", 0))
    q = cones.get("q", [])
    if isinstance(q, (int, np.integer)) and not isinstance(q, bool):
        q = [q]
    if not isinstance(q, (list, tuple, np.ndarray)):
        raise ValueError(f"cones['q'] must be a list of SOC sizes, got {type(q).__name__}")
    q = [count("q", k) for k in q]
    if any(k == 0 for k in q):
        raise ValueError("cones['q'] has an SOC of size 0 (each has at least the row t)")
    total = z + nl + sum(q)
    if m is not None and total != m:
        raise ValueError(f"cones cover {total} rows (z={z}, l={nl}, q sums to {sum(q)}) but A "
                         f"and b have m = {m} rows")
    size = np.asarray(q, dtype=np.int64)
    heads = z + nl + np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64) if q else \
        np.zeros(0, np.int64)
    rows = np.arange(total)
    soc = rows >= z + nl
    seg = np.zeros(total, np.int64)
    seg[soc] = np.repeat(np.arange(len(q)), size)
    head = np.zeros(total, bool)
    head[heads] = True
    return ConeSet(np.zeros(total), rows < z, soc, head, seg, heads, size)


def dims(cs: ConeSet) -> dict:
    """SCS's cone dict of a `ConeSet`."""
    z = int(np.sum(np.asarray(cs.zero)))
    return {"z": z, "l": int(np.asarray(cs.soc).size - np.sum(np.asarray(cs.soc))) - z,
            "q": [int(k) for k in np.asarray(cs.size)]}


# --- the second-order cone ------------------------------------------------------------------
def safe_norm(xp, sq):
    """$\\sqrt{sq}$ with a zero (sub)gradient at ``sq = 0`` (no NaN under ``jax.grad``)."""
    pos = sq > 0
    return xp.where(pos, xp.sqrt(xp.where(pos, sq, 1.0)), 0.0)


def soc_parts(xp, t, ns):
    r"""The projection of blocks $(t, s)$ onto the second-order cone, from $t$ and
    $\lVert s\rVert$ (``ns``; any shape): ``(t_out, f)`` with $\Pi(t, s) = (t_{out}, f s)$
    (module docstring)."""
    inside = ns <= t
    polar = ns <= -t
    half = 0.5 * (t + ns)
    f = xp.where(inside, 1.0, xp.where(polar, 0.0, half / xp.where(ns > 0, ns, 1.0)))
    return xp.where(inside, t, xp.where(polar, 0.0, half)), f


def segment_sum(bk, v, seg, count: int):
    """``out[g] = sum of v[i] over seg[i] == g`` for ``g < count`` (``seg`` sorted)."""
    if bk.name == "jax":
        return bk._jax.ops.segment_sum(v, seg, num_segments=count, indices_are_sorted=True)
    return np.bincount(seg, weights=v, minlength=count)[:count].astype(v.dtype, copy=False)


def _soc_rows(bk, cs: ConeSet, v):
    """Every SOC block of ``v`` projected onto its cone (other rows: anything)."""
    xp = bk.xp
    G = cs.heads.shape[0]
    if G == 0:
        return v
    tail = cs.soc & ~cs.head
    ns = safe_norm(xp, segment_sum(bk, xp.where(tail, v * v, 0.0), cs.seg, G))
    t_out, f = soc_parts(xp, v[cs.heads], ns)
    return xp.where(cs.head, t_out[cs.seg], f[cs.seg] * v)


def project(bk, cs: ConeSet, v, dual: bool = False):
    """$\\Pi_K(v)$, or $\\Pi_{K^*}(v)$ with ``dual``."""
    xp = bk.xp
    out = xp.where(cs.soc, _soc_rows(bk, cs, v), xp.maximum(v, 0.0))
    return xp.where(cs.zero, v if dual else 0.0, out)


def block_min(cs: ConeSet, E):
    """``E`` (numpy, (m,)) with each SOC block's entries replaced by their minimum: one scale per
    block keeps every second-order cone invariant under the row scaling (Ruiz's rounds), and
    the minimum of the Ruiz factors is the factor of the block's longest row."""
    G = cs.heads.shape[0]
    if G == 0:
        return E
    low = np.full(G, np.inf)
    np.minimum.at(low, cs.seg[cs.soc], E[cs.soc])
    return np.where(cs.soc, low[cs.seg], E)


# --- C = b - K, as the ADMM core sees it ----------------------------------------------------
def project_set(bk, cs: ConeSet, v):
    """$\\Pi_C(v) = b - \\Pi_K(b - v)$."""
    return cs.b - project(bk, cs, cs.b - v)


def polar(bk, cs: ConeSet, y):
    """``y`` projected onto $K^*$, the polar of $C$'s recession cone $-K$."""
    return project(bk, cs, y, dual=True)


def support(bk, cs: ConeSet, y):
    """$\\sigma_C(y) = b^\\top y$ for $y \\in K^*$."""
    return bk.xp.sum(cs.b * y)


def support_mag(bk, cs: ConeSet, y):
    """$\\sum_i |b_i||y_i|$: the magnitude of the terms of $b^\\top y$."""
    return bk.xp.sum(bk.xp.abs(cs.b * y))


def recession_gap(bk, cs: ConeSet, v):
    """$|{-v} - \\Pi_K(-v)|$ by row: how far $v$ is from $C$'s recession cone $-K$ (0 on a row
    where $-v$ needs no projection)."""
    return bk.xp.abs(v + project(bk, cs, -v))


def in_recession(bk, cs: ConeSet, v, tol):
    """$v \\in -K$ up to ``tol`` on each row (`recession_gap`)."""
    return bk.xp.all(recession_gap(bk, cs, v) <= tol)
