"""QuadraticProgram and the OSQP-style ADMM: against OSQP and Clarabel, both back ends.

Tolerances are tied to the solver's ``eps``: at ``eps_abs = eps_rel = tol`` the returned point
has ``||Ax - z|| <= tol (1 + ||Ax||)``, ``||Px + q + A'y|| <= tol (1 + ...)`` and a duality gap
below ``tol (1 + ...)``, so objectives agree with the references to a few ``tol`` and solutions
to about ``sqrt(tol)`` (a QP's solution can be ill-determined); polished solutions to ~1e-9.
"""
import math

import numpy as np
import osqp
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_on_host_devices

from cvxkit.problems import QuadraticProgram
from cvxkit.solvers import Status, methods
from cvxkit.solvers import admm_box
from cvxkit.solvers.driver import compile_cache
from cvxkit.solvers.admm_qp import admm_qp
from cvxkit.solvers.scaling import units_dense


def random_qp(n, m, seed, n_eq=0, rank=None, sparse=False, density=0.5):
    """A feasible QP: x = 0 satisfies l <= 0 <= u; the first n_eq rows are equalities at b = A x0."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, rank or n))
    P = M @ M.T / n + (1e-2 * np.eye(n) if rank else 0)
    q = rng.standard_normal(n)
    A = rng.standard_normal((m, n)) * (rng.random((m, n)) < density if sparse else 1.0)
    l, u = -rng.random(m), rng.random(m)
    if n_eq:
        x0 = 0.1 * rng.standard_normal(n)
        A_x0 = A[:n_eq] @ x0
        l[:n_eq] = u[:n_eq] = A_x0
        # keep x0 feasible for the inequalities too
        Ax0 = A[n_eq:] @ x0
        l[n_eq:] = np.minimum(l[n_eq:], Ax0 - 0.1)
        u[n_eq:] = np.maximum(u[n_eq:], Ax0 + 0.1)
    if sparse:
        return sp.csc_matrix(P), q, sp.csc_matrix(A), l, u
    return P, q, A, l, u


def osqp_solve(P, q, A, l, u, eps):
    s = osqp.OSQP()
    s.setup(sp.triu(sp.csc_matrix(P), format="csc"), q, sp.csc_matrix(A), l, u, eps_abs=eps,
            eps_rel=eps, max_iter=100_000, verbose=False)
    return s.solve(raise_error=False)


# one shape for most JAX tests: compiled once, reused
N, M = 12, 18


@pytest.mark.parametrize("n_eq", [0, 4])
def test_random_qp_matches_osqp_and_clarabel(backend, n_eq):
    data = random_qp(N, M, seed=1 + n_eq, n_eq=n_eq)
    prob = QuadraticProgram(*data)
    tol = 1e-7
    res = prob.solve(backend=backend, tol=tol)
    assert res.status is Status.OPTIMAL and res.backend == backend
    assert res.primal_residual <= res.info["eps_prim"] and res.dual_residual <= res.info["eps_dual"]
    # against Clarabel (the reference, 1e-9)
    rep = prob.check(res, rtol=10 * tol, atol=10 * tol)
    assert rep.ok, rep
    assert rep.distance <= 1e-4
    # against OSQP at the same eps: same objective, same solution to the tolerance
    ref = osqp_solve(*data, eps=tol)
    assert ref.info.status == "solved"
    assert abs(res.objective - ref.info.obj_val) <= 10 * tol * max(1.0, abs(ref.info.obj_val))
    assert np.abs(res.x - ref.x).max() <= 1e-4
    # the duals satisfy the KKT conditions
    kkt = prob.kkt_residuals(res.x, res.info["y"])
    assert kkt["dual"] <= 10 * tol and kkt["primal"] <= 10 * tol and kkt["complementarity"] <= 1e-5
    np.testing.assert_allclose(res.info["y"], ref.y, atol=1e-4)


def test_dual_is_y_and_makes_the_lagrangian_stationary(backend):
    """``Result.dual`` is ``info['y']`` (user's units): P x + q + A^T y ~ 0 at an optimal result,
    y >= 0 only on active upper bounds, <= 0 only on active lower ones; NaN when infeasible."""
    P, q, A, l, u = random_qp(N, M, seed=7, n_eq=3)
    res = admm_qp(P, q, A, l, u, backend=backend, tol=1e-8)
    assert res.status is Status.OPTIMAL
    y = res.dual
    assert y is res.info["y"] and y.shape == (M,)
    stat = P @ res.x + q + A.T @ y
    assert np.abs(stat).max() <= 1e-6 * max(1.0, np.abs(q).max())
    Ax = A @ res.x
    assert np.abs(y[(Ax > l + 1e-4) & (Ax < u - 1e-4)]).max(initial=0.0) <= 1e-6
    inf = admm_qp(*infeasible_qp(), backend=backend)
    assert inf.status is Status.PRIMAL_INFEASIBLE
    assert inf.dual is inf.info["y"] and np.isnan(inf.dual).all()


def test_numpy_and_jax_agree():
    data = random_qp(N, M, seed=7, n_eq=2)
    r_np = admm_qp(*data, tol=1e-6, acceleration=False)  # the JAX loop is plain ADMM
    r_jx = admm_qp(*data, tol=1e-6, backend="jax")
    assert r_np.iterations == r_jx.iterations
    np.testing.assert_allclose(r_np.x, r_jx.x, atol=1e-10)
    assert r_jx.compile_time >= 0 and r_np.compile_time == 0
    r_aa = admm_qp(*data, tol=1e-6)  # Anderson-accelerated: the same solution
    assert r_aa.status is Status.OPTIMAL and r_aa.info["anderson"]["accepted"] >= 0
    np.testing.assert_allclose(r_aa.x, r_jx.x, atol=1e-4)


@pytest.mark.parametrize("linsys", ["dense", "sparse"])
def test_sparse_data_both_linear_systems(linsys):
    data = random_qp(40, 60, seed=3, n_eq=5, rank=10, sparse=True, density=0.2)
    prob = QuadraticProgram(*data)
    res = prob.solve(tol=1e-7, linsys=linsys)
    assert res.status is Status.OPTIMAL
    assert ("sparse KKT" in res.info["linsys"]) == (linsys == "sparse")
    rep = prob.check(res, rtol=1e-6, atol=1e-6)
    assert rep.ok, rep
    # polishing (on the sparse KKT path: the sparse reduced KKT system of the active rows)
    pol = prob.solve(tol=1e-4, linsys=linsys, polish=True)
    assert pol.status is Status.OPTIMAL and pol.info["polish"] == "success"
    assert prob.check(pol, rtol=1e-9, atol=1e-9).ok
    assert prob.kkt_residuals(pol.x, pol.info["y"])["dual"] <= 1e-9


def test_polish_reaches_reference_accuracy(backend):
    data = random_qp(N, M, seed=11, n_eq=3)
    prob = QuadraticProgram(*data)
    res = prob.solve(backend=backend, tol=1e-4, polish=True)
    assert res.status is Status.OPTIMAL and res.info["polish"] == "success"
    rep = prob.check(res, rtol=1e-9, atol=1e-9)
    assert rep.ok, rep
    assert prob.kkt_residuals(res.x, res.info["y"])["dual"] <= 1e-9
    plain = prob.solve(backend=backend, tol=1e-4)
    assert plain.info["polish"] == "off" and abs(plain.objective - rep.reference_objective) > \
        abs(res.objective - rep.reference_objective)
    # the reported tolerances are those of the polished point, not of the ADMM iterate
    # (in normalized units: row i divided by a_i * beta, see cvxkit.solvers.scaling)
    P, q, A, l, u = data
    un = units_dense(np, P, q, A, l, u)
    z = res.info["z"]
    eps_prim = 1e-4 * (1 + max(np.abs(un.E0 * (A @ res.x)).max(), np.abs(un.E0 * z).max()))
    assert res.info["eps_prim"] == pytest.approx(eps_prim, rel=1e-12)
    assert res.primal_residual <= res.info["eps_prim"] and res.dual_residual <= res.info["eps_dual"]
    # no polishing without convergence, on either back end
    capped = prob.solve(backend=backend, tol=1e-10, max_iter=25, polish=True)
    assert capped.status is Status.MAX_ITER and capped.info["polish"] == "off"


def test_lp_and_unconstrained():
    rng = np.random.default_rng(5)
    # an LP (P = 0): min c'x over a box and a simplex-like row
    n = 6
    c = rng.standard_normal(n)
    A = np.vstack([np.eye(n), np.ones((1, n))])
    l, u = np.r_[np.zeros(n), 1.0], np.r_[np.ones(n), 1.0]
    lp = QuadraticProgram(np.zeros((n, n)), c, A, l, u)
    res = lp.solve(tol=1e-8, polish=True)
    assert res.status is Status.OPTIMAL
    assert abs(res.objective - c.min()) <= 1e-7  # the cheapest vertex e_i
    # unconstrained: x = -P^{-1} q
    P = np.diag([1.0, 2.0, 4.0])
    q = np.array([1.0, -2.0, 3.0])
    res = QuadraticProgram(P, q).solve(tol=1e-10)
    assert res.status is Status.OPTIMAL
    np.testing.assert_allclose(res.x, -q / np.diag(P), atol=1e-8)


def infeasible_qp():
    """x1 <= -1 and x1 >= 1 (and |x2| <= 1)."""
    A = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    return np.eye(2), np.zeros(2), A, np.array([-np.inf, 1.0, -1.0]), np.array([-1.0, np.inf, 1.0])


def unbounded_lp():
    """min -x1 s.t. x1 >= 0, 0 <= x2 <= 1, x1 - x2 >= -5 (the shapes of infeasible_qp)."""
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    return np.zeros((2, 2)), np.array([-1.0, 0.0]), A, np.array([0.0, 0.0, -5.0]), \
        np.array([np.inf, 1.0, np.inf])


def assert_primal_certificate(dy, P, q, A, l, u):
    """A' dy = 0 and u'dy_+ + l'dy_- < 0 prove that l <= Ax <= u has no solution."""
    assert np.abs(A.T @ dy).max() <= 1e-3
    assert np.sum(np.where(dy > 0, u, 0) * dy) + np.sum(np.where(dy < 0, l, 0) * dy) < 0


def assert_dual_certificate(dx, P, q, A, l, u, atol=1e-4):
    """P dx = 0, q'dx < 0 and A dx in the recession cone of [l, u] prove unboundedness."""
    Adx = A @ dx
    assert np.abs(P @ dx).max() <= atol and q @ dx < 0
    assert np.all(Adx[np.isfinite(u)] <= atol) and np.all(Adx[np.isfinite(l)] >= -atol)


def test_primal_infeasible(backend):
    prob = QuadraticProgram(*infeasible_qp())
    res = prob.solve(backend=backend)
    assert res.status is Status.PRIMAL_INFEASIBLE and not res.converged
    assert prob.reference().status is Status.PRIMAL_INFEASIBLE  # Clarabel agrees
    assert np.isnan(res.x).all() and res.objective == math.inf
    assert_primal_certificate(res.info["certificate"], *infeasible_qp())
    assert not prob.check(res).ok


def test_dual_infeasible(backend):
    prob = QuadraticProgram(*unbounded_lp())
    res = prob.solve(backend=backend)
    assert res.status is Status.DUAL_INFEASIBLE and res.objective == -math.inf
    assert prob.reference().status is Status.DUAL_INFEASIBLE
    assert_dual_certificate(res.info["certificate"], *unbounded_lp())


def test_batch_equals_single_solves():
    B = 6
    data = [random_qp(N, M, seed=100 + i, n_eq=2) for i in range(B)]
    P, q, A, l, u = (np.stack([d[k] for d in data]) for k in range(5))
    batch = QuadraticProgram(P, q, A, l, u)
    assert batch.batch == B
    res = batch.solve(backend="jax", tol=1e-7)
    # one Result with a leading batch axis on every array field, never a sum
    assert res.converged and res.x.shape == (B, N) and res.dual.shape == (B, M)
    assert res.dual is res.info["y"]
    assert isinstance(res.status, np.ndarray) and res.status.shape == (B,)
    assert all(s is Status.OPTIMAL for s in res.status)
    assert list(res.status) == res.info["statuses"]
    for field in (res.objective, res.iterations, res.primal_residual, res.dual_residual):
        assert isinstance(field, np.ndarray) and field.shape == (B,)
    assert res.message.startswith(f"{B} of {B} members optimal")
    assert f"batch={B}" in repr(res) and f"optimal={B}/{B}" in repr(res)
    for i in range(B):
        single = admm_qp(*data[i], backend="jax", tol=1e-7)
        assert single.status is res.status[i]
        assert single.iterations == res.iterations[i] == res.info["iterations"][i]
        assert res.objective[i] == pytest.approx(single.objective, rel=1e-7, abs=1e-12)
        assert res.primal_residual[i] == pytest.approx(single.primal_residual, abs=1e-9)
        np.testing.assert_allclose(res.x[i], single.x, atol=1e-8)
        np.testing.assert_allclose(res.dual[i], single.dual, atol=1e-7)
    # the numpy back end loops over the members: same answers, same kind of Result
    res_np = batch.solve(tol=1e-7)
    assert res_np.converged and res_np.objective.shape == (B,) and res_np.status.shape == (B,)
    np.testing.assert_allclose(res_np.x, res.x, atol=1e-8)
    np.testing.assert_allclose(res_np.objective, res.objective, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res_np.dual, res.dual, atol=1e-7)
    np.testing.assert_array_equal(res_np.iterations, res.iterations)
    np.testing.assert_array_equal(res_np.info["iterations"], res.info["iterations"])
    # each member's duals satisfy stationarity P x + q + A^T y = 0 at the tolerance
    for i in range(B):
        assert batch.member(i).kkt_residuals(res.x[i], res.dual[i])["dual"] <= 1e-5
    # and the batch checks against the CVXPY model of all members at once
    rep = batch.check(res, rtol=1e-6, atol=1e-6)
    assert rep.ok, rep


def test_batch_compaction_keeps_every_member():
    """A batch large enough to be compacted (128 -> 64): stopped members are written back in
    place, the slow ones finish in the smaller batch, and every member matches its own solve."""
    B, n, m = 128, 3, 5
    rng = np.random.default_rng(81)
    M_ = rng.standard_normal((B, n, n))
    P = M_ @ M_.transpose(0, 2, 1) + 1e-3 * np.eye(n)
    P[::9] *= 1e3  # some members are much slower than others
    q, A = rng.standard_normal((B, n)), rng.standard_normal((B, m, n))
    l, u = -rng.random((B, m)), rng.random((B, m))
    res = admm_qp(P, q, A, l, u, backend="jax", tol=1e-6)
    assert res.converged and all(s is Status.OPTIMAL for s in res.status)
    assert any(key[0] == "admm" and key[1][0] == "scatter"
               for key in compile_cache._items)  # compacted
    its = res.info["iterations"]
    assert its.max() > 2 * np.median(its)  # a tail worth compacting
    loop = admm_qp(P, q, A, l, u, tol=1e-6)  # numpy: member by member
    np.testing.assert_array_equal(loop.info["iterations"], its)
    np.testing.assert_allclose(loop.x, res.x, atol=1e-8)


def test_batch_mixed_statuses_and_shared_data():
    """Shared P and A, per-member q, l, u; one member infeasible, one unbounded-free."""
    P, q, A, l, u = random_qp(N, M, seed=31)
    B = 6  # the size of the batch above: the compiled loop is reused
    qs = np.stack([q * (1 + 0.1 * i) for i in range(B)])
    ls = np.tile(l, (B, 1))
    us = np.tile(u, (B, 1))
    ls[2, 0], us[2, 0] = 5.0, 6.0          # row 0 of member 2 asks for A_0 x in [5, 6] ...
    ls[2, 1], us[2, 1] = -np.inf, -50.0    # ... and row 1 for A_1 x <= -50: maybe feasible,
    A2 = A.copy()
    A2[1] = A2[0]                          # but row 1 = row 0 makes it infeasible
    prob = QuadraticProgram(P, qs, np.stack([A2 if i == 2 else A for i in range(B)]), ls, us)
    res = prob.solve(backend="jax", tol=1e-6)
    statuses = res.status  # one per member
    assert list(statuses) == res.info["statuses"]
    assert statuses[2] is Status.PRIMAL_INFEASIBLE
    assert all(statuses[i] is Status.OPTIMAL for i in range(B) if i != 2)
    assert not res.converged
    assert res.message.startswith(f"{B - 1} of {B} members optimal; 1 primal_infeasible "
                                  "(first: member 2")
    assert np.isnan(res.x[2]).all() and np.isfinite(np.delete(res.x, 2, axis=0)).all()
    # per-member objectives: +inf for the infeasible member, never a sum
    assert res.objective[2] == math.inf and np.isfinite(np.delete(res.objective, 2)).all()
    assert np.isnan(res.dual[2]).all()
    for i in (0, 4):
        single = prob.member(i).solve(tol=1e-6, acceleration=False)  # the batch's iteration
        np.testing.assert_allclose(res.x[i], single.x, atol=1e-6)
        assert res.objective[i] == pytest.approx(single.objective, rel=1e-6)
    # check() of the whole batch: not ok (a member is infeasible), reported as such
    rep = prob.check(res)
    assert not rep.ok and rep.status is Status.PRIMAL_INFEASIBLE


def nonconvex_qp():
    """P has eigenvalues 3 and -1 (shapes of infeasible_qp): P + sigma I + rho A'A is indefinite."""
    P = np.array([[1.0, 2.0], [2.0, 1.0]])
    return P, np.ones(2), infeasible_qp()[2], -np.ones(3), np.ones(3)


@pytest.mark.parametrize("path", ["dense", "sparse", "jax"])
def test_nonconvex_p_is_numerical_error(path):
    """A non-convex P (positive diagonal, so validation passes) is reported, never solved: the
    Cholesky factorization fails (dense, JAX) or the LDL^T has the wrong inertia (sparse)."""
    P, q, A, l, u = nonconvex_qp()
    if path == "sparse":
        res = admm_qp(sp.csc_matrix(P), q, sp.csc_matrix(A), l, u, linsys="sparse")
    else:
        res = admm_qp(P, q, A, l, u, backend="jax" if path == "jax" else "numpy")
    assert res.status is Status.NUMERICAL_ERROR and np.isnan(res.x).all()


def padded(P, q, A, l, u, n=N, m=M):
    """A small QP embedded in the shapes (N, M) of the other batch tests (so that the compiled
    JAX loop is reused): extra variables with cost x'x/2 and rows e_j' x in [-1, 1], then
    empty rows in [-1, 1]; statuses and the first variables' solution are unchanged."""
    k, j = A.shape
    Pp, qp = np.eye(n), np.zeros(n)
    Pp[:j, :j], qp[:j] = P, q
    Ap = np.zeros((m, n))
    Ap[:k, :j], Ap[k:k + n - j, j:] = A, np.eye(n - j)
    return Pp, qp, Ap, np.r_[l, -np.ones(m - k)], np.r_[u, np.ones(m - k)]


def test_batch_every_status_certificates_polish_warm_start():
    """A batch of primal infeasible, unbounded, optimal and non-convex members (padded to the
    shapes of the other batch tests). JAX (the explicit-inverse linear system of small
    batches) and numpy (member by member) agree on statuses, certificates and the polished
    solution, and a batch warm-starts from its own result."""
    optimal = (np.diag([1.0, 2.0]), np.array([1.0, -1.0]), infeasible_qp()[2], -np.ones(3),
               np.ones(3))  # x1 and x2 in [-1, 1]
    members = [padded(*m) for m in (infeasible_qp(), unbounded_lp(), optimal, nonconvex_qp())]
    members += [random_qp(N, M, seed=200 + i) for i in range(2)]  # B = 6 as above
    P, q, A, l, u = (np.stack([m[k] for m in members]) for k in range(5))
    expected = [Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE, Status.OPTIMAL,
                Status.NUMERICAL_ERROR, Status.OPTIMAL, Status.OPTIMAL]
    x_opt = np.r_[-1.0, 0.5, np.zeros(N - 2)]  # the unconstrained minimizer is feasible
    results = {}
    for backend in ("numpy", "jax"):
        res = admm_qp(P, q, A, l, u, backend=backend, polish=True)
        results[backend] = res
        assert res.info["statuses"] == expected and list(res.status) == expected
        assert list(res.objective[:2]) == [math.inf, -math.inf] and np.isnan(res.objective[3])
        assert np.isnan(res.x[[0, 1, 3]]).all() and np.isfinite(res.x[[2, 4, 5]]).all()
        assert list(res.info["polish"]) == [0, 0, 1, 0, 1, 1]
        np.testing.assert_allclose(res.x[2], x_opt, atol=1e-8)  # polished: exact
        for i, check in enumerate((assert_primal_certificate, assert_dual_certificate)):
            check(res.info["certificates"][i], P[i], q[i], A[i], l[i], u[i])
        assert all(c is None for c in res.info["certificates"][2:])
        assert res.info["eps_gap"].shape == (6,)
        # warm start from the batch result: the solved members stop at the first check
        warm = admm_qp(P, q, A, l, u, backend=backend, warm_start=res, polish=True)
        assert warm.info["statuses"] == expected
        assert all(warm.info["iterations"][i] == 25 for i in (2, 4, 5))
    np.testing.assert_allclose(results["numpy"].x, results["jax"].x, atol=1e-8)
    for i in range(2):
        np.testing.assert_allclose(results["numpy"].info["certificates"][i],
                                   results["jax"].info["certificates"][i], atol=1e-8)
    assert "inverse" in results["jax"].info["linsys"]


def test_warm_start(backend):
    P, q, A, l, u = random_qp(N, M, seed=41, n_eq=2)
    prob = QuadraticProgram(P, q, A, l, u)
    cold = prob.solve(backend=backend, tol=1e-7)
    again = prob.solve(backend=backend, tol=1e-7, warm_start=cold)
    assert again.status is Status.OPTIMAL and again.iterations <= 25 < cold.iterations
    # a nearby problem (q perturbed) also starts better from the old solution
    near = QuadraticProgram(P, q + 0.01, A, l, u)
    c2 = near.solve(backend=backend, tol=1e-7)
    w2 = near.solve(backend=backend, tol=1e-7, warm_start=cold)
    assert w2.status is Status.OPTIMAL and w2.iterations < c2.iterations
    np.testing.assert_allclose(w2.x, c2.x, atol=1e-5)
    # a pair (x, y) works too; bad shapes are refused
    assert prob.solve(tol=1e-7, warm_start=(cold.x, cold.info["y"])).iterations <= 25
    with pytest.raises(ValueError, match="warm_start"):
        prob.solve(warm_start=(cold.x[:-1], cold.info["y"]))
    with pytest.raises(ValueError, match="warm_start rho"):
        prob.solve(warm_start={"x": cold.x, "rho": np.ones(3)})


def test_from_cvxpy_roundtrip():
    import cvxpy as cp

    rng = np.random.default_rng(51)
    F = rng.standard_normal((15, 5))
    g = rng.standard_normal(15)
    w = cp.Variable(5, name="w")
    s = cp.Variable(2, nonneg=True, name="s")
    lam = cp.Parameter(nonneg=True, value=0.3)
    cons = [cp.sum(w) == 1, w[:2] <= 0.4, s >= w[3:], cp.norm(w, "inf") <= 2]
    problem = cp.Problem(cp.Minimize(cp.sum_squares(F @ w - g) + lam * cp.sum(s) + 2.5), cons)
    qp = QuadraticProgram.from_cvxpy(problem)
    res = qp.solve(tol=1e-9, polish=True)
    assert res.status is Status.OPTIMAL
    values = qp.unpack(res)
    w_ours, s_ours, value = values[w].copy(), values[s].copy(), problem.value
    duals = [np.copy(c.dual_value) for c in cons]
    problem.solve(solver="CLARABEL")
    assert abs(value - problem.value) <= 1e-7 * abs(problem.value)
    np.testing.assert_allclose(w_ours, w.value, atol=1e-6)
    np.testing.assert_allclose(s_ours, s.value, atol=1e-6)
    for ours, ref in zip(duals, [c.dual_value for c in cons]):
        np.testing.assert_allclose(ours, ref, atol=1e-5)
    # the QP's own CVXPY model (standard form) has the same optimum, less the constant
    assert abs(qp.reference().objective + qp.offset - problem.value) <= 1e-7 * abs(problem.value)
    # not a QP
    with pytest.raises(ValueError, match="not a QP"):
        QuadraticProgram.from_cvxpy(cp.Problem(cp.Minimize(cp.sum(cp.exp(w)))))
    with pytest.raises(ValueError, match="from_cvxpy"):
        QuadraticProgram(*random_qp(3, 2, 0)).unpack(res)


def test_status_honesty_max_iter_and_time_limit():
    prob = QuadraticProgram(*random_qp(N, M, seed=61, n_eq=2))
    capped = prob.solve(tol=1e-10, max_iter=30)
    assert capped.status is Status.MAX_ITER and capped.iterations == 30 and not capped.converged
    assert not prob.check(capped).ok
    loose = prob.solve(tol=1e-10, max_iter=150, check_every=25)
    assert loose.status in (Status.MAX_ITER, Status.OPTIMAL_INACCURATE)
    if loose.status is Status.OPTIMAL_INACCURATE:  # within 10x of the tolerances
        assert loose.primal_residual <= 10 * loose.info["eps_prim"]
    never = prob.solve(tol=1e-300, max_iter=10**9, time_limit=0.05)  # unreachable tolerance
    assert never.status is Status.TIME_LIMIT and not never.converged


def test_verbose_history_and_info(capsys):
    prob = QuadraticProgram(*random_qp(N, M, seed=71))
    res = prob.solve(tol=1e-6, verbose=True)
    out = capsys.readouterr().out
    assert "prim_res" in out and "status: optimal" in out
    h = res.history
    assert h["iteration"][-1] == res.iterations and len(h["rho"]) == len(h["prim_res"])
    assert res.info["rho_updates"] >= 0 and "Cholesky" in res.info["linsys"]
    assert "admm" in methods() and methods()["admm"].backends == ("numpy", "jax")


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 8), m=st.integers(0, 10), seed=st.integers(0, 10**6),
       scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_kkt_conditions_hold(n, m, seed, scale):
    """Any feasible QP (x = 0 feasible), at any data scale: optimal, and the KKT residuals are
    within the solver's own tolerances."""
    rng = np.random.default_rng(seed)
    M_ = rng.standard_normal((n, max(1, n // 2)))
    P = scale * (M_ @ M_.T)
    q = scale * rng.standard_normal(n)
    A = rng.standard_normal((m, n))
    l = -rng.random(m) - 0.01
    u = rng.random(m) + 0.01
    if m:
        u[rng.random(m) < 0.3] = np.inf
    # bounded: add a box so that the QP has a solution even where P is singular
    A = np.vstack([A, np.eye(n)])
    l = np.r_[l, -np.ones(n)]
    u = np.r_[u, np.ones(n)]
    tol = 1e-6
    res = admm_qp(P, q, A, l, u, tol=tol, max_iter=20_000)
    assert res.status is Status.OPTIMAL
    # the residuals in normalized units (rows / (a_i beta), costs / gamma; cvxkit.solvers.scaling)
    un = units_dense(np, P, q, A, l, u)
    x, y = res.x, res.info["y"]
    z = np.clip(A @ x, l, u)
    assert np.abs(un.E0 * (A @ x - z)).max() <= res.info["eps_prim"] * (1 + 1e-9)
    dual = np.abs(un.D0 * un.c0 * (P @ x + q + A.T @ y)).max()
    assert dual <= res.info["eps_dual"] * (1 + 1e-9)


BAD = {
    "P shape": (lambda P, q, A, l, u: (P[:, :-1], q, A, l, u), "P must have shape"),
    "A shape": (lambda P, q, A, l, u: (P, q, A[:, :-1], l, u), "A must have shape"),
    "l shape": (lambda P, q, A, l, u: (P, q, A, l[:-1], u), "l must have shape"),
    "nan q": (lambda P, q, A, l, u: (P, np.r_[np.nan, q[1:]], A, l, u), "q contains NaN"),
    "inf A": (lambda P, q, A, l, u: (P, q, np.where(A > 1, np.inf, A), l, u), "A contains NaN"),
    "nan u": (lambda P, q, A, l, u: (P, q, A, l, np.r_[np.nan, u[1:]]), "u contains NaN"),
    "l > u": (lambda P, q, A, l, u: (P, q, A, u + 1, u), "l > u at index"),
    "asymmetric": (lambda P, q, A, l, u: (np.triu(P), q, A, l, u), "symmetric"),
    "complex P": (lambda P, q, A, l, u: (P * (1 + 1j), q, A, l, u), "P must be real"),
    "negative diagonal": (lambda P, q, A, l, u: (-P, q, A, l, u), "positive semidefinite"),
    "strings": (lambda P, q, A, l, u: (P, ["a"] * len(q), A, l, u), "numeric"),
    "batch sizes": (lambda P, q, A, l, u: (P, np.stack([q, q]), np.stack([A, A, A]), l, u),
                    "batch dimensions differ"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(case):
    change, msg = BAD[case]
    with pytest.raises(ValueError, match=msg):
        QuadraticProgram(*change(*random_qp(4, 3, seed=0)))


@pytest.mark.parametrize("bad", [dict(tol=0), dict(eps_abs=-1), dict(alpha=2.0), dict(rho=0),
                                 dict(check_every=0), dict(linsys="cholesky"), dict(scaling=-1),
                                 dict(adaptive_rho_tolerance=0.5), dict(max_iter=0),
                                 dict(adaptive_rho_tolerance=True),
                                 dict(backend="jax", linsys="sparse")])
def test_bad_options(bad):
    with pytest.raises(ValueError):
        admm_qp(*random_qp(4, 3, seed=0), **bad)
    with pytest.raises(ValueError, match="unknown option"):
        QuadraticProgram(*random_qp(4, 3, seed=0)).solve(eps=1e-3)


def test_batch_refuses_sparse_linsys():
    """A batch is solved with the dense reduced system: asking for the sparse KKT is an error,
    not a silent fallback."""
    P, q, A, l, u = random_qp(4, 3, seed=0)
    with pytest.raises(ValueError, match="batches"):
        admm_qp(P, np.stack([q, q]), A, l, u, linsys="sparse")


def test_unrolled_spd_solve_matches_lapack_and_rejects_indefinite():
    """The written-out elimination behind small batched inverses: LAPACK's answer on a positive
    definite matrix, NaN (like the JAX Cholesky) on an indefinite one."""
    import jax.numpy as jnp

    from cvxkit.solvers import kkt
    from cvxkit.solvers.backend import get_backend

    rng = np.random.default_rng(3)
    G = rng.standard_normal((7, 7))
    K = G @ G.T + 0.1 * np.eye(7)
    R = rng.standard_normal((7, 4))
    with get_backend("jax", "float64").precision():
        X = np.asarray(kkt.spd_solve_unrolled(jnp, jnp.asarray(K), jnp.asarray(R)))
        bad = np.asarray(kkt.spd_solve_unrolled(jnp, jnp.asarray(np.diag([1.0, -1.0, 2.0])),
                                                jnp.eye(3)))
    assert np.allclose(X, np.linalg.solve(K, R), rtol=1e-10, atol=1e-12)
    assert np.isnan(bad).all()


def test_mesh_needs_a_jax_batch():
    P, q, A, l, u = random_qp(N, M, seed=2)
    with pytest.raises(ValueError, match="mesh"):
        admm_qp(P, q, A, l, u, mesh=object())
    with pytest.raises(ValueError, match="mesh"):
        admm_qp(P, q, A, l, u, backend="jax", mesh=object())


MESH_BATCH = """
import sys, numpy as np, jax
sys.path.insert(0, {tests!r})
from jax.sharding import Mesh
from cvxkit.solvers.admm_qp import admm_qp
assert len(jax.devices()) == 2
B, n, m = 81, 3, 5  # odd: padded to 82; 41 per device, compacted to 16
rng = np.random.default_rng(5)
M_ = rng.standard_normal((B, n, n))
P = M_ @ M_.transpose(0, 2, 1) + 1e-3 * np.eye(n)
P[::9] *= 1e3  # slow members, so that the blocks are compacted
q, A = rng.standard_normal((B, n)), rng.standard_normal((B, m, n))
l, u = -rng.random((B, m)), rng.random((B, m))
l[4, 0], u[4, 0] = 5.0, 6.0
l[4, 1], u[4, 1] = -np.inf, -50.0
A[4, 1] = A[4, 0]  # member 4 is primal infeasible
one = admm_qp(P, q, A, l, u, backend="jax", tol=1e-6)
two = admm_qp(P, q, A, l, u, backend="jax", tol=1e-6, mesh=Mesh(np.array(jax.devices()), ("b",)))
assert [s.value for s in one.info["statuses"]] == [s.value for s in two.info["statuses"]]
assert two.info["statuses"][4].value == "primal_infeasible"
# the same iterations (up to one check: XLA may round differently for other block sizes)
assert np.abs(one.info["iterations"] - two.info["iterations"]).max() <= 25
np.testing.assert_allclose(two.x, one.x, rtol=1e-6, atol=1e-6, equal_nan=True)
assert two.x.shape == (B, n) and two.compile_time > 0
try:  # larger members would need LAPACK calls on both devices at once (XLA:CPU deadlocks)
    admm_qp(np.stack([np.eye(13)] * 2), np.ones((2, 13)), backend="jax",
            mesh=Mesh(np.array(jax.devices()), ("b",)))
    raise AssertionError("n = 13 on two CPU devices was accepted")
except ValueError as e:
    assert "LAPACK" in str(e)
from cvxkit.solvers.driver import compile_cache
assert any(k[0] == "admm" and k[1][0] == "scatter" and k[1][2].devices.size == 2
           for k in compile_cache._items)  # the blocks were compacted
print("OK")
"""


def test_mesh_splits_a_batch_over_devices():
    """Two forced host devices, each solving its own block of an odd-sized batch (padded), with
    compaction on each: the same members, statuses and iterations as on one device."""
    run_on_host_devices(MESH_BATCH, 2)


# --- issue 17: no silent wrong answers ----------------------------------------------------------
def test_rows_scaled_by_1e_12_are_not_ignored(backend):
    """Constraint rows times 1e-12: the same answer as the unscaled QP (OSQP's absolute tolerance
    let any violation of such rows pass: the solver returned 'optimal' at -1.468, the optimum is
    -0.437; Clarabel makes the same mistake, so the reference is the unscaled QP's)."""
    P, q, A, l, u = random_qp(4, 6, seed=3)
    ref = QuadraticProgram(P, q, A, l, u).reference()
    s = np.full(6, 1e-12)
    s[::2] = 1.0  # mixed: half the rows tiny
    prob = QuadraticProgram(P, q, s[:, None] * A, s * l, s * u)
    res = prob.solve(backend=backend, tol=1e-7)
    assert res.status is Status.OPTIMAL
    assert res.objective == pytest.approx(ref.objective, rel=1e-5)
    # violations in normalized units (row i / (a_i beta)): tiny rows count in full
    assert prob.max_violation(res.x) <= 1e-5
    np.testing.assert_allclose(res.x, ref.x, atol=1e-4)
    # the duals of the tiny rows scale up by 1e12 (A^T y is unchanged)
    assert prob.kkt_residuals(res.x, res.info["y"])["dual"] <= 1e-5 * max(1.0, np.abs(q).max())


def test_strongly_convex_tiny_p_is_not_unbounded(backend):
    """P = 1e-9, q = 1.2573e-7: x* = -125.73, not 'dual_infeasible' (the step x^k - x^{k-1}
    had P d < eps ||d|| in absolute terms; P d ~ 0 is now relative to max|P|)."""
    res = QuadraticProgram([[1e-9]], [1.2573e-7]).solve(backend=backend, tol=1e-7)
    assert res.status is Status.OPTIMAL
    assert res.x[0] == pytest.approx(-125.73, rel=1e-6)
    # the step direction d = -1 is not a certificate on the user's data
    why = admm_box.certificate_error(np.array([[1e-9]]), np.array([1.2573e-7]), np.zeros((0, 1)),
                                 np.zeros(0), np.zeros(0), Status.DUAL_INFEASIBLE,
                                 np.array([-1.0]), 1e-4, 1e-4)
    assert why is not None and "P d" in why


def test_certificates_are_checked_on_unscaled_data():
    """`certificate_error`: true certificates pass, wrong ones are named; the solver's
    certificates pass it (on both infeasibility kinds, at several row scales)."""
    ce = admm_box.certificate_error
    P, q = np.eye(2), np.array([1.0, -1.0])
    # x1 >= 1 and x1 <= 0: y = (-1, 1) is a certificate, y = (1, -1) and y = (-1, 0.5) are not
    A = np.array([[1.0, 0.0], [1.0, 0.0]])
    l, u = np.array([1.0, -np.inf]), np.array([np.inf, 0.0])
    pinf = Status.PRIMAL_INFEASIBLE
    assert ce(P, q, A, l, u, pinf, np.array([-1.0, 1.0]), 1e-4, 1e-4) is None
    assert "infinite" in ce(P, q, A, l, u, pinf, np.array([1.0, -1.0]), 1e-4, 1e-4)
    assert "A^T y" in ce(P, q, A, l, u, pinf, np.array([-1.0, 0.5]), 1e-4, 1e-4)
    # infeasible by 1e-9 only (x1 >= 1, x1 <= 1 - 1e-9): not a certificate at eps 1e-4
    assert "u'y+" in ce(P, q, A, l, np.array([np.inf, 1 - 1e-9]), pinf, np.array([-1.0, 1.0]),
                        1e-4, 1e-4)
    for s in (1e-9, 1.0, 1e9):
        r = np.array([s, 1.0])
        res = admm_qp(P, q, r[:, None] * A, r * l, r * u, tol=1e-6)
        assert res.status is Status.PRIMAL_INFEASIBLE, s
        assert ce(P, q, r[:, None] * A, r * l, r * u, pinf, res.info["certificate"], 1e-4,
                  1e-4) is None
    # unbounded: min x2 over x1 in [-1, 1] (P = diag(1, 0)); d = (0, -1)
    P, q = np.diag([1.0, 0.0]), np.array([0.3, 1.0])
    A, l, u = np.array([[1.0, 0.0]]), np.array([-1.0]), np.array([1.0])
    dinf = Status.DUAL_INFEASIBLE
    assert ce(P, q, A, l, u, dinf, np.array([0.0, -1.0]), 1e-4, 1e-4) is None
    assert "q'd" in ce(P, q, A, l, u, dinf, np.array([0.0, 1.0]), 1e-4, 1e-4)
    assert "recession" in ce(0 * P, q, A, l, u, dinf, np.array([1.0, -1.0]), 1e-4, 1e-4)
    for s in (1e-9, 1.0, 1e9):
        res = admm_qp(s * P, s * q, A, l, u, tol=1e-6)
        assert res.status is Status.DUAL_INFEASIBLE, s
        assert "holds on the unscaled data" in res.message


@pytest.mark.parametrize("fmt", ["lil", "dok", "dia", "coo", "bsr", "csr", "csc"])
def test_every_sparse_format(fmt):
    """P and A in every scipy.sparse format (lil, dok and dia crashed inside scipy)."""
    P, q, A, l, u = random_qp(5, 4, seed=2)
    dense = admm_qp(P, q, A, l, u, tol=1e-8)
    res = QuadraticProgram(sp.csr_matrix(P).asformat(fmt), q, sp.csr_matrix(A).asformat(fmt),
                           l, u).solve(tol=1e-8)
    assert res.status is Status.OPTIMAL
    np.testing.assert_allclose(res.x, dense.x, atol=1e-6)


@pytest.mark.parametrize("args, name", [
    ((np.eye(2), None), "q"), ((None, [1.0, 2.0]), "P"), (([[1.0, 0.0], [0.0]], [1.0, 2.0]), "P"),
    ((np.eye(2), [[1.0], [1.0, 2.0]]), "q"), ((np.zeros((0, 0)), np.zeros(0)), "q"),
    ((np.zeros((0, 0)), [1.0]), "P"), ((np.eye(2), [1.0, 2.0], [[1.0, 1.0]], [[0.0], [1, 2]]), "l"),
    ((np.eye(2), [1.0, 2.0], [[1.0, 1.0]], [0.0], [1j]), "u"),
    ((np.array([[1, 0], [0, None]], dtype=object), [1.0, 2.0]), "P"),
    ((np.eye(2), "ab"), "q"), ((np.eye(2), [1.0, 2.0], np.ones(2)), "A")])
def test_bad_data_names_the_argument(args, name):
    """None, ragged, empty, object, complex and string data: a ValueError naming the argument."""
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        QuadraticProgram(*args)


@pytest.mark.parametrize("opt, value", [
    ("tol", "1e-3"), ("eps_rel", "0.1"), ("eps_abs", 0), ("rho", [0.1]), ("sigma", True), ("alpha", 2.5),
    ("delta", -1.0), ("eps_primal_infeasible", "x"), ("eps_dual_infeasible", np.nan), ("max_iter", 1.5),
    ("check_every", 2.0), ("scaling", 1.0), ("polish_refine_iter", -1), ("adaptive_rho", 1),
    ("check_gap", "yes"), ("polish", None), ("linsys", 1), ("adaptive_rho_tolerance", "5"),
    ("time_limit", "1"), ("verbose", 2), ("acceleration", "yes")])
def test_option_types(opt, value):
    """Every option is type-checked: TypeError/ValueError naming it, not a crash later."""
    with pytest.raises((TypeError, ValueError), match=opt):
        QuadraticProgram(*random_qp(4, 3, seed=0)).solve(**{opt: value})


@pytest.mark.parametrize("ws", [
    "x", np.ones(4), {"x": np.ones(5)}, {"xx": np.ones(4)}, (np.ones(4), np.ones(2)),
    ([1.0, [2.0]], np.ones(3)), {"x": np.ones(4), "rho": "a"}, (np.ones(4) * 1j, np.ones(3)),
    {"x": np.ones(4), "rho": np.ones(3)}])
def test_malformed_warm_start(ws, backend):
    """A warm start of the wrong type or shape: ValueError saying what is expected."""
    with pytest.raises(ValueError, match="warm_start"):
        QuadraticProgram(*random_qp(4, 3, seed=0)).solve(backend=backend, warm_start=ws)


def test_soft_infinite_bounds_do_not_loosen_the_tolerance():
    """An LP with 'soft infinite' bounds |x_i| <= 1e6 and x* of size 1: the length unit is the
    smallest bound magnitude, not a typical one (a median of 5e5 let a constraint violation of 39
    pass as optimal at tol 1e-3, objective 111.7 against -5.23)."""
    rng = np.random.default_rng(0)
    n = 10
    R = 0.1 * rng.standard_normal((n, n)) + np.eye(n)
    A = np.vstack([np.eye(n), R, -R])
    l = np.r_[-1e6 * np.ones(n), np.full(2 * n, -np.inf)]
    u = np.r_[1e6 * np.ones(n), 0.5 * np.ones(n), np.ones(n)]
    prob = QuadraticProgram(np.zeros((n, n)), rng.standard_normal(n), A, l, u)
    ref = prob.reference()
    for tol in (1e-3, 1e-6):
        res = prob.solve(tol=tol)
        assert res.status is Status.OPTIMAL
        Ax = A @ res.x
        assert np.max(np.maximum(Ax - u, l - Ax)) <= 10 * tol * (1 + np.abs(Ax).max())
        assert abs(res.objective - ref.objective) <= 10 * tol * (1 + abs(ref.objective))
