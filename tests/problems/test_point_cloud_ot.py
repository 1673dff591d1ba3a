"""Point-cloud entropic OT (sinkhorn_points, OptimalTransport.from_points): the blockwise solver
against dense Sinkhorn on the materialized cost, the lazy plan, scale invariance, float32,
warm starts, gradients (finite differences, OTT-JAX), bad input, memory and a device mesh."""
import math
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import run_on_host_devices
from cvxkit.problems import OptimalTransport, PointCloudTransport
from cvxkit.solvers import Status
from cvxkit.solvers.pointcloud import COSTS, PointCloudPlan, dense_cost
from cvxkit.solvers.sinkhorn import sinkhorn
from cvxkit.solvers.sinkhorn_points import (sinkhorn_points, sinkhorn_points_value,
                                            sinkhorn_points_value_and_grad)


def cloud(n, m, d=2, seed=0, zeros=False):
    """Two random clouds (the second shifted) with random weights of equal mass."""
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, d)), rng.random((m, d)) + 0.3
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    if zeros:
        a[[0, 3]] = 0.0
        b[2] = 0.0
    return x, y, a / a.sum(), b / b.sum()


def same_up_to_constant(f, f_ref, g, g_ref, atol):
    """Potentials are unique up to (f + k, g - k)."""
    on_f, on_g = np.isfinite(f_ref), np.isfinite(g_ref)
    assert (np.isfinite(f) == on_f).all() and (np.isfinite(g) == on_g).all()
    k = np.mean(f[on_f] - f_ref[on_f])
    assert np.abs(f[on_f] - f_ref[on_f] - k).max() <= atol
    assert np.abs(g[on_g] - g_ref[on_g] + k).max() <= atol


@pytest.mark.parametrize("cost", COSTS)
@pytest.mark.parametrize("zeros", [False, True])
def test_matches_dense_sinkhorn(backend, cost, zeros):
    x, y, a, b = cloud(41, 29, seed=1, zeros=zeros)
    C = dense_cost(x, y, cost)
    reg = 0.05 * C.mean()
    tol = 1e-12
    ref = sinkhorn(a, b, C, reg, tol=tol)
    res = sinkhorn_points(x, y, a, b, reg, cost=cost, backend=backend, tol=tol, block=8)
    assert res.status is Status.OPTIMAL and ref.status is Status.OPTIMAL
    assert isinstance(res.x, PointCloudPlan) and res.x.shape == (41, 29)
    P = res.x.materialize()
    assert np.abs(P - ref.x).max() <= 1e-9 * ref.x.max()
    assert abs(res.objective - ref.objective) <= 1e-9 * abs(ref.objective)
    assert abs(res.info["transport_cost"] - ref.info["transport_cost"]) <= 1e-9 * ref.info[
        "transport_cost"]
    same_up_to_constant(res.dual[0], ref.dual[0], res.dual[1], ref.dual[1], atol=1e-9 * C.max())
    assert res.info["relative_marginal_error"] <= tol
    assert abs(res.info["dual_objective"] - res.objective) <= 1e-9 * abs(res.objective)
    # the plan is the one the potentials define, in the user's units
    f, g = res.dual
    with np.errstate(invalid="ignore"):
        P_pot = np.exp((f[:, None] + g[None, :] - C) / reg)
    assert np.allclose(P, np.nan_to_num(P_pot), rtol=1e-10, atol=1e-14)


