r"""Compiled (numba) ADMM iterations for small dense QPs on the numpy back end.

On a QP with a few dozen variables one ADMM iteration is a handful of length-$n$ and
length-$m$ vector operations; in numpy each costs a microsecond of call overhead, so the
Python loop of `cvxkit.solvers.admm.iterate` spends 10-20 us an iteration where the arithmetic
needs well under one. `dense_iterations` runs ``k`` iterations of exactly that update
(`cvxkit.solvers.admm`, module docstring) in one compiled call, for the reduced linear system
with its lower Cholesky factor $L$ (`cvxkit.solvers.admm_box.QP_DENSE`):

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

numba is imported on the first call only (``import cvxkit`` does not load it); the kernel is
compiled once and cached on disk (``cache=True``): the first call in a fresh environment costs
about a second of compilation. If numba is unavailable, `available` is false and the generic
loop runs.
"""
from __future__ import annotations

import numpy as np

#: the kernel is used up to this many variables (above it the triangular solves in LAPACK and
#: the products in BLAS outweigh the per-call overhead that the kernel saves)
MAX_N = 400

_KERNEL: list = []


def _compile():
    import numba as nb

    @nb.njit(cache=True, nogil=True)
    def kernel(L, A, q, sigma, alpha, lo, up, rho, x, z, y, k):  # pragma: no cover - compiled
        n, m = x.size, z.size
        x, z, y = x.copy(), z.copy(), y.copy()
        rhs = np.empty(n)
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
            last = it == k - 1
            for j in range(n):
                xn = alpha * rhs[j] + (1.0 - alpha) * x[j]
                if last:
                    dx[j] = xn - x[j]
                x[j] = xn
            for i in range(m):
                zt = 0.0
                for j in range(n):
                    zt += A[i, j] * rhs[j]
                zr = alpha * zt + (1.0 - alpha) * z[i]
                zn = min(max(zr + y[i] / rho[i], lo[i]), up[i])
                yn = y[i] + rho[i] * (zr - zn)
                if last:
                    dy[i] = yn - y[i]
                z[i] = zn
                y[i] = yn
        return x, z, y, dx, dy

    return kernel


def available() -> bool:
    """Whether the kernel can be used (numba importable and the kernel compiled)."""
    if not _KERNEL:
        try:
            _KERNEL.append(_compile())
        except Exception:  # pragma: no cover - numba missing or broken
            _KERNEL.append(None)
    return _KERNEL[0] is not None


def dense_iterations(L, A, q, sigma: float, alpha: float, l, u, rho, x, z, y, k: int):
    r"""``k`` >= 1 relaxed ADMM iterations of the box QP with the reduced system's lower
    Cholesky factor ``L`` (n, n; only its lower triangle is read), scaled data ``A`` (m, n),
    ``q`` (n,), box ``l``, ``u`` (m,), per-row penalties ``rho`` (m,) and iterates ``x`` (n,),
    ``z``, ``y`` (m,): returns ``(x, z, y, dx, dy)``, the new iterates and the last step (all
    float64 arrays; the inputs are not modified)."""
    f = np.ascontiguousarray
    return _KERNEL[0](f(L), f(A), q, float(sigma), float(alpha), l, u, rho, x, z, y, int(k))
