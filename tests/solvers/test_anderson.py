"""Anderson acceleration of the ADMM iterations (`cvxkit.solvers.anderson`)."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from cvxkit.solvers import anderson


class S(NamedTuple):
    x: Any
    z: Any
    y: Any
    rho: Any
    rho_vec: Any
    k: Any


def linear_map(seed=0, n=6, rate=0.99):
    """A slow linear contraction w -> M w + c on (x, z, y / rho) and its fixed point."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((3 * n, 3 * n)))
    M = Q @ np.diag(np.linspace(0.1, rate, 3 * n)) @ Q.T
    c = rng.standard_normal(3 * n)
    return M, c, np.linalg.solve(np.eye(3 * n) - M, c)


def advance(M, c, n):
    def run(s, k):
        w = anderson._pack(s)
        for _ in range(k):
            w = M @ w + c
        return anderson._unpack(s, w)
    return run


def test_extrapolation_reaches_the_fixed_point_much_sooner():
    M, c, w_star = linear_map()
    s0 = S(np.zeros(6), np.zeros(6), np.zeros(6), 0.5, np.full(6, 0.5), 0)
    mem = anderson.Memory(10, 5)
    s = anderson.iterations(advance(M, c, 6), s0, 100, mem)
    plain = advance(M, c, 6)(s0, 100)
    err = np.linalg.norm(anderson._pack(s) - w_star)
    err_plain = np.linalg.norm(anderson._pack(plain) - w_star)
    assert s.k == 100 and mem.accepted > 5
    assert err < 1e-8 * np.linalg.norm(w_star) and err_plain > 1e-2 * np.linalg.norm(w_star)


def test_a_rejected_extrapolation_returns_to_the_plain_iterate():
    """A map whose residual grows from the extrapolated point: the safeguard undoes the step
    and clears the memory; the last iterate is then a plain one."""
    M, c, _ = linear_map(rate=0.5)
    calls = []

    def bad(s, k):  # plain steps, except from any point the memory produced
        t = advance(M, c, 6)(s, k)
        calls.append(k)
        if mem.plain is not None and s.x is not mem.plain.x and len(calls) > 2:
            return t._replace(x=t.x + 1e3)  # a much larger residual
        return t

    s0 = S(np.zeros(6), np.zeros(6), np.zeros(6), 0.5, np.full(6, 0.5), 0)
    mem = anderson.Memory(10, 5)
    s = anderson.iterations(bad, s0, 20, mem)
    assert mem.rejected >= 1 and np.abs(s.x).max() < 1e2


def test_a_new_penalty_clears_the_memory():
    M, c, _ = linear_map()
    s0 = S(np.zeros(6), np.zeros(6), np.zeros(6), 0.5, np.full(6, 0.5), 0)
    mem = anderson.Memory(10, 5)
    s = anderson.iterations(advance(M, c, 6), s0, 20, mem)
    assert len(mem.G) == 4
    anderson.iterations(advance(M, c, 6), s._replace(rho=1.0, rho_vec=np.full(6, 1.0)), 5, mem)
    assert len(mem.G) == 1 and mem.rho == 1.0
