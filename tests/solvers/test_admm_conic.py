"""The conic ADMM (`cvxkit.solvers.admm_conic`) and its cones (`cvxkit.solvers.cones`): the
projections, models against Clarabel (called on the same arrays, so that its duals ``z`` are
ours ``y``), certificates, back ends, warm starts, validation.

At ``tol`` the returned point meets the residual and gap tests in normalized units, so
objectives agree with Clarabel (at 1e-10) to a few ``tol`` relative, duals and strictly convex
solutions to ``TOL_X``; the assertions allow ``REL * tol``.
"""
import numpy as np
import pytest
import scipy.sparse as sp

from cvxkit.problems import ConicProgram
from cvxkit.solvers import Status
from cvxkit.solvers import cones as K
from cvxkit.solvers.admm_conic import admm_conic, certificate_error
from cvxkit.solvers.admm_qp import admm_qp
from cvxkit.solvers.backend import get_backend

clarabel = pytest.importorskip("clarabel")

TOL = 1e-7
#: objectives within REL * TOL (relative) of Clarabel's; solutions and duals within TOL_X
#: (measured at TOL: objectives 1e-9 to 1e-7 relative, solutions and duals 3e-7 to 6e-6)
REL = 10
TOL_X = 1e3 * TOL
NP = get_backend("numpy")


def reference(P, c, A, b, cones):
    """Clarabel on the same arrays: ``(x, z, objective, status)``."""
    n = c.shape[0]
    Pc = sp.triu(sp.csc_matrix(P if P is not None else (n, n))).tocsc()
    cl = ([clarabel.ZeroConeT(cones["z"])] if cones.get("z") else []) + \
        ([clarabel.NonnegativeConeT(cones["l"])] if cones.get("l") else []) + \
        [clarabel.SecondOrderConeT(k) for k in cones.get("q", [])]
    st = clarabel.DefaultSettings()
    st.verbose = False
    st.tol_gap_abs = st.tol_gap_rel = st.tol_feas = 1e-10
    sol = clarabel.DefaultSolver(Pc, c, sp.csc_matrix(A), b, cl, st).solve()
    return np.array(sol.x), np.array(sol.z), sol.obj_val, str(sol.status)


def agree(res, ref, tol=TOL):
    x, z, obj, status = ref
    assert status == "Solved" and res.status is Status.OPTIMAL, (status, res.status, res.message)
    assert abs(res.objective - obj) <= REL * tol * max(1.0, abs(obj)), (res.objective, obj)
    assert np.max(np.abs(res.dual - z)) <= TOL_X * max(1.0, np.abs(z).max())
    return x


# --- the models ----------------------------------------------------------------------------
def portfolio(seed=0, n=8):
    """max mu'w s.t. sum(w) = 1, w >= 0, ||L'w|| <= sigma (a risk cone)."""
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((n, 4)) / 4
    mu = 0.05 + 0.1 * rng.random(n)
    A = np.vstack([np.ones(n), -np.eye(n), np.zeros(n), -L.T])
    b = np.concatenate([[1.0], np.zeros(n), [0.15], np.zeros(4)])
    return None, -mu, A, b, {"z": 1, "l": n, "q": [5]}


def robust_ls(seed=0, m=12, n=5, rho=0.5):
    """min ||Fx - g|| + rho ||x|| (the worst case over ||Delta|| <= rho), in epigraph form over
    (x, t1, t2)."""
    rng = np.random.default_rng(seed)
    F, g = rng.standard_normal((m, n)), rng.standard_normal(m)
    Z = np.zeros
    A = np.vstack([np.hstack([Z(n), [-1.0, 0.0]])[None], np.hstack([-F, Z((m, 2))]),
                   np.hstack([Z(n), [0.0, -1.0]])[None], np.hstack([-np.eye(n), Z((n, 2))])])
    b = np.concatenate([[0.0], -g, [0.0], Z(n)])
    c = np.concatenate([Z(n), [1.0, rho]])
    return None, c, A, b, {"q": [m + 1, n + 1]}


def random_socp(seed=0, n=10, sizes=(3, 4, 2, 5), n_eq=2, n_ineq=4, quadratic=True):
    """Feasible and bounded by construction: b = A x0 + s0 with s0 inside K, c = -A'y0 - P x1
    with y0 in K*."""
    rng = np.random.default_rng(seed)
    m = n_eq + n_ineq + sum(sizes)
    cones = {"z": n_eq, "l": n_ineq, "q": list(sizes)}
    cs = K.layout(cones)
    A = rng.standard_normal((m, n))
    s0 = K.project(NP, cs, rng.standard_normal(m)) + np.where(cs.head, 1.0, 0.0)
    s0[cs.zero] = 0.0
    s0 += np.where(~cs.zero & ~cs.soc, 0.5, 0.0)
    y0 = K.project(NP, cs, rng.standard_normal(m), dual=True) + np.where(cs.head, 1.0, 0.0)
    M = rng.standard_normal((n, 3))
    P = M @ M.T if quadratic else None
    c = -A.T @ y0 - (P @ rng.standard_normal(n) if quadratic else 0.0)
    return P, c, A, A @ rng.standard_normal(n) + s0, cones


