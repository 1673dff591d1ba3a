"""Fuzz suite, convex ReLU: hostile input to ConvexReLU / ConvexReLUNet / relu_admm / bcd, random
valid instances verified against CVXPY, and the scale sweep (numpy back end: JAX compiles cost
seconds per shape).

Every call is classified by `harness.judge`: a clean cvxkit error naming the argument, an honest
non-optimal status, or an ``optimal`` verified on the generated instance by ``prob.check`` against
the CVXPY/Clarabel reference: relative objective gap ``<= 1e3 * tol`` (relu_admm stops on ADMM
residuals, not on the gap: on these instances the gap reached ~40 tol, on problems whose optimum
is far below the loss at zero) and constraint violation ``<= 10 * eps_prim`` (the primal
tolerance the solver reports; the returned weights are the group-lasso copy, cone-feasible up to
the residual). The hinge loss is slow for ADMM (thousands of iterations): with the capped
``max_iter`` it must end ``max_iter``, honestly.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cvxkit.problems import ConvexReLU, ConvexReLUNet
from cvxkit.solvers import Result, Status
from cvxkit.solvers.bcd import RULES, UPDATES

from .harness import judge

FAMILY = "convex_relu"
TOL = 1e-7
MAX_ITER = 3000
#: the large profile (-m slow) draws many examples; the default run a few per test
LARGE = settings.default.max_examples > 8
SPARSE = ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"]


def data(n=8, d=2, seed=0, loss="squared", scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "squared":
        y = np.maximum(X[:, 0], 0) - 0.5 * X[:, -1] + 0.1 * rng.standard_normal(n)
    else:
        y = np.where(X[:, 0] + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
        if abs(y.sum()) == n:
            y[0] = -y[0]
    return X, scale * y


def verify_for(prob: ConvexReLU, tol: float):
    """``verify(result)`` for `judge`: `ConvexReLU.check` at the tolerances of the module
    docstring."""
    def verify(res):
        atol = 10 * res.info["eps_prim"] if "eps_prim" in res.info else tol
        rep = prob.check(res, rtol=1e3 * tol, atol=atol)
        return None if rep.ok else str(rep)

    return verify


def methods_for(prob: ConvexReLU):
    gated_sq = prob.variant == "gated" and prob.loss == "squared" and prob.epsilon == 0
    return ["relu_admm", "bcd"] if gated_sq else ["relu_admm"]


class Holder:
    """Keeps the problem a call built, so that `verify` can use it."""

    prob = None

    def verify(self, res):
        return verify_for(self.prob, TOL)(res)


# --- bad data -------------------------------------------------------------------------------
BAD_DATA = ["nan_X", "inf_X", "nan_y", "inf_y", "complex_X", "complex_y", "ragged_X",
            "ragged_y", "empty_X", "empty_y", "short_y", "long_y", "y_2d", "X_1d", "X_3d",
            "object_X", "str_X", "None_X", "None_y", "str_y", "labels_not_pm1"] + \
    [f"sparse_{f}" for f in SPARSE]


def bad_data(kind, X, y):
    X, y = X.copy(), y.copy()
    if kind == "nan_X":
        X[0, 0] = np.nan
    elif kind == "inf_X":
        X[-1, -1] = -np.inf
    elif kind == "nan_y":
        y[1] = np.nan
    elif kind == "inf_y":
        y[0] = np.inf
    elif kind == "complex_X":
        X = X + 1j
    elif kind == "complex_y":
        y = y.astype(complex)
    elif kind == "ragged_X":
        X = [list(r) for r in X]
        X[0] = X[0][:-1]
    elif kind == "ragged_y":
        y = [[v] for v in y]
        y[0] = []
    elif kind == "empty_X":
        X, y = np.zeros((0, X.shape[1])), np.zeros(0)
    elif kind == "empty_y":
        y = np.zeros(0)
    elif kind == "short_y":
        y = y[:-1]
    elif kind == "long_y":
        y = np.r_[y, 1.0]
    elif kind == "y_2d":
        y = y[:, None]
    elif kind == "X_1d":
        X = X[:, 0]
    elif kind == "X_3d":
        X = X[None]
    elif kind == "object_X":
        X = X.astype(object)
        X[0, 0] = "a"
    elif kind == "str_X":
        X = "X"
    elif kind == "None_X":
        X = None
    elif kind == "None_y":
        y = None
    elif kind == "str_y":
        y = np.array(["a"] * len(y))
    elif kind == "labels_not_pm1":
        y = 2 * np.sign(y) + 0.5
    elif kind.startswith("sparse_"):
        X = sp.coo_matrix(X).asformat(kind[7:])
    return X, y


@given(kind=st.sampled_from(BAD_DATA), loss=st.sampled_from(["squared", "logistic"]),
       variant=st.sampled_from(["relu", "gated"]), method=st.sampled_from(["relu_admm", "bcd"]),
       seed=st.integers(0, 10))
def test_bad_data(kind, loss, variant, method, seed):
    X, y = data(seed=seed, loss=loss)
    X, y = bad_data(kind, X, y)
    if kind == "labels_not_pm1" and loss == "squared":
        loss = "logistic"
    h = Holder()

    def call():
        h.prob = ConvexReLU(X, y, n_patterns=3, beta=0.1, loss=loss, variant=variant, seed=seed)
        m = method if method in methods_for(h.prob) else "relu_admm"
        return h.prob.solve(m, tol=TOL, max_iter=MAX_ITER)

    judge(FAMILY, call, names=("X", "y", "labels"), verify=h.verify)


@given(kind=st.sampled_from(["nan", "complex", "ragged", "wrong_d", "X_1d", "short_y", "str_y",
                             "object", "sparse", "None"]),
       loss=st.sampled_from(["squared", "logistic"]))
def test_estimator_bad_data(kind, loss):
    """fit / predict / score of `ConvexReLUNet` with hostile X and y."""
    X, y = data(n=10, seed=1, loss=loss)
    est = ConvexReLUNet(n_patterns=3, beta=0.1, loss=loss, variant="gated").fit(X, y)
    Xb, yb = X.copy(), y.copy()
    if kind == "nan":
        Xb[0, 0] = np.nan
    elif kind == "complex":
        Xb = Xb * 1j
    elif kind == "ragged":
        Xb = [[1.0, 2.0], [3.0]]
    elif kind == "wrong_d":
        Xb = np.c_[X, X[:, :1]]
    elif kind == "X_1d":
        Xb = X[0]
    elif kind == "short_y":
        yb = y[:-3]
    elif kind == "str_y":
        yb = np.array(["a"] * len(y)) if loss == "squared" else np.array([[1, 2]] * len(y))
    elif kind == "object":
        Xb = X.astype(object)
        Xb[1, 1] = None
    elif kind == "sparse":
        Xb = sp.csr_matrix(X)
    elif kind == "None":
        Xb = None

    def score():
        return est.score(Xb, yb)

    def fit():
        return ConvexReLUNet(n_patterns=3, beta=0.1, loss=loss, variant="gated").fit(Xb, yb) \
            .score(X, y)

    for fn in (score, fit):
        got = {}

        def call(fn=fn):  # an accepted call: judged as a verified "optimal"
            got["out"] = fn()
            return Result(x=None, status=Status.OPTIMAL, objective=np.nan)

        def verify(_):  # only sparse X is valid here, and it must act as the dense X
            if kind != "sparse":
                return f"{kind}: {fn.__name__} accepted hostile input"
            ok = got["out"] == pytest.approx(est.score(X, y), rel=1e-9)
            return None if ok else "sparse X scored differently from dense X"

        judge(FAMILY, call, names=("X", "y"), verify=verify)


# --- options and warm starts ----------------------------------------------------------------
HOSTILE = [None, "x", 2.5, -5, 0, float("nan"), float("inf"), True, [1], object(), 1, 1e-3]
ADMM_OPTIONS = ["rho", "gamma", "alpha", "adaptive_rho", "adaptive_rho_tolerance", "eps_abs", "eps_rel"]
BCD_OPTIONS = ["rule", "update", "accelerate", "anderson_memory", "anderson_every", "block_size"]
COMMON = ["tol", "max_iter", "check_every", "seed", "dtype", "verbose", "time_limit",
          "callback"]


@given(method=st.sampled_from(["relu_admm", "bcd"]), data_=st.data(),
       value=st.sampled_from(HOSTILE + [*RULES, *UPDATES, "anderson", "auto", "float32"]))
def test_option_values(method, data_, value):
    own = ADMM_OPTIONS if method == "relu_admm" else BCD_OPTIONS
    name = data_.draw(st.sampled_from(own + COMMON), label="option")
    X, y = data(seed=2)
    prob = ConvexReLU(X, y, n_patterns=3, beta=0.1, variant="gated")
    opts = {"tol": TOL, "max_iter": MAX_ITER, name: value}
    if name == "tol" and type(value) in (int, float) and 0 < value < np.inf:
        tol = value  # a valid tol: the answer is verified at the tolerance asked for
    else:
        tol = TOL
    if name == "dtype" and value == "float32":
        tol = max(tol, 1e-4)  # float32 arithmetic: the reachable accuracy

    judge(FAMILY, lambda: prob.solve(method, **opts), names=(name,),
          verify=verify_for(prob, tol))


@given(variant=st.sampled_from(["relu", "gated"]), eps=st.sampled_from([0.0, 0.05]),
       method=st.sampled_from(["relu_admm", "bcd"]),
       kind=st.sampled_from(["str", "dict", "list", "ragged", "object", "scalar", "shape",
                             "nan", "inf", "complex", "other_problem", "none_x", "valid",
                             "same_result"]),
       seed=st.integers(0, 20))
def test_warm_start(variant, eps, method, kind, seed):
    if variant == "gated":
        eps = 0.0
    X, y = data(seed=seed)
    prob = ConvexReLU(X, y, n_patterns=3, beta=0.1, variant=variant, epsilon=eps, seed=seed)
    if method not in methods_for(prob):
        method = "relu_admm"
    rng = np.random.default_rng(seed)
    shape = prob.shape
    ws = {"str": "warm", "dict": {"x": 1}, "list": [], "ragged": [[1.0], [1.0, 2.0]],
          "object": object(), "scalar": 2.5,
          "shape": rng.standard_normal(tuple(s + 1 for s in shape)),
          "nan": np.full(shape, np.nan), "inf": np.full(shape, np.inf),
          "complex": np.zeros(shape, complex),
          "none_x": Result(x=None, status=Status.NUMERICAL_ERROR, objective=np.nan),
          "valid": rng.standard_normal(shape)}.get(kind)
    if kind == "other_problem":
        other = ConvexReLU(X[:, :1], y, n_patterns=2, beta=0.1, variant=variant, epsilon=eps)
        ws = other.solve("relu_admm", tol=1e-3, max_iter=50)
    elif kind == "same_result":
        ws = prob.solve("relu_admm", tol=1e-3, max_iter=MAX_ITER)
    judge(FAMILY, lambda: prob.solve(method, warm_start=ws, tol=TOL, max_iter=MAX_ITER),
          names=("warm_start",), verify=verify_for(prob, TOL))


# --- random valid instances -----------------------------------------------------------------
@settings(max_examples=200 if LARGE else 6)
@given(n=st.integers(1, 20 if LARGE else 12), d=st.integers(1, 3), P=st.integers(1, 4),
       loss=st.sampled_from(["squared", "logistic", "hinge"]),
       variant=st.sampled_from(["relu", "gated"]), robust=st.booleans(),
       log_beta=st.floats(-3, 0.5), log_x=st.floats(-1, 1), seed=st.integers(0, 2**16),
       method=st.sampled_from(["relu_admm", "bcd"]), rule=st.sampled_from(RULES),
       update=st.sampled_from(UPDATES))
def test_random_instances_verified(n, d, P, loss, variant, robust, log_beta, log_x, seed,
                                   method, rule, update):
    rng = np.random.default_rng(seed)
    X = 10.0 ** log_x * rng.standard_normal((n, d))
    y = rng.standard_normal(n) if loss == "squared" else np.where(rng.random(n) > 0.5, 1.0, -1.0)
    eps = 0.05 if robust and variant == "relu" else 0.0
    h = Holder()

    def call():  # (few samples: every sampled pattern may be zero, refused naming n_patterns)
        h.prob = ConvexReLU(X, y, n_patterns=P, beta=10.0 ** log_beta, loss=loss,
                            variant=variant, epsilon=eps, seed=seed)
        m = method if method in methods_for(h.prob) else "relu_admm"
        opts = {"tol": TOL, "max_iter": MAX_ITER}
        if m == "bcd":
            opts.update(rule=rule, update=update)
        return h.prob.solve(m, **opts)

    judge(FAMILY, call, names=("n_patterns",), verify=h.verify,
          allowed_statuses={Status.MAX_ITER})


# --- scale invariance -----------------------------------------------------------------------
KS = [pytest.param(k, marks=[] if k % 3 == 0 else [pytest.mark.slow]) for k in range(-9, 10)]


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("variant, method", [("relu", "relu_admm"), ("gated", "relu_admm"),
                                             ("gated", "bcd")])
def test_scale_invariance(k, variant, method):
    """(y, beta) -> 10^k (y, beta) (squared loss): the same status and iterations, and the
    predictions (and weights) times 10^k; the scaled answer verified against the reference on
    the scaled instance."""
    X, y = data(n=12, d=2, seed=4)
    s = 10.0 ** k
    base = ConvexReLU(X, y, n_patterns=4, beta=0.1, variant=variant)
    prob = ConvexReLU(X, s * y, n_patterns=4, beta=0.1 * s, variant=variant)
    r0 = base.solve(method, tol=TOL)
    assert r0.status is Status.OPTIMAL and verify_for(base, TOL)(r0) is None
    got = {}

    def call():
        got["res"] = prob.solve(method, tol=TOL)
        return got["res"]

    out = judge(FAMILY, call, verify=verify_for(prob, TOL))
    res = got["res"]
    assert out == "optimal" and res.iterations == r0.iterations
    np.testing.assert_allclose(prob.predict(res.x) / s, base.predict(r0.x), rtol=1e-7,
                               atol=1e-9 * np.abs(y).max())
