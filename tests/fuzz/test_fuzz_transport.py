"""Fuzz suite, optimal transport: hostile input to OptimalTransport / sinkhorn / network_simplex /
mirror_sinkhorn, random valid instances verified against POT, and the scale sweep.

Every call is classified by `harness.judge`: a clean cvxkit error naming the argument, an honest
non-optimal status, or an ``optimal`` that is verified here on the generated instance:

* exact OT: ``ot.emd2`` on the generated instance (when POT itself reports success; POT reports
  feasible instances with a total mass of ~1e9 or negative costs as infeasible, and then
  scipy's HiGHS LP on the same instance is the reference), to ``1e-8 * sum(a) * max|C|``;
* entropic OT: the claimed tolerance (relative L1 marginal error) on the user's data, and, for
  ``tol <= 1e-8``, ``ot.sinkhorn`` (log domain, run to 1e-14 relative) on the generated instance:
  plan within ``1e-6 * max P`` and ``<C, P>`` matching ``ot.sinkhorn2``.
"""
from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from cvxkit.problems import OptimalTransport
from cvxkit.solvers import Status
from cvxkit.solvers.mirror_sinkhorn import mirror_sinkhorn
from cvxkit.solvers.network_simplex import network_simplex
from cvxkit.solvers.sinkhorn import sinkhorn

from .harness import judge

FAMILY = "transport"


def instance(n=5, m=4, seed=0, mass=1.0, cost=1.0, shift=0.0, zeros=False):
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) + 0.05, rng.random(m) + 0.05
    if zeros and n > 1:
        a[rng.integers(n)] = 0.0
    if zeros and m > 1:
        b[rng.integers(m)] = 0.0
    a, b = mass * a / a.sum(), mass * b / b.sum()
    C = cost * (rng.random((n, m)) + shift)
    return a, b, C


def rel_marginal_error(P, a, b):
    return (np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()) / a.sum()


# --------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------
def exact_reference(a, b, C) -> float:
    """Optimal value of exact OT on this instance: POT, or HiGHS where POT reports failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P, log = ot.emd(a, b * (a.sum() / b.sum()), C, log=True, numItermax=10**7)
    if log["result_code"] == 1 and rel_marginal_error(P, a, b) <= 1e-12:
        return float(np.vdot(C, P))
    from scipy.optimize import linprog

    n, m = C.shape
    A = sp.vstack([sp.kron(sp.eye(n), np.ones((1, m))), sp.kron(np.ones((1, n)), sp.eye(m))])
    # scaled to unit mass and cost spread (HiGHS's absolute tolerances), then scaled back
    mass, lo, spread = a.sum(), C.min(), max(np.ptp(C), 1e-300)
    res = linprog(((C - lo) / spread).ravel(), A_eq=A, b_eq=np.r_[a, b] / mass, bounds=(0, None),
                  method="highs")
    assert res.status == 0, res.message
    return float(mass * (spread * res.fun + lo))


def verify_exact(a, b, C):
    def check(res):
        P, mass = np.asarray(res.x), a.sum()
        if P.shape != C.shape or not np.isfinite(P).all():
            return f"plan of shape {P.shape} or not finite"
        if P.min() < -1e-12 * mass:
            return f"negative plan entry {P.min():.3g}"
        if rel_marginal_error(P, a, b) > 1e-8:
            return f"relative marginal error {rel_marginal_error(P, a, b):.3g}"
        ref = exact_reference(a, b, C)
        tol = 1e-8 * mass * np.abs(C).max()
        if abs(res.objective - ref) > tol or abs(float(np.vdot(C, P)) - ref) > tol:
            return f"objective {res.objective!r} vs reference {ref!r}"
        return None

    return check


def entropic_reference(a, b, C, reg):
    """POT's log-domain Sinkhorn run to 1e-14 relative: (plan, <C, P>), or None if it did not get there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P = ot.sinkhorn(a, b, C, reg, method="sinkhorn_log", stopThr=1e-14 * a.sum(),
                        numItermax=200_000)
        cost = ot.sinkhorn2(a, b, C, reg, method="sinkhorn_log", stopThr=1e-14 * a.sum(),
                            numItermax=200_000)
    if not np.isfinite(P).all() or rel_marginal_error(P, a, b) > 1e-11:
        return None
    return P, float(cost)


