r"""HiGHS's presolve and postsolve around `cvxkit.solvers.halpern_pdhg` (``presolve=`` option).

The LP (bound form, as `halpern_pdhg` takes it) is handed to HiGHS (``highspy``), whose presolve
removes and tightens rows and columns (singletons, doubletons, dominated and free columns, ...)
and returns a smaller LP. The PDHG solves that reduced LP; HiGHS's postsolve maps its solution,
primal $x$ and dual $(y, z)$ (row multipliers and reduced costs), back to the user's LP. HiGHS
postsolves an interior (non-basic) solution without a basis, as it does after its own PDLP and
interior-point solvers without crossover (``Highs.postsolve(solution)``; no simplex clean-up
runs).

The status is decided on the **original** LP in the user's units: the residuals, the objectives
and the gap are recomputed there, with the tests and tolerances of `halpern_pdhg`
(`cvxkit.solvers.pdhg_core.metrics`). When they fail, the reduced LP is solved again with a 10
times tighter tolerance (warm-started), and if the postsolved point still fails, the original LP
is solved without presolve, warm-started from it. When HiGHS's presolve finds the LP infeasible
or unbounded, or cannot reduce it, the original LP is solved without presolve: an infeasibility
status always comes with a certificate on the user's data, which a reduced LP cannot give.
"""
from __future__ import annotations

import time

import numpy as np

from cvxkit.solvers.result import Result, Status

#: ``presolve="auto"`` presolves LPs with at least this many nonzeros in K (smaller LPs are
#: solved in milliseconds either way, and a presolved Result's history is the reduced LP's)
AUTO_MIN_NNZ = 1000
#: reduced solves whose postsolved point fails the check before the original LP is solved
TIGHTEN_TRIES = 2
#: HiGHS's infinity
_HIGHS_INF = 1e30


def _highspy():
    try:
        import highspy
    except ImportError:
        raise ImportError("presolve=True needs HiGHS's Python package: pip install highspy "
                          "(or pass presolve=False)") from None
    return highspy


def available() -> bool:
    try:
        _highspy()
        return True
    except ImportError:
        return False


def wanted(presolve, K, warm_start, mesh) -> bool:
    """Does the option ``presolve`` (True, False or ``"auto"``) call for HiGHS's presolve?
    ``"auto"``: highspy installed, no warm start (it lives in the original variables), no mesh,
    and ``K`` with at least `AUTO_MIN_NNZ` nonzeros. ``True`` without highspy raises
    ``ImportError``; with a mesh or a warm start, ``ValueError``."""
    if isinstance(presolve, (bool, np.bool_)):
        if not presolve:
            return False
        _highspy()
        if mesh is not None or warm_start is not None:
            raise ValueError("presolve=True cannot be combined with a mesh or a warm start "
                             "(both live in the original LP's variables); pass presolve=False")
        return True
    if presolve != "auto":
        raise ValueError(f"presolve must be True, False or 'auto', got {presolve!r}")
    nnz = K.nnz if hasattr(K, "nnz") else int(np.count_nonzero(K))
    return mesh is None and warm_start is None and nnz >= AUTO_MIN_NNZ and available()


def _inf_to_highs(v):
    return np.where(np.isfinite(v), v, np.where(v > 0, _HIGHS_INF, -_HIGHS_INF))


def _inf_from_highs(v):
    v = np.asarray(v, dtype=np.float64)
    return np.where(v >= _HIGHS_INF / 10, np.inf, np.where(v <= -_HIGHS_INF / 10, -np.inf, v))


