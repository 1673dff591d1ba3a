"""Fuzz suite, finite-sum matrix games: hostile input to FiniteSumMatrixGame / halpern /
vr_halpern, random games verified against their LP value, and the payoff scale sweep.

Every call is classified by `harness.judge`. An ``optimal`` game result is verified on the
generated instance against the LP value $v^\\star$ computed by scipy's HiGHS (on
$\\bar A / \\max|A|$, scaled back): with $\\alpha = \\max|A|$ and the claimed ``tol``, the
relative forward-backward residual recomputed in float64 is at most ``tol`` (plus float32
rounding when asked for), and the duality gap and $|\\text{objective} - v^\\star|$ are within the
documented bound $\\alpha\\,\\text{tol}\\,(2 + 2L_F/\\alpha + \\sqrt m + \\sqrt k)$.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog

from cvxkit.problems.finite_sum import FiniteSumMatrixGame, random_game
from cvxkit.solvers import Status
from cvxkit.solvers.halpern import FiniteSumOperator, halpern, vr_halpern

from .harness import judge

FAMILY = "finite_sum"
METHODS = ("vr_halpern", "halpern")


def lp_value(A_bar) -> float:
    """The game value min_x max_y x'Ay over simplices by HiGHS, on A/max|A| (scaled back)."""
    s = float(np.abs(A_bar).max()) or 1.0
    M = A_bar / s
    m, k = M.shape
    # variables (x, t): min t s.t. M'x <= t 1, sum x = 1, x >= 0
    c = np.r_[np.zeros(m), 1.0]
    A_ub = np.hstack([M.T, -np.ones((k, 1))])
    A_eq = np.r_[np.ones(m), 0.0][None]
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(k), A_eq=A_eq, b_eq=[1.0],
                  bounds=[(0, None)] * m + [(None, None)], method="highs")
    assert res.status == 0, res.message
    return s * float(res.fun)


def verify_game(game: FiniteSumMatrixGame, tol: float, float32: bool = False):
    def check(res):
        z = np.asarray(res.x)
        if z.shape != (game.m + game.k,) or not np.isfinite(z).all():
            return f"strategies of shape {z.shape} or not finite"
        x, y = z[:game.m], z[game.m:]
        if min(x.min(), y.min()) < -1e-12 or max(abs(x.sum() - 1), abs(y.sum() - 1)) > 1e-9:
            return "strategies are not in the simplices"
        slack = 1e-6 if float32 else 1e-12  # float32 iterates carry rounding of 1e-7
        r = game.relative_residual(z)
        if r > tol * (1 + 1e-6) + slack:
            return f"claimed tol {tol:.2e} but the relative residual is {r:.3g}"
        bound = game.gap_bound(tol + slack) * (1 + 1e-9) + 1e-12 * game.payoff_scale
        gap = game.duality_gap(z)
        if gap > bound:
            return f"duality gap {gap:.3g} above the bound {bound:.3g}"
        v = lp_value(game.A_bar)
        if not (-1e-9 * game.payoff_scale <= res.objective - v <= bound):
            return f"objective {res.objective!r} vs LP value {v!r} (bound {bound:.3g})"
        return None

    return check


def base_game(seed=0, n=4, m=3, k=4):
    return random_game(n, m, k, noise=0.3, seed=seed)


# --------------------------------------------------------------------------------------
# hostile input
# --------------------------------------------------------------------------------------
BAD_PAYOFFS = {
    "nan": lambda A: np.where(A > 0.3, np.nan, A),
    "inf": lambda A: np.where(A > 0.3, np.inf, A),
    "4-D": lambda A: A[None],
    "1-D": lambda A: A.ravel(),
    "0-D": lambda A: 1.0,
    "empty": lambda A: A[:0],
    "empty columns": lambda A: A[:, :, :0],
    "0x0": lambda A: np.zeros((0, 0)),
    "complex": lambda A: A + 1j,
    "complex zero imaginary": lambda A: A.astype(complex),
    "object": lambda A: A.astype(object),
    "None entry": lambda A: [[None, 1.0], [0.0, 1.0]],
    "ragged": lambda A: [[1.0, 2.0], [3.0]],
    "string": lambda A: "payoff",
    "strings": lambda A: [["a", "b"], ["c", "d"]],
    "None": lambda A: None,
    "dict": lambda A: {"A": A},
    "complex sparse": lambda A: sp.csr_matrix(A[0] * 1j),
}


