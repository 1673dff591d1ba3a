"""Sinkhorn-Newton-Sparse (Tang et al., ICLR 2024): the entropic plan of our Sinkhorn and of
POT's log-domain Sinkhorn at small regularization, on both back ends, in few iterations."""
import math

import numpy as np
import ot
import pytest

from conftest import clouds
from cvxkit.problems import OptimalTransport
from cvxkit.solvers import Status
from cvxkit.solvers.sinkhorn import sinkhorn
from cvxkit.solvers.sinkhorn_newton_sparse import sinkhorn_newton_sparse

TOL = 1e-10


@pytest.fixture(scope="module")
def small_reg():
    """2-D clouds, reg = 0.002 * mean(C), Sinkhorn's plan at tol 1e-12 and POT's log-domain
    plan at stopThr 1e-13."""
    a, b, C = clouds(40, 30, seed=4)
    reg = 0.002 * C.mean()
    ref = sinkhorn(a, b, C, reg, tol=1e-12, max_iter=10**6)
    assert ref.status is Status.OPTIMAL
    pot = ot.sinkhorn(a, b, C, reg, method="sinkhorn_log", stopThr=1e-13, numItermax=200_000)
    return a, b, C, reg, ref, pot


def test_equals_sinkhorn_and_pot_log(small_reg, backend):
    a, b, C, reg, ref, pot = small_reg
    res = sinkhorn_newton_sparse(a, b, C, reg, backend=backend, tol=TOL)
    assert res.status is Status.OPTIMAL and res.method == "sinkhorn_newton_sparse"
    assert res.info["relative_marginal_error"] <= TOL
    assert res.info["newton_steps"] >= 1
    # a relative marginal error tol bounds the plan's distance to the solution by ~tol / reg
    # in the potentials: compare entrywise relative to the largest entry
    scale = ref.x.max()
    assert np.abs(res.x - ref.x).max() <= 1e-7 * scale
    assert res.objective == pytest.approx(ref.objective, rel=1e-9, abs=1e-12)
    assert np.abs(res.x - pot).max() <= 1e-7 * scale
    # strong duality and the potentials give the plan
    assert res.info["dual_objective"] == pytest.approx(res.objective, rel=1e-8)
    f, g = res.dual
    np.testing.assert_allclose(np.exp((f[:, None] + g[None, :] - C) / reg), res.x,
                               rtol=1e-8, atol=1e-14)


def test_fewer_iterations_than_sinkhorn(small_reg):
    """The point of the method: at small reg a handful of Newton steps replace the slow
    linear tail of Sinkhorn."""
    a, b, C, reg, ref, _ = small_reg
    res = sinkhorn_newton_sparse(a, b, C, reg, tol=TOL)
    assert res.iterations * 5 < ref.iterations, (res.iterations, ref.iterations)
    assert res.info["sinkhorn_iterations"] + res.info["newton_steps"] == res.iterations
    assert res.info["line_search_failures"] == 0


def test_numpy_and_jax_take_the_same_steps(small_reg):
    a, b, C, reg, _, _ = small_reg
    r_np = sinkhorn_newton_sparse(a, b, C, reg, tol=1e-9, check_every=1)
    r_jx = sinkhorn_newton_sparse(a, b, C, reg, tol=1e-9, backend="jax", check_every=1)
    assert r_np.iterations == r_jx.iterations
    assert r_np.info["newton_steps"] == r_jx.info["newton_steps"]
    # same steps up to round-off; each stops at marginal error <= tol, so the plans agree to
    # a few tol (relative to the largest entry)
    assert np.abs(r_np.x - r_jx.x).max() <= 10 * 1e-9 * r_np.x.max()


def test_problem_adapter_and_cvxpy_check():
    a, b, C = clouds(12, 10, seed=5)
    prob = OptimalTransport(a, b, C, reg=0.02)
    res = prob.solve(method="sinkhorn_newton_sparse", tol=1e-10)
    rep = prob.check(res, rtol=1e-6, atol=1e-9)
    assert rep.ok, rep
    with pytest.raises(ValueError, match="balanced entropic OT"):
        OptimalTransport(a, b, C).solve(method="sinkhorn_newton_sparse")
    with pytest.raises(ValueError, match="balanced entropic OT"):
        OptimalTransport(a, 2 * b, C, reg=0.1, reg_m=1.0).solve(method="sinkhorn_newton_sparse")