def test_lazy_plan_operations():
    backend = "numpy"  # the passes are the same code on JAX (checked by the tests around)
    x, y, a, b = cloud(23, 17, d=3, seed=2)
    res = sinkhorn_points(x, y, a, b, 0.05, backend=backend, tol=1e-10, block=5)
    plan = res.x
    P = np.asarray(plan)
    rng = np.random.default_rng(0)
    v, V = rng.standard_normal(17), rng.standard_normal((17, 4))
    u, U = rng.standard_normal(23), rng.standard_normal((23, 2))
    assert np.allclose(plan.apply(v), P @ v, rtol=1e-12, atol=1e-15)
    assert np.allclose(plan.apply(V), P @ V, rtol=1e-12, atol=1e-15)
    assert np.allclose(plan.apply_transpose(u), P.T @ u, rtol=1e-12, atol=1e-15)
    assert np.allclose(plan.apply_transpose(U), P.T @ U, rtol=1e-12, atol=1e-15)
    rows, cols = plan.marginals()
    assert np.allclose(rows, P.sum(1)) and np.allclose(cols, P.sum(0))
    C = dense_cost(x, y, "sqeuclidean")
    assert math.isclose(plan.cost(), float(np.vdot(C, P)), rel_tol=1e-12)
    assert math.isclose(plan.entropy(), float(np.sum(P * np.log(P))), rel_tol=1e-12)
    # <C, P> at fixed P: d/dx_i = 2 (sum_j P_ij) x_i - 2 (P y)_i
    gx, gy = plan.grad_cost()
    assert np.allclose(gx, 2 * (P.sum(1)[:, None] * x - P @ y), atol=1e-14)
    assert np.allclose(gy, 2 * (P.sum(0)[:, None] * y - P.T @ x), atol=1e-14)
    with pytest.raises(ValueError, match="max_entries"):
        plan.materialize(max_entries=100)
    with pytest.raises(ValueError, match="shape"):
        plan.apply(np.ones(5))
    assert "PointCloudPlan(shape=(23, 17)" in repr(plan)
    # a plan from potentials in the user's units, built directly
    again = PointCloudPlan(x, y, *res.dual, 0.05, backend=backend, block=100)
    assert np.allclose(np.asarray(again), P, rtol=1e-12, atol=1e-16)


def test_scale_and_translation_invariance():
    x, y, a, b = cloud(30, 20, seed=3)
    base = sinkhorn_points(x, y, a, b, 0.01, tol=1e-9, backend="numpy")
    s, t = 7.0, np.array([100.0, -40.0])
    moved = sinkhorn_points(s * x + t, s * y + t, 3 * a, 3 * b, 0.01 * s**2, tol=1e-9,
                            backend="numpy")
    assert moved.status is base.status is Status.OPTIMAL
    assert moved.iterations == base.iterations
    assert np.allclose(np.asarray(moved.x), 3 * np.asarray(base.x), rtol=1e-8, atol=1e-14)
    assert math.isclose(moved.info["transport_cost"], 3 * s**2 * base.info["transport_cost"],
                        rel_tol=1e-8)


def test_float32_status_is_honest():
    x, y, a, b = cloud(60, 50, seed=4)
    ok = sinkhorn_points(x, y, a, b, 0.02, dtype="float32", tol=1e-4)
    assert ok.status is Status.OPTIMAL and ok.info["relative_marginal_error"] <= 1e-4
    ref = sinkhorn_points(x, y, a, b, 0.02, tol=1e-10)
    assert abs(ok.objective - ref.objective) <= 1e-3 * abs(ref.objective)
    tight = sinkhorn_points(x, y, a, b, 0.02, dtype="float32", tol=1e-11, max_iter=2000)
    assert tight.status in (Status.MAX_ITER, Status.OPTIMAL_INACCURATE), tight
    assert tight.info["relative_marginal_error"] > 1e-11


def test_float32_refined_in_float64():
    """refine=True: a float32 answer short of tol goes on in float64 from its potentials."""
    x, y, a, b = cloud(60, 50, seed=4)
    short = sinkhorn_points(x, y, a, b, 0.02, dtype="float32", tol=1e-9)
    assert short.status is Status.OPTIMAL_INACCURATE
    res = sinkhorn_points(x, y, a, b, 0.02, dtype="float32", tol=1e-9, refine=True)
    assert res.status is Status.OPTIMAL and res.info["relative_marginal_error"] <= 1e-9
    assert res.info["float32_iterations"] == short.iterations < res.iterations
    ref = sinkhorn_points(x, y, a, b, 0.02, tol=1e-11)
    assert abs(res.objective - ref.objective) <= 1e-8 * abs(ref.objective)
    loose = sinkhorn_points(x, y, a, b, 0.02, dtype="float32", tol=1e-4, refine=True)
    assert "float32_iterations" not in loose.info  # met in float32: nothing to refine
    with pytest.raises(TypeError, match="refine"):
        sinkhorn_points(x, y, a, b, 0.02, refine="yes")


