r"""Linear algebra for ADMM's linear systems: dense Cholesky, Gram matrices, sparse LDL^T.

The ADMM x-update of a QP solves, for the current penalties $\rho$ (one per constraint row),

$$
(P + \sigma I + A^\top \operatorname{diag}(\rho) A)\,\tilde x = \sigma x - q + A^\top(\rho \circ z - y)
\qquad\text{(reduced form)}
$$

or, equivalently, the quasi-definite system

$$
\begin{bmatrix} P + \sigma I & A^\top \\ A & -\operatorname{diag}(\rho)^{-1} \end{bmatrix}
\begin{bmatrix} \tilde x \\ \nu \end{bmatrix} =
\begin{bmatrix} \sigma x - q \\ z - \rho^{-1} \circ y \end{bmatrix},
\qquad \tilde z = z + \rho^{-1}\circ(\nu - y)
\qquad\text{(full KKT form)}.
$$

The reduced matrix is $n \times n$ and usually dense (for random sparse data, $A^\top A$ fills
in completely once rows have more than a few nonzeros): it is factored by a dense Cholesky
(LAPACK through scipy, or XLA on JAX). The full KKT form keeps the sparsity of $A$ and is
factored by ``qdldl`` (OSQP's own LDL^T, a CVXPY dependency), or by scipy's ``splu`` when qdldl
is missing. `choose_linsys` picks between them from the size and an estimate of the fill.
"""
from __future__ import annotations

import numpy as np


def is_sparse(M) -> bool:
    import scipy.sparse as sp

    return sp.issparse(M)


# --- dense Cholesky, either backend ----------------------------------------------------------
def cholesky(bk, K):
    """Lower Cholesky factor of the symmetric positive definite ``K``.

    numpy: raises ``numpy.linalg.LinAlgError`` if ``K`` is not positive definite; JAX: returns
    NaNs instead (the ADMM residuals then become NaN and the run stops with ``numerical_error``).
    """
    if bk.name == "jax":
        return bk.xp.linalg.cholesky(K)
    from scipy.linalg import cho_factor

    L, _ = cho_factor(K, lower=True, check_finite=False)
    return L


def spd_solve_unrolled(xp, K, R):
    r"""Solve $KX = R$ for a small symmetric positive definite ``K`` (n, n), ``R`` (n, r), by
    Gauss-Jordan elimination without pivoting, written out over the ``n`` pivots.

    For batches of tiny systems on XLA this is a few fused elementwise kernels per pivot,
    about 4x faster than a batched Cholesky factorization and two triangular solves (whose
    batched LAPACK calls dominate at n = 10). Elimination without pivoting is stable on a
    positive definite ``K`` (the backward half of Gauss-Jordan is not backward stable in general,
    but its forward error is comparable to Cholesky's: meant for small, moderately conditioned
    systems). Its pivots are the ratios of leading principal minors, so they are all positive
    exactly when ``K`` is positive definite; otherwise the result is NaN (as the JAX `cholesky`
    gives).
    """
    n = K.shape[-1]
    M = xp.concatenate([K, R], axis=-1)
    ok = xp.asarray(True)
    pivot_row = xp.arange(n)[:, None]
    for k in range(n):
        p = M[k, k]
        ok = ok & (p > 0)
        row = M[k] / p
        M = xp.where(pivot_row == k, row[None, :], M - M[:, k:k + 1] * row[None, :])
    return xp.where(ok, M[:, n:], xp.nan)


def cho_solve(bk, L, b):
    """Solve ``L L^T x = b`` for a lower Cholesky factor ``L``."""
    if bk.name == "jax":
        from jax.scipy.linalg import cho_solve as jcs

        return jcs((L, True), b)
    from scipy.linalg import lapack

    x, info = lapack.dpotrs(L, b, lower=1) if L.dtype == np.float64 else \
        lapack.spotrs(L, b, lower=1)
    if info != 0:  # pragma: no cover - only for malformed input
        raise np.linalg.LinAlgError(f"potrs failed (info={info})")
    return x


