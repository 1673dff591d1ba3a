"""Dual Lagrangian Learning (DualProxy) and ParametricConicProgram, against CVXPY/Clarabel.

Validity is the point of the method: every bound must lie below the Clarabel optimum (+1e-7),
for trained and untrained networks alike; the completed duals must be dual feasible; the
reference duals, completed, must reproduce the optimum (strong duality); training must close
most of the gap. Hand-checked instances E1/E2 come from the digest (solved there with CVXPY).
"""
import importlib
import numpy as np
import pytest

from cvxkit.problems import ParametricConicProgram
from cvxkit.problems.parametric_conic import (multidimensional_knapsack, portfolio,
                                              production_planning)
from cvxkit.solvers import methods
from cvxkit.problems import DualProxy

VALID = 1e-7  # bound <= CVXPY optimum + VALID


@pytest.fixture(scope="module")
def classes():
    """Small members of the three classes with 16 held-out thetas and their references."""
    out = {}
    for name, prob in (("knapsack", multidimensional_knapsack(3, 12, seed=0)),
                       ("production", production_planning(6, seed=0)),
                       ("portfolio", portfolio(8, seed=0)[0])):
        T = prob.sample(16, seed=99)
        ref = prob.reference_solve(T)
        assert all(s == "optimal" for s in ref["status"])
        out[name] = (prob, T, ref)
    return out


@pytest.fixture(scope="module")
def trained(classes):
    """One proxy per class, briefly trained (tiny nets, a few epochs)."""
    out = {}
    for name, (prob, T, ref) in classes.items():
        px = DualProxy(prob, hidden=(32, 32), seed=0)
        before = px.bound(T)
        px.fit(prob.sample(512, seed=1), epochs=20, batch_size=32, lr=1e-2)
        out[name] = (px, before)
    return out


def gaps(bound, opt):
    return (opt - bound) / np.abs(opt)


# --- hand-checked values --------------------------------------------------------------------
def test_knapsack_E1_dual_function():
    """p = (10, 7, 4, 3), b = (5, 4), W = [[4, 3, 2, 1], [1, 3, 2, 2]]: OPT -13, g(0) = -24,
    g(1, 1) = -15, g(7/3, 0) = -13 (a dual optimum), and CVXPY agrees."""
    prob = multidimensional_knapsack(2, 4)
    W = np.array([[4, 3, 2, 1], [1, 3, 2, 2]], float)
    theta = np.concatenate([[10, 7, 4, 3], W.ravel(), [5, 4]])
    D = prob.data
    assert D.dual_value(theta, [0, 0]) == pytest.approx(-24)
    assert D.dual_value(theta, [1, 1]) == pytest.approx(-15)
    assert D.dual_value(theta, [7 / 3, 0]) == pytest.approx(-13)
    ref = prob.reference_solve(theta[None])
    assert ref["objective"][0] == pytest.approx(-13, abs=1e-7)
    assert D.dual_value(theta, ref["y"][0]) == pytest.approx(-13, abs=1e-6)


def test_production_E2_dual_function():
    """d = (1, 2, 0.5), e = (4, 1, 9), r = (1, 2, 1), B = 3: OPT 16.002238 attained by the
    completed budget dual y = 3.8155..; g(0) = 2 sum sqrt(d e) = 11.071068."""
    prob = production_planning(3)
    theta = np.array([1, 2, 0.5, 4, 1, 9, 1, 2, 1, 3], float)
    ref = prob.reference_solve(theta[None])
    assert ref["objective"][0] == pytest.approx(16.002238, abs=1e-6)
    assert prob.data.dual_value(theta, [0.0]) == pytest.approx(11.071068, abs=1e-6)
    ys = np.linspace(3.70, 3.95, 2501)
    g = np.array([prob.data.dual_value(theta, [y]) for y in ys])
    assert g.max() == pytest.approx(16.002238, abs=1e-6)
    assert ys[g.argmax()] == pytest.approx(3.8155, abs=2e-3)
    assert ref["y"][0, 0] == pytest.approx(3.8155, abs=2e-3)


