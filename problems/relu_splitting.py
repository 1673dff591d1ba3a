r"""The convex ReLU program as a splitting for the proximal ADMM of `cvxkit.solvers.relu_admm`.

`cvxkit.solvers.relu_admm` solves $\min_x \tfrac12x^\top Px + q^\top x + \sum_j g_j(A_jx)$ for
an `Operator` and term kinds it is given; this module is the family's half (Bai, Gautam &
Sojoudi, SIMODS 2023): `relu_program` returns the `ProxProgram` of one instance.

* **ReLU / gated** (`relu_operator`, `relu_lin`): $x = u \in \mathbb{R}^{m\times d}$ (the blocks
  $v_i$, $w_i$; gated: $u_i$), $Fu = \sum_i D_iX(v_i - w_i)$, terms $z = (Fu,)\,u,\,Gu$:
  the loss $g_0(Fu)$ when it is not squared (the squared loss is $\tfrac12\lVert Fu - y\rVert^2$
  in $P$, $q$), the group penalty on $u$, and for ReLU the cones $Gu = ((2D_i - I)Xu_i)_i \ge 0$.
  The $u$-system $P + \rho A^\top A$ is solved by Woodbury with $I + G^\top G =
  I_m\otimes(I + X^\top X)$ (one $d\times d$ inverse $K$) and the $n\times n$ matrix
  $S = \rho I + (D_sD_s^\top)\circ(XKX^\top)$, inverted once: $O(n^2 + ndP + Pd^2)$ per iteration.
* **Robust** (`robust_operator`, $\epsilon > 0$): the $\ell_\infty$-robust program as dense
  terms on `cvxkit.solvers.relu_admm.DENSE`.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from cvxkit.solvers import kkt, validate
from cvxkit.solvers.backend import Backend
from cvxkit.solvers.relu_admm import DENSE, DenseLin, Operator, ProxProgram

LOSS_KINDS = ("squared", "logistic", "hinge")


# --- the structured operator (Woodbury, factor n x n once) ----------------------------------
class ReluLin(NamedTuple):
    """``X`` (n, d); ``Ds`` (n, m) signed pattern columns (+D_i for v_i, -D_i for w_i); ``E``
    (n, m) the +-1 cone signs (``None`` for gated); ``K`` (d, d) = (I + c X^T X)^{-1};
    ``S0`` (n, n) = F B^{-1} F^T; ``y`` (n,) (for the squared loss in P, else zeros)."""

    X: Any
    Ds: Any
    E: Any
    K: Any
    S0: Any
    y: Any


def _pred(bk, lin, U):
    """F u: (n,) from U (m, d)."""
    return bk.xp.sum(lin.Ds * (lin.X @ U.T), axis=1)


def _Ft(bk, lin, r):
    """F^T r: (m, d)."""
    return (lin.X.T @ (lin.Ds * r[:, None])).T


def _relu_forward(loss_term: bool, cones: bool):
    def forward(bk, lin, U):
        XU = lin.X @ U.T
        out = (bk.xp.sum(lin.Ds * XU, axis=1),) if loss_term else ()
        out = out + (U,)
        return out + ((lin.E * XU),) if cones else out

    return forward


def _relu_adjoint(loss_term: bool, cones: bool):
    def adjoint(bk, lin, z):
        i = 0
        W = 0.0 * lin.Ds
        if loss_term:
            W = W + lin.Ds * z[0][:, None]
            i = 1
        U = z[i]
        if cones:
            W = W + lin.E * z[i + 1]
        return U + (lin.X.T @ W).T

    return adjoint


def _relu_factorize(loss_term: bool):
    """S^{-1} for S = (b/a) I + S0 with M = a F^T F + b B: loss in P -> (1, rho); as a term ->
    (rho, rho) (then S does not depend on rho). Stored as an explicit inverse (from its Cholesky
    factor): one matrix-vector product per iteration is several times faster than two
    triangular solves."""
    def factorize(bk, lin, rho):
        xp = bk.xp
        n = lin.S0.shape[0]
        shift = 1.0 if loss_term else rho
        eye = xp.eye(n, dtype=lin.S0.dtype)
        Si = kkt.cho_solve(bk, kkt.cholesky(bk, lin.S0 + shift * eye), eye)
        return 0.5 * (Si + Si.T)

    return factorize


def _relu_solve(bk, lin, Si, R, rho):
    T = R @ lin.K  # B^{-1} R (K symmetric)
    s = Si @ _pred(bk, lin, T)
    return (T - _Ft(bk, lin, s) @ lin.K) / rho


def _relu_smooth(loss_term: bool):
    def smooth(bk, lin, U):
        if loss_term:
            return 0.0 * lin.y[0]
        r = _pred(bk, lin, U) - lin.y
        return 0.5 * r @ r

    return smooth


def _relu_minus_q(loss_term: bool):
    def minus_q(bk, lin):
        if loss_term:
            return bk.xp.zeros((lin.Ds.shape[1], lin.X.shape[1]), dtype=lin.X.dtype)
        return _Ft(bk, lin, lin.y)

    return minus_q


@functools.lru_cache(maxsize=4)
def relu_operator(loss_term: bool, cones: bool) -> Operator:
    """The structured `Operator` of the convex ReLU (``cones``) or gated ReLU program, with the
    loss in ``P`` (squared) or as its own term (``loss_term``). Cached (four variants), so that
    the solver's compiled loop is reused."""
    return Operator(_relu_forward(loss_term, cones), _relu_adjoint(loss_term, cones),
                    _relu_factorize(loss_term), _relu_solve, _relu_smooth(loss_term),
                    _relu_minus_q(loss_term))


