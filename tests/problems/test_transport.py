"""OptimalTransport: Sinkhorn and network simplex against POT and CVXPY, both back ends."""
import warnings

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import clouds
from cvxkit.problems import OptimalTransport
from cvxkit.solvers import Result, Status
from cvxkit.solvers.sinkhorn import sinkhorn, sinkhorn_batch


def pot_log(a, b, C, reg):
    """POT's log-domain Sinkhorn run to machine precision: the entropic reference."""
    return ot.sinkhorn(a, b, C, reg, method="sinkhorn_log", stopThr=1e-15, numItermax=200_000)


def gaussian_1d(n, mean, sd):
    x = np.linspace(0, 1, n)
    h = np.exp(-((x - mean) ** 2) / (2 * sd**2)) + 1e-3
    return x, h / h.sum()


INSTANCES = {
    "random-square": lambda: clouds(60, 60, seed=1),
    "random-rect": lambda: clouds(200, 90, seed=2),
    "gaussians-1d": lambda: (lambda x, a, b: (a, b, (x[:, None] - x[None, :]) ** 2))(
        gaussian_1d(120, 0.3, 0.08)[0], gaussian_1d(120, 0.3, 0.08)[1], gaussian_1d(120, 0.7, 0.1)[1]),
}


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_entropic_matches_pot_log(name, backend):
    a, b, C = INSTANCES[name]()
    reg = 0.05 * C.mean()
    tol = 1e-12
    res = OptimalTransport(a, b, C, reg=reg).solve(backend=backend, tol=tol)
    assert res.status is Status.OPTIMAL
    P = pot_log(a, b, C, reg)
    # plan: entrywise to 1e-8 relative to the largest entry; cost to 1e-8 relative
    assert np.abs(res.x - P).max() <= 1e-8 * P.max()
    assert abs(res.info["transport_cost"] - np.vdot(C, P)) <= 1e-8 * np.vdot(C, P)
    assert res.primal_residual <= tol
    # strong duality of the entropic problem at the solution
    assert abs(res.objective - res.info["dual_objective"]) <= 1e-8 * abs(res.objective)


def test_entropic_matches_cvxpy(backend):
    a, b, C = clouds(25, 30, seed=3)
    prob = OptimalTransport(a, b, C, reg=0.1)
    res = prob.solve(backend=backend, tol=1e-10)
    rep = prob.check(res, rtol=1e-7, atol=1e-9)
    assert rep.ok, rep
    assert rep.distance < 1e-5


def test_numpy_and_jax_agree():
    a, b, C = clouds(80, 70, seed=4)
    prob = OptimalTransport(a, b, C, reg=0.01)
    r_np, r_jx = prob.solve(tol=1e-11), prob.solve(backend="jax", tol=1e-11)
    assert r_jx.backend == "jax" and r_np.backend == "numpy"
    assert np.abs(r_np.x - r_jx.x).max() <= 1e-10 * r_np.x.max()
    assert abs(r_np.objective - r_jx.objective) <= 1e-10 * abs(r_np.objective)


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_matches_emd_and_cvxpy(seed):
    a, b, C = clouds(50, 40, seed=seed)
    prob = OptimalTransport(a, b, C)
    res = prob.solve()
    assert res.method == "network_simplex" and res.status is Status.OPTIMAL
    ref = ot.emd2(a, b, C)
    assert abs(res.objective - ref) <= 1e-9 * ref
    rep = prob.check(res, rtol=1e-9, atol=1e-12)
    assert rep.ok, rep
    # the dual potentials certify optimality: feasible and with the same value
    u, v = res.info["u"], res.info["v"]
    assert (u[:, None] + v[None, :] - C).max() <= 1e-10
    assert abs(res.info["dual_objective"] - res.objective) <= 1e-10


def test_one_row_stage_does_not_stop_on_the_row_error(backend):
    """n = 1 (rows always exact): a rebuilt kernel at the final eps was accepted on its row error
    alone (2e-14), with the columns off by 0.27; the stopping error now counts both marginals."""
    a, b = np.array([1.0]), np.array([0.86579648, 0.13420352])
    C = np.array([[0.01652764, 0.81327024]])
    res = sinkhorn(a, b, C, 0.025414694975008513, tol=1e-9, backend=backend)
    assert res.status is Status.OPTIMAL and res.primal_residual <= 1e-9
    np.testing.assert_allclose(res.x[0], b, rtol=1e-9)


