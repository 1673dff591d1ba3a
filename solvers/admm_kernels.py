r"""Compiled (numba) ADMM iterations of the box QP on the numpy back end.

On a QP with a few dozen variables one ADMM iteration is a handful of length-$n$ and
length-$m$ vector operations; in numpy each costs a microsecond of call overhead, so the
Python loop of `cvxkit.solvers.admm.iterate` spends 10-20 us an iteration where the arithmetic
needs well under one; on a sparse QP with a few thousand rows the dozen vector operations
around qdldl's solve cost as much again as the solve. `dense_iterations` runs ``k`` iterations
of exactly that update (`cvxkit.solvers.admm`, module docstring) in one compiled call, for the
reduced linear system with its lower Cholesky factor $L$ (`cvxkit.solvers.admm_box.QP_DENSE`),
and `kkt_iterations` for the full KKT system with qdldl's $LDL^\top$ factors
(`cvxkit.solvers.admm_box.QP_SPARSE`):

$$
\tilde x = L^{-\top}L^{-1}\big(\sigma x - q + A^\top(\rho\circ z - y)\big),\quad
\tilde z = A\tilde x,\quad
x \leftarrow \alpha\tilde x + (1-\alpha)x,\quad
z \leftarrow \Pi_{[l,u]}\big(\alpha\tilde z + (1-\alpha)z + y/\rho\big),\quad
y \leftarrow y + \rho\circ(\alpha\tilde z + (1-\alpha)z_{\text{old}} - z).
$$

It returns the last step $(\delta x, \delta y)$ too (the certificate candidates). The checks,
the penalty updates and everything else stay in the shared Python code; the generic `iterate`
remains the reference (tests compare the two to rounding).

numba is imported only when the kernels are loaded (``import cvxkit`` does not load it), which
costs about 0.8 s once per process (a second or two more the first time ever: compilation,
cached on disk with ``cache=True``). So a process loads them only after `LOAD_AFTER`
iterations of the generic loop (`ready`), or when `load` is called (benchmarks and loops of many
small solves). If numba is unavailable, the generic loop runs.
"""
from __future__ import annotations

import numpy as np

#: the kernel is used up to this many variables (above it the triangular solves in LAPACK and
#: the products in BLAS outweigh the per-call overhead that the kernel saves)
MAX_N = 400

_KERNEL: list = []
_relaxed = None  # the compiled helper shared by the kernels (set by `_compile`)


def _compile():
    global _relaxed  # (a global, not a closure variable: numba's cache keys on closure values)
    import numba as nb

    @nb.njit(cache=True, nogil=True)
    def relaxed(xt, zt, alpha, lo, up, rho, x, z, y, dx, dy, last):  # pragma: no cover
        """The relaxed updates of x, z, y from (xt, zt), in place (and the steps if last)."""
        for j in range(x.size):
            xn = alpha * xt[j] + (1.0 - alpha) * x[j]
            if last:
                dx[j] = xn - x[j]
            x[j] = xn
        for i in range(z.size):
            zr = alpha * zt[i] + (1.0 - alpha) * z[i]
            zn = min(max(zr + y[i] / rho[i], lo[i]), up[i])
            yn = y[i] + rho[i] * (zr - zn)
            if last:
                dy[i] = yn - y[i]
            z[i] = zn
            y[i] = yn

    _relaxed = relaxed

    @nb.njit(cache=True, nogil=True)
    def kernel(L, A, q, sigma, alpha, lo, up, rho, x, z, y, k):  # pragma: no cover - compiled
        n, m = x.size, z.size
        x, z, y = x.copy(), z.copy(), y.copy()
        rhs, zt = np.empty(n), np.empty(m)
        w = np.empty(m)
        dx, dy = np.zeros(n), np.zeros(m)
        for it in range(k):
            for i in range(m):
                w[i] = rho[i] * z[i] - y[i]
            for j in range(n):
                rhs[j] = sigma * x[j] - q[j]
            for i in range(m):  # rhs += A^T w
                wi = w[i]
                if wi != 0.0:
                    for j in range(n):
                        rhs[j] += A[i, j] * wi
            for j in range(n):  # L v = rhs
                s = rhs[j]
                for t in range(j):
                    s -= L[j, t] * rhs[t]
                rhs[j] = s / L[j, j]
            for j in range(n - 1, -1, -1):  # L^T xt = v
                s = rhs[j]
                for t in range(j + 1, n):
                    s -= L[t, j] * rhs[t]
                rhs[j] = s / L[j, j]
            for i in range(m):  # zt = A xt
                acc = 0.0
                for j in range(n):
                    acc += A[i, j] * rhs[j]
                zt[i] = acc
            _relaxed(rhs, zt, alpha, lo, up, rho, x, z, y, dx, dy, it == k - 1)
        return x, z, y, dx, dy

    @nb.njit(cache=True, nogil=True)
    def kkt_kernel(Lp, Li, Lx, dinv, perm, sigma, alpha, q, lo, up, rho, x, z, y,
                   k):  # pragma: no cover - compiled
        n, m = x.size, z.size
        N = n + m
        x, z, y = x.copy(), z.copy(), y.copy()
        b, xt, zt = np.empty(N), np.empty(n), np.empty(m)
        dx, dy = np.zeros(n), np.zeros(m)
        for it in range(k):
            for j in range(N):  # b = (permuted) right-hand side
                i = perm[j]
                b[j] = sigma * x[i] - q[i] if i < n else z[i - n] - y[i - n] / rho[i - n]
            for j in range(N):  # (I + L) w = b, L strictly lower, by columns
                bj = b[j]
                for t in range(Lp[j], Lp[j + 1]):
                    b[Li[t]] -= Lx[t] * bj
            for j in range(N):
                b[j] *= dinv[j]
            for j in range(N - 1, -1, -1):  # (I + L)^T v = w
                s = b[j]
                for t in range(Lp[j], Lp[j + 1]):
                    s -= Lx[t] * b[Li[t]]
                b[j] = s
            for j in range(N):  # unpermute: xt, and zt = z + (nu - y) / rho
                i = perm[j]
                if i < n:
                    xt[i] = b[j]
                else:
                    i -= n
                    zt[i] = z[i] + (b[j] - y[i]) / rho[i]
            _relaxed(xt, zt, alpha, lo, up, rho, x, z, y, dx, dy, it == k - 1)
        return x, z, y, dx, dy

    return kernel, kkt_kernel


