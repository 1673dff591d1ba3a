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


def viol_tol(res, prob=None):
    """The cone violation the solver's own tolerance allows: a multiple of relu_admm's eps_prim,
    or for relu_al twice its constraint_tol relative to max |X u_j| (``prob`` needed)."""
    if "eps_prim" in res.info:
        return 10 * res.info["eps_prim"]
    W = np.asarray(res.x).reshape(-1, prob.d)
    return 2e-6 * np.abs(prob.X @ W.T).max()


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
    res = prob.solve("relu_admm", backend=backend, tol=1e-8)
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
        rep = prob.check(res, rtol=1e-4, atol=viol_tol(res, prob))
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
    res = prob.solve("relu_admm", tol=1e-10, max_iter=100_000)
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


# --- issue 17: no silent wrong answers, clear errors ----------------------------------------
def tiny(n=12, d=3, seed=0, **kw):
    X, y = regression(n, d, seed=seed)
    return ConvexReLU(X, y, **{"n_patterns": 4, "beta": 0.1, **kw})


@pytest.mark.parametrize("method, variant, option", [
    ("relu_admm", "relu", "beta"), ("relu_admm", "relu", "cones"), ("relu_admm", "relu", "loss"),
    ("relu_admm", "relu", "epsilon"), ("relu_admm", "gated", "beta"), ("bcd", "gated", "lam"),
    ("bcd", "gated", "penalty"), ("bcd", "gated", "beta")])
def test_options_the_problem_sets_are_refused(method, variant, option):
    """They gave Python's 'got multiple values for keyword argument' (a TypeError from the
    adapter's call); now Problem.solve refuses them by name, listing the valid options."""
    prob = tiny(variant=variant)
    with pytest.raises(ValueError, match=f"unknown option.*{option}.*valid options"):
        prob.solve(method, **{option: 0.5})


@pytest.mark.parametrize("method", ["relu_admm", "bcd"])
@pytest.mark.parametrize("ws, match", [
    ({"x": 1}, "warm_start"), ("x", "warm_start"), (3.0, r"shape \(4, 3\)"),
    (np.zeros((5, 3)), r"shape \(4, 3\)"), (np.full((4, 3), np.nan), "NaN"),
    ([[1, 2], [3]], "warm_start"), (np.zeros((4, 3), complex), "real"), (object(), "warm_start")])
def test_malformed_warm_start(method, ws, match):
    prob = tiny(variant="gated")
    P = prob.P
    if isinstance(ws, np.ndarray) and ws.shape[0] == 4:
        ws = np.resize(ws, (P, 3))  # the right shape, bad entries
    match = match.replace("4", str(P))
    with pytest.raises(ValueError, match=match):
        prob.solve(method, warm_start=ws)


def test_warm_start_from_other_problem_refused_and_valid_forms_accepted():
    prob, other = tiny(variant="relu"), tiny(variant="relu", n_patterns=9, seed=1)
    res_other = other.solve("relu_admm", tol=1e-4)
    with pytest.raises(ValueError, match="relu_admm on this problem"):
        prob.solve("relu_admm", warm_start=res_other)
    gated = tiny(variant="gated")
    with pytest.raises(ValueError, match="relu_admm on this problem"):  # no cones: other shapes
        gated.solve("relu_admm", warm_start=prob.solve("relu_admm", tol=1e-3))
    # a Result of the same problem, the reference's weights, and bcd <-> relu_admm (gated)
    cold = prob.solve("relu_admm", tol=1e-8)
    warm = prob.solve("relu_admm", tol=1e-8, warm_start=cold)
    assert warm.status is Status.OPTIMAL and warm.iterations <= 10
    ref = prob.reference()
    from_ref = prob.solve("relu_admm", tol=1e-8, warm_start=ref.x)
    assert from_ref.status is Status.OPTIMAL and prob.check(from_ref, 1e-6, viol_tol(from_ref)).ok
    b = gated.solve("bcd", tol=1e-8)
    a = gated.solve("relu_admm", tol=1e-8, warm_start=b)
    assert a.status is Status.OPTIMAL and gated.check(a, 1e-6, 1e-6).ok
    assert gated.solve("bcd", tol=1e-8, warm_start=a).iterations <= b.iterations


