r"""The QP's final tests on the user's own (unscaled) data, and the loop that keeps iterating
until they hold (`cvxkit.solvers.admm_qp`).

ADMM's loop stops on tests in normalized units (`cvxkit.solvers.admm`, "Checks"): each row
divided by its norm, $x$ and costs in the data's units. Those make the status invariant when a
row, the cost or the right-hand sides are scaled by a power of ten, but they are not the tests a
user reads: a candidate that passes them is accepted as ``optimal`` only if OSQP's tests also
hold **in the user's units**, recomputed in float64 from the unscaled $x$, $y$ (infinity norms):

$$
\lVert Ax - \Pi_{[l,u]}(Ax)\rVert \le \epsilon_{abs} + \epsilon_{rel}\max(\lVert Ax\rVert, \lVert\Pi_{[l,u]}(Ax)\rVert),
$$

$$
\lVert Px + q + A^\top y\rVert \le \epsilon_{abs} + \epsilon_{rel}\max(\lVert Px\rVert, \lVert A^\top y\rVert, \lVert q\rVert),
$$

$$
\lvert x^\top Px + q^\top x + u^\top y_+ + l^\top y_-\rvert \le
\epsilon_{abs} + \epsilon_{rel}\max(\lvert x^\top Px\rvert, \lvert q^\top x\rvert, \lvert u^\top y_+ + l^\top y_-\rvert)
$$

(the gap test only with ``check_gap``), where $y$ is first projected onto the multipliers
that the bounds allow (0 on a side whose bound is infinite; the returned $y$ is that
projection). With ``eps_rel=0`` these are qpbenchmark's absolute tests
(`cvxkit.problems.maros_meszaros.judge`).

When they fail, the loop goes on with its own tolerances divided by
$\min(10^3, \max(5, 2\,\text{ratio}))$, ratio the largest residual-to-tolerance quotient found
here (`UserCheck.factors`); it stops at ``max_iter`` or ``time_limit`` with
``optimal_inaccurate`` (the tests at 10 times the tolerances, in both units) or ``max_iter`` /
``time_limit``. An infeasibility certificate of the loop is likewise checked on the user's data
(`cvxkit.solvers.admm_box.certificate_error`); one that fails there makes the loop go on with
its certificate tolerance times `CERTIFICATE_TIGHTEN`.
"""
from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import numpy as np

from cvxkit.solvers.driver import Run
from cvxkit.solvers.primal_dual import (DUAL_INFEASIBLE, FLAG_STATUS, PRIMAL_INFEASIBLE, RUNNING,
                                        SOLVED, certificate, loop_verdict)
from cvxkit.solvers.result import Status

#: a certificate candidate that fails `certificate_error` on the user's data makes the loop go
#: on with its certificate tolerance (``eps_pinf`` or ``eps_dinf``) times this
CERTIFICATE_TIGHTEN = 0.1
#: the loop's tolerances are divided by at least this factor after a rejected candidate ...
TIGHTEN_MIN = 5.0
#: ... and at most this one
TIGHTEN_MAX = 1e3


def box_support(l, u, y) -> float:
    r"""$u^\top y_+ + l^\top y_-$ (infinite bounds count 0: ``y`` is in their polar cone), the
    user's data."""
    return float(np.where(np.isfinite(u), u, 0.0) @ np.maximum(y, 0.0)
                 + np.where(np.isfinite(l), l, 0.0) @ np.minimum(y, 0.0))


#: a primal infeasibility certificate must exclude every x with ||x||_inf up to this many times
#: the loop's current iterate (`reach_error`)
REACH_FACTOR = 10.0


def reach_error(A, l, u, y, x):
    r"""Why the primal infeasibility certificate ``y`` does not reach far enough, or ``None``.

    For any $x$ with $l \le Ax \le u$, $y^\top Ax \le \sigma(y) = u^\top y_+ + l^\top y_-$,
    while $|y^\top Ax| \le \lVert A^\top y\rVert_1 \lVert x\rVert_\infty$; so ``y`` proves
    that no feasible $x$ has $\lVert x\rVert_\infty < R = -\sigma(y) / \lVert A^\top y
    \rVert_1$, and nothing beyond. The relative tests of `certificate_error` bound
    $\lVert A^\top y\rVert$ against the data, not against the size of the solution: on
    QFFFFF80 and YAO (feasible) they accepted a $y$ with $R$ in the thousands, of the order of
    the solution itself. The certificate is accepted when $R$ is at least `REACH_FACTOR` times
    the loop's current $\lVert x\rVert_\infty$ (on an infeasible problem ADMM's $x$ stays
    bounded while $A^\top \delta y \to 0$, so $R$ grows without bound and the test is passed
    eventually; on a feasible one $R$ stays below the distance to the feasible set)."""
    y = np.asarray(y, np.float64)
    aty = float(np.sum(np.abs(np.asarray(A.T @ y).ravel())))
    sig = box_support(l, u, y)
    xn = float(np.max(np.abs(x), initial=0.0))
    if -sig >= REACH_FACTOR * xn * aty:
        return None
    return (f"it excludes only the points with ||x||_inf < {-sig / max(aty, 1e-300):.3g}, not "
            f"{REACH_FACTOR:g} times the iterate's {xn:.3g}")


