r"""Randomized iterative sketching for a symmetric linear system $Kd = b$ (sketch-and-project).

Used by `cvxkit.solvers.al_sketch` for the Newton–KKT system
$K = \begin{bmatrix} B & G^\top \\ G & 0\end{bmatrix}$ (Hong, Na, Mahoney & Kolar, ICML 2023).
Every method is an instance of sketch-and-project,
$d \leftarrow d - K^\top S (S^\top K K^\top S)^\dagger S^\top (Kd - b)$, started from $d = 0$:

* ``"rk"``, randomized Kaczmarz: $S = e_i$ with $i$ uniform over the rows,
  $d \leftarrow d - \frac{K_i d - b_i}{\|K_i\|^2} K_i^\top$;
* ``"gaussian"``: $S \sim N(0, I)$, $d \leftarrow d - \frac{S^\top(Kd - b)}{\|K^\top S\|^2} K^\top S$.

Each run stops at the first step with $\|Kd - b\| \le$ ``tol`` (or after ``max_steps``).
The residual $r = Kd - b$ is updated **incrementally**: a Kaczmarz step changes it by
$-\alpha K K_i^\top = -\alpha (K^2)_{:, i}$ ($K$ is symmetric), so with $K^2$ precomputed once
(sparse) a step costs $O(\mathrm{nnz}(K_i) + \mathrm{nnz}((K^2)_i))$, and $\|r\|^2$ is updated
from the touched entries. To stop round-off drift, $\|r\|^2$ is re-summed every $N$ steps and
$r$ recomputed from $d$ every $32N$ steps and before the run declares success (so the returned
residual is exact). A Gaussian step costs two products with $K$.

Back ends: ``numpy`` runs compiled numba kernels on $K$ in CSR form; ``jax`` runs one jitted
``lax.while_loop`` on $K$ and $K^2$ in padded-row (ELL) form. Both are seeded (the random
streams differ between back ends). ``exact_solve`` is the direct comparison: a sparse LU
(SuperLU, ``scipy.sparse.linalg.splu`` with a minimum-degree ordering) or a dense LU.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

SKETCHES = ("rk", "gaussian")


class SketchInfo(NamedTuple):
    """What one inner solve did: steps, flop count (multiply-adds counted as 2), final residual."""

    steps: int
    flops: float
    residual: float
    converged: bool


_KERNELS: dict = {}


def _numba_kernels():
    """Compile (once, cached on disk) the numba kernels; numba is imported only here."""
    if _KERNELS:
        return _KERNELS
    import numba as nb

    jit = nb.njit(cache=True, nogil=True)

    @jit
    def residual(Kp, Ki, Kx, b, d, r):
        N = b.size
        ss = 0.0
        for i in range(N):
            acc = -b[i]
            for p in range(Kp[i], Kp[i + 1]):
                acc += Kx[p] * d[Ki[p]]
            r[i] = acc
            ss += acc * acc
        return ss

    @jit
    def rk(Kp, Ki, Kx, Qp, Qi, Qx, rn2, b, d, r, tol, max_steps, seed):
        np.random.seed(seed)
        N = b.size
        nnz = Kp[N]
        tol2 = tol * tol
        ss = residual(Kp, Ki, Kx, b, d, r)
        flops = 2.0 * nnz
        steps = 0
        while True:
            if ss <= tol2:
                ss = residual(Kp, Ki, Kx, b, d, r)  # exact check before stopping
                flops += 2.0 * nnz
                if ss <= tol2:
                    break
            if steps >= max_steps:
                break
            i = np.random.randint(0, N)
            steps += 1
            if rn2[i] > 0.0:
                a = r[i] / rn2[i]
                for p in range(Kp[i], Kp[i + 1]):
                    d[Ki[p]] -= a * Kx[p]
                for p in range(Qp[i], Qp[i + 1]):
                    j = Qi[p]
                    old = r[j]
                    new = old - a * Qx[p]
                    r[j] = new
                    ss += new * new - old * old
                flops += 2.0 * (Kp[i + 1] - Kp[i]) + 5.0 * (Qp[i + 1] - Qp[i])
            if steps % (32 * N) == 0:
                ss = residual(Kp, Ki, Kx, b, d, r)
                flops += 2.0 * nnz
            elif steps % N == 0:
                ss = 0.0
                for j in range(N):
                    ss += r[j] * r[j]
                flops += 2.0 * N
        return steps, flops, ss

    @jit
    def gaussian(Kp, Ki, Kx, b, d, r, tol, max_steps, seed):
        np.random.seed(seed)
        N = b.size
        nnz = Kp[N]
        tol2 = tol * tol
        s = np.empty(N)
        Ks = np.empty(N)
        ss = residual(Kp, Ki, Kx, b, d, r)
        flops = 2.0 * nnz
        steps = 0
        while True:
            if ss <= tol2:
                ss = residual(Kp, Ki, Kx, b, d, r)
                flops += 2.0 * nnz
                if ss <= tol2:
                    break
            if steps >= max_steps:
                break
            steps += 1
            for i in range(N):
                s[i] = np.random.standard_normal()
            num = 0.0
            den = 0.0
            for i in range(N):
                acc = 0.0
                for p in range(Kp[i], Kp[i + 1]):
                    acc += Kx[p] * s[Ki[p]]
                Ks[i] = acc
                num += s[i] * r[i]
                den += acc * acc
            a = num / den if den > 0.0 else 0.0
            ss = 0.0
            for i in range(N):
                d[i] -= a * Ks[i]
                acc = 0.0
                for p in range(Kp[i], Kp[i + 1]):
                    acc += Kx[p] * Ks[Ki[p]]
                r[i] -= a * acc
                ss += r[i] * r[i]
            flops += 4.0 * nnz + 10.0 * N
            if steps % 32 == 0:
                ss = residual(Kp, Ki, Kx, b, d, r)
                flops += 2.0 * nnz
        return steps, flops, ss

    _KERNELS.update(rk=rk, gaussian=gaussian, residual=residual)
    return _KERNELS


class SketchSystem:
    """A symmetric system matrix ``K`` prepared once for repeated sketch solves.

    Args:
        K: (N, N) symmetric matrix, dense ndarray or scipy.sparse.
        backend: ``"numpy"`` (numba kernels) or ``"jax"`` (a jitted ``lax.while_loop``).
    """

    def __init__(self, K, backend: str = "numpy"):
        K = sp.csr_matrix(K, dtype=np.float64)
        K.sum_duplicates()
        K.sort_indices()
        self.K = K
        self.N = K.shape[0]
        self.backend = backend
        self.rn2 = np.asarray(K.multiply(K).sum(axis=1)).ravel()
        self._Q = None
        self._ell = None
        #: seconds spent compiling JAX loops for this system (0 on numpy or when cached)
        self.compile_time = 0.0

    @property
    def Q(self):
        """$K^2$ (CSR), column ``i`` of which is the residual change of a Kaczmarz step on row ``i``."""
        if self._Q is None:
            Q = (self.K @ self.K).tocsr()
            Q.sum_duplicates()
            Q.sort_indices()
            self._Q = Q
        return self._Q

    def solve(self, b, tol: float, sketch: str = "rk", max_steps: int = 100_000, seed: int = 0):
        """Sketch-and-project from ``d = 0`` until ``||Kd - b|| <= tol``; returns ``(d, SketchInfo)``."""
        if sketch not in SKETCHES:
            raise ValueError(f"unknown sketch {sketch!r}; valid choices: {', '.join(SKETCHES)}")
        b = np.ascontiguousarray(b, dtype=np.float64)
        if self.backend == "jax":
            return self._solve_jax(b, tol, sketch, max_steps, seed)
        k = _numba_kernels()
        K = self.K
        d = np.zeros(self.N)
        r = np.empty(self.N)
        seed = int(seed) % (2**31 - 1)
        if sketch == "rk":
            Q = self.Q
            steps, flops, ss = k["rk"](K.indptr, K.indices, K.data, Q.indptr, Q.indices, Q.data,
                                       self.rn2, b, d, r, float(tol), int(max_steps), seed)
        else:
            steps, flops, ss = k["gaussian"](K.indptr, K.indices, K.data, b, d, r, float(tol),
                                             int(max_steps), seed)
        res = float(np.sqrt(max(ss, 0.0)))
        return d, SketchInfo(int(steps), float(flops), res, bool(res <= tol))

    # --- JAX ------------------------------------------------------------------------------
    def _ell_arrays(self):
        if self._ell is None:
            import jax.numpy as jnp

            def ell(A):
                A = sp.csr_matrix(A)
                counts = np.diff(A.indptr)
                w = max(int(counts.max(initial=0)), 1)
                cols = np.zeros((A.shape[0], w), dtype=np.int32)
                vals = np.zeros((A.shape[0], w))
                pos = np.arange(A.nnz) - np.repeat(A.indptr[:-1], counts)
                rows = np.repeat(np.arange(A.shape[0]), counts)
                cols[rows, pos] = A.indices
                vals[rows, pos] = A.data
                return jnp.asarray(cols), jnp.asarray(vals)

            Kc, Kv = ell(self.K)
            Qc, Qv = ell(self.Q)
            # flops of a Kaczmarz step on row i (true nonzeros, not the padded width)
            cost = 2.0 * np.diff(self.K.indptr) + 5.0 * np.diff(self.Q.indptr)
            self._ell = (Kc, Kv, Qc, Qv, jnp.asarray(self.rn2), jnp.asarray(cost))
        return self._ell

    def _solve_jax(self, b, tol, sketch, max_steps, seed):
        import jax
        import jax.numpy as jnp

        with jax.enable_x64(True):
            Kc, Kv, Qc, Qv, rn2, cost = self._ell_arrays()
            bj = jnp.asarray(b)
            d = jnp.zeros(self.N)
            r = -bj
            key = jax.random.PRNGKey(int(seed) % (2**31 - 1))
            steps, flops = 0, 0.0
            while True:
                args = (Kc, Kv, Qc, Qv, rn2, cost, bj, d, r, jnp.asarray(float(tol) ** 2),
                        jnp.asarray(int(max_steps - steps)), jax.random.fold_in(key, steps))
                ckey = (sketch,) + tuple((a.shape, str(a.dtype)) for a in args)
                if ckey not in _COMPILED:
                    t0 = time.perf_counter()
                    _COMPILED[ckey] = _jax_loops()[sketch].lower(*args).compile()
                    self.compile_time += time.perf_counter() - t0
                d, r, ss, k, fl = _COMPILED[ckey](*args)
                steps += int(k)
                flops += float(fl)
                r = _ell_matvec(Kc, Kv, d) - bj  # exact residual
                ss = float(jnp.dot(r, r))
                flops += 2.0 * self.K.nnz
                if ss <= tol**2 or steps >= max_steps:
                    break
            d = np.asarray(d)
        res = float(np.sqrt(ss))
        return d, SketchInfo(steps, flops, res, bool(res <= tol))


def _ell_matvec(cols, vals, v):
    return (vals * v[cols]).sum(axis=1)


_JAX_LOOPS: dict = {}
_COMPILED: dict = {}  # AOT-compiled loops by (sketch, argument shapes)


def _jax_loops():
    """The jitted sketch loops (built once)."""
    if _JAX_LOOPS:
        return _JAX_LOOPS
    import jax
    import jax.numpy as jnp

    @jax.jit
    def rk(Kc, Kv, Qc, Qv, rn2, cost, b, d, r, tol2, max_steps, key):
        N = b.shape[0]

        def cond(c):
            k, d, r, ss, fl = c
            return (k < max_steps) & (ss > tol2)

        def body(c):
            k, d, r, ss, fl = c
            i = jax.random.randint(jax.random.fold_in(key, k), (), 0, N)
            a = jnp.where(rn2[i] > 0, r[i] / jnp.where(rn2[i] > 0, rn2[i], 1.0), 0.0)
            d = d.at[Kc[i]].add(-a * Kv[i])
            old = r[Qc[i]]
            new = old - a * Qv[i]
            r = r.at[Qc[i]].add(-a * Qv[i])
            ss = ss + jnp.sum(new * new - old * old)
            ss = jnp.where((k + 1) % N == 0, jnp.dot(r, r), ss)
            return k + 1, d, r, ss, fl + cost[i]

        k, d, r, ss, fl = jax.lax.while_loop(cond, body, (0, d, r, jnp.dot(r, r), 0.0))
        return d, r, ss, k, fl

    @jax.jit
    def gaussian(Kc, Kv, Qc, Qv, rn2, cost, b, d, r, tol2, max_steps, key):
        N = b.shape[0]
        nnz = jnp.sum(Kv != 0)

        def cond(c):
            k, d, r, ss, fl = c
            return (k < max_steps) & (ss > tol2)

        def body(c):
            k, d, r, ss, fl = c
            s = jax.random.normal(jax.random.fold_in(key, k), (N,))
            Ks = _ell_matvec(Kc, Kv, s)
            den = jnp.dot(Ks, Ks)
            a = jnp.where(den > 0, jnp.dot(s, r) / jnp.where(den > 0, den, 1.0), 0.0)
            d = d - a * Ks
            r = r - a * _ell_matvec(Kc, Kv, Ks)
            return k + 1, d, r, jnp.dot(r, r), fl + 4.0 * nnz + 10.0 * N

        k, d, r, ss, fl = jax.lax.while_loop(cond, body, (0, d, r, jnp.dot(r, r), 0.0))
        return d, r, ss, k, fl

    _JAX_LOOPS.update(rk=rk, gaussian=gaussian)
    return _JAX_LOOPS


def exact_solve(K, b):
    """Direct solve of ``K d = b``: SuperLU (minimum-degree ordering on $K + K^\top$) for sparse
    ``K``, LAPACK LU for dense.

    Returns ``(d, info)`` with ``info`` holding the factor fill (``nnz(L) + nnz(U)``, sparse) and
    the residual norm.
    """
    b = np.asarray(b, dtype=np.float64)
    if sp.issparse(K):
        import scipy.sparse.linalg as spla

        # minimum degree on the pattern of K + K^T: K is symmetric, and this ordering fills in
        # far less than SuperLU's default (COLAMD) on KKT matrices
        lu = spla.splu(sp.csc_matrix(K), permc_spec="MMD_AT_PLUS_A")
        d = lu.solve(b)
        fill = int(lu.L.nnz + lu.U.nnz)
    else:
        d = np.linalg.solve(np.asarray(K), b)
        fill = int(np.asarray(K).size)
    res = float(np.linalg.norm(K @ d - b))
    return d, {"fill": fill, "residual": res}