MODELS = [portfolio, robust_ls, random_socp]


# --- cones ---------------------------------------------------------------------------------
def test_projections_moreau_and_membership():
    """v = Pi_K(v) - Pi_K*(-v), the parts orthogonal, each in its cone; numpy and JAX equal."""
    jax_bk = get_backend("jax")
    rng = np.random.default_rng(0)
    cs = K.layout({"z": 2, "l": 3, "q": [1, 2, 4, 3]})
    for scale in (1e-3, 1.0, 1e3):
        v = scale * rng.standard_normal(cs.b.size)
        p, d = K.project(NP, cs, v), K.project(NP, cs, -v, dual=True)
        np.testing.assert_allclose(p - d, v, atol=1e-12 * scale)
        assert abs(p @ d) <= 1e-12 * scale ** 2
        for w, dual in ((p, False), (d, True)):
            np.testing.assert_allclose(K.project(NP, cs, w, dual=dual), w, atol=1e-12 * scale)
        with jax_bk.precision():
            pj = np.asarray(K.project(jax_bk, cs._replace(**{k: jax_bk.xp.asarray(getattr(cs, k))
                                                          for k in cs._fields}), v))
        np.testing.assert_allclose(pj, p, rtol=1e-12, atol=1e-15)
    # the three cases of the SOC projection
    one = K.layout({"q": [3]})
    np.testing.assert_allclose(K.project(NP, one, np.array([2.0, 1.0, 1.0])), [2.0, 1.0, 1.0])
    np.testing.assert_allclose(K.project(NP, one, np.array([-2.0, 1.0, 1.0])), 0.0)
    t, s = 0.0, np.array([3.0, 4.0])
    np.testing.assert_allclose(K.project(NP, one, np.array([t, *s])), [2.5, 1.5, 2.0])


def test_layout_and_block_min():
    cs = K.layout({"z": 1, "l": 1, "q": [2, 3]})
    assert K.dims(cs) == {"z": 1, "l": 1, "q": [2, 3]}
    np.testing.assert_array_equal(cs.heads, [2, 4])
    E = np.array([1.0, 2.0, 3.0, 5.0, 1.0, 2.0, 6.0])
    np.testing.assert_allclose(K.block_min(cs, E), [1, 2, 3, 3, 1, 1, 1])


def test_ruiz_with_tied_cone_blocks_converges():
    """A cone block with one short row: the tied rounds settle (the block's longest row at
    norm 1) instead of growing the block's scale without end."""
    import functools

    import scipy.sparse as sps

    from cvxkit.solvers.scaling import ruiz_sparse

    cs = K.layout({"l": 1, "q": [3]})
    A = sps.csc_matrix(np.array([[1.0, 0.0], [1.0, 1.0], [1e-3, 0.0], [0.0, 0.0]]))
    tie = functools.partial(K.block_min, cs)
    s10, s40 = (ruiz_sparse(sps.csc_matrix((2, 2)), np.ones(2), A, k, tie=tie) for k in (10, 40))
    np.testing.assert_allclose(s10.E, s40.E, rtol=1e-6)
    assert s10.E[1] == s10.E[2] == s10.E[3]
    rows = np.abs(s10.A.toarray()).max(axis=1)
    assert abs(rows[1:].max() - 1.0) < 1e-3


@pytest.mark.parametrize("cones, match", [
    ({"z": 1, "s": [3]}, "PSD"), ({"z": 1, "ep": 1}, "exponential"), ({"z": -1}, "'z'"),
    ({"l": 2.0}, "'l'"), ({"q": [0]}, "size 0"), ({"z": 2}, "cover 2 rows"), ([3], "dict")])
def test_bad_cones_are_named(cones, match):
    with pytest.raises(ValueError, match=match):
        admm_conic(None, np.ones(2), np.ones((3, 2)), np.ones(3), cones)


