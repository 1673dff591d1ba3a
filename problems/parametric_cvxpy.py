r"""CVXPY and parametric conic programs: the canonicalization of a DPP problem with
``cvxpy.Parameter`` objects into `ConicData` (`conic_data_from_cvxpy`), and the CVXPY model of a
`ConicData` (`cvxpy_model`), the reference of `cvxkit.problems.parametric_conic`.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from cvxkit.problems.conic_data import ConicData, pattern


def conic_data_from_cvxpy(problem, parameters=None):
    r"""``(ConicData, theta, parameters)`` of a DPP-compliant CVXPY problem (the rules of
    `cvxkit.problems.ParametricConicProgram.from_cvxpy`): CVXPY's parametric canonicalization for
    Clarabel without a quadratic objective, its data tensor mapped to $(\theta, 1)$, and
    single-variable, parameter-free nonnegative rows turned into bounds."""
    import cvxpy as cp
    from cvxpy.constraints import SOC, NonNeg, Zero

    if not isinstance(problem, cp.Problem):
        raise ValueError(f"from_cvxpy needs a cvxpy.Problem, got {type(problem).__name__}")
    params = list(problem.parameters()) if parameters is None else list(parameters)
    if not params:
        raise ValueError("the problem has no cvxpy.Parameter to vary")
    known = {q.id for q in problem.parameters()}
    for q in params:
        if not isinstance(q, cp.Parameter) or q.id not in known:
            raise ValueError(f"{q!r} is not a parameter of the problem")
    if not problem.is_dpp():
        raise ValueError("the problem is not DPP: its data are not affine in the parameters")
    if any(getattr(v, "attributes", {}).get(a) for v in problem.variables()
           for a in ("integer", "boolean")):
        raise ValueError("integer and boolean variables are not supported (a parametric "
                         "conic program is continuous)")
    saved = {q.id: q.value for q in problem.parameters()}
    for q in problem.parameters():       # canonicalization needs values, any will do
        if q.value is None:
            q.value = np.zeros(q.shape)
    try:
        # no quadratic objective: CVXPY writes x'Px terms as second-order cones, exactly
        data, _, _ = problem.get_problem_data(cp.CLARABEL,
                                              solver_opts={"use_quad_obj": False})
    except (cp.error.DCPError, cp.error.SolverError, ValueError) as e:
        raise ValueError(f"CVXPY could not canonicalize the problem for Clarabel: {e}") from None
    finally:
        for q in problem.parameters():
            q.value = saved[q.id]
    pp = data["param_prob"]
    P_map = getattr(pp, "P", None)
    if data.get("P") is not None or (P_map is not None and sp.csr_matrix(P_map).nnz):
        raise ValueError("the canonical problem keeps a quadratic objective term, which a "
                         "parametric conic program (linear objective) cannot represent")
    n = pp.x.size
    cones = []
    for con in pp.constraints:
        if isinstance(con, Zero):
            cones.append(("zero", con.size))
        elif isinstance(con, NonNeg):
            cones.append(("nonneg", con.size))
        elif isinstance(con, SOC):
            cones.extend(("soc", k) for k in con.cone_sizes())
        else:
            raise ValueError(f"cone {type(con).__name__} is not supported (zero, nonnegative "
                             "and second-order cones only)")
    m = sum(k for _, k in cones)
    # columns of CVXPY's parameter vector -> theta (+ constant); left-out parameters folded
    ptot = pp.total_param_size
    order, p = np.full(ptot + 1, -1), 0
    fold = np.zeros(ptot + 1)
    fold[ptot] = 1.0
    ids = {q.id for q in params}
    for q in params:
        start = pp.param_id_to_col.get(q.id)
        if start is not None:  # absent: the canonical data do not depend on it
            order[start:start + q.size] = p + np.arange(q.size)
        p += q.size
    for q in pp.parameters:
        if q.id not in ids:
            if q.value is None:
                raise ValueError(f"parameter {q.name()} is left out of theta but has no value")
            start = pp.param_id_to_col[q.id]
            fold[start:start + q.size] = np.asarray(q.value, dtype=float).ravel(order="F")
    # P maps CVXPY's parameter vector to (theta, 1): data = T @ pvec = (T @ P) @ (theta, 1)
    cols = np.flatnonzero(order >= 0)
    P = sp.csr_matrix((np.ones(cols.size), (cols, order[cols])), shape=(ptot + 1, p + 1))
    P = P + sp.csr_matrix((fold[fold != 0], (np.flatnonzero(fold), np.full(
        np.count_nonzero(fold), p))), shape=(ptot + 1, p + 1))
    T = sp.csr_matrix(pp.A) @ P                       # rows: vec([A b]) column-major
    Q = sp.csr_matrix(pp.q) @ P                       # rows: (q, d)
    # column-major vec([A b]) -> row-major vec(A) and b
    k = np.arange(m * n)
    i, j = k // n, k % n
    A_vec = T[j * m + i].tocsr()
    b_map = T[n * m + np.arange(m)].tocsr()
    rows, cols_, A_map = pattern(A_vec, n)
    lb, ub = np.full(n, -np.inf), np.full(n, np.inf)
    if pp.lower_bounds is not None:
        lb = np.maximum(lb, pp.lower_bounds)
    if pp.upper_bounds is not None:
        ub = np.minimum(ub, pp.upper_bounds)
    # single-variable, parameter-free nonnegative rows -> bounds
    drop = np.zeros(m, dtype=bool)
    nonneg_rows = np.zeros(m, dtype=bool)
    start = 0
    for kind, dim in cones:
        nonneg_rows[start:start + dim] = kind == "nonneg"
        start += dim
    per_row = np.bincount(rows, minlength=m)
    const_entry = np.diff(A_map[:, :p].tocsr().indptr) == 0
    const_b = np.diff(b_map[:, :p].tocsr().indptr) == 0
    aval = A_map[:, p].toarray().ravel()
    bval = b_map[:, p].toarray().ravel()
    for e in np.flatnonzero(const_entry & nonneg_rows[rows] & (per_row[rows] == 1)):
        r, v, a = rows[e], cols_[e], aval[e]
        if not const_b[r] or a == 0:
            continue
        if a > 0:
            lb[v] = max(lb[v], -bval[r] / a) + 0.0   # no -0.0
        else:
            ub[v] = min(ub[v], bval[r] / -a)
        drop[r] = True
    if drop.any():
        keep_rows = np.flatnonzero(~drop)
        new_index = np.full(m, -1)
        new_index[keep_rows] = np.arange(keep_rows.size)
        keep_e = ~drop[rows]
        rows, cols_, A_map = new_index[rows[keep_e]], cols_[keep_e], A_map[keep_e]
        b_map = b_map[keep_rows]
        new_cones, start = [], 0
        for kind, dim in cones:
            kept = int((~drop[start:start + dim]).sum())
            if kept:
                new_cones.append((kind, kept))
            start += dim
        cones, m = new_cones, keep_rows.size
    if np.any(lb > ub):
        raise ValueError("the problem's bounds are inconsistent (some lb > ub)")
    data = ConicData.build(n, m, p, cones, rows, cols_, A_map, Q[:n], b_map, Q[n:n + 1],
                           lb, ub)
    theta = np.concatenate([np.zeros(q.size) if q.value is None else
                            np.asarray(q.value, dtype=float).ravel(order="F") for q in params])
    return data, theta, params


def cvxpy_model(D: ConicData, theta, parametric: bool):
    """``(problem, x, cone constraints, setter)``: the canonical CVXPY model of ``D`` at
    ``theta`` (cone rows in order, then bounds and rotated-cone pairs); with ``parametric`` the
    data are cvxpy Parameters (DPP, compiled once) that ``setter(theta)`` fills."""
    import cvxpy as cp

    x = cp.Variable(D.n)
    if parametric:
        c, A, b = cp.Parameter(D.n), cp.Parameter((D.m, D.n)), cp.Parameter(D.m)
        d = cp.Parameter()
    else:
        cv, Av, bv, dv = D.at(theta)
        c, A, b, d = cv, Av, bv, dv
    expr = A @ x + b
    cons, start = [], 0
    for kind, dim in D.cones:
        e = expr[start:start + dim]
        cons.append(e == 0 if kind == "zero" else e >= 0 if kind == "nonneg"
                    else cp.SOC(e[0], e[1:]))
        start += dim
    extra = []
    fin_l, fin_u = np.isfinite(D.lb), np.isfinite(D.ub)
    if fin_l.any():
        extra.append(x[np.flatnonzero(fin_l)] >= D.lb[fin_l])
    if fin_u.any():
        extra.append(x[np.flatnonzero(fin_u)] <= D.ub[fin_u])
    if D.pairs_i.size:
        xi, xj = x[D.pairs_i], x[D.pairs_j]
        extra.append(cp.SOC(xi + xj, cp.vstack([xi - xj, np.sqrt(2) * D.kappa]), axis=0))
    prob = cp.Problem(cp.Minimize(c @ x + d), cons + extra)

    def setter(theta):
        cv, Av, bv, dv = D.at(theta)
        c.value, A.value, b.value, d.value = cv, Av.toarray(), bv, dv

    return prob, x, cons, (setter if parametric else None)


def flat_dual(con):
    """A CVXPY constraint's dual as a flat array (SOC: (t, s) stacked)."""
    dv = con.dual_value
    if isinstance(dv, list):
        return np.concatenate([np.atleast_1d(np.asarray(a, dtype=float)).ravel() for a in dv])
    return np.atleast_1d(np.asarray(dv, dtype=float)).ravel()