@pytest.mark.parametrize("name", ["knapsack", "production", "portfolio"])
def test_reference_duals_complete_to_the_optimum(classes, name):
    """Strong duality through our completion: g(y_ref) = OPT to the reference's tolerance."""
    prob, T, ref = classes[name]
    g = np.array([prob.data.dual_value(t, y) for t, y in zip(T, ref["y"])])
    np.testing.assert_allclose(g, ref["objective"], rtol=1e-6, atol=1e-7)


# --- validity -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["knapsack", "production", "portfolio"])
@pytest.mark.parametrize("seed", [0, 1])
def test_untrained_bounds_are_valid(classes, name, seed):
    prob, T, ref = classes[name]
    px = DualProxy(prob, hidden=(16,), seed=seed, activation="relu")
    b = px.bound(T)
    assert b.shape == (len(T),) and np.all(np.isfinite(b))
    assert np.all(b <= ref["objective"] + VALID)


def test_large_random_weights_stay_valid(classes):
    """Weights blown up (outputs ~1e8, some overflowing to inf): still valid, never NaN."""
    import jax

    prob, T, ref = classes["portfolio"]
    px = DualProxy(prob, hidden=(16,), seed=0)
    px.net = jax.tree_util.tree_map(lambda a: a * 1e4 if a.dtype.kind == "f" else a, px.net)
    b = px.bound(T)
    assert not np.any(np.isnan(b)) and np.all(b <= ref["objective"] + VALID)


@pytest.mark.parametrize("name", ["knapsack", "production", "portfolio"])
def test_trained_bounds_are_valid_and_training_closes_the_gap(classes, trained, name):
    prob, T, ref = classes[name]
    px, before = trained[name]
    after = px.bound(T)
    assert np.all(before <= ref["objective"] + VALID)
    assert np.all(after <= ref["objective"] + VALID)
    g0, g1 = gaps(before, ref["objective"]).mean(), gaps(after, ref["objective"]).mean()
    assert g1 < 0.25 * g0, (g0, g1)
    # 20 short epochs: the LP and production planning get within a few percent; the portfolio's
    # optimum is small (|OPT| ~ 0.07) and its box completion needs longer training (benchmark)
    assert g1 < {"knapsack": 0.05, "production": 0.05, "portfolio": 1.0}[name], g1
    assert px.history["train_bound"][-1] > px.history["train_bound"][0]


def test_certified_bound_is_below_plain_evaluation_by_rounding_only(classes, trained):
    prob, T, _ = classes["knapsack"]
    px, _ = trained["knapsack"]
    d = px.duals(T)
    plain = np.array([prob.data.dual_value(t, y) for t, y in zip(T, d["y"])])
    assert np.all(d["bound"] <= plain)
    np.testing.assert_allclose(d["bound"], plain, rtol=1e-10)


# --- dual feasibility -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["knapsack", "production", "portfolio"])
def test_completion_is_exactly_dual_feasible(classes, trained, name):
    """y in K* and z >= 0 hold for the floating-point numbers; stationarity c - A'y = z_l - z_u
    (+ pair duals) to rounding; the pair duals lie on the rotated cone's boundary."""
    prob, T, _ = classes[name]
    px, _ = trained[name]
    d = px.duals(T)
    idx = prob.data.cone_index()
    y = d["y"]
    assert np.all(y[:, idx["nonneg"]] >= 0)
    for rows in idx["soc"].values():
        blk = y[:, rows]
        assert np.all(np.linalg.norm(blk[..., 1:], axis=-1) <= blk[..., 0])
    assert np.all(d["z_lower"] >= 0) and np.all(d["z_upper"] >= 0)
    for k, t in enumerate(T):
        duals = {key: v[k] for key, v in d.items()}
        assert prob.at(t).dual_infeasibility(duals) <= 1e-12
    if name == "production":
        zp = d["z_pairs"]
        assert np.all(zp[..., :2] >= 0)
        assert np.all(zp[..., 2] ** 2 <= 2 * zp[..., 0] * zp[..., 1])
        np.testing.assert_allclose(zp[..., 2] ** 2, 2 * zp[..., 0] * zp[..., 1], rtol=1e-14)


