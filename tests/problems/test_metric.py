"""Metric nearness and correlation clustering by Project and Forget, against CVXPY/HiGHS."""
import importlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvxkit.problems import CorrelationClustering, MetricNearness
from cvxkit.problems.metric import max_triangle_violation
from cvxkit.solvers import Status
from cvxkit.solvers.project_forget import project_forget


def dissimilarity(n, seed, kind="halfnormal"):
    rng = np.random.default_rng(seed)
    A = np.abs(rng.standard_normal((n, n))) if kind == "halfnormal" else rng.random((n, n))
    D = np.triu(A, 1)
    return D + D.T


def signed_graph(n, seed, p=0.5):
    rng = np.random.default_rng(seed)
    S = np.triu(rng.random((n, n)) < p, 1).astype(float)
    S = S + S.T
    neg = 1.0 - S
    np.fill_diagonal(neg, 0.0)
    return S, neg


def test_three_points_one_projection():
    D = np.array([[0, 3, 7], [3, 0, 1], [7, 1, 0.0]])
    res = MetricNearness(D).solve(tol=1e-12)
    assert res.status is Status.OPTIMAL
    np.testing.assert_allclose(res.x, [[0, 4, 6], [4, 0, 2], [6, 2, 0]], atol=1e-12)
    assert res.info["found"] == 1 and res.objective == pytest.approx(1.5)
    l1 = MetricNearness(D, norm="l1").solve(tol=1e-8)
    assert l1.status is Status.OPTIMAL and l1.objective == pytest.approx(3.0, rel=1e-6)


def test_l2_equals_digest_value():
    # digest: n = 20, |N(0,1)| from default_rng(0), objective 10.7840482977
    res = MetricNearness(dissimilarity(20, 0)).solve(tol=1e-10)
    assert res.status is Status.OPTIMAL
    assert res.objective == pytest.approx(10.7840482977, rel=1e-9)


@pytest.mark.parametrize("n, seed", [(12, 1), (30, 2)])
@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_l2_matches_cvxpy(n, seed, backend):
    prob = MetricNearness(dissimilarity(n, seed, "uniform"))
    tol = 1e-8
    res = prob.solve(backend=backend, tol=tol)
    assert res.status is Status.OPTIMAL
    ref = prob.reference()
    assert ref.status is Status.OPTIMAL
    # the solution is unique: entries agree to 1e-6 (Clarabel's own accuracy is ~1e-7)
    np.testing.assert_allclose(res.x, ref.x, atol=1e-6)
    rep = prob.check(res, rtol=1e-7, atol=tol * prob.D.max())
    assert rep.ok, rep
    assert res.info["lower_bound"] <= ref.objective + 1e-9 * ref.objective


def test_weighted_l2_matches_cvxpy():
    D = dissimilarity(15, 3)
    rng = np.random.default_rng(3)
    W = rng.random((15, 15)) + 0.1
    W = (W + W.T) / 2
    prob = MetricNearness(D, weights=W)
    res = prob.solve(tol=1e-9)
    rep = prob.check(res, rtol=1e-7, atol=1e-9 * D.max())
    assert res.status is Status.OPTIMAL and rep.ok, rep


@pytest.mark.parametrize("seed", [0, 1])
def test_l1_matches_highs(seed):
    prob = MetricNearness(dissimilarity(10, seed, "uniform"), norm="l1")
    tol = 1e-6
    res = prob.solve(tol=tol, max_iter=20_000)
    assert res.status is Status.OPTIMAL
    rep = prob.check(res, rtol=10 * tol, atol=tol * prob.D.max())
    assert rep.ok, rep
    # the certified bound is below the LP optimum and within tol of the returned value
    assert res.info["lower_bound"] <= rep.reference_objective * (1 + 1e-9)
    assert res.objective - res.info["lower_bound"] <= 2 * tol * max(res.objective, 1.0)


@pytest.mark.parametrize("n, seed", [(12, 0), (25, 1)])
def test_correlation_clustering_lp_matches_highs(n, seed):
    prob = CorrelationClustering(*signed_graph(n, seed))
    tol = 1e-7
    res = prob.solve(tol=tol, max_iter=20_000)
    assert res.status is Status.OPTIMAL
    rep = prob.check(res, rtol=1e-5, atol=1e-6)
    assert rep.ok, rep
    lb, cost = res.info["lower_bound"], res.info["clustering_cost"]
    assert lb <= rep.reference_objective + 1e-9
    assert lb <= cost  # a valid lower bound on every clustering
    assert cost == prob.clustering_cost(res.info["labels"])