#: a process loads the kernels (about 0.8 s once: importing numba, reading its cache) after it
#: has run this many eligible iterations in the generic loop (each costs 10-20 us more there),
#: or when `load` is called: a single small solve stays at its 0.15 s instead of 1 s
LOAD_AFTER = 20_000
_GENERIC = [0]


def load() -> bool:
    """Load (or on the first use ever, compile) the kernels now; ``False`` if numba is missing."""
    if not _KERNEL:
        try:
            kernel, kkt_kernel = _compile()
            one, two = np.ones(1), np.ones(2)
            kernel(np.ones((1, 1)), np.ones((1, 1)), one, 1.0, 1.0, -one, one, one, one, one,
                   one, 1)
            kkt_kernel(np.zeros(3, np.int64), np.zeros(0, np.int64), np.zeros(0), two,
                       np.arange(2), 1.0, 1.0, one, -one, one, one, one, one, one, 1)
            _KERNEL.append((kernel, kkt_kernel))
        except Exception:  # pragma: no cover - numba missing or broken
            _KERNEL.append(None)
    return _KERNEL[0] is not None


def ready(k: int) -> bool:
    """Whether the ``k`` iterations about to run should use the kernels: they are loaded, or
    the iterations counted so far in this process reach `LOAD_AFTER` (then they are loaded)."""
    if _KERNEL:
        return _KERNEL[0] is not None
    _GENERIC[0] += int(k)
    return _GENERIC[0] >= LOAD_AFTER and load()


def dense_iterations(L, A, q, sigma: float, alpha: float, l, u, rho, x, z, y, k: int):
    r"""``k`` >= 1 relaxed ADMM iterations of the box QP with the reduced system's lower
    Cholesky factor ``L`` (n, n; only its lower triangle is read), scaled data ``A`` (m, n),
    ``q`` (n,), box ``l``, ``u`` (m,), per-row penalties ``rho`` (m,) and iterates ``x`` (n,),
    ``z``, ``y`` (m,): returns ``(x, z, y, dx, dy)``, the new iterates and the last step (all
    float64 arrays; the inputs are not modified)."""
    f = np.ascontiguousarray
    return _KERNEL[0][0](f(L), f(A), q, float(sigma), float(alpha), l, u, rho, x, z, y, int(k))


def ldl_arrays(solver):
    r"""``(Lp, Li, Lx, dinv, perm)``: the factorization $K = \Pi (I + L) D (I + L)^\top \Pi^\top$
    of a ``qdldl.Solver`` as plain arrays for `kkt_iterations` (``L`` strictly lower, CSC;
    ``dinv`` $= 1/D$; ``perm`` $= p$ with $\Pi e_j = e_{p_j}$)."""
    L, dvec, perm = solver.factors()
    return (L.indptr.astype(np.int64), L.indices.astype(np.int64), np.asarray(L.data, float),
            1.0 / np.asarray(dvec, float), np.asarray(perm, np.int64))


def kkt_iterations(lu, sigma: float, alpha: float, q, l, u, rho, x, z, y, k: int):
    r"""``k`` >= 1 relaxed ADMM iterations of the box QP through the full KKT system
    $\begin{bmatrix} P + \sigma I & A^\top \\ A & -\operatorname{diag}(\rho)^{-1}\end{bmatrix}$
    factored as ``lu`` (`ldl_arrays`): $\tilde x$ and $\nu$ from the right-hand side
    $(\sigma x - q, z - y/\rho)$, $\tilde z = z + (\nu - y)/\rho$, then the updates of
    `dense_iterations`. Returns ``(x, z, y, dx, dy)``."""
    return _KERNEL[0][1](*lu, float(sigma), float(alpha), q, l, u, rho, x, z, y, int(k))