def test_gradient_is_danskin(classes):
    """d g / d y = -(b + A x*(y)) with x* the box minimizer of the Lagrangian (knapsack)."""
    import jax
    import jax.numpy as jnp

    from cvxkit.solvers.dual_proxy import device_data, lagrangian_bound

    prob, T, _ = classes["knapsack"]
    with jax.enable_x64(True):
        dd = device_data(prob.data.arrays(), jnp.float64)
        y = jnp.asarray([0.3, 0.7, 1.1])
        grad = jax.grad(lambda v: lagrangian_bound(v, jnp.asarray(T[0]), dd)[0])(y)
    c, A, b, _ = prob.data.at(T[0])
    r = c - A.T @ np.asarray(y)
    xstar = np.where(r < 0, prob.data.ub, prob.data.lb)
    np.testing.assert_allclose(np.asarray(grad), -(b + A @ xstar), rtol=1e-12)


# --- front ends -----------------------------------------------------------------------------
def test_from_cvxpy_matches_the_cvxpy_problem():
    """Same optimum as the user's CVXPY model (a maximization: value = -OPT), bounds detected,
    and DualProxy(cvxpy_problem, parameters=[...]) builds the same data."""
    pcp, cvx = portfolio(8, seed=3)
    assert np.all(np.isfinite(pcp.data.lb)) and np.all(np.isfinite(pcp.data.ub))
    assert [k for k, _ in pcp.data.cones] == ["zero", "soc"]
    mu, sigma = cvx.parameters()
    T = pcp.sample(3, seed=5)
    ref = pcp.reference_solve(T)
    for t, opt in zip(T, ref["objective"]):
        mu.value, sigma.value = t[:8], t[8]
        cvx.solve(solver="CLARABEL")
        assert -cvx.value == pytest.approx(opt, rel=1e-6)
    px = DualProxy(cvx, parameters=[mu, sigma], seed=0)
    assert px.data.n == pcp.n and px.data.m == pcp.m
    assert np.all(px.bound(T) <= ref["objective"] + VALID)


def test_from_cvxpy_parameter_order_and_folding():
    """theta follows the given parameter order; a parameter left out keeps its value."""
    import cvxpy as cp

    x = cp.Variable(2, bounds=[0, 1])
    a, b = cp.Parameter(2), cp.Parameter()
    prob = cp.Problem(cp.Minimize(a @ x), [cp.sum(x) >= b])
    b.value = 0.5
    pcp = ParametricConicProgram.from_cvxpy(prob, [a])
    assert pcp.p == 2
    ref = pcp.reference_solve(np.array([[1.0, 2.0]]))
    assert ref["objective"][0] == pytest.approx(0.5, abs=1e-7)
    pcp2 = ParametricConicProgram.from_cvxpy(prob, [b, a])
    ref2 = pcp2.reference_solve(np.array([[1.0, 3.0, -1.0]]))
    assert ref2["objective"][0] == pytest.approx(-1.0, abs=1e-7)  # x = (1, 0)... a = (3, -1)


def test_from_arrays_matches_generator():
    """The knapsack generator equals the same LP written with dense jacobians."""
    prob = multidimensional_knapsack(2, 3, seed=4)
    t = prob.theta
    p, W, b = t[:3], t[3:9].reshape(2, 3), t[9:]
    dense = ParametricConicProgram.from_arrays(-p, -W, b, [("nonneg", 2)], n_params=1, lb=0, ub=1)
    a = prob.reference_solve(t[None])["objective"][0]
    assert dense.reference_solve(np.zeros((1, 1)))["objective"][0] == pytest.approx(a, rel=1e-8)


def test_solve_and_check_through_the_problem_interface():
    assert "dual_proxy" in methods() and methods()["dual_proxy"].backends == ("jax",)
    prob = production_planning(4, seed=2)
    res = prob.solve(method="dual_proxy", backend="jax", epochs=20, hidden=(16, 16), lr=3e-3)
    rep = prob.check(res, rtol=0.1, atol=1e-9)
    assert rep.objective <= rep.reference_objective + VALID
    assert rep.ok, str(rep)
    x, _ = prob.to_cvxpy()
    assert x.value is None  # to_cvxpy returns an unsolved model


