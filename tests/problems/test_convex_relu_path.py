"""Convex ReLU: beta_max (the smallest beta with the zero solution) against CVXPY, the
regularization path (warm started, continuous, matching cold solves) and the estimator's path."""
import copy

import numpy as np
import pytest

from cvxkit.problems import ConvexReLU, ConvexReLUNet
from cvxkit.solvers import Status

try:  # tests/problems is on sys.path under pytest's default import mode
    from test_convex_relu import classification, regression
except ImportError:  # pragma: no cover - another import mode
    from tests.problems.test_convex_relu import classification, regression


def instance(variant, loss, beta=1e-3, n_patterns=8):
    X, y = regression() if loss == "squared" else classification()
    return ConvexReLU(X, y, n_patterns=n_patterns, beta=beta, loss=loss, variant=variant)


@pytest.mark.parametrize("variant", ["relu", "gated"])
@pytest.mark.parametrize("loss", ["squared", "logistic", "hinge"])
def test_beta_max_is_where_zero_becomes_optimal(variant, loss):
    """Just above beta_max CVXPY's optimum is the objective of zero weights; just below it is
    lower. (The ReLU variant's value comes from the cone projections, below the gated one's.)"""
    prob = instance(variant, loss)
    top = prob.beta_max()
    zero = prob.objective(np.zeros(prob.shape))
    above = copy.copy(prob)
    above.beta = 1.001 * top
    below = copy.copy(prob)
    below.beta = 0.99 * top
    assert above.reference().objective == pytest.approx(zero, rel=1e-6)
    assert below.reference().objective < zero * (1 - 1e-5)
    if variant == "relu":
        gated = ConvexReLU(prob.X, prob.y, n_patterns=8, loss=loss, variant="gated")
        assert top < gated.beta_max()


def test_beta_max_not_for_the_robust_program():
    X, y = regression()
    with pytest.raises(ValueError, match="epsilon = 0"):
        ConvexReLU(X, y, n_patterns=8, epsilon=0.1).beta_max()


def test_relu_al_at_beta_max_stops_optimal_with_zero_weights():
    """At beta = beta_max the weights tend to zero and the violation relative to max|c| alone
    never settled (max_iter at 100 000); the violation's floor of 1e-2 max|y| ends it."""
    prob = instance("relu", "squared")
    prob.beta = prob.beta_max()
    res = prob.solve("relu_al")
    assert res.status is Status.OPTIMAL
    assert res.objective == pytest.approx(prob.objective(np.zeros(prob.shape)), rel=1e-4)


@pytest.mark.parametrize("variant", ["relu", "gated"])
def test_path_matches_cold_solves_and_is_monotone(variant):
    prob = instance(variant, "squared")
    path = prob.path(n_betas=6, ratio=1e-2, tol=1e-6)
    top = prob.beta_max()
    assert np.all(np.diff(path.betas) < 0) and path.betas[-1] == pytest.approx(1e-2 * top)
    assert path.betas[0] == pytest.approx(top * 1e-2 ** (1 / 6))
    assert all(s is Status.OPTIMAL for s in path.statuses)
    # the optimal value is nondecreasing and concave in beta (an infimum of affine functions)
    f = path.objectives
    assert np.all(np.diff(f) <= 1e-6 * f[:-1])
    for beta, res in zip(path.betas[1:], path.results[1:]):
        cold = copy.copy(prob)
        cold.beta = beta
        ref = cold.reference().objective
        assert res.objective == pytest.approx(ref, rel=1e-5)
    at_top = prob.path([top], tol=1e-6).results[0]
    assert np.linalg.norm(at_top.x) <= 1e-3 * np.linalg.norm(path.results[-1].x)


def test_path_predictions_are_continuous():
    """The squared loss is strictly convex in the predictions, so the optimal prediction is
    unique and continuous in beta: halving the spacing of two values shrinks the change."""
    prob = instance("relu", "squared")
    b = 0.05 * prob.beta_max()
    gaps = []
    for h in (0.2, 0.1, 0.05, 0.025):
        path = prob.path([b, b * (1 - h)], tol=1e-8)
        p = path.predictions()
        gaps.append(np.abs(p[0] - p[1]).max())
    assert gaps[-1] < 0.25 * gaps[0]
    assert all(a > b for a, b in zip(gaps, gaps[1:]))


