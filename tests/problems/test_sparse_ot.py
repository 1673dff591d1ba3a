"""Sparsity-constrained OT (Liu, Puigcerver & Blondel, ICLR 2023) against POT's
ot.smooth.smooth_ot_dual / smooth_ot_semi_dual and, for a loose cardinality, CVXPY."""
import contextlib
import io
import itertools

import numpy as np
import ot
import pytest

from cvxkit.problems import SparsityConstrainedTransport
from cvxkit.solvers import Status
from cvxkit.solvers.sparse_ot import sparse_ot


def gaussian_clouds(n=20, m=8, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)) + 1.0
    return np.full(n, 1 / n), np.full(m, 1 / m), ot.dist(x, y)


def pot(a, b, C, reg, k, semi=False):
    """POT's plan (it prints debug lines in the semi-dual path: silenced)."""
    solve = ot.smooth.smooth_ot_semi_dual if semi else ot.smooth.smooth_ot_dual
    with contextlib.redirect_stdout(io.StringIO()):
        return solve(a, b, C, reg, reg_type="sparsity_constrained", max_nz=k, stopThr=1e-14,
                     numItermax=10_000)


@pytest.mark.parametrize("k", [3, 5, 19])
def test_equals_pot(k):
    a, b, C = gaussian_clouds()
    res = sparse_ot(a, b, C, 1.0, k, tol=1e-9)
    assert res.status is Status.OPTIMAL and res.method == "sparse_ot"
    T = res.x
    assert (T >= 0).all() and ((T > 0).sum(axis=0) <= k).all()
    assert (res.info["nonzeros_per_column"] <= k).all()
    assert res.info["relative_marginal_error"] <= 1e-9
    for semi in (False, True):
        assert np.abs(T - pot(a, b, C, 1.0, k, semi)).max() <= 1e-6
    # strong duality of the (convex-relaxed) problem at the solution
    assert res.objective == pytest.approx(res.info["dual_objective"], rel=1e-7)


def test_loose_cardinality_is_the_quadratic_ot_of_cvxpy():
    a, b, C = gaussian_clouds(12, 6, seed=1)
    prob = SparsityConstrainedTransport(a, b, C, reg=0.5, max_nz=12)
    res = prob.solve(tol=1e-10)
    rep = prob.check(res, rtol=1e-7, atol=1e-9)
    assert rep.ok, rep
    # POT's l2 smooth OT is the same problem
    with contextlib.redirect_stdout(io.StringIO()):
        T = ot.smooth.smooth_ot_dual(a, b, C, 0.5, reg_type="l2", stopThr=1e-14,
                                     numItermax=10_000)
    assert np.abs(res.x - T).max() <= 1e-6


def test_tiny_instance_against_enumerated_supports():
    """m = 4 rows, n = 2 columns, k = 2: the best plan over all 36 column supports (each a
    QP solved by CVXPY) is at least the dual value, and the plan found respects k."""
    import cvxpy as cp

    rng = np.random.default_rng(3)
    a, b = np.full(4, 0.25), np.full(2, 0.5)
    C = rng.random((4, 2))
    res = sparse_ot(a, b, C, 0.3, 2, tol=1e-8)
    assert res.status is Status.OPTIMAL and (res.info["nonzeros_per_column"] <= 2).all()
    best = np.inf
    for s0, s1 in itertools.product(itertools.combinations(range(4), 2), repeat=2):
        mask = np.zeros((4, 2), bool)
        mask[list(s0), 0] = mask[list(s1), 1] = True
        T = cp.Variable((4, 2), nonneg=True)
        obj = cp.sum(cp.multiply(C, T)) + 0.15 * cp.sum_squares(T)
        p = cp.Problem(cp.Minimize(obj), [cp.sum(T, 1) == a, cp.sum(T, 0) == b,
                                          cp.multiply(~mask, T) == 0])
        try:
            p.solve(solver="CLARABEL")
        except cp.error.SolverError:  # an infeasible support
            continue
        if p.status == "optimal":
            best = min(best, p.value)
    assert res.info["dual_objective"] <= best + 1e-8
    assert res.objective == pytest.approx(best, rel=1e-6)


def test_tied_dual_optimum_is_reported_not_optimal():
    """k * m barely above n: the dual optimum is a kink (tied top-k sets) and no plan from the
    dual gradient is feasible. POT's plans then miss the marginals by 1e-2..1e-1 without a
    warning (measured); here the status says so."""
    a, b, C = gaussian_clouds(seed=3)
    res = sparse_ot(a, b, C, 1.0, 3, tol=1e-9, max_iter=300)
    assert res.status is Status.MAX_ITER and res.info["relative_marginal_error"] > 1e-3
    assert (res.info["nonzeros_per_column"] <= 3).all()


def test_warm_start_max_iter_and_scaling():
    a, b, C = gaussian_clouds(seed=4)
    cold = sparse_ot(a, b, C, 1.0, 5, tol=1e-9)
    warm = sparse_ot(a, b, C, 1.0, 5, tol=1e-9, warm_start=cold)
    assert warm.status is Status.OPTIMAL and warm.iterations == 0
    capped = sparse_ot(a, b, C, 1.0, 5, tol=1e-9, max_iter=2)
    assert capped.status is Status.MAX_ITER and capped.iterations == 2 and capped.message
    scaled = sparse_ot(a, b, 10 * C, 10.0, 5, tol=1e-9)
    assert scaled.status is Status.OPTIMAL  # the same scaled instance, up to round-off
    assert np.abs(scaled.x - cold.x).max() <= 1e-8
    assert scaled.objective == pytest.approx(10 * cold.objective, rel=1e-8)
    with pytest.raises(ValueError, match="warm_start must be a Result of method 'sparse_ot'"):
        sparse_ot(a, b, C, 1.0, 5, warm_start=np.zeros(3))


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_nz=3, n=20, m=8), None),
    (dict(max_nz=2, n=20, m=8), r"max_nz \* m >= n"),  # POT returns a plan 0.05 off
    (dict(max_nz=0, n=5, m=5), "max_nz must be an integer >= 1"),
    (dict(max_nz=2.5, n=5, m=5), "max_nz must be an integer"),
    (dict(reg=-1.0, n=5, m=5), "reg"),
])
def test_feasibility_and_bad_input(kwargs, match):
    a, b, C = gaussian_clouds(kwargs.pop("n"), kwargs.pop("m"))
    args = {"reg": 1.0, "max_nz": 2, **kwargs}
    if match is None:
        assert sparse_ot(a, b, C, args["reg"], args["max_nz"], tol=1e-8).converged
        return
    with pytest.raises((ValueError, TypeError), match=match):
        sparse_ot(a, b, C, args["reg"], args["max_nz"])
    with pytest.raises((ValueError, TypeError), match=match):
        SparsityConstrainedTransport(a, b, C, args["reg"], args["max_nz"])
