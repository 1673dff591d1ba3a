"""Solvers called inside jax.jit, jax.vmap and jax.grad (traced inputs, implicit gradients)."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

from cvxkit.solvers import Result, Status, admm_qp  # noqa: E402

TOL = 1e-10


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def qp(seed=1, n=10, m=6):
    """A strongly convex QP whose solution has some active rows (not all)."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    P = M @ M.T / n + 0.1 * np.eye(n)
    A = rng.standard_normal((m, n))
    return P, rng.standard_normal(n), A, -0.3 * rng.random(m), 0.3 * rng.random(m)


def solve(P, q, A, l, u, **kw):
    return admm_qp(P, q, A, l, u, backend="jax", tol=TOL, **kw)


def test_jit_equals_host_solve():
    P, q, A, l, u = qp()
    host = admm_qp(P, q, A, l, u, tol=TOL)
    res = jax.jit(solve)(*map(jnp.asarray, (P, q, A, l, u)))
    assert isinstance(res, Result) and Status(int(res.status)) is Status.OPTIMAL
    np.testing.assert_allclose(res.x, host.x, atol=1e-9)
    np.testing.assert_allclose(res.dual, host.dual, atol=1e-9)
    assert float(res.objective) == pytest.approx(host.objective, rel=1e-9)
    assert int(res.iterations) == host.iterations


def test_jit_vmap_equals_loop_of_single_solves():
    P, q, A, l, u = qp(seed=2)
    Q = q + 0.3 * np.random.default_rng(0).standard_normal((6, q.size))
    batch = jax.jit(jax.vmap(lambda q: solve(P, q, A, l, u)))(jnp.asarray(Q))
    assert batch.x.shape == (6, q.size) and batch.status.shape == (6,)
    for i in range(6):
        one = admm_qp(P, Q[i], A, l, u, tol=TOL)
        assert Status(int(batch.status[i])) is one.status is Status.OPTIMAL
        np.testing.assert_allclose(batch.x[i], one.x, atol=1e-9)
        assert float(batch.objective[i]) == pytest.approx(one.objective, rel=1e-9)


def test_gradients_match_central_finite_differences():
    P, q, A, l, u = qp(seed=3, m=10)
    assert 0 < int(np.sum(np.abs(admm_qp(P, q, A, l, u, tol=TOL).dual) > 1e-8)) < 10  # a mix

    def loss(P, q, A, l, u):
        r = solve(P, q, A, l, u)
        return jnp.sum(r.x ** 2) + jnp.sum(jnp.sin(r.dual))

    args = [jnp.asarray(v) for v in (P, q, A, l, u)]
    grads = jax.grad(loss, argnums=(0, 1, 2, 3, 4))(*args)
    rng, h = np.random.default_rng(5), 1e-6
    for i, name in enumerate("PqAlu"):
        e = rng.standard_normal(args[i].shape)
        e = e + e.T if name == "P" else e  # P stays symmetric
        plus, minus = list(args), list(args)
        plus[i], minus[i] = args[i] + h * e, args[i] - h * e
        fd = (loss(*plus) - loss(*minus)) / (2 * h)
        assert float(jnp.sum(grads[i] * e)) == pytest.approx(float(fd), rel=1e-6, abs=1e-8), name


def test_objective_gradient_is_the_envelope_formula():
    """d objective / d q = x* and d objective / d u = y+ (the multipliers of the upper bounds)."""
    P, q, A, l, u = qp(seed=3)
    gq, gu = jax.grad(lambda q, u: solve(P, q, A, l, u).objective, argnums=(0, 1))(
        jnp.asarray(q), jnp.asarray(u))
    ref = admm_qp(P, q, A, l, u, tol=TOL)
    np.testing.assert_allclose(gq, ref.x, atol=1e-8)
    np.testing.assert_allclose(gu, -np.maximum(ref.dual, 0), atol=1e-8)


def test_unconstrained_and_infeasible_inside_jit():
    P, q, _, _, _ = qp()
    res = jax.jit(lambda q: admm_qp(P, q, backend="jax", tol=TOL))(jnp.asarray(q))
    np.testing.assert_allclose(res.x, np.linalg.solve(P, -q), atol=1e-8)
    A = np.ones((2, q.size))
    bad = jax.jit(lambda u: admm_qp(P, q, A, np.array([1.0, -np.inf]), u, backend="jax"))(
        jnp.array([np.inf, 0.0]))
    assert Status(int(bad.status)) is Status.PRIMAL_INFEASIBLE and bool(jnp.isnan(bad.x).all())


def test_traced_call_needs_the_jax_backend():
    P, q, A, l, u = qp()
    with pytest.raises(ValueError, match="backend='jax'"):
        jax.jit(lambda q: admm_qp(P, q, A, l, u).x)(jnp.asarray(q))


def test_status_codes_round_trip():
    for s in Status:
        assert Status(s.code) is s
    with pytest.raises(ValueError):
        Status(99)


def lp(seed=0, m=8, n=12):
    """A feasible bounded LP: rows K x >= lc, 0 <= x <= 3, positive costs."""
    rng = np.random.default_rng(seed)
    K = rng.standard_normal((m, n))
    lc = K @ rng.random(n) - rng.random(m)
    return rng.random(n) + 0.1, K, lc, np.full(m, np.inf), np.zeros(n), np.full(n, 3.0)


