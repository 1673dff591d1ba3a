"""Net-Trim (`cvxkit.problems.net_trim`, `cvxkit.solvers.net_trim`): the digest's Test D, CVXPY
references on the other layer kinds, numpy vs JAX, warm starts, bad input, whole networks."""
import numpy as np
import pytest

from cvxkit.problems import NetTrim, mlp_activations, net_trim_network
from cvxkit.solvers import Status
from cvxkit.solvers.net_trim import net_trim

W0 = np.array([[1, -0.5, 0.2], [0.3, 0.8, -1], [-0.7, 0.1, 0.4], [0.05, -0.02, 0.9],
               [0.6, 0.6, -0.3]])


def _test_d_x():
    """Test D: N = 5, M = 3, P = 30, X_ip = cos(0.37 i p + 0.5 i + 0.2 p), i, p from 0."""
    i, p = np.arange(5)[:, None], np.arange(30)[None, :]
    return np.cos(0.37 * i * p + 0.5 * i + 0.2 * p)


X_D = _test_d_x()
#: relative eps -> (eps, optimum ||W||_1, nonzeros of 15) (digest, section 4 (d))
TEST_D = {0.2: (1.292791, 5.656973, 12), 0.05: (0.323198, 6.941433, 14)}


def _assert_feasible(prob, res):
    assert res.primal_residual <= res.info["tolerance"], res
    rep = prob.residuals(res.x)
    assert max(rep.values()) == pytest.approx(res.primal_residual, abs=1e-12)


@pytest.mark.parametrize("rel", [0.2, 0.05])
def test_d_matches_the_digest_and_clarabel(rel):
    eps, best, nnz = TEST_D[rel]
    prob = NetTrim(X_D, W0=W0, eps=rel)
    assert prob.eps == pytest.approx(eps, abs=1e-6)
    assert np.abs(W0).sum() == pytest.approx(7.47)
    ref = prob.reference()
    assert ref.objective == pytest.approx(best, abs=1e-6)
    res = prob.solve(tol=1e-9)
    assert res.status is Status.OPTIMAL, res.message
    assert res.method == "net_trim" and res.x.shape == (5, 3)
    assert res.objective == pytest.approx(best, abs=1e-6)
    assert res.info["nonzeros"] == np.count_nonzero(res.x) == nnz
    assert np.count_nonzero(np.abs(ref.x) > 1e-6) == nnz
    np.testing.assert_allclose(res.x, ref.x, atol=1e-6)
    _assert_feasible(prob, res)
    # the eps constraint is active and the off-support pre-activations are <= 0
    assert res.info["misfit"] == pytest.approx(prob.eps, rel=1e-7)
    Z = res.x.T @ X_D
    assert Z[~prob.mask].max() <= 1e-8


def test_tolerance_is_tied_to_tol():
    prob = NetTrim(X_D, W0=W0, eps=0.05)
    for tol in (1e-4, 1e-6):
        res = prob.solve(tol=tol)
        assert res.status is Status.OPTIMAL
        _assert_feasible(prob, res)
        assert prob.check(res, rtol=10 * tol, atol=10 * res.info["tolerance"]).ok


def test_numpy_and_jax_agree():
    prob = NetTrim(X_D, W0=W0, eps=0.2)
    a, b = prob.solve(tol=1e-8), prob.solve(tol=1e-8, backend="jax")
    assert a.status is Status.OPTIMAL and b.status is Status.OPTIMAL
    assert a.backend == "numpy" and b.backend == "jax"
    np.testing.assert_allclose(b.x, a.x, atol=1e-10)
    assert a.iterations == b.iterations


def test_float32_is_rechecked():
    res = NetTrim(X_D, W0=W0, eps=0.2).solve(tol=1e-4, dtype="float32")
    assert res.status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE), res.message
    assert res.objective == pytest.approx(5.656973, rel=1e-3)


def _random_layer(seed, N=6, M=4, P=40):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, P))
    W = rng.standard_normal((N, M)) * (rng.random((N, M)) < 0.6)
    return rng, X, W


