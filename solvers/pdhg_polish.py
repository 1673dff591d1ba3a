r"""Feasibility polishing for `cvxkit.solvers.halpern_pdhg` (``polish=True``), after PDLP's
(Applegate, Hinder, Lu & Lubin, "PDLP: A Practical First-Order Method for Large-Scale Linear
Programming", 2025, "feasibility polishing").

First-order methods often reach a small duality gap long before small primal or dual residuals.
Finding a feasible point near a given one is much easier for PDHG than solving the LP, so the
current point is
*polished* (once the objectives agree, $\lvert c^\top x - d\rvert \le \epsilon\max(\lvert c^\top x\rvert,
\lvert d\rvert)$, while the residuals or the terms they add to the gap test still fail):

* **primal**: the LP with a zero cost, $\min 0$ s.t. $l_c \le Kx \le u_c$, $l_v \le x \le u_v$,
  is solved by `halpern_pdhg` started at $(x, 0)$; its tests reduce to the primal residual test
  of the LP (with $c = 0$ the dual and gap tests hold at $y = 0$), so it ends at a point within
  the primal tolerance, near $x$;
* **dual**: the LP with every finite bound set to 0 (the dual feasibility problem: $x = 0$ is
  optimal exactly when the LP's dual is feasible) is solved started at $(0, y)$; its tests reduce
  to the dual residual test of the LP, so it ends at a dual feasible $y$ near the given one.

Each polishing solve aims at `TIGHTER` times the LP's tolerances (small residuals also shrink the
terms of the gap test that bound what they can hide from the objective) and may take at most
`FRACTION` of the main loop's iterations so far (at least `MIN_ITERATIONS`; it keeps its last
point when that budget runs out). The pair (polished $x$,
polished $y$) is accepted only if it passes every test of `halpern_pdhg` (residuals and gap) in
float64 on the user's LP; otherwise it is dropped, and the main loop goes on unchanged from its
own iterate. Attempts are made at `FIRST` iterations and then each time the iteration count has
doubled.
"""
from __future__ import annotations

import time

import numpy as np

from cvxkit.solvers.result import Status

#: the first attempt is made after this many main-loop iterations, the next ones at doublings
FIRST = 1024
#: each polishing solve may run this fraction of the main loop's iterations so far ...
FRACTION = 0.125
#: ... and at least this many iterations
MIN_ITERATIONS = 256
#: the check of an optimal candidate (`Polisher.verify`) may take this fraction of the
#: iterations so far, and at least VERIFY_ITERATIONS
VERIFY_FRACTION, VERIFY_ITERATIONS = 0.25, 1024
#: the polishing solves aim at this fraction of the LP's tolerances (the residuals also enter
#: the gap test, through the terms that bound what they can hide from the objective)
TIGHTER = 0.01


def _zero_finite(v):
    return np.where(np.isfinite(v), 0.0, v)


class Polisher:
    """Polishing attempts of one `halpern_pdhg` solve: ``next_at(done)`` says where the main loop
    should pause; ``attempt`` polishes a point and says whether it passed."""

    def __init__(self, lp, user, options: dict, solver):
        self.lp, self.user, self.options, self.solver = lp, user, options, solver
        self.at, self.iterations, self.log = FIRST, 0, []

    def next_at(self, done: int) -> int:
        while self.at <= done:
            self.at *= 2
        return self.at

    def due(self, fin: dict, eps) -> bool:
        """The objectives agree to the tolerance, ``|c'x - d| <= eps max(|c'x|, |d|)`` (the main
        loop's unscaled values), and the point is not optimal yet: its residuals, or the parts
        of the gap test they bring in, are the obstacle."""
        p, d = float(fin["pobj"]), float(fin["dobj"])
        return abs(p - d) <= eps * max(abs(p), abs(d))

    def _part(self, name, x, y, budget, time_left):
        """The primal (``name="primal"``: the point near ``x``) or dual (``"dual"``: the
        multipliers near ``y``) polishing solve at `TIGHTER` times the tolerances, at most
        ``budget`` iterations; its point (the best the budget allowed), or None (a
        certificate, a non-finite point, no time left)."""
        if time_left <= 0:
            return None
        c, K, lc, uc, lv, uv = self.lp
        if name == "primal":
            data, start = (np.zeros_like(c), K, lc, uc, lv, uv), (x, np.zeros_like(lc))
        else:
            data = (c, K, _zero_finite(lc), _zero_finite(uc), _zero_finite(lv), _zero_finite(uv))
            start = (np.zeros_like(c), y)
        st = self.user.d.settings
        r = self.solver(*data, **dict(self.options, eps_abs=TIGHTER * float(st.eps_abs),
                                      eps_rel=TIGHTER * float(st.eps_rel), max_iter=budget,
                                      time_limit=time_left, warm_start=start))
        self.iterations += r.iterations
        self.log[-1][name] = r.iterations
        v = r.x if name == "primal" else r.dual
        if r.status in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE) \
                or not np.isfinite(v).all():
            return None
        return v

    def attempt(self, x, y, done: int, time_left: float):
        """Polish ``(x, y)`` (the user's units); returns ``(x, y, metrics)`` when the polished
        pair passes the tests on the user's LP, else None. ``done``: the main loop's
        iterations (the budget is a fraction of them)."""
        budget = max(MIN_ITERATIONS, int(FRACTION * done))
        t0 = time.perf_counter()
        self.log.append({"iteration": done, "kind": "polish", "primal": 0, "dual": 0,
                         "accepted": False})
        xp = self._part("primal", x, y, budget, time_left)
        yp = None if xp is None else self._part("dual", x, y, budget,
                                                 time_left - (time.perf_counter() - t0))
        if yp is None:
            return None
        m = self.user.metrics(xp, yp)
        self.log[-1]["accepted"] = bool(m.ok)
        return (xp, yp, m) if bool(m.ok) else None

    def verify(self, x, y, m, done: int, time_left: float):
        """The objective check of an ``optimal`` candidate ``(x, y)`` with metrics ``m`` (it
        passed the tests): unless its primal residual is already within `TIGHTER` times the
        tolerance (or the cost is 0), ``x`` is replaced by the primal polishing of it (a point
        about 100 times more feasible, near it), and the pair must pass the tests again -- the
        gap test now compares the dual objective with the objective of a point that (nearly)
        satisfies the constraints, so it bounds the distance to the optimal value from both
        sides. Returns ``(x, metrics)`` of the accepted point, or None."""
        st = self.user.d.settings
        if float(m.rel_prim) <= TIGHTER * max(float(st.eps_abs), float(st.eps_rel)) \
                or not float(self.user.d.cnorm) > 0:
            return x, m
        self.log.append({"iteration": done, "kind": "verify", "primal": 0, "accepted": False})
        xp = self._part("primal", x, y, max(VERIFY_ITERATIONS, int(VERIFY_FRACTION * done)),
                        time_left)
        if xp is None:
            return None
        m = self.user.metrics(xp, y)
        self.log[-1]["accepted"] = bool(m.ok)
        return (xp, m) if bool(m.ok) else None
