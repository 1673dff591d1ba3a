r"""Anderson acceleration of the ADMM iteration (numpy back end).

A chunk of $p$ ADMM iterations (``interval``; `cvxkit.solvers.admm.iterate`) is a map
$w \mapsto T(w)$ of the iterates $w = (x, z, \rho^{-1}\circ y)$ (the duals in the units of $z$),
and a solution is a fixed point. Anderson acceleration (type II: Walker & Ni, "Anderson
acceleration for fixed-point iterations", SIAM J. Numer. Anal. 2011; applied to ADMM-type
splittings by SCS 3, O'Donoghue, "Operator splitting for a homogeneous embedding of the linear
complementarity problem", SIOPT 2021, and COSMO, Garstka, Cannon & Goulart, JOTA 2021)
extrapolates from the last ``memory`` chunks: with samples $w_j$, $g_j = T(w_j)$, residuals
$f_j = g_j - w_j$ and the differences $\Delta G$, $\Delta F$ of consecutive samples (one
column each),

$$
\gamma = \arg\min_\gamma \lVert f_k - \Delta F\gamma\rVert_2^2 + \lambda\lVert\gamma\rVert_2^2,
\qquad w_{k+1} = g_k - \Delta G\,\gamma,
$$

with $\lambda = 10^{-8}\lVert\Delta F\rVert_F^2$. **Safeguard** (as SCS's): a chunk started from
an extrapolated point is kept only if its residual $\lVert T(w_{k+1}) - w_{k+1}\rVert$ is at most
$\lVert f_k\rVert$; otherwise the iterates go back to $g_k$ (that chunk's iterations are spent)
and the memory is cleared. The memory is also cleared when the penalty $\rho$ changes ($T$
changes with it) and after a partial chunk. Checks and certificates see plain ADMM iterates
only: extrapolation happens at the start of a chunk, never after the last one of a block, so
``dx``, ``dy`` are the plain steps of its last iteration.
"""
from __future__ import annotations

import numpy as np

#: the Tikhonov weight of the least-squares problem, relative to ||dF||_F^2
REGULARIZATION = 1e-8
#: the number of samples the methods keep (SCS's default lookback)
MEMORY = 10


class Memory:
    """The mutable memory of one solve: the last samples ``(g, f)``, the plain state behind
    the last one, the penalty they were taken at, and the counts of extrapolations kept
    (``accepted``) and undone (``rejected``)."""

    def __init__(self, memory: int = MEMORY, interval: int = 5):
        self.memory, self.interval = int(memory), int(interval)
        self.G: list = []
        self.F: list = []
        self.plain = None  # the state whose packed iterates are G[-1], while it is current
        self.rho = None
        self.accepted = self.rejected = 0

    def counts(self) -> dict:
        return {"accepted": self.accepted, "rejected": self.rejected}

    def clear(self):
        self.G.clear()
        self.F.clear()
        self.plain = None

    def add(self, g, f, state):
        self.G.append(g)
        self.F.append(f)
        if len(self.G) > self.memory + 1:
            del self.G[0], self.F[0]
        self.plain = state

    def extrapolate(self):
        """The extrapolated point from the samples, or ``None`` (fewer than two samples, or
        a singular least-squares problem)."""
        if len(self.G) < 2:
            return None
        F = np.asarray(self.F)
        dF = np.diff(F, axis=0)  # (k, N)
        M = dF @ dF.T
        M[np.diag_indices_from(M)] += REGULARIZATION * np.trace(M) + 1e-300
        try:
            gamma = np.linalg.solve(M, dF @ F[-1])
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(gamma)):
            return None
        return self.G[-1] - gamma @ np.diff(np.asarray(self.G), axis=0)


def _pack(s):
    return np.concatenate((s.x, s.z, s.y / s.rho_vec))


def _unpack(s, w):
    nx, nz = s.x.shape[0], s.z.shape[0]
    return s._replace(x=w[:nx], z=w[nx:nx + nz], y=w[nx + nz:] * s.rho_vec)


def iterations(advance, s, n: int, mem: Memory):
    """``n`` ADMM iterations with Anderson acceleration by ``mem``; ``advance(s, c)`` does
    ``c`` plain iterations, the last one tracked (`cvxkit.solvers.admm.iterations`).
    Returns the state after them with ``k += n``."""
    if mem.rho != float(s.rho):
        mem.clear()
        mem.rho = float(s.rho)
    k0, done = s.k, 0
    while done < n:
        c = min(mem.interval, n - done)
        if c < mem.interval:  # a partial chunk: plain, and the samples no longer follow on
            s, done = advance(s, c), done + c
            mem.clear()
            continue
        extrapolated = False
        if mem.plain is not None and s.x is mem.plain.x:  # (checks replace the state)
            new = mem.extrapolate()
            if new is not None:
                s, extrapolated = _unpack(s, new), True
        w = _pack(s)
        t = advance(s, c)
        done += c
        g = _pack(t)
        f = g - w
        if extrapolated:
            if np.linalg.norm(f) > np.linalg.norm(mem.F[-1]):
                mem.rejected += 1
                s = mem.plain
                mem.clear()
                continue
            mem.accepted += 1
        mem.add(g, f, t)
        s = t
    return s._replace(k=k0 + n)