def test_parameter_taken_as_in_every_parametric_family():
    """``to_cvxpy(param)`` and ``reference(param)`` take the parameter value as the bilevel
    family does (issue 18); ``to_cvxpy(theta=...)`` still works, with a DeprecationWarning."""
    prob = multidimensional_knapsack(2, 4, seed=1)
    t = prob.sample(1, seed=5)[0]
    model, _ = prob.to_cvxpy(t)
    with pytest.warns(DeprecationWarning, match="param"):
        old, _ = prob.to_cvxpy(theta=t)
    model.solve(solver="CLARABEL")
    old.solve(solver="CLARABEL")
    ref = prob.reference(t)
    assert model.value == pytest.approx(old.value, rel=1e-9)
    assert ref.objective == pytest.approx(prob.at(t).reference().objective, rel=1e-9)
    assert ref.objective == pytest.approx(model.value, rel=1e-6, abs=1e-6)
    assert prob.reference() is prob.reference()  # at prob.theta: cached


# --- errors ---------------------------------------------------------------------------------
def test_front_end_in_problems_algorithm_on_plain_arrays():
    """The layering (DESIGN.md): `DualProxy` and `ConicData` are the front end in
    cvxkit.problems; cvxkit.solvers.dual_proxy runs on a mapping of plain arrays and gives the
    same bound as the front end with the same seed."""
    import cvxkit.problems as P
    S = importlib.import_module("cvxkit.solvers.dual_proxy")

    assert P.DualProxy.__module__ == "cvxkit.problems.parametric_conic"
    assert P.ConicData.__module__ == "cvxkit.problems.conic_data"
    assert not hasattr(S, "DualProxy") and not hasattr(S, "ConicData")
    prob = multidimensional_knapsack(2, 5, seed=3)
    arrays = prob.data.arrays()
    assert set(arrays) == set(S.FIELDS)
    T = prob.sample(8, seed=1)
    front = DualProxy(prob, hidden=(8,), seed=2).fit(T, epochs=2, batch_size=4)
    plain = S.ProxyNetwork(arrays, hidden=(8,), seed=2).fit(T, epochs=2, batch_size=4)
    np.testing.assert_array_equal(front.bound(T), plain.bound(T))
    assert front.data is not None and isinstance(front.data, P.ConicData)
    with pytest.raises(ValueError, match="mapping of plain arrays"):
        S.ProxyNetwork(prob.data)
    with pytest.raises(ValueError, match="lacks"):
        S.ProxyNetwork({k: v for k, v in arrays.items() if k != "kappa"})


