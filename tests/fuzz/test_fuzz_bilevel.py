"""Fuzz suite, bilevel programs: hostile input to Bilevel / HyperparameterTuning and the three
methods (arrays, bounds, callables, option types, malformed warm starts, every scipy.sparse
format of the training data), and random well-posed instances whose "optimal" is verified
against closed forms.

Random instances share one set of JAX callables (the data enter as upper-level coordinates
pinned by ``x_bounds``), so that each method compiles once for the whole run:

* ridge hyperparameter tuning, $\\lambda = e^{x_0}$: the lower level $w^*(\\lambda) =
  (X^\\top X/n + \\lambda I)^{-1}X^\\top t/n$ and the hypergradient
  $dF/dx_0 = -\\lambda\\,\\nabla_w F^\\top (X^\\top X/n + \\lambda I)^{-1} w^*$ in numpy.
  ``implicit_diff`` claims $\\|x - P_X(x - \\nabla F)\\| \\le$ tol; ``bilevel_penalty`` claims
  the same for $\\psi_\\sigma$, whose gradient $\\tfrac{\\lambda}{2}(\\|z\\|^2 - \\|w^*\\|^2)/\\sigma$ has
  the closed form $z = (\\sigma X_v^\\top X_v/n_v + X^\\top X/n + \\lambda I)^{-1}
  (\\sigma X_v^\\top t_v/n_v + X^\\top t/n)$, up to the documented error of its inner solve,
  $\\lambda\\|z\\|$ lower_tol $/(\\mu_z\\sigma)$.
* ``lv_hba`` on upper $(y - a)^2 + (x - a)^2/10$, lower $(y - x)^2$ s.t. $y \\le b$:
  $y^*(x) = \\min(x, b)$, $x^* = a$, $F^* = (\\min(a, b) - a)^2$; an optimal answer must have
  $F(x) - F^* \\le 10^{-4}$ and $y$ within $10^{-3}$ of $y^*(x)$.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from cvxkit.problems.bilevel import Bilevel, HyperparameterTuning, _data
from cvxkit.solvers import Result, Status
from cvxkit.solvers.bilevel_core import BilevelFunctions, Boxes
from cvxkit.solvers.bilevel_penalty import bilevel_penalty
from cvxkit.solvers.implicit_diff import implicit_diff
from cvxkit.solvers.lv_hba import lv_hba

from .harness import judge

FAMILY = "bilevel"
METHODS = ("implicit_diff", "bilevel_penalty", "lv_hba")


def _up(x, y):
    import jax.numpy as jnp

    return jnp.sum((y - 1.0) ** 2) + 0.1 * jnp.sum(x**2)


def _lo(x, y):
    import jax.numpy as jnp

    return jnp.sum((y - x[0]) ** 2)


@pytest.fixture(scope="module")
def simple():
    """p = 1, d = 2, strongly convex lower level (every method applies)."""
    return Bilevel(_up, _lo, np.zeros(1), np.zeros(2))


# --------------------------------------------------------------------------------------
# hostile input: arrays, bounds, callables
# --------------------------------------------------------------------------------------
BAD_VECTORS = {
    "nan": [np.nan], "inf": [np.inf], "empty": [], "complex": [1 + 2j],
    "object": np.array([object()], dtype=object), "ragged": [[1.0, 2.0], [3.0]],
    "string": "abc", "none": None, "2-D": np.zeros((2, 2)), "dict": {"a": 1},
}
BAD_BOUNDS = {
    "triple": (0.0, 1.0, 2.0), "wrong length": (np.zeros(3), np.ones(3)), "nan": (np.nan, 1.0),
    "lo > hi": (1.0, 0.0), "string": ("a", 1.0), "complex": (1j, 2.0), "scalar": 5.0,
    "ragged": ([[0.0], [1.0, 2.0]], 1.0), "empty hi": (0.0, []), "lo = +inf": (np.inf, np.inf),
}


@given(st.sampled_from(sorted(BAD_VECTORS)), st.sampled_from(["x0", "y0"]))
def test_bad_starts(kind, which):
    x0, y0 = np.zeros(1), np.zeros(2)
    args = {"x0": x0, "y0": y0, which: BAD_VECTORS[kind]}
    judge(FAMILY, lambda: Bilevel(_up, _lo, args["x0"], args["y0"]), names=[which],
          allowed_statuses=())


@given(st.sampled_from(sorted(BAD_BOUNDS)), st.sampled_from(["x_bounds", "y_bounds"]))
def test_bad_bounds(kind, which):
    judge(FAMILY, lambda: Bilevel(_up, _lo, np.zeros(1), np.zeros(2), **{which: BAD_BOUNDS[kind]}),
          names=[which], allowed_statuses=())


@pytest.mark.parametrize("kw, names", [
    ({"upper": 3.0}, ["upper"]), ({"lower": "g"}, ["lower"]), ({"upper": None}, ["upper"]),
    ({"lower_constraints": 1}, ["lower_constraints"]),
])
def test_bad_callables(kw, names):
    args = {"upper": _up, "lower": _lo, **kw}
    judge(FAMILY, lambda: Bilevel(args["upper"], args["lower"], np.zeros(1), np.zeros(2),
                                  lower_constraints=kw.get("lower_constraints")),
          names=names, allowed_statuses=())


BAD_DATA = {
    "nan": lambda X: np.where(X > 0.5, np.nan, X), "inf": lambda X: np.where(X > 0.5, np.inf, X),
    "complex": lambda X: X + 1j, "object": lambda X: X.astype(object),
    "ragged": lambda X: [list(r) for r in X[:-1]] + [[1.0]], "empty": lambda X: X[:0],
    "1-D": lambda X: X[:, 0], "string": lambda X: "data",
}


@given(st.sampled_from(sorted(BAD_DATA)))
def test_bad_training_data(kind):
    rng = np.random.default_rng(0)
    X, t = rng.standard_normal((8, 2)), rng.standard_normal(8)
    judge(FAMILY, lambda: HyperparameterTuning(BAD_DATA[kind](X), t, X, t),
          names=["X_train"], allowed_statuses=())


FAMILY_OPTIONS = [
    ("ridge", {"per_feature": "yes"}, "per_feature"), ("ridge", {"model": 3}, "model"),
    ("ridge", {"model": "lasso"}, "model"), ("ridge", {"penalty_bounds": "ab"}, "penalty_bounds"),
    ("ridge", {"penalty_bounds": (1.0, 0.5)}, "penalty_bounds"), ("ridge", {"x0": "a"}, "x0"),
    ("split", {"val_fraction": "x"}, "val_fraction"), ("split", {"val_fraction": 1.5}, "val_fraction"),
    ("split", {"seed": 0.5}, "seed"), ("clean", {"reg": "x"}, "reg"), ("clean", {"reg": -1.0}, "reg"),
    ("clean", {"n_classes": 2.5}, "n_classes"), ("clean", {"corrupted": [True]}, "corrupted"),
]


@pytest.mark.parametrize("family, kw, name", FAMILY_OPTIONS)
def test_bad_family_options(family, kw, name):
    from cvxkit.problems.bilevel import DataHypercleaning

    rng = np.random.default_rng(0)
    X, t = rng.standard_normal((8, 2)), rng.standard_normal(8)
    labels = np.arange(8) % 2
    calls = {"ridge": lambda: HyperparameterTuning(X, t, X, t, **kw),
             "split": lambda: HyperparameterTuning.from_data(X, t, **kw),
             "clean": lambda: DataHypercleaning(X, labels, X, labels, **kw)}
    judge(FAMILY, calls[family], names=[name], allowed_statuses=())


SPARSE = [getattr(sp, f"{k}_{kind}") for k in ("csr", "csc", "coo", "lil", "dok", "dia", "bsr")
          for kind in ("matrix", "array") if hasattr(sp, f"{k}_{kind}")]


def test_every_sparse_format_of_training_data():
    """The families' data layer densifies every scipy.sparse format to the same matrix; one
    full build from a sparse matrix gives the same lower level as the dense build's formula."""
    rng = np.random.default_rng(1)
    X = np.where(rng.random((10, 3)) < 0.5, rng.standard_normal((10, 3)), 0.0)
    t = rng.standard_normal(10)
    for fmt in SPARSE:
        Xs, ts = _data("X_train", fmt(X), t)
        np.testing.assert_array_equal(Xs, X, err_msg=fmt.__name__)
    prob = HyperparameterTuning(sp.coo_matrix(X), t, sp.csr_array(X), t)
    w = np.linalg.solve(X.T @ X / 10 + 0.1 * np.eye(3), X.T @ t / 10)
    np.testing.assert_allclose(prob.solve_lower(np.array([math.log(0.1)])), w, rtol=1e-10)


