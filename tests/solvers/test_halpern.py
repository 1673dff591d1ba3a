"""Halpern iteration and variance-reduced Halpern: closed forms, CVXPY/HiGHS games, evaluation counts."""
import math

import numpy as np
import pytest

from cvxkit.problems.finite_sum import (
    FiniteSumMatrixGame,
    noisy_components,
    policeman_burglar,
    random_game,
)
from cvxkit.solvers import Status, methods
from cvxkit.solvers.halpern import (
    FiniteSumOperator,
    box_resolvent,
    forward_backward_map,
    forward_backward_residual,
    halpern,
    identity_resolvent,
    project_simplex,
    vr_halpern,
)


def rotation(theta, center):
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return lambda z: (z - center) @ R.T + center


# --- generic Halpern ----------------------------------------------------------------------
@pytest.mark.parametrize("theta", [0.3, np.pi / 2, np.pi])
def test_halpern_rotation_fixed_point_and_rate(theta, backend):
    """T = rotation about c (nonexpansive, only fixed point c): the Halpern bound
    ||z_k - T z_k|| <= 2 ||z_0 - c|| / (k + 1) holds at every iteration, and z -> c."""
    c = np.array([1.0, -2.0])
    z0 = np.array([3.0, 0.5])
    tol = 1e-5
    res = halpern(rotation(theta, c), z0, backend=backend, tol=tol, max_iter=100_000,
                  check_every=1)
    assert res.status is Status.OPTIMAL
    assert res.primal_residual <= tol
    k = res.history["iteration"]
    r = res.history["residual"]
    bound = 2 * np.linalg.norm(z0 - c) / k[1:]  # residual at iteration k is that of z_{k-1}
    assert np.all(r[1:] <= bound * (1 + 1e-12))
    # ||z_k - c|| <= ||z_k - T z_k|| / (2 sin(theta/2)) for a rotation
    assert np.linalg.norm(res.x - c) <= tol / (2 * np.sin(theta / 2)) * (1 + 1e-9)
    assert res.info["calls"] == res.iterations


def test_halpern_nearest_fixed_point_to_anchor():
    """T = projection onto a line (nonexpansive, many fixed points): Halpern converges to the
    fixed point nearest the anchor, the projection of z0 itself (T is idempotent)."""
    u = np.array([3.0, 4.0]) / 5

    def T(z):
        return u * (u @ z)

    z0 = np.array([2.0, -1.0])
    tol = 1e-4
    res = halpern(T, z0, tol=tol, max_iter=10**6)
    assert res.status is Status.OPTIMAL
    # the component along the line is P z0 exactly; the other one is the residual
    assert np.linalg.norm(res.x - u * (u @ z0)) <= tol * (1 + 1e-9)


def test_halpern_restarts_speed_up_a_contraction():
    """On a contraction (linear convergence possible), adaptive restarts need far fewer
    iterations than plain Halpern (whose rate is O(1/k))."""
    T = rotation(0.5, np.zeros(2))
    contraction = lambda z: 0.9 * T(z)  # noqa: E731
    plain = halpern(contraction, np.ones(2), tol=1e-10, max_iter=20_000)
    restarted = halpern(contraction, np.ones(2), tol=1e-10, max_iter=20_000, restart_factor=0.2)
    assert plain.status is Status.MAX_ITER and plain.primal_residual > 1e-6
    assert restarted.status is Status.OPTIMAL and restarted.info["restarts"] > 0
    assert restarted.iterations < 1000
    # a 0.9-contraction: ||z - 0|| <= ||z - Tz|| / (1 - 0.9)
    assert np.abs(restarted.x).max() <= 1e-9


def test_halpern_max_iter_is_honest():
    res = halpern(rotation(0.01, np.zeros(2)), np.ones(2), tol=1e-12, max_iter=50)
    assert res.status is Status.MAX_ITER and res.primal_residual > 1e-12


