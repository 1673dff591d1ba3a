"""The shared driver, Result, registry and back ends, on a toy fixed-point iteration."""
import dataclasses

import numpy as np
import pytest

from cvxkit.solvers import Result, Status, get_method, methods
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.driver import Algorithm, Options, run, while_solve

# x <- cos(x) componentwise converges linearly to the Dottie number 0.739085133215...
DOTTIE = 0.7390851332151607


def _step(bk, x, d):
    return bk.xp.cos(x)


def _monitor(bk, x, d):
    return {"residual": bk.xp.max(bk.xp.abs(bk.xp.cos(x) - x))}


def _converged(bk, x, d):
    return bk.xp.max(bk.xp.abs(bk.xp.cos(x) - x)) <= d


COS = Algorithm("cos", _step, _monitor, _converged)


def test_driver_converges_on_both_backends(backend):
    bk = get_backend(backend)
    with bk.precision():
        out = run(COS, bk, bk.asarray([0.0, 1.0, 2.0]), bk.asarray(1e-12), Options(tol=1e-12))
    assert out.status is Status.OPTIMAL
    np.testing.assert_allclose(np.asarray(out.state), DOTTIE, atol=1e-11)
    assert out.history["residual"][-1] <= 1e-12
    assert list(out.history["iteration"]) == sorted(out.history["iteration"])


def test_driver_limits_and_callback(backend):
    bk = get_backend(backend)
    with bk.precision():
        x0, tol = bk.asarray([0.0]), bk.asarray(-1.0)  # never met
        assert run(COS, bk, x0, tol, Options(max_iter=5)).status is Status.MAX_ITER
        out = run(COS, bk, x0, tol, Options(max_iter=10**9, time_limit=0.05))
        assert out.status is Status.TIME_LIMIT
        seen = []
        out = run(COS, bk, x0, tol, Options(callback=lambda info: seen.append(info) or len(seen) == 3))
        assert out.status is Status.INTERRUPTED and len(seen) == 3 and "residual" in seen[0]


def test_driver_nan_is_numerical_error():
    bk = get_backend("numpy")
    out = run(COS, bk, np.array([np.nan]), 1e-9, Options())
    assert out.status is Status.NUMERICAL_ERROR


def test_verbose_table(capsys):
    bk = get_backend("numpy")
    run(COS, bk, np.array([0.0]), 1e-10, Options(verbose=True))
    out = capsys.readouterr().out
    assert "iter" in out and "residual" in out and "status: optimal" in out


def test_while_solve_under_vmap_matches_single():
    import jax

    bk = get_backend("jax")
    with bk.precision():
        x0 = bk.asarray(np.linspace(-3, 3, 7)[:, None])
        tol = bk.asarray(np.full(7, 1e-12))
        xs, its = jax.jit(jax.vmap(lambda x, t: while_solve(COS, bk, x, t, 1000)))(x0, tol)
        for i in range(7):
            xi, iti = while_solve(COS, bk, x0[i], tol[i], 1000)
            assert int(iti) == int(its[i])
            np.testing.assert_allclose(np.asarray(xs[i]), np.asarray(xi), rtol=0, atol=0)
    np.testing.assert_allclose(np.asarray(xs), DOTTIE, atol=1e-11)


def test_jax_float64_does_not_leak():
    import jax.numpy as jnp

    bk = get_backend("jax")
    with bk.precision():
        assert bk.asarray([1.0]).dtype == jnp.float64
    assert jnp.zeros(1).dtype == jnp.float32  # the user's default is untouched


@pytest.mark.parametrize("bad", [dict(tol=0), dict(tol=float("nan")), dict(max_iter=0),
                                 dict(max_iter=2.5), dict(time_limit=-1), dict(check_every=0),
                                 dict(callback=3), dict(dtype="float16")])
def test_options_validation(bad):
    with pytest.raises(ValueError):
        Options(**bad)