def test_lp_jit_vmap_and_value_gradients():
    from cvxkit.solvers import halpern_pdhg

    c, K, lc, uc, lv, uv = lp()

    def solve_lp(c, K, lc):
        return halpern_pdhg(c, K, lc, uc, lv, uv, backend="jax", tol=1e-9)

    host = halpern_pdhg(c, K, lc, uc, lv, uv, tol=1e-9)
    res = jax.jit(solve_lp)(jnp.asarray(c), jnp.asarray(K), jnp.asarray(lc))
    assert Status(int(res.status)) is Status.OPTIMAL
    assert float(res.objective) == pytest.approx(host.objective, rel=1e-12)
    # envelope: d value / dc = x*, d value / d lc = y* (multipliers of the row lower bounds)
    gc, gK, gl = jax.grad(lambda *a: solve_lp(*a).objective, argnums=(0, 1, 2))(
        jnp.asarray(c), jnp.asarray(K), jnp.asarray(lc))
    np.testing.assert_allclose(gc, host.x, atol=1e-8)
    np.testing.assert_allclose(gl, host.dual, atol=1e-7)
    e, h = np.random.default_rng(1).standard_normal(K.shape), 1e-6
    fd = (halpern_pdhg(c, K + h * e, lc, uc, lv, uv, tol=1e-11).objective
          - halpern_pdhg(c, K - h * e, lc, uc, lv, uv, tol=1e-11).objective) / (2 * h)
    assert float(jnp.sum(gK * e)) == pytest.approx(fd, rel=1e-6)
    C = c + 0.05 * np.random.default_rng(2).random((3, c.size))
    batch = jax.jit(jax.vmap(lambda c: solve_lp(c, K, lc)))(jnp.asarray(C))
    for i in range(3):
        assert float(batch.objective[i]) == pytest.approx(
            halpern_pdhg(C[i], K, lc, uc, lv, uv, tol=1e-9).objective, rel=1e-12)


def ot_instance(seed=0, n=7, m=9):
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) + 0.2, rng.random(m) + 0.2
    return a / a.sum(), b / b.sum(), rng.random((n, m))


def test_sinkhorn_jit_vmap_and_gradients():
    from cvxkit.solvers import sinkhorn

    a, b, C = ot_instance()
    reg, n, m = 0.1, a.size, b.size
    host = sinkhorn(a, b, C, reg, tol=1e-12)
    res = jax.jit(lambda C: sinkhorn(a, b, C, reg, backend="jax", tol=1e-12))(jnp.asarray(C))
    assert Status(int(res.status)) is Status.OPTIMAL
    np.testing.assert_allclose(res.x, host.x, atol=1e-14)
    # closed form: d W_eps / d C = P*
    gC = jax.grad(lambda C: sinkhorn(a, b, C, reg, backend="jax", tol=1e-12).objective)(
        jnp.asarray(C))
    np.testing.assert_allclose(gC, host.x, atol=1e-12)
    weights = jnp.arange(n * m).reshape(n, m)

    def loss(a, b, C, **kw):
        return jnp.sum(sinkhorn(a, b, C, reg, backend="jax", tol=1e-13, **kw).x ** 2 * weights)

    rng, h = np.random.default_rng(3), 1e-6
    for kw, bb in (({}, b), ({"reg_m": 0.5}, 1.5 * b)):  # balanced, unbalanced
        grads = jax.grad(lambda *t: loss(*t, **kw), argnums=(0, 1, 2))(
            jnp.asarray(a), jnp.asarray(bb), jnp.asarray(C))
        for i, base in enumerate((a, bb, C)):
            e = rng.standard_normal(base.shape)
            if not kw and i < 2:
                e -= e.mean()  # balanced: keep the masses equal
            args_p = [a, bb, C]
            args_m = [a, bb, C]
            args_p[i], args_m[i] = base + h * e, base - h * e
            fd = (loss(*args_p, **kw) - loss(*args_m, **kw)) / (2 * h)
            assert float(jnp.sum(grads[i] * e)) == pytest.approx(float(fd), rel=1e-6), (kw, i)
    Cs = C + 0.1 * np.random.default_rng(4).random((3, n, m))
    batch = jax.jit(jax.vmap(lambda C: sinkhorn(a, b, C, reg, backend="jax", tol=1e-12)))(
        jnp.asarray(Cs))
    for i in range(3):
        assert float(batch.objective[i]) == pytest.approx(
            sinkhorn(a, b, Cs[i], reg, tol=1e-12).objective, rel=1e-12)


def test_mirror_sinkhorn_jit_and_vmap_not_grad():
    from cvxkit.solvers import mirror_sinkhorn

    a, b, C = ot_instance(n=6, m=5)

    def solve_ms(C):
        return mirror_sinkhorn(a, b, C, backend="jax", tol=1e-3, max_iter=3000)

    host = mirror_sinkhorn(a, b, C, tol=1e-3, max_iter=3000)
    res = jax.jit(solve_ms)(jnp.asarray(C))
    assert Status(int(res.status)) is host.status
    np.testing.assert_allclose(res.x, host.x, atol=1e-14)
    batch = jax.vmap(solve_ms)(jnp.asarray(np.stack([C, 2 * C])))
    assert batch.x.shape == (2,) + C.shape
    np.testing.assert_allclose(batch.x[0], host.x, atol=1e-14)
    with pytest.raises(ValueError, match="JVP"):
        jax.grad(lambda C: solve_ms(C).objective)(jnp.asarray(C))