class Measured(NamedTuple):
    """The residuals of the module docstring and their tolerances (user units)."""

    prim: float
    dual: float
    gap: float
    eps_prim: float
    eps_dual: float
    eps_gap: float

    def ratio(self, check_gap: bool = True) -> float:
        """The largest residual over its tolerance (``inf`` for non-finite residuals)."""
        r = [self.prim / self.eps_prim, self.dual / self.eps_dual]
        if check_gap:
            r.append(self.gap / self.eps_gap)
        r = max(r)
        return r if np.isfinite(r) else np.inf


def polar(y, l, u):
    """``y`` with the entries that an infinite bound forbids set to 0 (``y_i > 0`` needs a
    finite ``u_i``, ``y_i < 0`` a finite ``l_i``)."""
    y = np.where(np.isfinite(u), y, np.minimum(y, 0.0))
    return np.where(np.isfinite(l), y, np.maximum(y, 0.0))


class UserCheck:
    """The tests of the module docstring for the QP ``(P, q, A, l, u)`` (the user's data)."""

    def __init__(self, P, q, A, l, u, eps_abs: float, eps_rel: float, check_gap: bool = True,
                 eps_pinf: float = 1e-4, eps_dinf: float = 1e-4):
        self.P, self.q, self.A = P, np.asarray(q, np.float64), A
        self.l, self.u = np.asarray(l, np.float64), np.asarray(u, np.float64)
        self.eps_abs, self.eps_rel, self.check_gap = float(eps_abs), float(eps_rel), bool(check_gap)
        self.eps_pinf, self.eps_dinf = float(eps_pinf), float(eps_dinf)
        self.rejected: list = []  # (iteration, ratio or why) of each candidate that failed here
        self.last: Measured | None = None

    @classmethod
    def of(cls, P, q, A, l, u, cfg) -> "UserCheck":
        """The check of a QP with `admm_qp`'s settings ``cfg``."""
        return cls(P, q, A, l, u, cfg["eps_abs"], cfg["eps_rel"], cfg["check_gap"],
                   cfg["eps_pinf"], cfg["eps_dinf"])

    def certificate_holds(self, flag, ray_y, ray_x, iteration=None, x=None) -> bool:
        """Does the certificate of the loop's infeasibility ``flag`` (``ray_y`` for primal,
        ``ray_x`` for dual infeasibility, unscaled) pass `certificate_error` on the user's
        data, and, given the loop's current (unscaled) iterate ``x``, `reach_error`? (A failure
        is recorded in ``rejected``.)"""
        from cvxkit.solvers.admm_box import certificate_error

        status = FLAG_STATUS[int(flag)]
        cert = certificate(status, ray_y, ray_x)
        why = certificate_error(self.P, self.q, self.A, self.l, self.u, status, cert,
                                self.eps_pinf, self.eps_dinf)
        if why is None and status is Status.PRIMAL_INFEASIBLE and x is not None:
            why = reach_error(self.A, self.l, self.u, cert, x)
        if why is not None and iteration is not None:
            self.rejected.append((int(iteration), f"{status.value}: {why}"))
        return why is None

    def measure(self, x, y) -> Measured:
        x = np.asarray(x, np.float64)
        y = polar(np.asarray(y, np.float64), self.l, self.u)
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            inf = np.inf
            return Measured(inf, inf, inf, 1.0, 1.0, 1.0)
        nrm = lambda v: float(np.max(np.abs(v), initial=0.0))  # noqa: E731
        Ax = np.asarray(self.A @ x).ravel()
        Px = np.asarray(self.P @ x).ravel()
        Aty = np.asarray(self.A.T @ y).ravel()
        z = np.clip(Ax, self.l, self.u)
        xPx, qx = float(x @ Px), float(self.q @ x)
        sig = box_support(self.l, self.u, y)
        ea, er = self.eps_abs, self.eps_rel
        return Measured(nrm(Ax - z), nrm(Px + self.q + Aty), abs(xPx + qx + sig),
                        ea + er * max(nrm(Ax), nrm(z)), ea + er * max(nrm(Px), nrm(Aty), nrm(self.q)),
                        ea + er * max(abs(xPx), abs(qx), abs(sig)))

    def holds(self, x, y, relax: float = 1.0, iteration=None) -> bool:
        """Do the tests hold at ``relax`` times the tolerances? (A failure at ``relax=1`` with
        an ``iteration`` is recorded in ``rejected``.)"""
        m = self.measure(x, y)
        ratio = m.ratio(self.check_gap)
        if relax == 1.0:
            self.last = m
            if ratio > 1.0 and iteration is not None:
                self.rejected.append((int(iteration), float(ratio)))
        return ratio <= relax

    def factors(self, flag) -> dict:
        """The factors of the loop's tolerances after a rejected candidate of the loop's
        ``flag``: ``eps_abs`` and ``eps_rel`` for an optimal one (module docstring; from the
        last failed `holds`), ``eps_pinf`` or ``eps_dinf`` times `CERTIFICATE_TIGHTEN` for a
        certificate."""
        if int(flag) == PRIMAL_INFEASIBLE:
            return {"eps_pinf": CERTIFICATE_TIGHTEN}
        if int(flag) == DUAL_INFEASIBLE:
            return {"eps_dinf": CERTIFICATE_TIGHTEN}
        ratio = self.last.ratio(self.check_gap) if self.last is not None else np.inf
        f = 1.0 / min(TIGHTEN_MAX, max(TIGHTEN_MIN, 2.0 * ratio))
        return {"eps_abs": f, "eps_rel": f}

    def message(self, status: Status) -> str:
        """What the tests found, for ``Result.message`` ("" when there is nothing to say)."""
        m, n = self.last, len(self.rejected)
        held = "" if m is None else (
            f" (unscaled: primal {m.prim:.2e} <= {m.eps_prim:.2e}, dual {m.dual:.2e} <= "
            f"{m.eps_dual:.2e}, gap {m.gap:.2e} <= {m.eps_gap:.2e})")
        again = f"; {n} earlier candidate(s) failed them and the loop went on with tighter " \
            "internal tolerances" if n else ""
        if status is Status.OPTIMAL:
            return f"optimal: the tolerances hold on the user's unscaled data{held}{again}"
        if n:
            return (f"{status.value}: the last candidate failed the tests on the user's data"
                    f"{held.replace('<=', 'vs')}{again}")
        return ""

    def info(self) -> dict:
        """What the result's ``info`` reports: the last measurement and the rejections."""
        out = {"rejected": list(self.rejected)}
        if self.last is not None:
            out["unscaled"] = self.last._asdict()
        return out