def test_warm_start(backend):
    x, y, a, b = cloud(41, 29, seed=5)  # block 8: the compiled shapes of the dense comparison
    cold = sinkhorn_points(x, y, a, b, 0.01, backend=backend, tol=1e-9, block=8)
    warm = sinkhorn_points(x, y, a, b, 0.01, backend=backend, tol=1e-9, block=8, warm_start=cold)
    assert warm.status is Status.OPTIMAL and warm.iterations <= 10 < cold.iterations
    pair = sinkhorn_points(x, y, a, b, 0.01, backend=backend, tol=1e-9, block=8,
                           warm_start=cold.dual)
    assert pair.iterations == warm.iterations
    with pytest.raises(ValueError, match="warm_start"):
        sinkhorn_points(x, y, a, b, 0.01, warm_start=(np.zeros(3), np.zeros(25)))
    with pytest.raises(ValueError, match="warm_start"):
        sinkhorn_points(x, y, a, b, 0.01, warm_start=sinkhorn(a, b, dense_cost(x, y, "sqeuclidean"),
                                                              0.01))


@pytest.mark.parametrize("cost", COSTS)
def test_gradients_match_finite_differences(cost):
    x, y, a, b = cloud(25, 20, seed=6)
    reg = 0.02
    out = sinkhorn_points_value_and_grad(x, y, a, b, reg, cost=cost, tol=1e-13, backend="numpy")
    assert out.result.status is Status.OPTIMAL
    assert out.grad_x.shape == x.shape and out.grad_y.shape == y.shape
    rng = np.random.default_rng(1)
    h = 1e-5
    for _ in range(3):
        vx, vy = rng.standard_normal(x.shape), rng.standard_normal(y.shape)

        def W(t):
            return sinkhorn_points_value_and_grad(x + t * vx, y + t * vy, a, b, reg, cost=cost,
                                                  tol=1e-13, backend="numpy").value

        fd = (W(h) - W(-h)) / (2 * h)
        exact = np.vdot(out.grad_x, vx) + np.vdot(out.grad_y, vy)
        assert abs(fd - exact) <= 1e-6 * abs(exact), (fd, exact)


def _ott():
    ott = pytest.importorskip("ott")
    import jax.interpreters.batching as batching
    from jax._src.interpreters import batching as batching_impl

    # OTT-JAX 0.6's online PointCloud (batch_size) reads a name JAX 0.10 made private
    if not hasattr(batching, "is_vmappable"):
        batching.is_vmappable = batching_impl.is_vmappable
    return ott


def ott_value_and_grad(x, y, a, b, reg, cost, **solver_options):
    """OTT-JAX's reg_ot_cost and its gradients w.r.t. the points (online PointCloud)."""
    _ott()
    import jax
    import jax.numpy as jnp
    from ott.geometry import costs, pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn as ott_sinkhorn

    cost_fn = costs.SqEuclidean() if cost == "sqeuclidean" else costs.Euclidean()

    def value(x, y):
        geom = pointcloud.PointCloud(x, y, cost_fn=cost_fn, epsilon=reg, batch_size=16)
        prob = linear_problem.LinearProblem(geom, jnp.asarray(a), jnp.asarray(b))
        solver = ott_sinkhorn.Sinkhorn(threshold=1e-12, max_iterations=100_000, **solver_options)
        return solver(prob).reg_ot_cost

    with jax.enable_x64(True):
        v, (gx, gy) = jax.value_and_grad(value, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(y))
    return float(v), np.asarray(gx), np.asarray(gy)


@pytest.mark.slow  # OTT's Sinkhorn compiles for 10-25 s on 2 CPU cores
@pytest.mark.parametrize("cost, options", [
    ("sqeuclidean", {}), ("euclidean", {}),
    pytest.param("sqeuclidean", {"use_danskin": False}, id="sqeuclidean-implicit")])