def test_path_input_checked():
    prob = instance("gated", "squared")
    with pytest.raises(ValueError, match="nonnegative"):
        prob.path([1.0, -1.0])
    with pytest.raises(ValueError, match="warm_start"):
        prob.path([1.0], warm_start=np.zeros(prob.shape))
    with pytest.raises(ValueError, match="ratio"):
        prob.path(ratio=2.0)


def test_estimator_path_pruned_networks():
    X, y = regression()
    est = ConvexReLUNet(n_patterns=8, solver_options={"tol": 1e-6})
    nets = est.path(X[:, :-1], y, n_betas=4, ratio=1e-2)
    assert [m.beta for m in nets] == sorted((m.beta for m in nets), reverse=True)
    pruned = est.path(X[:, :-1], y, n_betas=4, ratio=1e-2, prune=True)  # the same solves
    for m, p in zip(nets[1:], pruned[1:]):
        assert m.result_.status is Status.OPTIMAL
        prob, W = m.problem_, m.result_.x
        # pruning keeps the convex model's predictions to 1e-8 with at most n neurons
        np.testing.assert_allclose(prob.predict(p.result_.x), prob.predict(W),
                                   atol=1e-8 * np.abs(y).max())
        assert p.network_.hidden <= min(m.network_.hidden, X.shape[0])
        # the network equals the convex model up to the cone violation (<= 2e-6 max|Xu|)
        bound = 2e-6 * np.abs(prob.X @ W.reshape(-1, prob.d).T).max() * m.network_.hidden
        np.testing.assert_allclose(p.predict(X[:, :-1]), prob.predict(W), atol=bound)
    assert nets[-1].score(X[:, :-1], y) > nets[1].score(X[:, :-1], y)


def test_one_vs_all_classification_and_multi_output_regression():
    """More than two classes: one network per class against the rest, the largest output wins;
    a 2-D y: one network per column. Each equals the binary / single-output fit."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    opts = dict(n_patterns=8, beta=0.1, loss="logistic", standardize=True)
    clf = ConvexReLUNet(**opts).fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert clf.decision_function(X).shape == (150, 3) and not hasattr(clf, "network_")
    assert all(e.result_.status is Status.OPTIMAL for e in clf.estimators_)
    assert clf.score(X, names) > 0.95
    one = ConvexReLUNet(**opts).fit(X, names == "virginica")
    np.testing.assert_allclose(clf.decision_function(X)[:, 2], one.decision_function(X),
                               atol=1e-6)
    with pytest.raises(ValueError, match="one program"):
        ConvexReLUNet(**opts).path(X, names)
    Xr, yr = regression()
    Y = np.c_[yr, -2 * yr + 1]
    reg = ConvexReLUNet(n_patterns=8, beta=0.01).fit(Xr, Y)
    assert reg.predict(Xr).shape == (40, 2)
    single = ConvexReLUNet(n_patterns=8, beta=0.01).fit(Xr, Y[:, 1])
    np.testing.assert_allclose(reg.predict(Xr)[:, 1], single.predict(Xr), atol=1e-10)
    assert reg.score(Xr, Y) == pytest.approx(np.mean(
        [ConvexReLUNet(n_patterns=8, beta=0.01).fit(Xr, c).score(Xr, c) for c in Y.T]))
    with pytest.raises(ValueError, match="shape"):
        reg.score(Xr, yr)


def test_standardize_is_an_affine_change_of_the_data():
    """standardize=True trains on centred, unit-variance columns and applies the same
    transform to new data: scaling a column of X by 1000 leaves the predictions unchanged."""
    X, y = regression()
    X = X[:, :-1]
    est = ConvexReLUNet(n_patterns=8, beta=0.01, standardize=True).fit(X, y)
    Xs = X * np.array([1000.0, 1.0, 1e-3])
    scaled = ConvexReLUNet(n_patterns=8, beta=0.01, standardize=True).fit(Xs, y)
    np.testing.assert_allclose(scaled.problem_.X, est.problem_.X, atol=1e-12)
    np.testing.assert_allclose(scaled._features(2 * Xs), est._features(2 * X), atol=1e-12)
    # the same program up to round-off; the answers agree to the solver's tolerance (1e-4)
    np.testing.assert_allclose(scaled.predict(Xs), est.predict(X), atol=1e-4 * np.abs(y).max())
    with pytest.raises(TypeError, match="standardize"):
        ConvexReLUNet(standardize="yes").fit(X, y)
