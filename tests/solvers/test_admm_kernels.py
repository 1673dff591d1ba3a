"""The compiled ADMM iterations (`cvxkit.solvers.admm_kernels`) against the generic loop, and
the early stop of the Ruiz rounds."""
import numpy as np
import pytest

from cvxkit.solvers import admm_kernels
from cvxkit.solvers.admm import iterations
from cvxkit.solvers.admm_box import QP_DENSE, QP_SPARSE, setup_dense, setup_sparse
from cvxkit.solvers.admm_qp import _settings, configure
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.scaling import _fixed_point as _FIXED_POINT
from cvxkit.solvers.scaling import ruiz_dense, units_dense


def _qp(seed, n=12, m=17):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    A = rng.standard_normal((m, n))
    l, u = -rng.random(m), rng.random(m)
    l[::4] = u[::4]  # equalities
    u[1::3] = np.inf
    return M @ M.T, rng.standard_normal(n), A, l, u


@pytest.mark.skipif(not admm_kernels.load(), reason="numba unavailable")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_generic_iterations(seed):
    bk = get_backend("numpy")
    P, q, A, l, u = _qp(seed)
    cfg = configure(q, None, **{**_DEFAULTS})["cfg"]
    d, s = setup_dense(bk, P, q, A, l, u, np.zeros(12), np.zeros(17), 0.1, _settings(bk, cfg), 10)
    fast = iterations(bk, QP_DENSE, d, s, 40)
    slow = iterations(bk, QP_DENSE._replace(compiled=None), d, s, 40)
    assert int(fast.k) == int(slow.k) == 40
    for f in ("x", "z", "y", "dx", "dy"):
        a, b = getattr(fast, f), getattr(slow, f)
        assert np.max(np.abs(a - b)) <= 1e-11 * max(1.0, np.max(np.abs(b))), f
    assert np.max(np.abs(fast.dx)) > 0  # the last step was recorded


@pytest.mark.skipif(not admm_kernels.load(), reason="numba unavailable")
@pytest.mark.parametrize("seed", [0, 1])
def test_kkt_kernel_matches_generic_iterations(seed):
    """The full-KKT kernel on qdldl's factors (sparse data) against the generic loop."""
    import scipy.sparse as sps

    bk = get_backend("numpy")
    P, q, A, l, u = _qp(seed, n=30, m=45)
    A[np.abs(A) < 1.0] = 0.0
    cfg = configure(q, None, **{**_DEFAULTS})["cfg"]
    d, s, sp = setup_sparse(sps.csc_matrix(P), q, sps.csc_matrix(A), l, u, np.zeros(30),
                            np.zeros(45), 0.1, _settings(bk, cfg), 10, "sparse")
    assert sp is QP_SPARSE and s.factor.ldl_arrays() is not None
    fast = iterations(bk, QP_SPARSE, d, s, 40)
    slow = iterations(bk, QP_SPARSE._replace(compiled=None), d, s, 40)
    for f in ("x", "z", "y", "dx", "dy"):
        a, b = getattr(fast, f), getattr(slow, f)
        assert np.max(np.abs(a - b)) <= 1e-10 * max(1.0, np.max(np.abs(b))), f
    assert int(fast.k) == 40 and np.max(np.abs(fast.dy)) > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_ruiz_early_stop_is_the_fixed_point(seed, monkeypatch):
    """Stopping once a round changes nothing gives the scales of all the rounds."""
    from cvxkit.solvers import scaling

    P, q, A, l, u = _qp(seed)
    un = units_dense(np, P, q, A, l, u)
    calls = []
    monkeypatch.setattr(scaling, "_fixed_point",
                        lambda s, p: calls.append(1) or _FIXED_POINT(s, p))
    ten = ruiz_dense(np, P, q, A, 200, start=un)
    assert len(calls) < 200  # it did stop early
    every = ruiz_dense(np, P, q, A, 200, loop=_python_loop, start=un)
    for f in ("D", "E", "c"):
        assert np.allclose(getattr(ten, f), getattr(every, f), rtol=1e-9, atol=0)
    # a problem whose units equilibrate it already: no round changes a scale
    I = np.eye(4)
    s0 = ruiz_dense(np, I, np.ones(4), I, 0)
    s10 = ruiz_dense(np, I, np.ones(4), I, 10)
    assert np.array_equal(s0.D, s10.D) and np.array_equal(s0.E, s10.E)


def test_kernels_load_after_generic_iterations(monkeypatch):
    """A process runs the generic loop until LOAD_AFTER eligible iterations, then the kernels."""
    monkeypatch.setattr(admm_kernels, "_KERNEL", [])
    monkeypatch.setattr(admm_kernels, "_GENERIC", [0])
    monkeypatch.setattr(admm_kernels, "LOAD_AFTER", 100)
    assert not admm_kernels.ready(60) and not admm_kernels._KERNEL
    assert admm_kernels.ready(60) == (admm_kernels._KERNEL[0] is not None)


def _python_loop(n, body, init):
    """All ``n`` rounds, without the early stop."""
    s = init
    for _ in range(n):
        s = body(s)
    return s


_DEFAULTS = dict(backend="numpy", tol=1e-6, eps_abs=None, eps_rel=None, max_iter=4000,
                 time_limit=np.inf, verbose=False, progress=None, callback=None, check_every=25,
                 seed=0, dtype="float64", rho=0.1, sigma=1e-6, alpha=1.6, adaptive_rho=True,
                 adaptive_rho_tolerance=5.0, scaling=10, eps_primal_infeasible=1e-4,
                 eps_dual_infeasible=1e-4, check_gap=True, polish=False, polish_refine_iter=3,
                 delta=1e-6, linsys="auto", mesh=None)


def test_reach_error_rejects_a_certificate_that_a_large_x_escapes():
    """y = (1, 1) on x1 <= -1, -x1 - 1e-3 x2 <= 0 (feasible: x2 >= 1000 when x1 = -1):
    A^T y = (0, -1e-3) and u^T y = -1, so y looks like a certificate; it excludes only
    ||x|| < 1000."""
    import scipy.sparse as sps

    from cvxkit.solvers.admm_check import reach_error

    A = sps.csr_matrix(np.array([[1.0, 0.0], [-1.0, -1e-3]]))
    l, u = np.array([-np.inf, -np.inf]), np.array([-1.0, 0.0])
    y = np.array([1.0, 1.0])  # sigma = u'y = -1, ||A^T y||_1 = 1e-3: R = 1000
    assert reach_error(A, l, u, y, np.array([0.0, 50.0])) is None
    why = reach_error(A, l, u, y, np.array([-1.0, 1000.0]))
    assert why is not None and "1e+03" in why
