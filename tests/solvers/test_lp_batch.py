"""halpern_pdhg_batch: a batch of LPs of one shape in one vmapped JAX call, member by member
against the single halpern_pdhg solve and HiGHS."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from cvxkit.solvers.halpern_pdhg import halpern_pdhg
from cvxkit.solvers.lp_batch import halpern_pdhg_batch
from cvxkit.solvers.result import Status

TOL = 1e-6
M, N = 6, 10


def feasible(rng, K):
    """``(c, uc)`` of ``min c'x s.t. K x <= uc, x >= 0`` with a feasible point and a feasible
    dual (so a finite optimum)."""
    x0 = rng.uniform(0.0, 1.0, K.shape[1])
    uc = K @ x0 + rng.uniform(0.1, 1.0, K.shape[0])
    c = -K.T @ rng.uniform(0.0, 1.0, K.shape[0]) + rng.uniform(0.0, 1.0, K.shape[1])
    return c, uc


def batch(seed=0, B=10):
    """B - 2 feasible members, then one infeasible (sum x <= -1, x >= 0) and one unbounded
    (K <= 0 keeps every x >= 0 feasible, c < 0)."""
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((B, M, N))
    c, uc = np.zeros((B, N)), np.zeros((B, M))
    for i in range(B - 2):
        c[i], uc[i] = feasible(rng, K[i])
    K[B - 2, 0], uc[B - 2] = 1.0, np.r_[-1.0, np.full(M - 1, 10.0)]
    c[B - 2] = rng.uniform(0.5, 1.0, N)
    K[B - 1], uc[B - 1], c[B - 1] = -np.abs(K[B - 1]), 1.0, -rng.uniform(0.5, 1.0, N)
    return c, K, uc


def highs(c, K, uc):
    return linprog(c, A_ub=K, b_ub=uc, bounds=(0, None), method="highs")


@pytest.fixture(scope="module")
def solved():
    c, K, uc = batch()
    return c, K, uc, halpern_pdhg_batch(c, K, None, uc, 0.0, None, tol=TOL)


def test_members_match_single_solves_and_highs(solved):
    c, K, uc, res = solved
    B = c.shape[0]
    assert res.x.shape == (B, N) and res.dual.shape == (B, M)
    for field in ("objective", "iterations", "primal_residual", "dual_residual"):
        assert np.shape(getattr(res, field)) == (B,), field
    assert res.status.shape == (B,) and res.status.dtype == object
    assert res.method == "halpern_pdhg" and res.backend == "jax"
    want = [Status.OPTIMAL] * (B - 2) + [Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE]
    assert list(res.status) == want
    assert res.message.startswith(f"{B - 2} of {B} members optimal")
    assert not res.converged
    for i in range(B):
        one = halpern_pdhg(c[i], K[i], None, uc[i], 0.0, None, tol=TOL)
        ref = highs(c[i], K[i], uc[i])
        assert res.status[i] is one.status, i
        assert ref.status == {Status.OPTIMAL: 0, Status.PRIMAL_INFEASIBLE: 2,
                              Status.DUAL_INFEASIBLE: 3}[one.status]
        if one.status is not Status.OPTIMAL:
            assert np.isnan(res.x[i]).all() and res.info["certificates"][i] is not None
            assert abs(res.objective[i]) == np.inf
            continue
        # the same iterates as the single solve (to rounding), so the same iteration count
        assert res.iterations[i] == one.iterations, i
        np.testing.assert_allclose(res.x[i], one.x, atol=1e-8)
        np.testing.assert_allclose(res.dual[i], one.dual, atol=1e-8)
        scale = 1 + abs(ref.fun)
        assert abs(res.objective[i] - ref.fun) <= 50 * TOL * scale, (i, res.objective[i], ref.fun)
        assert np.maximum(K[i] @ res.x[i] - uc[i], 0).max() <= 50 * TOL * (1 + np.abs(uc[i]).max())
        assert res.x[i].min() >= -50 * TOL
        assert res.info["rel_gap"][i] <= TOL and res.info["rel_primal"][i] <= TOL
        # y is HiGHS's marginals (y <= 0 on K x <= uc)
        np.testing.assert_allclose(res.dual[i], ref.ineqlin.marginals, atol=1e-3 * scale)


def test_iteration_limit_per_member_and_warm_start(solved):
    c, K, uc, res = solved
    capped = halpern_pdhg_batch(c, K, None, uc, 0.0, None, tol=TOL, max_iter=64)
    assert (capped.iterations <= 64).all()
    assert all(s is Status.MAX_ITER for s, i in zip(capped.status, res.iterations) if i > 64)
    warm = halpern_pdhg_batch(c, K, None, uc, 0.0, None, tol=TOL, warm_start=res)
    ok = res.status == Status.OPTIMAL
    assert (warm.status[ok] == Status.OPTIMAL).all()
    assert (warm.iterations[ok] <= 64).all(), warm.iterations
    np.testing.assert_allclose(warm.objective[ok], res.objective[ok], rtol=10 * TOL, atol=10 * TOL)


def test_rejected_member_goes_on_alone(solved, monkeypatch):
    """A member whose final float64 check fails iterates on with a tighter test; the others keep
    their answers (the check is made to refuse the first candidate it sees, member 0's)."""
    from cvxkit.solvers import lp_batch

    c, K, uc, res = solved
    confirms, calls = lp_batch._BatchCheck.confirms, []

    def first_refused(self, members, fin, sc):
        ok = confirms(self, members, fin, sc)
        if not calls and members.size:
            calls.append(int(members[0]))
            ok[0] = False
        return ok

    monkeypatch.setattr(lp_batch._BatchCheck, "confirms", first_refused)
    again = halpern_pdhg_batch(c, K, None, uc, 0.0, None, tol=TOL)
    assert calls == [0]
    assert list(again.status) == list(res.status)
    assert again.iterations[0] > res.iterations[0]
    np.testing.assert_array_equal(again.iterations[1:], res.iterations[1:])
    np.testing.assert_array_equal(again.x[1:], res.x[1:])
    assert again.info["rel_gap"][0] <= TOL / 10  # the tighter internal test


@pytest.mark.parametrize("sparse", [False, True])
def test_shared_matrix(sparse):
    rng = np.random.default_rng(1)
    K = rng.standard_normal((M, N)) * (rng.random((M, N)) < 0.5)
    pairs = [feasible(rng, K) for _ in range(3)]
    c, uc = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    res = halpern_pdhg_batch(c, sp.csr_matrix(K) if sparse else K, None, uc, 0.0, None, tol=TOL)
    assert res.objective.shape == (3,)
    for i in range(3):
        ref = highs(c[i], K, uc[i])
        one = halpern_pdhg(c[i], K, None, uc[i], 0.0, None, tol=TOL)
        assert res.status[i] is Status.OPTIMAL and one.status is Status.OPTIMAL
        assert abs(res.objective[i] - ref.fun) <= 50 * TOL * (1 + abs(ref.fun))
        assert abs(res.iterations[i] - one.iterations) <= 64


def test_input_errors():
    c, K, uc = batch(B=4)
    with pytest.raises(ValueError, match=r"K must have shape \(m, n\) or \(B, m, n\)"):
        halpern_pdhg_batch(c[:3], K, None, uc)
    with pytest.raises(ValueError, match=r"uc must be a number or have shape"):
        halpern_pdhg_batch(c, K, None, uc[:3])
    with pytest.raises(ValueError, match=r"uc must be a number or have shape"):
        halpern_pdhg_batch(c, K, None, np.ones((4, M + 1)))
    with pytest.raises(ValueError, match=r"c must have shape \(B, n\)"):
        halpern_pdhg_batch(c[0], K[0], None, uc[0])
    with pytest.raises(ValueError, match=r"K must have shape"):
        halpern_pdhg_batch(c, np.ones((4, M, N + 1)), None, uc)
    with pytest.raises(ValueError, match=r"member 2: variable bounds cross"):
        halpern_pdhg_batch(c, K, None, uc, np.where(np.arange(4)[:, None] == 2, 2.0, np.zeros((4, N))), 1.0)
    with pytest.raises(ValueError, match=r"got x of shape \(3, 10\), expected \(4, 10\)"):
        halpern_pdhg_batch(c, K, None, uc, warm_start=(np.zeros((3, N)), np.zeros((4, M))))
    with pytest.raises(ValueError, match="tol"):
        halpern_pdhg_batch(c, K, None, uc, tol=-1.0)


@pytest.mark.parametrize("shared", [None, "dense", "sparse"])
def test_batch_setup_is_the_single_solves(shared):
    """`scale_batch` (all members at once, through the block-diagonal matrix) gives
    `scale_problem`'s numbers member by member, bitwise: rows and columns of zeros, rows of
    1e-9 and 1e8 times the others, infinite and crossing-free bounds, c = 0."""
    from cvxkit.solvers.pdhg_setup import Scaled, config, scale_batch, scale_problem

    rng = np.random.default_rng(7)
    B, m, n = 6, 5, 7
    K = rng.standard_normal((B, m, n)) * (rng.random((B, m, n)) < 0.6)
    K[0, 1], K[1, :, 2], K[2, 0], K[3, 4] = 0.0, 0.0, K[2, 0] * 1e-9, K[3, 4] * 1e8
    lc = np.where(rng.random((B, m)) < 0.3, -np.inf, -rng.random((B, m)))
    uc = np.where(rng.random((B, m)) < 0.3, np.inf, rng.random((B, m)))
    lv, uv = np.where(rng.random((B, n)) < 0.5, -np.inf, 0.0), np.full(n, np.inf)
    c = rng.standard_normal((B, n))
    c[4] = 0.0
    if shared is not None:
        K = K[0] if shared == "dense" else sp.csr_matrix(K[0])
    cfg = config(tol=TOL, eps_abs=None, eps_rel=None, eps_primal_infeasible=1e-8,
                 eps_dual_infeasible=1e-8, reflection=1.0, adaptive_primal_weight=True,
                 check_every=64, max_iter=100, ruiz_iters=10, pock_chambolle=True, rescale=True,
                 seed=0, primal_weight=None, sparse_format="auto")
    batch = scale_batch(c, K, lc, uc, lv, np.broadcast_to(uv, (B, n)), cfg)
    for i in range(B):
        one = scale_problem(c[i], K if shared else K[i], lc[i], uc[i], lv[i], uv, cfg)
        for f in Scaled._fields:
            a, b = getattr(one, f), getattr(batch, f)
            if f == "K":
                a, b = a.toarray(), (b[i] if shared is None else b.toarray())
            else:
                b = b[i]
            np.testing.assert_array_equal(b, a, err_msg=f)
