"""Re-solves that keep the set-up (issue 23): `admm_qp_setup` / `QPWorkspace`,
`QuadraticProgram.update`, `LinearProgram.update` and `CvxpySolver`'s reuse of the workspace.

Re-solves are compared with cold `admm_qp` solves of the same data at ``tol=1e-7``: both meet
the tolerances, so solutions agree to ~1e-6 relative (the assertions allow 1e-5); a pattern
change must say "refactored"; infeasibility after an update must come with a certificate that
`certificate_error` accepts on the user's data.
"""
import numpy as np
import pytest
import scipy.sparse as sp

from cvxkit.problems import LinearProgram, QuadraticProgram
from cvxkit.solvers.admm_box import certificate_error
from cvxkit.solvers.admm_qp import admm_qp
from cvxkit.solvers.kkt import as_scipy, gram
from cvxkit.solvers.qp_workspace import admm_qp_setup
from cvxkit.solvers.result import Status
from cvxkit.solvers.scaling import units_sparse

TOL = 1e-7


def qp_data(seed=0, n=30, m=40, sparse=False):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    P = M @ M.T / n + 0.1 * np.eye(n)
    A = rng.standard_normal((m, n))
    if sparse:
        P, A = sp.csc_matrix(P), sp.csc_matrix(A)
    return P, rng.standard_normal(n), A, -rng.random(m), rng.random(m)


def solved(seed, linsys, sparse):
    """A workspace of `qp_data` at ``TOL``, solved once, and its data."""
    P, q, A, l, u = qp_data(seed, sparse=sparse)
    ws = admm_qp_setup(P, q, A, l, u, tol=TOL, linsys=linsys)
    return ws, ws.solve(), (P, q, A, l, u)


def sparse_qp(seed=1, k=8, md=120):
    """A lasso in OSQP's QP form (x, y, t): n = md + 2k, sparse KKT by default for md > 300."""
    rng = np.random.default_rng(seed)
    Ad = sp.random(md, k, density=0.3, random_state=rng, data_rvs=rng.standard_normal)
    b = Ad @ rng.standard_normal(k) + 0.1 * rng.standard_normal(md)
    Ik = sp.eye(k)
    P = sp.block_diag([sp.csc_matrix((k, k)), 2 * sp.eye(md), sp.csc_matrix((k, k))], format="csc")
    A = sp.vstack([sp.hstack([Ad, -sp.eye(md), sp.csc_matrix((md, k))]),
                   sp.hstack([Ik, sp.csc_matrix((k, md)), -Ik]),
                   sp.hstack([Ik, sp.csc_matrix((k, md)), Ik])], format="csc")
    l = np.r_[b, -np.inf * np.ones(k), np.zeros(k)]
    u = np.r_[b, np.zeros(k), np.inf * np.ones(k)]
    q_of = lambda lam: np.r_[np.zeros(k + md), lam * np.ones(k)]  # noqa: E731
    return P, q_of, A, l, u


def close(res, ref, rtol=1e-5):
    assert res.status is Status.OPTIMAL and ref.status is Status.OPTIMAL
    scale = max(1.0, np.abs(ref.x).max())
    assert np.abs(res.x - ref.x).max() <= rtol * scale
    assert abs(res.objective - ref.objective) <= rtol * max(1.0, abs(ref.objective))


LINSYS = [("dense", False), ("dense", True), ("sparse", True)]  # (linsys, sparse input)


@pytest.mark.parametrize("linsys, sparse", LINSYS)
def test_first_solve_and_cold_restart_repeat_admm_qp(linsys, sparse):
    ws, first, (P, q, A, l, u) = solved(0, linsys, sparse)
    ref = admm_qp(P, q, A, l, u, tol=TOL, linsys=linsys)
    assert first.info["workspace"]["setup"] == "new"
    assert np.array_equal(first.x, ref.x) and first.iterations == ref.iterations
    again = ws.solve(warm_start=False)  # zeros and the option rho: the same iterates
    assert np.array_equal(again.x, ref.x) and again.iterations == ref.iterations
    warm = ws.solve()  # from the solution: done at the first check
    assert warm.status is Status.OPTIMAL and warm.iterations <= 25
    assert ws.setups == 1


