"""Fuzz suite, Net-Trim: hostile input to NetTrim / net_trim, random valid layers verified against
CVXPY, and the scale sweep (numpy back end).

Every call is classified by `harness.judge`: a clean cvxkit error naming the argument, an honest
non-optimal status, or an ``optimal`` verified by ``prob.check`` against the CVXPY/Clarabel
reference: relative objective gap ``<= 1e3 * tol`` and constraint violation ``<= 10 *`` the
tolerance the solver reports (``info["tolerance"]``, in the units of Y).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cvxkit.problems import NetTrim
from cvxkit.solvers import Result, Status

from .harness import judge

FAMILY = "net_trim"
TOL = 1e-7
MAX_ITER = 5000
LARGE = settings.default.max_examples > 8
SPARSE = ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"]


def layer(N=4, M=3, P=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, P)), rng.standard_normal((N, M))


def verify_for(prob: NetTrim, tol: float):
    def verify(res):
        rep = prob.check(res, rtol=1e3 * tol, atol=10 * res.info["tolerance"])
        return None if rep.ok else str(rep)

    return verify


class Holder:
    prob = None

    def verify(self, res):
        return verify_for(self.prob, TOL)(res)


BAD = ["nan_X", "inf_X", "nan_W0", "complex_X", "complex_W0", "ragged_X", "empty_X", "X_1d",
       "X_3d", "str_X", "None_X", "object_X", "W0_rows", "W0_1d", "Y_and_W0", "neither",
       "Y_cols", "eps_neg", "eps_nan", "eps_inf", "eps_str", "V_shape", "V_nan", "V_linear",
       "bias_str", "relative_str"] + [f"sparse_{f}" for f in SPARSE]


def bad_args(kind, X, W0):
    args = {"X": X.copy(), "W0": W0.copy()}
    if kind == "nan_X":
        args["X"][0, 0] = np.nan
    elif kind == "inf_X":
        args["X"][-1, -1] = np.inf
    elif kind == "nan_W0":
        args["W0"][0, 0] = np.nan
    elif kind == "complex_X":
        args["X"] = X + 1j
    elif kind == "complex_W0":
        args["W0"] = W0.astype(complex)
    elif kind == "ragged_X":
        args["X"] = [list(r) for r in X]
        args["X"][0] = args["X"][0][:-1]
    elif kind == "empty_X":
        args["X"] = np.zeros((X.shape[0], 0))
    elif kind == "X_1d":
        args["X"] = X[:, 0]
    elif kind == "X_3d":
        args["X"] = X[None]
    elif kind == "str_X":
        args["X"] = "X"
    elif kind == "None_X":
        args["X"] = None
    elif kind == "object_X":
        args["X"] = X.astype(object)
        args["X"][0, 0] = "a"
    elif kind == "W0_rows":
        args["W0"] = W0[:-1]
    elif kind == "W0_1d":
        args["W0"] = W0[:, 0]
    elif kind == "Y_and_W0":
        args["Y"] = np.maximum(W0.T @ X, 0)
    elif kind == "neither":
        del args["W0"]
    elif kind == "Y_cols":
        del args["W0"]
        args["Y"] = np.ones((2, X.shape[1] + 1))
    elif kind.startswith("eps_"):
        args["eps"] = {"eps_neg": -0.1, "eps_nan": np.nan, "eps_inf": np.inf,
                       "eps_str": "0.1"}[kind]
    elif kind == "V_shape":
        args["V"] = np.zeros((W0.shape[1] + 1, X.shape[1]))
    elif kind == "V_nan":
        args["V"] = np.full((W0.shape[1], X.shape[1]), np.nan)
    elif kind == "V_linear":
        args["V"], args["relu"] = np.zeros((W0.shape[1], X.shape[1])), False
    elif kind == "bias_str":
        args["bias"] = "yes"
    elif kind == "relative_str":
        args["relative"] = "yes"
    elif kind.startswith("sparse_"):
        args["X"] = sp.coo_matrix(X).asformat(kind[7:])
    return args


@given(kind=st.sampled_from(BAD), seed=st.integers(0, 10))
def test_bad_data(kind, seed):
    X, W0 = layer(seed=seed)
    h = Holder()

    def call():
        h.prob = NetTrim(**bad_args(kind, X, W0))
        return h.prob.solve(tol=TOL, max_iter=MAX_ITER)

    judge(FAMILY, call, names=("X", "W0", "Y", "eps", "V", "bias", "relative"), verify=h.verify)


HOSTILE = [None, "x", 2.5, -5, 0, float("nan"), float("inf"), True, [1], object(), 1, 1e-3,
           "float32"]
OPTIONS = ["rho", "gamma", "alpha", "adaptive_rho", "adaptive_rho_tolerance", "eps_abs",
           "eps_rel", "normalize", "tol", "max_iter", "check_every", "seed", "dtype",
           "time_limit", "warm_start"]


@given(name=st.sampled_from(OPTIONS), value=st.sampled_from(HOSTILE))
def test_option_values(name, value):
    X, W0 = layer(seed=2)
    prob = NetTrim(X, W0=W0, eps=0.1)
    valid = type(value) in (int, float) and 0 < value < np.inf
    tol = value if name == "tol" and valid else TOL
    if name in ("eps_abs", "eps_rel") and valid:  # the tolerance asked for (eps_abs: units of Y)
        tol = max(TOL, value / (np.abs(prob.Y).max() if name == "eps_abs" else 1.0))
    if name == "dtype" and value == "float32":
        tol = 1e-4
    judge(FAMILY, lambda: prob.solve(**{"tol": TOL, "max_iter": MAX_ITER, name: value}),
          names=(name,), verify=verify_for(prob, tol))


@given(kind=st.sampled_from(["str", "shape", "nan", "complex", "other", "valid", "same",
                             "none_x"]), seed=st.integers(0, 20))
def test_warm_start(kind, seed):
    X, W0 = layer(seed=seed)
    prob = NetTrim(X, W0=W0, eps=0.1)
    rng = np.random.default_rng(seed)
    ws = {"str": "warm", "shape": np.zeros((5, 3)), "nan": np.full((4, 3), np.nan),
          "complex": np.zeros((4, 3), complex), "valid": rng.standard_normal((4, 3)),
          "none_x": Result(x=None, status=Status.NUMERICAL_ERROR, objective=np.nan)}.get(kind)
    if kind == "other":
        ws = NetTrim(X[:3], W0=W0[:3], eps=0.1).solve(tol=1e-3)
    elif kind == "same":
        ws = prob.solve(tol=1e-3)
    judge(FAMILY, lambda: prob.solve(warm_start=ws, tol=TOL, max_iter=MAX_ITER),
          names=("warm_start",), verify=verify_for(prob, TOL))


@settings(max_examples=200 if LARGE else 6)
@given(N=st.integers(1, 6), M=st.integers(1, 4), P=st.integers(1, 20), relu=st.booleans(),
       bias=st.booleans(), eps=st.sampled_from([0.0, 0.01, 0.1, 0.5]),
       log_x=st.floats(-2, 2), log_w=st.floats(-2, 2), sparsity=st.floats(0, 1),
       seed=st.integers(0, 2**16))
def test_random_layers_verified(N, M, P, relu, bias, eps, log_x, log_w, sparsity, seed):
    rng = np.random.default_rng(seed)
    X = 10.0 ** log_x * rng.standard_normal((N, P))
    W0 = 10.0 ** log_w * rng.standard_normal((N + bias, M)) * (rng.random((N + bias, M))
                                                                 >= sparsity)
    h = Holder()

    def call():
        h.prob = NetTrim(X, W0=W0, eps=eps, relu=relu, bias=bias)
        return h.prob.solve(tol=TOL, max_iter=MAX_ITER)

    judge(FAMILY, call, verify=h.verify,
          allowed_statuses={Status.MAX_ITER, Status.OPTIMAL_INACCURATE})


@pytest.mark.parametrize("k", [pytest.param(k, marks=[] if k % 3 == 0 else [pytest.mark.slow])
                               for k in range(-6, 7)])
def test_scale_invariance(k):
    """X -> 10^k X and Y -> 10^-k Y: the same run, W times 10^-2k; verified on the scaled
    instance against the unscaled one's reference, scaled."""
    X, W0 = layer(N=5, M=3, P=20, seed=4)
    s = 10.0 ** k
    base = NetTrim(X, W0=W0, eps=0.05)
    prob = NetTrim(s * X, Y=base.Y / s, eps=0.05)
    r0 = base.solve(tol=TOL)
    assert r0.status is Status.OPTIMAL and verify_for(base, TOL)(r0) is None
    ref = base.reference()
    ref_s = Result(x=ref.x / s ** 2, status=ref.status, objective=ref.objective / s ** 2)
    got = {}

    def call():
        got["res"] = prob.solve(tol=TOL)
        return got["res"]

    def verify(res):
        rep = prob.check(res, rtol=1e3 * TOL, atol=10 * res.info["tolerance"], reference=ref_s)
        return None if rep.ok else str(rep)

    assert judge(FAMILY, call, verify=verify) == "optimal"
    assert got["res"].iterations == r0.iterations
    np.testing.assert_allclose(got["res"].x * s ** 2, r0.x, rtol=1e-7, atol=1e-10)