@pytest.mark.parametrize("args, name", [
    ((None, np.ones(2), np.ones((3, 3)), np.ones(3)), "A"),
    ((None, np.ones(2), np.ones((3, 2)), np.ones(2)), "b"),
    ((None, np.ones(2), np.ones((3, 2)), [1.0, np.inf, 0.0]), "b"),
    ((np.eye(3), np.ones(2), np.ones((3, 2)), np.ones(3)), "P"),
    ((np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones(2), np.ones((3, 2)), np.ones(3)), "symmetric"),
    ((None, [1.0, np.nan], np.ones((3, 2)), np.ones(3)), "c")])
def test_bad_data_names_the_argument(args, name):
    with pytest.raises(ValueError, match=name):
        admm_conic(*args, {"l": 3})


# --- against Clarabel ----------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_models_match_clarabel(model):
    data = model()
    res = admm_conic(*data, tol=TOL)
    x = agree(res, reference(*data))
    if model is random_socp:  # strictly convex in x on the constraints' null space: unique
        np.testing.assert_allclose(res.x, x, atol=TOL_X * max(1.0, np.abs(x).max()))
    prob = ConicProgram(*data)
    rep = prob.kkt_residuals(res.x, res.dual)
    assert max(rep.values()) <= 1e3 * TOL * max(1.0, np.abs(data[3]).max()), rep
    assert prob.check(res, rtol=REL * TOL, atol=REL * TOL).ok


def test_sparse_kkt_and_scaled_rows_agree():
    """The sparse LDL^T path gives the dense path's answer; scaling one cone's rows (one factor
    per SOC block keeps the cone) and the cost changes neither status nor solution."""
    P, c, A, b, cones = random_socp(seed=3)
    dense = admm_conic(P, c, A, b, cones, tol=TOL)
    sparse = admm_conic(sp.csc_matrix(P), c, sp.csc_matrix(A), b, cones, tol=TOL,
                        linsys="sparse")
    assert sparse.status is Status.OPTIMAL and "sparse KKT" in sparse.info["linsys"]
    np.testing.assert_allclose(sparse.x, dense.x, atol=TOL_X)
    r = np.ones(b.size)
    r[cones["z"] + cones["l"]:][:3] = 1e6  # the first SOC block
    r[0] = 1e-6
    scaled = admm_conic(1e3 * P, 1e3 * c, r[:, None] * A, r * b, cones, tol=TOL)
    assert scaled.status is Status.OPTIMAL
    np.testing.assert_allclose(scaled.x, dense.x, atol=TOL_X)
    np.testing.assert_allclose(scaled.dual * r / 1e3, dense.dual, atol=TOL_X)


def test_lp_and_qp_match_admm_qp():
    """A QP in cone form: the same answer as OSQP's ADMM on l <= Ax <= u."""
    rng = np.random.default_rng(1)
    n = 6
    M = rng.standard_normal((n, n))
    P, q = M @ M.T / n, rng.standard_normal(n)
    G = rng.standard_normal((4, n))
    Aeq, beq = np.ones((1, n)), np.array([1.0])
    ref = admm_qp(P, q, np.vstack([Aeq, G]), np.concatenate([beq, -np.inf * np.ones(4)]),
                  np.concatenate([beq, np.ones(4)]), tol=1e-9, polish=True)
    res = admm_conic(P, q, np.vstack([Aeq, G]), np.concatenate([beq, np.ones(4)]),
                     {"z": 1, "l": 4}, tol=TOL)
    assert res.status is Status.OPTIMAL
    np.testing.assert_allclose(res.x, ref.x, atol=TOL_X)
    np.testing.assert_allclose(res.dual, ref.dual, atol=TOL_X)


# --- certificates --------------------------------------------------------------------------
INFEASIBLE = (None, np.zeros(3), np.vstack([[1.0, 0, 0], -np.eye(3)]), np.array([-1.0, 0, 0, 0]),
              {"l": 1, "q": [3]})  # ||x|| <= t, t <= -1
UNBOUNDED = (None, np.array([-1.0, 0, 0]), np.vstack([[0, 1.0, 0], -np.eye(3)]),
             np.array([1.0, 0, 0, 0]), {"z": 1, "q": [3]})  # min -t s.t. ||x|| <= t, x1 = 1


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
def test_infeasible_and_unbounded_socps(scale):
    P, c, A, b, cones = INFEASIBLE
    res = admm_conic(P, c, A, scale * b, cones)
    assert res.status is Status.PRIMAL_INFEASIBLE, res.message
    y = res.info["certificate"]
    assert certificate_error(P, c, A, scale * b, cones, res.status, y, 1e-4, 1e-4) is None
    assert np.linalg.norm(y[2:]) <= y[1] + 1e-12 and y[0] >= 0 and b @ y < 0
    assert np.isnan(res.x).all() and res.objective == np.inf
    P, c, A, b, cones = UNBOUNDED
    res = admm_conic(P, scale * c, A, b, cones)
    assert res.status is Status.DUAL_INFEASIBLE, res.message
    d = res.info["certificate"]
    assert certificate_error(P, c, A, b, cones, res.status, d, 1e-4, 1e-4) is None
    assert c @ d < 0 and res.objective == -np.inf