@pytest.mark.parametrize("linsys, sparse", LINSYS)
def test_resolve_with_new_vectors_equals_a_cold_solve(linsys, sparse):
    ws, _, (P, q, A, l, u) = solved(2, linsys, sparse)
    rng = np.random.default_rng(3)
    for q2, l2, u2 in [(q + 0.3 * rng.standard_normal(q.size), l, u),
                       (q, l - 0.2 * rng.random(l.size), u + 0.5),
                       (10.0 * q, 0.1 * l, 0.1 * u)]:  # other units: tolerances follow them
        res = ws.solve(q=q2, l=l2, u=u2)
        assert res.info["workspace"]["setup"] == "kept"
        close(res, admm_qp(P, q2, A, l2, u2, tol=TOL, linsys=linsys))
    assert ws.setups == 1 and ws.refactorizations == 0


def test_sparse_lasso_path_warm_starts():
    P, q_of, A, l, u = sparse_qp()
    ws = admm_qp_setup(P, q_of(1.0), A, l, u, tol=TOL, linsys="sparse")
    for lam in (1.0, 1.5, 2.0, 3.0):
        res = ws.solve(q=q_of(lam))
        cold = admm_qp(P, q_of(lam), A, l, u, tol=TOL, linsys="sparse")
        close(res, cold)
        if lam > 1.0:
            assert res.info["workspace"]["setup"] == "kept"
            assert res.iterations <= cold.iterations  # (times: benchmarks/qp_resolve.py)
    assert "sparse KKT" in res.info["linsys"]


def test_tolerances_are_in_the_new_data_units():
    """The norms of the stopping test are those of the new data (not of the set-up's)."""
    P, q_of, A, l, u = sparse_qp(4)
    ws = admm_qp_setup(P, q_of(1.0), A, l, u, tol=TOL)
    ws.solve()
    q2, l2, u2 = q_of(1e3), 1e-3 * l, 1e-3 * u
    ws.update(q=q2, l=l2, u=u2)
    d, un = ws._d, units_sparse(P, q2, A, l2, u2)
    for got, want in ((d.norms.ue, un.E0 / d.E), (d.norms.ud, un.D0 / d.D),
                      (d.norms.uc, un.c0 / d.c)):
        np.testing.assert_allclose(got, want, rtol=1e-14)
    close(ws.solve(), admm_qp(P, q2, A, l2, u2, tol=TOL))


@pytest.mark.parametrize("linsys, sparse", LINSYS)
def test_a_pattern_change_refactors(linsys, sparse):
    ws, _, (P, q, A, l, u) = solved(5, linsys, sparse)
    l2, u2 = l.copy(), u.copy()
    l2[0] = u2[0] = 0.05  # an equality
    l2[3], u2[3] = -np.inf, np.inf  # a free row
    res = ws.solve(l=l2, u=u2)
    info = res.info["workspace"]
    assert info["setup"] == "refactored" and "2 row(s)" in info["why"]
    assert info["changed"] == ["l", "u"] and ws.refactorizations == 1
    close(res, admm_qp(P, q, A, l2, u2, tol=TOL, linsys=linsys))
    d = ws._d
    assert d.rho_w[0] == 1e3 and d.rho_w[3] == 0
    if linsys == "dense":  # G0, G1 updated by the changed rows = made anew
        Ad, Pd = as_scipy(d.A), as_scipy(d.P)
        Pd = Pd.toarray() if sp.issparse(Pd) else Pd
        G1 = gram(Ad, d.rho_w)
        G0 = Pd.T + 1e-6 * np.eye(P.shape[0]) + 1e-6 * gram(Ad, (d.rho_w == 0) * 1.0)
        np.testing.assert_allclose(d.lin.G1, G1, atol=1e-12 * np.abs(G1).max())
        np.testing.assert_allclose(d.lin.G0, G0, atol=1e-12 * np.abs(G0).max())
    back = ws.solve(l=l, u=u)  # and back: refactored again
    assert back.info["workspace"]["setup"] == "refactored" and ws.refactorizations == 2


