"""Fuzz suite, quadratic programs: hostile input to QuadraticProgram / admm_qp, random valid
instances verified against Clarabel (through CVXPY, `QuadraticProgram.reference`), and the scale
sweep.

Every call is classified by `harness.judge`: a clean cvxkit error naming the argument, an honest
non-optimal status, or an ``optimal`` verified here on the generated instance. Verification is
relative to the problem's units (`QuadraticProgram.units`: row norms ``a``, length ``beta``, cost
``gamma``), so that it means the same at every scale:

* ``optimal``: the reference (Clarabel at 1e-9) is optimal, the objective is within
  ``C tol max(|ref|, |x'Px|, |q'x|, gamma)`` of it, and the relative bound violation
  (`QuadraticProgram.max_violation`: row i over ``a_i max(beta, max_k |A_k x| / a_k)``, the
  form of the solver's own tolerances) is below ``C tol``;
* ``primal_infeasible`` / ``dual_infeasible``: the reference has the same status.

The scale sweep multiplies the cost ``(P, q)``, the right-hand sides ``(l, u, q)`` (so that
``x*`` scales too) or every other constraint row (``A_i, l_i, u_i``) by ``10^k``, k = -9..9, and
requires the unscaled problem's status and the scaled answer. The reference there is the
unscaled problem's: Clarabel's own absolute tolerances give wrong answers on the scaled ones
(rows times 1e-12 are ignored).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from cvxkit.problems import QuadraticProgram
from cvxkit.solvers import Status
from cvxkit.solvers.admm_qp import admm_qp

from .harness import judge

FAMILY = "qp"
CERT = (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE)


# --------------------------------------------------------------------------------------
# instances
# --------------------------------------------------------------------------------------
def feasible(seed, n=4, m=5, singular=False, zero_rows=False, equalities=1):
    """A bounded feasible QP: random rows with 0 inside [l, u], a box, some equalities."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, max(1, n - 1) if singular else n))
    P = M @ M.T / n
    q = rng.standard_normal(n)
    A = rng.standard_normal((m, n))
    if zero_rows and m:
        A[rng.integers(m)] = 0.0
    l, u = -rng.random(m) - 0.01, rng.random(m) + 0.01
    x0 = 0.2 * rng.uniform(-1, 1, n)
    for i in range(min(equalities, m)):  # equalities through a feasible point
        if np.any(A[i]):
            l[i] = u[i] = A[i] @ x0
    if m > 1:
        u[-1] = np.inf
    A = np.vstack([A, np.eye(n)])
    return P, q, A, np.r_[l, -np.ones(n)], np.r_[u, np.ones(n)]