def test_zero_mass_and_scaling():
    """Zero-mass rows and columns are dropped and restored; scaling the mass and C (with reg)
    scales the answer and changes nothing else."""
    a, b, C = clouds(30, 25, seed=6)
    a[3] = 0.0
    b[[0, 7]] = 0.0
    a, b = a / a.sum(), b / b.sum()
    base = sinkhorn_newton_sparse(a, b, C, 0.003, tol=TOL)
    scaled = sinkhorn_newton_sparse(5 * a, 5 * b, 7 * C + 3, 0.021, tol=TOL)
    assert base.status is scaled.status is Status.OPTIMAL
    # the same normalized instance up to round-off, which the last Newton steps can see
    assert abs(base.iterations - scaled.iterations) <= 2
    assert (base.x[3] == 0).all() and (base.x[:, [0, 7]] == 0).all()
    assert np.abs(scaled.x - 5 * base.x).max() <= 1e-8 * scaled.x.max()


def test_warm_start():
    a, b, C = clouds(50, 50, seed=7)
    reg = 0.002 * C.mean()
    cold = sinkhorn_newton_sparse(a, b, C, reg, tol=TOL)
    again = sinkhorn_newton_sparse(a, b, C, reg, tol=TOL, warm_start=cold)
    assert again.status is Status.OPTIMAL and again.iterations <= 1
    # from a Sinkhorn Result at a loose tol, or its potentials: Newton finishes it
    loose = sinkhorn(a, b, C, reg, tol=1e-3)
    for warm in (loose, loose.dual):
        res = sinkhorn_newton_sparse(a, b, C, reg, tol=TOL, warm_start=warm)
        assert res.status is Status.OPTIMAL and res.iterations < cold.iterations
    with pytest.raises(ValueError, match="warm_start must be a Result of method 'sinkhorn' or"):
        sinkhorn_newton_sparse(a, b, C, reg, warm_start=np.zeros(3))


def test_max_iter_and_time_limit_are_honest():
    a, b, C = clouds(40, 40, seed=8)
    reg = 0.002 * C.mean()
    full = sinkhorn_newton_sparse(a, b, C, reg, tol=TOL)
    for cap in (1, full.info["sinkhorn_iterations"] + 1, full.iterations - 1):
        res = sinkhorn_newton_sparse(a, b, C, reg, tol=TOL, max_iter=cap)
        assert res.status is Status.MAX_ITER and res.iterations == cap, (cap, res)
        assert res.info["relative_marginal_error"] > TOL and res.message
    res = sinkhorn_newton_sparse(a, b, C, reg, tol=TOL, time_limit=1e-9)
    assert res.status is Status.TIME_LIMIT


def test_float32_unreachable_tol_is_not_optimal():
    a, b, C = clouds(30, 30, seed=9)
    res = sinkhorn_newton_sparse(a, b, C, 0.01, tol=1e-12, dtype="float32", max_iter=60)
    assert res.status is not Status.OPTIMAL


def test_k_adapts_and_history():
    a, b, C = clouds(60, 60, seed=10)
    res = sinkhorn_newton_sparse(a, b, C, 0.001 * C.mean(), tol=TOL, k=1, k_max=8)
    assert res.status is Status.OPTIMAL
    assert 1 < res.info["k"] <= 8
    h = res.history
    assert h["marginal_err"][-1] <= TOL and len(h["k"]) == len(h["iteration"])
    assert max(h["k"]) > 0 and h["k"][0] == 0  # 0 during the Sinkhorn warm-up


BAD_OPTIONS = [
    ({"k": 0}, "k must be an integer >= 1"),
    ({"k": 2.5}, "k must be an integer"),
    ({"switch_tol": -1.0}, "switch_tol"),
    ({"cg_tol": 2.0}, "cg_tol"),
    ({"ridge": math.nan}, "ridge"),
    ({"eps_decay": 1.5}, "eps_decay"),
    ({"tol": 0.0}, "tol"),
    ({"max_iter": "x"}, "max_iter"),
]


@pytest.mark.parametrize("options, match", BAD_OPTIONS)
def test_bad_options(options, match):
    a, b, C = clouds(5, 4, seed=0)
    with pytest.raises((ValueError, TypeError), match=match):
        sinkhorn_newton_sparse(a, b, C, 0.1, **options)


@pytest.mark.parametrize("change, match", [
    (lambda a, b, C: (-a, b, C), "negative"),
    (lambda a, b, C: (a, b, np.where(C > 0.5, np.nan, C)), "NaN"),
    (lambda a, b, C: (a, 2 * b, C), "same total mass"),
    (lambda a, b, C: (a, b, C[:, :-1]), "shape"),
])
def test_bad_input(change, match):
    a, b, C = clouds(5, 4, seed=0)
    with pytest.raises(ValueError, match=match):
        sinkhorn_newton_sparse(*change(a, b, C), 0.1)
    with pytest.raises(ValueError, match="reg"):
        sinkhorn_newton_sparse(a, b, C, 0.0)


def test_not_traceable():
    import jax

    a, b, C = clouds(5, 4, seed=0)
    with pytest.raises(ValueError, match="cannot run inside jax.jit"):
        jax.jit(lambda C: sinkhorn_newton_sparse(a, b, C, 0.1).objective)(C)