def test_gradients_match_ott(cost, options):
    """OTT's default gradient of reg_ot_cost (Danskin: the potentials' gradients stopped, the
    envelope theorem as here) and, with use_danskin=False, its implicit differentiation of the
    Sinkhorn fixed point (the potentials' own derivatives, which vanish to first order)."""
    x, y, a, b = cloud(40, 30, seed=7)
    reg = 0.05
    v, gx, gy = ott_value_and_grad(x, y, a, b, reg, cost, **options)
    ours = sinkhorn_points_value_and_grad(x, y, a, b, reg, cost=cost, tol=1e-12)
    assert np.abs(gx - ours.grad_x).max() <= 1e-8 * np.abs(gx).max()
    assert np.abs(gy - ours.grad_y).max() <= 1e-8 * np.abs(gy).max()
    # OTT's entropy is KL(P || a b^T): its value is ours + reg (H(a) + H(b)), H(a) = -sum a log a
    entropies = -np.sum(a * np.log(a)) - np.sum(b * np.log(b))
    assert math.isclose(v, ours.value + reg * entropies, rel_tol=1e-9)


def test_jax_grad_of_the_value():
    import jax
    import jax.numpy as jnp

    x, y, a, b = cloud(41, 29, seed=1)  # the shapes of test_matches_dense_sinkhorn: compiled
    ref = sinkhorn_points_value_and_grad(x, y, a, b, 0.05, tol=1e-11, block=8)
    with jax.enable_x64(True):
        fn = jax.jit(jax.value_and_grad(
            lambda x, y: sinkhorn_points_value(x, y, a, b, 0.05, tol=1e-11, block=8),
            argnums=(0, 1)))
        v, (gx, gy) = fn(jnp.asarray(x), jnp.asarray(y))
    assert math.isclose(float(v), ref.value, rel_tol=1e-14)
    assert np.array_equal(np.asarray(gx), ref.grad_x) and np.array_equal(np.asarray(gy), ref.grad_y)
    with pytest.raises(Exception, match="max_iter"):
        float(sinkhorn_points_value(x, y, a, b, 0.05, max_iter=2))
    with pytest.raises(ValueError, match="typo"):
        sinkhorn_points_value(x, y, a, b, 0.05, typo=1)


@pytest.mark.parametrize("call, match", [
    (lambda x, y: sinkhorn_points(x, y[:, :1], reg=0.1), "same dimension"),
    (lambda x, y: sinkhorn_points(np.where(x > 0.5, np.nan, x), y, reg=0.1), "x"),
    (lambda x, y: sinkhorn_points(x, y, -np.ones(len(x)), reg=0.1), "negative"),
    (lambda x, y: sinkhorn_points(x, y, reg=0.1, cost="cosine"), "cost"),
    (lambda x, y: sinkhorn_points(x, y), "reg is required"),
    (lambda x, y: sinkhorn_points(x, y, reg=-1.0), "reg"),
    (lambda x, y: sinkhorn_points(x, y, np.ones(3), reg=0.1), "one weight per point"),
    (lambda x, y: sinkhorn_points(x[:, 0], y, reg=0.1), "points"),
    (lambda x, y: sinkhorn_points(x, y, reg=0.1, block=0), "block"),
    (lambda x, y: sinkhorn_points(x, y, reg=0.1, backend="numpy", mesh=object()), "mesh"),
    (lambda x, y: sinkhorn_points(x, y, reg=0.1, backend="torch"), "backend"),
    (lambda x, y: sinkhorn_points(1e-10 * x, 1e-10 * y, reg=1e300), "not representable"),
    (lambda x, y: OptimalTransport.from_points(x, y), "reg"),
    (lambda x, y: OptimalTransport.from_points(x, y, reg=0.1, cost="l1"), "cost"),
])
def test_bad_input_raises(call, match):
    x, y, _, _ = cloud(6, 5)
    with pytest.raises(ValueError, match=match):
        call(x, y)