def test_bad_input_raises_value_error():
    import cvxpy as cp

    prob = multidimensional_knapsack(2, 3)
    px = DualProxy(prob, hidden=(4,))
    with pytest.raises(ValueError, match="shape"):
        px.bound(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        px.bound(np.full((1, prob.p), np.nan))
    with pytest.raises(ValueError, match="activation"):
        DualProxy(prob, activation="gelu")
    with pytest.raises(ValueError, match="finite"):
        free = ParametricConicProgram.from_arrays(np.ones(2), np.ones((1, 2)), np.ones(1),
                                                  [("nonneg", 1)], n_params=1)
        DualProxy(free)
    with pytest.raises(ValueError, match="cover"):
        ParametricConicProgram.from_arrays(np.ones(2), np.ones((2, 2)), np.ones(2),
                                           [("nonneg", 1)], n_params=1)
    with pytest.raises(ValueError, match="NaN"):
        ParametricConicProgram.from_arrays(np.array([1, np.nan]), np.ones((1, 2)), np.ones(1),
                                           [("nonneg", 1)], n_params=1)
    x = cp.Variable(2)
    a = cp.Parameter(pos=True)
    with pytest.raises(ValueError, match="not supported"):
        ParametricConicProgram.from_cvxpy(cp.Problem(cp.Minimize(cp.sum(cp.exp(x)) * 1 + a * x[0]),
                                                     [x >= -1, x <= 1]), [a])
    with pytest.raises(ValueError, match="DPP"):
        ParametricConicProgram.from_cvxpy(cp.Problem(cp.Minimize(a * a * x[0]), [x >= 0]), [a])


@pytest.mark.slow
def test_long_training_reaches_paper_level_gaps():
    """Knapsack 5 x 50 and production planning n = 10, 200 epochs: mean gap < 1% (2x the
    paper's "< 0.5% on average"), all 200 held-out bounds valid."""
    for prob, kw in ((multidimensional_knapsack(5, 50, seed=0), {}),
                     (production_planning(10, seed=0), {"hidden": (128, 128)})):
        T = prob.sample(200, seed=7)
        ref = prob.reference_solve(T)
        px = DualProxy(prob, seed=0, activation="relu", **kw).fit(prob.sample(2048, seed=1),
                                                                 epochs=200, lr=3e-3)
        b = px.bound(T)
        assert np.all(b <= ref["objective"] + VALID)
        assert gaps(b, ref["objective"]).mean() < 0.01


def test_projection_layer_matches_numpy_and_moreau():
    """Mixed cones (SOC of two sizes, orthant, zero): the layer equals a direct numpy projection
    (times the scale), and Moreau's decomposition v = P_K(v) - P_K(-v) holds on the SOC blocks
    (self-dual); the safe variant lies in K* exactly."""
    import jax
    import jax.numpy as jnp

    from cvxkit.problems import ConicData
    from cvxkit.solvers.dual_proxy import device_data, project_dual_cone

    cones = [("soc", 3), ("nonneg", 2), ("zero", 1), ("soc", 4), ("soc", 3)]
    m = 13
    D = ConicData.build(1, m, 1, cones, [], [], np.zeros((0, 2)), np.zeros((1, 2)),
                        np.zeros((m, 2)), lb=0, ub=1)

    def soc_np(v):
        t, s = v[0], v[1:]
        ns = np.linalg.norm(s)
        if ns <= t:
            return v
        if ns <= -t:
            return 0 * v
        return 0.5 * (t + ns) * np.concatenate([[1.0], s / ns])

    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        dd = device_data(D.arrays(), jnp.float64)
        for _ in range(20):
            v = 3 * rng.standard_normal(m)
            out = np.asarray(project_dual_cone(jnp.asarray(v), dd, "relu", scale=2.0))
            neg = np.asarray(project_dual_cone(jnp.asarray(-v), dd, "relu"))
            safe = np.asarray(project_dual_cone(jnp.asarray(v), dd, "relu", safe=True))
            for blk in ([0, 1, 2], [6, 7, 8, 9], [10, 11, 12]):
                np.testing.assert_allclose(out[blk], 2 * soc_np(v[blk]), atol=1e-12)
                np.testing.assert_allclose(safe[blk] - neg[blk], v[blk], atol=1e-9)
                assert np.linalg.norm(safe[blk][1:]) <= safe[blk][0]
            np.testing.assert_allclose(out[3:5], 2 * np.maximum(v[3:5], 0))
            assert out[5] == 2 * v[5]


# --- issue 17: nothing dropped, nothing complex, defaults that work -----------------------------
def _cvxpy_values(prob, params, thetas):
    """CVXPY's own optimal values at each theta (parameters stacked column-major)."""
    out = []
    for t in thetas:
        start = 0
        for q in params:
            q.value = np.reshape(t[start:start + q.size], q.shape, order="F")
            start += q.size
        prob.solve(solver="CLARABEL")
        out.append(prob.value)
    return np.array(out)


def _quadratic_models():
    import cvxpy as cp

    x = cp.Variable(3)
    a, s = cp.Parameter(3, value=[1.0, -0.5, 0.2]), cp.Parameter(value=2.0)
    Q = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.1], [0.0, 0.1, 0.5]])
    box = [x >= -1, x <= 1]
    return {
        # the example: the quadratic term used to be dropped (reference -1.0 vs -0.145)
        "sum_squares": (cp.Problem(cp.Minimize(a @ x + 0.7 * cp.sum_squares(x)), box), [a]),
        "quad_form": (cp.Problem(cp.Minimize(a @ x + cp.quad_form(x, Q)), box), [a]),
        "maximize concave": (cp.Problem(cp.Maximize(a @ x - cp.sum_squares(x - 0.3)), box), [a]),
        "square of a parameter": (cp.Problem(cp.Minimize(a @ x + cp.square(s)), box), [a, s]),
        "quadratic constraint": (cp.Problem(cp.Minimize(a @ x), [cp.sum_squares(x) <= s]),
                                 [a, s]),
    }


