"""cvxkit.CvxpySolver, the CVXPY front end: CVXPY's own standard solver tests, our models
against Clarabel (objective, primal and dual values), statuses, options, warm starts.

CVXPY's helpers (``cvxpy.tests.solver_test_helpers``) take a solver instance as ``solver=``
and check objectives, primal and dual values to 4 places (|error| < 5e-5) at the front end's
default tolerances (admm: ``tol=1e-6`` with polishing; admm_conic: ``tol=1e-6``;
halpern_pdhg: ``tol=1e-7``). Our own models are solved at ``tol=1e-7`` and compared with
Clarabel at 1e-9: objectives and solutions agree to ~1e-8 there (second-order cone models:
~1e-6); the assertions allow 1e-5 relative to each quantity's scale.
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest

cp = pytest.importorskip("cvxpy")
from cvxpy.tests.solver_test_helpers import (StandardTestInfeasibleProblems,  # noqa: E402
                                             StandardTestLPs, StandardTestQPs,
                                             StandardTestSOCPs)

import cvxkit  # noqa: E402
from cvxkit import CvxpySolver  # noqa: E402
from cvxkit.problems import cvxpy_solver  # noqa: E402
from cvxkit.solvers.result import Result, Status  # noqa: E402

LP_METHODS = ["auto", "admm"]  # auto: an LP goes to halpern_pdhg
CLARABEL_TIGHT = dict(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)


# --- CVXPY's standard solver tests, at their default places (4) -----------------------------
@pytest.mark.parametrize("method", LP_METHODS)
@pytest.mark.parametrize("case", [f"test_lp_{i}" for i in range(7)])
def test_cvxpy_standard_lps(case, method):
    sth = getattr(StandardTestLPs, case)(solver=CvxpySolver(method=method))
    assert sth.prob.solver_stats.solver_name == "CVXKIT"
    expected = "admm" if method == "admm" else "halpern_pdhg"
    assert sth.prob.solver_stats.extra_stats["method"] == expected


@pytest.mark.parametrize("method", LP_METHODS)
def test_cvxpy_standard_lp_bound_attr(method):
    """Variable bounds reach the solver as bounds, not as rows."""
    StandardTestLPs.test_lp_bound_attr(solver=CvxpySolver(method=method))


def test_cvxpy_standard_qp_bound_attr():
    StandardTestQPs.test_qp_bound_attr(solver=CvxpySolver())


@pytest.mark.parametrize("warm_start", [False, True])
def test_cvxpy_standard_qp_0(warm_start):
    StandardTestQPs.test_qp_0(solver=CvxpySolver(warm_start=warm_start))


@pytest.mark.parametrize("warm_start", [False, True])
def test_cvxpy_standard_qp_parameter_update(warm_start):
    StandardTestQPs.test_qp_parameter_update(solver=CvxpySolver(warm_start=warm_start))


@pytest.mark.parametrize("method", LP_METHODS)
@pytest.mark.parametrize("case", ["test_lp_ineq_constraints", "test_lp_eq_constraints"])
def test_cvxpy_standard_infeasible_lps(case, method):
    """Status infeasible, value +inf, no primal values, and the duals a Farkas certificate."""
    getattr(StandardTestInfeasibleProblems, case)(solver=CvxpySolver(method=method))


SOCP_CASES = ["test_socp_0", "test_socp_1", "test_socp_2", "test_socp_3ax0", "test_socp_3ax1",
              "test_socp_4", "test_socp_bounds_attr"]


@pytest.mark.parametrize("case", SOCP_CASES)
def test_cvxpy_standard_socps(case):
    """Second-order cones go to admm_conic; objective, primal and dual values at the helpers'
    default places (4; 3 for socp_3), complementarity included."""
    sth = getattr(StandardTestSOCPs, case)(solver=CvxpySolver())
    assert sth.prob.solver_stats.extra_stats["method"] == "admm_conic"


@pytest.mark.parametrize("case", ["test_socp_1", "test_socp_4"])
def test_cvxpy_standard_socps_on_jax(case):
    pytest.importorskip("jax")
    sth = getattr(StandardTestSOCPs, case)(solver=CvxpySolver(backend="jax"))
    assert sth.prob.solver_stats.extra_stats["backend"] == "jax"


def test_cvxpy_standard_infeasible_soc():
    StandardTestInfeasibleProblems.test_soc(solver=CvxpySolver())


@pytest.mark.parametrize("case", [f"test_lp_{i}" for i in range(7)] + ["test_lp_bound_attr"])
def test_cvxpy_standard_lps_by_admm_conic(case):
    getattr(StandardTestLPs, case)(solver=CvxpySolver(method="admm_conic"))


@pytest.mark.parametrize("case, cls", [
    ("test_qp_0", StandardTestQPs), ("test_qp_parameter_update", StandardTestQPs),
    ("test_qp_bound_attr", StandardTestQPs),
    ("test_lp_ineq_constraints", StandardTestInfeasibleProblems),
    ("test_lp_eq_constraints", StandardTestInfeasibleProblems)])
def test_cvxpy_standard_qps_by_admm_conic(case, cls):
    getattr(cls, case)(solver=CvxpySolver(method="admm_conic"))


# --- our models against Clarabel ------------------------------------------------------------
def lasso(rng):
    A, b = rng.standard_normal((30, 10)), rng.standard_normal(30)
    x = cp.Variable(10)
    return cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ x - b) + 0.3 * cp.norm1(x)),
                      [cp.sum(x) <= 1, x[0] == 0.1])


def huber(rng):
    """Huber regression with outliers and a box (CVXPY's QP form of huber)."""
    A = rng.standard_normal((40, 5))
    b = A @ rng.standard_normal(5) + 0.1 * rng.standard_normal(40)
    b[:4] += 10
    x = cp.Variable(5)
    return cp.Problem(cp.Minimize(cp.sum(cp.huber(A @ x - b, 1.0))), [cp.abs(x) <= 2])


def portfolio(rng):
    """A long-only portfolio, maximized (CVXPY flips the objective), with a position cap."""
    n = 8
    F = rng.standard_normal((n, 3))
    Sigma = F @ F.T + 0.1 * np.eye(n)
    mu = 0.1 * rng.random(n)
    w = cp.Variable(n, nonneg=True)
    return cp.Problem(cp.Maximize(mu @ w - 2 * cp.quad_form(w, Sigma)), [cp.sum(w) == 1, w <= 0.4])


def bounded_lp(rng):
    """A maximized LP with variable bounds (kept as bounds) and both kinds of rows."""
    A, b = rng.random((6, 5)), rng.random(6) + 1
    x = cp.Variable(5, bounds=[0, 2])
    return cp.Problem(cp.Maximize(rng.random(5) @ x + 1.5),
                      [A @ x <= b, cp.sum(x) >= 0.5, x[1] == 0.25])


def risk_portfolio(rng):
    """A long-only portfolio with a risk cone ||L'w|| <= sigma and a position cap."""
    n = 8
    L = rng.standard_normal((n, 3)) / 4
    mu = 0.05 + 0.1 * rng.random(n)
    w = cp.Variable(n, nonneg=True)
    return cp.Problem(cp.Maximize(mu @ w), [cp.sum(w) == 1, cp.norm(L.T @ w) <= 0.12, w <= 0.4])


def robust_ls(rng):
    """min ||Fx - g|| + rho ||x|| (the worst case of least squares over ||Delta|| <= rho)."""
    F, g = rng.standard_normal((15, 5)), rng.standard_normal(15)
    x = cp.Variable(5)
    return cp.Problem(cp.Minimize(cp.norm(F @ x - g) + 0.5 * cp.norm(x)), [x >= -1])


def ball_ls(rng):
    """A quadratic objective with a second-order cone: least squares over a ball and a box."""
    F, g = rng.standard_normal((20, 6)), rng.standard_normal(20)
    x = cp.Variable(6, bounds=[-0.5, 0.5])
    return cp.Problem(cp.Minimize(cp.sum_squares(F @ x - g)), [cp.sum_squares(x) <= 0.8,
                                                               cp.sum(x) == 0.2])


def _solution(prob):
    return (prob.value, [np.array(v.value, dtype=float) for v in prob.variables()],
            [np.array(c.dual_value, dtype=float) for c in prob.constraints])


def _close(a, b, rel=1e-5):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert np.max(np.abs(a - b), initial=0.0) <= rel * max(1.0, np.max(np.abs(b), initial=0.0))


@pytest.mark.parametrize("method", ["auto", "admm"])
@pytest.mark.parametrize("model", [lasso, huber, portfolio, bounded_lp])
def test_models_match_clarabel(model, method):
    prob = model(np.random.default_rng(0))
    prob.solve(**CLARABEL_TIGHT)
    ref = _solution(prob)
    prob.solve(solver=CvxpySolver(method=method, tol=1e-7))
    assert prob.status == cp.OPTIMAL
    got = _solution(prob)
    _close(got[0], ref[0])
    for g, r in zip(got[1], ref[1]):
        _close(g, r)
    for g, r in zip(got[2], ref[2]):  # duals: same values, same signs as Clarabel's
        _close(g, r)


@pytest.mark.parametrize("model, method", [
    (risk_portfolio, "auto"), (robust_ls, "auto"), (ball_ls, "auto"), (ball_ls, "admm_conic"),
    (portfolio, "admm_conic"), (bounded_lp, "admm_conic")])
def test_conic_models_match_clarabel(model, method):
    """SOCPs (auto picks admm_conic), and a QP and an LP with method='admm_conic': values and
    duals as Clarabel's."""
    prob = model(np.random.default_rng(0))
    prob.solve(**CLARABEL_TIGHT)
    ref = _solution(prob)
    prob.solve(solver=CvxpySolver(method=method, tol=1e-7))
    assert prob.status == cp.OPTIMAL
    assert prob.solver_stats.extra_stats["method"] == "admm_conic"
    got = _solution(prob)
    for g, r in zip([got[0]] + got[1] + got[2], [ref[0]] + ref[1] + ref[2]):
        _close(g, r)


def test_socp_methods_and_certificates():
    """auto sends SOCs to admm_conic; admm and halpern_pdhg refuse them; infeasible and
    unbounded SOCPs give certificates (a Farkas y in K* as the duals)."""
    x = cp.Variable(3)
    prob = cp.Problem(cp.Minimize(cp.sum(x)), [cp.norm(x) <= 1])
    for method in ("admm", "halpern_pdhg"):
        with pytest.raises(cp.error.SolverError, match="admm_conic"):
            prob.solve(solver=CvxpySolver(method=method))
    prob.solve(solver=CvxpySolver())
    assert prob.value == pytest.approx(-np.sqrt(3), rel=1e-5)
    con = cp.norm(x[:2]) <= x[2]
    infeasible = cp.Problem(cp.Minimize(0), [con, x[2] <= -1])
    infeasible.solve(solver=CvxpySolver())
    assert infeasible.status == cp.INFEASIBLE and x.value is None
    assert infeasible.constraints[1].dual_value >= 0
    unbounded = cp.Problem(cp.Minimize(-x[2]), [cp.SOC(x[2], x[:2]), x[0] == 1])
    unbounded.solve(solver=CvxpySolver())
    assert unbounded.status == cp.UNBOUNDED and unbounded.value == -np.inf


def test_warm_start_socp_family():
    """A parametrized SOCP: warm starts from the last solution save iterations."""
    rng = np.random.default_rng(8)
    F, g = rng.standard_normal((15, 6)), cp.Parameter(15)
    x = cp.Variable(6)
    prob = cp.Problem(cp.Minimize(cp.norm(F @ x - g) + cp.sum(x)), [cp.norm(x) <= 2])
    g0 = rng.standard_normal(15)
    warm = CvxpySolver(warm_start=True)
    g.value = g0
    prob.solve(solver=warm)
    g.value = g0 + 1e-3
    iters = {}
    for name, solver in (("cold", CvxpySolver()), ("warm", warm)):
        prob.solve(solver=solver)
        assert prob.status == cp.OPTIMAL
        iters[name] = prob.solver_stats.num_iters
    assert iters["warm"] < iters["cold"], iters


@pytest.mark.parametrize("model", [lasso, bounded_lp])  # admm, halpern_pdhg
def test_jax_backend_matches_clarabel(model):
    pytest.importorskip("jax")
    prob = model(np.random.default_rng(0))
    prob.solve(**CLARABEL_TIGHT)
    ref = _solution(prob)
    prob.solve(solver=CvxpySolver(backend="jax", tol=1e-7))
    assert prob.status == cp.OPTIMAL and prob.solver_stats.extra_stats["backend"] == "jax"
    got = _solution(prob)
    _close(got[0], ref[0])
    for g, r in zip(got[1] + got[2], ref[1] + ref[2]):
        _close(g, r)


def test_solve_shortcut_and_stats():
    prob = portfolio(np.random.default_rng(1))
    value = cvxkit.solve(prob, tol=1e-7)
    assert value == prob.value and prob.status == cp.OPTIMAL
    stats = prob.solver_stats
    assert stats.solver_name == "CVXKIT"
    assert stats.solve_time > 0 and stats.setup_time > 0 and stats.num_iters > 0
    res = stats.extra_stats["result"]
    assert isinstance(res, Result) and res.status is Status.OPTIMAL
    assert stats.num_iters == res.iterations and stats.extra_stats["backend"] == "numpy"


# --- statuses -------------------------------------------------------------------------------
def test_infeasible_qp_gives_a_certificate():
    x = cp.Variable(3)
    A = np.array([[1.0, 1, 0], [-1, -1, 0]])
    prob = cp.Problem(cp.Minimize(cp.sum_squares(x)), [A @ x <= np.array([-1.0, -1.0])])
    prob.solve(solver=CvxpySolver())
    assert prob.status == cp.INFEASIBLE and prob.value == np.inf and x.value is None
    y = prob.constraints[0].dual_value
    assert np.all(y >= 0) and np.allclose(A.T @ y, 0, atol=1e-6) and y @ [-1.0, -1.0] < 0


@pytest.mark.parametrize("quadratic", [False, True])
def test_unbounded(quadratic):
    x = cp.Variable(2)
    obj = cp.sum(x) + (cp.square(x[0]) if quadratic else 0)
    prob = cp.Problem(cp.Minimize(obj), [x[0] >= 0])
    prob.solve(solver=CvxpySolver())
    assert prob.status == cp.UNBOUNDED and prob.value == -np.inf


@pytest.mark.parametrize("limit", [{"max_iter": 5}, {"time_limit": 1e-9}])
@pytest.mark.parametrize("model", [lasso, bounded_lp])
def test_limits_give_user_limit_with_the_iterate(model, limit):
    prob = model(np.random.default_rng(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prob.solve(solver=CvxpySolver(**limit))
    assert prob.status == cp.USER_LIMIT
    assert prob.value is not None and np.isfinite(prob.value)
    assert all(v.value is not None for v in prob.variables())
    assert any("inaccurate" in str(w.message) for w in caught)
    res = prob.solver_stats.extra_stats["result"]
    assert res.status in (Status.MAX_ITER, Status.TIME_LIMIT)


def test_numerical_error_is_a_solver_error(monkeypatch):
    def broken(c, *args, **kwargs):
        return Result(x=np.full(c.shape[0], np.nan), status=Status.NUMERICAL_ERROR,
                      objective=float("nan"), method="halpern_pdhg",
                      info={"y": np.full(args[0].shape[0], np.nan)})

    monkeypatch.setattr(cvxpy_solver, "_solver", lambda method: broken)
    prob = bounded_lp(np.random.default_rng(3))
    with pytest.raises(cp.error.SolverError, match="CVXKIT"):
        prob.solve(solver=CvxpySolver())


def test_status_map_covers_every_status():
    assert set(cvxpy_solver.STATUS_MAP) == set(Status)
    assert cvxpy_solver.STATUS_MAP[Status.NUMERICAL_ERROR] == cp.SOLVER_ERROR


# --- what is not supported ------------------------------------------------------------------
@pytest.mark.parametrize("make, cone", [
    (lambda x: cp.Problem(cp.Minimize(-cp.sum(cp.log(x))), [x <= 1]), "exponential cone"),
    (lambda x: cp.Problem(cp.Minimize(-cp.sum(cp.log(x))), [cp.norm(x) <= 1]),
     "exponential cone"),
    (lambda x: cp.Problem(cp.Minimize(cp.sum(x)), [cp.reshape(x[:1], (1, 1), order="F") >> 0]),
     "semidefinite"),
])
def test_unsupported_cones_name_what_is_missing(make, cone):
    with pytest.raises(cp.error.SolverError, match=cone):
        make(cp.Variable(3)).solve(solver=CvxpySolver())


def test_mixed_integer_is_refused():
    z = cp.Variable(integer=True)
    with pytest.raises(cp.error.SolverError, match="MIP"):
        cp.Problem(cp.Minimize(z), [z >= 0.5]).solve(solver=CvxpySolver())


# --- options --------------------------------------------------------------------------------
def test_unknown_or_bad_options_raise():
    with pytest.raises(ValueError, match="tolerance.*valid options"):
        CvxpySolver(tolerance=1e-6)
    with pytest.raises(ValueError, match="rho"):
        CvxpySolver(method="halpern_pdhg", rho=1.0)
    with pytest.raises(ValueError, match="method"):
        CvxpySolver(method="simplex")
    with pytest.raises(ValueError, match="backend"):
        CvxpySolver(backend="torch")
    prob = lasso(np.random.default_rng(4))
    with pytest.raises(ValueError, match="maxiter"):
        prob.solve(solver=CvxpySolver(), maxiter=10)


def test_options_passed_to_solve_override_the_instance():
    prob = lasso(np.random.default_rng(5))
    solver = CvxpySolver(max_iter=5)
    prob.solve(solver=solver, max_iter=20_000)
    assert prob.status == cp.OPTIMAL
    prob.solve(solver=solver)
    assert prob.status == cp.USER_LIMIT  # the instance's max_iter again


def test_pdhg_refuses_a_qp():
    with pytest.raises(cp.error.SolverError, match="LPs only"):
        lasso(np.random.default_rng(6)).solve(solver=CvxpySolver(method="halpern_pdhg"))


def _family(rng, quadratic):
    """An LP (or, with a ridge term, a QP) whose right-hand side is a parameter."""
    A = rng.standard_normal((30, 12))
    c = A.T @ rng.random(30) + 0.1
    b = cp.Parameter(30)
    b0 = A @ rng.random(12) + rng.random(30)
    x = cp.Variable(12)
    obj = c @ x + (0.1 * cp.sum_squares(x) if quadratic else 0)
    return cp.Problem(cp.Minimize(obj), [A @ x <= b, x >= -5]), b, b0


@pytest.mark.parametrize("quadratic", [False, True])  # halpern_pdhg, admm
def test_warm_start_reuses_the_last_solution(quadratic):
    prob, b, b0 = _family(np.random.default_rng(7), quadratic)
    # (no reuse of the set-up: "off" then repeats the cold solve exactly; a reused set-up
    # keeps the first data's scaling, tests/solvers/test_qp_resolve.py)
    cold, warm = CvxpySolver(), CvxpySolver(warm_start=True, reuse_setup=False)
    b.value = b0
    prob.solve(solver=warm)
    b.value = b0 + 1e-3
    iters = {}
    for name, solver, flag in (("cold", cold, True), ("warm", warm, True), ("off", warm, False)):
        prob.solve(solver=solver, warm_start=flag)
        assert prob.status == cp.OPTIMAL
        assert prob.solver_stats.extra_stats["method"] == ("admm" if quadratic else "halpern_pdhg")
        iters[name] = prob.solver_stats.num_iters
    assert iters["warm"] < iters["cold"]
    assert iters["off"] == iters["cold"]  # problem.solve(warm_start=False) switches it off


def test_import_cvxkit_does_not_import_cvxpy():
    code = ("import sys, cvxkit; assert 'cvxpy' not in sys.modules; "
            "assert 'CvxpySolver' in dir(cvxkit); cvxkit.CvxpySolver; "
            "assert 'cvxpy' in sys.modules; print('OK')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]