@pytest.mark.parametrize("sparse", [False, True])
def test_infeasible_after_update_has_a_verified_certificate(sparse):
    P, q, A, l, u = qp_data(6)
    A = np.vstack([A, A[:1]])  # row m duplicates row 0
    l, u = np.r_[l, -1.0], np.r_[u, 1.0]
    if sparse:
        P, A = sp.csc_matrix(P), sp.csc_matrix(A)
    ws = admm_qp_setup(P, q, A, l, u, tol=TOL)
    assert ws.solve().status is Status.OPTIMAL
    l2, u2 = l.copy(), u.copy()
    l2[0], u2[0] = 2.0, 3.0  # row 0 in [2, 3], its copy in [-1, 1]
    res = ws.solve(l=l2, u=u2)
    assert res.status is Status.PRIMAL_INFEASIBLE and np.isnan(res.x).all()
    assert certificate_error(P, q, A, l2, u2, res.status, res.info["certificate"], 1e-4,
                             1e-4) is None
    back = ws.solve(l=l, u=u)  # from the NaN result: starts at 0
    close(back, admm_qp(P, q, A, l, u, tol=TOL))


def test_unbounded_after_update_has_a_verified_certificate():
    """min q'x over x >= 0 with P = 0 on the last coordinate: unbounded once q_last < 0."""
    n = 4
    P = np.diag([1.0, 1.0, 1.0, 0.0])
    A, l, u = np.eye(n), np.zeros(n), np.full(n, np.inf)
    q = np.array([1.0, -1.0, 0.5, 1.0])
    ws = admm_qp_setup(P, q, A, l, u, tol=TOL)
    assert ws.solve().status is Status.OPTIMAL
    q2 = np.array([1.0, -1.0, 0.5, -1.0])
    res = ws.solve(q=q2)
    assert res.status is Status.DUAL_INFEASIBLE and res.objective == -np.inf
    assert certificate_error(P, q2, A, l, u, res.status, res.info["certificate"], 1e-4,
                             1e-4) is None


def test_bad_vectors_raise_and_change_nothing():
    P, q, A, l, u = qp_data()
    ws = admm_qp_setup(P, q, A, l, u)
    for kwargs, match in [(dict(q=q[:-1]), "q must have shape"),
                          (dict(q=np.r_[q[:-1], np.nan]), "NaN"),
                          (dict(l=np.ones(l.size) * 2.0), "l > u"),
                          (dict(u=u[:3]), "u must have shape"),
                          (dict(l=np.full(l.size, np.inf)), "l must be < \\+inf")]:
        with pytest.raises(ValueError, match=match):
            ws.update(**kwargs)
    assert np.array_equal(ws.q, q) and np.array_equal(ws.l, l) and np.array_equal(ws.u, u)
    with pytest.raises(ValueError, match="unknown option"):
        admm_qp_setup(P, q, A, l, u, tolerance=1e-3)
    with pytest.raises(ValueError, match="not a batch"):
        admm_qp_setup(P, np.stack([q, q]), A, l, u)
    assert ws.same_options() and not ws.same_options(tol=1e-5)


def test_jax_resolves_do_not_recompile():
    pytest.importorskip("jax")
    P, q, A, l, u = qp_data(7, n=8, m=10)
    ws = admm_qp_setup(P, q, A, l, u, tol=TOL, backend="jax")
    ws.solve()
    q2 = q + 0.1
    res = ws.solve(q=q2)
    assert res.backend == "jax" and res.compile_time < 0.05
    close(res, admm_qp(P, q2, A, l, u, tol=TOL))