def verify_entropic(a, b, C, reg, tol):
    def check(res):
        P, mass = np.asarray(res.x), a.sum()
        if P.shape != C.shape or not np.isfinite(P).all() or P.min() < 0:
            return "plan not finite or negative"
        err = rel_marginal_error(P, a, b)
        if err > tol * (1 + 1e-9):
            return f"claimed tol {tol:.1e} but the relative marginal error is {err:.3g}"
        if tol > 1e-8:  # optimal promises the marginals only; the plan may differ more
            return None
        ref = entropic_reference(a, b, C, reg)
        assert ref is not None, "POT's reference did not converge: choose a larger reg"
        Pref, cost = ref
        if np.abs(P - Pref).max() > 1e-6 * Pref.max():
            return f"plan differs from POT's by {np.abs(P - Pref).max() / Pref.max():.3g} (relative)"
        if abs(res.info["transport_cost"] - cost) > 1e-6 * mass * np.abs(C).max():
            return f"<C, P> = {res.info['transport_cost']!r} vs POT {cost!r}"
        return None

    return check


# --------------------------------------------------------------------------------------
# hostile input
# --------------------------------------------------------------------------------------
def ragged(v):
    return [list(v[:2]), list(v[2:3])]


BAD_DATA = {  # name: (change of (a, b, C), words of which one must be in the message)
    "nan a": (lambda a, b, C: (np.r_[np.nan, a[1:]], b, C), ("a",)),
    "inf b": (lambda a, b, C: (a, np.r_[b[:-1], np.inf], C), ("b",)),
    "nan C": (lambda a, b, C: (a, b, np.where(C > 0.5, np.nan, C)), ("C",)),
    "-inf C": (lambda a, b, C: (a, b, np.where(C > 0.5, -np.inf, C)), ("C",)),
    "negative a": (lambda a, b, C: (-a, b, C), ("a",)),
    "unequal mass": (lambda a, b, C: (a, 2 * b, C), ("mass",)),
    "zero mass": (lambda a, b, C: (0 * a, 0 * b, C), ("mass",)),
    "C shape": (lambda a, b, C: (a, b, C[:, :-1]), ("C",)),
    "C 3-D": (lambda a, b, C: (a, b, C[None]), ("C",)),
    "C 1-D": (lambda a, b, C: (a, b, C.ravel()), ("C",)),
    "a 2-D": (lambda a, b, C: (a[:, None], b, C), ("a",)),
    "empty a": (lambda a, b, C: (a[:0], b, C[:0]), ("a",)),
    "empty b": (lambda a, b, C: (a, b[:0], C[:, :0]), ("b",)),
    "complex C": (lambda a, b, C: (a, b, C + 1j), ("C",)),
    "complex a": (lambda a, b, C: (a + 0j, b, C), ("a",)),
    "object C": (lambda a, b, C: (a, b, C.astype(object)), ("C",)),
    "object a with None": (lambda a, b, C: (np.r_[a[:-1], None], b, C), ("a",)),
    "ragged a": (lambda a, b, C: (ragged(a), b, C), ("a",)),
    "ragged C": (lambda a, b, C: (a, b, [list(C[0]), list(C[1, :2])]), ("C",)),
    "string a": (lambda a, b, C: ("a", b, C), ("a",)),
    "strings in a": (lambda a, b, C: (["x"] * len(a), b, C), ("a",)),
    "None C": (lambda a, b, C: (a, b, None), ("C",)),
    "None a": (lambda a, b, C: (None, b, C), ("a",)),
    "dict C": (lambda a, b, C: (a, b, {"C": C}), ("C",)),
    "overflowing mass": (lambda a, b, C: (np.full(a.size, 1e308), np.full(b.size, 1.25e308), C),
                         ("mass",)),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
@pytest.mark.parametrize("reg", [None, 0.1])
def test_bad_data(case, reg):
    change, names = BAD_DATA[case]
    args = change(*instance())

    def call():
        prob = OptimalTransport(*args, reg=reg)
        return prob.solve()

    assert judge(FAMILY, call, names=names) == "error"
    # the solvers themselves validate the same way
    solver = network_simplex if reg is None else (lambda a, b, C: sinkhorn(a, b, C, reg))
    assert judge(FAMILY, lambda: solver(*args), names=names) == "error"
    if "C" not in case and "mass" not in case:
        assert judge(FAMILY, lambda: mirror_sinkhorn(args[0], args[1], instance()[2], max_iter=5),
                     names=names) == "error"


@pytest.mark.parametrize("reg", [0.0, -1.0, np.nan, np.inf, "0.1", 1j, [0.1], True])
def test_bad_reg(reg):
    a, b, C = instance()
    assert judge(FAMILY, lambda: OptimalTransport(a, b, C, reg=reg), names=("reg",)) == "error"
    assert judge(FAMILY, lambda: sinkhorn(a, b, C, reg), names=("reg",)) == "error"


SPARSE = [f"{fmt}_{kind}" for fmt in ("csr", "csc", "coo", "lil", "dok", "dia", "bsr")
          for kind in ("matrix", "array")]


@pytest.mark.parametrize("fmt", SPARSE)
def test_every_sparse_format_is_densified(fmt):
    a, b, C = instance(seed=2)
    C[C < 0.4] = 0.0  # an absent entry is a cost of 0
    Cs = getattr(sp, fmt)(C)
    judge(FAMILY, lambda: OptimalTransport(a, b, Cs).solve(), verify=verify_exact(a, b, C))
    judge(FAMILY, lambda: OptimalTransport(a, b, Cs, reg=0.2).solve(tol=1e-9),
          verify=verify_entropic(a, b, C, 0.2, 1e-9))
    judge(FAMILY, lambda: mirror_sinkhorn(a, b, Cs, max_iter=20),
          allowed_statuses=(Status.MAX_ITER,))


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3),
                 st.floats(allow_nan=True, allow_infinity=True), st.complex_numbers(),
                 st.just([1.0]), st.just(np.ones(2)))