def test_robust_warm_start_from_weights():
    """The robust program's ADMM variable is (U, T, S, Q): weights W start it at the tightest
    feasible (T, S, Q) of W."""
    X, _, G = c_data()
    y = np.cos(np.arange(8.0))
    prob = ConvexReLU(X, y, beta=0.1, gates=G, epsilon=0.05)
    with pytest.raises(ValueError, match=r"shape \(2, "):
        prob.solve(warm_start=np.zeros((prob.P, 3)))
    cold = prob.solve(tol=1e-6, max_iter=20_000)
    res = prob.solve(tol=1e-6, warm_start=prob.reference().x, max_iter=20_000)
    assert res.status is Status.OPTIMAL and prob.check(res, 1e-4, viol_tol(res)).ok
    assert res.iterations < cold.iterations


@pytest.mark.parametrize("method, option, value", [
    ("relu_admm", "tol", "x"), ("relu_admm", "tol", -1.0), ("relu_admm", "tol", np.nan),
    ("relu_admm", "max_iter", 2.5), ("relu_admm", "max_iter", True), ("relu_admm", "max_iter", 0),
    ("relu_admm", "check_every", 0), ("relu_admm", "verbose", 1), ("relu_admm", "rho", -1.0),
    ("relu_admm", "rho", "x"), ("relu_admm", "gamma", 2.0), ("relu_admm", "alpha", 2.0),
    ("relu_admm", "adaptive_rho", "yes"), ("relu_admm", "adaptive_rho_tolerance", 0.5),
    ("relu_admm", "dtype", "float16"), ("relu_admm", "seed", -1), ("relu_admm", "seed", 2.5),
    ("relu_admm", "eps_abs", -1.0), ("relu_admm", "eps_rel", "x"),
    ("relu_admm", "time_limit", np.nan), ("relu_admm", "callback", 3),
    ("bcd", "rule", 1), ("bcd", "update", None), ("bcd", "accelerate", [1]),
    ("bcd", "anderson_memory", 2.5), ("bcd", "anderson_every", 0), ("bcd", "block_size", 2),
    ("bcd", "tol", np.inf), ("bcd", "max_iter", None), ("bcd", "seed", "x"),
    ("bcd", "check_every", -5), ("bcd", "dtype", 64), ("bcd", "verbose", None)])
def test_option_types_checked(method, option, value):
    prob = tiny(variant="gated")
    with pytest.raises((TypeError, ValueError), match=option):
        prob.solve(method, **{option: value})


def test_relu_admm_seed_has_no_effect():
    prob = tiny()
    a, b = prob.solve("relu_admm", tol=1e-6, seed=0), prob.solve("relu_admm", tol=1e-6, seed=7)
    assert a.iterations == b.iterations and np.array_equal(a.x, b.x)


@pytest.mark.parametrize("X, y, match", [
    (np.full((6, 2), np.nan), np.ones(6), "X"), (np.full((6, 2), np.inf), np.ones(6), "X"),
    (np.ones((6, 2)) * 1j, np.ones(6), "real"), ([[1.0, 2.0], [3.0]], [1.0, 2.0], "X"),
    (np.zeros((0, 2)), np.zeros(0), "X"), (np.ones((6, 2)), np.zeros(0), "y"),
    (np.ones((6, 2)), np.ones(5), "y"), (np.ones((6, 2)), np.ones((6, 2)), "y"),
    (np.ones((6, 2)), [1, "a", 2, 3, 4, 5], "y"), (np.ones((6, 2)), np.ones(6) * 1j, "real"),
    (np.ones((6, 2)), np.r_[np.ones(5), np.nan], "y"), (np.ones(6), np.ones(6), "X"),
    (None, np.ones(6), "X"), (np.ones((6, 2)), None, "y"), ("abc", np.ones(6), "X")])
def test_bad_data(X, y, match):
    with pytest.raises(ValueError, match=match):
        ConvexReLU(X, y, n_patterns=3)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_patterns": 2.5}, "n_patterns"), ({"beta": "x"}, "beta"), ({"beta": np.inf}, "beta"),
    ({"epsilon": np.nan}, "epsilon"), ({"seed": -1}, "seed"), ({"loss": None}, "loss"),
    ({"gates": np.ones((5, 2))}, "gates"), ({"gates": np.full((3, 2), np.nan)}, "gates")])
def test_bad_parameters(kwargs, match):
    X, y = regression(10, 3)
    with pytest.raises((TypeError, ValueError), match=match):
        ConvexReLU(X, y, **{"n_patterns": 3, **kwargs})


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"])
def test_sparse_X_densified(fmt):
    import scipy.sparse as sp

    X, y = regression(12, 3, seed=3)
    Xs = sp.random(12, 3, density=0.6, random_state=1, format=fmt) + sp.coo_matrix(X * 0.0)
    Xs = Xs.asformat(fmt)
    dense = ConvexReLU(Xs.toarray(), y, n_patterns=4, variant="gated")
    prob = ConvexReLU(Xs, y, n_patterns=4, variant="gated")
    np.testing.assert_array_equal(prob.X, dense.X)
    np.testing.assert_array_equal(prob.solve(tol=1e-6).x, dense.solve(tol=1e-6).x)