@pytest.mark.parametrize("name", sorted(_quadratic_models()))
def test_from_cvxpy_keeps_quadratic_terms_exactly(name):
    prob, params = _quadratic_models()[name]
    pcp = ParametricConicProgram.from_cvxpy(prob, params)
    rng = np.random.default_rng(0)
    thetas = pcp.theta + 0.5 * rng.standard_normal((3, pcp.p))
    if name in ("square of a parameter", "quadratic constraint"):
        thetas[:, -1] = np.abs(thetas[:, -1]) + 0.5
    sign = -1.0 if name.startswith("maximize") else 1.0
    ours = pcp.reference_solve(thetas)["objective"]
    np.testing.assert_allclose(ours, sign * _cvxpy_values(prob, params, thetas), atol=1e-6)


def test_from_cvxpy_refuses_what_it_cannot_hold():
    import cvxpy as cp

    a = cp.Parameter(2, value=[1.0, 2.0])
    z = cp.Variable(2, integer=True)
    with pytest.raises(ValueError, match="integer"):
        ParametricConicProgram.from_cvxpy(cp.Problem(cp.Minimize(a @ z), [z >= 0]))
    x = cp.Variable((2, 2), PSD=True)
    with pytest.raises(ValueError, match="not supported"):
        ParametricConicProgram.from_cvxpy(cp.Problem(cp.Minimize(a @ cp.diag(x)),
                                                     [cp.trace(x) == 1]))
    with pytest.raises(ValueError, match="cvxpy.Problem"):
        ParametricConicProgram.from_cvxpy("problem")


@pytest.mark.parametrize("change, name", [
    (lambda c, A, b: (c + 1j, A, b), "c"),
    (lambda c, A, b: (c, A * (1 + 1j), b), "A"),
    (lambda c, A, b: (c, A, [[1.0], [1.0, 2.0]]), "b"),
    (lambda c, A, b: (c, np.zeros((0, 0)), b), "A"),
    (lambda c, A, b: ((c, np.ones((2, 1)) * 1j), A, b), "jacobian of c"),
    (lambda c, A, b: (c, A.astype(object), b), "A"),
])
def test_from_arrays_refuses_complex_ragged_empty(change, name):
    c, A, b = change(np.ones(2), np.ones((1, 2)), np.ones(1))
    with pytest.raises(ValueError, match=name):
        ParametricConicProgram.from_arrays(c, A, b, [("nonneg", 1)], n_params=1, lb=0, ub=1)


def test_theta_and_options_are_validated():
    prob = multidimensional_knapsack(2, 3)
    with pytest.raises(ValueError, match="theta"):
        prob.at(prob.theta + 1j)
    with pytest.raises(ValueError, match="thetas"):
        prob.reference_solve([[1.0], [1.0, 2.0]])
    with pytest.raises((TypeError, ValueError), match="epochs"):
        prob.solve(epochs=2.5)
    with pytest.raises((TypeError, ValueError), match="hidden"):
        prob.solve(hidden="wide")
    with pytest.raises(ValueError, match="train_thetas"):
        prob.solve(train_thetas=np.ones((3, 2)))
    with pytest.raises(ValueError, match="cones"):
        ParametricConicProgram.from_arrays(np.ones(2), np.ones((1, 2)), np.ones(1), "nonneg",
                                           n_params=1)


