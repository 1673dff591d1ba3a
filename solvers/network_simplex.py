r"""Exact optimal transport by the network simplex (POT's ``ot.emd``, Bonneel et al. 2011).

$$
\min_{P \ge 0,\ P 1 = a,\ P^\top 1 = b} \langle C, P\rangle
$$

Dual: $\max_{u, v} \langle u, a\rangle + \langle v, b\rangle$ s.t. $u_i + v_j \le C_{ij}$.

POT's C++ solver does the work on a normalized instance: mass 1 (``a / M``, ``b / M`` with
``M = sum(a)``) and costs in [0, 1] (``Cn = (C - min C) / (max C - min C)``), because it reports
feasible problems as infeasible for negative costs or a large total mass. The plan and the
potentials are mapped back (``P = M Pn``, ``u = s un + min C``, ``v = s vn`` with
``s = max C - min C``) and POT's result code is never passed through unchecked: ``optimal`` is
reported only when, with ``tol``,

* the relative L1 marginal error ``(||P1 - a||_1 + ||P^T 1 - b||_1) / M <= tol`` (on the user's
  data, in float64),
* the dual violation ``max_ij (u_i + v_j - C_ij) / s <= tol`` (over ``a_i > 0``, ``b_j > 0``;
  the potentials of zero-mass rows and columns are set by a c-transform),
* the duality gap ``|<C, P> - <u, a> - <v, b>| / (M s) <= tol``.

Validation makes the masses equal (up to a relative 1e-8), and finite costs make the problem
bounded, so no infeasibility or unboundedness certificate is ever reported: a code that claims
one ends ``numerical_error``; POT's pivot limit ends ``max_iter``.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.driver import Final, finish
from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.sinkhorn import marginal_error, normalize_cost, validate_ot

#: POT result codes (ot.lp.emd_c): 0 infeasible, 1 optimal, 2 unbounded, 3 pivot limit
_POT_CODES = {0: "infeasible", 1: "optimal", 2: "unbounded", 3: "max_iter_reached"}


def _c_transform(un, vn, Cn, rows, cols):
    """Dual-feasible potentials off the support: ``u_i = min_j (Cn_ij - v_j)`` for ``a_i = 0``
    (over the columns of positive mass), then ``v_j = min_i (Cn_ij - u_i)`` for ``b_j = 0``."""
    un, vn = np.array(un, dtype=np.float64), np.array(vn, dtype=np.float64)
    if not rows.all() and cols.any():
        un[~rows] = np.min(Cn[np.ix_(~rows, cols)] - vn[cols][None, :], axis=1)
    if not cols.all():
        vn[~cols] = np.min(Cn[:, ~cols] - un[:, None], axis=0)
    return un, vn


def network_simplex(a, b, C, *, max_iter=1_000_000, tol=1e-9, verbose=False) -> Result:
    """Exact OT between histograms ``a`` (n,) and ``b`` (m,) with cost ``C`` (n, m).

    Args:
        a, b: nonnegative weights with equal totals (any common total mass).
        C: cost matrix (any finite real values; scipy.sparse is densified).
        max_iter: pivot limit of the network simplex (POT's ``numItermax``).
        tol: relative tolerance of the checks that confirm ``optimal`` (module docstring);
            a plan that misses them ends ``optimal_inaccurate``.
        verbose: print the status and the checks.

    Returns:
        `Result`: ``x`` the plan (n, m), ``objective`` ``<C, P>``, ``primal_residual``
        the L1 marginal error (absolute, units of mass), ``dual_residual`` the relative dual
        violation, ``dual`` and ``info['u']``, ``info['v']`` the dual potentials,
        ``info['dual_objective']`` ``<u, a> + <v, b>``, ``info['relative_gap']``.
    """
    import ot

    t0 = time.perf_counter()
    a, b, C = validate_ot(a, b, C)
    max_iter = validate.integer("max_iter", max_iter)
    tol = validate.positive("tol", tol)
    verbose = validate.boolean("verbose", verbose)
    mass = float(a.sum())
    an, bn = a / mass, b / mass
    bn = bn * (an.sum() / bn.sum())  # POT requires equal sums to machine precision
    Cn, shift, scale = normalize_cost(C)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        Pn, log = ot.emd(an, bn, Cn, numItermax=max_iter, log=True)
    t2 = time.perf_counter()
    code = int(log["result_code"])
    rows, cols = a > 0, b > 0
    un, vn = _c_transform(log["u"], log["v"], Cn, rows, cols)
    P = mass * np.asarray(Pn, dtype=np.float64)
    u, v = scale * un + shift, scale * vn

    # the checks, in relative terms (the normalized quantities are exact rescalings)
    err = float(marginal_error(P, a, b))
    rel_err = err / mass
    sup = np.ix_(rows, cols)
    dual_viol = float(max(0.0, np.max(un[rows][:, None] + vn[cols][None, :] - Cn[sup])))
    gap = abs(float(np.vdot(Cn, Pn)) - float(np.dot(un[rows], an[rows]) + np.dot(vn[cols], bn[cols])))
    finite = bool(np.isfinite(P).all() and np.isfinite(u).all() and np.isfinite(v).all())
    checks = (f"relative marginal error {rel_err:.2e}, dual violation {dual_viol:.2e}, "
              f"relative gap {gap:.2e} (tol {tol:.1e})")
    if not finite:
        status, message = Status.NUMERICAL_ERROR, "POT returned non-finite values"
    elif code == 3:
        status, message = Status.MAX_ITER, f"the pivot limit max_iter={max_iter} was reached"
    elif code != 1:
        status = Status.NUMERICAL_ERROR
        message = (f"POT's network simplex reported {_POT_CODES.get(code, code)!r} on a feasible, "
                   f"bounded problem (equal masses, finite costs); the plan is not trusted: {checks}")
    elif rel_err <= tol and dual_viol <= tol and gap <= tol:
        status, message = Status.OPTIMAL, ""
    else:
        status, message = Status.OPTIMAL_INACCURATE, f"a check missed tol: {checks}"
    objective = float(np.vdot(C, P))
    if verbose:
        print(f"cvxkit network_simplex: status {status.value}, cost {objective:.10g}, {checks}, "
              f"{t2 - t1:.3f} s")
    final = Final(
        x=P, objective=objective, dual=(u, v), primal_residual=err, dual_residual=dual_viol,
        status=status, message=message, iterations=0,
        info={"transport_cost": objective, "u": u, "v": v, "warning": log["warning"],
              "dual_objective": float(np.dot(u, a) + np.dot(v, b)), "relative_gap": gap,
              "relative_marginal_error": rel_err, "result_code": code},
    )
    # a direct method: no driver loop, its own status and times
    return finish(final, method="network_simplex", backend="numpy", setup_time=t1 - t0,
                  solve_time=t2 - t1)