def test_solver_functions_validate_arrays():
    from cvxkit.problems.relu_splitting import relu_program
    from cvxkit.solvers.bcd import bcd
    from cvxkit.solvers.relu_admm import relu_admm

    X, y = regression(10, 3)
    D = (X @ np.ones((3, 2)) >= 0).astype(float)
    for bad, match in [({"D": D[:5]}, "D"), ({"D": D * 2}, "0/1"), ({"y": y[:4]}, "y"),
                       ({"X": X.astype(complex)}, "real"), ({"y": np.sign(y) * 2}, "labels")]:
        args = {"X": X, "y": y, "D": D, **bad}
        with pytest.raises(ValueError, match=match):  # the program's builder checks the arrays
            relu_program(args["X"], args["y"], args["D"], beta=0.1,
                         loss="logistic" if match == "labels" else "squared", objective=None)
    with pytest.raises(ValueError, match="ProxProgram"):  # the solver takes a program only
        relu_admm(X)
    with pytest.raises(ValueError, match="A"):
        bcd(np.zeros((0, 3)), np.zeros(0), lam=1.0, block_size=1)
    with pytest.raises(ValueError, match="A"):
        bcd([[1.0, 2.0], [3.0]], y, lam=1.0, block_size=1)
    with pytest.raises(ValueError, match="block_size"):
        bcd(np.ones((3, 4, 2)), np.ones(4), lam=1.0, block_size=3)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        bcd(np.ones((4, 6)), np.ones(4), lam=1.0, block_size=3, warm_start=np.ones(8))


def test_estimator_checks_features_and_lengths():
    X, y = regression(20, 3, seed=9)
    est = ConvexReLUNet(n_patterns=4, beta=0.05).fit(X, y)
    with pytest.raises(ValueError, match="X must have 3 features"):
        est.predict(X[:, :2])
    with pytest.raises(ValueError, match="X must have 3 features"):
        est.score(np.c_[X, X], y)
    with pytest.raises(ValueError, match="y must have length 20"):
        est.score(X, y[:-1])
    with pytest.raises(ValueError, match="X"):
        est.predict(X[0])
    with pytest.raises(ValueError, match="X"):
        est.predict(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="X must have 4 features"):
        est.problem_.predict(est.result_.x, X[:, :2])  # (the ones column makes 4)
    with pytest.raises(ValueError, match="y"):
        ConvexReLUNet(n_patterns=3).fit(X, y[:-2])
    with pytest.raises(ValueError, match="y"):
        ConvexReLUNet(n_patterns=3, loss="logistic").fit(X, np.array([[1, 2]] * 20))
    with pytest.raises(ValueError, match="two classes"):
        ConvexReLUNet(n_patterns=3, loss="logistic").fit(X, np.zeros(20))
    with pytest.raises(TypeError, match="fit_intercept"):
        ConvexReLUNet(fit_intercept="yes").fit(X, y)
    with pytest.raises(TypeError, match="solver_options"):
        ConvexReLUNet(solver_options=[1]).fit(X, y)
    clf = ConvexReLUNet(n_patterns=3, beta=0.1, loss="logistic").fit(X, np.where(y > 0.3, "b", "a"))
    with pytest.raises(ValueError, match="y must have length 20"):
        clf.score(X, np.array(["a"] * 19))


@pytest.mark.parametrize("variant", ["relu", "gated"])
def test_tiny_targets_not_stopped_early(variant):
    """y and beta times 1e-9: the absolute tolerance (1e-6 before) held at the first check and
    ADMM stopped 'optimal' far from the optimum; now it is tol * max|y|, and the run is the
    unscaled run times 1e-9."""
    X, y = regression(15, 3, seed=5)
    base = ConvexReLU(X, y, n_patterns=4, beta=0.1, variant=variant)
    small = ConvexReLU(X, 1e-9 * y, n_patterns=4, beta=1e-10, variant=variant)
    rb, rs = base.solve("relu_admm", tol=1e-7), small.solve("relu_admm", tol=1e-7)
    assert rs.status is rb.status is Status.OPTIMAL and rs.iterations == rb.iterations
    np.testing.assert_allclose(small.predict(rs.x), 1e-9 * base.predict(rb.x), rtol=1e-6,
                               atol=1e-9 * 1e-9 * np.abs(y).max())
    assert small.check(rs, 1e-5, viol_tol(rs)).ok