def test_exact_dual_is_the_potentials():
    """``Result.dual`` is ``(u, v)`` of ``info``: f_i + g_j <= C_ij everywhere, with equality
    on the plan's support (complementary slackness)."""
    a, b, C = clouds(30, 25, seed=7)
    res = OptimalTransport(a, b, C).solve()
    f, g = res.dual
    assert f is res.info["u"] and g is res.info["v"]
    slack = C - f[:, None] - g[None, :]
    assert slack.min() >= -1e-10 * np.abs(C).max()
    support = res.x > 1e-12 * res.x.max()
    assert np.abs(slack[support]).max() <= 1e-10 * np.abs(C).max()


def test_entropic_dual_is_the_potentials(backend):
    """``Result.dual`` is ``(f, g)`` of ``info``, and P = exp((f_i + g_j - C_ij) / reg)."""
    a, b, C = clouds(30, 25, seed=8)
    reg = 0.05 * C.mean()
    res = OptimalTransport(a, b, C, reg=reg).solve(backend=backend, tol=1e-10)
    f, g = res.dual
    assert f is res.info["f"] and g is res.info["g"]
    np.testing.assert_allclose(np.exp((f[:, None] + g[None, :] - C) / reg), res.x, rtol=1e-7,
                               atol=1e-14)
    assert np.dot(f, a) + np.dot(g, b) == pytest.approx(res.info["dual_objective"], rel=1e-12)


def test_entropic_tends_to_exact_as_reg_shrinks():
    """0 <= <C,P_reg> - OT <= reg * log(n m) (mass 1): the entropic bias bound."""
    a, b, C = clouds(40, 40, seed=5)
    exact = OptimalTransport(a, b, C).solve().objective
    for reg in (1e-2, 1e-3, 1e-4):
        res = OptimalTransport(a, b, C, reg=reg).solve(tol=1e-9)
        assert res.status is Status.OPTIMAL
        gap = res.info["transport_cost"] - exact
        assert -1e-8 <= gap <= reg * np.log(40 * 40) + 1e-8


def test_small_reg_where_plain_sinkhorn_underflows(backend):
    """Separated clouds and reg far below the cost scale: exp(-C/reg) is exactly 0 everywhere."""
    a, b, C = clouds(60, 60, seed=6, shift=3.0)
    reg = 2e-4 * C.mean()
    assert np.exp(-C / reg).max() == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P_plain = ot.sinkhorn(a, b, C, reg, method="sinkhorn", numItermax=1000)
    assert not np.all(np.isfinite(P_plain)) or abs(P_plain.sum() - 1) > 1e-3  # POT's kernel form fails
    res = OptimalTransport(a, b, C, reg=reg).solve(backend=backend, tol=1e-9)
    assert res.status is Status.OPTIMAL and np.isfinite(res.x).all()
    assert res.primal_residual <= 1e-9
    exact = ot.emd2(a, b, C)
    assert 0 <= res.info["transport_cost"] - exact <= reg * np.log(60 * 60)


def test_zero_mass_entries_are_handled():
    a, b, C = clouds(30, 20, seed=7)
    a[[3, 10]] = 0.0
    b[5] = 0.0
    a, b = a / a.sum(), b / b.sum()
    res = OptimalTransport(a, b, C, reg=0.05).solve(tol=1e-11)
    assert res.status is Status.OPTIMAL
    assert np.all(res.x[[3, 10]] == 0) and np.all(res.x[:, 5] == 0)
    P = pot_log(a, b, C, 0.05)
    assert np.abs(res.x - P).max() <= 1e-8 * P.max()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), m=st.integers(1, 12), seed=st.integers(0, 10**6),
       rel=st.floats(5e-2, 10.0), scale=st.floats(1e-3, 1e3))
def test_marginals_hold(n, m, seed, rel, scale):
    """Whatever the weights, total mass or cost scale, the plan is nonnegative with the right marginals.

    reg is taken relative to the cost scale: Sinkhorn needs O(max(C)/reg) iterations, and at
    1e-2 * max(C) a few random instances (e.g. n, m = 2, 12, seed 5: weights near 1e-3) need more
    than 100,000 (they then report max_iter honestly); from 5e-2 on, 800 draws all converge.
    """
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) + 1e-3, rng.random(m) + 1e-3
    a, b = scale * a / a.sum(), scale * b / b.sum()
    C = rng.random((n, m)) * rng.choice([1e-2, 1.0, 1e2])
    reg = rel * C.max()
    tol = 1e-9  # relative to the mass
    res = sinkhorn(a, b, C, reg, tol=tol)
    assert res.status is Status.OPTIMAL
    P = res.x
    assert (P >= 0).all()
    assert np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum() <= tol * scale


