"""``cvxkit demo``: every implemented family, each method and backend, checked against its reference.

Each case builds a small seeded instance, solves it, compares the answer with the family's
reference (CVXPY: HiGHS for LPs, Clarabel otherwise) through ``Problem.check`` and prints one table row.
"""
from __future__ import annotations

from typing import Callable, Iterator, NamedTuple

import numpy as np


class Case(NamedTuple):
    family: str
    size: str
    problem: object
    method: str
    backend: str
    options: dict
    rtol: float
    atol: float


def _clouds(n: int, m: int, seed: int):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((m, 2)) + [0.3, 0.0]
    C = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    a = rng.random(n) + 0.5
    b = rng.random(m) + 0.5
    return a / a.sum(), b / b.sum(), C


def transport_cases() -> Iterator[Case]:
    from cvxkit.problems import OptimalTransport, TransportPolytopeProblem

    a, b, C = _clouds(40, 50, 0)
    size = "40x50"
    yield Case("transport (exact)", size, OptimalTransport(a, b, C), "network_simplex", "numpy",
               {}, 1e-9, 1e-9)
    ent = OptimalTransport(a, b, C, reg=0.05)
    for backend in ("numpy", "jax"):
        yield Case("transport (entropic)", size, ent, "sinkhorn", backend, {"tol": 1e-10},
                   1e-7, 1e-9)
    # Mirror Sinkhorn: an O(1/sqrt(T)) first-order method; stops on its certified gap <= 2e-3
    a, b, C = _clouds(20, 25, 1)
    lin = TransportPolytopeProblem.linear(a, b, C)
    for backend in ("numpy", "jax"):
        yield Case("transport polytope (linear)", "20x25", lin, "mirror_sinkhorn", backend,
                   {"tol": 2e-3, "max_iter": 200_000}, 2e-2, 1e-12)


def metric_cases() -> Iterator[Case]:
    from cvxkit.problems import CorrelationClustering, MetricNearness

    rng = np.random.default_rng(0)
    D = np.triu(rng.random((25, 25)), 1)
    D = D + D.T
    l2 = MetricNearness(D)
    for backend in ("numpy", "jax"):
        yield Case("metric nearness (L2)", "n=25", l2, "project_forget", backend,
                   {"tol": 1e-8}, 1e-7, 1e-8)
    D = np.triu(rng.random((10, 10)), 1)
    yield Case("metric nearness (L1)", "n=10", MetricNearness(D + D.T, norm="l1"),
               "project_forget", "numpy", {"tol": 1e-6, "max_iter": 20_000}, 1e-5, 1e-6)
    S = np.triu(rng.random((25, 25)) < 0.4, 1).astype(float)
    S = S + S.T
    cc = CorrelationClustering.from_graph(S)
    yield Case("correlation clustering LP", "n=25", cc, "project_forget", "numpy",
               {"tol": 1e-7, "max_iter": 20_000}, 1e-5, 1e-6)


FAMILIES: list[Callable[[], Iterator[Case]]] = [transport_cases, metric_cases]


def qp_cases() -> Iterator[Case]:
    """Seeded QPs by OSQP's ADMM at eps = 1e-8 (the gap to Clarabel is then ~1e-8 relative),
    one polished at a loose eps, and a batch of 16 solved in one JAX call."""
    from cvxkit.problems import QuadraticProgram

    def random_qp(rng, n, m, n_eq):
        M = rng.standard_normal((n, n))
        P, q = M @ M.T / n, rng.standard_normal(n)
        A = rng.standard_normal((m, n))
        l, u = -rng.random(m), rng.random(m)
        x0 = 0.1 * rng.standard_normal(n)
        l[:n_eq] = u[:n_eq] = A[:n_eq] @ x0
        l[n_eq:] = np.minimum(l[n_eq:], A[n_eq:] @ x0 - 0.1)
        u[n_eq:] = np.maximum(u[n_eq:], A[n_eq:] @ x0 + 0.1)
        return P, q, A, l, u

    rng = np.random.default_rng(0)
    qp = QuadraticProgram(*random_qp(rng, 20, 30, 5))
    for backend in ("numpy", "jax"):
        yield Case("qp (random, 5 equalities)", "20x30", qp, "admm", backend, {"tol": 1e-8},
                   1e-6, 1e-7)
    yield Case("qp (polished)", "20x30", qp, "admm", "numpy", {"tol": 1e-4, "polish": True},
               1e-9, 1e-9)
    batch = [random_qp(rng, 10, 20, 2) for _ in range(16)]
    qpb = QuadraticProgram(*(np.stack([b[k] for b in batch]) for k in range(5)))
    yield Case("qp (batch of 16)", "16x10x20", qpb, "admm", "jax", {"tol": 1e-8}, 1e-6, 1e-7)


FAMILIES.append(qp_cases)