OPTIONS = {  # method: options a user may give
    "network_simplex": ("tol", "max_iter", "verbose"),
    "sinkhorn": ("tol", "max_iter", "time_limit", "verbose", "check_every", "seed", "dtype",
                 "eps_init", "eps_decay", "stage_tol", "callback"),
}


@given(method=st.sampled_from(sorted(OPTIONS)), data=st.data(), value=_ANY)
def test_option_types(method, data, value):
    """Any value for any option: a clean error naming it, or a result that keeps its promise."""
    name = data.draw(st.sampled_from(OPTIONS[method]))
    a, b, C = instance(seed=3)
    reg = None if method == "network_simplex" else 0.3
    prob = OptimalTransport(a, b, C, reg=reg)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    tol = float(value) if name == "tol" and numeric and 0 < value < np.inf else 1e-9
    verify = verify_exact(a, b, C) if reg is None else verify_entropic(a, b, C, reg, tol)
    judge(FAMILY, lambda: prob.solve(**{name: value}), names=(name,), verify=verify)


MS_OPTIONS = ("tol", "max_iter", "step_scale", "grad_bound", "record_steps", "round", "seed",
              "check_every", "dtype", "objective", "exact_gradient", "loss", "grad_args")


@given(name=st.sampled_from(MS_OPTIONS), value=_ANY)
def test_mirror_sinkhorn_option_types(name, value):
    a, b, C = instance(seed=4)

    def verify(res):  # optimal: the certified gap bound holds against POT
        gap = res.objective - ot.emd2(a, b, C)
        bound = res.dual_residual
        ok = -1e-9 <= gap <= bound + 1e-12 and bound <= value * a.sum() * np.abs(C).max()
        return None if ok else f"gap {gap:.3g}, bound {bound:.3g}"

    kw = {"max_iter": 30, name: value}
    judge(FAMILY, lambda: mirror_sinkhorn(a, b, C, **kw), names=(name,), verify=verify)


def _results():
    a, b, C = instance()
    return {
        "network_simplex": OptimalTransport(a, b, C).solve(),
        "sinkhorn": OptimalTransport(a, b, C, reg=0.2).solve(),
        "mirror_sinkhorn": mirror_sinkhorn(a, b, C, max_iter=10),
        "sinkhorn other shape": sinkhorn(*instance(n=3, m=4), 0.2),
        "mirror other shape": mirror_sinkhorn(*instance(n=3, m=4), max_iter=10),
    }


@pytest.fixture(scope="module")
def results():
    return _results()