def test_warm_start_and_status_honesty():
    a, b, C = clouds(100, 100, seed=8)
    prob = OptimalTransport(a, b, C, reg=0.002)
    cold = prob.solve(tol=1e-9)
    warm = prob.solve(tol=1e-9, warm_start=cold)
    assert warm.status is Status.OPTIMAL and warm.iterations < cold.iterations / 2
    capped = prob.solve(tol=1e-12, max_iter=5)
    assert capped.status is Status.MAX_ITER and not capped.converged
    assert capped.primal_residual > 1e-12


def test_verbose_and_history(capsys):
    a, b, C = clouds(20, 20, seed=9)
    res = OptimalTransport(a, b, C, reg=0.05).solve(verbose=True, tol=1e-8)
    out = capsys.readouterr().out
    assert "marginal_err" in out and "status: optimal" in out
    h = res.history
    assert h["marginal_err"][-1] <= 1e-8 and len(h["iteration"]) == len(h["eps"])


def test_float32_on_jax():
    a, b, C = clouds(50, 50, seed=10)
    res = OptimalTransport(a, b, C, reg=0.05).solve(backend="jax", dtype="float32", tol=1e-5)
    assert res.status is Status.OPTIMAL and res.primal_residual <= 2e-5
    ref = pot_log(a, b, C, 0.05)
    assert np.abs(res.x - ref).max() <= 1e-4 * ref.max()


def test_batch_equals_single_solves():
    rng = np.random.default_rng(11)
    B, n, m = 4, 15, 12
    a = rng.random((B, n)) + 0.1
    b = rng.random((B, m)) + 0.1
    a /= a.sum(1, keepdims=True)
    b /= b.sum(1, keepdims=True)
    C = rng.random((B, n, m))
    res = sinkhorn_batch(a, b, C, 0.05, tol=1e-11)
    assert isinstance(res, Result) and res.x.shape == (B, n, m)
    assert res.objective.shape == res.iterations.shape == res.primal_residual.shape == (B,)
    assert res.status.shape == (B,) and all(s is Status.OPTIMAL for s in res.status)
    assert res.converged and res.message.startswith(f"{B} of {B} members optimal")
    assert (res.info["relative_marginal_error"] <= 1e-11).all()
    f, g = res.dual
    assert f.shape == (B, n) and g.shape == (B, m)
    assert f is res.info["f"] and g is res.info["g"]
    assert "batch=4" in repr(res)
    for i in range(B):
        single = sinkhorn(a[i], b[i], C[i], 0.05, tol=1e-11)
        assert np.abs(res.x[i] - single.x).max() <= 1e-10
        assert res.objective[i] == pytest.approx(single.objective, rel=1e-10)
        # the potentials give the plan: P = exp((f_i + g_j - C_ij) / reg)
        np.testing.assert_allclose(np.exp((f[i][:, None] + g[i][None, :] - C[i]) / 0.05),
                                   res.x[i], rtol=1e-8, atol=1e-14)


def test_batch_member_statuses():
    """A member capped by max_iter is reported as such; the others stay optimal."""
    rng = np.random.default_rng(12)
    B, n, m = 3, 8, 7
    a = rng.random((B, n)) + 0.1
    b = rng.random((B, m)) + 0.1
    a /= a.sum(1, keepdims=True)
    b /= b.sum(1, keepdims=True)
    C = rng.random((B, n, m))
    C[1] *= 50.0  # reg small relative to member 1's costs: many more iterations
    full = sinkhorn_batch(a, b, C, 0.05, tol=1e-10)
    cap = int(np.sort(full.iterations)[1])  # enough for all but the slowest member
    res = sinkhorn_batch(a, b, C, 0.05, tol=1e-10, max_iter=cap)
    slow = int(np.argmax(full.iterations))
    assert res.status[slow] is Status.MAX_ITER and not res.converged
    assert all(res.status[i] is Status.OPTIMAL for i in range(B) if i != slow)
    assert "2 of 3 members optimal" in res.message and "max_iter" in res.message