# --------------------------------------------------------------------------------------
# hostile options and warm starts
# --------------------------------------------------------------------------------------
BAD_OPTIONS = [
    ("tol", "x"), ("tol", -1.0), ("tol", np.nan), ("max_iter", 2.5), ("max_iter", 0),
    ("max_iter", True), ("verbose", "yes"), ("time_limit", "1s"), ("check_every", 0.5),
    ("callback", 3), ("dtype", "float16"), ("backend", "torch"), ("lower_tol", "x"),
    ("lower_max_iter", 2.5), ("step", -1.0), ("step0", [1.0]), ("sigma", "big"),
    ("sigma", 0.0), ("cg_rtol", None), ("cg_max_iter", 2.5), ("gamma1", "big"),
    ("gamma2", -1.0), ("c_lower", np.inf), ("p", 0.7), ("p", "x"), ("eta", "x"), ("alpha", 0.0),
    ("beta", -2.0), ("epochs", 2.5), ("lr", "x"),
]
#: the options each method takes (others must be refused as unknown)
OPTIONS = {
    "implicit_diff": {"lower_tol", "lower_max_iter", "cg_rtol", "cg_max_iter", "step", "step0"},
    "bilevel_penalty": {"sigma", "lower_tol", "lower_max_iter", "step", "step0"},
    "lv_hba": {"gamma1", "gamma2", "c_lower", "p", "eta", "alpha", "beta"},
}
COMMON = {"tol", "max_iter", "verbose", "time_limit", "check_every", "callback", "dtype",
          "backend"}