def test_registry_and_errors():
    ms = methods()
    assert {"sinkhorn", "network_simplex", "mirror_sinkhorn"} <= set(ms)
    assert ms["sinkhorn"].backends == ("numpy", "jax")
    with pytest.raises(ValueError, match="valid choices: .*sinkhorn"):
        get_method("simplex")
    with pytest.raises(ValueError, match="valid choices: numpy"):
        get_method("network_simplex", "jax")
    with pytest.raises(ValueError, match="valid choices: numpy, jax"):
        get_backend("torch")
    for m in ms.values():
        assert callable(m.load())


def test_result_is_frozen_and_status_aliases():
    r = Result(x=np.zeros(2), status=Status.OPTIMAL, objective=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.objective = 2.0
    assert r.converged and not r.replace(status=Status.MAX_ITER).converged
    assert Status.INFEASIBLE is Status.PRIMAL_INFEASIBLE
    assert Status.UNBOUNDED is Status.DUAL_INFEASIBLE
    assert "optimal" in repr(r)


def test_blocks_count_iterations(backend):
    """A step of 5 iterations: max_iter, Run.iterations and history count iterations (a block
    step stops at max_iter: the count is capped there)."""
    def step5(bk, x, d):
        for _ in range(5):
            x = bk.xp.cos(x)
        return x

    alg = COS._replace(name="cos5", step=step5, iterations_per_step=5)
    bk = get_backend(backend)
    with bk.precision():
        out = run(alg, bk, bk.asarray([0.0]), bk.asarray(-1.0), Options(max_iter=23, check_every=2))
        assert out.status is Status.MAX_ITER and out.iterations == 23
        assert list(out.history["iteration"]) == [0, 10, 20, 23]
        done = run(alg, bk, bk.asarray([0.0]), bk.asarray(1e-12), Options(tol=1e-12))
    assert done.status is Status.OPTIMAL and done.iterations % 5 == 0


def test_progress_bar(capsys):
    bk = get_backend("numpy")
    run(COS, bk, np.array([0.0]), 1e-10, Options(progress=True))
    assert "cvxkit cos" in capsys.readouterr().err
    run(COS, bk, np.array([0.0]), 1e-10, Options(progress=False))
    assert capsys.readouterr().err == ""


def test_finish_builds_result_and_never_promotes_to_optimal():
    from cvxkit.solvers.driver import Final, finish

    bk = get_backend("numpy")
    out = run(COS, bk, np.array([0.0]), -1.0, Options(max_iter=4))
    res = finish(Final(x=out.state, objective=0.0), method="cos", backend="numpy", run=out)
    assert res.status is Status.MAX_ITER and res.iterations == 4 and res.message
    assert isinstance(res.history["iteration"], np.ndarray)
    with pytest.raises(RuntimeError, match="may not turn"):
        finish(Final(x=out.state, objective=0.0, status=Status.OPTIMAL), method="cos",
               backend="numpy", run=out)
    with pytest.raises(ValueError, match="must state its status"):
        finish(Final(x=0.0, objective=0.0), method="direct", backend="numpy")


def test_compile_cache_is_bounded():
    from cvxkit.solvers.driver import LRUCache

    cache = LRUCache(maxsize=2)
    built = []
    for key in (1, 2, 1, 3, 2):
        cache.get(key, lambda k=key: built.append(k) or k)
    assert len(cache) == 2 and built == [1, 2, 3, 2]  # 2 was evicted by 3 (1 was used more recently)


def test_registry_scope_names_listed_backends():
    """A partial back end is one the method lists, and says what runs on it."""
    for info in methods().values():
        for backend, what in info.scope:
            assert backend in info.backends and what, info.name
        for backend in info.backends:
            assert info.backend_scope(backend)
    assert "oracle" in methods()["project_forget"].backend_scope("jax")
    assert methods()["sinkhorn"].backend_scope("jax") == "every iteration"