def test_solve_with_defaults_without_a_sampler():
    """A program built from arrays has no sampler: solve() trains on theta itself (the bound is
    valid whatever the training set) on the method's first backend."""
    J = np.zeros((2, 1))
    J[0, 0] = 1.0
    prob = ParametricConicProgram.from_arrays((np.array([1.0, -1.0]), J), np.ones((1, 2)),
                                              np.array([-0.5]), [("nonneg", 1)], n_params=1,
                                              lb=0, ub=1, theta=[0.3])
    res = prob.solve(epochs=5)
    assert res.status.converged and res.backend == "jax"
    ref = prob.reference()
    assert res.objective <= ref.objective + VALID


# --- training schedule and defaults ------------------------------------------------------------
def test_plateau_schedule_halves_reloads_and_stops():
    """The paper's schedule: a new best is reported, ``patience`` epochs without one halve the
    rate (the caller reloads the best weights), and a rate below ``min_lr`` stops."""
    from cvxkit.solvers.dual_proxy import PlateauSchedule

    s = PlateauSchedule(1e-3, patience=2, min_lr=2e-4)
    assert s.step(1.0) == "best" and s.best == 1.0
    assert s.step(0.5) == "wait"
    assert s.step(1.0) == "halve" and s.lr == pytest.approx(5e-4)   # equal is no improvement
    assert s.step(2.0) == "best" and s.lr == pytest.approx(5e-4)
    assert [s.step(0.0) for _ in range(4)] == ["wait", "halve", "wait", "stop"]
    assert s.lr == pytest.approx(2.5e-4) and s.halvings == 2
    assert PlateauSchedule(1.0).step(float("nan")) == "wait"


def test_fit_defaults_split_validation_keep_best_and_report_gap():
    """fit with defaults carves a validation split, records the schedule in ``history``, keeps
    the best validation weights (halving the rate reloads them) and reports the validation gap
    against Clarabel."""
    prob = multidimensional_knapsack(2, 6, seed=0)
    T = prob.sample(200, seed=1)
    px = DualProxy(prob, hidden=(16,)).fit(T, epochs=40, patience=2)
    h = px.history
    assert len(px.validation_thetas_) == 20 and h["stop"] in ("epochs", "min_lr")
    assert np.all(np.diff(h["lr"]) <= 0) and h["lr"][0] == pytest.approx(1e-3)
    # the kept weights are the best on validation (uncertified float32 vs certified float64)
    assert px.validation_bound_ == pytest.approx(np.max(h["val_bound"]), rel=1e-4, abs=1e-4)
    v = px.validation_gap_
    assert v["draws"] == 20 and v["invalid"] == 0 and 0 <= v["mean"] <= v["max"]
    ref = prob.reference_solve(px.validation_thetas_)["objective"]
    gap = (ref - px.bound(px.validation_thetas_)) / np.abs(ref)
    assert v["mean"] == pytest.approx(gap.mean(), rel=1e-6, abs=1e-9)
    # explicit validation set, no gap computed
    px2 = DualProxy(prob, hidden=(16,)).fit(T, epochs=3, val_thetas=T[:5], validation_gap=False)
    assert px2.validation_gap_ is None and len(px2.validation_thetas_) == 5
    with pytest.raises(ValueError, match="val_fraction"):
        px2.fit(T, val_fraction=1.5)


def test_fit_progress_bar_and_verbose_summary(capsys):
    prob = multidimensional_knapsack(2, 4, seed=0)
    DualProxy(prob, hidden=(8,)).fit(prob.sample(50, seed=1), epochs=3, progress=True,
                                    verbose=True)
    out = capsys.readouterr()
    assert "dual_proxy fit" in out.err and "validation draws" in out.out


@pytest.mark.slow
def test_defaults_close_the_gap_on_knapsack_and_production():
    """DualProxy(prob).fit(thetas) with every training setting at its default: mean gap < 2%
    on held-out draws and no invalid bound."""
    for prob in (multidimensional_knapsack(5, 50, seed=0), production_planning(10, seed=0)):
        T = prob.sample(200, seed=7)
        ref = prob.reference_solve(T)
        px = DualProxy(prob).fit(prob.sample(2048, seed=1))
        b = px.bound(T)
        assert np.all(b <= ref["objective"] + VALID)
        assert gaps(b, ref["objective"]).mean() < 0.02
        assert px.validation_gap_["mean"] < 0.02
