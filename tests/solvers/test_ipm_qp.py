"""ipm_qp: the interior point QP solver against CVXPY/Clarabel, on both back ends, inside
jax.jit / vmap, and its implicit gradients against central finite differences."""
import cvxpy as cp
import numpy as np
import pytest

from cvxkit.problems import QuadraticProgram
from cvxkit.solvers import Status
from cvxkit.solvers.ipm_qp import ipm_qp

jax = pytest.importorskip("jax")
jnp = jax.numpy


def random_qp(seed, n=6, m=9, infinite=True):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    P = M @ M.T / n + 1e-2 * np.eye(n)
    A = rng.standard_normal((m, n))
    l, u = -rng.random(m), rng.random(m)
    if infinite:
        l[0], u[1] = -np.inf, np.inf
    return P, rng.standard_normal(n), A, l, u


def clarabel(P, q, A, l, u):
    x = cp.Variable(q.size)
    fu, fl = np.isfinite(u), np.isfinite(l)
    cons = [A[fu] @ x <= u[fu], A[fl] @ x >= l[fl]]
    prob = cp.Problem(cp.Minimize(0.5 * cp.quad_form(x, cp.psd_wrap(P)) + q @ x), cons)
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    y = np.zeros(A.shape[0])
    y[fu] += cons[0].dual_value
    y[fl] -= cons[1].dual_value
    return x.value, y, prob.value


@pytest.mark.parametrize("seed", range(4))
def test_matches_clarabel(seed):
    P, q, A, l, u = random_qp(seed)
    tol = 1e-9
    res = ipm_qp(P, q, A, l, u, tol=tol)
    x, y, val = clarabel(P, q, A, l, u)
    assert res.status is Status.OPTIMAL, res.message
    # primal and dual errors are bounded by the residuals over the curvature (1e-2 here)
    assert np.abs(res.x - x).max() <= 1e3 * tol
    assert np.abs(res.dual - y).max() <= 1e3 * tol
    assert abs(res.objective - val) <= 10 * tol * max(1.0, abs(val))
    assert res.iterations <= 30


def test_problem_method_no_constraints_and_jax_backend():
    P, q, A, l, u = random_qp(7)
    prob = QuadraticProgram(P, q, A, l, u)
    res = prob.solve(method="ipm", tol=1e-9)
    assert res.status is Status.OPTIMAL and prob.check(res).ok
    rj = ipm_qp(P, q, A, l, u, tol=1e-9, backend="jax")
    assert rj.status is Status.OPTIMAL and rj.iterations == res.iterations
    assert np.abs(rj.x - res.x).max() <= 1e-10
    free = ipm_qp(P, q, tol=1e-10)
    assert free.status is Status.OPTIMAL
    assert np.abs(free.x + np.linalg.solve(P, q)).max() <= 1e-7


def test_infeasible_is_never_optimal_and_warm_start():
    # x1 >= 1 and x1 <= 0
    res = ipm_qp(np.eye(2), np.zeros(2), np.array([[1.0, 0.0], [1.0, 0.0]]),
                 np.array([1.0, -np.inf]), np.array([np.inf, 0.0]))
    assert res.status in (Status.MAX_ITER, Status.NUMERICAL_ERROR), res.status
    assert res.message
    P, q, A, l, u = random_qp(2)
    cold = ipm_qp(P, q, A, l, u)
    warm = ipm_qp(P, q, A, l, u, warm_start=cold)
    assert warm.status is Status.OPTIMAL and warm.iterations == 0
    pair = ipm_qp(P, q, A, l, u, warm_start=(cold.x, cold.dual))
    assert pair.status is Status.OPTIMAL


def test_jit_vmap_equals_the_loop():
    jax.config.update("jax_enable_x64", True)
    data = [random_qp(s, infinite=False) for s in range(5)]
    P, q, A, l, u = (np.stack(v) for v in zip(*data))
    batched = jax.jit(jax.vmap(lambda *t: ipm_qp(*t, tol=1e-10)))(*map(jnp.asarray, (P, q, A, l, u)))
    for i in range(5):
        one = ipm_qp(P[i], q[i], A[i], l[i], u[i], tol=1e-10)
        assert Status(int(batched.status[i])) is Status.OPTIMAL
        assert np.abs(np.asarray(batched.x[i]) - one.x).max() <= 1e-9


def test_gradients_match_finite_differences():
    """Gradients of a loss of x and of the duals with respect to P, q, A, l, u."""
    jax.config.update("jax_enable_x64", True)
    P, q, A, l, u = random_qp(2)  # 3 upper and 3 lower bounds active
    y = ipm_qp(P, q, A, l, u).dual
    assert (y > 1e-6).sum() >= 2 and (y < -1e-6).sum() >= 2
    rng = np.random.default_rng(9)
    wx, wy = rng.standard_normal(q.size), rng.standard_normal(l.size)

    def loss(P, q, A, l, u):
        r = ipm_qp(P, q, A, l, u, tol=1e-13, max_iter=200)
        return r.x @ wx + r.dual @ wy

    args = [P, q, A, l, u]
    grads = jax.grad(loss, argnums=range(5))(*map(jnp.asarray, args))
    h = 1e-6
    for k, g in enumerate(grads):
        g = np.asarray(g)
        for idx in np.ndindex(g.shape):
            if not np.isfinite(args[k][idx]):
                continue
            E = np.zeros_like(args[k])
            E[idx] = h
            if k == 0:  # P stays symmetric: the perturbation hits both triangles
                E = E + E.T - np.diag(np.diag(E))
            fd = (loss(*[a + E if j == k else a for j, a in enumerate(args)])
                  - loss(*[a - E if j == k else a for j, a in enumerate(args)])) / (2 * h)
            exact = g[idx] + (g[idx[::-1]] if k == 0 and idx[0] != idx[1] else 0.0)
            assert abs(fd - exact) <= 1e-6 * max(1.0, abs(fd)), (k, idx, fd, exact)


def test_gradient_at_an_interior_solution_found_at_the_start():
    """q = 0: x = 0 passes the tests of x and y at iteration 0 (z_u = z_l = 1), far from the
    central path; the interior point's own gap keeps it iterating, so the implicit gradient
    is the true one, -P^{-1} w for the interior solution."""
    jax.config.update("jax_enable_x64", True)
    P, _, A, _, _ = random_qp(4, infinite=False)
    w = np.arange(1.0, P.shape[0] + 1)
    m = A.shape[0]
    g = jax.grad(lambda q: ipm_qp(P, q, A, -np.ones(m), np.ones(m), tol=1e-10).x @ w)(
        jnp.zeros(P.shape[0]))
    assert np.abs(np.asarray(g) + np.linalg.solve(P, w)).max() <= 1e-6