# --- finite-sum operators and PAGE (Algorithm 1) ---------------------------------------------
def least_squares(n=40, d=4, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(d)
    a = base + 0.3 * rng.standard_normal((n, d))  # alike rows: L close to L_F
    a += 0.5 * np.eye(d)[rng.integers(0, d, n)]
    b = rng.standard_normal(n)
    op = FiniteSumOperator.from_matrices(a[:, :, None] * a[:, None, :], -a * b[:, None])
    return a, b, op


def test_from_matrices_full_and_batch():
    a, b, op = least_squares()
    z = np.arange(4.0)
    np.testing.assert_allclose(op.full(z), a.T @ (a @ z - b) / len(b), atol=1e-12)
    idx = np.array([3, 7, 7])
    expect = np.mean([a[i] * (a[i] @ z - b[i]) for i in idx], axis=0)
    np.testing.assert_allclose(op.batch(z, idx), expect, atol=1e-12)
    assert op.lipschitz_full <= op.lipschitz


@pytest.mark.parametrize("backend, tol, restart", [("numpy", 1e-4, 0.0),
                                                    ("numpy", 1e-9, 0.2), ("jax", 1e-9, 0.2)])
def test_page_least_squares_matches_lstsq(backend, tol, restart):
    """As published (O(1/k)) at a loose tol; with restarts (linear rate) at a tight one."""
    a, b, op = least_squares()
    res = vr_halpern(op, np.zeros(4), variant="page", tol=tol, max_iter=100_000, backend=backend,
                     restart_factor=restart)
    assert res.status is Status.OPTIMAL
    assert (res.info["restarts"] > 0) == (restart > 0)
    assert forward_backward_residual(op, identity_resolvent, res.x) <= tol * (1 + 1e-9)
    x_ls = np.linalg.lstsq(a, b, rcond=None)[0]
    # F(x) = A^T(Ax - b)/n is strongly monotone with modulus mu = lambda_min(A^T A / n)
    mu = np.linalg.eigvalsh(a.T @ a / len(b)).min()
    assert np.linalg.norm(res.x - x_ls) <= tol / mu * (1 + 1e-6)


def test_page_box_constrained_least_squares_matches_cvxpy():
    import cvxpy as cp

    a, b, op = least_squares(seed=1)
    n = len(b)
    x = cp.Variable(4)
    cp.Problem(cp.Minimize(cp.sum_squares(a @ x - b) / (2 * n)), [cp.abs(x) <= 0.2]).solve(
        solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    tol = 1e-8
    res = vr_halpern(op, np.zeros(4), box_resolvent(-0.2, 0.2), variant="page", tol=tol,
                     max_iter=100_000, restart_factor=0.2)
    assert res.status is Status.OPTIMAL
    mu = np.linalg.eigvalsh(a.T @ a / n).min()
    assert np.linalg.norm(res.x - x.value) <= tol / mu + 1e-7


def test_page_counts_evaluations_exactly():
    """Count F_i calls through the component function itself (numpy back end)."""
    a, b, op0 = least_squares()
    counter = {"n": 0}

    def component(data, z, idx):
        counter["n"] += len(idx)
        return op0.component(data, z, idx)

    op = FiniteSumOperator(component, op0.n, op0.dim, op0.data, lipschitz=op0.lipschitz)
    res = vr_halpern(op, np.zeros(4), variant="page", tol=1e-12, max_iter=500)
    assert res.status is Status.MAX_ITER
    # all calls = algorithm's evaluations + residual checks (n each) + one validation pass
    assert counter["n"] == res.info["evals"] + res.info["residual_evals"] + op.n
    b_ = res.info["batch_size"]
    assert b_ == math.isqrt(op.n)
    # iterations 0 and 1 are full passes; every other costs n or 2b
    rest = res.info["evals"] - 2 * op.n
    assert rest >= 2 * b_ * (res.iterations - 2) and (rest - 2 * b_ * (res.iterations - 2)) % (
        op.n - 2 * b_) == 0


def test_forb_counts_evaluations_exactly():
    A = random_game(12, 3, 4, seed=2)
    game = FiniteSumMatrixGame(A)
    op0, J = game.operator()
    counter = {"n": 0}

    def component(data, z, idx):
        counter["n"] += len(idx)
        return op0.component(data, z, idx)

    op = FiniteSumOperator(component, op0.n, op0.dim, op0.data, lipschitz=op0.lipschitz)
    res = vr_halpern(op, game.start(), J, variant="forb", tol=1e-12, max_iter=7)
    assert counter["n"] == res.info["evals"] + res.info["residual_evals"] + op.n
    # outer iteration k runs M_k = max(1, floor(0.05 n ln(k + 2))) inner steps of 2 evaluations,
    # one full pass at its start and one per snapshot move
    steps = sum(max(1, math.floor(0.05 * op.n * math.log(k + 2))) for k in range(7))
    extra = res.info["evals"] - 2 * steps - 7 * op.n
    assert extra >= 0 and extra % op.n == 0


# --- the finite-sum matrix game against HiGHS ------------------------------------------------
@pytest.fixture(scope="module")
def game():
    return FiniteSumMatrixGame(random_game(16, 5, 6, noise=0.2, seed=0))


@pytest.mark.parametrize("method", ["vr_halpern", "halpern"])
def test_game_matches_highs(game, method, backend):
    """With anchor restarts (linear convergence on this sharp problem): value and strategies."""
    ref = game.reference()
    assert ref.status is Status.OPTIMAL
    tol = 1e-6
    res = game.solve(method=method, backend=backend, tol=tol, max_iter=20_000,
                     restart_factor=0.2)
    assert res.status is Status.OPTIMAL, res
    assert res.info["restarts"] > 0
    rep = game.check(res, rtol=1e-5, atol=10 * tol)
    assert rep.ok, rep
    assert abs(res.objective - ref.objective) <= 10 * tol
    np.testing.assert_allclose(res.x, ref.x, atol=10 * tol)


@pytest.mark.parametrize("method", ["vr_halpern", "halpern"])
def test_game_without_restarts_as_in_the_paper(game, method):
    """The paper's methods (no restarts), O(1/k): a loose tolerance."""
    ref = game.reference()
    tol = 1e-3
    res = game.solve(method=method, tol=tol, max_iter=20_000)
    assert res.status is Status.OPTIMAL and res.info["restarts"] == 0
    assert res.info["operator_residual"] <= 1.5 * tol
    rep = game.check(res, rtol=1.0, atol=tol)
    assert rep.ok, rep
    assert abs(res.objective - ref.objective) <= tol
    np.testing.assert_allclose(res.x, ref.x, atol=3 * tol)


def test_game_evals_budget_stops_with_max_iter(game):
    res = game.solve(method="vr_halpern", tol=1e-12, max_evals=5_000)
    assert res.status is Status.MAX_ITER
    assert 5_000 <= res.info["evals"] < 5_000 + 3 * game.n * 10


def test_game_runs_are_seeded(game):
    r1 = game.solve(method="vr_halpern", tol=1e-2, seed=3)
    r2 = game.solve(method="vr_halpern", tol=1e-2, seed=3)
    np.testing.assert_array_equal(r1.x, r2.x)
    assert r1.info["evals"] == r2.info["evals"]
    r3 = game.solve(method="vr_halpern", tol=1e-2, seed=4)
    assert r3.info["evals"] != r1.info["evals"] or not np.array_equal(r3.x, r1.x)


def test_policeman_burglar_generator():
    M = policeman_burglar(6, seed=1)
    assert M.shape == (6, 6) and np.all(np.diag(M) == 0) and (M >= 0).all()
    A = noisy_components(M, 8, noise=0.1)
    np.testing.assert_allclose(A.mean(axis=0), M, atol=1e-12)


def test_project_simplex():
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = 3 * rng.standard_normal(7)
        p = project_simplex(v)
        assert p.min() >= 0 and abs(p.sum() - 1) < 1e-12
        # optimality: v - p = tau on the support, <= tau off it
        tau = (v - p)[p > 0]
        assert np.ptp(tau) < 1e-12 and np.all((v - p)[p == 0] <= tau[0] + 1e-12)


def test_registry():
    assert methods()["halpern"].backends == ("numpy", "jax")
    assert methods()["vr_halpern"].backends == ("numpy", "jax")


# --- bad input ---------------------------------------------------------------------------------
def test_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        FiniteSumMatrixGame(np.full((2, 3, 3), np.nan))
    with pytest.raises(ValueError, match="shape"):
        FiniteSumMatrixGame(np.ones((2, 3, 3, 1)))
    a, b, op = least_squares()
    with pytest.raises(ValueError, match="shape"):
        vr_halpern(op, np.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        vr_halpern(op, np.array([0, np.nan, 0, 0]))
    with pytest.raises(ValueError, match="variant"):
        vr_halpern(op, np.zeros(4), variant="svrg")
    with pytest.raises(ValueError, match="batch_size"):
        vr_halpern(op, np.zeros(4), batch_size=10_000)
    with pytest.raises(ValueError, match="eta"):
        vr_halpern(op, np.zeros(4), eta=-1.0)
    with pytest.raises(ValueError, match="restart_factor"):
        halpern(lambda z: z, np.zeros(2), restart_factor=1.5)
    with pytest.raises(ValueError, match="shape"):
        halpern(lambda z: z[:1], np.zeros(2))
    with pytest.raises(ValueError, match="T\\(z0\\) failed"):
        halpern(lambda z: z @ np.ones((3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="lipschitz"):
        vr_halpern(FiniteSumOperator(op.component, op.n, op.dim, op.data), np.zeros(4))
    with pytest.raises(ValueError, match="n \\(number"):
        FiniteSumOperator(op.component, 0, 4)
    with pytest.raises(ValueError, match="unknown option"):
        FiniteSumMatrixGame(np.ones((2, 2, 2))).solve(method="halpern", eta=1.0)
    with pytest.raises(ValueError, match="shape"):
        FiniteSumOperator.from_matrices(np.ones((2, 3, 4)))


def test_forward_backward_map_is_halpern_operator():
    """Deterministic Halpern on the forward-backward map solves the least-squares problem."""
    a, b, op = least_squares()
    eta = 1.0 / op.lipschitz_full
    T = forward_backward_map(op, identity_resolvent, eta)
    res = halpern(T, np.zeros(4), data=op.data, tol=1e-7, residual_scale=eta, max_iter=10**5,
                  evals_per_call=op.n, restart_factor=0.2)
    assert res.status is Status.OPTIMAL and res.info["evals"] == res.info["calls"] * op.n
    np.testing.assert_allclose(res.x, np.linalg.lstsq(a, b, rcond=None)[0], atol=1e-5)


@pytest.mark.slow
def test_vr_needs_fewer_evaluations_than_deterministic():
    """The paper's claim on a game with alike components (L ~ L_F), n = 100: VR-Halpern reaches
    the operator residual 1e-3 with fewer component evaluations (measured: 1.7x fewer)."""
    game = FiniteSumMatrixGame(random_game(100, 20, 20, noise=0.1, seed=0))
    target = 1e-3
    vr = game.solve(method="vr_halpern", tol=target, max_iter=10**6)
    assert vr.status is Status.OPTIMAL
    det = game.solve(method="halpern", tol=1e-14, max_iter=2000, check_every=1)
    h = det.history
    det_evals = h["calls"][np.nonzero(h["residual"] <= target)[0][0]] * 2 * game.n
    assert vr.info["evals"] * 1.3 < det_evals


def test_inner_factor_and_bad_values():
    game = FiniteSumMatrixGame(random_game(12, 3, 4, seed=2))
    r1 = game.solve(method="vr_halpern", tol=1e-12, max_iter=3, inner_factor=1.0)
    r2 = game.solve(method="vr_halpern", tol=1e-12, max_iter=3)
    assert r1.info["evals"] > r2.info["evals"] and r1.info["inner_factor"] == 1.0
    with pytest.raises(ValueError, match="inner_factor"):
        game.solve(method="vr_halpern", inner_factor=0.0)
    with pytest.raises(ValueError, match="max_evals"):
        game.solve(method="vr_halpern", max_evals=-1)


# --- issue 17: relative tolerances, validation, warm starts -----------------------------------
@pytest.mark.parametrize("k", [-12, -9, 0, 9])
@pytest.mark.parametrize("method", ["vr_halpern", "halpern"])
def test_game_scale_invariance(method, k):
    """Payoffs x 10^k: the same status, strategies and iterations, the value x 10^k. (Payoffs
    x 1e-12 used to stop as "optimal" at iteration 0 with a duality gap twice the value: the
    tolerance was absolute.)"""
    A = random_game(6, 3, 4, noise=0.2, seed=5)
    opts = dict(method=method, tol=1e-7, max_iter=5_000, restart_factor=0.2)
    base = FiniteSumMatrixGame(A).solve(**opts)
    game = FiniteSumMatrixGame(A * 10.0**k)
    res = game.solve(**opts)
    assert res.status is base.status is Status.OPTIMAL
    assert res.iterations == base.iterations
    np.testing.assert_allclose(res.x, base.x, atol=1e-9)
    ref = game.reference()
    assert abs(ref.objective - FiniteSumMatrixGame(A).reference().objective * 10.0**k) <= (
        1e-8 * 10.0**k)
    assert abs(res.objective - ref.objective) <= res.info["gap_bound"]
    assert 0 <= game.duality_gap(res.x) <= res.info["gap_bound"]
    assert res.info["relative_residual"] <= 1e-7
    assert game.check(res, rtol=1e-5, atol=1e-6).ok


def test_game_tiny_payoffs_do_not_stop_at_iteration_zero():
    A = random_game(8, 3, 4, noise=0.2, seed=0) * 1e-12
    game = FiniteSumMatrixGame(A)
    res = game.solve(method="halpern", tol=1e-6, max_iter=20_000, restart_factor=0.2)
    assert res.status is Status.OPTIMAL and res.iterations > 1
    assert game.duality_gap(res.x) <= 1e-5 * game.payoff_scale
    assert abs(res.objective - game.reference().objective) <= 1e-5 * game.payoff_scale


@pytest.mark.parametrize("A, match", [
    (np.ones((2, 3, 3)) * (1 + 1j), "real"),
    ([[1.0, 2.0], [3.0]], "ragged"),
    (np.zeros((0, 3)), "non-empty"),
    (np.zeros((2, 0, 3)), "non-empty"),
    (np.array([[1.0, None], [0.0, 1.0]]), "numeric"),
    ("payoff", "numeric"),
])
def test_game_bad_payoffs(A, match):
    with pytest.raises(ValueError, match=match):
        FiniteSumMatrixGame(A)


def test_game_sparse_payoff_is_one_component():
    import scipy.sparse as sp

    M = random_game(1, 3, 4, seed=1)[0]
    for fmt in ("csr", "coo", "dok", "lil", "dia", "bsr"):
        game = FiniteSumMatrixGame(sp.csr_matrix(M).asformat(fmt))
        np.testing.assert_array_equal(game.A_bar, M)


@pytest.mark.parametrize("method", ["vr_halpern", "halpern"])
@pytest.mark.parametrize("ws, match", [
    (np.zeros(3), "shape \\(7,\\)"),
    ("resume", "Result of this game or an array"),
    ({"x": np.zeros(7)}, "Result of this game or an array"),
    (np.full(7, np.nan), "non-finite"),
    (np.zeros(7) + 1j, "real"),
    ([[0.0], [0.0, 1.0]], "ragged"),
])
def test_game_malformed_warm_start(method, ws, match):
    game = FiniteSumMatrixGame(random_game(4, 3, 4, seed=1))
    with pytest.raises(ValueError, match="warm_start") as e:
        game.solve(method=method, warm_start=ws, max_iter=3)
    assert e.match(match)


@pytest.mark.parametrize("method", ["vr_halpern", "halpern"])
def test_game_warm_start_round_trip(method):
    game = FiniteSumMatrixGame(random_game(4, 3, 4, seed=2))
    cold = game.solve(method=method, tol=1e-8, max_iter=5_000, restart_factor=0.2)
    assert cold.status is Status.OPTIMAL
    warm = game.solve(method=method, tol=1e-8, max_iter=5_000, restart_factor=0.2,
                      warm_start=cold)
    assert warm.status is Status.OPTIMAL and warm.iterations <= 2


def test_solver_warm_start_and_option_types():
    a, b, op = least_squares()
    with pytest.raises(ValueError, match="warm_start"):
        vr_halpern(op, np.zeros(4), warm_start=np.zeros(5))
    with pytest.raises(ValueError, match="warm_start"):
        halpern(lambda z: z, np.zeros(2), warm_start="x")
    with pytest.raises(ValueError, match="warm_start"):
        halpern(lambda z: z, np.zeros(2), warm_start=[1j, 0])
    for kw, name in ((dict(eta="big"), "eta"), (dict(batch_size=2.5), "batch_size"),
                     (dict(inner_factor=[1]), "inner_factor"), (dict(max_evals="x"), "max_evals"),
                     (dict(restart_factor=True), "restart_factor"), (dict(variant=3), "variant")):
        with pytest.raises((TypeError, ValueError), match=name):
            vr_halpern(op, np.zeros(4), **kw)
    with pytest.raises((TypeError, ValueError), match="evals_per_call"):
        halpern(lambda z: z, np.zeros(2), evals_per_call=1.5)
    with pytest.raises(ValueError, match="M"):
        FiniteSumOperator.from_matrices(np.ones((2, 2, 2)) * 1j)


def test_game_payoffs_near_overflow():
    """Payoffs of 1e307: the average of the components overflowed to inf (duality gap inf)."""
    A = random_game(16, 3, 4, noise=0.3, seed=2)
    base = FiniteSumMatrixGame(A).solve(method="halpern", tol=1e-7, restart_factor=0.2)
    game = FiniteSumMatrixGame(A * 1e307)
    assert np.isfinite(game.A_bar).all()
    res = game.solve(method="halpern", tol=1e-7, restart_factor=0.2)
    assert res.status is base.status is Status.OPTIMAL
    np.testing.assert_allclose(res.x, base.x, atol=1e-9)
    assert game.duality_gap(res.x) <= res.info["gap_bound"]


@pytest.mark.parametrize("method", ["vr_halpern", "halpern"])
def test_game_dual_is_the_column_strategy(game, method):
    """``Result.dual`` is the second (maximizing) player's strategy y = x[m:] (docs/halpern.md):
    a point of the simplex whose guaranteed payoff min_i (A_bar y)_i is the value up to the gap."""
    res = game.solve(method=method, tol=1e-6, max_iter=20_000, restart_factor=0.2)
    assert res.status is Status.OPTIMAL, res
    x, y = game.strategies(res.x)
    np.testing.assert_array_equal(res.dual, y)
    assert res.dual.shape == (game.k,)
    assert abs(res.dual.sum() - 1) <= 1e-9 and res.dual.min() >= -1e-12
    lower = float(np.min(game.A_bar @ res.dual))
    assert abs(res.objective - lower - res.info["duality_gap"]) <= 1e-9
    assert res.info["duality_gap"] <= 1e-4


def test_generic_halpern_has_no_dual():
    """The plain Halpern iteration knows no family: ``dual`` is None (the game sets it)."""
    res = halpern(lambda z: 0.5 * z, np.ones(3), tol=1e-8)
    assert res.dual is None and res.message
