r"""What the primal-dual splitting methods share: ADMM (`cvxkit.solvers.admm`, OSQP's QP
instance `cvxkit.solvers.admm_qp`) and restarted Halpern PDHG (`cvxkit.solvers.halpern_pdhg`).

Both iterate on a primal-dual pair $(x, y)$ and test, every ``check_every`` iterations, three
outcomes, kept in the state as a termination **flag** (an integer, so that JAX can trace it):

* ``SOLVED``: the residuals meet the tolerances;
* ``PRIMAL_INFEASIBLE``: the dual step $\delta y$ is a Farkas certificate (a ray $y$ with
  $A^\top y \approx 0$ and a negative support function of the constraint set);
* ``DUAL_INFEASIBLE``: the primal step $\delta x$ is a ray along which the objective decreases
  without bound;
* ``DIVERGED``: non-finite or huge (``DIVERGED_AT``) values;

else ``RUNNING``. `loop_verdict` turns a flag into the `Status` of the result; `certificate`
scales the certificate candidate to unit infinity norm. Bounds of magnitude ``INF_BOUND`` or
more are infinite (OSQP's and HiGHS's convention). `warm_parts` reads a warm start given as a
`Result`, a dict or a pair ``(x, y)``.

Both run blocks of ``check_every`` iterations as one driver step
(`cvxkit.solvers.driver.Algorithm.iterations_per_step`), the last block of a run cut at
``max_iter``, where the driver caps its count.
"""
from __future__ import annotations

import math

import numpy as np

from cvxkit.solvers.result import Result, Status

#: termination flags kept in the state
RUNNING, SOLVED, PRIMAL_INFEASIBLE, DUAL_INFEASIBLE, DIVERGED = 0, 1, 2, 3, 4
FLAG_STATUS = {SOLVED: Status.OPTIMAL, PRIMAL_INFEASIBLE: Status.PRIMAL_INFEASIBLE,
               DUAL_INFEASIBLE: Status.DUAL_INFEASIBLE, DIVERGED: Status.NUMERICAL_ERROR}
#: bounds at or beyond this magnitude are infinite (OSQP uses 1e30 as infinity)
INF_BOUND = 1e20
#: residuals or iterates beyond this mean divergence (OSQP's OSQP_INFTY)
DIVERGED_AT = 1e30
#: the objective reported with a certificate: no feasible point (+inf), unbounded below (-inf)
INFEASIBLE_OBJECTIVE = {Status.PRIMAL_INFEASIBLE: math.inf, Status.DUAL_INFEASIBLE: -math.inf}


def loop_verdict(flag, loop: Status, relaxed=RUNNING) -> Status:
    """The status of one problem from its termination ``flag`` and the driver loop's status.

    The flag's status if it stopped; else ``numerical_error`` if the loop saw non-finite
    values; ``optimal_inaccurate`` if the ``relaxed`` flag (the tests at relaxed tolerances,
    as OSQP does) is ``SOLVED``; ``max_iter`` if the loop stopped with the flag still
    ``RUNNING`` (the iteration limit; a batch stops once every member has); else the loop's.
    """
    flag = int(flag)
    if flag != RUNNING:
        return FLAG_STATUS[flag]
    if loop is Status.NUMERICAL_ERROR:
        return loop
    if int(relaxed) == SOLVED:
        return Status.OPTIMAL_INACCURATE
    return Status.MAX_ITER if loop is Status.OPTIMAL else loop


def certificate(status: Status, ray_y, ray_x):
    """The certificate of an infeasibility ``status`` (``ray_y`` for primal, ``ray_x`` for
    dual infeasibility; unscaled) as float64 with unit infinity norm; ``None`` otherwise."""
    v = {Status.PRIMAL_INFEASIBLE: ray_y, Status.DUAL_INFEASIBLE: ray_x}.get(status)
    if v is None:
        return None
    v = np.asarray(v, dtype=np.float64)
    return v / max(np.abs(v).max(initial=0.0), 1e-300)


def warm_parts(warm_start, expected: str, keys=("x", "y")) -> dict | None:
    """The parts ``{key: value or None}`` of a warm start; ``None`` for ``None``.

    A `Result` gives its ``x`` and ``info[key]`` for the other keys; a dict may hold any of
    ``keys``; a pair is ``(x, y)``. Anything else raises ``ValueError`` starting with
    ``expected`` (what the method accepts). The values are not checked here.
    """
    if warm_start is None:
        return None
    if isinstance(warm_start, Result):
        info = warm_start.info or {}
        return {k: warm_start.x if k == "x" else info.get(k) for k in keys}
    if isinstance(warm_start, dict):
        extra = sorted(map(str, set(warm_start) - set(keys)))
        if extra:
            raise ValueError(f"{expected}; got dict with unknown keys {extra}")
        return {k: warm_start.get(k) for k in keys}
    if isinstance(warm_start, (tuple, list)) and len(warm_start) == 2:
        return {k: (warm_start[i] if i < 2 else None) for i, k in enumerate(keys)}
    raise ValueError(f"{expected}; got {type(warm_start).__name__}")