def relu_lin(bk: Backend, X, D, y, cones: bool, loss_term: bool, cone_scale: float = 1.0) -> ReluLin:
    """Precompute the `ReluLin` data: $K$, $H = XKX^\\top$ and $S_0 = (D_sD_s^\\top)\\circ H$
    ($O(nd^2 + n^2(d + P))$; the $n\\times n$ Cholesky follows in ``factorize``)."""
    xp = bk.xp
    X, D = bk.asarray(X), bk.asarray(D)
    d = X.shape[1]
    if cones:
        Ds = xp.concatenate([D, -D], axis=1)
        E = xp.concatenate([2 * D - 1, 2 * D - 1], axis=1) / cone_scale
        K = xp.linalg.inv(xp.eye(d, dtype=X.dtype) + X.T @ X / cone_scale ** 2)
    else:
        Ds, E, K = D, None, xp.eye(d, dtype=X.dtype)
    K = 0.5 * (K + K.T)
    H = X @ K @ X.T
    S0 = (Ds @ Ds.T) * H
    yy = bk.asarray(y) if not loss_term else bk.asarray(np.zeros(X.shape[0]))
    return ReluLin(X, Ds, E, K, S0, yy)


# --- the robust program (l_inf ball of radius epsilon) as dense terms -----------------------
def robust_operator(X, y, D, beta: float, loss: str, epsilon: float):
    r"""The $\ell_\infty$-robust convex program of Bai et al. (ACC 2022; SIMODS §4) as dense terms.

    Variables $x = (U, T, S[, Q])$: $U$ (2P, d) the weights, $T \ge |U|$, $S_k \ge |a_k|$ with
    $a_k = \sum_i d_{ik}(v_i - w_i)$, and for the squared loss $Q_k \ge |x_k^\top a_k - y_k| +
    \epsilon 1^\top S_k$ with objective $\tfrac12\lVert Q\rVert^2$ (the worst case
    $\tfrac12(|x_k^\top a_k - y_k| + \epsilon\lVert a_k\rVert_1)^2$). Classification losses act
    on the worst-case margin $y_kx_k^\top a_k - \epsilon 1^\top S_k$. Robust cones:
    $(2d_{ik} - 1)x_k^\top u_j - \epsilon 1^\top T_j \ge 0$ (the pattern of every point of the
    ball is kept). Returns ``(A-blocks, params, N, P_matrix, q, sizes)``, the blocks in the
    order of the term kinds `robust_kinds`.
    """
    n, d = X.shape
    P = D.shape[1]
    m = 2 * P
    Ds = np.concatenate([D, -D], axis=1)  # (n, m)
    E = np.concatenate([2 * D - 1, 2 * D - 1], axis=1)
    nU = m * d
    iU, iT, iS = 0, nU, 2 * nU
    nS = n * d
    N = 2 * nU + nS + (n if loss == "squared" else 0)
    iQ = 2 * nU + nS
    eye_U = np.eye(nU)
    A_group = np.zeros((m, d, N))
    A_group.reshape(nU, N)[:, iU:iU + nU] = eye_U
    # robust cones: (n, m) rows: E[k,j] x_k^T u_j - eps 1^T T_j
    A_cone = np.zeros((n, m, N))
    for j in range(m):
        A_cone[:, j, iU + j * d:iU + (j + 1) * d] = E[:, j:j + 1] * X
        A_cone[:, j, iT + j * d:iT + (j + 1) * d] = -epsilon
    # T -+ U >= 0: (2, m, d)
    A_abs = np.zeros((2, nU, N))
    A_abs[0, :, iT:iT + nU] = eye_U
    A_abs[0, :, iU:iU + nU] = -eye_U
    A_abs[1, :, iT:iT + nU] = eye_U
    A_abs[1, :, iU:iU + nU] = eye_U
    # a_k = sum_j Ds[k, j] u_j  -> map (n*d, nU)
    Amap = np.einsum("kj,pq->kpjq", Ds, np.eye(d)).reshape(nS, nU)
    A_sab = np.zeros((2, nS, N))
    A_sab[0, :, iS:iS + nS] = np.eye(nS)
    A_sab[0, :, iU:iU + nU] = -Amap
    A_sab[1, :, iS:iS + nS] = np.eye(nS)
    A_sab[1, :, iU:iU + nU] = Amap
    # x_k^T a_k  (n, N) and 1^T S_k (n, N)
    xa = np.einsum("kp,kpq->kq", X, Amap.reshape(n, d, nU))
    A_xa = np.zeros((n, N))
    A_xa[:, iU:iU + nU] = xa
    A_s1 = np.zeros((n, N))
    for k in range(n):
        A_s1[k, iS + k * d:iS + (k + 1) * d] = 1.0
    Pm, q = np.zeros((N, N)), np.zeros(N)
    blocks = [A_group, A_cone.reshape(n * m, N), A_abs.reshape(2 * nU, N),
              A_sab.reshape(2 * nS, N)]
    params = [beta, 0.0, 0.0, 0.0]
    if loss == "squared":
        # Q - (x^T a - y) - eps 1^T S >= 0 and Q + (x^T a - y) - eps 1^T S >= 0
        A_q = np.zeros((2, n, N))
        A_q[0, :, iQ:iQ + n] = np.eye(n)
        A_q[1, :, iQ:iQ + n] = np.eye(n)
        A_q[0] += -A_xa - epsilon * A_s1
        A_q[1] += A_xa - epsilon * A_s1
        blocks.append(A_q.reshape(2 * n, N))
        params.append(np.concatenate([-y, y]))
        Pm[iQ:, iQ:] = np.eye(n)
    else:
        blocks.append(y[:, None] * A_xa - epsilon * A_s1)  # worst-case margins
        params.append((1.0, np.ones(n)))
    return blocks, params, N, Pm, q, (m, d, nU)