@pytest.mark.parametrize("case", sorted(BAD_PAYOFFS))
def test_bad_payoffs(case):
    A = BAD_PAYOFFS[case](base_game())
    assert judge(FAMILY, lambda: FiniteSumMatrixGame(A).solve(max_iter=5), names=("A",)) == "error"


def test_bad_operator_data():
    A = base_game()
    assert judge(FAMILY, lambda: FiniteSumOperator.from_matrices(A[:, :3, :3] + 1j),
                 names=("M",)) == "error"
    assert judge(FAMILY, lambda: FiniteSumOperator.from_matrices([[[1.0], [2.0, 3.0]]]),
                 names=("M",)) == "error"
    assert judge(FAMILY, lambda: FiniteSumOperator(lambda d, z, i: z, 2.5, 3),
                 names=("n",)) == "error"
    assert judge(FAMILY, lambda: FiniteSumOperator(lambda d, z, i: z, 2, 3, (np.ones(2) + 1j,)),
                 names=("data",)) == "error"


SPARSE = [f"{fmt}_{kind}" for fmt in ("csr", "csc", "coo", "lil", "dok", "dia", "bsr")
          for kind in ("matrix", "array")]


@pytest.mark.parametrize("fmt", SPARSE)
def test_every_sparse_format_is_one_component(fmt):
    M = base_game(seed=3, n=1)[0]
    M[np.abs(M) < 0.2] = 0.0
    game = FiniteSumMatrixGame(getattr(sp, fmt)(M))
    assert np.array_equal(game.A_bar, M)
    tol = 1e-6
    judge(FAMILY, lambda: game.solve(method="halpern", tol=tol, max_iter=3_000,
                                     restart_factor=0.2), verify=verify_game(game, tol))


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3),
                 st.floats(allow_nan=True, allow_infinity=True), st.complex_numbers(),
                 st.just([1.0]), st.just(np.ones(2)))

OPTIONS = {
    "vr_halpern": ("tol", "max_iter", "time_limit", "verbose", "check_every", "seed", "dtype",
                   "eta", "batch_size", "inner_step", "inner_factor", "restart_factor",
                   "max_evals", "variant", "callback"),
    "halpern": ("tol", "max_iter", "time_limit", "verbose", "check_every", "seed", "dtype",
                "restart_factor", "callback"),
}


@given(method=st.sampled_from(METHODS), data=st.data(), value=_ANY)
def test_option_types(method, data, value):
    """Any value for any option: a clean error naming it, or a result that keeps its promise."""
    name = data.draw(st.sampled_from(OPTIONS[method]))
    game = FiniteSumMatrixGame(base_game(seed=1))
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    tol = value if name == "tol" and numeric and 0 < value < np.inf else 1e-6
    kw = {"max_iter": 300, "restart_factor": 0.2, name: value}
    if name == "max_iter" and not isinstance(value, bool) and isinstance(value, int) and value > 0:
        kw[name] = min(value, 300)
    float32 = name == "dtype" and value == "float32"
    judge(FAMILY, lambda: game.solve(method=method, **kw), names=(name,),
          verify=verify_game(game, tol, float32))


def _results():
    game = FiniteSumMatrixGame(base_game())
    return {
        "vr Result": game.solve(method="vr_halpern", max_iter=3),
        "halpern Result": game.solve(method="halpern", max_iter=3),
        "Result of another game": FiniteSumMatrixGame(base_game(m=2)).solve(max_iter=3),
    }


@pytest.fixture(scope="module")
def results():
    return _results()


WARM = {
    "Result of another game": lambda r: r["Result of another game"],
    "Result without x": lambda r: r["vr Result"].replace(x=None),
    "string": lambda r: "resume",
    "dict": lambda r: {"x": np.zeros(7)},
    "wrong length": lambda r: np.zeros(5),
    "2-D": lambda r: np.zeros((7, 1)),
    "NaN": lambda r: np.full(7, np.nan),
    "complex": lambda r: np.zeros(7) + 1j,
    "ragged": lambda r: [[0.0], [0.0, 1.0]],
    "object": lambda r: np.array([None] * 7),
    "callable": lambda r: (lambda: 0),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(WARM))
