"""Entropic Wasserstein barycenters (iterative Bregman projections) against POT's
ot.bregman.barycenter and CVXPY (the exponential-cone model and the exact LP)."""
import math

import numpy as np
import ot
import pytest

from cvxkit.problems.barycenter import Barycenter
from cvxkit.solvers import Status
from cvxkit.solvers.barycenter import barycenter


def gaussians(n=40):
    x = np.linspace(0, 1, n)

    def g(mean, sd):
        h = np.exp(-((x - mean) ** 2) / (2 * sd**2)) + 1e-3
        return h / h.sum()

    A = np.stack([g(0.25, 0.05), g(0.7, 0.1), g(0.5, 0.03)])
    return A, (x[:, None] - x[None, :]) ** 2


def tiny(seed=0, n=4, m=5, K=2):
    rng = np.random.default_rng(seed)
    A = rng.random((K, m)) + 0.1
    A /= A.sum(1, keepdims=True)
    return A, rng.random((n, m))


@pytest.mark.parametrize("reg", [1e-2, 2e-3])
def test_equals_pot(reg, backend):
    A, M = gaussians()
    w = np.array([0.2, 0.5, 0.3])
    res = barycenter(A, M, reg, weights=w, tol=1e-12, backend=backend)
    assert res.status is Status.OPTIMAL and res.method == "barycenter"
    ref = ot.bregman.barycenter(A.T, M, reg, weights=w, method="sinkhorn_log",
                                numItermax=100_000, stopThr=1e-15)
    assert np.abs(res.x - ref).max() <= 1e-8 * ref.max()
    # the plans: columns the measures, rows the barycenter, given by the potentials
    P = res.info["plans"]
    np.testing.assert_allclose(P.sum(axis=2), np.broadcast_to(res.x, (3, 40)), atol=1e-12)
    np.testing.assert_allclose(P.sum(axis=1), A, atol=1e-13)
    f, g = res.dual
    np.testing.assert_allclose(np.exp((f[0][:, None] + g[0][None, :] - M) / reg), P[0],
                               rtol=1e-9, atol=1e-16)
    cost = np.einsum("knm,nm->k", P, M)
    ent = np.sum(P * np.log(P), axis=(1, 2))
    assert res.objective == pytest.approx(float(w @ (cost + reg * ent)), rel=1e-12)


def test_cvxpy_exponential_cone_check():
    A, C = tiny(seed=1)
    prob = Barycenter(A, C, reg=0.05, weights=[0.3, 0.7])
    res = prob.solve(tol=1e-10)
    rep = prob.check(res, rtol=1e-6, atol=1e-9)
    assert rep.ok, rep
    assert rep.distance < 1e-4


def test_small_reg_approaches_the_lp_barycenter():
    """LP* - reg log(nm) <= entropic optimum <= LP*, and the transport part above LP*."""
    A, C = tiny(seed=2)
    lp = Barycenter(A, C, reg=None).reference()
    assert lp.status is Status.OPTIMAL
    n, m = C.shape
    for reg in (1e-2, 1e-3):
        res = Barycenter(A, C, reg=reg).solve(tol=1e-10)
        assert res.status is Status.OPTIMAL
        assert lp.objective - reg * math.log(n * m) - 1e-9 <= res.objective <= lp.objective + 1e-9
        transport = float(res.info["weights"] @ res.info["transport_costs"])
        assert lp.objective - 1e-9 <= transport <= lp.objective + reg * math.log(n * m)
    with pytest.raises(ValueError, match="reg > 0"):
        Barycenter(A, C).solve()


def test_numpy_and_jax_agree_and_weights_normalized():
    A, M = gaussians(30)
    a = barycenter(A, M, 5e-3, weights=[1.0, 2.0, 1.0], tol=1e-11)
    b = barycenter(A, M, 5e-3, weights=[0.25, 0.5, 0.25], tol=1e-11, backend="jax")
    assert a.iterations == b.iterations
    assert np.abs(a.x - b.x).max() <= 1e-12
    np.testing.assert_allclose(a.info["weights"], [0.25, 0.5, 0.25])


def test_zero_entries_scaling_and_other_support():
    """Zero entries in the measures; a barycenter support of another size; scaling the mass,
    and C and reg together, scales the answer and changes nothing else."""
    A, C = tiny(seed=3, n=7, m=5, K=3)
    A[1, 2] = 0.0
    A[1] /= A[1].sum()
    base = barycenter(A, C, 0.02, tol=1e-11)
    scaled = barycenter(4 * A, 5 * C - 2, 0.1, tol=1e-11)
    assert base.status is scaled.status is Status.OPTIMAL
    assert base.x.shape == (7,) and base.iterations == scaled.iterations
    assert np.abs(scaled.x - 4 * base.x).max() <= 1e-10
    assert (base.info["plans"][1][:, 2] == 0).all()


def test_warm_start_max_iter_and_time_limit():
    A, M = gaussians(30)
    cold = barycenter(A, M, 5e-3, tol=1e-10)
    warm = barycenter(A, M, 5e-3, tol=1e-10, warm_start=cold)
    assert warm.status is Status.OPTIMAL and warm.iterations <= 1
    again = barycenter(A, M, 5e-3, tol=1e-10, warm_start=cold.info["f"])
    assert again.iterations <= 1
    capped = barycenter(A, M, 5e-3, tol=1e-10, max_iter=3)
    assert capped.status is Status.MAX_ITER and capped.iterations == 3 and capped.message
    assert barycenter(A, M, 5e-3, time_limit=1e-9).status is Status.TIME_LIMIT
    with pytest.raises(ValueError, match="warm_start must be a Result of method 'barycenter'"):
        barycenter(A, M, 5e-3, warm_start=np.zeros((2, 30)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(A=np.array([[0.5, 0.5], [0.2, 0.3]])), "same total mass"),
    (dict(A=np.array([[0.5, -0.5, 1.0]])), "negative"),
    (dict(C=np.ones((3, 2))), r"shape \(n, 3\)"),
    (dict(C=np.full((2, 3), np.nan)), "NaN"),
    (dict(weights=[1.0, 0.0]), "positive"),
    (dict(weights=[1.0]), r"shape \(2,\)"),
    (dict(reg=0.0), "reg"),
])
def test_bad_input(kwargs, match):
    args = dict(A=np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]]), C=np.ones((2, 3)), reg=0.1,
                weights=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        barycenter(args["A"], args["C"], args["reg"], weights=args["weights"])