@pytest.mark.parametrize("kind", ["linear", "bias", "bias_scaled", "V", "eps0"])
def test_other_layers_match_clarabel(kind):
    rng, X, W = _random_layer(3)
    if kind == "linear":
        prob = NetTrim(X, W0=W, eps=0.1, relu=False)
    elif kind == "bias":
        prob = NetTrim(X, W0=np.vstack([W, rng.standard_normal(W.shape[1])]), bias=True)
        assert prob.X.shape == (7, 40) and np.all(prob.X[-1] == 1)
    elif kind == "bias_scaled":  # features of size 100 beside the bias row of ones
        prob = NetTrim(100 * X, W0=np.vstack([W / 100, rng.standard_normal(4)]), bias=True)
    elif kind == "V":
        prob = NetTrim(X, W0=W, V=0.5 * rng.random((4, 40)))
    else:
        prob = NetTrim(X, W0=W, eps=0.0)
    res = prob.solve(tol=1e-8)
    assert res.status is Status.OPTIMAL, res.message
    _assert_feasible(prob, res)
    ref = prob.reference()
    assert res.objective == pytest.approx(ref.objective, rel=1e-6)
    np.testing.assert_allclose(res.x, ref.x, atol=1e-4 * np.abs(ref.x).max())
    if kind == "bias":
        w, b = prob.split(res.x)
        assert w.shape == (6, 4) and b.shape == (4,)


def test_scaling_Y_scales_W():
    """(Y, eps) -> s (Y, eps): the same iterations, W times s (the units of the tolerances)."""
    prob = NetTrim(X_D, W0=W0, eps=0.05)
    big = NetTrim(X_D, W0=1e4 * W0, eps=0.05)
    a, b = prob.solve(tol=1e-7), big.solve(tol=1e-7)
    assert a.iterations == b.iterations and b.status is Status.OPTIMAL
    np.testing.assert_allclose(b.x, 1e4 * a.x, rtol=1e-6, atol=1e-9 * 1e4)


def test_warm_start():
    prob = NetTrim(X_D, W0=W0, eps=0.05)
    cold = prob.solve(tol=1e-8)
    warm = prob.solve(tol=1e-8, warm_start=cold)
    assert warm.status is Status.OPTIMAL and warm.iterations <= 10
    np.testing.assert_allclose(warm.x, cold.x, atol=1e-8)
    # from weights (an array): the trained W0, feasible, as in the paper
    from_w = prob.solve(tol=1e-8, warm_start=W0)
    assert from_w.status is Status.OPTIMAL
    np.testing.assert_allclose(from_w.x, cold.x, atol=1e-6)
    with pytest.raises(ValueError, match="warm_start.*net_trim"):
        prob.solve(warm_start=np.zeros((4, 3)))
    other = NetTrim(X_D[:4], W0=W0[:4], eps=0.05).solve(tol=1e-4)
    with pytest.raises(ValueError, match="warm_start"):
        prob.solve(warm_start=other)


def test_honest_limits_and_options():
    prob = NetTrim(X_D, W0=W0, eps=0.05)
    assert prob.solve(max_iter=5).status is Status.MAX_ITER
    with pytest.raises(ValueError, match="valid options"):
        prob.solve(rho_typo=1)
    with pytest.raises(ValueError, match="normalize"):
        prob.solve(normalize="yes")
    # the paper's normalization is a convergence aid, not part of the answer
    a, b = prob.solve(tol=1e-8), prob.solve(tol=1e-8, normalize=False)
    assert b.status is Status.OPTIMAL
    np.testing.assert_allclose(a.x, b.x, atol=1e-6)


@pytest.mark.parametrize("args, match", [
    (dict(X=np.full((2, 3), np.nan), W0=np.ones((2, 1))), "X"),
    (dict(X=np.ones(3), W0=np.ones((1, 1))), "X"),
    (dict(X=np.ones((2, 3)) + 1j, W0=np.ones((2, 1))), "X"),
    (dict(X=np.ones((2, 3)), W0=np.ones((3, 1))), "W0"),
    (dict(X=np.ones((2, 3)), W0=np.ones((2, 1)), Y=np.ones((1, 3))), "W0 .* or Y"),
    (dict(X=np.ones((2, 3))), "W0 .* or Y"),
    (dict(X=np.ones((2, 3)), Y=np.ones((1, 4))), "Y"),
    (dict(X=np.ones((2, 3)), Y=np.array([[1.0, np.inf, 0.0]])), "Y"),
    (dict(X=np.ones((2, 3)), W0=np.ones((2, 1)), eps=-0.1), "eps"),
    (dict(X=np.ones((2, 3)), W0=np.ones((2, 1)), eps=float("nan")), "eps"),
    (dict(X=np.ones((2, 3)), W0=np.ones((2, 1)), V=np.zeros((2, 3))), "V"),
    (dict(X=np.ones((2, 3)), W0=np.ones((2, 1)), V=np.zeros((1, 3)), relu=False), "V"),
    (dict(X=np.ones((2, 3)), W0=np.ones((2, 1)), relu="yes"), "relu"),
])
def test_bad_input_is_named(args, match):
    with pytest.raises(ValueError, match=match):
        NetTrim(**args)


