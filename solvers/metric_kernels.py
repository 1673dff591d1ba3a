r"""Compiled (numba) kernels of Project and Forget on metric constraints.

Imported only when a metric problem is solved, so ``import cvxkit`` does not load numba.

Edge variables live in a dense symmetric ``(n, n)`` float64 matrix ``x`` (zero diagonal). A cycle
constraint is stored as the node path ``p_0, p_1, ..., p_k`` (``k >= 2``) of a cycle whose
"long" edge is $(p_0, p_k)$:

$$
x_{p_0 p_k} \le \sum_{t=0}^{k-1} x_{p_t p_{t+1}} .
$$

A list of cycles is a CSR pair ``(offsets, nodes)``: cycle ``c`` is
``nodes[offsets[c]:offsets[c + 1]]``. Every kernel here touches $O(n^2)$ memory plus the list,
never an $O(n^3)$ array.
"""
from __future__ import annotations

import numba as nb
import numpy as np

_jit = nb.njit(cache=True, nogil=True)


@_jit
def floyd_warshall(dist, nxt):
    """All-pairs shortest paths in place: ``dist`` (n, n) edge lengths >= 0 in, distances out.

    ``nxt[i, j]`` ends as the node after ``i`` on a shortest ``i -> j`` path (set it to ``j``
    beforehand). $O(n^3)$ time.
    """
    n = dist.shape[0]
    for k in range(n):
        dk = dist[k]
        for i in range(n):
            dik = dist[i, k]
            if i == k or not dik < np.inf:
                continue
            di = dist[i]
            ni = nxt[i]
            nik = ni[k]
            for j in range(n):
                cand = dik + dk[j]
                if cand < di[j]:
                    di[j] = cand
                    ni[j] = nik


@_jit
def violated_cycles(x, dist, nxt, threshold):
    """Cycles ``(offsets, nodes)``: for each pair ``u < v`` with ``x[u, v] - dist[u, v] > threshold``,
    the long edge ``(u, v)`` closed by the shortest ``u -> v`` path of ``nxt``."""
    n = x.shape[0]
    count = 0
    total = 0
    for u in range(n):
        for v in range(u + 1, n):
            if x[u, v] - dist[u, v] > threshold:
                length = 1
                w = u
                while w != v:
                    w = nxt[w, v]
                    length += 1
                count += 1
                total += length
    offsets = np.empty(count + 1, np.int64)
    nodes = np.empty(total, np.int32)
    offsets[0] = 0
    c = 0
    pos = 0
    for u in range(n):
        for v in range(u + 1, n):
            if x[u, v] - dist[u, v] > threshold:
                w = u
                nodes[pos] = w
                pos += 1
                while w != v:
                    w = nxt[w, v]
                    nodes[pos] = w
                    pos += 1
                c += 1
                offsets[c] = pos
    return offsets, nodes


@_jit
def cycle_hashes(offsets, nodes):
    """A 64-bit hash of each cycle's node sequence (splitmix64 chaining), to skip duplicates."""
    m = offsets.shape[0] - 1
    out = np.empty(m, np.uint64)
    for c in range(m):
        h = np.uint64(0x9E3779B97F4A7C15)
        for t in range(offsets[c], offsets[c + 1]):
            h ^= np.uint64(nodes[t]) + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (
                h >> np.uint64(2))
            h ^= h >> np.uint64(30)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(27)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
        out[c] = h
    return out


@_jit
def project_cycles(x, winv, offsets, nodes, z):
    r"""One cyclic pass of Bregman projections with dual corrections over the listed cycles.

    For the weighted quadratic $\tfrac12 \sum w_e (x_e - d_e)^2$ and cycle ``c`` with dual
    $z_c \ge 0$: $\theta = \mathrm{slack} / \sum_{e \in c} w_e^{-1}$,
    $\gamma = \min(z_c, \theta)$, path edges $x_e \mathrel{-}= \gamma / w_e$, long edge
    $x_{uv} \mathrel{+}= \gamma / w_{uv}$, $z_c \mathrel{-}= \gamma$. Returns the largest
    change of an edge. ``x`` and ``z`` are updated in place (``x`` kept symmetric).
    """
    m = offsets.shape[0] - 1
    change = 0.0
    for c in range(m):
        s = offsets[c]
        e = offsets[c + 1]
        u = nodes[s]
        v = nodes[e - 1]
        slack = -x[u, v]
        denom = winv[u, v]
        for t in range(s, e - 1):
            a = nodes[t]
            b = nodes[t + 1]
            slack += x[a, b]
            denom += winv[a, b]
        step = min(z[c], slack / denom)
        if step != 0.0:
            for t in range(s, e - 1):
                a = nodes[t]
                b = nodes[t + 1]
                val = x[a, b] - step * winv[a, b]
                x[a, b] = val
                x[b, a] = val
            val = x[u, v] + step * winv[u, v]
            x[u, v] = val
            x[v, u] = val
            z[c] -= step
            change = max(change, abs(step) * winv[u, v])
    return change


@_jit
def cycle_dual_load(n, offsets, nodes, z):
    r"""$S = \sum_c z_c a_c$ as an (n, n) upper-triangular matrix: $+z_c$ on each long edge,
    $-z_c$ on each path edge (the constraint normals weighted by their duals)."""
    S = np.zeros((n, n))
    m = offsets.shape[0] - 1
    for c in range(m):
        s = offsets[c]
        e = offsets[c + 1]
        u = nodes[s]
        v = nodes[e - 1]
        S[min(u, v), max(u, v)] += z[c]
        for t in range(s, e - 1):
            a = nodes[t]
            b = nodes[t + 1]
            S[min(a, b), max(a, b)] -= z[c]
    return S


@_jit
def max_triangle_violation(x):
    r"""$\max_{i, j, k} x_{ij} - x_{ik} - x_{kj}$ (0 for a metric), in $O(n^3)$ time and
    $O(n^2)$ memory."""
    n = x.shape[0]
    rows = np.full(n, -np.inf)
    for i in range(n):
        xi = x[i]
        best = -np.inf
        for j in range(i + 1, n):
            xj = x[j]
            shortest = np.inf
            for k in range(n):
                s = xi[k] + xj[k]
                if s < shortest:
                    shortest = s
            best = max(best, xi[j] - shortest)
        rows[i] = best
    return rows.max() if n > 1 else 0.0