def infeasible(seed, n=3):
    """a'x >= 1 and a'x <= 0.5, plus an ordinary row (the shape of `unbounded`'s data)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    A = np.vstack([a, a, rng.standard_normal((1, n))])
    return (np.eye(n), rng.standard_normal(n), A, np.array([1.0, -np.inf, -1.0]),
            np.array([np.inf, 0.5, 1.0]))


def unbounded(seed, n=3):
    """P = diag(1, .., 1, 0) and q_n = -1 with x_n >= 0 only: x_n -> inf."""
    rng = np.random.default_rng(seed)
    P = np.diag([1.0] * (n - 1) + [0.0])
    q = rng.standard_normal(n)
    q[-1] = -1.0
    A = np.vstack([rng.standard_normal((2, n - 1)) @ np.eye(n - 1, n), np.eye(n)[-1:]])
    return P, q, A, np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, np.inf])


def soft_bounds(seed, n=8):
    """An LP with "soft infinite" bounds |x_i| <= 1e6 and x* of size 1 (a typical bound
    magnitude taken as the length unit let violations of 1e3 * tol pass)."""
    rng = np.random.default_rng(seed)
    R = 0.1 * rng.standard_normal((n, n)) + np.eye(n)
    A = np.vstack([np.eye(n), R, -R])
    l = np.r_[-1e6 * np.ones(n), np.full(2 * n, -np.inf)]
    u = np.r_[1e6 * np.ones(n), 0.5 * np.ones(n), np.ones(n)]
    return np.zeros((n, n)), rng.standard_normal(n), A, l, u


def scaled(data, kind, k):
    """``data`` with the cost, the right-hand sides (and q) or every other row times 10^k."""
    P, q, A, l, u = (np.array(v, dtype=float) for v in data)
    s = 10.0 ** k
    if kind == "cost":
        return s * P, s * q, A, l, u
    if kind == "rhs":
        return P, s * q, A, s * l, s * u
    r = np.where(np.arange(A.shape[0]) % 2 == 0, s, 1.0)
    return P, q, r[:, None] * A, r * l, r * u


def objective_scale(kind, k):
    """The factor of the optimal value under `scaled` (x* is scaled by 10^k for "rhs")."""
    s = 10.0 ** k
    return {"cost": s, "rhs": s * s, "rows": 1.0}[kind]


# --------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------
def verifier(prob: QuadraticProgram, ref, tol, obj_factor=1.0, C=20.0):
    """``(verify, verify_certificate)`` for `judge`: ``ref`` is a reference Result of the
    problem that ``prob`` is a scaling of (its optimal value times ``obj_factor``)."""
    gamma = 1.0 / float(np.min(prob.units.c0))

    def verify(res):
        if ref.status is not Status.OPTIMAL:
            return f"optimal, but the reference says {ref.status.value}"
        x = np.asarray(res.x)
        if x.shape != (prob.n,) or not np.isfinite(x).all():
            return f"x of shape {x.shape} or not finite"
        obj, want = prob.objective(x), obj_factor * ref.objective
        # relative as the solver's tolerances: to the cost unit and the objective's terms, and
        # (`max_violation`) to the row norm times max(beta, largest row activity)
        big = max(abs(want), abs(x @ (prob.P @ x)), abs(prob.q @ x), gamma)
        gap = abs(obj - want) / big
        viol = prob.max_violation(x)
        if gap > C * tol or viol > C * tol:
            return (f"objective {obj:.10g} vs reference {want:.10g} (relative gap {gap:.2e}), "
                    f"relative normalized violation {viol:.2e}, tol {tol:g}")
        if not np.isclose(res.objective, obj, rtol=1e-9, atol=1e-12 * gamma):
            return f"reported objective {res.objective} is not the objective of x ({obj})"
        return None

    def verify_certificate(res):
        if res.status is not ref.status:
            return f"{res.status.value}, but the reference says {ref.status.value}"
        if res.info.get("certificate") is None:
            return "no certificate"
        return None

    return verify, verify_certificate


def reference(data):
    ref = QuadraticProgram(*data).reference()
    assert ref.status in (Status.OPTIMAL, *CERT), ref.status
    return ref


def judged(prob, ref, tol=1e-6, backend="numpy", allowed=None, obj_factor=1.0, **opts):
    verify, verify_certificate = verifier(prob, ref, tol, obj_factor)
    return judge(FAMILY, lambda: prob.solve(backend=backend, tol=tol, **opts), verify=verify,
                 verify_certificate=verify_certificate, allowed_statuses=allowed)


# --------------------------------------------------------------------------------------
# hostile data
# --------------------------------------------------------------------------------------
def _base():
    return feasible(0, n=3, m=2)


def _set(i, value):
    def change(d):
        d = list(d)
        d[i] = value(d[i]) if callable(value) else value
        return d
    return change


_POS = {"P": 0, "q": 1, "A": 2, "l": 3, "u": 4}
BAD_DATA = {}
for _name, _i in _POS.items():
    BAD_DATA[f"{_name} nan"] = (_name, _set(_i, lambda v: np.where(np.arange(v.size).reshape(
        v.shape) == 0, np.nan, v)))
    BAD_DATA[f"{_name} complex"] = (_name, _set(_i, lambda v: v * (1 + 1j)))
    BAD_DATA[f"{_name} object"] = (_name, _set(_i, lambda v: np.array(v, dtype=object).tolist()
                                               + [None]))
    BAD_DATA[f"{_name} string"] = (_name, _set(_i, "abc"))
    BAD_DATA[f"{_name} wrong shape"] = (_name, _set(_i, lambda v: v[..., :-1]))
    BAD_DATA[f"{_name} ragged"] = (_name, _set(_i, lambda v: [list(r) for r in np.atleast_2d(v)]
                                               + [[1.0]]))
for _name in ("P", "q"):
    BAD_DATA[f"{_name} None"] = (_name, _set(_POS[_name], None))
    BAD_DATA[f"{_name} inf"] = (_name, _set(_POS[_name], lambda v: v + np.inf))
BAD_DATA["A inf"] = ("A", _set(2, lambda v: np.where(v > 0.5, np.inf, v)))
BAD_DATA["empty"] = ("q", lambda d: [np.zeros((0, 0)), np.zeros(0), None, None, None])
BAD_DATA["P 0x0"] = ("P", _set(0, np.zeros((0, 0))))
BAD_DATA["A 0x0"] = ("A", _set(2, np.zeros((0, 0))))
BAD_DATA["l > u"] = ("l", lambda d: [*d[:3], d[4] + 1.0, d[4]])
BAD_DATA["l = +inf"] = ("l", _set(3, lambda v: v + np.inf))
BAD_DATA["u = -inf"] = ("u", _set(4, lambda v: np.full_like(v, -np.inf)))
BAD_DATA["P asymmetric"] = ("P", _set(0, lambda v: np.triu(v + 1.0)))
BAD_DATA["P negative diagonal"] = ("P", _set(0, lambda v: -v))
BAD_DATA["P 1-D"] = ("P", _set(0, lambda v: v[0]))
BAD_DATA["q 2-D wrong"] = ("q", _set(1, lambda v: v[:, None]))


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data(case):
    name, change = BAD_DATA[case]
    data = change(_base())
    names = tuple(f"{name} {w}" for w in ("must", "contains", "is", "has", ">", "<")) + \
        (f"{name} >", "positive semidefinite", "symmetric")
    judge(FAMILY, lambda: QuadraticProgram(*data).solve(), names=names)


SPARSE = ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"]


@pytest.mark.parametrize("fmt", SPARSE)
@pytest.mark.parametrize("array", [False, True])
def test_every_sparse_format(fmt, array):
    data = feasible(1, n=4, m=3)
    ref = reference(data)
    make = (lambda M: sp.csr_array(M).asformat(fmt)) if array else \
        (lambda M: sp.csr_matrix(M).asformat(fmt))
    prob = QuadraticProgram(make(data[0]), data[1], make(data[2]), data[3], data[4])
    assert judged(prob, ref) == "optimal"
    bad = sp.csr_matrix(data[0]).asformat(fmt).astype(float)
    bad = bad.tolil()
    bad[0, 0] = np.nan
    judge(FAMILY, lambda: QuadraticProgram(bad.asformat(fmt), *data[1:]).solve(),
          names=("P contains",))


# --------------------------------------------------------------------------------------
# options and warm starts
# --------------------------------------------------------------------------------------
OPTIONS = ["max_iter", "time_limit", "verbose", "check_every", "rho", "sigma", "alpha",
           "adaptive_rho", "adaptive_rho_tolerance", "scaling", "eps_primal_infeasible", "eps_dual_infeasible",
           "check_gap", "polish", "polish_refine_iter", "delta", "linsys", "seed", "dtype"]
_ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True),
                 st.sampled_from(["1e-3", "auto", "dense", "float32", "", 1j, [1e-3], (1,), {}]))


@given(name=st.sampled_from(OPTIONS), value=_ANY)
def test_option_types(name, value):
    """Any value of any option: an error naming it, or an answer that holds (verified)."""
    data = _base()
    prob = QuadraticProgram(*data)
    verify, verify_certificate = verifier(prob, reference(data), 1e-6)
    judge(FAMILY, lambda: prob.solve(tol=1e-6, **{name: value}), names=(name,), verify=verify,
          verify_certificate=verify_certificate)


@given(name=st.sampled_from(["tol", "eps_abs", "eps_rel"]),
       value=st.one_of(st.floats(1e-9, 1e-2), st.floats(allow_nan=True), st.sampled_from(
           [0, -1, "1", None, True, 1j])))
def test_tolerance_options(name, value):
    """A valid tolerance: the answer holds to it (verified); else an error naming it."""
    data = _base()
    prob = QuadraticProgram(*data)
    tol = float(value) if isinstance(value, float) and np.isfinite(value) and value > 0 else 1e-3
    others = {k: 1e-3 for k in ("eps_abs", "eps_rel") if k != name} if name != "tol" else {}
    verify, verify_certificate = verifier(prob, reference(data), max(tol, 1e-3) if name != "tol"
                                          else tol)
    judge(FAMILY, lambda: prob.solve(max_iter=20_000, **{name: value}, **others), names=(name,),
          verify=verify, verify_certificate=verify_certificate)


@pytest.fixture(scope="module")
def qp_and_result():
    prob = QuadraticProgram(*_base())
    return prob, prob.solve(tol=1e-6)


WARM = {
    "string": "x", "array": np.ones(3), "number": 1.0, "set": {1, 2},
    "dict bad key": {"xx": np.ones(3)}, "dict x shape": {"x": np.ones(4)},
    "dict y shape": {"x": np.ones(3), "y": np.ones(2)}, "dict rho shape": {"x": np.ones(3),
                                                                           "rho": np.ones(2)},
    "dict rho string": {"x": np.ones(3), "rho": "a"}, "pair shapes": (np.ones(2), np.ones(5)),
    "pair ragged": ([1.0, [2.0]], np.ones(5)), "pair complex": (1j * np.ones(3), np.ones(5)),
    "triple": (np.ones(3), np.ones(5), 1.0), "pair object": (np.array([None] * 3), np.ones(5)),
}


@pytest.mark.parametrize("case", sorted(WARM))
def test_malformed_warm_start(case, qp_and_result):
    prob, _ = qp_and_result
    out = judge(FAMILY, lambda: prob.solve(warm_start=WARM[case]), names=("warm_start",))
    assert out == "error"


def test_warm_start_from_another_problem(qp_and_result):
    """A Result of a QP of another size: a ValueError saying the expected shapes."""
    _, res = qp_and_result
    other = QuadraticProgram(*feasible(2, n=5, m=2))
    assert judge(FAMILY, lambda: other.solve(warm_start=res), names=("expected",)) == "error"


def test_warm_start_round_trip(qp_and_result):
    prob, res = qp_and_result
    ref = reference(_base())
    verify, verify_certificate = verifier(prob, ref, 1e-6)
    again = prob.solve(tol=1e-6, warm_start=res)
    assert judge(FAMILY, lambda: again, verify=verify) == "optimal"
    assert again.iterations <= res.iterations


# --------------------------------------------------------------------------------------
# random valid instances
# --------------------------------------------------------------------------------------
@given(n=st.integers(1, 6), m=st.integers(0, 6), seed=st.integers(0, 10**6),
       singular=st.booleans(), zero_rows=st.booleans(), equalities=st.integers(0, 2),
       kind=st.sampled_from(["feasible", "feasible", "infeasible", "unbounded", "lp", "soft"]),
       sparse=st.booleans(), tol=st.sampled_from([1e-3, 1e-6]))
def test_random_instances(n, m, seed, singular, zero_rows, equalities, kind, sparse, tol):
    if kind == "soft":
        data = soft_bounds(seed, n)
    elif kind == "infeasible":
        data = infeasible(seed, max(n, 2))
    elif kind == "unbounded":
        data = unbounded(seed, max(n, 2))
    else:
        data = feasible(seed, n, m, singular, zero_rows, equalities)
        if kind == "lp":
            data = (0 * data[0], *data[1:])
    ref = reference(data)
    if sparse:
        data = (sp.csc_matrix(data[0]), data[1], sp.coo_matrix(data[2]), data[3], data[4])
    judged(QuadraticProgram(*data), ref, tol=tol, max_iter=20_000)


# --------------------------------------------------------------------------------------
# scale invariance
# --------------------------------------------------------------------------------------
def _lp(seed):
    return lambda: (0 * feasible(seed)[0], *feasible(seed)[1:])


INSTANCES = {"feasible0": lambda: feasible(0), "feasible1 (singular P)": lambda: feasible(
    1, singular=True, zero_rows=True), "LP3": _lp(3), "infeasible": lambda: infeasible(0),
    "unbounded": lambda: unbounded(0), "soft bounds LP": lambda: soft_bounds(0),
    # a degenerate LP on which ADMM needs 7 000 to 85 000 iterations: rounding-level differences
    # between the scaled copies (1e-16) steer the adaptive penalty differently (20 to 350
    # refactorizations), so the counts vary with k while the status and answer do not (slow run
    # only, with max_iter 200 000)
    "LP2 (hard)": _lp(2)}
SLOW_INSTANCES = {"LP2 (hard)"}
KS = list(range(-9, 10, 3))  # every 3rd k in the default run, all of them with -m slow
K_PARAMS = [k if k in KS else pytest.param(k, marks=pytest.mark.slow) for k in range(-9, 10)]


@pytest.fixture(scope="module")
def references():
    return {name: reference(make()) for name, make in INSTANCES.items()
            if name not in SLOW_INSTANCES}


@pytest.mark.parametrize("k", K_PARAMS)
@pytest.mark.parametrize("kind", ["cost", "rhs", "rows"])
@pytest.mark.parametrize("name", [n if n not in SLOW_INSTANCES else pytest.param(
    n, marks=pytest.mark.slow) for n in sorted(INSTANCES)])
def test_scale_invariance(name, kind, k, references):
    """The unscaled problem's status, and its answer scaled, at every 10^k."""
    ref = references.get(name) or reference(INSTANCES[name]())
    prob = QuadraticProgram(*scaled(INSTANCES[name](), kind, k))
    out = judged(prob, ref, obj_factor=objective_scale(kind, k), allowed={ref.status},
                 max_iter=200_000 if name in SLOW_INSTANCES else 20_000)
    assert out == ("optimal" if ref.status is Status.OPTIMAL else f"status:{ref.status.value}")


