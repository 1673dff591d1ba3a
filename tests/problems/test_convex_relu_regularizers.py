"""Convex ReLU with the feature-group and l1 regularizers (``regularizer="feature_gl1"``,
``"l1"``): relu_al and rfista against CVXPY/Clarabel at the solver's tolerance, the sparsity
each penalty induces, beta_max against CVXPY, pruning, the recovered network's loss, the
estimator, and clear errors for bad values and for the methods that solve only the neuron
group-l1 program."""
import numpy as np
import pytest

from cvxkit.problems import ConvexReLU, ConvexReLUNet
from cvxkit.solvers import Status

try:  # tests/problems is on sys.path under pytest's default import mode
    from test_relu_al import TOL, assert_solved, data
except ImportError:  # pragma: no cover - another import mode
    from tests.problems.test_relu_al import TOL, assert_solved, data

REGULARIZERS = ["feature_gl1", "l1"]


def problem(regularizer, loss="squared", variant="relu", beta=0.1):
    X, y = data(loss, 20)
    return ConvexReLU(X, y, n_patterns=4, beta=beta, loss=loss, variant=variant,
                      regularizer=regularizer)


def sparse_data(n=30, d=6, seed=1):
    """Targets from features 0 and 1 only; features 2-4 are noise, the last is ones."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, -1] = 1.0
    y = np.maximum(X[:, 0], 0) - np.maximum(X[:, 1] - 0.3, 0) + 0.05 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("regularizer", REGULARIZERS)
@pytest.mark.parametrize("variant, loss, method", [
    ("relu", "squared", "relu_al"), ("relu", "logistic", "relu_al"),
    ("gated", "squared", "rfista"), ("gated", "logistic", "rfista")])
def test_matches_cvxpy(regularizer, variant, loss, method):
    """optimal; the objective within the certified gap of Clarabel's (whose dual value bounds
    it from below) and the cone violation within the tolerance."""
    prob = problem(regularizer, loss, variant)
    res = prob.solve(method, tol=TOL)
    assert_solved(prob, res, TOL)
    ref = prob.reference().objective
    assert res.objective * (1 - res.info["gap"]) <= ref * (1 + 1e-9)
    assert res.info["gap"] <= TOL


@pytest.mark.parametrize("regularizer", REGULARIZERS)
def test_gated_program_by_relu_al(regularizer):
    """relu_al on the gated program (no constraints) is R-FISTA with the same penalty."""
    prob = problem(regularizer, "squared", "gated")
    assert_solved(prob, prob.solve("relu_al", tol=TOL), TOL)


def test_objective_and_cvxpy_model_use_the_regularizer():
    prob = {r: problem(r) for r in ("neuron_gl1", "feature_gl1", "l1")}
    W = np.random.default_rng(3).standard_normal(prob["l1"].shape)
    U = W.reshape(-1, W.shape[-1])
    expect = {"neuron_gl1": np.linalg.norm(U, axis=1).sum(),
              "feature_gl1": np.linalg.norm(U, axis=0).sum(), "l1": np.abs(U).sum()}
    loss = {r: p.objective(W) - p.beta * expect[r] for r, p in prob.items()}
    assert loss["feature_gl1"] == pytest.approx(loss["neuron_gl1"], rel=1e-12)
    assert loss["l1"] == pytest.approx(loss["neuron_gl1"], rel=1e-12)
    for r, p in prob.items():
        cp_prob, var = p.to_cvxpy()
        var.value = U
        assert cp_prob.objective.value == pytest.approx(p.objective(W), rel=1e-12)


@pytest.mark.parametrize("variant, method", [("gated", "rfista"), ("relu", "relu_al")])
def test_sparsity_patterns(variant, method):
    """feature_gl1 zeros whole input features (every neuron's weight on them) on the gated
    program, where the neuron group norm at the same fraction of its beta_max zeros none; l1
    zeros single entries inside nonzero neurons. Each pattern matches Clarabel's (which has no
    exact zeros: below 1e-6 of the largest). (On the ReLU program with these sampled dense
    gates feature_gl1 zeros no feature before beta_max: see docs/convex_relu.md.)"""
    X, y = sparse_data()
    for reg in ("neuron_gl1", "feature_gl1", "l1"):
        base = ConvexReLU(X, y, n_patterns=6, variant=variant, regularizer=reg)
        prob = base.at_beta((0.3 if variant == "gated" else 0.1) * base.beta_max())
        res = prob.solve(method, tol=TOL)
        assert res.status is Status.OPTIMAL, (reg, res.message)
        U = res.x.reshape(-1, prob.d)
        Uref = prob.reference().x.reshape(-1, prob.d)
        small = np.abs(Uref) <= 1e-6 * np.abs(Uref).max()
        features = np.linalg.norm(U, axis=0) == 0
        rows = np.linalg.norm(U, axis=1) == 0
        if reg == "feature_gl1" and variant == "gated":
            assert features.sum() >= 2 and not features[0]
            np.testing.assert_array_equal(features, small.all(axis=0))
        elif reg == "neuron_gl1" and variant == "gated":
            assert not features.any()  # the neuron group norm keeps every feature here
        if reg == "l1":
            inside = (U == 0) & ~rows[:, None]  # zero entries of nonzero neurons
            assert inside.sum() >= (10 if variant == "gated" else 2)
            # relu_al at tol 1e-6 leaves entries up to ~1e-5 of the largest where the optimum
            # has zeros (the augmented Lagrangian's cone term; 1e-8 at tol 1e-9)
            zero = U == 0 if variant == "gated" else np.abs(U) <= 1e-4 * np.abs(U).max()
            np.testing.assert_array_equal(zero, small)


@pytest.mark.parametrize("regularizer", REGULARIZERS)
@pytest.mark.parametrize("variant, loss", [("gated", "squared"), ("gated", "logistic"),
                                           ("relu", "squared"), ("relu", "logistic")])
def test_beta_max_is_where_zero_becomes_optimal(regularizer, variant, loss):
    """Just above beta_max CVXPY's optimum is the objective of zero weights; just below it is
    lower. Gated: the dual norm of the gradient at zero (largest feature-group norm, largest
    entry); ReLU: the conic program over the cones, below the gated value."""
    prob = problem(regularizer, loss, variant)
    top = prob.beta_max()
    zero = prob.objective(np.zeros(prob.shape))
    assert prob.at_beta(1.001 * top).reference().objective == pytest.approx(zero, rel=1e-6)
    assert prob.at_beta(0.99 * top).reference().objective < zero * (1 - 1e-5)
    if variant == "relu":
        assert top < problem(regularizer, loss, "gated").beta_max()


def test_path_with_l1_matches_cold_solves():
    prob = problem("l1", "squared", "gated")
    path = prob.path(n_betas=3, ratio=0.1, tol=TOL)
    assert all(s is Status.OPTIMAL for s in path.statuses)
    for beta, res in zip(path.betas, path.results):
        ref = prob.at_beta(beta).reference().objective
        assert res.objective == pytest.approx(ref, rel=2 * TOL)


def test_network_reproduces_the_convex_objective():
    """The recovered network's loss plus the regularizer of its effective weights equals the
    convex objective (on Clarabel's solution, whose cones hold to 1e-9)."""
    for reg in ("neuron_gl1", "feature_gl1", "l1"):
        prob = problem(reg)
        ref = prob.reference()
        net = prob.network(ref.x)
        assert net.regularized_loss(prob.X, prob.y, prob.beta, regularizer=reg) == \
            pytest.approx(ref.objective, rel=1e-8)
    with pytest.raises(ValueError, match="regularizer must be one of"):
        net.regularized_loss(prob.X, prob.y, prob.beta, regularizer="l2")


def test_prune_keeps_the_l1_objective_and_refuses_feature_groups():
    """l1 is separate per neuron and homogeneous, so pruning keeps the objective at an optimum
    (beta ||u_j||_1 = <rho*, c_j>); the feature group norms couple the neurons (ValueError)."""
    X, y = sparse_data(n=12, d=3)
    prob = ConvexReLU(X, y, n_patterns=20, beta=0.05, regularizer="l1")
    res = prob.solve("relu_al", tol=1e-8, max_iter=50_000)
    assert res.status is Status.OPTIMAL
    W = prob.prune(res.x)
    before = np.count_nonzero(np.linalg.norm(res.x.reshape(-1, prob.d), axis=1))
    after = np.count_nonzero(np.linalg.norm(W.reshape(-1, prob.d), axis=1))
    assert after < before and after <= prob.n
    np.testing.assert_allclose(prob.predict(W), prob.predict(res.x), atol=1e-8)
    assert prob.objective(W) == pytest.approx(res.objective, rel=1e-6)
    fg = problem("feature_gl1")
    with pytest.raises(ValueError, match="feature_gl1"):
        fg.prune(np.ones(fg.shape))


def test_estimator_takes_the_regularizer():
    X, y = sparse_data()
    est = ConvexReLUNet(n_patterns=6, beta=1.0, variant="gated", regularizer="feature_gl1")
    est.fit(X, y)
    assert est.get_params()["regularizer"] == "feature_gl1"
    assert est.problem_.regularizer == "feature_gl1" and est.result_.method == "rfista"
    assert est.result_.status is Status.OPTIMAL
    assert est.score(X, y) > 0.5
    with pytest.raises(ValueError, match="regularizer must be one of"):
        ConvexReLUNet(regularizer="group").fit(X, y)


def test_bad_regularizer_and_unsupported_methods_raise():
    X, y = data("squared", 20)
    for bad in ("group", "L1", None, 1):
        with pytest.raises(ValueError, match="regularizer must be one of 'neuron_gl1', "
                                             "'feature_gl1', 'l1'"):
            ConvexReLU(X, y, n_patterns=4, regularizer=bad)
    with pytest.raises(ValueError, match="robust program"):
        ConvexReLU(X, y, n_patterns=4, regularizer="l1", epsilon=0.1)
    for reg in REGULARIZERS:
        prob = ConvexReLU(X, y, n_patterns=4, regularizer=reg, variant="gated")
        for method in ("relu_admm", "bcd"):
            with pytest.raises(ValueError, match=f"{method}' solves regularizer='neuron_gl1' "
                                                 f"only.*'relu_al'"):
                prob.solve(method)
        assert prob.default_method() == "rfista"
        assert ConvexReLU(X, y, n_patterns=4, regularizer=reg).default_method() == "relu_al"


@pytest.mark.slow
def test_numpy_and_jax_agree():
    pytest.importorskip("jax")
    prob = problem("l1")
    a, b = prob.solve("relu_al", tol=TOL), prob.solve("relu_al", tol=TOL, backend="jax")
    assert b.status is Status.OPTIMAL and b.iterations == a.iterations
    assert b.objective == pytest.approx(a.objective, rel=1e-10)
