r"""Exact optimal transport by the network simplex (POT's ``ot.emd``, Bonneel et al. 2011).

$$
\min_{P \ge 0,\ P 1 = a,\ P^\top 1 = b} \langle C, P\rangle
$$

Dual: $\max_{u, v} \langle u, a\rangle + \langle v, b\rangle$ s.t. $u_i + v_j \le C_{ij}$.
A thin adapter: POT's C++ solver does the work; this returns a `Result` with an honest
status (``max_iter`` when POT's pivot limit is reached) and the dual potentials.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.sinkhorn import marginal_error, validate_marginals

_POT_STATUS = {1: Status.OPTIMAL, 0: Status.PRIMAL_INFEASIBLE, 2: Status.DUAL_INFEASIBLE,
               3: Status.MAX_ITER}


def network_simplex(a, b, C, *, max_iter=1_000_000, tol=1e-9, verbose=False) -> Result:
    """Exact OT between histograms ``a`` (n,) and ``b`` (m,) with cost ``C`` (n, m).

    Args:
        max_iter: pivot limit of the network simplex (POT's ``numItermax``).
        tol: marginal error (L1) above which an ``optimal`` answer is downgraded to
            ``optimal_inaccurate``.

    Returns:
        `Result`: ``x`` the plan (n, m), ``objective`` ``<C, P>``, ``primal_residual``
        the L1 marginal error, ``info['u']``, ``info['v']`` the dual potentials.
    """
    import ot

    t0 = time.perf_counter()
    a, b, C = validate_marginals(a, b, C)
    b = b * (a.sum() / b.sum())  # POT requires equal sums to machine precision
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        P, log = ot.emd(a, b, C, numItermax=int(max_iter), log=True)
    t2 = time.perf_counter()
    status = _POT_STATUS.get(int(log["result_code"]), Status.NUMERICAL_ERROR)
    err = float(marginal_error(P, a, b))
    if status is Status.OPTIMAL and err > tol * max(1.0, a.sum()):
        status = Status.OPTIMAL_INACCURATE
    if verbose:
        print(f"cvxkit network_simplex: status {status.value}, cost {float(log['cost']):.10g}, "
              f"marginal error {err:.2e}, {t2 - t1:.3f} s")
    return Result(
        x=P, status=status, objective=float(np.vdot(C, P)), primal_residual=err,
        dual_residual=0.0, iterations=0, solve_time=t2 - t1, setup_time=t1 - t0,
        method="network_simplex",
        info={"transport_cost": float(np.vdot(C, P)), "u": np.asarray(log["u"]), "v": np.asarray(log["v"]), "warning": log["warning"],
              "dual_objective": float(np.dot(log["u"], a) + np.dot(log["v"], b))},
    )
