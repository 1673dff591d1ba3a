"""Mirror Sinkhorn (Ballu & Berthet 2023): exact OT vs POT, quadratic objectives vs CVXPY, online regret.

Tolerances come from the method's guarantees: the averaged plan's gap falls like T^{-1/2}; the
rounded plan is exactly feasible (Altschuler-Weed-Rigollet); the certified gap bounds F(x) - F*.
"""
import numpy as np
import ot
import pytest

from conftest import clouds
from cvxkit.problems import OnlineTransport, TransportPolytopeProblem
from cvxkit.solvers import Status, get_method
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.mirror_sinkhorn import mirror_sinkhorn, round_to_polytope, step_size_delta


def gaussians(n=50, seed=1):
    """The digest's instance: N(0, I) vs N(1, I) clouds, squared-Euclidean cost scaled to max 1."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + 1.0
    C = ((x[:, None] - y[None]) ** 2).sum(-1)
    C /= C.max()
    a, b = rng.random(n) + 0.1, rng.random(n) + 0.1
    return a / a.sum(), b / b.sum(), C


def marginal_err(P, a, b):
    return max(np.abs(P.sum(1) - a).max(), np.abs(P.sum(0) - b).max())


@pytest.fixture(scope="module")
def linear_runs():
    a, b, C = gaussians()
    opt = ot.emd2(a, b, C)
    return a, b, C, opt, {T: mirror_sinkhorn(a, b, C, max_iter=T) for T in (1_000, 10_000)}


def test_linear_cost_gap_falls_like_inverse_sqrt(linear_runs):
    a, b, C, opt, runs = linear_runs
    gaps = {T: r.objective - opt for T, r in runs.items()}
    for T, r in runs.items():
        assert r.status is Status.MAX_ITER and not r.converged  # no tol: never claims optimality
        assert r.iterations == T and r.info["steps"] == T
        assert abs(r.objective - np.vdot(C, r.x)) <= 1e-14
        # the certificate is an upper bound on the true gap, and not a vacuous one
        assert -1e-12 <= gaps[T] <= r.dual_residual <= 2 * gaps[T]
    # T^{-1/2}: x10 steps -> x0.32 gap (the digest measured 7.6e-3 -> 2.1e-3 on this instance)
    assert gaps[10_000] / gaps[1_000] < 0.5
    assert gaps[10_000] < 3e-3
    # the unrounded average's marginal error shrinks too (it is O(sqrt(delta/T)))
    assert runs[10_000].primal_residual < 0.5 * runs[1_000].primal_residual


def test_step_sizes_follow_the_rule(linear_runs):
    a, b, C, _, runs = linear_runs
    r = runs[1_000]
    delta = step_size_delta(a, b)
    assert r.info["delta"] == pytest.approx(np.abs(np.log(a)).max() + np.abs(np.log(b)).max())
    t = np.arange(1, 1_001)
    np.testing.assert_allclose(r.info["step_sizes"], np.sqrt(delta / t) / np.abs(C).max(), rtol=1e-14)
    assert r.info["eps"] == pytest.approx(1 / r.info["step_sizes"].sum())


def test_rounded_plan_has_exact_marginals(linear_runs):
    a, b, C, _, runs = linear_runs
    for r in runs.values():
        assert (r.x >= 0).all() and marginal_err(r.x, a, b) <= 1e-12
        assert r.primal_residual > 1e-6  # the unrounded average is not feasible: rounding matters
        np.testing.assert_allclose(r.info["average"].sum(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_awr_rounding(seed):
    """Exact marginals and ||round(P) - P||_1 <= 2 (||P1-a||_1 + ||P^T1-b||_1) (AWR 2017, Lemma 7)."""
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 30, size=2)
    scale = 10.0 ** rng.uniform(-3, 3)
    a, b = rng.random(n), rng.random(m)
    a, b = scale * a / a.sum(), scale * b / b.sum()
    P = rng.random((n, m)) * rng.choice([0.1, 1.0, 10.0]) * scale / (n * m)
    R = round_to_polytope(get_backend("numpy"), P, a, b)
    assert (R >= 0).all() and marginal_err(R, a, b) <= 1e-13 * scale
    err = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
    assert np.abs(R - P).sum() <= 2 * err * (1 + 1e-12)


def test_mass_zero_entries_and_rectangular():
    a, b, C = clouds(12, 9, seed=2)
    a, b = 7.0 * a, 7.0 * b  # total mass 7
    a[[0, 5]] = 0.0
    b[3] = 0.0
    b *= a.sum() / b.sum()
    r = mirror_sinkhorn(a, b, C, max_iter=3_000)
    assert np.all(r.x[[0, 5]] == 0) and np.all(r.x[:, 3] == 0)
    assert marginal_err(r.x, a, b) <= 1e-12 * 7
    opt = ot.emd2(a, b, C)
    assert 0 <= r.objective - opt <= r.dual_residual
    # zero-mass rows and columns change nothing: same plan as the problem without them
    rows, cols = a > 0, b > 0
    sub = mirror_sinkhorn(a[rows], b[cols], C[np.ix_(rows, cols)], max_iter=3_000)
    np.testing.assert_allclose(r.x[np.ix_(rows, cols)], sub.x, rtol=1e-12, atol=1e-15)


def test_quadratic_matches_cvxpy(backend):
    rng = np.random.default_rng(3)
    a, b = rng.random(8) + 0.1, rng.random(10) + 0.1
    a, b = a / a.sum(), b / b.sum()
    P0 = 0.05 * rng.normal(size=(8, 10))  # some entries of the projection are 0
    prob = TransportPolytopeProblem.quadratic(a, b, P0)
    ref = prob.reference()
    tol = 1e-2
    res = prob.solve(backend=backend, tol=tol, max_iter=50_000, check_every=100)
    assert res.status is Status.OPTIMAL and res.iterations < 50_000
    # the stopping rule certifies F(x) - F* <= gap <= tol * sum(a) * max|grad F(x)|
    bound = tol * a.sum() * np.abs(prob.gradient(res.x)).max()
    assert res.dual_residual <= bound
    assert -1e-9 <= res.objective - ref.objective <= res.dual_residual + 1e-9
    rep = prob.check(res, rtol=bound / ref.objective, atol=1e-12)
    assert rep.ok, rep
    assert np.isclose(res.objective, prob.objective(res.x), rtol=1e-12)
    # the history records what was monitored at each check
    h = res.history
    assert {"marginal_err", "objective", "gap"} <= set(h) and h["gap"][-1] == pytest.approx(res.dual_residual, rel=1e-9)


def test_autodiff_gradient_equals_explicit():
    rng = np.random.default_rng(4)
    a, b = rng.random(6) + 0.1, rng.random(7) + 0.1
    a, b = a / a.sum(), b / b.sum()
    P0 = rng.random((6, 7)) / 42
    import jax.numpy as jnp

    explicit = TransportPolytopeProblem.quadratic(a, b, P0)
    auto = TransportPolytopeProblem(a, b, lambda P: 0.5 * jnp.sum((P - P0) ** 2))
    r1, r2 = explicit.solve(max_iter=500), auto.solve(max_iter=500)
    np.testing.assert_allclose(r1.x, r2.x, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="CVXPY"):
        auto.to_cvxpy()


def test_numpy_and_jax_give_the_same_iterates():
    a, b, C = clouds(30, 25, seed=5)
    rn = mirror_sinkhorn(a, b, C, max_iter=1_000)
    rj = mirror_sinkhorn(a, b, C, max_iter=1_000, backend="jax")
    assert rj.backend == "jax" and rn.backend == "numpy"
    for k in ("last_iterate", "average", "step_sizes"):
        np.testing.assert_allclose(rj.info[k], rn.info[k], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(rj.x, rn.x, rtol=0, atol=1e-15)
    assert rj.objective == pytest.approx(rn.objective, rel=1e-13)
    # a nonlinear objective through the problem adapter (callable gradient, traced by JAX)
    P0 = np.random.default_rng(6).random((30, 25)) / 750
    prob = TransportPolytopeProblem.quadratic(a, b, P0)
    qn, qj = prob.solve(max_iter=600), prob.solve(backend="jax", max_iter=600)
    np.testing.assert_allclose(qj.info["last_iterate"], qn.info["last_iterate"], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(qj.info["step_sizes"], qn.info["step_sizes"], rtol=1e-12)
    assert qj.objective == pytest.approx(qn.objective, rel=1e-12)


def test_stochastic_gradients_still_converge():
    a, b, C = gaussians()
    opt = ot.emd2(a, b, C)
    sigma = 0.5

    def noisy(P, t, rng):  # unbiased: E[G_t] = C
        return C + sigma * rng.standard_normal(C.shape)

    gaps, runs = {}, {}
    for T in (1_000, 10_000):
        runs[T] = r = mirror_sinkhorn(a, b, noisy, max_iter=T, exact_gradient=lambda P: C, seed=1)
        gaps[T] = np.vdot(C, r.x) - opt
        assert 0 <= gaps[T] <= r.dual_residual  # the certificate uses the exact gradient
    assert gaps[10_000] / gaps[1_000] < 0.6
    assert gaps[10_000] < 1e-2
    # keys are a function of (seed, t): same seed, same run; another seed, another run
    again = mirror_sinkhorn(a, b, noisy, max_iter=1_000, exact_gradient=lambda P: C, seed=1)
    other = mirror_sinkhorn(a, b, noisy, max_iter=1_000, exact_gradient=lambda P: C, seed=2)
    np.testing.assert_array_equal(again.x, runs[1_000].x)
    assert np.abs(other.x - runs[1_000].x).max() > 1e-6


def test_resume_continues_the_same_run():
    a, b, C = clouds(15, 12, seed=7)
    noisy = lambda P, t, rng: C + 0.3 * rng.standard_normal(C.shape)  # noqa: E731
    full = mirror_sinkhorn(a, b, noisy, max_iter=1_000)
    half = mirror_sinkhorn(a, b, noisy, max_iter=600)
    rest = mirror_sinkhorn(a, b, noisy, max_iter=400, warm_start=half)
    assert rest.info["steps"] == 1_000 and rest.iterations == 400
    np.testing.assert_allclose(rest.info["last_iterate"], full.info["last_iterate"], rtol=1e-13)
    np.testing.assert_allclose(rest.info["average"], full.info["average"], rtol=1e-13)
    np.testing.assert_allclose(rest.info["step_sizes"], full.info["step_sizes"], rtol=1e-15)


def test_log_domain_revives_entries_when_the_cost_moves():
    """With large steps the accumulated exponent passes -745: the multiplicative form would hold exact
    zeros forever. In the log domain the plan follows a cost that changes to its mirror image."""
    n = 20
    x = np.linspace(0, 1, n)
    CA = (x[:, None] - x[None, :]) ** 2  # optimum: the diagonal
    CB = (x[:, None] - x[::-1][None, :]) ** 2  # optimum: the anti-diagonal
    a = b = np.full(n, 1 / n)
    T1, opts = 500, dict(step_scale=40.0, grad_bound=1.0)
    cost = lambda P, t, rng: CA if t <= T1 else CB  # noqa: E731
    first = mirror_sinkhorn(a, b, cost, max_iter=T1, **opts)
    log_plan = first.info["state"]["log_plan"]
    assert np.isfinite(log_plan).all() and log_plan.min() < -745  # exp() of it underflows to 0
    assert (first.info["last_iterate"] == 0).any()
    # after the switch the accumulated step must outgrow the first phase's: sqrt(3000/500) > 2
    second = mirror_sinkhorn(a, b, cost, max_iter=2_500, warm_start=first, **opts)
    last = second.info["last_iterate"]
    assert np.vdot(CB, last) <= 1e-3 and abs(last.sum() - 1) < 1e-12  # OT(CB) = 0


def test_online_regret_is_sublinear(backend):
    rng = np.random.default_rng(8)
    n, m, T = 10, 12, 4_000
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    a, b = a / a.sum(), b / b.sum()
    C = rng.random((n, m))
    costs = C + rng.normal(size=(T, n, m))  # noisy costs revealed one per round
    prob = OnlineTransport(a, b, costs)
    res = prob.solve(backend=backend)
    assert res.status is Status.MAX_ITER and res.info["steps"] == T
    reg = res.info["regret"]
    t, R = reg["t"], reg["regret"]
    assert t[-1] == T and res.objective == pytest.approx(reg["cumulative_loss"][-1], rel=1e-12)
    # the mirror-descent regret bound for these steps, O(B sqrt(delta t)), with constant 2
    B, delta = np.abs(costs).max(), step_size_delta(a, b)
    assert (R <= 2 * B * np.sqrt(delta * t)).all()
    # sublinear: 16x more rounds multiply the regret by less than 8
    # (linear regret: by 16; sqrt(t) regret: by 4)
    R_T, R_16 = R[-1], np.interp(T // 16, t, R)
    assert 0 < R_T < 8 * R_16
    # a fixed play (the product coupling) has linear regret, Mirror Sinkhorn a much smaller one
    P1 = np.outer(a, b)
    fixed_regret = np.vdot(costs.sum(0), P1) - reg["best_in_hindsight"][-1]
    assert R_T < 0.1 * fixed_regret
    # the recorded losses are those of the plays <C_t, pi_t>; pi_1 is the product coupling
    assert len(res.info["losses"]) == T
    assert res.info["losses"][0] == pytest.approx(np.vdot(costs[0], P1), rel=1e-12)
    # the comparator: ot.emd on the summed cost agrees with the LP reference (HiGHS)
    rep = prob.check(res)
    assert rep.reference_objective == pytest.approx(reg["best_in_hindsight"][-1], rel=1e-9)
    assert rep.max_violation <= 1e-12 and not rep.ok  # online play: never reported "optimal"


def test_online_callable_costs_match_array():
    rng = np.random.default_rng(9)
    a, b = np.full(5, 0.2), np.full(4, 0.25)
    costs = rng.random((300, 5, 4))
    r_arr = OnlineTransport(a, b, costs).solve()
    r_fun = OnlineTransport(a, b, lambda t: costs[t - 1], horizon=300).solve()
    np.testing.assert_allclose(r_fun.info["regret"]["regret"], r_arr.info["regret"]["regret"], rtol=1e-12)
    short = OnlineTransport(a, b, costs).solve(max_iter=100)
    assert short.info["steps"] == 100 and short.info["regret"]["t"][-1] == 100


def test_status_semantics_and_options(capsys):
    a, b, C = clouds(10, 10, seed=10)
    # tol met -> optimal, with the certificate below it
    r = mirror_sinkhorn(a, b, C, tol=1e-2, max_iter=100_000, check_every=50)
    assert r.status is Status.OPTIMAL and r.iterations < 100_000 and r.iterations % 50 == 0
    assert r.dual_residual <= 1e-2 * a.sum() * np.abs(C).max()
    assert 0 <= r.objective - ot.emd2(a, b, C) <= r.dual_residual
    # an unreachable tol within the budget -> max_iter, never a silent "optimal"
    r = mirror_sinkhorn(a, b, C, tol=1e-9, max_iter=200)
    assert r.status is Status.MAX_ITER and r.dual_residual > 1e-9
    r = mirror_sinkhorn(a, b, C, max_iter=10**8, time_limit=0.2)
    assert r.status is Status.TIME_LIMIT
    r = mirror_sinkhorn(a, b, C, max_iter=500, check_every=100, callback=lambda info: info["iteration"] >= 200)
    assert r.status is Status.INTERRUPTED and r.iterations == 200
    raw = mirror_sinkhorn(a, b, C, max_iter=200, round=False)
    np.testing.assert_array_equal(raw.x, raw.info["average"])
    assert raw.primal_residual == pytest.approx(
        np.abs(raw.x.sum(1) - a).sum() + np.abs(raw.x.sum(0) - b).sum(), rel=1e-12)
    assert raw.objective == pytest.approx(np.vdot(C, raw.x), rel=1e-14)
    mirror_sinkhorn(a, b, C, max_iter=200, verbose=True)
    out = capsys.readouterr().out
    assert "no tol given" in out and "gap" in out and "status: max_iter" in out
    assert get_method("mirror_sinkhorn").load() is mirror_sinkhorn


def test_float32_on_jax():
    a, b, C = clouds(20, 20, seed=11)
    r32 = mirror_sinkhorn(a, b, C, max_iter=2_000, backend="jax", dtype="float32")
    r64 = mirror_sinkhorn(a, b, C, max_iter=2_000)
    assert r32.info["last_iterate"].dtype == np.float64 and np.isfinite(r32.x).all()
    assert marginal_err(r32.x, a, b) <= 1e-12  # the average is rounded in float64
    # float32 round-off in the loop: ~1e-7 relative here (2000 steps)
    assert abs(r32.objective - r64.objective) <= 1e-5 * r64.objective


BAD = {
    "negative a": (lambda a, b, C: dict(a=-a), "negative"),
    "mass": (lambda a, b, C: dict(b=2 * b), "same total mass"),
    "cost shape": (lambda a, b, C: dict(gradient=C[:, :-1]), "shape"),
    "nan cost": (lambda a, b, C: dict(gradient=np.where(C > 0.5, np.nan, C)), "NaN"),
    "step_scale": (lambda a, b, C: dict(step_scale=0.0), "step_scale"),
    "grad_bound": (lambda a, b, C: dict(grad_bound=-1.0), "grad_bound"),
    "tol": (lambda a, b, C: dict(tol=-1e-3), "tol"),
    "tol without certificate": (lambda a, b, C: dict(gradient=lambda P, t, k: C, tol=1e-3), "exact_gradient"),
    "loss": (lambda a, b, C: dict(loss="quadratic"), "loss"),
    "gradient output": (lambda a, b, C: dict(gradient=lambda P, t, k: C[:, :-1]), "gradient returned shape"),
    "warm_start": (lambda a, b, C: dict(warm_start=np.ones_like(C)), "warm_start"),
    "max_iter": (lambda a, b, C: dict(max_iter=0), "max_iter"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_solver(case):
    a, b, C = clouds(5, 4, seed=0)
    change, msg = BAD[case]
    kw = dict(a=a, b=b, gradient=C, max_iter=10)
    kw.update(change(a, b, C))
    with pytest.raises(ValueError, match=msg):
        mirror_sinkhorn(kw.pop("a"), kw.pop("b"), kw.pop("gradient"), **kw)


def test_bad_input_problems():
    a, b, C = clouds(5, 4, seed=0)
    import jax.numpy as jnp

    with pytest.raises(ValueError, match="callable"):
        TransportPolytopeProblem(a, b, objective=3.0)
    with pytest.raises(ValueError, match="not finite"):
        TransportPolytopeProblem(a, b, lambda P: jnp.log(P[0, 0] - 1.0))
    with pytest.raises(ValueError, match="shape"):
        TransportPolytopeProblem(a, b, lambda P: jnp.sum(P), gradient=lambda P: P[:, :-1])
    with pytest.raises(ValueError, match="P0"):
        TransportPolytopeProblem.quadratic(a, b, np.ones((4, 4)))
    with pytest.raises(ValueError, match="same total mass"):
        TransportPolytopeProblem.linear(a, 2 * b, C)
    prob = TransportPolytopeProblem.linear(a, b, C)
    with pytest.raises(ValueError, match="set by the problem"):
        prob.solve(objective=lambda P: 0.0)
    with pytest.raises(ValueError, match="unknown option"):
        prob.solve(eps=1.0)
    with pytest.raises(ValueError, match="horizon"):
        OnlineTransport(a, b, lambda t: C)
    with pytest.raises(ValueError, match=r"\(T, 5, 4\)"):
        OnlineTransport(a, b, np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        OnlineTransport(a, b, np.full((3, 5, 4), np.nan))
    online = OnlineTransport(a, b, np.ones((3, 5, 4)))
    with pytest.raises(ValueError, match="max_iter"):
        online.solve(max_iter=4)
    with pytest.raises(ValueError, match="set by the problem"):
        online.solve(tol=1e-3)


def test_linear_problem_matches_exact_ot():
    a, b, C = clouds(15, 15, seed=12)
    prob = TransportPolytopeProblem.linear(a, b, C)
    res = prob.solve(tol=5e-3, max_iter=100_000)
    assert res.status is Status.OPTIMAL
    ref = prob.reference()
    assert ref.objective == pytest.approx(ot.emd2(a, b, C), rel=1e-9)
    # optimal certifies F(x) - F* <= gap <= tol * sum(a) * max|C|
    assert res.dual_residual <= 5e-3 * a.sum() * np.abs(C).max()
    rep = prob.check(res, rtol=5e-3 * a.sum() * np.abs(C).max() / ref.objective, atol=1e-12)
    assert rep.ok, rep
    f, g = res.info["potentials"]
    assert np.isfinite(f).all() and np.isfinite(g).all()


# --- issue 17: no silent wrong answers ---------------------------------------------------
def test_tol_is_relative_to_mass_and_cost():
    """With max(1, |<G, x>|) as the scale, costs x 1e-9 made any tol >= 1e-9 'optimal' at the
    first check; the scale sum(a) * max|G| gives the same status and steps at every scale."""
    a, b, C = clouds(8, 8, seed=13)
    base = mirror_sinkhorn(a, b, C, tol=1e-2, max_iter=20_000, check_every=50)
    assert base.status is Status.OPTIMAL
    for sa, sC in ((1.0, 1e-9), (1e-9, 1.0), (1e9, 1e9)):
        r = mirror_sinkhorn(a * sa, b * sa, C * sC, tol=1e-2, max_iter=20_000, check_every=50)
        assert r.status is Status.OPTIMAL and r.iterations == base.iterations
        assert r.dual_residual <= 1e-2 * sa * np.abs(C * sC).max()
        assert 0 <= r.objective - sa * sC * ot.emd2(a, b, C) <= r.dual_residual * (1 + 1e-9)


def test_options_and_warm_start_are_checked():
    a, b, C = clouds(5, 4, seed=0)
    for name, value in (("step_scale", "1"), ("grad_bound", [1.0]), ("tol", "1e-3"),
                        ("record_steps", 2.5), ("round", 1), ("seed", 1.0), ("max_iter", 10.0)):
        with pytest.raises(TypeError, match=name):
            mirror_sinkhorn(a, b, C, **{"max_iter": 10, name: value})
    with pytest.raises(ValueError, match="loss"):
        mirror_sinkhorn(a, b, C, max_iter=10, loss=np.ones(2))
    with pytest.raises(ValueError, match="seed"):
        mirror_sinkhorn(a, b, C, max_iter=10, seed=-1)
    run = mirror_sinkhorn(a, b, C, max_iter=10)
    bad_state = {**run.info["state"], "beta": np.zeros(7)}
    with pytest.raises(ValueError, match="warm_start state 'beta'"):
        mirror_sinkhorn(a, b, C, max_iter=10, warm_start=run.replace(info={**run.info, "state": bad_state}))
    from cvxkit.problems import OptimalTransport

    for ws in (OptimalTransport(a, b, C, reg=0.1).solve(), (np.zeros(5), np.zeros(4)), "run"):
        with pytest.raises(ValueError, match="warm_start must be a Result returned by mirror_sinkhorn"):
            mirror_sinkhorn(a, b, C, max_iter=10, warm_start=ws)
    import scipy.sparse as sparse

    r = mirror_sinkhorn(a, b, sparse.coo_array(C), max_iter=10)  # densified
    np.testing.assert_allclose(r.x, run.x, rtol=1e-14)


def test_online_regret_comparator_at_any_scale():
    """The best plan in hindsight was ot.emd2 on the user's data, which POT gets wrong for
    negative costs or a large mass; now network_simplex on the normalized instance."""
    rng = np.random.default_rng(14)
    a, b = rng.random(4) + 0.1, rng.random(3) + 0.1
    a, b = a / a.sum(), b / b.sum()
    costs = rng.random((20, 4, 3))
    base = OnlineTransport(a, b, costs).solve()
    for sa, shift in ((1e9, 0.0), (1.0, -5.0), (1e-9, -5.0)):
        res = OnlineTransport(a * sa, b * sa, costs + shift).solve()
        best = res.info["regret"]["best_in_hindsight"]
        t = res.info["regret"]["t"]
        assert np.isfinite(best).all()
        np.testing.assert_allclose(best, sa * (base.info["regret"]["best_in_hindsight"] + shift * t),
                                   rtol=1e-9, atol=1e-9 * sa * 5 * t.max())


def test_dual_is_the_potentials(backend):
    """``Result.dual`` is ``info['potentials']``: for a fixed cost the last iterate is the
    Gibbs kernel of the potentials at the annealed temperature, exp((f_i + g_j - C_ij) / eps)."""
    a, b, C = gaussians(20)
    r = mirror_sinkhorn(a, b, C, max_iter=2_000, backend=backend)
    f, g = r.dual
    assert r.dual is r.info["potentials"] and f.shape == a.shape and g.shape == b.shape
    gibbs = np.exp((f[:, None] + g[None, :] - C) / r.info["eps"])
    np.testing.assert_allclose(gibbs, r.info["last_iterate"], rtol=1e-10, atol=1e-300)
    # the last half-step matched the columns exactly
    np.testing.assert_allclose(gibbs.sum(0), b, rtol=1e-12)
