"""Fuzz suite, parametric conic programs and dual proxies: hostile input to
ParametricConicProgram (from_arrays, from_cvxpy, theta) and DualProxy, random CVXPY models
whose conversion is verified against CVXPY itself, and the validity of the proxy's bound.

An ``optimal`` reference of a converted model is verified against CVXPY solving the user's own
problem at the same parameter value (Clarabel), to ``1e-6 (1 + |value|)``; an ``optimal``
dual-proxy bound must lie below that value (weak duality) with dual-feasible duals. A
conversion that cannot be exact (quadratic terms left, non-DPP data, integer variables,
unsupported cones) must be a clean ``ValueError``.
"""
from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from cvxkit.problems import ParametricConicProgram
from cvxkit.problems.parametric_conic import multidimensional_knapsack
from cvxkit.problems import DualProxy

from .harness import judge

FAMILY = "parametric_conic"


def small_lp(**changes):
    """``from_arrays`` arguments of min (1 + t) x0 - x1 s.t. x0 + x1 <= 1 (+ changes)."""
    J = np.zeros((2, 1))
    J[0, 0] = 1.0
    args = dict(c=(np.array([1.0, -1.0]), J), A=-np.ones((1, 2)), b=np.array([1.0]),
                cones=[("nonneg", 1)], n_params=1, lb=0.0, ub=1.0)
    args.update(changes)
    return args


def build(args):
    a = dict(args)
    return ParametricConicProgram.from_arrays(a.pop("c"), a.pop("A"), a.pop("b"), a.pop("cones"),
                                              **a)


