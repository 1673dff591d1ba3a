"""halpern_pdhg with HiGHS's presolve and postsolve (``presolve=``), and the final check on the
user's LP that decides ``optimal`` (residuals and the duality gap, so that the objective is right
to about ``tol``). Small Netlib problems from tests/data/netlib (no ../shared needed)."""
import pathlib

import numpy as np
import pytest
import scipy.sparse as sp

from cvxkit.problems import LinearProgram
from cvxkit.solvers import lp_presolve
from cvxkit.solvers.halpern_pdhg import _UserCheck, halpern_pdhg
from cvxkit.solvers.pdhg_setup import config, validate_lp
from cvxkit.solvers.result import Status

pytest.importorskip("highspy")

DATA = pathlib.Path(__file__).parents[1] / "data" / "netlib"
#: (problem, tol): the larger one at 1e-4 keeps the file fast
SMALL = [("AFIRO", 1e-6), ("SC50A", 1e-6), ("BLEND", 1e-6), ("SCAGR7", 1e-4)]


def netlib(name):
    return LinearProgram.from_npz(DATA / f"{name}.npz")


def user_check(lp, tol):
    """The `_UserCheck` of ``lp`` (bound form) at ``tol``: its ``metrics(x, y)`` are the tests
    that decide ``optimal``."""
    cfg = config(tol=tol, eps_abs=None, eps_rel=None, eps_primal_infeasible=1e-8,
                 eps_dual_infeasible=1e-8, reflection=1.0, adaptive_primal_weight=True,
                 check_every=64, max_iter=1000, ruiz_iters=10, pock_chambolle=True, rescale=True,
                 seed=0, primal_weight=None, sparse_format="auto")
    return _UserCheck(*validate_lp(*lp.bound_form()), cfg)


def kkt(lp, x, y):
    """Relative KKT errors of ``(x, y)`` on ``lp``'s bound form: primal violation (rows relative
    to their norms, over the magnitude of the bounds), dual sign violation of the reduced costs
    and of y (over ||c||), and complementarity."""
    c, K, lc, uc, lv, uv = lp.bound_form()
    Kx = K @ x
    kappa = abs(K).max(axis=1).toarray().ravel()
    kappa = np.where(kappa > 0, kappa, 1.0)
    b = np.maximum(np.where(np.isfinite(lc), abs(lc), 0), np.where(np.isfinite(uc), abs(uc), 0))
    prim = np.max(np.maximum(lc - Kx, Kx - uc).clip(0) / kappa, initial=0) / max(np.max(b / kappa), 1)
    prim = max(prim, np.max(np.maximum(lv - x, x - uv).clip(0), initial=0))
    lam = c - K.T @ y
    cn = np.abs(c).max()
    # y_i > 0 needs a finite lower row bound, y_i < 0 an upper one; lam_j likewise for x
    dual = max(np.max(np.where(np.isfinite(lc), 0, y.clip(0)), initial=0),
               np.max(np.where(np.isfinite(uc), 0, (-y).clip(0)), initial=0),
               np.max(np.where(np.isfinite(lv), 0, lam.clip(0)), initial=0),
               np.max(np.where(np.isfinite(uv), 0, (-lam).clip(0)), initial=0)) / cn
    # complementarity: y_i (Kx - lc)_i for y_i > 0, lam_j (x - lv)_j for lam_j > 0, ... over the
    # finite bounds (a multiplier on an infinite one is a sign violation, counted above)
    fin = lambda v: np.where(np.isfinite(v), v, 0.0)  # noqa: E731
    comp = np.sum(np.abs(np.concatenate([
        np.where((y > 0) & np.isfinite(lc), y * (Kx - fin(lc)), 0),
        np.where((y < 0) & np.isfinite(uc), y * (Kx - fin(uc)), 0),
        np.where((lam > 0) & np.isfinite(lv), lam * (x - fin(lv)), 0),
        np.where((lam < 0) & np.isfinite(uv), lam * (x - fin(uv)), 0)])))
    return prim, dual, comp / max(abs(c @ x), 1.0)


@pytest.mark.parametrize("name, tol", SMALL)
def test_presolve_on_and_off_give_the_same_answer(name, tol):
    lp = netlib(name)
    on = lp.solve(tol=tol, presolve=True, max_iter=200_000)
    off = lp.solve(tol=tol, presolve=False, max_iter=200_000)
    assert on.status is Status.OPTIMAL and off.status is Status.OPTIMAL
    known = lp.known_objective
    for res in (on, off):
        assert abs(res.objective - known) <= 10 * tol * (1 + abs(known))
    assert abs(on.objective - off.objective) <= 10 * tol * (1 + abs(known))
    info = on.info["presolve"]
    assert info["original_shape"] == (lp.m_eq + lp.m_ub, lp.n)
    assert info["status"] in ("kReduced", "kReducedToEmpty")
    assert "presolve" not in off.info
    # the status is decided on the original LP: the reported relative measures are its own
    m = user_check(lp, tol).metrics(on.x, on.dual)
    assert bool(m.ok)
    assert on.info["rel_gap"] == pytest.approx(float(m.rel_gap))