def test_correlation_clustering_triangle_value_one():
    # two positive edges and one negative: the LP value is 1
    Wp = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0.0]])
    Wm = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0.0]])
    res = CorrelationClustering(Wp, Wm).solve(tol=1e-9)
    assert res.objective == pytest.approx(1.0, abs=1e-7)
    assert res.info["clustering_cost"] == 1.0


def test_two_cliques_recovered():
    A = np.zeros((8, 8))
    A[:4, :4] = A[4:, 4:] = 1
    np.fill_diagonal(A, 0)
    prob = CorrelationClustering.from_graph(A)
    res = prob.solve(tol=1e-8)
    labels = res.info["labels"]
    assert res.info["clustering_cost"] == 0.0
    assert len(set(labels[:4])) == 1 and len(set(labels[4:])) == 1 and labels[0] != labels[4]


@settings(max_examples=15, deadline=None)
@given(n=st.integers(3, 25), seed=st.integers(0, 10_000), loss=st.sampled_from(["l2", "l1"]))
def test_every_answer_is_a_metric(n, seed, loss):
    D = dissimilarity(n, seed, "uniform") * (1 + seed % 7)
    tol = 1e-6
    res = project_forget(D, loss=loss, tol=tol, max_iter=20_000)
    if res.status is Status.OPTIMAL:
        x = res.x
        assert max_triangle_violation(x) <= tol * D.max()
        assert x.min() >= -tol * D.max()
        np.testing.assert_array_equal(x, x.T)
        assert np.all(np.diag(x) == 0)
    else:  # never a silent failure: the status says it, and the violation is reported
        assert res.status in (Status.MAX_ITER, Status.TIME_LIMIT)


def test_max_iter_is_reported():
    res = MetricNearness(dissimilarity(30, 4)).solve(tol=1e-12, max_iter=2)
    assert res.status is Status.MAX_ITER and res.iterations == 2
    assert res.primal_residual > 0


@pytest.mark.parametrize(
    "D, match",
    [
        (np.array([[0, 1.0], [2.0, 0]]), "symmetric"),
        (np.array([[0, -1.0], [-1.0, 0]]), "negative"),
        (np.array([[0, np.nan], [np.nan, 0]]), "non-finite"),
        (np.ones((2, 3)), "square"),
        (np.array([[1, 1.0], [1.0, 0]]), "diagonal"),
    ],
)
def test_bad_input(D, match):
    with pytest.raises(ValueError, match=match):
        MetricNearness(D)


def test_bad_options():
    D = dissimilarity(5, 0)
    with pytest.raises(ValueError, match="norm"):
        MetricNearness(D, norm="l3")
    with pytest.raises(ValueError, match="weights"):
        MetricNearness(D, weights=np.zeros((5, 5)))
    with pytest.raises(ValueError, match="valid options"):
        MetricNearness(D).solve(step=3)
    with pytest.raises(ValueError, match="same shape"):
        CorrelationClustering(np.zeros((3, 3)), np.zeros((4, 4)))


# --- issue 17: scale invariance, validation ---------------------------------------------------
@pytest.mark.parametrize("k", [-9, -3, 3, 9])
@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_metric_nearness_scale_invariance(norm, k):
    """D x 10^k: the same status, the metric x 10^k, the objective x 10^{2k} (L2) or 10^k (L1),
    and the reference (solved on normalized data) agrees."""
    D = dissimilarity(6, 1, kind="uniform")
    s = 10.0**k
    base = MetricNearness(D, norm=norm).solve(tol=1e-7)
    prob = MetricNearness(D * s, norm=norm)
    res = prob.solve(tol=1e-7)
    assert res.status is base.status is Status.OPTIMAL
    np.testing.assert_allclose(res.x / s, base.x, atol=1e-12)
    power = 2 if norm == "l2" else 1
    assert res.objective == pytest.approx(base.objective * s**power, rel=1e-9)
    rep = prob.check(res, rtol=1e-6)
    assert rep.ok, rep
    assert rep.reference_objective == pytest.approx(base.objective * s**power, rel=1e-6)