def robust_kinds(loss: str) -> tuple:
    """The term kinds of `robust_operator` (group, three cone blocks, the loss block)."""
    return ("group", "nonneg", "nonneg", "nonneg", "nonneg" if loss == "squared" else loss)


# --- the program of one instance --------------------------------------------------------------
def check_data(X, y, D, loss):
    """``X`` (n, d), ``y`` (n,), ``D`` (n, P) 0/1 as float64 arrays (`cvxkit.solvers.validate`;
    sparse input is densified), else ``ValueError`` naming the argument."""
    X = validate.matrix("X", X, nonempty=True, sparse=False)  # every sparse format: densified
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n, d), got shape {X.shape}")
    n = X.shape[0]
    y = validate.float_array("y", y, finite=True)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match X {X.shape}, got {y.shape}")
    D = validate.float_array("D (activation patterns)", D, ndim=2, finite=True)
    if D.shape[0] != n or D.shape[1] == 0:
        raise ValueError(f"D (activation patterns) must have shape ({n}, P) with P >= 1, "
                         f"got {D.shape}")
    if not np.isin(D, (0.0, 1.0)).all():
        raise ValueError("D (activation patterns) must hold 0/1 entries")
    if loss in ("logistic", "hinge") and not np.isin(y, (-1.0, 1.0)).all():
        raise ValueError(f"y must hold labels -1/+1 for the {loss} loss")
    return X, y, D