def test_check_rejects_wrong_answer_at_tiny_scale():
    """check's relative-gap floor was 1e-9 * max(1, sum|y|): with y ~ 1e-9 every answer (zero
    weights included) passed; the floor is now 1e-9 of the loss at zero weights."""
    from cvxkit.solvers import Result

    X, y = regression(15, 3, seed=5)
    prob = ConvexReLU(X, 1e-9 * y, n_patterns=4, beta=1e-10, variant="gated")
    zero = Result(x=np.zeros(prob.shape), status=Status.OPTIMAL, objective=0.0)
    assert not prob.check(zero, 1e-4, 1e-4).ok


@pytest.mark.slow
@pytest.mark.parametrize("variant, eps", [("relu", 0.0), ("gated", 0.0), ("relu", 0.05)])
def test_warm_start_across_backends(variant, eps):
    """A Result of the JAX run warm-starts the numpy run and back (its state is converted)."""
    X, y = regression(10, 2, seed=1)
    prob = ConvexReLU(X, y, n_patterns=3, beta=0.1, variant=variant, epsilon=eps)
    rj = prob.solve("relu_admm", backend="jax", tol=1e-8, max_iter=20_000)
    rn = prob.solve("relu_admm", backend="numpy", tol=1e-8, max_iter=20_000, warm_start=rj)
    back = prob.solve("relu_admm", backend="jax", tol=1e-8, max_iter=20_000, warm_start=rn)
    for r in (rj, rn, back):
        assert r.status is Status.OPTIMAL and prob.check(r, 1e-5, viol_tol(r)).ok
    assert rn.iterations <= 20 and back.iterations <= 20