def test_malformed_warm_start(case, method, results):
    ws = WARM[case](results)
    game = FiniteSumMatrixGame(base_game())
    assert judge(FAMILY, lambda: game.solve(method=method, max_iter=3, warm_start=ws),
                 names=("warm_start",)) == "error"


@pytest.mark.parametrize("case", ["string", "wrong length", "NaN", "complex", "ragged", "dict"])
def test_solvers_malformed_warm_start(case, results):
    ws = WARM[case](results)
    game = FiniteSumMatrixGame(base_game())
    op, J = game.operator()
    assert judge(FAMILY, lambda: vr_halpern(op, game.start(), J, warm_start=ws, max_iter=3),
                 names=("warm_start",)) == "error"
    assert judge(FAMILY, lambda: halpern(lambda z: z, game.start(), warm_start=ws, max_iter=3),
                 names=("warm_start",)) == "error"


@pytest.mark.parametrize("method", METHODS)
def test_warm_start_from_either_method(method, results):
    game = FiniteSumMatrixGame(base_game())
    for key in ("vr Result", "halpern Result"):
        tol = 1e-6
        judge(FAMILY, lambda: game.solve(method=method, warm_start=results[key], tol=tol,
                                         max_iter=2_000, restart_factor=0.2),
              verify=verify_game(game, tol))


# --------------------------------------------------------------------------------------
# random valid games, verified against the LP value
# --------------------------------------------------------------------------------------
@given(n=st.integers(1, 6), m=st.integers(1, 5), k=st.integers(1, 5),
       seed=st.integers(0, 10**6), scale=st.integers(-9, 9), noise=st.sampled_from([0.0, 0.3, 3.0]),
       kind=st.sampled_from(["random", "random", "zero", "cancelling", "integer"]),
       method=st.sampled_from(METHODS), tol=st.sampled_from([1e-4, 1e-6, 1e-8]))
def test_random_games(n, m, k, seed, scale, noise, kind, method, tol):
    rng = np.random.default_rng(seed)
    if kind == "random":
        A = random_game(n, m, k, noise=noise, seed=seed)
    elif kind == "zero":
        A = np.zeros((n, m, k))
    elif kind == "cancelling":  # components average to (almost) zero
        B = rng.standard_normal((m, k))
        A = np.stack([B if i % 2 == 0 else -B for i in range(2 * n)])
    else:
        A = rng.integers(-3, 4, size=(n, m, k)).astype(float)
    A = A * 10.0**scale
    game = FiniteSumMatrixGame(A)
    out = judge(FAMILY, lambda: game.solve(method=method, tol=tol, max_iter=2_000,
                                           restart_factor=0.2),
                verify=verify_game(game, tol), allowed_statuses=(Status.MAX_ITER,))
    if kind == "zero":  # every strategy pair is an equilibrium
        assert out == "optimal"


# --------------------------------------------------------------------------------------
# scale invariance: payoffs x 10^k, k = -9..9
# --------------------------------------------------------------------------------------
KS = list(range(-9, 10, 3))  # every 3rd k in the default run, all of them with -m slow
K_PARAMS = [k if k in KS else pytest.param(k, marks=pytest.mark.slow) for k in range(-9, 10)]
TOL = 1e-7
_A = random_game(16, 3, 4, noise=0.3, seed=2)


@pytest.fixture(scope="module")
def base_results():
    game = FiniteSumMatrixGame(_A)
    return {m: game.solve(method=m, tol=TOL, max_iter=5_000, restart_factor=0.2) for m in METHODS}


@pytest.mark.parametrize("k", K_PARAMS)
@pytest.mark.parametrize("method", METHODS)
def test_scale_invariance(method, k, base_results):
    base = base_results[method]
    s = 10.0**k
    game = FiniteSumMatrixGame(_A * s)
    holder = {}

    def call():
        holder["res"] = game.solve(method=method, tol=TOL, max_iter=5_000, restart_factor=0.2)
        return holder["res"]

    out = judge(FAMILY, call, verify=verify_game(game, TOL))
    res = holder["res"]
    assert out == "optimal" and res.status is base.status
    assert abs(res.iterations - base.iterations) <= 1
    np.testing.assert_allclose(res.x, base.x, atol=1e-9)
    assert res.objective == pytest.approx(base.objective * s, rel=1e-8, abs=1e-12 * s)
