"""Convex ReLU training: ADMM (numpy, JAX) and BCD against CVXPY/Clarabel, the recovered network,
the robust program, the estimator and bad input."""
import numpy as np
import pytest

from cvxkit.problems import ConvexReLU, ConvexReLUNet
from cvxkit.problems.convex_relu import sample_patterns
from cvxkit.solvers import Status

TOL = 1e-6
slow_jax = pytest.mark.slow


def backends(*fast_jax):
    """numpy always; JAX (a few seconds of compilation per case) in the default run only when
    ``fast_jax`` is true, else marked slow."""
    return ["numpy", pytest.param("jax", marks=[] if all(fast_jax) else [slow_jax])]


def viol_tol(res):
    """The cone violation the solver's own tolerance allows (a multiple of eps_prim)."""
    return 10 * res.info["eps_prim"]


def a_data():
    """The digest's Test A: n = 6, exact enumeration by gates, beta = 0.1 (optimum 0.3110486495)."""
    x = np.array([-2, -1, 0, 1, 2, 3.0])
    X = np.c_[x, np.ones(6)]
    y = np.array([1, 0, 0.5, 0, 1, 2.0])
    t = np.arange(-2.5, 3, 1.0)
    G = np.concatenate([np.c_[np.ones(6), -t].T, np.c_[-np.ones(5), t[1:]].T], axis=1)
    return X, y, G


def regression(n=40, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, -1] = 1.0
    y = np.maximum(X[:, 0], 0) - 0.5 * np.maximum(X[:, 1] - 0.3, 0) + 0.1 * rng.standard_normal(n)
    return X, y


def classification(n=40, d=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, -1] = 1.0
    y = np.where(X[:, 0] ** 2 + 0.5 * X[:, 1] > 0.6, 1.0, -1.0)
    return X, y


def test_exact_enumeration_matches_published_optimum(backend):
    X, y, G = a_data()
    prob = ConvexReLU(X, y, beta=0.1, gates=G)
    assert prob.P == 11
    ref = prob.reference()
    assert abs(ref.objective - 0.3110486495) < 1e-8
    res = prob.solve(backend=backend, tol=1e-8)
    rep = prob.check(res, rtol=1e-6, atol=1e-6)
    assert res.status is Status.OPTIMAL and rep.ok, rep


@pytest.mark.parametrize("variant, loss, backend", [
    pytest.param(v, l, b, marks=[slow_jax] if b == "jax" and (v, l) != ("gated", "logistic") else [])
    for v in ("relu", "gated") for l in ("squared", "logistic") for b in ("numpy", "jax")])
def test_admm_matches_cvxpy(variant, loss, backend):
    X, y = regression() if loss == "squared" else classification()
    prob = ConvexReLU(X, y, n_patterns=8, beta=0.05, loss=loss, variant=variant, seed=3)
    res = prob.solve("relu_admm", backend=backend, tol=TOL)
    rep = prob.check(res, rtol=1e-4, atol=viol_tol(res))
    assert res.status is Status.OPTIMAL and rep.ok, rep
    # the objective reported is the problem's objective of x
    assert res.objective == pytest.approx(prob.objective(res.x), rel=1e-12)


def test_default_tolerance_within_1e_4():
    X, y = regression(60, 5, seed=4)
    for variant in ("relu", "gated"):
        prob = ConvexReLU(X, y, n_patterns=12, beta=0.02, variant=variant, seed=1)
        res = prob.solve()
        rep = prob.check(res, rtol=1e-4, atol=viol_tol(res))
        assert rep.ok, rep


def test_bcd_gated_matches_cvxpy(backend):
    X, y = regression(50, 4, seed=2)
    prob = ConvexReLU(X, y, n_patterns=10, beta=0.05, variant="gated", seed=5)
    res = prob.solve("bcd", backend=backend, tol=1e-8)
    rep = prob.check(res, rtol=1e-6, atol=1e-9)
    assert res.status is Status.OPTIMAL and rep.ok, rep
    admm = prob.solve("relu_admm", tol=1e-8)
    assert admm.objective == pytest.approx(res.objective, rel=1e-6)


def test_bcd_only_for_gated_squared():
    X, y = regression()
    with pytest.raises(ValueError, match="gated"):
        ConvexReLU(X, y, n_patterns=4).solve("bcd")


@pytest.mark.parametrize("variant", ["relu", "gated"])
def test_network_reproduces_convex_model(variant):
    X, y = regression(30, 3, seed=6)
    prob = ConvexReLU(X, y, n_patterns=6, beta=0.05, variant=variant, seed=2)
    res = prob.solve(tol=1e-10, max_iter=100_000)
    assert res.status is Status.OPTIMAL
    net = prob.network(res.x)
    # cone violation of the ADMM answer is ~1e-10: predictions agree to 1e-8
    np.testing.assert_allclose(net.predict(X), prob.predict(res.x), rtol=0, atol=1e-8)
    assert net.regularized_loss(X, y, prob.beta) == pytest.approx(res.objective, rel=1e-8)
    assert net.hidden == int(np.sum(np.linalg.norm(np.asarray(res.x), axis=-1) > 0))


def test_network_of_reference_solution():
    X, y, G = a_data()
    prob = ConvexReLU(X, y, beta=0.1, gates=G)
    ref = prob.reference()
    net = prob.network(ref.x)
    np.testing.assert_allclose(net.predict(X), prob.predict(ref.x), atol=1e-8)
    assert net.regularized_loss(X, y, 0.1) == pytest.approx(ref.objective, rel=1e-8)


