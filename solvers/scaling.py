r"""Ruiz equilibration of a QP's KKT matrix, with cost scaling (OSQP's scheme).

For $\min \tfrac12 x^\top P x + q^\top x$ s.t. $l \le Ax \le u$, find diagonal $D$ (n), $E$ (m)
and a scalar $c > 0$ so that the scaled KKT matrix

$$
\begin{bmatrix} cDPD & DA^\top E \\ EAD & 0 \end{bmatrix}
$$

has columns of similar infinity norm. The scaled problem has data $\bar P = cDPD$,
$\bar q = cDq$, $\bar A = EAD$, $\bar l = El$, $\bar u = Eu$, and its solution maps back as
$x = D\bar x$, $y = E\bar y / c$, $z = E^{-1}\bar z$.

Each of ``iters`` rounds (OSQP: 10) divides every column $j$ by the square root of its
infinity norm (``D`` for the first ``n`` columns, ``E`` for the last ``m``), then divides the
cost by $\max(\text{mean}_j \lVert \bar P_{:j}\rVert_\infty, \lVert \bar q\rVert_\infty)$. Norms
below ``MIN_SCALING`` count as 1 (an empty column is left alone) and norms above ``MAX_SCALING``
are clipped, as in OSQP's ``scale_data``.

**Units first.** Ruiz's rounds start from the problem's *units* (`units_dense`,
`units_sparse`), not from ones, so that the scaled problem is the same (up to rounding) when the
user scales a constraint row, the cost or the right-hand sides by any power of ten (OSQP starts
from ones and leaves rows of norm below $10^{-4}$ alone, so a row scaled by $10^{-12}$ stays
negligible, and so does its violation):

* row units $a_i = \lVert A_{i:}\rVert_\infty$ (1 for an empty row): each row is divided by
  its own magnitude;
* a length unit $\beta$ for $x$: the smaller of $\min_i |b_i| / a_i$ over the finite nonzero
  bounds $b_i$ of $l, u$ (a bound with $|b_i|/a_i$ below $10^{-12}$ of their median, or below
  $10^{-14}$, counts as zero: it is a rounding of 0) and
  $\lVert q\rVert_\infty / \lVert P\rVert_\infty$ (each where defined; 1 if neither is).
  Scaling $(l, u, q)$ by $t$ scales $x^\star$ and $\beta$ by $t$; scaling a row leaves
  $b_i / a_i$ alone; scaling $(P, q)$ leaves both ratios alone. The smallest, not a typical,
  magnitude: $\beta$ only sets the absolute part of the tolerances (the floor that matters when
  $x^\star \approx 0$), so an underestimate just leaves the relative part in charge, while an
  overestimate (a median among "soft infinite" bounds such as $\pm 10^6$) would let violations
  of size $\epsilon\beta$ pass;
* a cost unit $\gamma = \max(\beta^2\lVert P\rVert_\infty, \beta\lVert q\rVert_\infty)$
  (1 if zero).

So $D_0 = \beta$, $E_{0,i} = 1/(a_i\beta)$, $c_0 = 1/\gamma$ define the *normalized problem*
($\bar P = \beta^2P/\gamma$, $\bar q = \beta q/\gamma$, rows $A_{i:}/a_i$, bounds
$b_i/(a_i\beta)$) on which the solver's tolerances are applied (see `cvxkit.solvers.admm`).

Ruiz starts from the same units with a *typical* length $\beta_1$ instead (the median of the
$|b_i|/a_i$ where it is below $\lVert q\rVert/\lVert P\rVert$; $D_1, E_1, c_1$): the iterations
run on a balanced problem (with the smallest $\beta$, $\bar P$ can be tiny next to $\bar q$,
and polishing's regularization $\delta$ then no longer small next to $\bar P$). Both lengths
scale alike, so the scaled problem is still the same at every scale.

`ruiz_dense` works on dense arrays of any array namespace, with any leading batch dimensions;
`ruiz_sparse` on scipy.sparse matrices (one problem).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

MIN_SCALING = 1e-4
MAX_SCALING = 1e4


#: a bound ratio $|b_i|/a_i$ below this fraction of the median ratio counts as a zero bound:
#: it is the rounding of a 0 (the Maros-Meszaros LPs and QPs carry bounds such as 2.2e-16 next
#: to bounds of 300, which made the length unit 8e-11 and the tolerances out of reach), and one
#: tiny bound, say 1e-300, cannot push the normalized data towards overflow
ZERO_BOUND_RTOL = 1e-12
#: a bound ratio below this counts as a zero bound whatever the others (a problem whose nonzero
#: bounds are all roundings of 0, such as DTOC3's 2.2e-17)
ZERO_BOUND_ATOL = 1e-14


class Units(NamedTuple):
    """The problem's units (module docstring): ``D0`` (..., n) $= \\beta$, ``E0`` (..., m)
    $= 1/(a\\beta)$, ``c0`` (...) $= 1/\\gamma$ (the tolerances' units), the row norms ``a``
    (..., m) (1 for empty rows), and ``D1``, ``E1``, ``c1``: the same with the typical length
    $\\beta_1$ (where Ruiz starts)."""

    D0: object
    E0: object
    c0: object
    a: object
    D1: object
    E1: object
    c1: object


def _units(xp, a, pmax, qmax, l, u, n):
    """`Units` from the row norms ``a`` (0 for empty rows), ``max|P|``, ``max|q|`` and bounds."""
    a = xp.where(a > 0, a, 1.0)

    def ratios(b):
        ok = xp.isfinite(b) & (b != 0)
        return xp.where(ok, xp.abs(xp.where(ok, b, 1.0)) / a, xp.nan)

    r = xp.concatenate([ratios(l), ratios(u)], axis=-1)
    r = xp.where(r < ZERO_BOUND_ATOL, xp.nan, r)
    if r.shape[-1] == 0:  # no constraints
        low = mid = xp.full(r.shape[:-1], xp.inf, dtype=a.dtype)
    else:
        any_b = xp.any(~xp.isnan(r), axis=-1)
        r1 = xp.where(any_b[..., None], r, 1.0)
        med = xp.nanmedian(r1, axis=-1)
        r1 = xp.where(r1 < ZERO_BOUND_RTOL * med[..., None], xp.nan, r1)  # (keeps the median)
        low = xp.where(any_b, xp.nanmin(r1, axis=-1), xp.inf)
        mid = xp.where(any_b, med, xp.inf)
    has_q = (pmax > 0) & (qmax > 0)
    beta_q = xp.where(has_q, qmax / xp.where(has_q, pmax, 1.0), xp.inf)

    def scales(beta_b):
        beta = xp.minimum(beta_b, beta_q)
        beta = xp.where(xp.isfinite(beta), beta, 1.0)
        gamma = xp.maximum(beta * beta * pmax, beta * qmax)
        gamma = xp.where(gamma > 0, gamma, 1.0)
        beta = xp.asarray(beta)[..., None]
        return beta * xp.ones(beta.shape[:-1] + (n,), dtype=a.dtype), 1.0 / (a * beta), 1.0 / gamma

    D0, E0, c0 = scales(low)
    return Units(D0, E0, c0, a, *scales(mid))


def units_dense(xp, P, q, A, l, u) -> Units:
    """`Units` of dense data (any leading batch dimensions; ``l``, ``u`` broadcast to ``A``'s
    rows)."""
    a = xp.max(xp.abs(A), axis=-1, initial=0.0)
    pmax = xp.max(xp.abs(P), axis=(-2, -1), initial=0.0)
    qmax = xp.max(xp.abs(q), axis=-1, initial=0.0)
    return _units(xp, a, pmax, qmax, l, u, q.shape[-1])


def units_sparse(P, q, A, l, u) -> Units:
    """`Units` of scipy.sparse ``P``, ``A`` (one problem)."""
    import scipy.sparse as sp

    A = sp.csr_matrix(A)
    a = np.asarray(abs(A).max(axis=1).todense()).ravel() if A.shape[0] and A.shape[1] \
        else np.zeros(A.shape[0])
    pmax = float(abs(P).max()) if sp.csr_matrix(P).nnz else 0.0
    qmax = float(np.max(np.abs(q), initial=0.0))
    return _units(np, a, np.float64(pmax), np.float64(qmax), np.asarray(l, float),
                  np.asarray(u, float), q.shape[-1])


def units_from(a, pmax: float, q, l, u) -> Units:
    """`Units` of one problem from its row norms ``a`` (`Units.a` of the same matrix ``A``),
    ``pmax`` (the largest ``|P_jk|``) and the vectors ``q``, ``l``, ``u`` (numpy): what a
    re-solve with new vectors and the same matrices recomputes, without reading the matrices."""
    q = np.asarray(q, float)
    return _units(np, np.asarray(a, float), np.float64(pmax),
                  np.float64(np.max(np.abs(q), initial=0.0)), np.asarray(l, float),
                  np.asarray(u, float), q.shape[-1])


class Scaled(NamedTuple):
    """Scaled data and the scaling: ``P``, ``q``, ``A`` (scaled), ``D`` (n), ``E`` (m), ``c``."""

    P: object
    q: object
    A: object
    D: object
    E: object
    c: object


def _limit(xp, v):
    """Norms below MIN_SCALING become 1, above MAX_SCALING become MAX_SCALING."""
    return xp.where(v < MIN_SCALING, 1.0, xp.minimum(v, MAX_SCALING))


#: the rounds stop early (numpy) once a round moves no scale by more than this factor minus one:
#: a round that changes nothing is a fixed point, and the later rounds would change nothing
RUIZ_FIXED_POINT = 1e-12


def _fixed_point(s, prev) -> bool:
    """Whether the Ruiz round from the scales ``prev`` to ``s`` (tuples of numpy arrays) moved
    every scale by at most the factor ``1 + RUIZ_FIXED_POINT``."""
    return all(np.max(np.abs(a / b - 1.0), initial=0.0) <= RUIZ_FIXED_POINT for a, b in zip(s, prev))


def _colmax(xp, M):
    """Max of |M| over the rows (axis -2), 0 for an empty axis."""
    return xp.max(xp.abs(M), axis=-2, initial=0.0)


def ruiz_dense(xp, P, q, A, iters: int = 10, loop=None, start: Units | None = None,
               tie=None) -> Scaled:
    """Ruiz-equilibrate dense ``P`` (..., n, n), ``q`` (..., n), ``A`` (..., m, n), starting
    from the units ``start`` (default: ones). ``tie(E) -> E``, if given, is applied to the row
    scales at the start and after every round (a conic program gives each second-order cone
    one scale, `cvxkit.solvers.cones.block_min`; numpy only).

    As in `ruiz_sparse`, each round takes the norms of the scaled matrices from ``|P|``, ``|A|``
    and the running ``D``, ``E``, ``c``, and the scaled data is formed once at the end: a round
    reads the matrices instead of rewriting them (this set-up runs on every batched solve).
    ``loop(n, body, init)`` runs the rounds (default: a Python loop; pass ``lax.fori_loop``-based
    code on JAX so that the rounds are compiled once, not unrolled).
    """
    aP, aA = xp.abs(P), xp.abs(A)
    tied = tie or (lambda E: E)

    def scaled_colmax(M, rows, cols):
        """``cols_j * max_i M_ij rows_i``."""
        return cols * _colmax(xp, M * rows[..., :, None])

    def body(s):
        D, E, c = s
        colP = c[..., None] * scaled_colmax(aP, D, D)
        rowA = E * xp.max(aA * D[..., None, :], axis=-1, initial=0.0)
        dt = 1.0 / xp.sqrt(_limit(xp, xp.maximum(colP, scaled_colmax(aA, E, D))))
        D, E = D * dt, tied(E / xp.sqrt(_limit(xp, rowA)))
        cost = xp.maximum(xp.mean(c[..., None] * scaled_colmax(aP, D, D), axis=-1),
                          _limit(xp, xp.max(xp.abs(c[..., None] * D * q), axis=-1, initial=0.0)))
        return D, E, c / _limit(xp, cost)

    s = (xp.ones_like(q), xp.ones(A.shape[:-1], dtype=q.dtype), xp.ones(q.shape[:-1], dtype=q.dtype))
    if start is not None:
        s = (s[0] * start.D1, tied(s[1] * start.E1), s[2] * start.c1)
    if loop is None:
        for _ in range(iters):
            s, prev = body(s), s
            if _fixed_point(s, prev):
                break
    else:
        s = loop(iters, body, s)
    D, E, c = s
    cD = c[..., None] * D
    return Scaled(cD[..., :, None] * P * D[..., None, :], cD * q, E[..., :, None] * A * D[..., None, :],
                  D, E, c)


def _colmax_csc(indptr, indices, absdata, rowscale, ncols) -> np.ndarray:
    """``max_i |M_ij| * rowscale_i`` for each column ``j`` of a CSC matrix (0 if empty)."""
    out = np.zeros(ncols)
    nonempty = np.diff(indptr) > 0
    if absdata.size:
        scaled = absdata * rowscale.astype(absdata.dtype)[indices]
        out[nonempty] = np.maximum.reduceat(scaled, indptr[:-1][nonempty])
    return out


def ruiz_sparse(P, q, A, iters: int = 10, start: Units | None = None, tie=None) -> Scaled:
    """Ruiz-equilibrate scipy.sparse ``P`` (n, n) and ``A`` (m, n), starting from the units
    ``start`` (default: ones; ``tie`` as in `ruiz_dense`); returns CSC matrices.

    The norms of the scaled matrices are computed from the unscaled entries and the running
    ``D``, ``E``, ``c`` (no matrix is rewritten inside the loop), so each round costs a few passes
    over the nonzeros.
    """
    import scipy.sparse as sp

    P = sp.csc_matrix(P, dtype=np.float64)
    A = sp.csc_matrix(A, dtype=np.float64)
    At = A.T.tocsc()  # its columns are the rows of A
    n, m = P.shape[0], A.shape[0]
    # the norms only steer the scaling: float32 copies of |entries| halve the memory traffic
    aP, aA, aAt = (np.abs(M.data).astype(np.float32) for M in (P, A, At))
    q0 = np.asarray(q, dtype=np.float64)
    tied = tie or (lambda E: E)
    D, E, c = np.ones(n), np.ones(m), 1.0
    if start is not None:
        D, E, c = D * start.D1, tied(E * start.E1), float(start.c1)
    for _ in range(iters):
        colP = c * D * _colmax_csc(P.indptr, P.indices, aP, D, n)
        colA = D * _colmax_csc(A.indptr, A.indices, aA, E, n)
        rowA = E * _colmax_csc(At.indptr, At.indices, aAt, D, m)
        dt = 1.0 / np.sqrt(_limit(np, np.maximum(colP, colA)))
        et = 1.0 / np.sqrt(_limit(np, rowA))
        D, E = D * dt, tied(E * et)
        colP = c * D * _colmax_csc(P.indptr, P.indices, aP, D, n)
        qs = c * D * q0
        cost = max(float(np.mean(colP)) if n else 0.0,
                   float(_limit(np, np.max(np.abs(qs), initial=0.0))))
        step = float(_limit(np, np.float64(cost)))
        c /= step
        if _fixed_point((dt, et, np.float64(step)), (1.0, 1.0, 1.0)):
            break
    Ps = P.copy()
    Ps.data *= c * D[Ps.indices] * np.repeat(D, np.diff(Ps.indptr))
    As = A.copy()
    As.data *= E[As.indices] * np.repeat(D, np.diff(As.indptr))
    return Scaled(Ps, c * D * q0, As, D, E, np.float64(c))