@given(st.sampled_from(METHODS), st.sampled_from(BAD_OPTIONS))
def test_bad_options(simple, method, opt):
    name, value = opt
    known = name in OPTIONS[method] | COMMON
    judge(FAMILY, lambda: simple.solve(method=method, **{"max_iter": 3, name: value}),
          names=[name] if known else ["unknown option"], allowed_statuses=())


def _bad_warm_starts(p, d):
    good = (np.zeros(p), np.zeros(d))
    return {
        "x too long": (np.zeros(p + 1), np.zeros(d)), "y too short": (np.zeros(p), np.zeros(d - 1)),
        "bare array": np.zeros(p), "string": "abc", "triple": good + (np.zeros(1),),
        "nan": (np.full(p, np.nan), np.zeros(d)), "complex": (np.zeros(p) + 1j, np.zeros(d)),
        "ragged": ([[0.0], [1.0, 2.0]], np.zeros(d)), "none pair": (None, None),
        "other problem": Result(x=np.zeros(p + 2), status=Status.OPTIMAL, objective=0.0,
                                info={"y": np.zeros(d + 1)}),
        "result without y": Result(x=np.zeros(p), status=Status.OPTIMAL, objective=0.0,
                                    info={}),
        "dict": {"x": np.zeros(p)},
    }


@given(st.sampled_from(METHODS), st.sampled_from(sorted(_bad_warm_starts(1, 2))))
def test_bad_warm_starts(simple, method, kind):
    ws = _bad_warm_starts(simple.p, simple.d)[kind]
    judge(FAMILY, lambda: simple.solve(method=method, max_iter=3, warm_start=ws),
          names=["warm_start"], allowed_statuses=())


def test_warm_start_from_own_result(simple):
    """The documented forms are accepted: a Result of the same problem and a pair (x, y)
    (lv_hba here; test_bilevel.py warm-starts every method from a Result)."""
    for method in ("lv_hba",):
        res = simple.solve(method=method, max_iter=3)
        for ws in (res, (res.x, res.info["y"]), (list(res.x), tuple(res.info["y"]))):
            out = simple.solve(method=method, max_iter=2, warm_start=ws)
            assert out.x.shape == (1,) and np.isfinite(out.x).all()


# --------------------------------------------------------------------------------------
# random well-posed instances, verified against closed forms
# --------------------------------------------------------------------------------------
N, NV, D = 10, 8, 3
X_LO, X_HI = math.log(1e-6), math.log(1e6)


def _unpack(x):
    import jax.numpy as jnp

    o = 1
    X = x[o:o + N * D].reshape(N, D)
    o += N * D
    t = x[o:o + N]
    o += N
    Xv = x[o:o + NV * D].reshape(NV, D)
    o += NV * D
    return jnp.exp(x[0]), X, t, Xv, x[o:o + NV]


def _ridge_lower(x, w):
    import jax.numpy as jnp

    lam, X, t, _, _ = _unpack(x)
    return jnp.sum((X @ w - t) ** 2) / (2 * N) + 0.5 * lam * jnp.sum(w**2)


def _ridge_upper(x, w):
    import jax.numpy as jnp

    _, _, _, Xv, tv = _unpack(x)
    return jnp.sum((Xv @ w - tv) ** 2) / (2 * NV)


def _ridge_solution(x):
    import jax.numpy as jnp

    lam, X, t, _, _ = _unpack(x)
    return jnp.linalg.solve(X.T @ X / N + lam * jnp.eye(D), X.T @ t / N)


RIDGE = BilevelFunctions(_ridge_upper, _ridge_lower, _ridge_solution)