def c_data():
    k, j = np.arange(8)[:, None], np.arange(3)[None, :]
    X = np.sin(1 + 0.7 * k + 1.3 * j) + 0.1 * j
    y = np.array([1, -1, 1, 1, -1, 1, -1, -1.0])
    G = np.array([[1, 0, -1, 0.5], [0, 1, 1, -0.5], [1, -1, 0, 1]])
    return X, y, G


@pytest.mark.parametrize("eps, optimum", [(0.0, 0.58107707), (0.05, 0.77357351)])
@pytest.mark.parametrize("backend", backends(False))
def test_robust_hinge_published_values(eps, optimum, backend):
    """The digest's Test C (mean hinge, beta = 0.01): with the sum of hinges and beta' = n beta
    the optimum is n times the published one."""
    X, y, G = c_data()
    n = X.shape[0]
    prob = ConvexReLU(X, y, beta=0.01 * n, loss="hinge", gates=G, epsilon=eps)
    ref = prob.reference()
    assert ref.objective / n == pytest.approx(optimum, abs=2e-8)
    res = prob.solve(backend=backend, tol=1e-8, max_iter=200_000)
    rep = prob.check(res, rtol=1e-5, atol=viol_tol(res))
    assert rep.ok, rep


@pytest.mark.parametrize("loss, backend", [
    pytest.param("squared", "numpy", marks=pytest.mark.slow), pytest.param("squared", "jax", marks=slow_jax),
    pytest.param("logistic", "numpy", marks=pytest.mark.slow),
    pytest.param("logistic", "jax", marks=slow_jax)])
def test_robust_matches_cvxpy(loss, backend):
    X, y = regression(20, 3, seed=7) if loss == "squared" else classification(20, 3, seed=8)
    prob = ConvexReLU(X, y, n_patterns=5, beta=0.1, loss=loss, epsilon=0.05, seed=1)
    # tol bounds the residuals: at 1e-6 the cone violations (6e-7, 2e-5) buy an objective 1.3e-4
    # and 3.8e-4 below the optimum; at 1e-8 it is within 4e-6
    res = prob.solve(backend=backend, tol=1e-8, max_iter=400_000)
    rep = prob.check(res, rtol=1e-4, atol=viol_tol(res))
    assert res.status is Status.OPTIMAL and rep.ok, rep
    # robustness costs: the robust optimum exceeds the standard one
    std = ConvexReLU(X, y, n_patterns=5, beta=0.1, loss=loss, seed=1)
    assert rep.reference_objective > std.reference().objective


def test_patterns_deduplicated_and_nonzero():
    X, _ = regression(30, 3)
    D, G = sample_patterns(X, 200, seed=0)
    assert D.shape[1] == np.unique(D, axis=1).shape[1] < 200
    assert D.any(axis=0).all() and G.shape == (3, D.shape[1])
    np.testing.assert_array_equal(D, (X @ G >= 0).astype(float))


@pytest.mark.parametrize("kwargs, match", [
    ({"y": np.ones(5)}, "shape"),
    ({"X": np.full((40, 4), np.nan)}, "finite"),
    ({"n_patterns": 0}, "n_patterns"),
    ({"beta": -1.0}, "beta"),
    ({"epsilon": -0.1}, "epsilon"),
    ({"loss": "l7"}, "loss"),
    ({"variant": "tanh"}, "variant"),
    ({"loss": "logistic"}, "labels"),
    ({"variant": "gated", "epsilon": 0.1}, "relu"),
])
def test_bad_input(kwargs, match):
    X, y = regression()
    args = {"X": X, "y": y, **kwargs}
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=match):
        ConvexReLU(X, y, **args)


def test_unknown_option_and_bad_weights():
    X, y = regression()
    prob = ConvexReLU(X, y, n_patterns=4)
    with pytest.raises(ValueError, match="unknown option"):
        prob.solve(stepsize=3)
    with pytest.raises(ValueError, match="entries"):
        prob.objective(np.zeros(3))


def test_max_iter_reported():
    X, y = regression()
    res = ConvexReLU(X, y, n_patterns=8).solve(max_iter=20, tol=1e-12)
    assert res.status is Status.MAX_ITER


def test_estimator_regression_and_classification():
    X, y = regression(60, 3, seed=9)
    est = ConvexReLUNet(n_patterns=10, beta=0.01, fit_intercept=False)
    assert est.get_params()["beta"] == 0.01
    assert est.set_params(beta=0.02).beta == 0.02
    with pytest.raises(ValueError, match="not fitted"):
        est.predict(X)
    est.fit(X, y)
    assert est.result_.status is Status.OPTIMAL
    # at the default tol the cone constraints hold to ~1e-5, and so does this equality
    np.testing.assert_allclose(est.predict(X), est.problem_.predict(est.result_.x), atol=1e-4)
    assert est.score(X, y) > 0.8
    Xc, yc = classification(60, 3, seed=2)
    labels = np.where(yc > 0, "b", "a")
    clf = ConvexReLUNet(n_patterns=10, beta=0.01, loss="logistic").fit(Xc, labels)
    assert set(clf.predict(Xc)) <= {"a", "b"}
    assert clf.score(Xc, labels) > 0.9
    with pytest.raises(ValueError, match="unknown parameter"):
        clf.set_params(alpha=1)