def nlp_cases() -> Iterator[Case]:
    """Hock-Schittkowski problems by al_sketch (exact augmented Lagrangian + randomized Kaczmarz
    on the Newton-KKT system), checked against the published optimum f*."""
    from cvxkit.problems.hock_schittkowski import hs_problem

    for k, backend, sketch in ((6, "numpy", "rk"), (40, "numpy", "rk"), (77, "numpy", "rk"),
                               (77, "numpy", "exact"), (28, "jax", "rk")):
        prob = hs_problem(k)
        yield Case(f"nlp: HS{k} ({sketch})", f"n={prob.n},m={prob.m}", prob, "al_sketch", backend,
                   {"tol": 1e-8, "sketch": sketch}, 1e-6, 1e-6)


FAMILIES.append(nlp_cases)


def lp_cases() -> Iterator[Case]:
    """A seeded sparse LP (feasible and bounded by construction) by the restarted Halpern PDHG at
    tol = 1e-8, on numpy and JAX, checked against HiGHS (scipy.optimize.linprog)."""
    import scipy.sparse as sp

    from cvxkit.problems import LinearProgram

    rng = np.random.default_rng(0)
    n, m_ub, m_eq = 60, 40, 10
    A_ub = sp.random(m_ub, n, density=0.2, random_state=rng, format="csr")
    A_eq = sp.random(m_eq, n, density=0.2, random_state=rng, format="csr")
    x0 = rng.random(n)
    c = -A_ub.T @ rng.random(m_ub) + A_eq.T @ rng.standard_normal(m_eq) + rng.random(n)
    lp = LinearProgram(c, A_ub, A_ub @ x0 + rng.random(m_ub), A_eq, A_eq @ x0, lb=0.0, ub=3.0)
    for backend in ("numpy", "jax"):
        yield Case("lp (random sparse)", f"{m_ub + m_eq}x{n}", lp, "halpern_pdhg", backend,
                   {"tol": 1e-8}, 1e-6, 1e-6)


FAMILIES.append(lp_cases)


def finite_sum_cases() -> Iterator[Case]:
    """A finite-sum matrix game (16 components, 5x6 strategies) by variance-reduced Halpern
    (Cai-Alacaoglu-Diakonikolas, Alg. 2, as published: no restarts, tol 2e-3; and with anchor
    restarts, tol 1e-6) and by deterministic Halpern on the extragradient map, against HiGHS.
    The objective is the row player's guaranteed loss; max viol. includes the duality gap."""
    from cvxkit.problems.finite_sum import FiniteSumMatrixGame, random_game

    game = FiniteSumMatrixGame(random_game(16, 5, 6, noise=0.2, seed=0))
    size = "16x5x6"
    yield Case("finite-sum game", size, game, "vr_halpern", "numpy", {"tol": 2e-3}, 1e-1, 2e-3)
    for backend in ("numpy", "jax"):
        yield Case("finite-sum game (restarts)", size, game, "vr_halpern", backend,
                   {"tol": 1e-6, "restart_factor": 0.2}, 1e-5, 1e-5)
    yield Case("finite-sum game (restarts)", size, game, "halpern", "numpy",
               {"tol": 1e-6, "restart_factor": 0.2}, 1e-5, 1e-5)


FAMILIES.append(finite_sum_cases)


def dual_proxy_cases() -> Iterator[Case]:
    """Dual Lagrangian Learning: a proxy trained for a few seconds on 512 sampled parameters
    (the paper's knapsack LP and production-planning SOCP); its certified lower bound at a
    held-out theta must lie below Clarabel's optimum and within rtol of it (check's gap is
    (OPT - bound) / |OPT|; max viol. is the dual infeasibility of the completed duals)."""
    from cvxkit.problems.parametric_conic import multidimensional_knapsack, production_planning

    opts = {"epochs": 20, "batch_size": 64, "lr": 1e-2, "hidden": (64, 64)}
    yield Case("dual proxy: knapsack LP", "5x50", multidimensional_knapsack(5, 50, seed=3),
               "dual_proxy", "jax", opts, 5e-2, 1e-9)
    yield Case("dual proxy: production SOCP", "n=10", production_planning(10, seed=3),
               "dual_proxy", "jax", opts, 5e-2, 1e-9)


FAMILIES.append(dual_proxy_cases)