def test_certificate_error_names_what_fails():
    P, c, A, b, cones = INFEASIBLE
    pinf, dinf = Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE
    assert certificate_error(P, c, A, b, cones, pinf, np.array([1.0, 1, 0, 0]), 1e-4, 1e-4) is None
    assert "dual cone" in certificate_error(P, c, A, b, cones, pinf, np.array([1.0, 1, 2, 0]),
                                            1e-4, 1e-4)
    assert "A^T y" in certificate_error(P, c, A, b, cones, pinf, np.array([1.0, 2, 0, 0]),
                                        1e-4, 1e-4)
    assert "b'y" in certificate_error(P, c, A, -b, cones, pinf, np.array([1.0, 1, 0, 0]),
                                      1e-4, 1e-4)
    P, c, A, b, cones = UNBOUNDED
    assert certificate_error(P, c, A, b, cones, dinf, np.array([1.0, 0, 0]), 1e-4, 1e-4) is None
    assert "recession" in certificate_error(P, c, A, b, cones, dinf, np.array([1.0, 0, 2]),
                                            1e-4, 1e-4)
    assert "q'd" in certificate_error(P, c, A, b, cones, dinf, np.array([-1.0, 0, 0]), 1e-4, 1e-4)
    assert "P d" in certificate_error(np.eye(3), c, A, b, cones, dinf, np.array([1.0, 0, 0]),
                                      1e-4, 1e-4)


# --- back ends, warm starts, limits --------------------------------------------------------
def test_numpy_and_jax_agree():
    data = random_socp(seed=5)
    a = admm_conic(*data, tol=TOL)
    b = admm_conic(*data, tol=TOL, backend="jax")
    assert a.status is b.status is Status.OPTIMAL and b.backend == "jax"
    assert abs(a.objective - b.objective) <= 10 * TOL * max(1.0, abs(a.objective))
    np.testing.assert_allclose(b.x, a.x, atol=TOL_X)
    np.testing.assert_allclose(b.dual, a.dual, atol=TOL_X)
    # float32 on JAX: the loop in float32 reaches ~1e-4 (checked in float64 on the user's data)
    f = admm_conic(*data, tol=1e-4, backend="jax", dtype="float32")
    assert f.status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE, Status.MAX_ITER), f.message
    assert abs(f.objective - a.objective) <= 1e-2 * max(1.0, abs(a.objective))


def test_warm_start_from_a_pair_and_a_result():
    data = portfolio(seed=2)
    cold = admm_conic(*data, tol=TOL)
    for warm in (cold, (cold.x, cold.dual), {"x": cold.x, "y": cold.dual, "rho": cold.info["rho"]}):
        res = admm_conic(*data, tol=TOL, warm_start=warm)
        assert res.status is Status.OPTIMAL and res.iterations <= 50, res.iterations
    with pytest.raises(ValueError, match="warm_start"):
        admm_conic(*data, warm_start=(cold.x, cold.dual[:-1]))


def test_limits_and_options():
    data = robust_ls()
    res = admm_conic(*data, tol=1e-10, max_iter=30)
    assert res.status in (Status.MAX_ITER, Status.OPTIMAL_INACCURATE) and res.iterations == 30
    assert np.isfinite(res.x).all() and res.history["iteration"][-1] == 30
    for name, value in (("tol", -1.0), ("alpha", 2.0), ("scaling", 1.5), ("linsys", "lu"),
                        ("adaptive_rho_tolerance", 0.5), ("backend", "torch"),
                        ("acceleration", "yes")):
        with pytest.raises(ValueError, match=name):
            admm_conic(*data, **{name: value})
    with pytest.raises(TypeError, match="unexpected"):
        admm_conic(*data, polish=True)


def test_anderson_acceleration_agrees_and_saves_iterations():
    """With and without acceleration: the same answer (Clarabel's), fewer iterations with it,
    and its counts in ``info``."""
    data = random_socp(seed=4, n=40, sizes=(5,) * 12, n_eq=3, n_ineq=20, quadratic=False)
    ref = reference(*data)
    fast = admm_conic(*data, tol=TOL)
    slow = admm_conic(*data, tol=TOL, acceleration=False)
    agree(fast, ref)
    agree(slow, ref)
    assert fast.info["anderson"]["accepted"] > 0 and "anderson" not in slow.info
    assert fast.iterations < slow.iterations, (fast.iterations, slow.iterations)