# --------------------------------------------------------------------------------------
# hostile input
# --------------------------------------------------------------------------------------
J0 = np.zeros((2, 1))
BAD_ARRAYS = {  # name: (changes, words of which one must be in the message)
    "complex c": ({"c": (np.array([1.0, 1j]), J0)}, ("c",)),
    "complex jacobian": ({"c": (np.ones(2), J0 + 1j)}, ("c",)),
    "complex sparse jacobian": ({"c": (np.ones(2), sp.csr_matrix(J0 + 1j))}, ("c",)),
    "complex A": ({"A": -np.ones((1, 2)) * (1 + 1j)}, ("A",)),
    "complex b": ({"b": np.array([1.0 + 0j])}, ("b",)),
    "complex lb": ({"lb": 0j}, ("lb",)),
    "nan c": ({"c": np.array([np.nan, 1.0])}, ("c",)),
    "inf A": ({"A": np.array([[np.inf, 1.0]])}, ("A",)),
    "ragged A": ({"A": [[1.0, 2.0], [3.0]]}, ("A",)),
    "ragged b": ({"b": [[1.0], [1.0, 2.0]]}, ("b",)),
    "object A": ({"A": np.array([[None, 1.0]])}, ("A",)),
    "string c": ({"c": "c"}, ("c",)),
    "None A": ({"A": None}, ("A",)),
    "empty A": ({"A": np.zeros((0, 0))}, ("A",)),
    "1-D A": ({"A": np.ones(2)}, ("A",)),
    "A columns": ({"A": np.ones((1, 3))}, ("A", "c")),
    "b shape": ({"b": np.ones(3)}, ("b",)),
    "jacobian shape": ({"c": (np.ones(2), np.ones((2, 3)))}, ("c",)),
    "cones int": ({"cones": 5}, ("cones",)),
    "cones string": ({"cones": "nonneg"}, ("cones",)),
    "cones unknown": ({"cones": [("psd", 1)]}, ("cone",)),
    "cones cover": ({"cones": [("nonneg", 2)]}, ("cones", "rows")),
    "cone dim float": ({"cones": [("nonneg", 1.5)]}, ("cone",)),
    "n_params float": ({"n_params": 1.5}, ("n_params",)),
    "n_params zero": ({"n_params": 0}, ("n_params",)),
    "lb > ub": ({"lb": 2.0}, ("lb",)),
    "lb shape": ({"lb": np.zeros(3)}, ("lb",)),
    "ub string": ({"ub": "one"}, ("ub",)),
    "pairs malformed": ({"pairs": (0, 1)}, ("pairs",)),
    "pairs float index": ({"pairs": ([0.5], [1], [1.0])}, ("pairs",)),
    "theta complex": ({"theta": [1j]}, ("theta",)),
    "theta shape": ({"theta": [1.0, 2.0]}, ("theta",)),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_bad_arrays(case):
    changes, names = BAD_ARRAYS[case]
    args = small_lp(**changes)
    assert judge(FAMILY, lambda: build(args).reference(), names=names) == "error"


THETAS = {
    "complex": lambda p: p.theta + 1j,
    "ragged": lambda p: [[1.0], [1.0, 2.0]],
    "nan": lambda p: np.full(p.p, np.nan),
    "wrong length": lambda p: np.zeros(p.p + 1),
    "string": lambda p: "theta",
    "None entries": lambda p: [None] * p.p,
    "dict": lambda p: {"theta": p.theta},
}


@pytest.mark.parametrize("case", sorted(THETAS))
def test_bad_theta(case):
    prob = multidimensional_knapsack(2, 3)
    t = THETAS[case](prob)
    assert judge(FAMILY, lambda: prob.at(t).reference(), names=("theta",)) == "error"
    assert judge(FAMILY, lambda: prob.reference_solve(t), names=("theta",)) == "error"
    px = DualProxy(prob, hidden=(4,))
    with pytest.raises(ValueError, match="theta"):
        px.bound(t)


BAD_OPTIONS = {
    "epochs": [2.5, "3", 0, None, True], "batch_size": [0, 1.5, "big"],
    "lr": [0.0, -1.0, "fast", np.nan, 1j], "hidden": ["wide", (0,), (2.5,), ()],
    "seed": [-1, 1.5, "s"], "train_thetas": [np.ones((3, 5)), [[1.0], [2.0, 3.0]], "t",
                                             np.full((2, 1), np.nan)],
    "backend": ["numpy", 3], "warm_start": ["resume", np.zeros(3)], "step": [1.0],
}


@pytest.mark.parametrize("name, value", [(k, v) for k, vs in BAD_OPTIONS.items() for v in vs],
                         ids=lambda v: repr(v)[:20])
def test_bad_options(name, value):
    prob = build(small_lp(theta=[0.2]))
    names = (name,) if name != "step" else ("option",)
    assert judge(FAMILY, lambda: prob.solve(**{name: value}), names=names) == "error"


def _cvxpy_refusals():
    x, X = cp.Variable(2), cp.Variable((2, 2), PSD=True)
    a, s = cp.Parameter(2, value=[1.0, 2.0]), cp.Parameter(pos=True, value=1.0)
    z = cp.Variable(2, integer=True)
    return {
        "not a problem": ("problem", None, ("cvxpy.Problem",)),
        "no parameters": (cp.Problem(cp.Minimize(cp.sum(x)), [x >= 0]), None, ("parameter",)),
        "not DPP": (cp.Problem(cp.Minimize(s * s * x[0]), [x >= 0, x <= 1]), None, ("DPP",)),
        "integer": (cp.Problem(cp.Minimize(a @ z), [z >= 0]), None, ("integer",)),
        "exponential cone": (cp.Problem(cp.Minimize(a @ x + cp.sum(cp.exp(x))), [x <= 1]), None,
                             ("cone",)),
        "PSD cone": (cp.Problem(cp.Minimize(a @ cp.diag(X)), [cp.trace(X) == 1]), None,
                     ("cone",)),
        "foreign parameter": (cp.Problem(cp.Minimize(a @ x), [x >= 0]), [s], ("parameter",)),
    }


@pytest.mark.parametrize("case", sorted(_cvxpy_refusals()))
def test_from_cvxpy_refuses(case):
    prob, params, names = _cvxpy_refusals()[case]
    assert judge(FAMILY, lambda: ParametricConicProgram.from_cvxpy(prob, params).reference(),
                 names=names) == "error"


# --------------------------------------------------------------------------------------
# random CVXPY models: the conversion is exact
# --------------------------------------------------------------------------------------
def _set(params, theta):
    start = 0
    for q in params:
        q.value = np.reshape(theta[start:start + q.size], q.shape, order="F")
        start += q.size


def verify_against_cvxpy(problem, params, theta, sign):
    def check(res):
        _set(params, theta)
        problem.solve(solver="CLARABEL")
        if problem.status != "optimal":
            return f"CVXPY says {problem.status} where the conversion says optimal"
        want = sign * problem.value
        if abs(res.objective - want) > 1e-6 * (1 + abs(want)):
            return f"objective {res.objective!r} vs CVXPY {want!r}"
        return None

    return check


@given(n=st.integers(1, 4), seed=st.integers(0, 10**6),
       objective=st.sampled_from(["linear", "sum_squares", "quad_form", "norm", "maximize"]),
       constraint=st.sampled_from(["box", "norm ball", "quadratic", "equality"]))
def test_random_cvxpy_models_convert_exactly(n, seed, objective, constraint):
    rng = np.random.default_rng(seed)
    x = cp.Variable(n)
    a, r = cp.Parameter(n), cp.Parameter(nonneg=True)
    G = rng.standard_normal((n, n))
    obj = {"linear": cp.Minimize(a @ x),
           "sum_squares": cp.Minimize(a @ x + cp.sum_squares(x)),
           "quad_form": cp.Minimize(a @ x + cp.quad_form(x, G @ G.T + np.eye(n))),
           "norm": cp.Minimize(a @ x + cp.norm(G @ x, 2)),
           "maximize": cp.Maximize(a @ x - cp.sum_squares(x - 1.0))}[objective]
    cons = {"box": [x >= -r, x <= r], "norm ball": [cp.norm(x, 2) <= r],
            "quadratic": [cp.sum_squares(G @ x) <= r],
            "equality": [cp.sum(x) == r, x >= -2, x <= 2]}[constraint]
    problem = cp.Problem(obj, cons)
    params = [a, r]
    theta = np.r_[rng.standard_normal(n), rng.uniform(0.5, 2.0)]
    _set(params, theta)
    pcp = ParametricConicProgram.from_cvxpy(problem, params)
    sign = -1.0 if objective == "maximize" else 1.0
    for t in (theta, np.r_[rng.standard_normal(n), rng.uniform(0.5, 2.0)]):
        judge(FAMILY, lambda: pcp.at(t).reference(),
              verify=verify_against_cvxpy(problem, params, t, sign))


# --------------------------------------------------------------------------------------
# the dual proxy's bound is valid (one short training; JAX compiles are slow)
# --------------------------------------------------------------------------------------
def test_dual_proxy_bound_is_valid():
    prob = build(small_lp(theta=[0.3]))
    ref = prob.reference()

    def verify(res):
        if res.objective > ref.objective + 1e-7 * (1 + abs(ref.objective)):
            return f"bound {res.objective!r} above the optimum {ref.objective!r}"
        viol = prob.dual_infeasibility(res.x)
        return None if viol <= 1e-9 else f"dual infeasibility {viol:.3g}"

    kw = {"epochs": 2, "train_thetas": np.linspace(-1, 1, 16)[:, None], "hidden": (8,),
          "lr": 1e-2, "batch_size": 8}
    assert judge(FAMILY, lambda: prob.solve(**kw), verify=verify) == "optimal"