def tightened(st, factors: dict, place=None):
    """`Settings` ``st`` with each field named in ``factors`` times its factor (a scalar, or
    one per member of a batch); ``place(new, old)`` puts a new array where the old one lives
    (a JAX device array), default a numpy array of the old dtype."""
    place = place or (lambda new, old: np.asarray(new, dtype=np.asarray(old).dtype))
    return st._replace(**{k: place(np.asarray(getattr(st, k)) * np.reshape(
        f, np.shape(getattr(st, k))), getattr(st, k)) for k, f in factors.items()})


def unscaled(d, s):
    """``(x, y)`` of the scaled state ``s`` in the user's units (scaling of ``d``)."""
    return s.x * d.D, s.y * d.E / d.c


#: with ``polish``, a running loop also tries polishing at this iteration, then each time its
#: iteration count has doubled (an active set may be clear long before ADMM's residuals meet
#: absolute tolerances on badly scaled data)
POLISH_FIRST = 100


def confirmed_run(bk, alg, sp, d, s, dopts, max_iter: int, pol, user: UserCheck,
                  sparse_polish: bool):
    """``(run, state, polish_info)``: the numpy driver loop from ``s``, continued (with the
    loop's tolerances tightened, `UserCheck.factors`) until an ``optimal`` candidate passes
    ``user``'s tests or an infeasibility certificate passes `certificate_error` on the user's
    data (a rejected one makes the loop go on with a tighter certificate test), or the
    iterations or time run out (the flag is then reset to running).
    With ``pol[0]`` each candidate is polished first (``polish_state`` with ``delta, refine =
    pol[1:]``), and the polished point is kept if it passes; polishing is also tried at
    iteration `POLISH_FIRST` and whenever the count has doubled since the last try. Raises
    what a refactorization raises (``numpy.linalg.LinAlgError``)."""
    from cvxkit.solvers.admm_box import polish_state
    from cvxkit.solvers.driver import run

    from cvxkit.solvers.admm_box import box_polar

    d0, runs, polish_info, t_start = d, [], "off", time.perf_counter()
    next_polish, tried = POLISH_FIRST, set()  # (the active sets that failed to polish)

    def polished(s):
        """The polished state if it passes the tests, else None."""
        nonlocal polish_info
        s_pol, ok = polish_state(bk, sp, d0, s, pol[1], pol[2], sparse=sparse_polish,
                                 tried=tried)
        if ok and user.holds(*unscaled(d, s_pol)):
            polish_info = "success"
            return s_pol._replace(flag=SOLVED)
        polish_info = "failed"
        return None

    while True:
        stop = min(max_iter, max(next_polish, int(s.k) + 1)) if pol[0] else max_iter
        out = run(alg, bk, s, d, remaining(dopts, s.k, stop, t_start))
        runs.append(out)
        s = out.state
        flag = int(s.flag)
        if flag in (PRIMAL_INFEASIBLE, DUAL_INFEASIBLE):
            if user.certificate_holds(flag, d.E * box_polar(bk, d, s.dy), d.D * s.dx,
                                      iteration=s.k, x=d.D * s.x):
                break
            s = s._replace(flag=RUNNING)  # not confirmed: go on with a tighter test
            if exhausted(out, s.k, max_iter):
                break
            d = d._replace(settings=tightened(d.settings, user.factors(flag)))
            continue
        if int(s.flag) == RUNNING and pol[0] and int(s.k) >= next_polish and \
                out.status not in (Status.TIME_LIMIT, Status.INTERRUPTED):
            next_polish = 2 * int(s.k)
            s = polished(s) or s
            if int(s.flag) == RUNNING and int(s.k) < max_iter:
                continue
        if int(s.flag) != SOLVED or polish_info == "success":
            break
        if pol[0]:
            s_pol = polished(s)
            if s_pol is not None:
                s = s_pol
                break
        if user.holds(*unscaled(d, s), iteration=s.k):
            break
        s = s._replace(flag=RUNNING)  # not confirmed: go on with tighter internal tolerances
        if exhausted(out, s.k, max_iter):
            break
        d = d._replace(settings=tightened(d.settings, user.factors(SOLVED)))
    if int(s.flag) == SOLVED and runs[-1].status is Status.MAX_ITER:  # polished at a try
        runs[-1] = runs[-1]._replace(status=Status.OPTIMAL)
    return merge_runs(runs), s, polish_info