def ridge_instance(seed, scale):
    rng = np.random.default_rng(seed)
    X, Xv = scale * rng.standard_normal((N, D)), scale * rng.standard_normal((NV, D))
    w = rng.standard_normal(D)
    t = X @ w + rng.uniform(0.1, 3) * rng.standard_normal(N)
    tv = Xv @ w + rng.uniform(0.1, 3) * rng.standard_normal(NV)
    data = np.concatenate([X.ravel(), t, Xv.ravel(), tv])
    x0 = np.r_[rng.uniform(-4, 2), data]
    boxes = Boxes(np.r_[X_LO, data], np.r_[X_HI, data], np.full(D, -np.inf), np.full(D, np.inf))
    return (X, t, Xv, tv), x0, boxes


def verify_ridge(data, method, tol, sigma=None):
    X, t, Xv, tv = data

    def check(res):
        xl = float(res.x[0])
        if not (X_LO <= xl <= X_HI) or not np.isfinite(res.x).all():
            return f"x = {res.x[:1]} outside X or not finite"
        lam = math.exp(xl)
        H = X.T @ X / N + lam * np.eye(D)
        w = np.linalg.solve(H, X.T @ t / N)
        if np.abs(res.info["y"] - w).max() > 1e-8 * (1 + np.abs(w).max()):
            return f"lower level {res.info['y']} vs closed form {w}"
        if method == "implicit_diff":
            gv = Xv.T @ (Xv @ w - tv) / NV
            g = -lam * gv @ np.linalg.solve(H, w)
            slack = 1e-9
        else:
            Hz = sigma * Xv.T @ Xv / NV + H
            z = np.linalg.solve(Hz, sigma * Xv.T @ tv / NV + X.T @ t / N)
            g = 0.5 * lam * (z @ z - w @ w) / sigma
            # documented inexactness: z is solved to gradient-mapping norm lower_tol = 1e-12,
            # so |z - z*| <= lower_tol / mu_z and the gradient may be off by lam |z| that / sigma;
            # plus the rounding of the closed forms (cancellation in |z|^2 - |w|^2)
            mu_z = np.linalg.eigvalsh(Hz)[0]
            slack = 1e-12 * lam * np.linalg.norm(z) / (mu_z * sigma) \
                + 1e-12 * (1 + lam * (w @ w)) / sigma
        pg = abs(xl - min(max(xl - g, X_LO), X_HI))
        # the claim is pg <= tol (up to the slack above)
        if pg > tol * (1 + 1e-6) + slack:
            return f"projected gradient {pg:.3g} (closed form) above tol {tol:.1e}"
        return None

    return check


@given(st.integers(0, 10_000), st.sampled_from([0.1, 1.0, 10.0]),
       st.sampled_from(["implicit_diff", "bilevel_penalty"]), st.sampled_from([1e-5, 1e-7]))
def test_random_ridge_instances(seed, scale, method, tol):
    data, x0, boxes = ridge_instance(seed, scale)
    if method == "implicit_diff":
        call = lambda: implicit_diff(RIDGE, x0, np.zeros(D), boxes, tol=tol)  # noqa: E731
        verify = verify_ridge(data, method, tol)
    else:
        call = lambda: bilevel_penalty(RIDGE, x0, np.zeros(D), boxes, tol=tol)  # noqa: E731
        verify = verify_ridge(data, method, tol, sigma=1e-4)
    judge(FAMILY, call, verify=verify)


def _toy_upper(x, y):
    return (y[0] - x[1]) ** 2 + 0.1 * (x[0] - x[1]) ** 2


def _toy_lower(x, y):
    return (y[0] - x[0]) ** 2


def _toy_cons(x, y):
    import jax.numpy as jnp

    return jnp.stack([y[0] - x[2]])


TOY = BilevelFunctions(_toy_upper, _toy_lower, None, _toy_cons)


@given(st.floats(-2, 2), st.floats(-2, 2), st.floats(-3, 3))
def test_random_constrained_toys_lv_hba(a, b, x_start):
    """Constraint y <= b active (a > b) or inactive (a < b) at the solution."""
    boxes = Boxes(np.array([-np.inf, a, b]), np.array([np.inf, a, b]), np.full(1, -np.inf),
                  np.full(1, np.inf))

    def verify(res):
        x, y = float(res.x[0]), float(res.info["y"][0])
        F = (min(x, b) - a) ** 2 + 0.1 * (x - a) ** 2
        F_star = (min(a, b) - a) ** 2
        if not F - F_star <= 1e-4:
            return f"F(x) = {F!r} at x = {x!r}, but F* = {F_star!r} (a = {a}, b = {b})"
        if abs(y - min(x, b)) > 1e-3 or y > b + 1e-9:
            return f"y = {y!r} is not the lower-level solution min(x, b) = {min(x, b)!r}"
        return None

    judge(FAMILY, lambda: lv_hba(TOY, np.array([x_start, a, b]), np.array([min(x_start, b)]),
                                 boxes, backend="jax", check_every=500), verify=verify)