class Reduction:
    """HiGHS's presolve of ``min c'x s.t. lc <= K x <= uc, lv <= x <= uv``: ``status`` (the name
    of HiGHS's ``HighsPresolveStatus``: ``kReduced``, ``kReducedToEmpty``, ``kNotReduced``,
    ``kInfeasible``, ``kUnboundedOrInfeasible``, ``kTimeout``, ...), ``lp`` the reduced
    ``(c, K, lc, uc, lv, uv)`` (K CSR), ``offset`` its objective constant, and `postsolve`."""

    def __init__(self, c, K, lc, uc, lv, uv, time_limit=np.inf):
        import scipy.sparse as sp

        from cvxkit.solvers.pdhg_setup import data_scales

        hs = _highspy()
        t0 = time.perf_counter()
        # HiGHS sees the LP in units where rows, x and c are of order 1 (its tolerances are
        # absolute): rows divided by their infinity norms kappa, x by sigma_x, c by ||c||_inf
        _, _, _, kappa, cinf, xscale = data_scales(c, K, lc, uc, lv, uv)
        self.rows, self.xunit, self.cunit = 1.0 / kappa, xscale or 1.0, cinf or 1.0
        Ks = sp.diags(self.rows) @ sp.csr_matrix(K)
        b = self.rows / self.xunit
        h = hs.Highs()
        h.setOptionValue("output_flag", False)
        if np.isfinite(time_limit):
            h.setOptionValue("time_limit", float(max(time_limit, 1e-3)))
        lp = hs.HighsLp()
        m, n = K.shape
        lp.num_col_, lp.num_row_ = n, m
        lp.col_cost_ = np.asarray(c, np.float64) / self.cunit
        lp.col_lower_, lp.col_upper_ = _inf_to_highs(lv / self.xunit), _inf_to_highs(uv / self.xunit)
        lp.row_lower_, lp.row_upper_ = _inf_to_highs(lc * b), _inf_to_highs(uc * b)
        Kc = sp.csc_matrix(Ks)
        a = lp.a_matrix_
        a.format_ = hs.MatrixFormat.kColwise
        a.num_col_, a.num_row_ = n, m
        a.start_, a.index_, a.value_ = Kc.indptr, Kc.indices, Kc.data
        if h.passModel(lp) == hs.HighsStatus.kError:
            raise ValueError("HiGHS refused the LP")
        h.presolve()
        self.status = h.getModelPresolveStatus().name
        self.h, self.hs, self.lp, self.offset = h, hs, None, 0.0
        if self.status in ("kReduced", "kReducedToEmpty"):
            r = h.getPresolvedLp()
            rn, rm = r.num_col_, r.num_row_
            ra = r.a_matrix_
            Mat = sp.csr_matrix if ra.format_ == hs.MatrixFormat.kRowwise else sp.csc_matrix
            Kr = Mat((np.asarray(ra.value_, np.float64), np.asarray(ra.index_),
                      np.asarray(ra.start_)), shape=(rm, rn)).tocsr() if rn else sp.csr_matrix((rm, 0))
            sign = -1.0 if r.sense_ == hs.ObjSense.kMaximize else 1.0
            self.lp = (sign * np.asarray(r.col_cost_, np.float64), Kr, _inf_from_highs(r.row_lower_),
                       _inf_from_highs(r.row_upper_), _inf_from_highs(r.col_lower_),
                       _inf_from_highs(r.col_upper_))
            self.offset = sign * float(r.offset_) * self.cunit * self.xunit
        self.time = time.perf_counter() - t0

    @property
    def reduced_shape(self):
        return None if self.lp is None else self.lp[1].shape

    def postsolve(self, x, y, tol=None):
        """The original LP's ``(x, y)`` of the reduced LP's solution ``(x, y)`` (HiGHS's
        postsolve of primal and dual values, without a basis; ``tol``: HiGHS's primal and dual
        feasibility tolerances in its normalized units, by which it judges which bounds are
        active)."""
        c, K = self.lp[0], self.lp[1]
        if tol is not None:
            self.h.setOptionValue("primal_feasibility_tolerance", float(tol))
            self.h.setOptionValue("dual_feasibility_tolerance", float(tol))
        s = self.hs.HighsSolution()
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        s.col_value, s.row_value = x, K @ x
        s.row_dual, s.col_dual = y, c - K.T @ y
        s.value_valid = s.dual_valid = True
        status = self.h.postsolve(s)
        if status == self.hs.HighsStatus.kError:
            raise RuntimeError("HiGHS's postsolve failed")
        out = self.h.getSolution()
        return (np.array(out.col_value, np.float64) * self.xunit,
                np.array(out.row_dual, np.float64) * self.cunit * self.rows)


def _merged_history(results):
    """The histories of consecutive solves as one (iterations and times continued)."""
    hist, it, t = {}, 0, 0.0
    for r in results:
        for k, v in (r.history or {}).items():
            shift = {"iteration": it, "time": t}.get(k, 0)
            hist.setdefault(k, []).extend(np.asarray(v) + shift)
        it += r.iterations
        t += r.solve_time
    return {k: np.asarray(v) for k, v in hist.items()}