def confirmed_status(bk, sp, d0, s, loop: Status, user: UserCheck) -> Status:
    """The status of a run whose ``optimal`` flag `UserCheck` has confirmed: the flag's status
    if set, else ``optimal_inaccurate`` where the tests at 10 times the tolerances hold in
    normalized units (the original settings of ``d0``) and on the user's data, else the loop's
    (`loop_verdict`)."""
    from cvxkit.solvers.admm import residuals, termination_flag

    if int(s.flag) != RUNNING:
        return loop_verdict(s.flag, loop)
    relaxed = termination_flag(bk, sp, d0, s, residuals(bk, sp, d0, s.x, s.z, s.y), relax=10.0)
    if int(relaxed) == SOLVED and not user.holds(*unscaled(d0, s), relax=10.0):
        relaxed = RUNNING
    return loop_verdict(s.flag, loop, relaxed)


class MemberChecks:
    """`UserCheck` of each member of a JAX solve (one QP is a batch of one), applied to the
    host copy ``fin`` of its finished state (`cvxkit.solvers.admm_qp._jax_run`): arrays with a
    leading batch axis (possibly padded beyond the members), or scalars for one QP."""

    def __init__(self, checks, max_iter: int):
        self.checks, self.max_iter = list(checks), int(max_iter)

    def _members(self, fin):
        """``[(i, check)]`` and the fields as (padded) 1-d arrays, written back by `_store`."""
        return list(enumerate(self.checks)), {k: np.array(np.atleast_1d(fin[k]))
                                              for k in ("flag", "relaxed", "k")}

    @staticmethod
    def _store(fin, f):
        for k, v in f.items():
            fin[k] = v.reshape(np.shape(fin[k]))

    def review(self, fin, out: Run):
        """``(factors, redo)``: which (padded) members go on, and the factors of their
        settings (`UserCheck.factors`, one array per field). A member whose optimal candidate
        fails its tests, or whose certificate fails `certificate_error`, gets its flag reset to
        running in ``fin``; it goes on unless its iterations or the run's time are used up."""
        members, f = self._members(fin)
        shape = f["flag"].shape
        factors = {k: np.ones(shape) for k in ("eps_abs", "eps_rel", "eps_pinf", "eps_dinf")}
        redo = np.zeros(shape, dtype=bool)
        xs, ys = (np.atleast_2d(fin[k]) for k in ("x", "y"))
        cy, cx = (np.atleast_2d(fin[k]) for k in ("cert_y", "cert_x"))
        for i, chk in members:
            flag, k = int(f["flag"][i]), f["k"][i]
            if flag == SOLVED:
                if chk.holds(xs[i], ys[i], iteration=k):
                    continue
            elif flag not in (PRIMAL_INFEASIBLE, DUAL_INFEASIBLE) or \
                    chk.certificate_holds(flag, cy[i], cx[i], iteration=k, x=xs[i]):
                continue
            f["flag"][i] = RUNNING
            if not exhausted(out, k, self.max_iter):
                redo[i] = True
                for name, v in chk.factors(flag).items():
                    factors[name][i] = v
        self._store(fin, f)
        return factors, redo

    def confirm(self, jax, fin, out: Run, d, dopts, time_limit: float, rerun, refinish):
        """``(fin, run)``: `review` the finished JAX solve ``fin`` (``out`` its driver `Run`,
        ``d`` its `Data`, ``dopts`` the driver's `Options`), and while members go on, rerun
        the loop (``rerun(state, data, options) -> Run``, on ``d`` with their settings
        tightened and their flags reset) and finish again (``refinish(state) -> fin``, on the
        original settings); then `finalize`. ``run`` merges the runs."""
        runs = [out]
        while True:
            factors, redo = self.review(fin, out)
            if not redo.any():
                break
            place = lambda new, old: jax.device_put(new, old.sharding)  # noqa: E731
            d = d._replace(settings=tightened(d.settings, factors, place))
            old = out.state.flag
            flag = np.where(redo.reshape(old.shape), RUNNING, jax.device_get(old)).astype(np.int32)
            s = out.state._replace(flag=jax.device_put(flag, old.sharding))
            done = int(np.min(np.atleast_1d(fin["k"])[redo]))
            used = sum(r.solve_time for r in runs)
            out = rerun(s, d, dataclasses.replace(dopts, max_iter=max(1, self.max_iter - done),
                                                  time_limit=max(time_limit - used, 1e-9)))
            runs.append(out)
            fin = refinish(out.state)
        self.finalize(fin)
        return fin, merge_runs(runs)

    def finalize(self, fin):
        """``relaxed`` kept only where the 10x tests also hold on the user's data; ``y``
        projected (`polar`), in ``fin``."""
        members, f = self._members(fin)
        ys = np.array(np.atleast_2d(fin["y"]), dtype=np.float64)
        xs = np.atleast_2d(fin["x"])
        for i, chk in members:
            if int(f["flag"][i]) == RUNNING and int(f["relaxed"][i]) == SOLVED and \
                    not chk.holds(xs[i], ys[i], relax=10.0):
                f["relaxed"][i] = RUNNING
            ys[i] = polar(ys[i], chk.l, chk.u)
        self._store(fin, f)
        fin["y"] = ys.reshape(np.shape(fin["y"]))


def remaining(opts, iterations_done: int, max_iter: int, t_start: float):
    """The driver `Options` for the next part of a run: what is left of ``max_iter`` and of
    ``opts.time_limit`` (counted from ``t_start``)."""
    left = opts.time_limit - (time.perf_counter() - t_start)
    return dataclasses.replace(opts, max_iter=max(1, max_iter - int(iterations_done)),
                               time_limit=max(left, 1e-9))


def exhausted(out: Run, iterations_done: int, max_iter: int) -> bool:
    """Has the run used up its iterations or time (or been interrupted)?"""
    return int(iterations_done) >= max_iter or out.status in (Status.TIME_LIMIT,
                                                               Status.INTERRUPTED)


def merge_runs(runs) -> Run:
    """One driver `Run` from consecutive runs (histories concatenated, the iterations and times
    of each continuing those before it): the LP solver's merge, which does the same."""
    from cvxkit.solvers.halpern_pdhg import _merge

    return _merge(runs)