def test_problem_from_points():
    x, y, a, b = cloud(8, 6, seed=9)
    prob = OptimalTransport.from_points(x, y, a, b, reg=0.05)
    assert isinstance(prob, PointCloudTransport) and prob.default_method() == "sinkhorn_points"
    res = prob.solve(tol=1e-10, backend="numpy")
    assert res.method == "sinkhorn_points"
    rep = prob.check(res, rtol=1e-8, atol=1e-9)  # against dense Sinkhorn at tol 1e-12
    assert rep.ok and rep.distance < 1e-8, rep
    clarabel = prob.check(res, rtol=1e-6, atol=1e-8, reference=prob.reference(solver="CLARABEL"))
    assert clarabel.ok, clarabel
    dense = prob.solve(method="sinkhorn", tol=1e-10)  # the dense solver on the made C
    assert np.allclose(dense.x, np.asarray(res.x), atol=1e-10)
    assert math.isclose(prob.objective(dense.x), prob.objective(res.x), rel_tol=1e-9)
    cvx, P = prob.to_cvxpy()
    assert P.shape == (8, 6)
    with pytest.raises(ValueError, match="cost"):
        prob.solve(cost="euclidean")  # set by the problem
    big = OptimalTransport.from_points(np.zeros((20_000, 1)), np.ones((20_000, 1)), reg=1.0)
    with pytest.raises(ValueError, match="sinkhorn_points"):
        big.C


def _peak_rss_script(n, block):
    return textwrap.dedent(f"""
        import numpy as np
        from cvxkit.solvers.sinkhorn_points import sinkhorn_points
        rng = np.random.default_rng(0)
        x, y = rng.random(({n}, 2)), rng.random(({n}, 2))
        res = sinkhorn_points(x, y, reg=0.05, tol=1e-3, block={block})
        peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
        print(res.status.value, res.iterations, res.info["relative_marginal_error"], int(peak))
    """)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (VmHWM)")
def test_twenty_thousand_points_in_bounded_memory():
    """n = m = 20,000 in 2-D with block 1024: one dense float64 cost matrix would be 3.2 GB; the
    whole process peaks far below it (measured: 0.65 GB, of which 0.16 GB is JAX's own; 18
    iterations, 2-4 minutes on 2 shared CPU cores)."""
    out = subprocess.run([sys.executable, "-c", _peak_rss_script(20_000, 1024)],
                         capture_output=True, text=True, timeout=900,
                         cwd=pathlib.Path(__file__).parent)
    assert out.returncode == 0, out.stderr[-3000:]
    status, iterations, err, peak_kb = out.stdout.split()[-4:]
    assert status == "optimal" and float(err) <= 1e-3
    assert int(peak_kb) < 1_500_000, peak_kb  # < 1.5 GB, under half of one dense matrix


MESH_CODE = """
import sys
sys.path.insert(0, {tests!r})
import numpy as np, jax
from jax.sharding import Mesh
from cvxkit.solvers.sinkhorn_points import sinkhorn_points
assert len(jax.devices()) == 4
rng = np.random.default_rng(0)
x, y = rng.random((203, 3)), rng.random((150, 3))
a = rng.random(203) + 0.1
a[5] = 0.0
a /= a.sum()
mesh = Mesh(np.array(jax.devices()), ("rows",))
for cost in {costs!r}:
    one = sinkhorn_points(x, y, a, None, 0.01, cost=cost, tol=1e-10, block=16)
    four = sinkhorn_points(x, y, a, None, 0.01, cost=cost, tol=1e-10, block=16, mesh=mesh)
    assert one.status.value == four.status.value == "optimal"
    assert one.iterations == four.iterations, (one.iterations, four.iterations)
    on = a > 0
    assert np.abs(one.dual[0][on] - four.dual[0][on]).max() < 1e-12
    assert np.isneginf(four.dual[0][5])
    assert np.abs(one.dual[1] - four.dual[1]).max() < 1e-12
    assert abs(one.objective - four.objective) <= 1e-12 * abs(one.objective)
print("OK")
"""


@pytest.mark.parametrize("costs", [("sqeuclidean",), pytest.param(("euclidean",),
                                                                   marks=pytest.mark.slow)])
def test_mesh_of_four_host_devices_equals_one_device(costs):
    run_on_host_devices(MESH_CODE.replace("{costs!r}", repr(costs)), 4)