@pytest.mark.parametrize("name, kind, k", [("feasible0", "rows", -9), ("feasible0", "cost", 9),
                                           ("infeasible", "rhs", -9), ("unbounded", "rows", 9)])
def test_scale_invariance_jax(name, kind, k, references):
    """The JAX back end follows the same status rules (a few cases, of two shapes: each shape
    costs a compilation)."""
    ref = references[name]
    prob = QuadraticProgram(*scaled(INSTANCES[name](), kind, k))
    out = judged(prob, ref, backend="jax", obj_factor=objective_scale(kind, k),
                 allowed={ref.status}, max_iter=20_000)
    assert out == ("optimal" if ref.status is Status.OPTIMAL else f"status:{ref.status.value}")


@pytest.mark.slow
def test_scale_invariance_jax_batch(references):
    """A JAX batch of the row-scaled QP at k = -9, 0, 9: every member optimal and verified."""
    data = INSTANCES["feasible0"]()
    members = [scaled(data, "rows", k) for k in (-9, 0, 9)]
    A = np.stack([d[2] for d in members])
    l, u = np.stack([d[3] for d in members]), np.stack([d[4] for d in members])
    res = admm_qp(data[0], data[1], A, l, u, backend="jax", tol=1e-6, max_iter=20_000)
    assert res.info["statuses"] == [Status.OPTIMAL] * 3
    for d, x in zip(members, res.x):
        prob = QuadraticProgram(*d)
        verify, _ = verifier(prob, references["feasible0"], 1e-6)
        fake = type(res)(x=x, status=Status.OPTIMAL, objective=prob.objective(x))
        assert verify(fake) is None
