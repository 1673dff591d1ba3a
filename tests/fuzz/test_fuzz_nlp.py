"""Fuzz suite, nonlinear programs: hostile input to NonlinearProgram / al_sketch (arrays,
callables, option types, malformed warm starts, derivatives in every scipy.sparse format),
random equality-constrained programs verified against closed forms or published optima, and
the scale sweep (objective and constraint rows times $10^k$, $k = -9 \\dots 9$).

References: random strictly convex QPs $\\min \\tfrac12 x^\\top P x + q^\\top x$ s.t. $Ax = b$ have
the KKT solution of $\\begin{bmatrix}P & A^\\top\\\\ A & 0\\end{bmatrix}$ (numpy); random
Hock-Schittkowski problems have their published $f^*$ (and $x^*$ where given). An ``optimal``
answer must satisfy the relative KKT residual it claims, recomputed in the user's units
(``tol`` relative to the objective scale $s_f$ and the row scales $s_c$ reported in
``info["scales"]``), and be near the reference.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from cvxkit.problems import NonlinearProgram
from cvxkit.problems.hock_schittkowski import HS_DATA, hs_problem
from cvxkit.solvers import Result, Status
from cvxkit.solvers.al_sketch import NLPFunctions, al_sketch

from .harness import judge

FAMILY = "nlp"


_ZEROS = object()


def qp_program(P, q, A, b, fmt=None, x0=_ZEROS, **kw):
    """``NonlinearProgram`` of a QP with numpy derivatives (``fmt``: a scipy.sparse class for
    the Jacobian and the Hessian)."""
    wrap = (lambda M: fmt(M)) if fmt is not None else (lambda M: M.copy())
    n = P.shape[0]
    return NonlinearProgram(lambda x: float(0.5 * x @ P @ x + q @ x), lambda x: A @ x - b,
                            np.zeros(n) if x0 is _ZEROS else x0, grad=lambda x: P @ x + q,
                            jac=lambda x: wrap(A), hess=lambda x, lam: wrap(P), **kw)


def qp_solution(P, q, A, b):
    n, m = P.shape[0], A.shape[0]
    K = np.block([[P, A.T], [A, np.zeros((m, m))]])
    sol = np.linalg.solve(K, np.r_[-q, b])
    return sol[:n], sol[n:]


def random_qp(seed, n, m, scale=1.0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    P = scale * (M @ M.T / n + 0.5 * np.eye(n))
    q = scale * rng.standard_normal(n)
    A = rng.standard_normal((m, n))
    b = rng.standard_normal(m)
    return P, q, A, b


def verify_kkt(fun_user, x_ref, tol, dist):
    """The claimed relative KKT residual, recomputed on the user's callables, and the
    distance to ``x_ref`` (relative)."""
    def check(res):
        x = np.asarray(res.x)
        if x.shape != x_ref.shape or not np.isfinite(x).all():
            return f"x of shape {x.shape} or not finite"
        s_f, s_c = res.info["scales"]["objective"], res.info["scales"]["constraints"]
        G = fun_user.jac(x)
        G = G.toarray() if sp.issparse(G) else np.asarray(G)
        gL = np.asarray(fun_user.grad(x)) + G.T @ res.info["lam"]
        c = np.asarray(fun_user.cons(x))
        r = math.hypot(np.linalg.norm(gL) / s_f, np.linalg.norm(c / s_c))
        if r > tol * (1 + 1e-6):
            return f"relative KKT residual {r:.3g} > tol {tol:.1e}"
        err = np.linalg.norm(x - x_ref) / max(1.0, np.linalg.norm(x_ref))
        if err > dist:
            return f"x is {err:.3g} (relative) from the reference"
        return None
    return check


# --------------------------------------------------------------------------------------
# hostile input
# --------------------------------------------------------------------------------------
BAD_VECTORS = {
    "nan": [np.nan, 0.0], "inf": [np.inf, 0.0], "empty": [], "complex": [1 + 2j, 0.0],
    "object": np.array([object(), 1.0], dtype=object), "ragged": [[1.0, 2.0], [3.0]],
    "string": "ab", "none": None, "2-D": np.zeros((2, 2)), "dict": {"a": 1},
}


def _simple(**kw):
    P, q, A, b = np.eye(2), np.zeros(2), np.ones((1, 2)), np.ones(1)
    return qp_program(P, q, A, b, **kw)


@given(st.sampled_from(sorted(BAD_VECTORS)))
def test_bad_x0(kind):
    judge(FAMILY, lambda: _simple(x0=BAD_VECTORS[kind]), names=["x0"], allowed_statuses=())


@given(st.sampled_from(sorted(BAD_VECTORS) + ["wrong length"]))
def test_bad_lam0(kind):
    lam0 = np.zeros(3) if kind == "wrong length" else BAD_VECTORS[kind]
    if kind in ("none",):  # None is the documented default (zeros)
        return
    judge(FAMILY, lambda: _simple(lam0=lam0), names=["lam0"], allowed_statuses=())


@pytest.mark.parametrize("kw, names", [
    ({"f": "f"}, ["f", "callable"]), ({"c": 3}, ["c", "callable"]),
    ({"grad": 1.0}, ["grad"]), ({"jac": "J"}, ["jac"]),
])
def test_bad_callables(kw, names):
    args = {"f": lambda x: float(x @ x), "c": lambda x: np.array([x.sum() - 1]),
            "grad": lambda x: 2 * x, "jac": lambda x: np.ones((1, 2)), **kw}
    judge(FAMILY, lambda: NonlinearProgram(args["f"], args["c"], np.zeros(2), grad=args["grad"],
                                           jac=args["jac"], hess=lambda x, lam: 2 * np.eye(2)),
          names=names, allowed_statuses=())


BAD_OPTIONS = [
    ("tol", "x"), ("tol", 0.0), ("tol", np.nan), ("max_iter", 2.5), ("max_iter", True),
    ("seed", 1.5), ("seed", "s"), ("verbose", "yes"), ("time_limit", "1s"), ("callback", 3),
    ("check_every", 0.5), ("sketch", "cholesky"), ("sketch", 3), ("dtype", "float32"),
    ("backend", "torch"), ("eta1", "x"), ("eta2", -1.0), ("delta", np.inf), ("xi_B", None),
    ("beta", 0.7), ("beta", "x"), ("nu", 0.5), ("nu", "x"), ("theta", [1.0]),
    ("rank_tol", 0.0), ("inner_rtol_floor", -1.0), ("max_inner", 2.5), ("max_inner", 0),
    ("max_backtracks", "3"), ("max_backtracks", 1.5), ("x0", np.zeros(2)), ("epochs", 2.5),
    ("lr", "x"), ("gamma", "big"),
]
KNOWN = {"tol", "max_iter", "seed", "verbose", "time_limit", "callback", "check_every",
         "sketch", "dtype", "backend", "eta1", "eta2", "delta", "xi_B", "beta", "nu", "theta",
         "rank_tol", "inner_rtol_floor", "max_inner", "max_backtracks", "x0"}


@given(st.sampled_from(BAD_OPTIONS))
def test_bad_options(opt):
    name, value = opt
    prob = _simple()
    judge(FAMILY, lambda: prob.solve(**{"max_iter": 3, name: value}),
          names=[name] if name in KNOWN else ["unknown option"], allowed_statuses=())


def _bad_warm_starts(n, m):
    return {
        "x too short": (np.zeros(n - 1), np.zeros(m)), "x too long": (np.zeros(n + 1), None),
        "lam wrong": (np.zeros(n), np.zeros(m + 2)), "bare array": np.zeros(n),
        "string": "abc", "triple": (np.zeros(n), np.zeros(m), 0), "nan": (np.full(n, np.nan), None),
        "complex": (np.zeros(n) + 1j, None), "ragged": ([[0.0], [1.0, 2.0]], None),
        "dict": {"x": np.zeros(n)}, "none pair": (None, None),
        "other problem": Result(x=np.zeros(n + 1), status=Status.OPTIMAL, objective=0.0,
                                info={"lam": np.zeros(m)}),
        "result without lam": Result(x=np.zeros(n), status=Status.OPTIMAL, objective=0.0),
    }


@given(st.sampled_from(sorted(_bad_warm_starts(3, 1))))
def test_bad_warm_starts(kind):
    """HS28 (n = 3, m = 1): a 2-vector used to solve a smaller program and say optimal."""
    prob = _hs(28)
    judge(FAMILY, lambda: prob.solve(warm_start=_bad_warm_starts(3, 1)[kind], max_iter=5),
          names=["warm_start"], allowed_statuses=())


def test_warm_start_documented_forms():
    prob = _hs(28)
    res = prob.solve(tol=1e-9, sketch="exact")
    x_star = np.array(HS_DATA[28].x_star)
    for ws in (res, (res.x, res.info["lam"]), (list(res.x), None)):
        out = prob.solve(tol=1e-9, sketch="exact", warm_start=ws)
        assert out.status is Status.OPTIMAL and np.allclose(out.x, x_star, atol=1e-6)


SPARSE = [getattr(sp, f"{k}_{kind}") for k in ("csr", "csc", "coo", "lil", "dok", "dia", "bsr")
          for kind in ("matrix", "array") if hasattr(sp, f"{k}_{kind}")]


@pytest.mark.parametrize("fmt", SPARSE, ids=lambda f: f.__name__)
@given(st.integers(0, 1000))
def test_sparse_derivatives_every_format(fmt, seed):
    P, q, A, b = random_qp(seed, 5, 2)
    x_ref, _ = qp_solution(P, q, A, b)
    prob = qp_program(P, q, A, b, fmt=fmt)
    judge(FAMILY, lambda: prob.solve(tol=1e-9, sketch="exact"),
          verify=verify_kkt(prob.functions(), x_ref, 1e-9, 1e-6))


# --------------------------------------------------------------------------------------
# random programs with references
# --------------------------------------------------------------------------------------
@given(st.integers(0, 10_000), st.integers(2, 6), st.data(), st.sampled_from(["exact", "rk"]),
       st.sampled_from([1e-3, 1.0, 1e3]))
def test_random_qps(seed, n, data, sketch, scale):
    m = data.draw(st.integers(1, n - 1), label="m")
    P, q, A, b = random_qp(seed, n, m, scale)
    x_ref, _ = qp_solution(P, q, A, b)
    prob = qp_program(P, q, A, b)
    judge(FAMILY, lambda: prob.solve(tol=1e-9, sketch=sketch, max_iter=100),
          verify=verify_kkt(prob.functions(), x_ref, 1e-9, 1e-5))


_HS_CACHE: dict = {}


def _hs(k):
    if k not in _HS_CACHE:
        _HS_CACHE[k] = hs_problem(k)
    return _HS_CACHE[k]


#: HS problems solved from their standard start by both inner solvers (tests/test_nlp.py)
HS_OK = (6, 27, 28, 39, 40, 42, 48, 51, 52, 77, 79)


@given(st.sampled_from(HS_OK), st.sampled_from(["exact", "rk"]))
def test_random_hock_schittkowski(k, sketch):
    prob, d = _hs(k), HS_DATA[k]

    def verify(res):
        if abs(res.objective - d.f_star) > 1e-6 * max(1.0, abs(d.f_star)):
            return f"f = {res.objective!r}, published f* = {d.f_star!r}"
        if d.x_star is not None:
            return verify_kkt(prob.functions(), np.array(d.x_star), 1e-8, 1e-4)(res)
        return None

    judge(FAMILY, lambda: prob.solve(tol=1e-8, sketch=sketch, max_iter=200), verify=verify)


# --------------------------------------------------------------------------------------
# scale invariance: f -> 10^k f, c -> 10^k c (rows), k = -9..9
# --------------------------------------------------------------------------------------
def scaled(fun: NLPFunctions, t_f: float, t_c: np.ndarray) -> NLPFunctions:
    """The program min t_f f s.t. t_c * c = 0 (its Lagrangian's Hessian at lam is
    t_f H(x, t_c lam / t_f))."""
    def jac(x):
        G = fun.jac(x)
        return (sp.diags(t_c) @ G) if sp.issparse(G) else t_c[:, None] * np.asarray(G)

    return NLPFunctions(lambda x: t_f * fun.f(x), lambda x: t_f * np.asarray(fun.grad(x)),
                        lambda x: t_c * np.asarray(fun.cons(x)), jac,
                        lambda x, lam: t_f * fun.hess(x, t_c * np.asarray(lam) / t_f))


SCALE_CASES = [(28, "exact"), (40, "exact"), (6, "rk"), (48, "rk")]


def _scale_sweep(k, what, case):
    number, sketch = case
    prob = _hs(number)
    fun = prob.functions()
    m = prob.m
    t = 10.0 ** k
    t_f = t if what in ("objective", "both") else 1.0
    rows = np.where(np.arange(m) % 2 == 0, t, 1.0) if what == "rows" else np.full(m, t)
    t_c = rows if what in ("constraints", "rows", "both") else np.ones(m)
    base = al_sketch(fun, prob.x0, tol=1e-8, sketch=sketch, max_iter=200)
    fs = scaled(fun, t_f, t_c)
    res = judge(FAMILY, lambda: al_sketch(fs, prob.x0, tol=1e-8, sketch=sketch, max_iter=200),
                verify=verify_kkt(fs, base.x, 1e-8, 1e-7))
    assert res == f"status:{base.status.value}" or (res == "optimal"
                                                    and base.status is Status.OPTIMAL), \
        (k, what, res, base.status)
    out = al_sketch(fs, prob.x0, tol=1e-8, sketch=sketch, max_iter=200)
    np.testing.assert_allclose(out.x, base.x, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(out.info["lam"] * t_c / t_f, base.info["lam"], rtol=1e-6,
                               atol=1e-9 * (1 + np.abs(base.info["lam"]).max()))


@pytest.mark.parametrize("case", SCALE_CASES, ids=lambda c: f"HS{c[0]}-{c[1]}")
@pytest.mark.parametrize("what", ["objective", "constraints", "rows", "both"])
@pytest.mark.parametrize("k", range(-9, 10, 3))
def test_scale_invariance(k, what, case):
    _scale_sweep(k, what, case)


@pytest.mark.slow
@pytest.mark.parametrize("case", SCALE_CASES, ids=lambda c: f"HS{c[0]}-{c[1]}")
@pytest.mark.parametrize("what", ["objective", "constraints", "rows", "both"])
@pytest.mark.parametrize("k", [k for k in range(-9, 10) if k % 3])
def test_scale_invariance_all_k(k, what, case):
    _scale_sweep(k, what, case)


def test_scale_invariance_through_the_problem():
    """The same sweep through NonlinearProgram (numpy callables): f and c times 10^k."""
    P, q, A, b = random_qp(3, 4, 2)
    base = qp_program(P, q, A, b).solve(tol=1e-9, sketch="exact")
    assert base.status is Status.OPTIMAL
    for k in (-9, -3, 3, 9):
        t = 10.0 ** k
        res = qp_program(t * P, t * q, t * A, t * b).solve(tol=1e-9, sketch="exact")
        assert res.status is Status.OPTIMAL, (k, res.info["message"])
        np.testing.assert_allclose(res.x, base.x, rtol=1e-8, atol=1e-10)
