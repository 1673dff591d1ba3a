"""Fuzz suite, linear programs: hostile input to LinearProgram / halpern_pdhg, random valid
instances verified against HiGHS, and the scale sweep.

Every call is classified by `harness.judge`: a clean cvxkit error naming the argument, an honest
non-optimal status, or a result verified here on the user's data:

* ``optimal``: the objective within ``20 tol`` (relative) of HiGHS's optimal value (of the
  unscaled instance, times the scale, in the sweep: HiGHS's absolute tolerances fail on some
  scaled ones), the rows violated by at most ``20 tol (||b|| + || |K||x| ||)`` (Euclidean, as
  the solver's test) and the bounds by ``20 tol`` relative to each bound;
* ``primal_infeasible``: the certificate ``y`` (signs allowed by the rows) shows that no ``x``
  within the bounds and ``||x||_inf <= 1e4 sigma`` satisfies the rows (``sigma`` the magnitude of
  the data's bounds), and HiGHS agrees that the instance is infeasible;
* ``dual_infeasible``: the ray ``d`` is in the recession cone of the bounds, ``c^T d < 0`` and
  the rows' recession cone holds ``K d`` to ``1e-6`` relative to ``||c||``, row norms and ``d``,
  and HiGHS agrees that the instance is unbounded.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from cvxkit.problems import LinearProgram
from cvxkit.solvers import Status
from cvxkit.solvers.halpern_pdhg import halpern_pdhg

from .harness import judge

FAMILY = "lp"
SPARSE = ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"]


# --------------------------------------------------------------------------------------
# instances
# --------------------------------------------------------------------------------------
def feasible(seed, n=5, m_ub=4, m_eq=1, boxed=0.4, variant="plain"):
    """A feasible, bounded LP (linprog's form): rows through a point x0 >= 0, a cost that is a
    nonnegative combination of the rows' and bounds' normals (so the dual is feasible too).

    ``variant``: ``"plain"``; ``"free"`` (some variables without lower bound, their cost from the
    rows only); ``"zero cost"`` (a feasibility problem); ``"homogeneous"`` (x0 = 0 and b = 0:
    optimal value 0); ``"degenerate"`` (every inequality active at x0)."""
    rng = np.random.default_rng(seed)
    A_ub, A_eq = rng.standard_normal((m_ub, n)), rng.standard_normal((m_eq, n))
    x0 = np.zeros(n) if variant == "homogeneous" else rng.uniform(0, 1, n)
    slack = np.zeros(m_ub) if variant in ("homogeneous", "degenerate") else rng.uniform(0.1, 1, m_ub)
    w, v = rng.uniform(0, 1, m_ub), rng.standard_normal(m_eq)
    lb = np.where(rng.random(n) < 0.5, -np.inf, 0.0) if variant == "free" else np.zeros(n)
    ub = np.where(rng.random(n) < boxed, 2.0, np.inf)
    c = -A_ub.T @ w + A_eq.T @ v + np.where(np.isfinite(lb), rng.uniform(0, 1, n), 0.0)
    return dict(c=np.zeros(n) if variant == "zero cost" else c, A_ub=A_ub, b_ub=A_ub @ x0 + slack,
                A_eq=A_eq if m_eq else None, b_eq=A_eq @ x0 if m_eq else None, lb=lb, ub=ub)


def infeasible(seed, n=4):
    """a^T x <= 1 and a^T x >= 3 (written -a^T x <= -3) among random feasible rows."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, n)
    A = rng.standard_normal((2, n))
    return dict(c=rng.standard_normal(n), A_ub=np.vstack([a, -a, A]),
                b_ub=np.r_[1.0, -3.0, np.abs(A).sum(1) + 1.0], A_eq=None, b_eq=None, lb=0.0, ub=np.inf)


def unbounded(seed, n=4):
    """A cost decreasing along a ray d >= 0 with A d <= 0."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.5, 1.5, n)
    A = rng.standard_normal((3, n))
    A -= np.outer(np.maximum(A @ d, 0) + 0.1, d) / (d @ d)  # A d <= -0.1 |d|^2 / |d|^2 < 0
    c = rng.standard_normal(n)
    c -= ((c @ d) + 1.0) * d / (d @ d)  # c^T d = -1
    return dict(c=c, A_ub=A, b_ub=rng.uniform(0.5, 2, 3), A_eq=None, b_eq=None, lb=0.0, ub=np.inf)


def scaled(data, kind, k):
    """The same LP with the cost, the right-hand sides (and bounds), the rows, or one row (the
    first inequality, with its bound) times 10^k."""
    d, s = dict(data), 10.0 ** k
    if kind == "one row":
        d["A_ub"], d["b_ub"] = d["A_ub"].copy(), d["b_ub"].copy()
        d["A_ub"][0] *= s
        d["b_ub"][0] *= s
    elif kind == "cost":
        d["c"] = d["c"] * s
    elif kind == "rhs":
        d["b_ub"] = d["b_ub"] * s
        d["lb"], d["ub"] = np.asarray(d["lb"]) * s, np.asarray(d["ub"]) * s
        if d["b_eq"] is not None:
            d["b_eq"] = d["b_eq"] * s
    else:
        d["A_ub"], d["b_ub"] = d["A_ub"] * s, d["b_ub"] * s
        if d["A_eq"] is not None:
            d["A_eq"], d["b_eq"] = d["A_eq"] * s, d["b_eq"] * s
    return d


# --------------------------------------------------------------------------------------
# verification on the user's data
# --------------------------------------------------------------------------------------
def _rows(lp):
    c, K, lc, uc, lb, ub = lp.bound_form()
    return c, K.toarray(), lc, uc, lb, ub


def verify_optimal(lp, tol, ref_obj):
    def check(res):
        x = np.asarray(res.x)
        if x.shape != (lp.n,) or not np.isfinite(x).all():
            return f"x of shape {x.shape} or not finite"
        c, K, lc, uc, lb, ub = _rows(lp)
        Kx, terms = K @ x, np.abs(K) @ np.abs(x)
        viol = np.maximum(np.maximum(lc - Kx, Kx - uc), 0.0)
        b = np.maximum(np.where(np.isfinite(lc), np.abs(lc), 0), np.where(np.isfinite(uc), np.abs(uc), 0))
        # the documented measure (docs/lp.md, Termination): Euclidean, each row divided by its
        # infinity norm kappa_i, relative to ||b / kappa|| (the terms' magnitudes if b = 0)
        kappa = np.abs(K).max(axis=1, initial=0.0) if K.shape[0] else np.ones(0)
        kappa = np.where(kappa > 0, kappa, 1.0)
        scale_r = np.linalg.norm(b / kappa) + np.linalg.norm(terms / kappa)
        if np.linalg.norm(viol / kappa) > 20 * tol * scale_r:
            return f"rows violated by {np.linalg.norm(viol / kappa):.3g} (scale {scale_r:.3g})"
        bviol = np.maximum(np.maximum(lb - x, x - ub), 0.0)
        bscale = np.maximum(np.abs(x), np.where(np.isfinite(lb), np.abs(lb), 0) + np.where(np.isfinite(ub), np.abs(ub), 0))
        if (bviol > 20 * tol * bscale + 1e-300).any():
            return f"bound violated by {bviol.max():.3g}"
        obj = float(c @ x)
        if abs(res.objective - obj) > 1e-9 * max(abs(obj), 1e-300):
            return f"reported objective {res.objective} != c^T x {obj}"
        floor = 1e-3 * np.linalg.norm(c * x)
        if abs(obj - ref_obj) > 20 * tol * max(abs(ref_obj), floor):
            return f"objective {obj:.10g} vs HiGHS {ref_obj:.10g}"
        return None
    return check


def _sigma(lc, uc, lb, ub, K):
    kappa = np.abs(K).max(axis=1, initial=0.0)
    kappa = np.where(kappa > 0, kappa, 1.0)
    fin = lambda v: np.abs(v[np.isfinite(v)])  # noqa: E731
    return max(np.max(np.r_[fin(lb), fin(ub), fin(lc) / kappa[np.isfinite(lc)],
                            fin(uc) / kappa[np.isfinite(uc)]], initial=0.0), 1e-300), kappa


def verify_certificate(lp, ref_status):
    def check(res):
        status = Status(res.status)
        if status is not ref_status:
            return f"status {status.value}, HiGHS on the unscaled instance: {ref_status.value}"
        c, K, lc, uc, lb, ub = _rows(lp)
        cert = np.asarray(res.info["certificate"])
        sigma, kappa = _sigma(lc, uc, lb, ub, K)
        if status is Status.PRIMAL_INFEASIBLE:
            y = cert
            if (y[~np.isfinite(lc)] > 0).any() or (y[~np.isfinite(uc)] < 0).any():
                return "Farkas multipliers of the wrong sign"
            low = float(np.sum(np.where(y > 0, np.where(np.isfinite(lc), lc, 0) * y,
                                        np.where(np.isfinite(uc), uc, 0) * y)))
            g = K.T @ y
            R = 1e4 * sigma
            top = float(np.sum(np.where(g > 0, g * np.minimum(ub, R), g * np.maximum(lb, -R))))
            if not top < low - 1e-9 * abs(low):
                return f"y^T K x reaches {top:.6g} >= {low:.6g} within ||x|| <= {R:.3g}"
            return None
        d = cert
        dn = np.abs(d).max()
        if dn == 0 or (d[np.isfinite(lb)] < 0).any() or (d[np.isfinite(ub)] > 0).any():
            return "ray not in the recession cone of the bounds"
        if not c @ d < -1e-6 * np.abs(c).max() * dn:
            return f"c^T d = {c @ d:.3g} is not negative"
        Kd = K @ d
        v = np.where(np.isfinite(lc), np.maximum(-Kd, 0), 0) + np.where(np.isfinite(uc), np.maximum(Kd, 0), 0)
        if (v > 1e-6 * kappa * dn).any():
            return f"K d leaves the rows' recession cone by {v.max():.3g}"
        return None
    return check


def solve_and_judge(data, tol, ref, **opts):
    """Solve ``data`` and judge it against the reference ``ref = (status, objective)``."""
    lp = LinearProgram(**data)
    status, obj = ref
    return judge(FAMILY, lambda: lp.solve(tol=tol, **opts), verify=verify_optimal(lp, tol, obj),
                 verify_certificate=verify_certificate(lp, status),
                 allowed_statuses=(status, Status.MAX_ITER))


def reference(data):
    ref = LinearProgram(**data).reference()
    assert ref.status in (Status.OPTIMAL, Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE), ref
    return ref.status, ref.objective


# --------------------------------------------------------------------------------------
# hostile input
# --------------------------------------------------------------------------------------
def _corrupt(kind, d):
    d = {k: (np.array(v, dtype=float) if isinstance(v, np.ndarray) else v) for k, v in d.items()}
    if kind == "nan c":
        d["c"][0] = np.nan
    elif kind == "inf c":
        d["c"][-1] = np.inf
    elif kind == "nan A":
        d["A_ub"][0, 0] = np.nan
    elif kind == "inf A sparse":
        A = sp.lil_matrix(d["A_ub"])
        A[0, 0] = np.inf
        d["A_ub"] = A
    elif kind == "nan b":
        d["b_ub"][0] = np.nan
    elif kind == "-inf b_ub":
        d["b_ub"][0] = -np.inf
    elif kind == "inf b_eq":
        d["b_eq"][0] = np.inf
    elif kind == "nan lb":
        d["lb"] = np.r_[np.nan, np.zeros(len(d["c"]) - 1)]
    elif kind == "lb > ub":
        d["lb"], d["ub"] = 1.0, 0.5
    elif kind == "short b":
        d["b_ub"] = d["b_ub"][:-1]
    elif kind == "wide A":
        d["A_ub"] = np.hstack([d["A_ub"], d["A_ub"][:, :1]])
    elif kind == "3-D A":
        d["A_ub"] = d["A_ub"][None]
    elif kind == "empty c":
        d["c"] = np.zeros(0)
    elif kind == "0x0 A":
        d["A_ub"], d["b_ub"] = np.zeros((0, 0)), np.zeros(0)
    elif kind == "complex c":
        d["c"] = d["c"] + 1j
    elif kind == "complex A sparse":
        d["A_ub"] = sp.csr_matrix(d["A_ub"] * (1 + 1j))
    elif kind == "object A":
        d["A_ub"] = np.array(d["A_ub"].tolist(), dtype=object)
        d["A_ub"][0, 0] = "x"
    elif kind == "ragged A":
        d["A_ub"] = [list(r) for r in d["A_ub"]]
        d["A_ub"][0] = d["A_ub"][0][:-1]
    elif kind == "ragged c":
        d["c"] = [list(d["c"][:2]), [1.0]]
    elif kind == "str b":
        d["b_ub"] = "1 2 3"
    elif kind == "None b":
        d["b_ub"] = None
    elif kind == "b without A":
        d["A_ub"] = None
    elif kind == "dict lb":
        d["lb"] = {"a": 1}
    return d


BAD = {"nan c": ("c ",), "inf c": ("c ",), "nan A": ("a_ub",), "inf A sparse": ("a_ub",),
       "nan b": ("b_ub",), "-inf b_ub": ("b_ub",), "inf b_eq": ("b_eq",), "nan lb": ("lb",),
       "lb > ub": ("lb",), "short b": ("b_ub",), "wide A": ("a_ub",), "3-D A": ("a_ub",),
       "empty c": ("c ",), "0x0 A": ("a_ub",), "complex c": ("c ",), "complex A sparse": ("a_ub",),
       "object A": ("a_ub",), "ragged A": ("a_ub",), "ragged c": ("c ",), "str b": ("b_ub",),
       "None b": ("b_ub",), "b without A": ("a_ub",), "dict lb": ("lb",)}


@pytest.mark.parametrize("kind", sorted(BAD))
@given(seed=st.integers(0, 10**6))
def test_hostile_data(kind, seed):
    d = _corrupt(kind, feasible(seed, m_eq=1))
    out = judge(FAMILY, lambda: LinearProgram(**d).solve(tol=1e-4), names=BAD[kind])
    assert out == "error", (kind, out)


@pytest.mark.parametrize("fmt", SPARSE)
def test_every_sparse_format(fmt):
    d = feasible(3)
    ref = reference(d)
    for key in ("A_ub", "A_eq"):
        d[key] = getattr(sp, f"{fmt}_matrix" if key == "A_ub" else f"{fmt}_array")(d[key])
    assert solve_and_judge(d, 1e-6, ref) == "optimal"
    # the solver's own entry point takes them too
    lp = LinearProgram(**d)
    _, K, lc, uc, lb, ub = lp.bound_form()
    K = getattr(sp, f"{fmt}_matrix")(K)
    out = judge(FAMILY, lambda: halpern_pdhg(lp.c, K, lc, uc, lb, ub, tol=1e-6),
                verify=verify_optimal(lp, 1e-6, ref[1]))
    assert out == "optimal"


BAD_OPTIONS = [("tol", "1e-6"), ("tol", -1.0), ("tol", np.nan), ("max_iter", 2.5), ("max_iter", 0),
               ("check_every", True), ("check_every", 0), ("sync_every", 1.5), ("verbose", "yes"),
               ("time_limit", "1"), ("time_limit", -1.0), ("seed", -1), ("dtype", "float16"),
               ("callback", 3), ("reflection", "1"), ("reflection", 1.5), ("eps_abs", "0"),
               ("eps_rel", -1.0), ("eps_primal_infeasible", None), ("eps_dual_infeasible", 0.0),
               ("ruiz_iters", 2.0), ("ruiz_iters", -1), ("pock_chambolle", 1), ("rescale", "no"),
               ("primal_weight", "a"), ("primal_weight", 0.0), ("adaptive_primal_weight", None),
               ("sparse_format", 3), ("sparse_format", "csr"), ("mesh", object()), ("rho", 1.0)]


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=lambda c: f"{c[0]}={c[1]!r}"[:30])
def test_bad_options(case):
    name, value = case
    lp = LinearProgram(**feasible(0))
    names = (name,) if name not in ("mesh", "rho") else (name, "backend")
    assert judge(FAMILY, lambda: lp.solve(**{name: value}), names=names) == "error"


BAD_WARM = [3, "x", 1.5, {"z": np.zeros(5)}, (np.zeros(5),), (np.zeros(5), np.zeros(5), 0),
            {"x": np.zeros(4)}, (np.zeros(5), np.zeros(4)), (np.zeros((5, 1)), None),
            {"x": np.r_[np.nan, np.zeros(4)]}, (np.r_[np.inf, np.zeros(4)], None),
            ([0, [1], 2, 3, 4], None), (np.zeros(5) * 1j, None), ({"x": 1}, None)]


@pytest.mark.parametrize("warm", BAD_WARM, ids=range(len(BAD_WARM)))
def test_malformed_warm_start(warm):
    lp = LinearProgram(**feasible(1))
    assert judge(FAMILY, lambda: lp.solve(warm_start=warm), names=("warm_start",)) == "error"
    # the solver's own entry point says the same
    out = judge(FAMILY, lambda: halpern_pdhg(*lp.bound_form(), warm_start=warm), names=("warm_start",))
    assert out == "error"


# --------------------------------------------------------------------------------------
# random valid instances
# --------------------------------------------------------------------------------------
VARIANTS = ["plain", "free", "zero cost", "homogeneous", "degenerate"]


@given(seed=st.integers(0, 10**6), n=st.integers(1, 7), m_ub=st.integers(0, 5),
       m_eq=st.integers(0, 2), tol=st.sampled_from([1e-4, 1e-6, 1e-8]), sparse=st.booleans(),
       variant=st.sampled_from(VARIANTS))
def test_random_feasible(seed, n, m_ub, m_eq, tol, sparse, variant):
    d = feasible(seed, n, m_ub, min(m_eq, n), variant=variant)
    if sparse:
        d["A_ub"] = sp.coo_matrix(d["A_ub"])
    ref = reference(d)
    assert ref[0] is Status.OPTIMAL
    assert solve_and_judge(d, tol, ref, max_iter=50_000) == "optimal"


@given(seed=st.integers(0, 10**6), n=st.integers(2, 6), which=st.sampled_from(["infeasible", "unbounded"]))
def test_random_infeasible_or_unbounded(seed, n, which):
    d = (infeasible if which == "infeasible" else unbounded)(seed, n)
    ref = reference(d)
    want = Status.PRIMAL_INFEASIBLE if which == "infeasible" else Status.DUAL_INFEASIBLE
    assert ref[0] is want
    assert solve_and_judge(d, 1e-6, ref, max_iter=50_000) == f"status:{want.value}"


@given(seed=st.integers(0, 10**6), tol=st.sampled_from([1e-4, 1e-6, 1e-8]),
       variant=st.sampled_from(VARIANTS))
def test_float32_is_honest(seed, tol, variant):
    """float32 iterates: an ``optimal`` must still hold in float64 on the user's data (the
    solver re-checks it there); where float32 cannot reach ``tol`` the status says so."""
    d = feasible(seed, variant=variant)
    ref = reference(d)
    solve_and_judge(d, tol, ref, dtype="float32", max_iter=20_000)


# --------------------------------------------------------------------------------------
# scale invariance: cost, right-hand sides, rows times 10^k
# --------------------------------------------------------------------------------------
SWEEP = {"feasible 0": feasible(0), "feasible 1": feasible(1, n=6, m_ub=3, m_eq=2),
         "feasible 2": feasible(2, n=4, m_ub=5, m_eq=0), "infeasible": infeasible(0),
         "unbounded": unbounded(0)}


def _sweep(name, kind, k, tol=1e-6, backend="numpy"):
    base = SWEEP[name]
    status, obj = reference(base)
    want = obj * 10.0 ** k if (status is Status.OPTIMAL and kind in ("cost", "rhs")) else obj
    out = solve_and_judge(scaled(base, kind, k), tol, (status, want), backend=backend)
    assert out == ("optimal" if status is Status.OPTIMAL else f"status:{status.value}"), \
        (name, kind, k, out)


KINDS = ["cost", "rhs", "rows", "one row"]


@pytest.mark.parametrize("k", range(-9, 10, 3))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(SWEEP))
def test_scale_sweep(name, kind, k):
    _sweep(name, kind, k)


@pytest.mark.slow
@pytest.mark.parametrize("k", [k for k in range(-9, 10) if k % 3])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(SWEEP))
def test_scale_sweep_all_k(name, kind, k):
    _sweep(name, kind, k)


@pytest.mark.slow
@pytest.mark.parametrize("k", [-9, 9])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["feasible 0", "infeasible", "unbounded"])
def test_scale_sweep_jax(name, kind, k):
    _sweep(name, kind, k, backend="jax")


@given(seed=st.integers(0, 10**6), kind=st.sampled_from(KINDS),
       k=st.integers(-9, 9), which=st.sampled_from(["feasible", "free", "infeasible", "unbounded"]))
def test_scale_random_instance(seed, kind, k, which):
    """The sweep on random instances: same status as HiGHS on the unscaled one, the scaled value."""
    base = {"feasible": lambda: feasible(seed), "free": lambda: feasible(seed, variant="free"),
            "infeasible": lambda: infeasible(seed), "unbounded": lambda: unbounded(seed)}[which]()
    status, obj = reference(base)
    want = obj * 10.0 ** k if (status is Status.OPTIMAL and kind in ("cost", "rhs")) else obj
    out = solve_and_judge(scaled(base, kind, k), 1e-6, (status, want), max_iter=50_000)
    assert out == ("optimal" if status is Status.OPTIMAL else f"status:{status.value}"), (kind, k, out)