BAD = {
    "negative a": (lambda a, b, C: (-a, b, C), "negative"),
    "nan in C": (lambda a, b, C: (a, b, np.where(C > 0.5, np.nan, C)), "NaN"),
    "inf in b": (lambda a, b, C: (a, np.r_[b[:-1], np.inf], C), "NaN or infinite"),
    "shape": (lambda a, b, C: (a, b, C[:, :-1]), "shape"),
    "2-d a": (lambda a, b, C: (a[:, None], b, C), "1-D array"),
    "mass": (lambda a, b, C: (a, 2 * b, C), r"sum\(a\)=1, sum\(b\)=2"),
    "empty": (lambda a, b, C: (a[:0], b, C[:0]), "empty"),
    "strings": (lambda a, b, C: (["x"] * len(a), b, C), "numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(case):
    a, b, C = clouds(5, 4, seed=0)
    change, msg = BAD[case]
    with pytest.raises(ValueError, match=msg):
        OptimalTransport(*change(a, b, C), reg=0.1)


@pytest.mark.parametrize("reg", [0.0, -1.0, float("nan"), float("inf"), "0.1"])
def test_bad_reg(reg):
    a, b, C = clouds(5, 4, seed=0)
    with pytest.raises(ValueError, match="reg"):
        OptimalTransport(a, b, C, reg=reg)
    with pytest.raises(ValueError, match="reg"):
        sinkhorn(a, b, C, reg)


def test_method_errors_and_plan_shape():
    a, b, C = clouds(5, 4, seed=0)
    exact, ent = OptimalTransport(a, b, C), OptimalTransport(a, b, C, reg=0.1)
    with pytest.raises(ValueError, match="entropic"):
        exact.solve(method="sinkhorn")
    with pytest.raises(ValueError, match="exact OT"):
        ent.solve(method="network_simplex")
    with pytest.raises(ValueError, match="valid choices: numpy"):
        exact.solve(backend="jax")
    with pytest.raises(ValueError, match="valid options"):
        ent.solve(tolerance=1e-3)
    with pytest.raises(ValueError, match="shape"):
        ent.objective(np.ones((4, 5)))


def test_network_simplex_pivot_limit_is_reported():
    a, b, C = clouds(60, 60, seed=12)
    res = OptimalTransport(a, b, C).solve(max_iter=3)
    assert res.status is Status.MAX_ITER


# --- issue 17: no silent wrong answers ---------------------------------------------------
def test_exact_ot_negative_costs_and_large_mass_are_solved():
    """POT's ot.emd called with these ends 'infeasible'; both are feasible, bounded LPs."""
    a, b, C = clouds(8, 6, seed=13)
    ref = ot.emd2(a, b, C)
    for A, B, CC, expected in ((a, b, C - 5, ref - 5), (a * 1e9, b * 1e9, C, 1e9 * ref),
                               (a * 1e-9, b * 1e-9, -C * 1e6, None)):
        res = OptimalTransport(A, B, CC).solve()
        assert res.status is Status.OPTIMAL, res.message
        if expected is None:  # cost -C: OT(-C) = OT(max C - C) - max C (POT fails on -C itself)
            expected = 1e-3 * (ot.emd2(a, b, C.max() - C) - C.max())
        assert abs(res.objective - expected) <= 1e-9 * abs(expected)
        assert res.primal_residual <= 1e-12 * A.sum()
        u, v = res.dual
        assert (u[:, None] + v[None, :] - CC).max() <= 1e-9 * np.ptp(CC)
        assert abs(res.info["dual_objective"] - res.objective) <= 1e-9 * A.sum() * np.abs(CC).max()


def test_exact_ot_result_code_is_checked(monkeypatch):
    """A claimed 'infeasible' from POT on a feasible problem is never passed through."""
    a, b, C = clouds(5, 4, seed=14)

    def fake_emd(a, b, C, numItermax, log):
        return np.zeros((a.size, b.size)), {"result_code": 0, "u": np.zeros(a.size),
                                             "v": np.zeros(b.size), "warning": "infeasible"}

    monkeypatch.setattr(ot, "emd", fake_emd)
    res = OptimalTransport(a, b, C).solve()
    assert res.status is Status.NUMERICAL_ERROR and "not trusted" in res.message


def test_entropic_tiny_mass_meets_a_relative_tol():
    """a * 1e-12 used to end 'optimal' after 5 iterations with a 38 % marginal error."""
    a, b, C = clouds(10, 8, seed=15)
    base = OptimalTransport(a, b, C, reg=0.1).solve(tol=1e-9)
    for s in (1e-12, 1e12):
        res = OptimalTransport(a * s, b * s, C, reg=0.1).solve(tol=1e-9)
        assert res.status is Status.OPTIMAL
        assert res.info["relative_marginal_error"] <= 1e-9
        assert res.primal_residual <= 1e-9 * s
        assert np.abs(res.x - s * base.x).max() <= 1e-8 * s * base.x.max()
        # the entropy term picks up reg * mass * log(s)
        assert res.objective == pytest.approx(s * base.objective + 0.1 * s * np.log(s), rel=1e-9)


def test_entropic_cost_and_reg_scaled_together():
    """reg is in the cost's units: (C, reg) -> 10^k (C, reg) gives the same plan and status."""
    a, b, C = clouds(10, 8, seed=16)
    base = OptimalTransport(a, b, C, reg=0.05).solve(tol=1e-10)
    for k in (-9, -4, 4, 9):
        res = OptimalTransport(a, b, C * 10.0**k, reg=0.05 * 10.0**k).solve(tol=1e-10)
        assert res.status is base.status is Status.OPTIMAL
        assert res.iterations == pytest.approx(base.iterations, abs=2)
        assert np.abs(res.x - base.x).max() <= 1e-9 * base.x.max()
        assert res.objective == pytest.approx(10.0**k * base.objective, rel=1e-9)
    # shifting the costs changes nothing but the objective (by shift * mass)
    res = OptimalTransport(a, b, C - 7.0, reg=0.05).solve(tol=1e-10)
    assert np.abs(res.x - base.x).max() <= 1e-9 * base.x.max()
    assert res.objective == pytest.approx(base.objective - 7.0, rel=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_float32_unreachable_tol_is_not_optimal(backend):
    """numpy float32 with tol=1e-12 used to report optimal at a true marginal error of 5e-8."""
    a, b, C = clouds(12, 10, seed=17)
    res = OptimalTransport(a, b, C, reg=0.1).solve(dtype="float32", tol=1e-12, backend=backend,
                                                   max_iter=3_000)
    true_err = np.abs(res.x.sum(1) - a).sum() + np.abs(res.x.sum(0) - b).sum()
    assert true_err > 1e-12
    assert res.status in (Status.MAX_ITER, Status.OPTIMAL_INACCURATE), res.status
    # a reachable float32 tol is still met and confirmed in float64
    res = OptimalTransport(a, b, C, reg=0.1).solve(dtype="float32", tol=1e-5, backend=backend)
    assert res.status is Status.OPTIMAL and res.info["relative_marginal_error"] <= 1e-5


def test_crashes_are_clear_errors():
    import scipy.sparse as sparse

    a, b, C = clouds(5, 4, seed=0)
    with pytest.raises(ValueError, match="ragged"):
        OptimalTransport([[0.5, 0.2], [0.3]], b, C)
    with pytest.raises(ValueError, match="C is required"):
        OptimalTransport(a, b, None)
    with pytest.raises(ValueError, match="max_iter"):
        OptimalTransport(a, b, C).solve(max_iter=-5)
    with pytest.raises(TypeError, match="max_iter"):
        OptimalTransport(a, b, C).solve(max_iter=2.5)
    with pytest.raises(ValueError, match="C must be real"):
        OptimalTransport(a, b, C + 1j)
    ent = OptimalTransport(a, b, C, reg=0.1)
    exact_res = OptimalTransport(a, b, C).solve()
    with pytest.raises(ValueError, match="warm_start must be a Result of method 'sinkhorn'"):
        ent.solve(warm_start=exact_res)
    with pytest.raises(ValueError, match=r"warm_start .* shapes \(5,\) and \(4,\)"):
        ent.solve(warm_start=(np.zeros(4), np.zeros(5)))
    with pytest.raises(ValueError, match="warm_start"):
        ent.solve(warm_start="previous")
    for name, value in (("tol", "1e-6"), ("eps_decay", "0.5"), ("stage_tol", None), ("eps_init", "x"),
                        ("verbose", 1)):
        with pytest.raises(TypeError, match=name):
            ent.solve(**{name: value}) if name != "verbose" else OptimalTransport(a, b, C).solve(verbose=1)
    for name, value in (("eps_decay", 1.5), ("stage_tol", -1.0), ("eps_init", 0.0)):
        with pytest.raises(ValueError, match=name):
            ent.solve(**{name: value})
    # every scipy.sparse format of C is densified (an absent entry is a cost of 0)
    dense = OptimalTransport(a, b, C).solve()
    for fmt in ("csr_matrix", "coo_array", "dok_matrix", "lil_matrix", "dia_matrix", "bsr_array"):
        res = OptimalTransport(a, b, getattr(sparse, fmt)(C)).solve()
        assert res.status is Status.OPTIMAL and res.objective == pytest.approx(dense.objective, rel=1e-12)