@pytest.mark.parametrize("method", ["relu_admm", "bcd"])
def test_float32_runs_confirmed_in_float64(method):
    """dtype='float32': bcd's Anderson system lost its 1e-10 ridge in float32 (numpy raised
    LinAlgError: Singular matrix) and both methods could stop 'optimal' on float32 rounding
    (bcd: objective 8e-5 off at tol 1e-7); now an 'optimal' run is rechecked in float64 on the
    user's data and reported 'optimal_inaccurate' when the recheck fails."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 3))
    y = np.maximum(X[:, 0], 0) + 0.1 * rng.standard_normal(12)
    prob = ConvexReLU(X, y, n_patterns=4, beta=0.1, variant="gated")
    seen = set()
    for tol in (1e-6, 1e-7, 1e-8, 1e-9):
        for kw in ({}, {"accelerate": None}) if method == "bcd" else ({},):
            res = prob.solve(method, tol=tol, dtype="float32", max_iter=5000, **kw)
            seen.add(res.status)
            assert res.status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE, Status.MAX_ITER)
            if res.status is Status.OPTIMAL:
                rep = prob.check(res, rtol=1e3 * tol, atol=1e-6)
                assert rep.ok, (tol, kw, rep)
                if method == "bcd":
                    assert res.info["final_measure"] <= 3 * tol
                else:  # the residuals reported are the float64 ones, within the tolerances
                    assert res.primal_residual <= res.info["eps_prim"]
    assert Status.OPTIMAL in seen and len(seen) > 1  # float32 reaches 1e-6, not 1e-9


@pytest.mark.parametrize("variant", ["gated", "relu"])
def test_relu_admm_dual_is_the_splitting_multipliers(variant):
    """``Result.dual`` of relu_admm: the (unscaled) multipliers rho * lambda_j of the splitting
    z_j = A_j u (docs/convex_relu.md): the group-lasso block in beta times the subdifferential
    of the group norm, the cone block in the normal cone of s >= 0 (y <= 0, y * s = 0)."""
    prob = tiny(variant=variant)
    res = prob.solve(method="relu_admm", tol=1e-8, max_iter=20_000)
    assert res.status is Status.OPTIMAL, res.message
    st = res.info["state"]
    assert isinstance(res.dual, tuple) and len(res.dual) == len(st.z)
    for y, lam in zip(res.dual, st.lam):
        np.testing.assert_allclose(y, float(st.rho) * np.asarray(lam))
    y, z = np.asarray(res.dual[0]), np.asarray(st.z[0])  # the group-lasso block: rows are groups
    scale = prob.beta
    for yg, zg in zip(y.reshape(len(y), -1), z.reshape(len(z), -1)):
        assert np.linalg.norm(yg) <= scale * (1 + 1e-5)
        if np.linalg.norm(zg) > 1e-6:
            np.testing.assert_allclose(yg, scale * zg / np.linalg.norm(zg), atol=1e-5 * scale)
    if variant == "relu":
        y, s = np.asarray(res.dual[1]), np.asarray(st.z[1])
        assert y.max() <= 1e-8 * scale and np.abs(y * s).max() <= 1e-6 * scale


def test_bcd_has_no_dual():
    """bcd sets no dual (docs/convex_relu.md): ``None``, with a message."""
    res = tiny(variant="gated").solve(method="bcd", tol=1e-7)
    assert res.dual is None and res.message


@pytest.mark.xfail(strict=True, reason="known defect (found by the slow fuzz suite, 2026-12-07): "
                   "relu_admm's residual test does not bound the objective gap on a hinge loss "
                   "with a tiny beta; it reports optimal 1.8e-4 above Clarabel's objective")
def test_hinge_tiny_beta_optimal_is_within_tol():
    """An `optimal` relu_admm answer at tol 1e-7 is within 1e-4 of the reference objective
    (tests/fuzz/test_fuzz_convex_relu.py::test_random_instances_verified's failing example)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 3))
    y = np.where(rng.random(5) > 0.5, 1.0, -1.0)
    prob = ConvexReLU(X, y, n_patterns=2, beta=1e-3, loss="hinge", variant="relu", seed=3)
    res = prob.solve("relu_admm", tol=1e-7, max_iter=3000)
    assert res.status is not Status.OPTIMAL or prob.check(res, rtol=1e-4, atol=1e-5).ok


@pytest.mark.parametrize("variant, loss, eps, expected", [
    ("relu", "squared", 0.0, "relu_al"), ("relu", "logistic", 0.0, "relu_al"),
    ("relu", "hinge", 0.0, "relu_admm"), ("relu", "squared", 0.1, "relu_admm"),
    ("gated", "squared", 0.0, "relu_admm"), ("gated", "logistic", 0.0, "rfista"),
    ("gated", "hinge", 0.0, "relu_admm")])
def test_default_method_by_variant_and_loss(variant, loss, eps, expected):
    """The defaults measured in benchmarks/convex_relu.py --defaults (docs/convex_relu.md)."""
    X, y = regression() if loss == "squared" else classification()
    prob = ConvexReLU(X, y, n_patterns=4, loss=loss, variant=variant, epsilon=eps)
    assert prob.default_method() == expected
    res = prob.solve(max_iter=3)
    assert res.method == expected and res.status is Status.MAX_ITER


@pytest.mark.parametrize("variant", ["relu", "gated"])
def test_optimal_pruning_keeps_predictions_and_objective(variant):
    """ConvexReLU.prune (Mishkin & Pilanci 2023): the active blocks' contributions end linearly
    independent (at most n blocks), the predictions stay to 1e-8 and, at an optimum, the
    objective too; the cones still hold."""
    X, y = regression(40, 4)
    prob = ConvexReLU(X, y, n_patterns=30, beta=0.01, variant=variant)
    res = prob.solve("relu_al", tol=1e-9, max_iter=200_000)
    assert res.status is Status.OPTIMAL
    W = prob.prune(res.x)
    nz = np.linalg.norm(W.reshape(-1, prob.d), axis=1) > 0
    assert nz.sum() <= prob.n and prob.network(W).hidden == nz.sum()
    np.testing.assert_allclose(prob.predict(W), prob.predict(res.x), rtol=0, atol=1e-8)
    assert prob.objective(W) == pytest.approx(res.objective, rel=1e-8)
    assert prob.max_violation(W) <= max(prob.max_violation(res.x), 1e-12) * 10
    C = np.stack([prob.predict(np.where(np.arange(nz.size)[:, None] == j,
                                        W.reshape(-1, prob.d), 0.0).reshape(prob.shape))
                  for j in np.flatnonzero(nz)], axis=1)
    assert np.linalg.matrix_rank(C) == nz.sum()


def test_pruning_published_instance():
    """The digest's pruning test: Test A's optimum keeps its objective (0.311048649) with 4
    blocks; from Clarabel's answer (no exact zeros) too."""
    X, y, G = a_data()
    prob = ConvexReLU(X, y, beta=0.1, gates=G)
    for res in (prob.reference(), prob.solve("relu_al", tol=1e-10, max_iter=100_000)):
        W = prob.prune(res.x)
        assert (np.linalg.norm(W.reshape(-1, 2), axis=1) > 0).sum() == 4
        assert prob.objective(W) == pytest.approx(0.311048649, rel=1e-8)
        np.testing.assert_allclose(prob.predict(W), prob.predict(res.x), atol=1e-8)
