"""Block coordinate descent: group lasso and lasso against CVXPY (Clarabel) for every selection rule
and block update, both back ends; bad input."""
import numpy as np
import pytest

from cvxkit.solvers import Status
from cvxkit.solvers.bcd import RULES, bcd

TOL = 1e-8


def data(n=60, p=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng.standard_normal(n)


def reference(A, y, lam, penalty, s):
    import cvxpy as cp

    x = cp.Variable(A.shape[1])
    pen = cp.norm1(x) if penalty == "l1" else sum(
        cp.norm(x[i:i + s]) for i in range(0, A.shape[1], s))
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ x - y) + lam * pen))
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    return prob.value, x.value


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("update", ["exact", "prox_gradient"])
def test_group_lasso_matches_cvxpy(rule, update):
    A, y = data()
    f_ref, x_ref = reference(A, y, 3.0, "group", 4)
    res = bcd(A, y, lam=3.0, block_size=4, rule=rule, update=update, tol=TOL, max_iter=5000)
    assert res.status is Status.OPTIMAL
    assert res.objective == pytest.approx(f_ref, rel=1e-7)
    np.testing.assert_allclose(res.x, x_ref, atol=1e-5)


def test_jax_matches_numpy():
    A, y = data(seed=1)
    ref = bcd(A, y, lam=2.0, block_size=5, tol=TOL)
    for rule in ("cyclic", "gsl"):
        res = bcd(A, y, lam=2.0, block_size=5, rule=rule, backend="jax", tol=TOL)
        assert res.status is Status.OPTIMAL and res.backend == "jax"
        assert res.objective == pytest.approx(ref.objective, rel=1e-9)


@pytest.mark.parametrize("block_size, update", [(1, "exact"), (5, "prox_gradient")])
def test_lasso_matches_cvxpy(block_size, update):
    A, y = data(seed=2)
    f_ref, x_ref = reference(A, y, 3.0, "l1", 1)
    res = bcd(A, y, lam=3.0, block_size=block_size, penalty="l1", update=update, tol=TOL)
    assert res.status is Status.OPTIMAL
    assert res.objective == pytest.approx(f_ref, rel=1e-7)
    np.testing.assert_allclose(res.x, x_ref, atol=1e-5)
    assert np.sum(res.x != 0) < A.shape[1]  # exact zeros from the prox


def test_uneven_blocks_padded_and_greedy_fewer_updates():
    A, y = data(seed=3)
    A = A[:, :38]  # 38 columns in blocks of 4: the last block is padded
    f_ref, _ = reference(A, y, 2.0, "group", 4)
    res = bcd(A, y, lam=2.0, block_size=4, tol=TOL)
    assert res.x.shape == (38,) and res.objective == pytest.approx(f_ref, rel=1e-7)
    # Gauss-Southwell-Lipschitz needs no more block updates than random selection here
    gsl = bcd(A, y, lam=2.0, block_size=4, rule="gsl", update="prox_gradient", tol=1e-6)
    rnd = bcd(A, y, lam=2.0, block_size=4, rule="random", update="prox_gradient", tol=1e-6)
    assert gsl.iterations <= rnd.iterations


def test_zero_lambda_is_least_squares():
    A, y = data(80, 20, seed=4)
    res = bcd(A, y, lam=0.0, block_size=4, tol=1e-10, max_iter=20_000)
    np.testing.assert_allclose(res.x, np.linalg.lstsq(A, y, rcond=None)[0], atol=1e-7)


def test_warm_start_and_max_iter():
    A, y = data(seed=5)
    res = bcd(A, y, lam=1.0, block_size=4, tol=1e-12, max_iter=3)
    assert res.status is Status.MAX_ITER and res.iterations == 3
    again = bcd(A, y, lam=1.0, block_size=4, tol=1e-8, warm_start=res)
    cold = bcd(A, y, lam=1.0, block_size=4, tol=1e-8)
    assert again.iterations < cold.iterations


@pytest.mark.parametrize("kwargs, match", [
    ({"rule": "best"}, "rule"), ({"update": "newton"}, "update"), ({"penalty": "l2"}, "penalty"),
    ({"lam": -1.0}, "lam"), ({"block_size": None}, "block_size"),
    ({"penalty": "l1", "block_size": 4}, "block_size=1"),
])
def test_bad_input(kwargs, match):
    A, y = data()
    args = {"lam": 1.0, "block_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        bcd(A, y, **args)


def test_bad_arrays():
    A, y = data()
    with pytest.raises(ValueError, match="shape"):
        bcd(A, y[:-1], lam=1.0, block_size=4)
    A[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        bcd(A, y, lam=1.0, block_size=4)


def gated_blocks(n=80, d=5, P=10, seed=6):
    """Strongly correlated blocks A_b = D_b X (the gated ReLU program), (P, n, d)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    D = (X @ rng.standard_normal((d, P)) >= 0).astype(float)
    y = np.maximum(X @ rng.standard_normal(d), 0) + 0.1 * rng.standard_normal(n)
    return D.T[:, :, None] * X[None], y


@pytest.mark.parametrize("update", ["prox_gradient", "exact"])
def test_anderson_matches_cvxpy_and_never_increases(backend, update):
    A, y = gated_blocks()
    P, n, d = A.shape
    f_ref, _ = reference(A.transpose(1, 0, 2).reshape(n, P * d), y, 0.5, "group", d)
    res = bcd(A, y, lam=0.5, update=update, backend=backend, tol=TOL, max_iter=20_000)
    assert res.status is Status.OPTIMAL and res.info["accelerate"] == "anderson"
    assert res.objective == pytest.approx(f_ref, rel=10 * TOL)
    assert res.info["extrapolations"] > 0
    h = res.history["objective"]
    assert np.all(np.diff(h) <= 1e-12 * abs(h[0]))  # extrapolations accepted only on decrease
    plain = bcd(A, y, lam=0.5, update=update, backend=backend, tol=TOL, max_iter=20_000,
                accelerate=None)
    assert plain.info["extrapolations"] == 0 and res.iterations < plain.iterations


def test_anderson_paper_schedule():
    """Extrapolating every K sweeps from the last K (Bertrand & Massias) also converges."""
    A, y = gated_blocks(seed=7)
    ref = bcd(A, y, lam=0.3, tol=TOL, accelerate=None, max_iter=20_000)
    res = bcd(A, y, lam=0.3, tol=TOL, anderson_memory=5, anderson_every=5, max_iter=20_000)
    assert res.status is Status.OPTIMAL and res.info["extrapolations"] > 0
    assert res.objective == pytest.approx(ref.objective, rel=10 * TOL)
    assert res.info["extrapolations"] <= res.iterations // 5


@pytest.mark.parametrize("kwargs, match", [
    ({"anderson_memory": 0}, "anderson_memory"), ({"anderson_memory": 2.5}, "anderson_memory"),
    ({"anderson_memory": True}, "anderson_memory"), ({"anderson_every": 0}, "anderson_every"),
    ({"accelerate": "nesterov"}, "accelerate"),
    ({"accelerate": "anderson", "rule": "random"}, "cyclic"),
    ({"accelerate": "anderson", "rule": "gsl"}, "cyclic"),
])
def test_bad_acceleration(kwargs, match):
    A, y = data()
    with pytest.raises(ValueError, match=match):
        bcd(A, y, lam=1.0, block_size=4, **kwargs)


def test_auto_acceleration_only_for_cyclic():
    A, y = data(seed=8)
    assert bcd(A, y, lam=1.0, block_size=4, rule="random").info["accelerate"] is None
    assert bcd(A, y, lam=1.0, block_size=4).info["accelerate"] == "anderson"