@pytest.mark.parametrize("name", ["AFIRO", "SC50A", "BLEND"])
def test_postsolved_duals_satisfy_the_original_kkt(name):
    lp = netlib(name)
    res = lp.solve(tol=1e-7, presolve=True, max_iter=300_000)
    assert res.status is Status.OPTIMAL
    prim, dual, comp = kkt(lp, res.x, res.dual)
    assert prim <= 1e-6 and dual <= 1e-6 and comp <= 1e-5, (prim, dual, comp)
    # strong duality with HiGHS's optimum (the dual objective of the postsolved y)
    ref = lp.reference()
    assert res.info["dual_objective"] == pytest.approx(ref.objective, rel=1e-5)


def test_the_gap_test_rejects_a_loose_optimal():
    """A feasible point with exactly optimal duals (primal and dual residuals 0) but an objective
    1e-2 away from the optimum is not optimal at tol 1e-4: only the gap test catches it."""
    lp = netlib("AFIRO")
    c, K, lc, uc, lv, uv = lp.bound_form()
    opt = lp.solve(tol=1e-9, presolve=False, max_iter=200_000)
    assert opt.status is Status.OPTIMAL
    # a feasible point with a worse objective: the optimum moved toward another feasible point
    # (the optimum of the reversed cost), which keeps every row and bound satisfied
    worst = LinearProgram(-lp.c, lp.A_ub, lp.b_ub, lp.A_eq, lp.b_eq, lp.lb, lp.ub).solve(
        tol=1e-9, presolve=False, max_iter=200_000)
    t = 1e-2 * abs(opt.objective) / abs(worst.objective - opt.objective)
    x = (1 - t) * opt.x + t * worst.x
    check = user_check(lp, 1e-4)
    good = check.metrics(opt.x, opt.dual)
    bad = check.metrics(x, opt.dual)
    assert bool(good.ok)
    assert float(bad.rel_prim) <= 1e-6 and float(bad.rel_dual) <= 1e-6
    assert float(bad.rel_gap) > 1e-3 and not bool(bad.ok)


def test_a_rejected_postsolved_point_is_not_reported_optimal(monkeypatch):
    """When the postsolved point fails the check on the original LP (here: its x is moved 1 %
    toward the origin once), the solve goes on and the answer it reports passes the check."""
    lp = netlib("SCAGR7")
    real = lp_presolve.Reduction.postsolve
    calls = []

    def spoiled(self, x, y, tol=None):
        xo, yo = real(self, x, y, tol)
        calls.append(1)
        return (0.99 * xo if len(calls) == 1 else xo), yo

    monkeypatch.setattr(lp_presolve.Reduction, "postsolve", spoiled)
    tol = 1e-4
    res = lp.solve(tol=tol, presolve=True, max_iter=200_000)
    assert res.status is Status.OPTIMAL
    assert len(calls) >= 2 and res.info["rejected"]
    assert bool(user_check(lp, tol).metrics(res.x, res.dual).ok)
    assert abs(res.objective - lp.known_objective) <= 10 * tol * abs(lp.known_objective)


def test_infeasible_lp_gets_a_certificate_on_the_original():
    lp = LinearProgram.from_npz(DATA / "infeasible" / "bgdbg1.npz")
    res = lp.solve(tol=1e-4, presolve=True, max_iter=200_000)
    assert res.status is Status.PRIMAL_INFEASIBLE
    assert res.info["certificate"].shape == (lp.m_eq + lp.m_ub,)
    assert res.info["presolve"]["fallback"]


def test_presolve_solves_a_tiny_lp_by_itself():
    """min x1 + 2 x2 s.t. x1 + x2 >= 1, x >= 0: HiGHS's presolve removes everything; the
    postsolved point and its dual pass the check."""
    res = halpern_pdhg(np.array([1.0, 2.0]), sp.csr_matrix(np.array([[1.0, 1.0]])), [1.0],
                       [np.inf], [0.0, 0.0], None, presolve=True)
    assert res.status is Status.OPTIMAL
    assert res.x == pytest.approx([1.0, 0.0], abs=1e-9)
    assert res.dual == pytest.approx([1.0], abs=1e-9)
    assert res.objective == pytest.approx(1.0)


def test_presolve_option_values():
    c, K = np.array([1.0, 2.0]), np.array([[1.0, 1.0]])
    with pytest.raises(ValueError, match="presolve must be True, False or 'auto'"):
        halpern_pdhg(c, K, [1.0], None, 0.0, None, presolve="yes")
    with pytest.raises(ValueError, match="warm start"):
        halpern_pdhg(c, K, [1.0], None, 0.0, None, presolve=True, warm_start=([0, 0], [0]))
    # "auto": small LPs (fewer than AUTO_MIN_NNZ nonzeros) and warm starts are not presolved
    assert "presolve" not in halpern_pdhg(c, K, [1.0], None, 0.0, None).info
    lp = netlib("SHARE1B")  # 1182 nonzeros
    assert lp.A_ub.nnz + lp.A_eq.nnz >= lp_presolve.AUTO_MIN_NNZ
    res = lp.solve(tol=1e-4)
    assert "presolve" in res.info and res.status is Status.OPTIMAL
    assert "presolve" not in lp.solve(tol=1e-4, warm_start=res).info