SINKHORN_WARM = {
    "network simplex Result": lambda r: r["network_simplex"],
    "mirror Result": lambda r: r["mirror_sinkhorn"],
    "Result of another shape": lambda r: r["sinkhorn other shape"],
    "string": lambda r: "warm",
    "plan array": lambda r: np.ones((5, 4)),
    "triple": lambda r: (np.zeros(5), np.zeros(4), np.zeros(3)),
    "pair of wrong shapes": lambda r: (np.zeros(4), np.zeros(5)),
    "pair with NaN": lambda r: (np.full(5, np.nan), np.zeros(4)),
    "pair of strings": lambda r: ("f", "g"),
    "pair of complex": lambda r: (np.zeros(5) + 1j, np.zeros(4)),
    "ragged pair": lambda r: ([[0.0], [0.0, 1.0]], np.zeros(4)),
    "dict": lambda r: {"f": np.zeros(5), "g": np.zeros(4)},
}


@pytest.mark.parametrize("case", sorted(SINKHORN_WARM))
def test_sinkhorn_malformed_warm_start(case, results):
    a, b, C = instance()
    ws = SINKHORN_WARM[case](results)
    assert judge(FAMILY, lambda: OptimalTransport(a, b, C, reg=0.2).solve(warm_start=ws),
                 names=("warm_start",)) == "error"


def test_sinkhorn_warm_start_round_trip(results):
    """A Result and its potentials as a pair are accepted, at any mass and cost scale."""
    a, b, C = instance()
    for ws in (results["sinkhorn"], (results["sinkhorn"].info["f"], results["sinkhorn"].info["g"])):
        res = judge(FAMILY, lambda: OptimalTransport(a, b, C, reg=0.2).solve(warm_start=ws, tol=1e-9),
                    verify=verify_entropic(a, b, C, 0.2, 1e-9))
        assert res == "optimal"
    for s in (1e-7, 1e7):
        cold = OptimalTransport(a * s, b * s, C * s, reg=0.2 * s).solve(tol=1e-10)
        warm = OptimalTransport(a * s, b * s, C * s, reg=0.2 * s).solve(tol=1e-10, warm_start=cold)
        assert warm.status is Status.OPTIMAL and warm.iterations <= 2


MIRROR_WARM = {
    "sinkhorn Result": lambda r: r["sinkhorn"],
    "network simplex Result": lambda r: r["network_simplex"],
    "Result of another shape": lambda r: r["mirror other shape"],
    "Result without state": lambda r: r["mirror_sinkhorn"].replace(info={}),
    "state of wrong shape": lambda r: r["mirror_sinkhorn"].replace(
        info={**r["mirror_sinkhorn"].info,
              "state": {**r["mirror_sinkhorn"].info["state"], "alpha": np.zeros(3)}}),
    "tuple": lambda r: (np.zeros(5), np.zeros(4)),
    "string": lambda r: "resume",
}


@pytest.mark.parametrize("case", sorted(MIRROR_WARM))
def test_mirror_sinkhorn_malformed_warm_start(case, results):
    a, b, C = instance()
    ws = MIRROR_WARM[case](results)
    assert judge(FAMILY, lambda: mirror_sinkhorn(a, b, C, max_iter=5, warm_start=ws),
                 names=("warm_start",)) == "error"


def test_network_simplex_has_no_warm_start():
    a, b, C = instance()
    assert judge(FAMILY, lambda: OptimalTransport(a, b, C).solve(warm_start="x"),
                 names=("warm_start",)) == "error"


# --------------------------------------------------------------------------------------
# random valid instances, verified against POT
# --------------------------------------------------------------------------------------
@given(n=st.integers(1, 8), m=st.integers(1, 8), seed=st.integers(0, 10**6),
       mass=st.integers(-6, 6), cost=st.integers(-6, 6), shift=st.sampled_from([0.0, -0.5, -3.0, 2.0]),
       zeros=st.booleans())
def test_random_exact(n, m, seed, mass, cost, shift, zeros):
    a, b, C = instance(n, m, seed, 10.0**mass, 10.0**cost, shift, zeros)
    out = judge(FAMILY, lambda: OptimalTransport(a, b, C).solve(), verify=verify_exact(a, b, C))
    assert out == "optimal"  # a feasible, bounded LP: nothing else is honest


@given(n=st.integers(1, 8), m=st.integers(1, 8), seed=st.integers(0, 10**6),
       mass=st.integers(-6, 6), cost=st.integers(-6, 6), shift=st.sampled_from([0.0, -0.5, -3.0, 2.0]),
       rel_reg=st.sampled_from([0.05, 0.2, 1.0]), zeros=st.booleans(),
       backend=st.sampled_from(["numpy", "numpy", "jax"]))