def _y_scale(y) -> float:
    """$\\lVert y\\rVert_\\infty$ (1 for ``y = 0``): the unit of the absolute tolerance."""
    m = float(np.max(np.abs(y)))
    return m if m > 0 else 1.0


def relu_program(X, y, D, *, beta: float, loss: str = "squared", cones: bool = True,
                 epsilon: float = 0.0, objective) -> ProxProgram:
    r"""The `ProxProgram` of the convex (gated) ReLU training program (module docstring).

    ``X`` (n, d), ``y`` (n,) (``+-1`` for ``logistic``/``hinge``), ``D`` (n, P) 0/1 patterns,
    ``beta >= 0``, ``loss``, ``cones`` (ReLU; ``False``: gated), ``epsilon >= 0`` (the robust
    program, ReLU only); ``objective(W) -> float``: the program's objective at weights ``W``
    (2, P, d) (gated: (P, d)), which ``Result.objective`` reports. The answer is the group-lasso
    copy $z$ of the weights (exactly group-sparse); the absolute tolerance is in the units of
    ``y`` (``unit = max|y|``: scaling ``(y, beta)`` by ``s`` scales every iterate by ``s``).
    Bad input raises ``ValueError`` naming the argument.
    """
    X, y, D = check_data(X, y, D, loss)
    validate.choice("loss", loss, LOSS_KINDS)
    validate.boolean("cones", cones)
    beta = validate.nonnegative("beta", beta)
    epsilon = validate.nonnegative("epsilon", epsilon)
    P, d = D.shape[1], X.shape[1]
    if epsilon > 0:
        if not cones:
            raise ValueError("the robust program (epsilon > 0) is formulated for the ReLU variant "
                             "(cones=True)")
        return _robust_program(X, y, D, beta, loss, epsilon, objective)
    loss_term = loss != "squared"

    def build(b):
        """The operator data and term parameters on back end ``b``."""
        with b.precision():
            f = b.asarray
            params = ((f(1.0), f(y)),) if loss_term else ()
            return relu_lin(b, X, D, y, cones, loss_term), \
                params + (f(beta),) + ((f(0.0),) if cones else ())

    kinds = ((loss,) if loss_term else ()) + ("group",) + (("nonneg",) if cones else ())
    return ProxProgram(relu_operator(loss_term, cones), kinds, build,
                       1 if loss_term else 0, (2, P, d) if cones else (P, d),
                       lambda W: W.reshape(-1, d), objective, _y_scale(y), {})


def _robust_program(X, y, D, beta, loss, epsilon, objective) -> ProxProgram:
    P, d = D.shape[1], X.shape[1]
    m = 2 * P
    terms = functools.cache(lambda: robust_operator(X, y, D, beta, loss, epsilon))

    def to_x(W):
        """x = (U, T, S[, Q]) of weights W (2, P, d): the tightest T, S, Q (feasible)."""
        U = W.reshape(m, d)
        a = np.einsum("kp,pq->kq", D, U[:P] - U[P:])
        parts = [U.ravel(), np.abs(U).ravel(), np.abs(a).ravel()]
        if loss == "squared":
            parts.append(np.abs(np.sum(X * a, axis=1) - y) + epsilon * np.abs(a).sum(axis=1))
        return np.concatenate(parts)

    def build(b):
        blocks, params, _, Pm, q, _ = terms()  # built once, on first use
        with b.precision():
            f = b.asarray
            return DenseLin(tuple(f(A) for A in blocks), f(Pm), f(q), f(0.0)), \
                tuple((f(p[0]), f(p[1])) if isinstance(p, tuple) else f(p) for p in params)

    return ProxProgram(DENSE, robust_kinds(loss), build, 0, (2, P, d), to_x, objective,
                       _y_scale(y), {"epsilon": epsilon})
