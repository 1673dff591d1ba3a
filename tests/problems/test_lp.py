"""LinearProgram and the restarted Halpern PDHG (r2HPDHG) against HiGHS and Netlib's optimal values."""
import importlib
import pathlib

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import run_on_host_devices

from cvxkit.problems import LinearProgram
from cvxkit.solvers.halpern_pdhg import halpern_pdhg
from cvxkit.solvers.result import Status

DATA = pathlib.Path(__file__).parents[1] / "data" / "netlib"
SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data" / "netlib"


def random_lp(seed=0, n=40, m_ub=25, m_eq=6, density=0.3):
    """A feasible, bounded LP: rows through a known feasible point, a cost that is a positive
    combination of the rows' and bounds' normals (so the dual is feasible too)."""
    rng = np.random.default_rng(seed)
    A_ub = sp.random(m_ub, n, density=density, random_state=rng, format="csr")
    A_eq = sp.random(m_eq, n, density=density, random_state=rng, format="csr")
    x0 = rng.uniform(0.0, 1.0, n)
    b_ub = A_ub @ x0 + rng.uniform(0.1, 1.0, m_ub)
    b_eq = A_eq @ x0
    lb = np.where(rng.random(n) < 0.8, 0.0, -np.inf)
    ub = np.where(rng.random(n) < 0.3, 2.0, np.inf)
    # dual feasible: c = -A_ub^T w + A_eq^T v + s with w >= 0, s >= 0 on variables with lb
    w, v = rng.uniform(0, 1, m_ub), rng.normal(size=m_eq)
    s = np.where(np.isfinite(lb), rng.uniform(0, 1, n), 0.0)
    c = -A_ub.T @ w + A_eq.T @ v + s
    return LinearProgram(c, A_ub, b_ub, A_eq, b_eq, lb, ub)


def tol_ok(lp, res, tol):
    """The answer matches HiGHS to a relative objective gap of ~tol and violates no row by more
    than ~tol relative to the data."""
    ref = lp.reference()
    assert ref.status is Status.OPTIMAL
    report = lp.check(res, rtol=50 * tol, atol=50 * tol * (1 + np.abs(lp.b_ub[np.isfinite(lp.b_ub)]).max(initial=0)))
    assert report.ok, str(report)


