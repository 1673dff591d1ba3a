"""Maros–Meszaros QPs (small copies in tests/data/maros_meszaros) judged as qpbenchmark judges
them (`cvxkit.problems.maros_meszaros.judge`), and `optimal` on the user's unscaled data
(`cvxkit.solvers.admm_check`): a loose internal stop cannot give `optimal`."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from cvxkit.problems.maros_meszaros import ACCURACIES, judge, load, read_npz
from cvxkit.solvers import Status
from cvxkit.solvers.admm_qp import admm_qp

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "maros_meszaros")
SMALL = ("QAFIRO", "CVXQP1_S", "DUALC2", "HS21", "LOTSCHD", "QPTEST")


def data(name):
    return read_npz(os.path.join(DATA, f"{name}.npz"))


def judged(d, res, eps):
    return judge(d["P"], d["q"], d["A"], d["l"], d["u"], res.x, res.dual, eps)


@pytest.mark.parametrize("name", SMALL)
def test_small_problems_pass_the_qpbenchmark_judge_at_mid_accuracy(name):
    """eps_abs = 1e-6, eps_rel = 0 (qpbenchmark's "mid"): optimal, and the judge agrees."""
    d = data(name)
    eps = ACCURACIES["mid"]
    res = admm_qp(d["P"], d["q"], d["A"], d["l"], d["u"], eps_abs=eps, eps_rel=0.0,
                  max_iter=50_000)
    assert res.status is Status.OPTIMAL, (res.status, res.message)
    j = judged(d, res, eps)
    assert j.ok, j
    assert "hold on the user's unscaled data" in res.message
    un = res.info["unscaled"]
    assert un["prim"] <= un["eps_prim"] and un["dual"] <= un["eps_dual"] and un["gap"] <= un["eps_gap"]


def test_polish_succeeds_where_the_active_set_is_clear():
    """QAFIRO and CVXQP1_S at eps 1e-3 with polish: the polished point passes the judge at
    1e-9 (OSQP's and, before, cvxkit's polishing failed on both)."""
    for name in ("QAFIRO", "CVXQP1_S"):
        d = data(name)
        res = admm_qp(d["P"], d["q"], d["A"], d["l"], d["u"], tol=1e-3, polish=True)
        assert res.status is Status.OPTIMAL and res.info["polish"] == "success", (name, res.message)
        assert judged(d, res, 1e-9).ok, (name, judged(d, res, 1e-9))


def test_rounding_zeros_do_not_set_the_length_unit():
    """QAFIRO's bounds of 2.2e-16 (roundings of 0 next to bounds of 44..500) are zeros for the
    units: the length unit is not 1e-10 (which made the tolerances out of reach)."""
    qp = load(os.path.join(DATA, "QAFIRO.npz"))
    assert float(np.min(qp.units.D0)) > 1e-3


def test_a_loose_internal_stop_cannot_give_optimal(monkeypatch):
    """The loop's test made 1e4 times looser (a deliberately wrong internal stop): every
    candidate it proposes is checked on the unscaled data; it goes on until that holds, so an
    `optimal` result still passes the judge, and rejected candidates are reported. With too few
    iterations left it ends `max_iter` / `optimal_inaccurate`, never `optimal`."""
    admm = sys.modules["cvxkit.solvers.admm"]
    strict = admm.termination_flag

    def loose(bk, sp, d, s, r, relax=1.0):
        return strict(bk, sp, d, s, r, relax=1e4 * relax)

    monkeypatch.setattr(admm, "termination_flag", loose)
    d = data("CVXQP1_S")
    eps = 1e-6
    res = admm_qp(d["P"], d["q"], d["A"], d["l"], d["u"], eps_abs=eps, eps_rel=0.0,
                  max_iter=50_000)
    assert res.status is Status.OPTIMAL and judged(d, res, eps).ok
    assert len(res.info["rejected"]) >= 1 and "earlier candidate" in res.message
    # stopped at the first (rejected) candidate: no iterations left to go on
    first = res.info["rejected"][0][0]
    short = admm_qp(d["P"], d["q"], d["A"], d["l"], d["u"], eps_abs=eps, eps_rel=0.0,
                    max_iter=first)
    assert short.status is not Status.OPTIMAL
    assert not judged(d, short, eps).ok
    assert "failed the tests on the user's data" in short.message


def test_no_false_unboundedness_certificate():
    """PRIMALC1 has a finite optimum; at iteration 25 the step d of the iterates passed the
    relative recession test (rows of norm 2059 whose entries along d are 1 let (Ad)_i = 0.05
    pass). `certificate_error` measures each row against its own terms along d, the candidate
    is rejected, and the loop goes on to the optimum."""
    d = data("PRIMALC1")
    res = admm_qp(d["P"], d["q"], d["A"], d["l"], d["u"], eps_abs=1e-3, eps_rel=0.0, polish=True)
    assert res.status is Status.OPTIMAL and judged(d, res, 1e-3).ok, res.message
    assert any("dual_infeasible" in str(r[1]) for r in res.info["rejected"])


def test_eps_rel_zero_is_allowed_and_eps_abs_zero_is_not():
    d = data("HS21")
    res = admm_qp(d["P"], d["q"], d["A"], d["l"], d["u"], eps_abs=1e-8, eps_rel=0.0)
    assert res.status is Status.OPTIMAL and judged(d, res, 1e-8).ok
    with pytest.raises(ValueError, match="eps_abs"):
        admm_qp(d["P"], d["q"], d["A"], d["l"], d["u"], eps_abs=0.0, eps_rel=1e-6)


def test_judge_definitions():
    """The judge's residuals on a hand-made QP: min x^2/2 - x s.t. x <= 0.5 (x* = 0.5,
    y* = 0.5 on the upper bound), and a multiplier on an infinite bound."""
    P, q, A = np.array([[1.0]]), np.array([-1.0]), np.array([[1.0]])
    l, u = np.array([-np.inf]), np.array([0.5])
    j = judge(P, q, A, l, u, np.array([0.5]), np.array([0.5]), 1e-12)
    assert j.ok and j.primal == 0 and j.dual == 0 and j.gap == 0
    j = judge(P, q, A, l, u, np.array([0.6]), np.array([0.4]), 1e-3)
    assert not j.ok and j.primal == pytest.approx(0.1) and j.dual == pytest.approx(0.0)
    # y < 0 on the row whose lower bound is infinite: a failed gap (beyond rounding)
    assert judge(P, q, A, l, u, np.array([0.5]), np.array([-1e-2]), 1e-3).gap == np.inf
    assert judge(P, q, A, l, u, np.array([0.5]), np.array([0.5 - 1e-18]), 1e-6).ok
    assert not judge(P, q, A, l, u, np.array([np.nan]), np.array([0.5]), 1.0).ok
