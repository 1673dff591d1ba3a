r"""The QP instance of the ADMM core (OSQP): $C = [l, u]$, its linear systems, set-up and
polishing.

Problem (OSQP's form; Stellato, Banjac, Goulart, Bemporad & Boyd, "OSQP: an operator splitting
solver for quadratic programs", Math. Prog. Comp. 2020):

$$
\min_x\ \tfrac12 x^\top P x + q^\top x \quad\text{s.t.}\quad l \le Ax \le u,
\qquad P \succeq 0,\ l_i \in \mathbb{R}\cup\{-\infty\},\ u_i \in \mathbb{R}\cup\{+\infty\}.
$$

is $Ax \in C = [l, u]$ for the ADMM core of `cvxkit.solvers.admm`. Ruiz equilibration with
cost scaling (`cvxkit.solvers.scaling`); $\rho_i = \rho$ on inequality rows, $10^3\rho$ on
equality rows ($u_i - l_i < 10^{-4}$ after scaling) and $10^{-6}$ on free rows; the linear
system in its reduced form with a dense Cholesky factorization (`QP_DENSE`), or in its full
quasi-definite form with a sparse LDL^T (`QP_SPARSE`, `cvxkit.solvers.kkt`), factored once and
refactored only when $\rho$ changes; small batches on JAX store the inverse
(`QP_DENSE_INVERSE`).

`certificate_error` states the infeasibility certificates on the user's unscaled data (the
tests of `cvxkit.solvers.admm`, "Checks"); every certificate is re-checked by it before it is
reported.

**Polishing** (``polish=True``): guess the active set from $(z, y)$ (lower-active if
$z_i - l_i < -y_i$ or $l_i = u_i$, upper-active if $u_i - z_i < y_i$), solve the
equality-constrained QP on it through the regularized KKT system
$\begin{bmatrix} P + \delta I & A_a^\top \\ A_a & -\delta I\end{bmatrix}$ with
``polish_refine_iter`` steps of iterative refinement against the unregularized one, and keep the
result only if it meets the tolerances, has duals of the right signs, and does not increase the
residuals (OSQP's rule).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import numpy as np

from cvxkit.solvers import kkt
from cvxkit.solvers.admm import (RHO_MAX, RHO_MIN, Data, Norms, Settings, Splitting, State,
                                 _row_norms, check, make_algorithm, norm_inf, residuals, rmatvec,
                                 set_certificate_error)
from cvxkit.solvers.admm_batch import batch_algorithm
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.primal_dual import RUNNING
from cvxkit.solvers.result import Status
from cvxkit.solvers.scaling import ruiz_dense, ruiz_sparse, units_dense, units_sparse

RHO_EQ_OVER_INEQ = 1e3
#: rows whose scaled range u - l is below this get the equality penalty
RHO_TOL = 1e-4


class Box(NamedTuple):
    """``C = [l, u]`` (scaled), with masks of the finite bounds."""

    l: Any
    u: Any
    lfin: Any
    ufin: Any


def _box_project(bk, d, v):
    return bk.xp.clip(v, d.cset.l, d.cset.u)


def box_polar(bk, d, y):
    xp, b = bk.xp, d.cset
    y = xp.where(b.ufin, y, xp.minimum(y, 0.0))
    return xp.where(b.lfin, y, xp.maximum(y, 0.0))


def _box_support(bk, d, y):
    xp, b = bk.xp, d.cset
    up = xp.where(b.ufin & (y > 0), b.u, 0.0) * y
    lo = xp.where(b.lfin & (y < 0), b.l, 0.0) * y
    return xp.sum(up + lo)


def _box_support_mag(bk, d, y):
    xp, b = bk.xp, d.cset
    up = xp.where(b.ufin & (y > 0), xp.abs(xp.where(b.ufin, b.u, 0.0)), 0.0)
    lo = xp.where(b.lfin & (y < 0), xp.abs(xp.where(b.lfin, b.l, 0.0)), 0.0)
    return xp.sum((up + lo) * xp.abs(y))


def _box_in_recession(bk, d, v, tol):
    xp, b = bk.xp, d.cset
    return xp.all(xp.where(b.ufin, v <= tol, True) & xp.where(b.lfin, v >= -tol, True))


def rho_vec(bk, d, rho):
    """Per-row penalties: ``rho`` times the row weights ``d.rho_w``, ``RHO_MIN`` on free rows."""
    return bk.xp.where(d.rho_w > 0, rho * d.rho_w, RHO_MIN)


class DenseLin(NamedTuple):
    """The reduced matrix as ``K(rho) = G0 + rho * G1`` (dense, n x n)."""

    G0: Any
    G1: Any


def _dense_factorize(bk, d, rho):
    return kkt.cholesky(bk, d.lin.G0 + rho * d.lin.G1)


def _dense_solve(bk, d, L, x, z, y, rho_vec):
    rhs = d.settings.sigma * x - d.q + rmatvec(d, rho_vec * z - y)
    xt = kkt.cho_solve(bk, L, rhs)
    return xt, d.A @ xt


def _dense_compiled(d, s, n):
    """``n`` iterations by `cvxkit.solvers.admm_kernels.dense_iterations` (numpy, float64, dense
    ``A``, at most ``MAX_N`` variables), else ``None`` (the generic loop runs)."""
    from cvxkit.solvers import admm_kernels as ak

    if not (isinstance(d.A, np.ndarray) and d.A.dtype == np.float64 and
            s.x.shape[0] <= ak.MAX_N and ak.ready(n)):
        return None
    st, b = d.settings, d.cset
    x, z, y, dx, dy = ak.dense_iterations(s.factor, d.A, d.q, st.sigma, st.alpha, b.l, b.u,
                                          s.rho_vec, s.x, s.z, s.y, n)
    return s._replace(x=x, z=z, y=y, dx=dx, dy=dy, k=s.k + n)


def _sparse_compiled(d, s, n):
    """``n`` iterations by `cvxkit.solvers.admm_kernels.kkt_iterations` (numpy, qdldl factors),
    else ``None`` (the generic loop runs)."""
    from cvxkit.solvers import admm_kernels as ak

    lu = s.factor.ldl_arrays() if s.x.dtype == np.float64 and ak.ready(n) else None
    if lu is None:
        return None
    st, b = d.settings, d.cset
    x, z, y, dx, dy = ak.kkt_iterations(lu, st.sigma, st.alpha, d.q, b.l, b.u, s.rho_vec,
                                        s.x, s.z, s.y, n)
    return s._replace(x=x, z=z, y=y, dx=dx, dy=dy, k=s.k + n)


def _sparse_factorize(bk, d, rho):
    return d.lin.factorize(rho_vec(bk, d, rho))


def _sparse_solve(bk, d, F, x, z, y, rho_vec):
    n = x.shape[0]
    sol = F.solve(np.concatenate([d.settings.sigma * x - d.q, z - y / rho_vec]))
    return sol[:n], z + (sol[n:] - y) / rho_vec


def _inverse_factorize(bk, d, rho, unrolled=False):
    """``(W, c)`` with ``W = K^{-1} [sigma I, A^T]`` and ``c = -K^{-1} q``: one matrix-vector
    product gives ``x_tilde`` from ``(x, rho z - y)``.

    ``W`` comes from an elimination that checks that ``K`` is positive definite, so a non-convex
    ``P`` gives NaN: the residuals become NaN and the member stops with ``numerical_error``. It
    is a Cholesky factorization, or with ``unrolled`` and at most ``UNROLLED_MAX_N`` variables a
    written-out Gauss-Jordan elimination: faster, but each copy costs 0.6 s of compilation, so
    only the set-up (compiled once) uses it, not the refactorizations inside the loop (compiled
    for every batch size)."""
    xp = bk.xp
    K = d.lin.G0 + rho * d.lin.G1
    n = K.shape[-1]
    rhs = xp.concatenate([d.settings.sigma * xp.eye(n, dtype=K.dtype), d.A.T, -d.q[:, None]], axis=1)
    W = kkt.spd_solve_unrolled(xp, K, rhs) if unrolled and n <= UNROLLED_MAX_N else \
        kkt.cho_solve(bk, kkt.cholesky(bk, K), rhs)
    return W[:, :-1], W[:, -1]


def _inverse_solve(bk, d, F, x, z, y, rho_vec):
    W, c = F
    xt = W @ bk.xp.concatenate([x, rho_vec * z - y]) + c
    return xt, d.A @ xt


#: the linear systems of any instance with these `Data`: the reduced one with a dense Cholesky
#: factorization (``lin`` a `DenseLin`), the full KKT one with a sparse LDL^T (``lin`` a
#: `cvxkit.solvers.kkt.SparseKKT`)
DENSE_LINSYS = dict(rho_vec=rho_vec, factorize=_dense_factorize, solve=_dense_solve)
SPARSE_LINSYS = dict(rho_vec=rho_vec, factorize=_sparse_factorize, solve=_sparse_solve)
_BOX = dict(project=_box_project, polar=box_polar, support=_box_support,
            in_recession=_box_in_recession, support_mag=_box_support_mag)
#: OSQP with the reduced system and a dense Cholesky factorization (numpy or JAX)
QP_DENSE = Splitting(**DENSE_LINSYS, **_BOX, compiled=_dense_compiled)
#: OSQP with the full KKT system and a sparse LDL^T factorization (numpy)
QP_SPARSE = Splitting(**SPARSE_LINSYS, **_BOX, compiled=_sparse_compiled)

ALG_DENSE = make_algorithm("admm", QP_DENSE)
ALG_SPARSE = make_algorithm("admm", QP_SPARSE)
#: OSQP with the reduced matrix inverted explicitly (``K^{-1}[sigma I, A^T]`` stored): for batches of
#: small problems on JAX, where XLA's batched triangular solves cost about 2.5x a batched
#: matrix-vector product, and each batched product costs about the same whatever its size
QP_DENSE_INVERSE = Splitting(rho_vec=rho_vec, factorize=_inverse_factorize, solve=_inverse_solve,
                             **_BOX)
#: batches with at most this many variables use QP_DENSE_INVERSE
INVERSE_MAX_N = 32
#: up to this many variables the inverse comes from `kkt.spd_solve_unrolled` (measured on a batch
#: of 1000: 1.7 vs 3.3 ms at n = 10, 0.3 vs 1.1 ms at n = 5, but 3x slower than Cholesky at n = 16)
UNROLLED_MAX_N = 12

#: QP_DENSE_INVERSE without LAPACK calls (every factorization by `kkt.spd_solve_unrolled`): for
#: batches split over several CPU devices, where XLA:CPU deadlocks when two devices run LAPACK
#: calls at once (observed with Cholesky and with LU factorizations); n <= UNROLLED_MAX_N only
QP_DENSE_INVERSE_XLA = QP_DENSE_INVERSE._replace(
    factorize=functools.partial(_inverse_factorize, unrolled=True))

ALG_DENSE_BATCH = batch_algorithm("admm", QP_DENSE)
ALG_INVERSE_BATCH = batch_algorithm("admm", QP_DENSE_INVERSE)
ALG_INVERSE_XLA_BATCH = batch_algorithm("admm", QP_DENSE_INVERSE_XLA)


# --- setup ----------------------------------------------------------------------------------
def _row_weights(xp, ls, us):
    """Penalty weights: 1 on inequality rows, RHO_EQ_OVER_INEQ on equalities, 0 on free rows."""
    free = ~xp.isfinite(ls) & ~xp.isfinite(us)
    eq = (us - ls) < RHO_TOL
    return xp.where(free, 0.0, xp.where(eq, RHO_EQ_OVER_INEQ, 1.0))


def _box_rows(xp, E, l, u):
    """The scaled box and its penalty weights, from the row scaling ``E``."""
    ls, us = E * l, E * u
    return Box(ls, us, xp.isfinite(ls), xp.isfinite(us)), _row_weights(xp, ls, us)


class Rows(NamedTuple):
    """What the set-up needs to know of an instance's set $C$: its splittings with the dense
    and the sparse linear system; ``make(xp, E, l, u) -> (cset, weights)``, the scaled set data
    and the penalty weights of the rows from the row scaling ``E`` and the data ``l``, ``u``;
    ``tie``: a constraint on the row scaling (`cvxkit.solvers.scaling.ruiz_dense`), or None."""

    dense: Splitting
    sparse: Splitting
    make: Callable
    tie: Callable | None = None


#: the QP's rows: C = [l, u]
BOX_ROWS = Rows(QP_DENSE, QP_SPARSE, _box_rows)


def _init_state(bk, sp, d, x0, y0, rho0, factorize=None):
    """The scaled starting point from the unscaled ``x0``, ``y0``; factorization (by
    ``factorize``, default ``sp.factorize``); first check."""
    xp = bk.xp
    x = x0 / d.D
    y = d.c * y0 / d.E
    z = d.A @ x
    rho = xp.clip(rho0, RHO_MIN, RHO_MAX)
    rho_vec = sp.rho_vec(bk, d, rho)
    factor = (factorize or sp.factorize)(bk, d, rho)
    nan = xp.asarray(np.nan, dtype=x.dtype) if bk.name == "jax" else np.nan
    i32 = (lambda v: xp.asarray(v, dtype=xp.int32)) if bk.name == "jax" else int
    s = State(x, z, y, xp.zeros_like(x), xp.zeros_like(y), rho, rho_vec, factor, i32(0), i32(0),
              i32(RUNNING), *([nan] * 9))
    # residuals of the start (for the history); termination is first tested after iterating, as
    # in OSQP (z = Ax need not lie in C yet)
    return check(bk, sp, d, s)._replace(flag=i32(RUNNING))


def _norms(xp, sc, un, prow, colhat, user_units: bool = False) -> Norms:
    """`Norms` from the scaling ``sc``, the units ``un``, the row maxima of ``|P|`` and the column
    maxima of the row-normalized ``|A|``. ``user_units``: the tolerances' units are the user's
    own (the residual tests are then OSQP's on the unscaled data; the certificates' weights
    are unchanged)."""
    if user_units:
        return Norms(1.0 / sc.E, 1.0 / sc.D, 1.0 / sc.c, sc.E * un.a, sc.c * sc.D * prow,
                     sc.D * colhat)
    return Norms(un.E0 / sc.E, un.D0 / sc.D, un.c0 / sc.c, sc.E * un.a,
                 sc.c * sc.D * prow, sc.D * colhat)


def setup_dense(bk, P, q, A, l, u, x0, y0, rho0, st: Settings, scaling: int, sp=None,
                rows: Rows = BOX_ROWS, user_units: bool = False):
    """Scale, build the reduced matrices and the first state (dense data, either back end;
    ``rows``: the instance's set, default the QP's box; ``user_units``: see `_norms`)."""
    xp = bk.xp
    un = units_dense(xp, P, q, A, l, u)
    sc = ruiz_dense(xp, P, q, A, scaling, loop=bk.fori if bk.name == "jax" else None, start=un,
                    tie=rows.tie)
    prow = xp.max(xp.abs(P), axis=-1, initial=0.0)
    colhat = xp.max(xp.abs(A) / un.a[..., :, None], axis=-2, initial=0.0)
    cset, w = rows.make(xp, sc.E, l, u)
    free = (w == 0).astype(P.dtype)
    n = P.shape[-1]
    G0 = sc.P + st.sigma * xp.eye(n, dtype=P.dtype) + RHO_MIN * (sc.A.T * free) @ sc.A
    G1 = (sc.A.T * w) @ sc.A
    d = Data(sc.P, sc.q, sc.A, None, cset, sc.D, sc.E, sc.c, w, DenseLin(G0, G1), st,
             _norms(xp, sc, un, prow, colhat, user_units))
    unrolled = functools.partial(_inverse_factorize, unrolled=True)
    return d, _init_state(bk, sp or rows.dense, d, x0, y0, rho0,
                          unrolled if sp is QP_DENSE_INVERSE else None)


def setup_sparse(P, q, A, l, u, x0, y0, rho0, st: Settings, scaling: int, linsys: str,
                 rows: Rows = BOX_ROWS, user_units: bool = False):
    """numpy set-up from scipy.sparse data: scaling, then the dense Gram or the sparse KKT
    (``rows``: the instance's set, default the QP's box; ``user_units``: see `_norms`)."""
    import scipy.sparse as sp

    bk = get_backend("numpy")
    un = units_sparse(P, q, A, l, u)
    sc = ruiz_sparse(P, q, A, scaling, start=un, tie=rows.tie)
    absA = abs(sp.csr_matrix(A))
    prow = np.asarray(abs(sp.csr_matrix(P)).max(axis=1).todense()).ravel() if P.shape[0] \
        else np.zeros(0)
    colhat = np.asarray((sp.diags(1.0 / un.a) @ absA).max(axis=0).todense()).ravel() \
        if absA.shape[0] else np.zeros(absA.shape[1])
    cset, w = rows.make(np, sc.E, l, u)
    A_csr = sp.csr_matrix(sc.A)
    if linsys == "dense":
        n = P.shape[0]
        G0 = kkt.gram(A_csr, RHO_MIN * (w == 0))
        G0 += sc.P.toarray()
        G0[np.diag_indices(n)] += float(st.sigma)
        lin, split = DenseLin(G0, kkt.gram(A_csr, w)), rows.dense
    else:
        lin, split = kkt.SparseKKT(sc.P, sc.A, float(st.sigma)), rows.sparse
    d = Data(kkt.fast_csr(sc.P.T), sc.q, kkt.fast_csr(A_csr), kkt.fast_csr(sc.A.T), cset, sc.D,
             sc.E, sc.c, w, lin, st, _norms(np, sc, un, prow, colhat, user_units))
    return d, _init_state(bk, split, d, x0, y0, rho0), split


# --- polishing ------------------------------------------------------------------------------
def _active_sets(xp, d, z, y):
    b = d.cset
    low = (z - b.l < -y) | ((b.u - b.l) < RHO_TOL)
    upp = ~low & (b.u - z < y)
    return low, upp


def _next_sets(xp, d, x, y, low, upp):
    """One primal-dual active-set step from the polished ``(x, y)``: row ``i`` is lower-active
    if ``y_i + (Ax - l)_i < 0``, upper-active if ``y_i + (Ax - u)_i > 0`` (scaled units; the
    rule of `_active_sets` with ``z = Ax``): a violated inactive row joins, an active row whose
    multiplier has the wrong sign leaves. Equality rows stay lower-active."""
    b, Ax = d.cset, d.A @ x
    low = ((b.u - b.l) < RHO_TOL) | (b.lfin & (y + (Ax - xp.where(b.lfin, b.l, 0.0)) < 0))
    upp = ~low & b.ufin & (y + (Ax - xp.where(b.ufin, b.u, 0.0)) > 0)
    return low, upp


def _polish_dense(bk, d: Data, x, z, y, delta, refine: int, sets=None):
    """``(x, y, low, upp)``: the polished point from the masked KKT system of size n + m
    (inactive rows get ``y_i = 0``), and the active sets (``sets``, default guessed from
    ``(z, y)``; dense; vmap-able)."""
    xp = bk.xp
    n = x.shape[-1]
    low, upp = _active_sets(xp, d, z, y) if sets is None else sets
    a = (low | upp).astype(x.dtype)
    bnd = xp.where(low, xp.where(d.cset.lfin, d.cset.l, 0.0),
                   xp.where(upp & d.cset.ufin, d.cset.u, 0.0))
    At = d.A.T
    K0 = xp.concatenate([xp.concatenate([d.P, At * a], axis=1),
                         xp.concatenate([a[:, None] * d.A, xp.diag(a - 1.0)], axis=1)], axis=0)
    reg = xp.concatenate([xp.full((n,), delta, dtype=x.dtype), -delta * a])
    Kd = K0 + xp.diag(reg)
    rhs = xp.concatenate([-d.q, a * bnd])
    f = kkt.lu_factor(bk, Kd)
    sol = kkt.lu_solve(bk, f, rhs)
    for _ in range(refine):
        sol = sol + kkt.lu_solve(bk, f, rhs - K0 @ sol)
    return sol[:n], a * sol[n:], low, upp


def _polish_sparse(d: Data, x, z, y, delta, refine: int, sets=None):
    """``(x, y, low, upp)``: the polished point from the reduced KKT system on the active
    rows, and the active sets (``sets``, default guessed from ``(z, y)``; numpy: a sparse
    LDL^T for scipy.sparse data, a dense LU of size n + (active rows) for dense data)."""
    import scipy.linalg as sla
    import scipy.sparse as sp

    low, upp = _active_sets(np, d, z, y) if sets is None else sets
    act = np.flatnonzero(low | upp)
    bnd = np.where(low, d.cset.l, d.cset.u)[act]
    n = x.shape[0]
    reg = np.concatenate([np.full(n, delta), np.full(act.size, -delta)])
    if isinstance(d.P, np.ndarray) and isinstance(d.A, np.ndarray):
        Aa = d.A[act]
        K0 = np.block([[d.P, Aa.T], [Aa, np.zeros((act.size, act.size))]])
        lu = sla.lu_factor(K0 + np.diag(reg), check_finite=False)
        F = type("LU", (), {"solve": staticmethod(lambda b: sla.lu_solve(lu, b, check_finite=False))})
    else:
        P = sp.csc_matrix(kkt.as_scipy(d.P))
        Aa = sp.csr_matrix(kkt.as_scipy(d.A))[act]
        K0 = sp.bmat([[P, Aa.T], [Aa, None]], format="csc")
        Kd = K0 + sp.diags(reg)
        solver = kkt._qdldl()
        if solver is not None:
            F = solver.Solver(sp.triu(Kd, format="csc"), upper=True)
        else:  # pragma: no cover
            from scipy.sparse.linalg import splu

            F = splu(sp.csc_matrix(Kd))
    rhs = np.concatenate([-d.q, bnd])
    sol = F.solve(rhs)
    for _ in range(refine):
        sol = sol + F.solve(rhs - K0 @ sol)
    yp = np.zeros_like(z)
    yp[act] = sol[n:]
    return sol[:n], yp, low, upp


def _polish_accept(bk, sp, d, s: State, xp_, yp, low, upp):
    """Polished point, its residuals, and whether OSQP's acceptance rule (plus tolerances and
    dual signs) holds."""
    xp = bk.xp
    zp = sp.project(bk, d, d.A @ xp_)
    r = residuals(bk, sp, d, xp_, zp, yp)
    ineq = (d.cset.u - d.cset.l) >= RHO_TOL
    wrong_sign = xp.where(low & ineq, xp.maximum(yp, 0.0), 0.0) + \
        xp.where(upp & ineq, xp.maximum(-yp, 0.0), 0.0)
    sign_violation = d.norms.uc * norm_inf(xp, wrong_sign / d.norms.ue)
    meets = (r.prim <= r.eps_prim) & (r.dual <= r.eps_dual) & \
        ((r.gap <= r.eps_gap) | ~d.settings.check_gap) & \
        (sign_violation <= d.settings.eps_abs) & (r.polar_violation <= d.settings.eps_abs)
    better = ((r.prim < s.prim_res) & (r.dual < s.dual_res)) | \
        ((r.prim < s.prim_res) & (s.dual_res < 1e-10)) | ((r.dual < s.dual_res) & (s.prim_res < 1e-10))
    return zp, r, meets & better


#: polishing on numpy tries at most this many active sets (`_next_sets`); on JAX one
POLISH_ROUNDS = 8


def polish_state(bk, sp, d, s: State, delta, refine, sparse=False, tried=None):
    """``(state, accepted)``: the polished state if accepted, else ``s``. On numpy, a guess
    that is not accepted is corrected by primal-dual active-set steps (`_next_sets`) and solved
    again, up to `POLISH_ROUNDS` sets in all, until one is accepted or a set comes again.
    ``tried`` (numpy): a set of the active sets that failed in earlier calls on the same data
    (updated here); they are not solved again (a polished point depends on its set only)."""
    xp = bk.xp
    if bk.name != "numpy":
        xq, yq, low, upp = (_polish_sparse(d, s.x, s.z, s.y, delta, refine) if sparse else
                            _polish_dense(bk, d, s.x, s.z, s.y, delta, refine))
        zq, r, ok = _polish_accept(bk, sp, d, s, xq, yq, low, upp)
    else:
        tried = set() if tried is None else tried
        sets, ok = _active_sets(np, d, s.z, s.y), False
        for _ in range(POLISH_ROUNDS):
            key = np.packbits(np.r_[sets[0], sets[1]]).tobytes()
            if key in tried:
                break
            tried.add(key)
            xq, yq, low, upp = _polish_sparse(d, s.x, s.z, s.y, delta, refine, sets)
            zq, r, ok = _polish_accept(bk, sp, d, s, xq, yq, low, upp)
            if ok:
                break
            sets = _next_sets(np, d, xq, yq, low, upp)
        if not ok:
            return s, False
    pol = s._replace(x=xq, z=zq, y=yq, prim_res=r.prim, dual_res=r.dual, gap=r.gap,
                     eps_prim=r.eps_prim, eps_dual=r.eps_dual, eps_gap=r.eps_gap,
                     objective=r.objective, prim_rel=r.prim_rel, dual_rel=r.dual_rel)
    pick = lambda a, b: xp.where(ok, a, b)  # noqa: E731
    return bk._jax.tree_util.tree_map(pick, pol, s) if bk.name == "jax" else (pol if ok else s), ok


def certificate_error(P, q, A, l, u, status, v, eps_pinf: float, eps_dinf: float):
    r"""Why ``v`` is not an infeasibility certificate of the QP ``(P, q, A, l, u)`` (one problem,
    the user's unscaled data), or ``None`` if it is one (module docstring, "Checks"; the tests
    of `cvxkit.solvers.admm.set_certificate_error` for $C = [l, u]$).

    ``status`` primal_infeasible: ``v`` is $y$ with $y_i > 0$ only where $u_i < \infty$ and
    $y_i < 0$ only where $l_i > -\infty$, $|(A^\top y)_j| \le \epsilon_{pinf}\,
    \max_i(|A_{ij}|/a_i)\,\max_i a_i|y_i|$ and
    $u^\top y_+ + l^\top y_- < -\epsilon_{pinf}\sum_i |b_i||y_i|$. dual_infeasible: ``v`` is
    $d$ with $|(Pd)_j| \le \epsilon_{dinf}\max_k|P_{jk}|\,\lVert d\rVert_\infty$,
    $q^\top d < -\epsilon_{dinf}|q|^\top|d|$ and $(Ad)_i \le \epsilon_{dinf}a_i\lVert d
    \rVert_\infty$ where $u_i < \infty$, $\ge -\epsilon_{dinf}a_i\lVert d\rVert_\infty$ where
    $l_i > -\infty$, and also within $\epsilon_{dinf}\max((|A||d|)_i, 10^{-2}a_i\lVert d
    \rVert_\infty)$ (the size of the row's own terms along $d$). Here $a_i = \max_j|A_{ij}|$ (1 for an empty row).
    """
    box = Box(np.asarray(l, float), np.asarray(u, float), np.isfinite(l), np.isfinite(u))
    why = set_certificate_error(QP_DENSE, box, P, q, A, status, v, eps_pinf, eps_dinf,
                                BOX_NAMES)
    if why is None and status is Status.DUAL_INFEASIBLE:
        # the recession test row by row against the size of the row's own terms along d,
        # max(|A||d|, ROW_TERMS_FLOOR a ||d||): a row of norm a_i = 2000 whose entries on d's
        # support are 1 let (Ad)_i = 0.05 pass the test above (PRIMALC1, a bounded QP, was
        # "unbounded" at iteration 25)
        v = np.asarray(v, dtype=np.float64)
        Ad = np.asarray(A @ v).ravel()
        terms = np.maximum(np.asarray(abs(A) @ np.abs(v)).ravel(),
                           ROW_TERMS_FLOOR * _row_norms(A)[1] * np.max(np.abs(v), initial=0.0))
        bad = (box.ufin & (Ad > eps_dinf * terms)) | (box.lfin & (Ad < -eps_dinf * terms))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            why = (f"A d is not in the recession cone of [l, u] relative to the row's terms: "
                   f"row {i} has (Ad)_i = {Ad[i]:.3g} against {terms[i]:.3g}")
    return why


#: `certificate_error`'s row-by-row recession test of a direction d measures row i against
#: max(|A||d|, ROW_TERMS_FLOOR * a_i ||d||)
ROW_TERMS_FLOOR = 1e-2


#: how `certificate_error` names the box's pieces in its messages
BOX_NAMES = {"domain": "y has a sign on a row whose bound on that side is infinite",
             "support": "u'y+ + l'y-", "set": "[l, u]"}