def test_solver_function_checks_its_arrays():
    Y = np.maximum(W0.T @ X_D, 0)
    with pytest.raises(ValueError, match="mask"):
        net_trim(X_D, Y, None, 1.0, mask=Y > 0)
    with pytest.raises(ValueError, match="mask"):
        net_trim(X_D, Y, np.zeros_like(Y), 1.0, mask=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="Y"):
        net_trim(X_D, Y[:, :-1], None, 1.0)
    res = net_trim(X_D, Y, np.zeros_like(Y), 0.2 * np.linalg.norm(Y), tol=1e-8)
    assert res.objective == pytest.approx(5.656973, abs=1e-6)
    d1, d2 = res.dual
    assert d1.shape == (5, 3) and d2.shape == (3, 30)
    # stationarity of the l1 objective: the multiplier of W = z1 is a subgradient of ||W||_1
    assert np.abs(d1).max() <= 1 + 1e-5


def _mlp(seed=0, sizes=(5, 8, 6, 3), P=60):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [0.1 * rng.standard_normal(b) for b in sizes[1:]]
    return ws, bs, rng.standard_normal((sizes[0], P))


def test_network_parallel():
    ws, bs, X = _mlp()
    out = net_trim_network(ws, bs, X, eps=0.05, tol=1e-7)
    acts = mlp_activations(ws, bs, X)
    assert [w.shape for w in out.weights] == [w.shape for w in ws]
    assert [b.shape for b in out.biases] == [b.shape for b in bs]
    for i, (w, b, res) in enumerate(zip(out.weights, out.biases, out.results)):
        assert res.status is Status.OPTIMAL, res.message
        # each layer keeps its response to the ORIGINAL network's input within eps
        Z = w.T @ acts[i] + b[:, None]
        Y = acts[i + 1]
        on = Y > 0 if i < 2 else np.ones_like(Y, bool)
        assert np.linalg.norm((Z - Y)[on]) <= 0.05 * np.linalg.norm(Y) + res.info["tolerance"]
        if i < 2:
            assert Z[~on].max() <= res.info["tolerance"]
        assert np.abs(np.r_[w.ravel(), b]).sum() < np.abs(np.r_[ws[i].ravel(), bs[i]]).sum()
    pruned = mlp_activations(out.weights, out.biases, X)[-1]
    assert np.linalg.norm(pruned - acts[-1]) < 0.5 * np.linalg.norm(acts[-1])


def test_network_cascade_keeps_the_original_weights_feasible():
    ws, bs, X = _mlp(1)
    out = net_trim_network(ws, None, X, eps=0.05, scheme="cascade", gamma=1.2, tol=1e-7)
    assert out.biases is None
    acts = mlp_activations(ws, None, X)
    inp = X
    for i, (w, res) in enumerate(zip(out.weights, out.results)):
        assert res.status is Status.OPTIMAL, res.message
        # W0 is feasible for the cascade's program, so the l1 norm cannot grow
        assert np.abs(w).sum() <= np.abs(ws[i]).sum() + 1e-6
        Y = acts[i + 1]
        Z = w.T @ inp
        on = Y > 0 if i < 2 else np.ones_like(Y, bool)
        if i > 0:  # eps = gamma times W0's own misfit on the pruned network's input
            mis0 = np.linalg.norm((ws[i].T @ inp - Y)[on])
            assert np.linalg.norm((Z - Y)[on]) <= 1.2 * mis0 + res.info["tolerance"]
        inp = np.maximum(Z, 0) if i < 2 else Z


def test_network_bad_input():
    ws, bs, X = _mlp()
    with pytest.raises(ValueError, match="scheme"):
        net_trim_network(ws, bs, X, scheme="serial")
    with pytest.raises(ValueError, match="weights\\[1\\]"):
        net_trim_network([ws[0], ws[2]], None, X)
    with pytest.raises(ValueError, match="biases"):
        net_trim_network(ws, bs[:2], X)
    with pytest.raises(ValueError, match="eps"):
        net_trim_network(ws, bs, X, eps=[0.1, 0.1])
    with pytest.raises(ValueError, match="gamma"):
        net_trim_network(ws, bs, X, scheme="cascade", gamma=0.5)
    with pytest.raises(ValueError, match="X"):
        net_trim_network(ws, bs, X.T)