def lu_factor(bk, K):
    if bk.name == "jax":
        from jax.scipy.linalg import lu_factor as jlf

        return jlf(K)
    from scipy.linalg import lu_factor as slf

    return slf(K, check_finite=False)


def lu_solve(bk, f, b):
    if bk.name == "jax":
        from jax.scipy.linalg import lu_solve as jls

        return jls(f, b)
    from scipy.linalg import lu_solve as sls

    return sls(f, b, check_finite=False)


# --- Gram matrices A^T diag(w) A ------------------------------------------------------------
#: rows converted to dense at a time when a sparse A's Gram matrix is formed with BLAS
GRAM_BLOCK_ROWS = 2048
#: BLAS on dense blocks does about this many flops in the time scipy's sparse product does one
#: multiply-add (measured: ~30 GFlop/s against ~0.3 G multiply-adds/s on the 2-core CI machine)
SPARSE_GRAM_ADVANTAGE = 100.0


def gram_cost(A) -> tuple[float, float]:
    """Estimated work of ``A^T A`` (m x n): (sparse multiply-adds, dense flops)."""
    m, n = A.shape
    if is_sparse(A):
        k = np.diff(A.tocsr().indptr).astype(np.float64)
        return float(np.sum(k * k)), 2.0 * m * n * n
    return 2.0 * m * n * n, 2.0 * m * n * n