def bilevel_cases() -> Iterator[Case]:
    """Validation-loss hyperparameter tuning (penalties lambda = exp(x)). The check is local, at
    the returned x: the lower level against CVXPY (reference = f(x, y_cvxpy)) and the
    hypergradient against finite differences; LV-HBA's y is only approximately optimal."""
    from cvxkit.problems.bilevel import HyperparameterTuning

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    t = X @ rng.standard_normal(6) + 2.0 * rng.standard_normal(40)
    ridge = HyperparameterTuning.from_data(X, t)
    for backend in ("numpy", "jax"):
        yield Case("bilevel: ridge (1 penalty)", "28x6", ridge, "implicit_diff", backend,
                   {"tol": 1e-8}, 1e-8, 1e-8)
    yield Case("bilevel: ridge (1 penalty)", "28x6", ridge, "bilevel_penalty", "jax",
               {"tol": 1e-8, "sigma": 1e-4}, 1e-8, 1e-8)
    # single loop, sublinear: stops at tol 1e-4 with an approximately lower-optimal y
    yield Case("bilevel: ridge (1 penalty)", "28x6", ridge, "lv_hba", "jax",
               {"tol": 1e-4, "max_iter": 100_000, "check_every": 1000}, 1e-2, 1e-4)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5))
    t = X @ rng.standard_normal(5) + 2.0 * rng.standard_normal(40)
    enet = HyperparameterTuning.from_data(X, t, model="elastic_net")
    yield Case("bilevel: elastic net", "28x5", enet, "implicit_diff", "jax", {"tol": 1e-6},
               1e-8, 1e-8)


FAMILIES.append(bilevel_cases)


def convex_relu_cases() -> Iterator[Case]:
    """Convex ReLU training: all 11 patterns of a 1-D regression (Pilanci-Ergen; optimum
    0.3110486495) by ADMM on both back ends, the gated group lasso by BCD, and robust hinge
    training (eps = 0.05) by ADMM; violations are cone constraints."""
    from cvxkit.problems import ConvexReLU

    x = np.array([-2, -1, 0, 1, 2, 3.0])
    X, y = np.c_[x, np.ones(6)], np.array([1, 0, 0.5, 0, 1, 2.0])
    t = np.arange(-2.5, 3, 1.0)
    G = np.concatenate([np.c_[np.ones(6), -t].T, np.c_[-np.ones(5), t[1:]].T], axis=1)
    relu = ConvexReLU(X, y, beta=0.1, gates=G)
    for backend in ("numpy", "jax"):
        yield Case("convex relu (all patterns)", "6x2,P=11", relu, "relu_admm", backend,
                   {"tol": 1e-8}, 1e-6, 1e-6)
    rng = np.random.default_rng(0)
    Xg = np.c_[rng.standard_normal((60, 4)), np.ones(60)]
    yg = np.maximum(Xg[:, 0], 0) - np.maximum(Xg[:, 1], 0) + 0.1 * rng.standard_normal(60)
    gated = ConvexReLU(Xg, yg, n_patterns=20, beta=0.5, variant="gated")
    yield Case("gated relu (group lasso)", f"60x5,P={gated.P}", gated, "bcd", "numpy",
               {"tol": 1e-9}, 1e-7, 1e-9)
    k, j = np.arange(8)[:, None], np.arange(3)[None, :]
    Xc = np.sin(1 + 0.7 * k + 1.3 * j) + 0.1 * j
    yc = np.array([1, -1, 1, 1, -1, 1, -1, -1.0])
    Gc = np.array([[1, 0, -1, 0.5], [0, 1, 1, -0.5], [1, -1, 0, 1]])
    robust = ConvexReLU(Xc, yc, beta=0.08, loss="hinge", gates=Gc, epsilon=0.05)
    yield Case("convex relu (robust, hinge)", "8x3,P=4", robust, "relu_admm", "numpy",
               {"tol": 1e-8, "max_iter": 200_000}, 1e-5, 1e-6)


FAMILIES.append(convex_relu_cases)


def run_demo(print_fn=print) -> bool:
    """Solve and check every case; print the table; return True when every check is ok."""
    cols = ("family", "method", "backend", "size", "time (s)", "compile", "objective",
            "reference", "rel. gap", "max viol.", "status", "check")
    widths = (27, 16, 8, 8, 9, 8, 16, 16, 9, 9, 10, 6)
    line = lambda vals: "  ".join(f"{v:<{w}}" for v, w in zip(vals, widths))  # noqa: E731
    print_fn(line(cols))
    print_fn("-" * (sum(widths) + 2 * len(widths)))
    all_ok = True
    for family in FAMILIES:
        for case in family():
            res = case.problem.solve(method=case.method, backend=case.backend, **case.options)
            rep = case.problem.check(res, rtol=case.rtol, atol=case.atol)
            all_ok &= rep.ok
            print_fn(line((case.family, case.method, case.backend, case.size,
                           f"{res.solve_time + res.setup_time:.4f}",
                           f"{res.compile_time:.2f}", f"{rep.objective:.10g}",
                           f"{rep.reference_objective:.10g}", f"{rep.rel_gap:.1e}",
                           f"{rep.max_violation:.1e}", rep.status.value,
                           "ok" if rep.ok else "FAIL")))
    print_fn("")
    print_fn("time: setup + solve seconds, JAX compilation apart (compile); reference: CVXPY "
             "(HiGHS for LPs, Clarabel otherwise; the published f* for nlp); rel. gap and max viol. as in "
             "Problem.check.")
    print_fn("all checks passed" if all_ok else "SOME CHECKS FAILED")
    return all_ok