def test_correlation_clustering_weight_scale():
    Wp, Wm = signed_graph(6, 2)
    base = CorrelationClustering(Wp, Wm).solve()
    for s in (1e-9, 1e9):
        prob = CorrelationClustering(Wp * s, Wm * s)
        res = prob.solve()
        assert res.status is base.status
        assert res.objective == pytest.approx(base.objective * s, rel=1e-6)
        assert prob.check(res).ok


@pytest.mark.parametrize("D, match", [
    (np.array([[0, 1 + 1j], [1 - 1j, 0]]), "real"),
    (np.array([[0, 1.0], [1.0, 0]]) + 0j, "real"),
    ([[0.0, 1.0], [1.0]], "ragged"),
    (np.zeros((0, 0)), "non-empty"),
    ([], "non-empty"),
    (np.array([[0, None], [None, 0]]), "numeric"),
    ("D", "numeric"),
    (np.zeros((1, 1)), "at least 2"),
])
def test_bad_dissimilarity_types(D, match):
    with pytest.raises(ValueError, match="D") as e:
        MetricNearness(D)
    assert e.match(match)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"])
def test_sparse_input_is_densified(fmt):
    import scipy.sparse as sp

    D = dissimilarity(5, 3)
    dense = MetricNearness(D).solve()
    res = MetricNearness(sp.csr_matrix(D).asformat(fmt), weights=sp.coo_matrix(np.ones((5, 5)))
                         ).solve()
    np.testing.assert_array_equal(res.x, dense.x)
    Wp, Wm = signed_graph(5, 0)
    cc = CorrelationClustering(sp.csr_matrix(Wp).asformat(fmt), sp.csr_matrix(Wm).asformat(fmt))
    np.testing.assert_array_equal(cc.W_plus, Wp)


def test_bad_option_types_and_warm_start():
    D = dissimilarity(5, 0)
    for kw, name in ((dict(gamma="big"), "gamma"), (dict(gamma=-1.0), "gamma"),
                     (dict(max_sweeps=2.5), "max_sweeps"), (dict(max_sweeps=True), "max_sweeps"),
                     (dict(tol="small"), "tol"), (dict(max_iter=1.5), "max_iter")):
        with pytest.raises((TypeError, ValueError), match=name):
            MetricNearness(D, norm="l1").solve(**kw)
    # Project and Forget resumes only from its own Result (its duals), never from a point
    with pytest.raises(ValueError, match="warm_start"):
        MetricNearness(D).solve(warm_start=np.zeros((5, 5)))
    with pytest.raises(ValueError, match="W_plus"):
        CorrelationClustering(np.ones((2, 2)) * 1j, np.ones((2, 2)))
    with pytest.raises(ValueError, match="W_minus"):
        CorrelationClustering(np.zeros((3, 3)), [[0, 1], [1]])
    with pytest.raises(ValueError, match="weights"):
        MetricNearness(D, weights=np.ones((5, 5)) + 1j)


@pytest.mark.parametrize("gamma", [5e-324, 1e-300, 1e300])
def test_extreme_gamma_is_never_a_wrong_optimal(gamma):
    """gamma = 5e-324 overflowed the L1 lower bound to NaN, which read as a zero gap: status
    optimal with the objective 13% above the optimum."""
    prob = MetricNearness(dissimilarity(5, 4), norm="l1")
    res = prob.solve(gamma=gamma, max_iter=200)
    if res.status is Status.OPTIMAL:
        assert prob.check(res, rtol=1e-5).ok
    else:  # an honest failure whose residuals show why
        assert res.status in (Status.MAX_ITER, Status.NUMERICAL_ERROR)
        assert not (res.dual_residual <= 1e-6 and res.primal_residual <= 1e-6 * prob.D.max())