def gram(A, w, col_blocks: int = 4) -> np.ndarray:
    """``A^T diag(w) A`` as a dense numpy array, for dense or scipy.sparse ``A`` (m, n).

    Rows with ``w == 0`` are skipped. A sparse ``A`` whose Gram matrix is cheap as a sparse
    product (``SPARSE_GRAM_ADVANTAGE`` times fewer multiply-adds than the dense product's flops)
    is multiplied sparsely. Otherwise blocks of rows are made dense and multiplied by BLAS, which is far faster
    per flop: only the blocks on and above the diagonal (``col_blocks`` column blocks), then the
    result is symmetrized, which saves ``(col_blocks - 1) / (2 col_blocks)`` of the flops. (On
    the n = 5000, m = 50 000, 15%-dense random QP of the benchmark this is the dominant set-up
    cost, as it is inside OSQP's LDL^T factorization.)
    """
    import scipy.sparse as sp

    w = np.asarray(w, dtype=np.float64)
    keep = w != 0
    n = A.shape[1]
    if not keep.any():
        return np.zeros((n, n))
    if not is_sparse(A):
        A = np.asarray(A)[keep]
        return (A * w[keep][:, None]).T @ A
    A = sp.csr_matrix(A)
    if not keep.all():
        A, w = A[np.flatnonzero(keep)], w[keep]
    sparse_ops, dense_flops = gram_cost(A)
    if SPARSE_GRAM_ADVANTAGE * sparse_ops < dense_flops:
        return np.asarray((A.T @ sp.diags(w) @ A).toarray())
    G = np.zeros((n, n))
    cuts = np.linspace(0, n, min(col_blocks, n) + 1).astype(int)
    spans = [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    for s in range(0, A.shape[0], GRAM_BLOCK_ROWS):
        B = A[s:s + GRAM_BLOCK_ROWS].toarray()
        Bw = B * w[s:s + GRAM_BLOCK_ROWS, None]
        for i, I in enumerate(spans):
            BwI = Bw[:, I].T
            for J in spans[i:]:
                G[I, J] += BwI @ B[:, J]
    # the blocks above the diagonal are exact; mirror them below
    for i, I in enumerate(spans):
        for J in spans[:i]:
            G[I, J] = G[J, I].T
    return G


class ThreadedCSR:
    """A CSR matrix whose products with vectors run on row blocks in threads.

    scipy's sparse matrix-vector product releases the GIL but uses one core; for large matrices
    (tens of millions of nonzeros, as in the n = 5000 benchmark QP) splitting the rows over the
    cores is close to proportionally faster. ``matrix`` is the whole CSR matrix.
    """

    _pool = None

    def __init__(self, M, parts: int | None = None):
        import os
        import scipy.sparse as sp

        self.matrix = sp.csr_matrix(M)
        self.shape = self.matrix.shape
        parts = parts or max(1, min(os.cpu_count() or 1, 8))
        bounds = np.linspace(0, self.shape[0], parts + 1).astype(int)
        self.blocks = [self.matrix[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        if ThreadedCSR._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            ThreadedCSR._pool = ThreadPoolExecutor(max(1, min(os.cpu_count() or 1, 8)))

    def __matmul__(self, v):
        if len(self.blocks) == 1:
            return self.matrix @ v
        return np.concatenate(list(self._pool.map(lambda B: B @ v, self.blocks)))


#: products with matrices of more nonzeros than this are threaded
THREADED_NNZ = 2_000_000


def fast_csr(M):
    """``M`` as CSR, wrapped in `ThreadedCSR` when it is large."""
    import scipy.sparse as sp

    M = sp.csr_matrix(M)
    return ThreadedCSR(M) if M.nnz > THREADED_NNZ else M


def as_scipy(M):
    """The scipy.sparse matrix behind ``M`` (unwraps `ThreadedCSR`)."""
    return M.matrix if isinstance(M, ThreadedCSR) else M


# --- sparse quasi-definite KKT (numpy only) --------------------------------------------------
def _qdldl():
    try:
        import qdldl
    except ImportError:  # pragma: no cover - qdldl comes with CVXPY
        return None
    return qdldl


class SparseKKT:
    """The full KKT matrix ``[[P + sigma I, A^T], [A, -diag(1/rho)]]`` with a cached LDL^T.

    ``factorize(rho_vec)`` writes the new (2,2) block into the stored pattern and refactors
    (qdldl reuses its symbolic analysis; splu refactors from scratch). ``solve(rhs)`` solves
    with the current factorization.

    The matrix has exactly ``n`` positive pivots iff ``P + sigma I + A^T diag(rho) A`` is
    positive definite (Sylvester's law of inertia); with qdldl any other count (a non-convex
    ``P``) raises ``numpy.linalg.LinAlgError``, as the dense Cholesky factorization does.
    """

    def __init__(self, P, A, sigma: float):
        import scipy.sparse as sp

        n, m = P.shape[0], A.shape[0]
        self.n, self.m = n, m
        top = sp.hstack([sp.csc_matrix(P) + sigma * sp.eye(n, format="csc"), sp.csc_matrix(A).T])
        bot = sp.hstack([sp.csc_matrix(A), -sp.eye(m, format="csc")])
        K = sp.triu(sp.vstack([top, bot]), format="csc")  # upper triangle: what qdldl reads
        K.sort_indices()
        self.K = K
        # positions of the (2,2) diagonal entries in K.data (last entry of columns n..n+m-1)
        self.diag_pos = K.indptr[n + 1:] - 1
        self.backend = "qdldl" if _qdldl() is not None else "splu"
        self._solver = None
        self._arrays = None

    def factorize(self, rho_vec):
        self.K.data[self.diag_pos] = -1.0 / np.asarray(rho_vec, dtype=np.float64)
        self._arrays = None
        if self.backend == "qdldl":
            if self._solver is None:
                self._solver = _qdldl().Solver(self.K, upper=True)
            else:
                self._solver.update(self.K, upper=True)
            positive = int(np.sum(self._solver.factors()[1] > 0))
            if positive != self.n:
                raise np.linalg.LinAlgError(
                    f"the KKT matrix has {positive} positive pivots, not n = {self.n}: "
                    "P + sigma I + A^T diag(rho) A is not positive definite (is P convex?)")
        else:
            import scipy.sparse as sp
            from scipy.sparse.linalg import splu

            full = self.K + sp.triu(self.K, k=1).T
            self._solver = splu(sp.csc_matrix(full))
        return self

    def solve(self, rhs):
        return self._solver.solve(np.asarray(rhs, dtype=np.float64))

    def ldl_arrays(self):
        """The current qdldl factors as arrays (`cvxkit.solvers.admm_kernels.ldl_arrays`, read
        once per factorization), or ``None`` with the splu back end."""
        if self.backend != "qdldl":
            return None
        if self._arrays is None:
            from cvxkit.solvers.admm_kernels import ldl_arrays

            self._arrays = ldl_arrays(self._solver)
        return self._arrays


def kkt_fill_estimate(P, A) -> float:
    """An estimate of the nonzeros of the reduced matrix ``P + A^T A`` as a sparse LDL^T of the
    full KKT matrix would see them (capped at n^2).

    Rows of ``A`` with more than n/10 nonzeros ("dense rows") count n each: in the full KKT form
    one dense row adds one dense column to the factor, not n^2 to ``A^T A``. For the other rows
    the pattern of ``P + A^T A`` is computed exactly when that is cheap (at most 5e7
    multiply-adds), else the matrix counts as dense.
    """
    import scipy.sparse as sp

    n = P.shape[0]
    if not (is_sparse(P) and is_sparse(A)):
        return float(n * n)
    A = sp.csr_matrix(A)
    k = np.diff(A.indptr)
    dense_rows = k > n / 10
    base = float(P.nnz + n * int(dense_rows.sum()))  # an upper bound of their union
    k_rest = k[~dense_rows].astype(np.float64)
    if base >= n * n or float(np.sum(k_rest * k_rest)) > 5e7:
        return float(n * n)
    rest = A[np.flatnonzero(~dense_rows)] if dense_rows.any() else A
    pattern = rest.copy()
    pattern.data = np.ones_like(pattern.data)
    return float(min(n * n, (pattern.T @ pattern).nnz + base))


#: ``linsys="auto"`` uses the dense reduced system up to this many variables
DENSE_MAX_N = 8000
#: one entry of the dense reduced iteration (n (n + m) of them) costs about this fraction of one
#: nonzero of the sparse LDL^T iteration (measured with the compiled kernels: 0.5 ns against 2 ns)
DENSE_ENTRY_COST = 0.25
#: up to this many entries n (n + m) the dense set-up (cheaper than the sparse one by about
#: 1 ms: conversions, symbolic factorization) decides: dense
DENSE_SMALL = 10_000


def choose_linsys(P, A) -> str:
    """``"dense"`` (reduced system, dense Cholesky) or ``"sparse"`` (full KKT, LDL^T).

    Dense when either matrix is a dense array or ``n (n + m) <= DENSE_SMALL``; sparse when
    ``n > DENSE_MAX_N``. Otherwise, for scipy.sparse data, dense when an iteration
    costs less that way: ``DENSE_ENTRY_COST * n (n + m)`` (the dense products and triangular
    solves) below ``nnz(A) + nnz(P)/2 + fill + n + m`` (the LDL^T factor's nonzeros, estimated by
    `kkt_fill_estimate`; tiny or dense-row problems such as KSIP), or when the estimated fill
    exceeds half of ``n^2`` (a sparse factorization would then do dense
    work without BLAS); sparse otherwise. A sparse QP with a few hundred variables (QBRANDY:
    n = 249, m = 469) iterates 9x faster through the sparse LDL^T.
    """
    n = P.shape[0]
    if not (is_sparse(P) and is_sparse(A)):
        return "dense"
    if n > DENSE_MAX_N:
        return "sparse"
    m = A.shape[0]
    base = A.nnz + P.nnz / 2 + n + m
    if n * (n + m) <= DENSE_SMALL or DENSE_ENTRY_COST * n * (n + m) <= base:
        return "dense"  # (without the fill: it only adds to the sparse side)
    fill = kkt_fill_estimate(P, A)
    if DENSE_ENTRY_COST * n * (n + m) <= base + fill:
        return "dense"
    return "dense" if fill >= 0.5 * n * n else "sparse"