def solve(lp, cfg, options: dict, solver) -> Result:
    """Presolve the checked LP ``lp = (c, K, lc, uc, lv, uv)``, solve the reduced LP with
    ``solver`` (`halpern_pdhg`, called with ``presolve=False`` and ``options``), postsolve and
    decide the status on ``lp`` (module docstring). ``cfg``: `halpern_pdhg`'s configuration
    (its tolerances are those of the final check)."""
    from cvxkit.solvers.halpern_pdhg import _UserCheck

    t0 = time.perf_counter()
    c, K, lc, uc, lv, uv = lp
    max_iter, time_limit = options["max_iter"], options["time_limit"]
    red = Reduction(*lp, time_limit=time_limit)
    info = {"status": red.status, "original_shape": tuple(K.shape),
            "reduced_shape": red.reduced_shape, "presolve_time": red.time, "postsolve_time": 0.0,
            "fallback": None}
    user = _UserCheck(*lp, cfg, dict(options, polish=False, verbose=False, callback=None,
                                     progress=False), t0 + time_limit)
    eps_abs, eps_rel = cfg["eps_abs"], cfg["eps_rel"]
    runs, start = [], None

    def left():
        return time_limit - (time.perf_counter() - t0)

    def used():
        return sum(r.iterations for r in runs)

    if red.status in ("kReduced", "kReducedToEmpty"):
        rc, rK = red.lp[0], red.lp[1]
        tries, warm = 0, None
        while True:
            if rc.size:
                r = solver(*red.lp, **dict(options, eps_abs=eps_abs, eps_rel=eps_rel,
                                           max_iter=max(max_iter - used(), 1),
                                           time_limit=max(left(), 1e-9), warm_start=warm))
                runs.append(r)
                status = r.status
                xr, yr = (r.x, r.dual) if status is Status.OPTIMAL else (
                    np.nan_to_num(r.x), np.nan_to_num(r.dual))
            else:  # presolve solved it: the empty solution
                status, xr, yr = Status.OPTIMAL, np.zeros(0), np.zeros(rK.shape[0])
            if status in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE):
                info["fallback"] = f"the reduced LP is {status.value}: the original LP is solved " \
                                   "for a certificate on it"
                break
            tp = time.perf_counter()
            x, y = red.postsolve(xr, yr, max(eps_abs, eps_rel))
            info["postsolve_time"] += time.perf_counter() - tp
            if status is not Status.OPTIMAL:  # a limit or a numerical error: report it
                return _result(lp, x, y, user.metrics(x, y), status, runs, info, user, t0,
                               r.message)
            got = user.confirmed(x, y, used())
            if got is not None:
                return _result(lp, got[0], y, got[1], Status.OPTIMAL, runs, info, user, t0)
            m = user.metrics(x, y)
            tries += 1
            if used() >= max_iter or left() <= 0:
                return _result(lp, x, y, m, Status.MAX_ITER if used() >= max_iter
                               else Status.TIME_LIMIT, runs, info, user, t0)
            if tries >= TIGHTEN_TRIES or not rc.size:
                info["fallback"] = "the postsolved point failed the check on the original LP " \
                                   f"{tries} times: the original LP is solved from it"
                start = {"x": x, "y": y}
                break
            eps_abs, eps_rel = 0.1 * eps_abs, 0.1 * eps_rel
            warm = r
    else:
        info["fallback"] = f"HiGHS's presolve ended {red.status}: the original LP is solved"
    r = solver(*lp, **dict(options, eps_abs=cfg["eps_abs"], eps_rel=cfg["eps_rel"],
                           max_iter=max(max_iter - used(), 1),
                           time_limit=max(left(), 1e-9), warm_start=start))
    runs.append(r)
    return r.replace(iterations=used(), history=_merged_history(runs),
                     solve_time=time.perf_counter() - t0 - runs[0].setup_time - runs[0].compile_time,
                     setup_time=runs[0].setup_time, info=dict(
                         r.info, presolve=info, rejected=user.rejected + r.info["rejected"],
                         polish=user.polisher.log + r.info.get("polish", []),
                         polish_iterations=user.polisher.iterations + r.info["polish_iterations"]))


def _result(lp, x, y, m, status, runs, info, user, t0, message="") -> Result:
    """The `Result` on the original LP of the postsolved ``(x, y)`` with its metrics ``m``."""
    c = lp[0]
    last = runs[-1] if runs else None
    setup = info["presolve_time"] + (runs[0].setup_time if runs else 0.0)
    compile_time = sum(r.compile_time for r in runs)
    extra = dict(last.info) if last is not None else {}
    extra.update(y=y, dual_objective=float(m.dobj), rel_primal=float(m.rel_prim),
                 rel_dual=float(m.rel_dual), rel_gap=float(m.rel_gap), gap=float(m.gap),
                 rejected=user.rejected, presolve=info,
                 polish=user.polisher.log + extra.get("polish", []),
                 polish_iterations=user.polisher.iterations + extra.get("polish_iterations", 0))
    extra.pop("certificate", None)
    return Result(x=x, status=status, objective=float(c @ x), primal_residual=float(m.prim),
                  dual_residual=float(m.dual), iterations=sum(r.iterations for r in runs),
                  solve_time=time.perf_counter() - t0 - setup - compile_time, setup_time=setup,
                  compile_time=compile_time, history=_merged_history(runs),
                  backend=last.backend if last is not None else "numpy", method="halpern_pdhg",
                  info=extra, dual=y, message=message if status is not Status.OPTIMAL else "")
