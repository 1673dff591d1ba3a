"""Unbalanced entropic OT (``OptimalTransport(..., reg_m=...)``, ``sinkhorn(..., reg_m=...)``)
against POT's ``ot.unbalanced.sinkhorn_unbalanced(reg_type="kl")``, the CVXPY/Clarabel model and
balanced Sinkhorn, on both back ends."""
import math
import warnings

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import clouds
from cvxkit.problems import OptimalTransport
from cvxkit.solvers import Status
from cvxkit.solvers.sinkhorn import sinkhorn

INF = math.inf
#: the unbalanced stopping rule bounds the pending change of the potentials (units of reg); the
#: distance to the solution is at most that over 1 - tau_a tau_b (<= 1e3 here): plans and
#: objectives are compared to ACCURACY * tol relative
ACCURACY = 1e3


def pot_unbalanced(a, b, C, reg, reg_m):
    """POT's plan run to machine precision, and its objective with the generalized KL's mass
    terms that POT's ``total_cost`` leaves out (``sum q - sum p`` of each divergence)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P, log = ot.unbalanced.sinkhorn_unbalanced(a, b, C, reg, reg_m, reg_type="kl",
                                                   stopThr=1e-16, numItermax=20_000, log=True)
    lam = reg_m if isinstance(reg_m, tuple) else (reg_m, reg_m)
    m = P.sum()
    obj = log["total_cost"] + reg * (a.sum() * b.sum() - m)
    obj += sum(lam_k * (h.sum() - m) for lam_k, h in zip(lam, (a, b)) if math.isfinite(lam_k))
    return P, float(obj)


def instance(n, m, seed, mass_b=1.6):
    """Point clouds with masses 1 and ``mass_b``."""
    a, b, C = clouds(n, m, seed=seed)
    return a, mass_b * b, C


CASES = {  # name: (seed, reg, reg_m); one shape, so that JAX compiles once
    "one-lam": (1, 0.05, 1.0),
    "pair": (2, 0.02, (0.3, 2.0)),
    "exact-rows": (3, 0.05, (INF, 0.5)),
    "small-reg": (4, 0.005, 0.2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pot(case, backend):
    seed, reg, reg_m = CASES[case]
    a, b, C = instance(30, 25, seed)
    tol = 1e-11
    res = OptimalTransport(a, b, C, reg=reg, reg_m=reg_m).solve(backend=backend, tol=tol)
    assert res.status is Status.OPTIMAL, res.message
    assert res.info["fixed_point_residual"] <= tol
    P, obj = pot_unbalanced(a, b, C, reg, reg_m)
    assert np.abs(res.x - P).max() <= ACCURACY * tol * P.max()
    assert abs(res.objective - obj) <= ACCURACY * tol * abs(obj)
    assert abs(res.info["transport_cost"] - np.vdot(C, P)) <= ACCURACY * tol * np.vdot(C, P)
    # strong duality, and the potentials give the plan and its marginals
    assert abs(res.objective - res.info["dual_objective"]) <= ACCURACY * tol * abs(obj)
    f, g = res.dual
    np.testing.assert_allclose(np.outer(a, b) * np.exp((f[:, None] + g[None, :] - C) / reg),
                               res.x, rtol=1e-9)
    lam = reg_m if isinstance(reg_m, tuple) else (reg_m, reg_m)
    np.testing.assert_allclose(res.x.sum(1), a * np.exp(-f / lam[0]), rtol=ACCURACY * tol)
    np.testing.assert_allclose(res.x.sum(0), b * np.exp(-g / lam[1]), rtol=ACCURACY * tol)
    # an exact side is a constraint: its marginal error is the primal residual
    if math.isinf(lam[0]):
        assert res.primal_residual == pytest.approx(np.abs(res.x.sum(1) - a).sum(), abs=1e-15)
        assert res.primal_residual <= tol * a.sum()
    else:
        assert res.primal_residual == 0.0


@pytest.mark.parametrize("n, m, reg_m", [(7, 6, 1.0), (7, 6, (0.3, 2.0)), (7, 6, (INF, 0.5)),
                                         (5, 8, (0.8, INF))])
def test_matches_cvxpy(n, m, reg_m, backend):
    a, b, C = instance(n, m, seed=n + m, mass_b=0.7)
    a[1] = 0.0  # a zero-mass row: zero in the plan and left out of the model's divergences
    prob = OptimalTransport(a, b, C, reg=0.1, reg_m=reg_m)
    res = prob.solve(backend=backend, tol=1e-10)
    assert res.status is Status.OPTIMAL and np.all(res.x[1] == 0)
    rep = prob.check(res, rtol=1e-7, atol=1e-9)  # Clarabel's accuracy on exponential cones
    assert rep.ok, rep
    assert rep.distance < 1e-4


def test_exact_on_both_sides_is_balanced_sinkhorn(backend):
    """reg_m = inf: the balanced plan; KL(P || a b^T) = sum P log P - <a, log a> - <b, log b>
    - M + M^2 on U(a, b), M the common mass."""
    a, b, C = clouds(12, 10, seed=5)
    a, b = 3 * a, 3 * b
    tol = 1e-11
    bal = OptimalTransport(a, b, C, reg=0.05).solve(backend=backend, tol=tol)
    res = OptimalTransport(a, b, C, reg=0.05, reg_m=INF).solve(backend=backend, tol=tol)
    assert res.status is bal.status is Status.OPTIMAL
    assert np.abs(res.x - bal.x).max() <= ACCURACY * tol * bal.x.max()
    M = a.sum()
    shift = -0.05 * (a @ np.log(a) + b @ np.log(b)) - 0.05 * M + 0.05 * M**2
    assert res.objective == pytest.approx(bal.objective + shift, rel=ACCURACY * tol)
    assert res.primal_residual <= 2 * tol * M


def test_warm_start_from_own_result(backend):
    a, b, C = instance(30, 25, seed=6)
    prob = OptimalTransport(a, b, C, reg=0.01, reg_m=(0.5, 2.0))
    cold = prob.solve(backend=backend, tol=1e-10)
    warm = prob.solve(backend=backend, tol=1e-10, warm_start=cold)
    assert cold.status is warm.status is Status.OPTIMAL
    assert warm.iterations <= max(10, 0.1 * cold.iterations)
    assert np.abs(warm.x - cold.x).max() <= 1e-7 * cold.x.max()
    # the raw potentials, in the user's units
    again = prob.solve(backend=backend, tol=1e-10, warm_start=cold.dual)
    assert again.status is Status.OPTIMAL and again.iterations == warm.iterations


def test_units_and_history():
    """C, reg and reg_m scaled together: the same iterations and plan; the objective scales."""
    a, b, C = instance(12, 10, seed=7)
    base = sinkhorn(a, b, C, 0.05, reg_m=(0.4, 3.0), tol=1e-10, verbose=False)
    for k in (-6, 6):
        s = 10.0**k
        res = sinkhorn(a, b, s * C, s * 0.05, reg_m=(s * 0.4, s * 3.0), tol=1e-10)
        assert res.status is Status.OPTIMAL and res.iterations == base.iterations
        assert np.abs(res.x - base.x).max() <= 1e-12 * base.x.max()
        assert res.objective == pytest.approx(s * base.objective, rel=1e-12)
    h = base.history
    assert h["fixed_point_res"][-1] <= 1e-10 and len(h["eps"]) == len(h["iteration"])
    assert h["eps"][-1] == pytest.approx(0.05)


def test_status_honesty(backend):
    a, b, C = instance(12, 10, seed=8)
    prob = OptimalTransport(a, b, C, reg=0.05, reg_m=1.0)
    capped = prob.solve(backend=backend, tol=1e-12, max_iter=5)
    assert capped.status is Status.MAX_ITER and capped.info["fixed_point_residual"] > 1e-12
    res = prob.solve(backend=backend, dtype="float32", tol=1e-12, max_iter=2_000)
    assert res.status in (Status.MAX_ITER, Status.OPTIMAL_INACCURATE), res.status
    assert res.info["fixed_point_residual"] > 1e-12
    res = prob.solve(backend=backend, dtype="float32", tol=1e-5)
    assert res.status is Status.OPTIMAL and res.info["fixed_point_residual"] <= 1e-5


@pytest.mark.parametrize("reg_m, msg", [
    (0.0, "reg_m"), (-1.0, "reg_m"), (float("nan"), "reg_m"), ((1.0, 0.0), r"reg_m\[1\]"),
    ((1.0, float("nan")), r"reg_m\[1\]"), ((1.0,), "length 1"), ((1.0, 2.0, 3.0), "length 3"),
    ("1", "reg_m"), ((1.0, None), r"reg_m\[1\]"),
])
def test_bad_reg_m(reg_m, msg):
    a, b, C = instance(5, 4, seed=0)
    with pytest.raises(ValueError, match=msg):
        OptimalTransport(a, b, C, reg=0.1, reg_m=reg_m)
    with pytest.raises(ValueError, match=msg):
        sinkhorn(a, b, C, 0.1, reg_m=reg_m)


def test_bad_unbalanced_input():
    a, b, C = instance(5, 4, seed=0)  # sum(b) = 1.6 sum(a)
    with pytest.raises(ValueError, match="exact unbalanced OT"):
        OptimalTransport(a, b, C, reg_m=1.0)
    for reg_m in (INF, (INF, INF)):  # both marginals exact: the masses must agree
        with pytest.raises(ValueError, match="same total mass"):
            OptimalTransport(a, b, C, reg=0.1, reg_m=reg_m)
    with pytest.raises(ValueError, match="same total mass"):  # balanced: unchanged
        OptimalTransport(a, b, C, reg=0.1)
    with pytest.raises(ValueError, match="negative"):
        OptimalTransport(-a, b, C, reg=0.1, reg_m=1.0)
    with pytest.raises(ValueError, match="shape"):
        OptimalTransport(a, b, C[:, :-1], reg=0.1, reg_m=1.0)
    with pytest.raises(ValueError, match="reg"):
        OptimalTransport(a, b, C, reg=0.0, reg_m=1.0)
    prob = OptimalTransport(a, b, C, reg=0.1, reg_m=1.0)
    with pytest.raises(ValueError, match="exact OT"):
        prob.solve(method="network_simplex")
    with pytest.raises(ValueError, match="reg_m"):  # set by the problem
        prob.solve(reg_m=2.0)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 10), m=st.integers(1, 10), seed=st.integers(0, 10**6),
       mass=st.floats(1e-3, 1e3), ratio=st.floats(0.1, 10.0), units=st.sampled_from([1e-2, 1.0, 1e2]),
       rel=st.floats(1e-2, 3.0), side=st.sampled_from(["both", "pair", "exact-a", "exact-b"]))
def test_optimal_is_certified_by_the_dual(n, m, seed, mass, ratio, units, rel, side):
    """Whatever the masses, units and relaxation: an optimal answer has a duality gap within a
    few tol of its size, and its exact sides hold to tol (the dual value bounds the optimum
    from below, so this certifies the objective)."""
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) + 1e-3, rng.random(m) + 1e-3
    a, b = mass * a / a.sum(), ratio * mass * b / b.sum()
    C = units * (rng.random((n, m)) + rng.choice([0.0, -0.5, 3.0]))
    lam_a, lam_b = units * 10.0 ** rng.uniform(-1, 1, 2)
    reg_m = {"both": lam_a, "pair": (lam_a, lam_b), "exact-a": (INF, lam_b),
             "exact-b": (lam_a, INF)}[side]
    tol = 1e-9
    res = sinkhorn(a, b, C, rel * units, reg_m=reg_m, tol=tol)
    assert res.status is Status.OPTIMAL, res.message
    size = (abs(res.objective) + abs(res.info["transport_cost"])
            + rel * units * (a.sum() * b.sum() + res.x.sum()))
    assert abs(res.objective - res.info["dual_objective"]) <= 10 * tol * size
    exact_err = {"exact-a": np.abs(res.x.sum(1) - a).sum() / a.sum(),
                 "exact-b": np.abs(res.x.sum(0) - b).sum() / b.sum()}.get(side, 0.0)
    assert exact_err <= tol and (res.x >= 0).all()