# --- front end ---------------------------------------------------------------------------------
def test_bad_input_errors():
    A = np.ones((2, 3))
    with pytest.raises(ValueError, match="A_ub must have shape"):
        LinearProgram(np.ones(4), A, np.ones(2))
    with pytest.raises(ValueError, match="b_ub must have shape"):
        LinearProgram(np.ones(3), A, np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        LinearProgram(np.array([1.0, np.nan, 0.0]), A, np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        LinearProgram(np.ones(3), np.array([[1.0, np.nan, 0.0]] * 2), np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        LinearProgram(np.ones(3), A, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="lb > ub at index 1"):
        LinearProgram(np.ones(3), lb=[0, 2, 0], ub=[1, 1, 1])
    with pytest.raises(ValueError, match="b_eq"):
        LinearProgram(np.ones(3), A_eq=A)
    with pytest.raises(ValueError, match="b_eq must be finite"):
        LinearProgram(np.ones(3), A_eq=A, b_eq=[1.0, np.inf])
    with pytest.raises(ValueError, match="lb must be"):
        LinearProgram(np.ones(3), lb=np.inf)
    lp = LinearProgram(np.ones(3), A, np.ones(2))
    with pytest.raises(ValueError, match="x must have shape"):
        lp.objective(np.ones(2))
    with pytest.raises(ValueError, match="unknown option"):
        lp.solve(rho=1.0)
    with pytest.raises(ValueError, match="tol"):
        lp.solve(tol=-1.0)
    with pytest.raises(ValueError, match="mesh needs backend"):
        lp.solve(mesh=object())


def test_objective_residuals_and_cvxpy_model():
    lp = random_lp(1, n=8, m_ub=5, m_eq=2)
    x = np.linspace(-1, 1, 8)
    assert lp.objective(x) == pytest.approx(lp.c @ x)
    r = lp.residuals(x)
    assert r["inequality"] == pytest.approx(max(0.0, (lp.A_ub @ x - lp.b_ub).max()))
    assert r["equality"] == pytest.approx(np.abs(lp.A_eq @ x - lp.b_eq).max())
    assert r["bounds"] == pytest.approx(max(0.0, (lp.lb - x).max(), (x - lp.ub).max()))
    prob, var = lp.to_cvxpy()
    prob.solve(solver="CLARABEL")
    assert prob.value == pytest.approx(lp.reference().objective, rel=1e-6, abs=1e-6)
    clar = lp.reference(solver="CLARABEL")
    assert clar.objective == pytest.approx(lp.reference().objective, rel=1e-6, abs=1e-6)


# --- the solver vs HiGHS ---------------------------------------------------------------------
@pytest.mark.parametrize("tol", [1e-4, 1e-7])
def test_random_lp_numpy(tol):
    lp = random_lp(0)
    res = lp.solve(tol=tol)
    assert res.status is Status.OPTIMAL, res
    assert max(res.info["rel_primal"], res.info["rel_dual"], res.info["rel_gap"]) <= tol
    tol_ok(lp, res, tol)
    # duals: y = [y_eq, y_ub], y_ub <= 0, complementary slackness at the tolerance
    y = res.info["y"]
    assert y.shape == (lp.m_eq + lp.m_ub,)
    assert (y[lp.m_eq:] <= 0).all()


def test_dual_is_y_and_satisfies_kkt(backend):
    """``Result.dual`` is ``info['y']``; the reduced costs ``c - K^T y`` vanish on the variables
    strictly inside their bounds, and ``y`` vanishes on the rows strictly inside theirs."""
    lp = random_lp(0)
    res = lp.solve(backend=backend, tol=1e-8)
    assert res.status is Status.OPTIMAL
    y = res.dual
    assert y is res.info["y"] and y.shape == (lp.m_eq + lp.m_ub,)
    c, K, lc, uc, lv, uv = lp.bound_form()
    x, scale = res.x, np.abs(c).max()
    r = c - K.T @ y
    inside = (x > lv + 1e-3) & (x < uv - 1e-3)
    assert inside.sum() >= 5 and np.abs(r[inside]).max() <= 1e-5 * scale
    Kx = K @ x
    slack = (Kx > lc + 1e-3) & (Kx < uc - 1e-3)
    assert slack.any() and np.abs(y[slack]).max() <= 1e-5 * scale


def test_random_lp_jax_matches_numpy():
    lp = random_lp(2)
    rn = lp.solve(tol=1e-6)
    rj = lp.solve(backend="jax", tol=1e-6)
    assert rj.status is Status.OPTIMAL and rj.backend == "jax"
    tol_ok(lp, rj, 1e-6)
    # the same algorithm: same iterations, same iterate up to rounding
    assert rj.iterations == rn.iterations
    np.testing.assert_allclose(rj.x, rn.x, rtol=1e-6, atol=1e-8)


def test_small_degenerate_lp():
    # min x1 + 2 x2 + 3 x3, x1 + x2 + x3 = 1, x1 - x2 >= -0.5, 0 <= x <= 1: x* = (1, 0, 0)
    lp = LinearProgram([1.0, 2.0, 3.0], A_ub=[[-1.0, 1.0, 0.0]], b_ub=[0.5], A_eq=[[1.0, 1.0, 1.0]],
                       b_eq=[1.0], lb=0, ub=1)
    res = lp.solve(tol=1e-8)
    assert res.status is Status.OPTIMAL
    np.testing.assert_allclose(res.x, [1.0, 0.0, 0.0], atol=1e-6)
    assert res.objective == pytest.approx(1.0, abs=1e-6)


def test_dense_float32_and_warm_start():
    lp = random_lp(3, n=20, m_ub=12, m_eq=3, density=0.6)
    A_dense = LinearProgram(lp.c, lp.A_ub.toarray(), lp.b_ub, lp.A_eq.toarray(), lp.b_eq, lp.lb, lp.ub)
    res = A_dense.solve(tol=1e-6)
    assert res.status is Status.OPTIMAL
    tol_ok(A_dense, res, 1e-6)
    r32 = lp.solve(tol=1e-4, dtype="float32")
    assert r32.status is Status.OPTIMAL
    tol_ok(lp, r32, 1e-4)
    warm = lp.solve(tol=1e-6, warm_start=res)
    assert warm.status is Status.OPTIMAL and warm.iterations < res.iterations


def test_unbounded_lp_is_dual_infeasible():
    # min -x1 - x2 s.t. x1 - x2 <= 1, x >= 0: unbounded along (1, 1)
    lp = LinearProgram([-1.0, -1.0], A_ub=[[1.0, -1.0]], b_ub=[1.0])
    assert lp.reference().status is Status.DUAL_INFEASIBLE
    res = lp.solve(tol=1e-6)
    assert res.status is Status.DUAL_INFEASIBLE
    ray = res.info["certificate"]
    assert lp.c @ ray < 0 and (ray >= -1e-9).all() and ray @ [1.0, -1.0] <= 1e-6


def test_infeasible_lp_is_primal_infeasible(backend):
    # x1 + x2 <= 1 and x1 + x2 >= 3 (as -x1 - x2 <= -3), x >= 0
    lp = LinearProgram([1.0, 1.0], A_ub=[[1.0, 1.0], [-1.0, -1.0]], b_ub=[1.0, -3.0])
    assert lp.reference().status is Status.PRIMAL_INFEASIBLE
    res = lp.solve(backend=backend, tol=1e-6)
    assert res.status is Status.PRIMAL_INFEASIBLE
    y = res.info["certificate"]  # Farkas: y <= 0 on <= rows, A^T y <= 0 (x >= 0), b^T y > 0
    assert (y <= 0).all() and lp.b_ub @ y > 0
    assert (lp.A_ub.T @ y <= 1e-6).all()
    assert np.isnan(res.x).all() and res.objective == np.inf


def test_history_and_restarts():
    lp = LinearProgram.from_npz(DATA / "SC50A.npz")
    res = lp.solve(tol=1e-6, check_every=32)
    assert res.status is Status.OPTIMAL
    h = res.history
    for key in ("iteration", "rel_primal", "rel_dual", "rel_gap", "fixed_point", "restarts", "omega"):
        assert len(h[key]) == len(h["iteration"])
    assert np.all(np.diff(h["iteration"]) > 0) and h["iteration"][-1] == res.iterations
    assert res.info["restarts"] >= 1
    assert res.info["restart_iterations"] and set(res.info["restart_iterations"]) <= set(h["iteration"])


# --- Netlib (copies in tests/data) -------------------------------------------------------------
@pytest.mark.parametrize("name", ["AFIRO", "SC50A", "BLEND", "KB2"])
def test_netlib_small_known_optimum(name):
    lp = LinearProgram.from_npz(DATA / f"{name}.npz")
    res = lp.solve(tol=1e-6, max_iter=100_000)
    assert res.status is Status.OPTIMAL
    assert max(res.info["rel_primal"], res.info["rel_dual"], res.info["rel_gap"]) <= 1e-6
    assert abs(res.objective - lp.known_objective) <= 1e-4 * (1 + abs(lp.known_objective))


def test_netlib_afiro_jax():
    lp = LinearProgram.from_npz(DATA / "AFIRO.npz")
    res = lp.solve(backend="jax", tol=1e-6)
    assert res.status is Status.OPTIMAL
    assert abs(res.objective - lp.known_objective) <= 1e-4 * (1 + abs(lp.known_objective))


@pytest.mark.parametrize("name", ["bgdbg1", "bgetam", "bgindy"])
def test_netlib_infeasible(name):
    lp = LinearProgram.from_npz(DATA / "infeasible" / f"{name}.npz")
    res = lp.solve(tol=1e-4, max_iter=50_000)
    assert res.status is Status.PRIMAL_INFEASIBLE, res


# --- other front ends ------------------------------------------------------------------------
def test_from_cvxpy_and_unpack():
    import cvxpy as cp

    x = cp.Variable(3)
    y = cp.Variable(2, nonneg=True)
    prob = cp.Problem(cp.Maximize(-cp.sum(x) - 2 * y[0] + 5),
                      [x >= -1, x[0] + y[1] <= 3, x[1] == y[0], cp.sum(x) <= 10, cp.abs(x[2]) <= 4])
    lp = LinearProgram.from_cvxpy(prob)
    res = lp.solve(tol=1e-8)
    assert res.status is Status.OPTIMAL
    values = lp.unpack(res)
    ref = prob.solve(solver="CLARABEL")
    assert -(res.objective + lp.offset) == pytest.approx(ref, abs=1e-5)
    assert values[x] is not None and prob.value == pytest.approx(ref, abs=1e-5)


def test_from_cvxpy_rejects_non_lp():
    import cvxpy as cp

    x = cp.Variable(3)
    with pytest.raises(ValueError, match="not a linear program"):
        LinearProgram.from_cvxpy(cp.Problem(cp.Minimize(cp.norm(x, 2)), [x >= 1]))
    with pytest.raises(ValueError, match="not a linear program|canonicalized"):
        LinearProgram.from_cvxpy(cp.Problem(cp.Minimize(cp.sum_squares(x)), [x >= 1]))
    with pytest.raises(ValueError, match="cannot be canonicalized"):
        LinearProgram.from_cvxpy(cp.Problem(cp.Maximize(cp.norm(x, 2)), [x <= 1]))
    with pytest.raises(ValueError, match="cvxpy.Problem"):
        LinearProgram.from_cvxpy("not a problem")


def test_from_mps_roundtrip(tmp_path):
    highspy = pytest.importorskip("highspy")
    lp = LinearProgram.from_npz(DATA / "AFIRO.npz")
    c, K, lc, uc, lb, ub = lp.bound_form()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    model = highspy.HighsLp()
    model.num_col_, model.num_row_ = lp.n, K.shape[0]
    model.col_cost_, model.col_lower_, model.col_upper_ = c, lb, ub
    model.row_lower_, model.row_upper_ = lc, uc
    Kc = K.tocsc()
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_, model.a_matrix_.index_, model.a_matrix_.value_ = Kc.indptr, Kc.indices, Kc.data
    h.passModel(model)
    path = tmp_path / "afiro.mps"
    h.writeModel(str(path))
    back = LinearProgram.from_mps(str(path))
    assert back.n == lp.n
    assert back.reference().objective == pytest.approx(lp.known_objective, rel=1e-8)
    with pytest.raises(ValueError, match="no such MPS file"):
        LinearProgram.from_mps(str(tmp_path / "missing.mps"))


# --- several devices ---------------------------------------------------------------------------
SHARDED = r"""
import os, sys, numpy as np, jax
sys.path.insert(0, {tests!r})
from jax.sharding import Mesh
from test_lp import random_lp
assert len(jax.devices()) == 4
mesh = Mesh(np.array(jax.devices()), ("rows",))
# sparse (row-sorted segment sums, then BCOO; m not a multiple of 4), dense
for density, m_ub, fmt in ((0.05, 41, "segment"), (0.05, 41, "bcoo"), (0.4, 40, "auto")):
    lp = random_lp(4, n=64, m_ub=m_ub, m_eq=8, density=density)
    one = lp.solve(backend="jax", tol=1e-6, sparse_format=fmt)
    four = lp.solve(backend="jax", tol=1e-6, mesh=mesh, sparse_format=fmt)
    assert one.status.value == four.status.value == "optimal", (one.status, four.status)
    assert abs(one.iterations - four.iterations) <= 64, (one.iterations, four.iterations)
    np.testing.assert_allclose(four.x, one.x, rtol=1e-5, atol=1e-7)
    assert abs(four.objective - lp.reference().objective) <= 1e-4 * (1 + abs(four.objective))
print("OK")
"""


@pytest.mark.slow
def test_sharded_mesh_same_answer():
    run_on_host_devices(SHARDED, 4)


# --- all shared Netlib problems (slow; needs ../shared/data/netlib) -----------------------------
def _shared(sub=""):
    d = SHARED / sub
    return sorted(p.stem for p in d.glob("*.npz")) if d.is_dir() else []


#: not solved within 60 s on the 2-core machine (docs/lp.md): these only need an honest status.
#: PILOT-WE was "optimal" within 60 s 1.8e-2 off the optimum before the gap test counted what the
#: residuals hide (issue 17); it now ends time_limit (6.6e-5 off at that point)
NETLIB_SLOW = {"BNL1", "BNL2", "GREENBEB", "PEROLD", "PILOT", "PILOT-WE"}


@pytest.mark.slow
@pytest.mark.parametrize("name", _shared())
def test_netlib_sweep(name):
    lp = LinearProgram.from_npz(SHARED / f"{name}.npz")
    res = lp.solve(tol=1e-4, max_iter=10_000_000, time_limit=60.0)
    if name in NETLIB_SLOW and res.status is Status.TIME_LIMIT:
        pytest.xfail(f"{name}: not solved in 60 s (docs/lp.md)")
    assert res.status is Status.OPTIMAL, res
    assert max(res.info["rel_primal"], res.info["rel_dual"], res.info["rel_gap"]) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", _shared("infeasible"))
def test_netlib_sweep_infeasible(name):
    lp = LinearProgram.from_npz(SHARED / "infeasible" / f"{name}.npz")
    assert lp.solve(tol=1e-4, time_limit=60.0).status is Status.PRIMAL_INFEASIBLE


def test_solver_bound_form_ranged_rows():
    """The solver's own form: two-sided rows l_c <= K x <= u_c and free/boxed variables."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(5)
    m, n = 15, 20
    K = rng.standard_normal((m, n))
    x0 = rng.uniform(-1, 1, n)
    lc, uc = K @ x0 - rng.uniform(0.1, 1, m), K @ x0 + rng.uniform(0.1, 1, m)
    lc[:3] = -np.inf
    lv, uv = np.full(n, -2.0), np.full(n, 2.0)
    lv[:5] = -np.inf
    c = rng.standard_normal(n)
    res = halpern_pdhg(c, K, lc, uc, lv, uv, tol=1e-8)
    assert res.status is Status.OPTIMAL
    fin = np.isfinite(lc)
    ref = linprog(c, A_ub=np.vstack([K, -K[fin]]), b_ub=np.concatenate([uc, -lc[fin]]),
                  bounds=np.column_stack([lv, np.where(np.isfinite(uv), uv, None)]), method="highs")
    assert res.objective == pytest.approx(ref.fun, rel=1e-6, abs=1e-6)
    with pytest.raises(ValueError, match="row bounds cross at index 2"):
        halpern_pdhg(c, K, np.where(np.arange(m) == 2, 5.0, lc), np.where(np.arange(m) == 2, 4.0, uc))
    with pytest.raises(ValueError, match="reflection"):
        halpern_pdhg(c, K, lc, uc, reflection=1.5)
    with pytest.raises(ValueError, match="sparse_format"):
        halpern_pdhg(c, K, lc, uc, sparse_format="csr")
    with pytest.raises(ValueError, match="K must have shape"):
        halpern_pdhg(c, K[:, :-1], lc, uc)


# --- issue 17: no silent wrong answers -----------------------------------------------------------
#: min -x1 - 2 x2 + x3 s.t. x1 + x2 <= 4, x2 + x3 <= 3, x1 - x3 <= 2, x >= 0: optimum -7 at (1, 3, 0)
SMALL = dict(c=np.array([-1.0, -2.0, 1.0]), A_ub=np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, -1.0]]),
             b_ub=np.array([4.0, 3.0, 2.0]))


def test_small_lp_reference():
    ref = LinearProgram(**SMALL).reference()
    assert ref.status is Status.OPTIMAL and ref.objective == pytest.approx(-7.0, rel=1e-12)


@pytest.mark.parametrize("what,k,tol", [("cost", 12, 1e-6), ("cost", 9, 1e-6), ("rhs", 12, 1e-7),
                                        ("rows", -12, 1e-7), ("cost", -9, 1e-6), ("rhs", -9, 1e-6)])
def test_scaled_small_lp_same_answer(what, k, tol):
    """The cost scaled by 1e12 ended dual_infeasible with a "ray" that was no ray (the test
    compared cost units with row units), the rhs by 1e12 at tol 1e-7 primal_infeasible, and the
    rows by 1e-12 dual_infeasible (HiGHS drops such tiny entries: the reference is the unscaled LP)."""
    s = 10.0 ** k
    c, A, b = SMALL["c"], SMALL["A_ub"], SMALL["b_ub"]
    data = {"cost": (c * s, A, b), "rhs": (c, A, b * s), "rows": (c, A * s, b * s)}[what]
    res = LinearProgram(*data).solve(tol=tol)
    assert res.status is Status.OPTIMAL, (res.status, res.info.get("certificate"))
    want = -7.0 * (s if what in ("cost", "rhs") else 1.0)
    assert abs(res.objective - want) <= 10 * tol * abs(want)
    x_want = np.array([1.0, 3.0, 0.0]) * (s if what == "rhs" else 1.0)
    np.testing.assert_allclose(res.x, x_want, rtol=0, atol=100 * tol * np.abs(x_want).max())


def test_scaled_lp_through_cvxpy():
    import cvxpy as cp

    x = cp.Variable(3, nonneg=True)
    A, b = SMALL["A_ub"], SMALL["b_ub"]
    prob = cp.Problem(cp.Minimize(1e12 * (SMALL["c"] @ x)), [A @ x <= b])
    lp = LinearProgram.from_cvxpy(prob)
    res = lp.solve(tol=1e-7)
    assert res.status is Status.OPTIMAL
    assert res.objective + lp.offset == pytest.approx(-7e12, rel=1e-6)
    lp.unpack(res)
    np.testing.assert_allclose(x.value, [1.0, 3.0, 0.0], atol=1e-5)


def _small_random(seed, n=5, m_ub=4, m_eq=1):
    rng = np.random.default_rng(seed)
    A_ub, A_eq = rng.standard_normal((m_ub, n)), rng.standard_normal((m_eq, n))
    x0 = rng.uniform(0, 1, n)
    w, v = rng.uniform(0, 1, m_ub), rng.standard_normal(m_eq)
    return dict(c=-A_ub.T @ w + A_eq.T @ v + rng.uniform(0, 1, n), A_ub=A_ub,
                b_ub=A_ub @ x0 + rng.uniform(0.1, 1, m_ub), A_eq=A_eq, b_eq=A_eq @ x0)


@pytest.mark.parametrize("k", [8, 10])
def test_random_lps_scaled_keep_status_and_value(k):
    """A sweep over random feasible bounded LPs gave wrong statuses in 2/8 at scale 1e8 and 7/8
    at 1e10; HiGHS on the unscaled LP is the reference (it fails itself on some scaled ones)."""
    s, tol = 10.0 ** k, 1e-6
    for seed in range(8):
        d = _small_random(seed)
        ref = LinearProgram(**d).reference()
        assert ref.status is Status.OPTIMAL
        for scaled, want in ((dict(d, c=d["c"] * s), ref.objective * s),
                             (dict(d, b_ub=d["b_ub"] * s, b_eq=d["b_eq"] * s), ref.objective * s)):
            res = LinearProgram(**scaled).solve(tol=tol)
            assert res.status is Status.OPTIMAL, (seed, res.status)
            assert abs(res.objective - want) <= 10 * tol * abs(want), (seed, res.objective, want)


def _farkas_ok(lp, y, radius):
    """No x in the bounds with ||x||_inf <= radius satisfies the rows, by the multipliers y
    (rows [A_eq; A_ub]): max over that box of y^T K x is below the row bounds' lower estimate."""
    c, K, lc, uc, lb, ub = lp.bound_form()
    ok_sign = np.all(np.where(np.isfinite(lc), True, y <= 0)) and np.all(np.where(np.isfinite(uc), True, y >= 0))
    low = np.sum(np.where(y > 0, np.where(np.isfinite(lc), lc, 0) * y, np.where(np.isfinite(uc), uc, 0) * y))
    g = K.T @ y
    lo, hi = np.maximum(lb, -radius), np.minimum(ub, radius)
    top = np.sum(np.where(g > 0, g * hi, g * lo))  # max of y^T K x over the box
    return ok_sign and top < low - 1e-9 * abs(low)


@pytest.mark.parametrize("k", [-9, 0, 9])
@pytest.mark.parametrize("what", ["cost", "rhs", "rows"])
def test_scaled_certificates(what, k):
    """Infeasible and unbounded LPs keep their status under scaling, with certificates that
    hold on the user's (scaled) data."""
    s = 10.0 ** k
    A_inf, b_inf = np.array([[1.0, 1.0], [-1.0, -1.0]]), np.array([1.0, -3.0])
    A_unb, b_unb, c_unb = np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]), np.array([1.0, 2.0]), np.array([-1.0, -1.0, 0.5])
    scale = {"cost": (s, 1.0, 1.0), "rhs": (1.0, s, 1.0), "rows": (1.0, s, s)}[what]
    cs, bs, As = scale
    infeasible = LinearProgram(cs * np.array([1.0, 1.0]), As * A_inf, bs * b_inf)
    res = infeasible.solve(tol=1e-6)
    assert res.status is Status.PRIMAL_INFEASIBLE
    assert _farkas_ok(infeasible, res.info["certificate"], radius=1e6 * 3 * bs)
    unbounded = LinearProgram(cs * c_unb, As * A_unb, bs * b_unb)
    res = unbounded.solve(tol=1e-6)
    assert res.status is Status.DUAL_INFEASIBLE
    d = res.info["certificate"]
    assert (d >= 0).all() and cs * c_unb @ d < -0.1 * cs * np.abs(c_unb).max() * np.abs(d).max()
    assert (As * A_unb @ d <= 1e-9 * As).all()


def test_unconfirmed_status_is_not_reported(monkeypatch):
    """A status that fails the float64 check on the user's data is not reported: the iteration
    goes on (with a tighter internal test), and without budget it ends max_iter."""
    hp = importlib.import_module("cvxkit.solvers.halpern_pdhg")

    lp = LinearProgram(**SMALL)
    first = lp.solve(tol=1e-6)
    calls = []
    real = hp._UserCheck.confirms

    def reject_once(self, flag, fin, sc):
        calls.append(flag)
        if len(calls) == 1:
            self.rejected.append((int(fin["it"]), "optimal"))
            return False
        return real(self, flag, fin, sc)

    monkeypatch.setattr(hp._UserCheck, "confirms", reject_once)
    res = lp.solve(tol=1e-6)
    assert res.status is Status.OPTIMAL and len(res.info["rejected"]) == 1
    assert res.iterations > first.iterations
    assert len(res.history["iteration"]) > len(first.history["iteration"])
    monkeypatch.setattr(hp._UserCheck, "confirms", lambda self, flag, fin, sc: False)
    res = lp.solve(tol=1e-6, max_iter=2000)
    assert res.status is Status.MAX_ITER and res.iterations == 2000


def test_optimal_objective_right_to_tol_netlib():
    """The gap test counts what the residuals can hide: SCAGR7 at tol 1e-4 stopped 8e-4 off."""
    lp = LinearProgram.from_npz(DATA / "SCAGR7.npz")
    res = lp.solve(tol=1e-4)
    assert res.status is Status.OPTIMAL
    assert abs(res.objective - lp.known_objective) <= 1e-4 * abs(lp.known_objective)


# --- malformed input -----------------------------------------------------------------------------
MPS = """NAME          TINY
ROWS
 N  COST
 L  LIM1
 L  LIM2
COLUMNS
    X1        COST         1.0   LIM1         1.0
    X2        COST         -2.0  LIM2         1.0
RHS
    RHS       LIM1         4.0   LIM2         3.0
BOUNDS
 UP BND       X1           4.0
ENDATA
"""


def test_from_mps_malformed(tmp_path):
    pytest.importorskip("highspy")
    good = tmp_path / "good.mps"
    good.write_text(MPS)
    lp = LinearProgram.from_mps(good)
    np.testing.assert_array_equal(lp.b_ub, [4.0, 3.0])
    assert lp.reference().objective == pytest.approx(-6.0)
    for old, new, match in (("4.0   LIM2", "four  LIM2", "'four' is not a number"),
                            ("UP BND       X1           4.0", "UP BND       X1           4.O", "'4.O'"),
                            ("LIM2         3.0", "LIMX         3.0", "LIMX"),
                            ("UP BND       X1", "UP BND       X9", "X9"),
                            ("    X2        COST         -2.0  LIM2", "    X2        COST         -2.0  LIMZ", "LIMZ")):
        bad = tmp_path / "bad.mps"
        bad.write_text(MPS.replace(old, new))
        with pytest.raises(ValueError, match=match):
            LinearProgram.from_mps(bad)
    for path in (None, 3, ["a.mps"]):
        with pytest.raises(ValueError, match="path of an MPS file"):
            LinearProgram.from_mps(path)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"])
def test_every_sparse_format(fmt):
    lp0 = LinearProgram(**SMALL)
    A = getattr(sp, f"{fmt}_matrix")(SMALL["A_ub"])
    A_eq = getattr(sp, f"{fmt}_array")(np.ones((1, 3)))
    lp = LinearProgram(SMALL["c"], A, SMALL["b_ub"], A_eq, [4.0])
    res = lp.solve(tol=1e-7)
    assert res.status is Status.OPTIMAL
    assert res.objective == pytest.approx(lp.reference().objective, rel=1e-6)
    res = halpern_pdhg(SMALL["c"], A, None, SMALL["b_ub"], lv=0.0, tol=1e-7)
    assert res.objective == pytest.approx(lp0.reference().objective, rel=1e-6)


def test_ragged_empty_and_wrong_types():
    c, A, b = SMALL["c"], SMALL["A_ub"], SMALL["b_ub"]
    for args, match in ((([[1, 2], [3]],), "c must be a numeric array"),
                        ((c, [[1, 2, 3], [1, 2]], [1, 2]), "A_ub must be a numeric array"),
                        ((c, A, [[1, 2], [3]]), "b_ub must be a numeric array"),
                        ((c, np.zeros((0, 0)), []), "A_ub must have shape"),
                        ((c, None, None, np.zeros((0, 0)), []), "A_eq must have shape"),
                        ((np.zeros((0, 0)),), "c must have shape"),
                        ((c, A + 0j, b), "A_ub must be real"),
                        ((c, A, "123"), "b_ub must be a numeric array"),
                        ((c, None, [[1], [2, 3]]), "b_ub")):
        with pytest.raises(ValueError, match=match):
            LinearProgram(*args)
    with pytest.raises(ValueError, match="lb must be a numeric array"):
        LinearProgram(c, A, b, lb=[[0, 1], [2]])
    lp = LinearProgram(c, A, b)
    for opt, val in (("tol", "1e-6"), ("max_iter", 2.5), ("check_every", 1.0), ("verbose", "yes"),
                     ("reflection", "1"), ("ruiz_iters", 2.0), ("pock_chambolle", 1), ("rescale", "no"),
                     ("primal_weight", "a"), ("adaptive_primal_weight", None), ("sync_every", 1.5),
                     ("eps_primal_infeasible", None), ("eps_abs", "0")):
        with pytest.raises(TypeError, match=opt):
            lp.solve(**{opt: val})
    for opt, val in (("check_every", 0), ("eps_rel", -1.0), ("eps_dual_infeasible", 0.0),
                     ("reflection", 2.0), ("sparse_format", 3), ("ruiz_iters", -1)):
        with pytest.raises(ValueError, match=opt):
            lp.solve(**{opt: val})
    with pytest.raises(ValueError, match="cannot both be 0"):
        lp.solve(eps_abs=0.0, eps_rel=0.0)


def test_malformed_warm_starts():
    lp = LinearProgram(**SMALL)
    res = lp.solve(tol=1e-6)
    for warm, match in ((3, "got int"), ("x", "got str"), ({"z": 1}, "got dict"),
                        ((np.ones(3),), "got tuple"), ({"x": np.ones(2)}, r"x of shape \(2,\)"),
                        ((np.ones(3), np.ones(2)), r"y of shape \(2,\)"),
                        ((np.ones((3, 1)), None), r"shape \(3, 1\)"),
                        ({"x": [np.nan, 0, 0]}, "NaN"), (([1, [2], 3], None), "ragged"),
                        ((np.ones(3) * 1j, None), "real")):
        with pytest.raises(ValueError, match="warm_start must be") as e:
            lp.solve(warm_start=warm)
        assert e.match(match)
    assert lp.solve(warm_start=res, tol=1e-6).status is Status.OPTIMAL
    assert lp.solve(warm_start={"x": res.x}, tol=1e-6).status is Status.OPTIMAL


def test_from_npz_bad_path(tmp_path):
    for path in (None, 3, tmp_path / "missing.npz"):
        with pytest.raises(ValueError, match="existing .npz file"):
            LinearProgram.from_npz(path)
    np.savez(tmp_path / "partial.npz", c=np.ones(2))
    with pytest.raises(ValueError, match="lacks the keys b_ub"):
        LinearProgram.from_npz(tmp_path / "partial.npz")


@pytest.mark.parametrize("k", [-9, -6, 6, 9])
def test_one_row_scaled(k):
    """One row (with its bound) times 10^k: the primal test weighted that row by 10^k in
    ||Kx - Pi(Kx)|| (at 1e-9 it was ignored: optimal 2.797 for 3.079), and Ruiz leaves rows
    with norms outside [1e-4, 1e4] unscaled (max_iter). Rows are now measured relative to their
    norms and such rows normalized before Ruiz."""
    for seed in range(4):
        d = _small_random(seed)
        ref = LinearProgram(**d).reference().objective
        for row in range(d["A_ub"].shape[0]):
            A, b = d["A_ub"].copy(), d["b_ub"].copy()
            A[row] *= 10.0 ** k
            b[row] *= 10.0 ** k
            res = LinearProgram(**dict(d, A_ub=A, b_ub=b)).solve(tol=1e-6)
            assert res.status is Status.OPTIMAL, (seed, row, res.status)
            assert abs(res.objective - ref) <= 1e-5 * abs(ref), (seed, row, res.objective, ref)