def test_data_whose_objective_overflows_is_refused():
    """D near the largest float: (D + D.T)/2 overflowed to inf and the L2 objective's scale
    raised OverflowError; now the symmetrization is safe and an objective that cannot be
    represented is refused by name."""
    D = np.array([[0, 1.5e308, 1.0], [1.5e308, 0, 1.0], [1.0, 1.0, 0]])
    with pytest.raises(ValueError, match="D is too large for the L1"):
        MetricNearness(D, norm="l1")
    with pytest.raises(ValueError, match="D is too large for the L2"):
        MetricNearness(D / 1e150)
    with pytest.raises(ValueError, match="D is too large"):
        project_forget(D / 1e150)
    with pytest.raises(ValueError, match="W_plus and W_minus are too large"):
        CorrelationClustering(D, D / 2)
    prob = MetricNearness(D / 1e160)  # large but representable: solved, and checked
    res = prob.solve()
    assert res.status is Status.OPTIMAL and prob.check(res).ok


def test_reference_survives_a_clarabel_failure_at_tight_tolerance():
    """Clarabel fails at 1e-9 on this instance (SolverError): the reference used to be nan."""
    prob = MetricNearness(dissimilarity(7, 0, kind="uniform"))
    ref = prob.reference()
    assert ref.status is Status.OPTIMAL and np.isfinite(ref.objective)
    assert prob.check(prob.solve(tol=1e-8), rtol=1e-6).ok


def test_family_knowledge_lives_in_problems():
    """Layering (DESIGN.md): the metric family's validators and objective are in
    cvxkit.problems.metric; project_forget checks its own arrays (same defects refused, named by
    its argument) and measures the same objective."""
    import cvxkit.problems.metric as fam
    pf = importlib.import_module("cvxkit.solvers.project_forget")

    for name in ("validate_dissimilarity", "validate_weights", "check_magnitude",
                 "metric_objective", "symmetric_matrix"):
        assert getattr(fam, name).__module__ == "cvxkit.problems.metric"
        assert not hasattr(pf, name)
    D = dissimilarity(6, 0)
    W = 1.0 + dissimilarity(6, 1)
    np.fill_diagonal(W, 0.0)
    X = np.minimum(D, 1.0)
    for loss in ("l1", "l2"):
        assert pf._objective(X, D, fam.validate_weights(W, 6), loss) == \
            fam.metric_objective(X, D, fam.validate_weights(W, 6), loss)
    for bad, match in [(-D, "negative"), (D + np.eye(6), "diagonal"), (D[:, :-1], "square"),
                       (np.triu(D), "symmetric"), (np.zeros((1, 1)), "2 points")]:
        with pytest.raises(ValueError, match=match):
            project_forget(bad)
        with pytest.raises(ValueError, match=match):
            fam.validate_dissimilarity(bad)
    with pytest.raises(ValueError, match="W must be positive"):
        project_forget(D, -W)
    with pytest.raises(ValueError, match="weights must be positive"):
        MetricNearness(D, weights=-W)


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_warm_start_resumes_from_the_duals(norm):
    """A warm start rebuilds the iterate from the kept duals (the dual method's invariant, to
    round-off), converges at once from its own optimum, and starts a perturbed D from them."""
    from cvxkit.solvers.project_forget import _State, _resume

    D = dissimilarity(12, 3, "uniform")
    res = project_forget(D, loss=norm, tol=1e-8)
    assert res.status is Status.OPTIMAL
    s = _State(D, np.ones_like(D), norm, res.info["gamma"], float(D.max()))
    _resume(s, res)
    assert np.abs(s.x - res.x).max() <= 1e-12 * D.max()
    warm = project_forget(D, loss=norm, tol=1e-8, warm_start=res)
    assert warm.status is Status.OPTIMAL and warm.iterations == 0
    assert abs(warm.objective - res.objective) <= 1e-8 * abs(res.objective)
    D2 = 1.01 * D
    cold = project_forget(D2, loss=norm, tol=1e-8)
    warm = MetricNearness(D2, norm=norm).solve(tol=1e-8, warm_start=res)
    assert warm.status is Status.OPTIMAL and warm.iterations <= cold.iterations
    assert abs(warm.objective - cold.objective) <= 1e-6 * abs(cold.objective)
    with pytest.raises(ValueError, match="loss"):
        project_forget(D, loss="l1" if norm == "l2" else "l2", warm_start=res)
    with pytest.raises(ValueError, match="5 points.*shape \\(12, 12\\)"):
        project_forget(D[:5, :5], loss=norm, warm_start=res)