def test_random_entropic(n, m, seed, mass, cost, shift, rel_reg, zeros, backend):
    a, b, C = instance(n, m, seed, 10.0**mass, 10.0**cost, shift, zeros)
    reg = rel_reg * 10.0**cost  # reg in the cost's units
    out = judge(FAMILY, lambda: OptimalTransport(a, b, C, reg=reg).solve(tol=1e-9, backend=backend),
                verify=verify_entropic(a, b, C, reg, 1e-9))
    assert out == "optimal"


@given(seed=st.integers(0, 10**6), tol=st.sampled_from([1e-6, 1e-9, 1e-12, 1e-15]))
def test_float32_never_claims_an_unreachable_tol(seed, tol):
    a, b, C = instance(6, 5, seed)
    for backend in ("numpy", "jax"):
        judge(FAMILY, lambda: OptimalTransport(a, b, C, reg=0.1).solve(
            dtype="float32", tol=tol, backend=backend, max_iter=2_000),
            verify=verify_entropic(a, b, C, 0.1, tol))


# --------------------------------------------------------------------------------------
# scale invariance: cost x 10^k (reg x 10^k) and mass x 10^k, k = -9..9
# --------------------------------------------------------------------------------------
KS = list(range(-9, 10, 3))  # every 3rd k in the default run, all of them with -m slow
K_PARAMS = [k if k in KS else pytest.param(k, marks=pytest.mark.slow) for k in range(-9, 10)]
REG = 0.1


def _solve(kind, a, b, C, reg=REG, backend="numpy"):
    if kind == "exact":
        return OptimalTransport(a, b, C).solve()
    return OptimalTransport(a, b, C, reg=reg).solve(tol=1e-9, backend=backend)


_BASE = instance(6, 5, seed=11)


@pytest.mark.parametrize("k", K_PARAMS)
@pytest.mark.parametrize("what", ["cost", "mass"])
@pytest.mark.parametrize("kind", ["exact", "entropic"])
def test_scale_invariance(kind, what, k):
    a, b, C = _BASE
    s = 10.0**k
    base = _solve(kind, a, b, C)
    sa, sC = (s, 1.0) if what == "mass" else (1.0, s)
    A, B, CC = a * sa, b * sa, C * sC
    reg = REG * sC
    verify = verify_exact(A, B, CC) if kind == "exact" else verify_entropic(A, B, CC, reg, 1e-9)
    holder = {}

    def call():
        holder["res"] = _solve(kind, A, B, CC, reg)
        return holder["res"]

    out = judge(FAMILY, call, verify=verify)
    res = holder["res"]
    assert out == "optimal" and res.status is base.status
    # the scaled answer: plan x mass scale, objective x (mass scale * cost scale)
    assert np.abs(res.x - sa * base.x).max() <= 1e-7 * sa * base.x.max()
    expected = sa * sC * base.objective
    if kind == "entropic":  # reg * sum(P log P) picks up reg * mass * log(mass scale)
        expected += reg * A.sum() * np.log(sa)
    assert abs(res.objective - expected) <= 1e-7 * sa * sC * abs(C).max()


@pytest.mark.parametrize("k", [-9, 0, 9])
def test_scale_invariance_entropic_jax(k):
    a, b, C = _BASE
    s = 10.0**k
    base = _solve("entropic", a, b, C, backend="jax")
    for A, B, CC, reg in ((a * s, b * s, C, REG), (a, b, C * s, REG * s)):
        res = _solve("entropic", A, B, CC, reg, backend="jax")
        assert res.status is base.status is Status.OPTIMAL
        sa = A.sum() / a.sum()
        assert np.abs(res.x - sa * base.x).max() <= 1e-7 * sa * base.x.max()


@pytest.mark.parametrize("k", [-9, -3, 3, 9])
def test_scale_invariance_mirror_sinkhorn(k):
    """A fixed number of steps: the same iterates at every mass and cost scale (status max_iter),
    and with tol the same certified status."""
    a, b, C = _BASE
    s = 10.0**k
    base = mirror_sinkhorn(a, b, C, max_iter=300, tol=1e-2)
    for sa, sC in ((s, 1.0), (1.0, s)):
        res = mirror_sinkhorn(a * sa, b * sa, C * sC, max_iter=300, tol=1e-2)
        assert res.status is base.status and res.iterations == base.iterations
        assert np.abs(res.x - sa * base.x).max() <= 1e-9 * sa * base.x.max()
        assert abs(res.objective - sa * sC * base.objective) <= 1e-9 * sa * sC * abs(base.objective)