# --- the problem classes --------------------------------------------------------------------
def test_quadratic_program_update_reuses_the_workspace():
    P, q_of, A, l, u = sparse_qp(8)
    qp = QuadraticProgram(P, q_of(1.0), A, l, u)
    r1 = qp.solve(tol=TOL)
    assert np.array_equal(qp.solve(tol=TOL).x, r1.x)  # a plain solve is a cold one
    qp2 = qp.update(q=q_of(2.0))
    assert qp2.P is qp.P and qp2.A is qp.A and np.array_equal(qp.q, q_of(1.0))
    r2 = qp2.solve(tol=TOL)
    assert r2.info["workspace"]["setup"] == "kept"
    close(r2, admm_qp(P, q_of(2.0), A, l, u, tol=TOL))
    assert qp2.check(r2, rtol=1e-5, atol=1e-5).ok
    assert qp2.solve(tol=1e-5).info["workspace"]["setup"] == "new"  # other options
    close(qp.solve(tol=TOL), r1)  # the first QP's own data again
    with pytest.raises(ValueError, match="l > u"):
        qp.update(l=np.full(A.shape[0], 5.0), u=np.full(A.shape[0], 4.0))
    batch = QuadraticProgram(P.toarray(), np.stack([q_of(1.0), q_of(2.0)]), A.toarray(), l, u)
    with pytest.raises(ValueError, match="one QP"):
        batch.update(q=q_of(3.0))


def test_linear_program_update_warm_starts():
    rng = np.random.default_rng(9)
    A = rng.standard_normal((30, 40))
    c = A.T @ rng.random(30) + 0.1
    b = A @ rng.random(40) + rng.random(30)
    lp = LinearProgram(c, A, b, lb=-5, ub=5)
    lp.solve(tol=1e-7)
    lp2 = lp.update(b_ub=b + 1e-3)
    warm = lp2.solve(tol=1e-7)
    cold = LinearProgram(c, A, b + 1e-3, lb=-5, ub=5).solve(tol=1e-7)
    assert warm.status is Status.OPTIMAL and warm.iterations < cold.iterations
    assert abs(warm.objective - cold.objective) <= 1e-5 * abs(cold.objective)
    assert lp2.A_ub is lp.A_ub and np.array_equal(lp.b_ub, b)
    with pytest.raises(ValueError, match="lb > ub"):
        lp.update(lb=6.0)


# --- CVXPY --------------------------------------------------------------------------------
def _lasso_family():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(10)
    F, y = rng.standard_normal((60, 15)), rng.standard_normal(60)
    x, lam, cap = cp.Variable(15), cp.Parameter(nonneg=True), cp.Parameter(15)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(F @ x - y) + lam * cp.norm1(x)),
                      [x <= cap, x >= -1])
    return cp, prob, lam, cap


@pytest.mark.parametrize("warm_start", [False, True])
def test_cvxpy_parameter_loop_uses_the_workspace(warm_start):
    from cvxkit import CvxpySolver

    cp, prob, lam, cap = _lasso_family()
    solver = CvxpySolver(warm_start=warm_start, tol=TOL)
    setups = []
    for i, v in enumerate([0.5, 1.0, 2.0, 4.0]):
        lam.value, cap.value = v, np.full(15, 1.0 - 0.1 * i)  # q and b change
        value = prob.solve(solver=solver)
        setups.append(prob.solver_stats.extra_stats["workspace"]["setup"])
        assert prob.status == cp.OPTIMAL
        assert abs(value - prob.solve(solver="CLARABEL")) <= 1e-5 * abs(value)
    assert setups == ["new", "kept", "kept", "kept"]
    fresh = CvxpySolver(reuse_setup=False, tol=TOL)
    prob.solve(solver=fresh)
    assert prob.solver_stats.extra_stats["workspace"] is None


def test_cvxpy_new_matrix_values_get_a_new_setup():
    cp = pytest.importorskip("cvxpy")
    from cvxkit import CvxpySolver

    x, a = cp.Variable(3), cp.Parameter(3)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(x - 1)), [a @ x <= 1])
    solver = CvxpySolver()
    setups = []
    for v in ([1.0, 1.0, 1.0], [2.0, 1.0, 1.0]):  # a parameter inside A: A changes
        a.value = np.array(v)
        prob.solve(solver=solver)
        setups.append(prob.solver_stats.extra_stats["workspace"]["setup"])
        assert prob.status == cp.OPTIMAL
    assert setups == ["new", "new"]
