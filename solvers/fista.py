r"""Restarted FISTA with backtracking for a group-$\ell_1$-penalized linear model, and the pieces
the augmented Lagrangian of `cvxkit.solvers.relu_al` builds on.

Mishkin, Sahiner & Pilanci, "Fast convex optimization for two-layer ReLU networks: equivalent
model classes and cone decompositions", ICML 2022 (R-FISTA, §5); Beck & Teboulle, SIAM J.
Imaging Sci. 2009 (FISTA); O'Donoghue & Candès, Found. Comput. Math. 2015 (restarts).

**The program** (a `LinearModel`): weights $U \in \mathbb{R}^{m\times d}$ (rows are groups), a
linear prediction $z = \mathcal F(U) \in \mathbb{R}^n$ and, optionally, linear constraints
$c = \mathcal G(U) \ge 0$ (any shape), supplied by the problem as one ``forward`` map
$U \mapsto (z, c)$ and its ``adjoint`` $(g_z, g_c) \mapsto \mathcal F^*g_z + \mathcal G^*g_c$;

$$\min_U\ \ell(z, y) + \beta R(U)\quad(\text{s.t. } c \ge 0),$$

with $R$ one of the `PENALTIES`: ``"rows"`` $\sum_j\lVert u_j\rVert_2$ (a group per row, the
default), ``"columns"`` $\sum_f\lVert U_{:,f}\rVert_2$ (a group per column) or ``"l1"``
$\sum_{j,f}|U_{jf}|$; $\ell$ the squared loss $\tfrac12\lVert z - y\rVert^2$, the logistic loss
$\sum_k\log(1 + e^{-y_kz_k})$ or the hinge loss $\sum_k(1 - y_kz_k)_+$ (not smooth: `relu_al`
puts its rows $y_kz_k \ge 1 - t_k$ in the augmented Lagrangian).

**One iteration** (`fista_step`) on the composite $f(U) + g(U)$, $f$ smooth (the loss, and the
augmented-Lagrangian terms of `relu_al`), $g = \beta R$ the penalty, from the extrapolated
point $v$:

1. $x^+ = \operatorname{prox}_{\eta g}(v - \eta\nabla f(v))$ (`penalty_prox`: the group
   soft-threshold of the rows or of the columns, or the entrywise soft-threshold), with
   backtracking $\eta \leftarrow 0.8\eta$ until
   $f(x^+) \le f(v) + \langle\nabla f(v), x^+ - v\rangle + \lVert x^+ - v\rVert^2/(2\eta)$
   (`BACKTRACK`; the left side minus $f(v)$ and the linear term, the Bregman divergence of $f$,
   is computed term by term from the differences of the forward values, so that the test keeps
   its meaning near the solution, where $f(x^+) - f(v)$ is below the rounding of $f$);
2. step growth (the paper's "Lassplore" forward tracking): when the quadratic bound is loose by
   more than `GROW_IF` ($\lVert x^+ - v\rVert^2 > 5\cdot 2\eta(f(x^+) - f(v) - \langle\nabla f(v),
   x^+ - v\rangle)$), the next step starts at $1.25\eta$ (`GROW`);
3. restart (gradient-mapping test of O'Donoghue & Candès): if
   $\langle x^+ - x, v - x^+\rangle > 0$ the momentum is reset ($t_k = 1$, $v = x^+$); else the
   textbook momentum $t_{k+1} = (1 + \sqrt{1 + 4t_k^2})/2$,
   $v = x^+ + \tfrac{t_k - 1}{t_{k+1}}(x^+ - x)$ (scnn's code writes $1 + \sqrt{1+4t^2}/2$, an
   operator-precedence slip; the paper's sequence is used here).

The prediction and constraint values are linear in $U$, so those of $v$ are the same combination
of those of $x^+$ and $x$: an iteration costs one ``adjoint`` and one ``forward`` per trial of the
line search. The inner measure is the gradient mapping at $v$, $R_*(v - x^+)/\eta$ in the
penalty's dual norm $R_*$ (`dual_norm`: the largest row norm, column norm or entry), relative to
$s_d = R_*(\mathcal F^*\nabla\ell(0))$ (the smallest $\beta$ for which $U = 0$ is optimal in the
unconstrained program).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

LOSSES = ("squared", "logistic", "hinge")
#: the penalties $R(U)$ of a `LinearModel`: a group per row of $U$, a group per column, entrywise
PENALTIES = ("rows", "columns", "l1")
#: backtracking factor of the step
BACKTRACK = 0.8
#: step growth factor, and how loose the quadratic bound must be for it
GROW, GROW_IF = 1.25, 5.0
#: largest number of line-search trials in one iteration
MAX_TRIALS = 60


class LinearModel(NamedTuple):
    r"""A program $\min_U \ell(\mathcal F(U), y) + \beta R(U)$ (s.t.
    $\mathcal G(U) \ge 0$) as a problem hands it to `rfista` and `relu_al` (the convex ReLU
    family: ``ConvexReLU.linear_model()``).

    * ``forward(bk, lin, U) -> (z, c)``: predictions (n,) and constraint values (``None``
      without constraints); ``adjoint(bk, lin, gz, gc) -> U-shaped`` ($g_c$ is ``None`` without
      constraints); ``build(bk) -> lin``: the operator data as arrays of back end ``bk`` (made
      inside ``bk.precision()``);
    * ``y`` (n,) targets (labels $\pm1$ for ``logistic`` and ``hinge``), ``loss``, ``beta``;
    * ``shape`` of $U$ (m, d); ``out_shape``: ``Result.x`` is $U$ reshaped to it;
    * ``objective(W) -> float``: the program's objective at an answer (``Result.objective``);
    * ``constrained``: whether ``forward`` returns constraint values; ``info``: entries added to
      ``Result.info``;
    * ``penalty``: $R$, one of `PENALTIES` (``"rows"``: $\sum_j\lVert u_j\rVert_2$;
      ``"columns"``: $\sum_f\lVert U_{:,f}\rVert_2$; ``"l1"``: $\sum|U_{jf}|$).
    """

    forward: Callable
    adjoint: Callable
    build: Callable
    y: Any
    loss: str
    beta: float
    shape: tuple
    out_shape: tuple
    objective: Callable
    constrained: bool = True
    info: dict = {}
    penalty: str = "rows"


# --- the loss, the penalty and their maps ------------------------------------------------------
def loss_value(xp, loss: str, z, y):
    """$\\ell(z, y)$ for the smooth losses (0 for ``hinge``: `relu_al` carries it)."""
    if loss == "squared":
        r = z - y
        return 0.5 * xp.sum(r * r)
    if loss == "logistic":
        return xp.sum(xp.logaddexp(0.0, -y * z))
    return 0.0 * xp.sum(z)


def loss_grad(xp, loss: str, z, y):
    """$\\nabla\\ell(z)$ (0 for ``hinge``)."""
    if loss == "squared":
        return z - y
    if loss == "logistic":
        return -y * 0.5 * (1.0 - xp.tanh(0.5 * y * z))  # -y sigmoid(-y z), overflow-free
    return 0.0 * z


def group_prox(xp, V, t):
    """Group soft-threshold of the rows of ``V`` by ``t`` (no division by a floor: t / tiny
    overflows)."""
    nrm = xp.sqrt(xp.sum(V * V, axis=-1, keepdims=True))
    keep = nrm > t
    return V * xp.where(keep, 1.0 - t / xp.where(keep, nrm, 1.0), 0.0)


def row_norms(xp, U):
    return xp.sqrt(xp.sum(U * U, axis=-1))


def penalty_prox(xp, kind: str, V, t):
    r"""$\operatorname{prox}_{tR}(V)$ for the penalty ``kind`` (`PENALTIES`): the group
    soft-threshold of the rows or of the columns, or the entrywise soft-threshold
    $\operatorname{sign}(V)(|V| - t)_+$."""
    if kind == "l1":
        return xp.sign(V) * xp.maximum(xp.abs(V) - t, 0.0)
    if kind == "columns":
        return group_prox(xp, V.T, t).T
    return group_prox(xp, V, t)


def penalty_value(xp, kind: str, U):
    """$R(U)$ for the penalty ``kind`` (`PENALTIES`)."""
    if kind == "l1":
        return xp.sum(xp.abs(U))
    return xp.sum(row_norms(xp, U.T if kind == "columns" else U))


def dual_norm(xp, kind: str, G):
    r"""$R_*(G)$, the dual norm of the penalty ``kind``: the largest row norm (``rows``), column
    norm (``columns``) or entry in absolute value (``l1``). $U = 0$ minimizes
    $\langle G, U\rangle + \beta R(U)$ iff $R_*(G) \le \beta$."""
    if kind == "l1":
        return xp.max(xp.abs(G))
    return xp.max(row_norms(xp, G.T if kind == "columns" else G))


def min_norm_subgradient(xp, G, U, beta, kind: str = "rows"):
    r"""$\max_g \operatorname{dist}(0, G_g + \beta\partial\lVert u_g\rVert)$ over the groups $g$
    of the penalty ``kind`` (rows, columns, or single entries for ``l1``): the smallest
    subgradient of the $\langle G, U\rangle$-linearized objective plus the penalty, per group."""
    if kind == "columns":
        G, U = G.T, U.T
    if kind == "l1":
        on = xp.abs(G + beta * xp.sign(U))
        off = xp.maximum(xp.abs(G) - beta, 0.0)
        return xp.max(xp.where(U != 0, on, off))
    nu = row_norms(xp, U)
    nz = nu > 0
    uhat = U / xp.where(nz, nu, 1.0)[:, None]
    on = row_norms(xp, G + beta * uhat)
    off = xp.maximum(row_norms(xp, G) - beta, 0.0)
    return xp.max(xp.where(nz, on, off))


def objective_estimate(xp, loss, z, y, U, beta, kind: str = "rows"):
    """The program's objective from the predictions ``z`` (exact hinge, not the slacks)."""
    if loss == "hinge":
        fit = xp.sum(xp.maximum(0.0, 1.0 - y * z))
    else:
        fit = loss_value(xp, loss, z, y)
    return fit + beta * penalty_value(xp, kind, U)


def while_loop(bk, cond, body, carry):
    """``lax.while_loop`` on JAX, a Python loop on numpy."""
    if bk.name == "jax":
        return bk._jax.lax.while_loop(cond, body, carry)
    while bool(cond(carry)):
        carry = body(carry)
    return carry


# --- the iteration -------------------------------------------------------------------------------
class Point(NamedTuple):
    """An iterate $U$ with its forward values $(z, c)$ (``c`` ``None`` without constraints)."""

    U: Any
    z: Any
    c: Any


def combine(a: Point, b: Point, wa, wb) -> Point:
    """``wa a + wb b`` (forward values included: they are linear)."""
    c = None if a.c is None else wa * a.c + wb * b.c
    return Point(wa * a.U + wb * b.U, wa * a.z + wb * b.z, c)


class Iterate(NamedTuple):
    """The R-FISTA part of a solver state."""

    x: Point
    v: Point
    tk: Any  # momentum counter
    eta: Any  # step
    measure: Any  # gradient mapping at v, relative to s_d (last iteration)
    trials: Any  # line-search trials so far


def fista_step(bk, model: LinearModel, lin, beta, grad, bregman, it: Iterate) -> Iterate:
    """One R-FISTA iteration (module docstring). ``grad(z, c) -> (gz, gc)``: the gradient of the
    smooth part with respect to $(z, c)$; ``bregman(zv, cv, z, c)``: its Bregman divergence
    $f(x) - f(v) - \\langle\\nabla f(v), x - v\\rangle$, computed term by term from the
    differences (the line search compares it with $\\lVert x - v\\rVert^2/(2\\eta)$: a difference
    of two values of $f$ loses all its digits near the solution)."""
    xp = bk.xp
    v = it.v
    gz, gc = grad(v.z, v.c)
    gU = model.adjoint(bk, lin, gz, gc)

    def trial(eta):
        U = penalty_prox(xp, model.penalty, v.U - eta * gU, eta * beta)
        z, c = model.forward(bk, lin, U)
        S = U - v.U
        div = bregman(v.z, v.c, z, c)
        ss = xp.sum(S * S)
        return Point(U, z, c), div, ss, 2.0 * eta * div <= ss

    def cond(carry):
        return ~carry[-1] & (carry[0] < MAX_TRIALS)

    def body(carry):
        eta = BACKTRACK * carry[1]
        p, lg, ss, ok = trial(eta)
        return carry[0] + 1, eta, p, lg, ss, ok

    p0, lg0, ss0, ok0 = trial(it.eta)
    start = (0 * it.trials + 1, it.eta, p0, lg0, ss0, ok0)
    n, eta, xn, lg, ss, _ = while_loop(bk, cond, body, start)
    grow = ss > GROW_IF * 2.0 * eta * lg
    eta_next = xp.where(grow, GROW * eta, eta)
    S = v.U - xn.U
    meas = dual_norm(xp, model.penalty, S) / eta
    restart = xp.sum((xn.U - it.x.U) * S) > 0
    tn = 0.5 * (1.0 + xp.sqrt(1.0 + 4.0 * it.tk * it.tk))
    b = xp.where(restart, 0.0, (it.tk - 1.0) / tn)
    vn = combine(xn, it.x, 1.0 + b, -b)
    return Iterate(xn, vn, xp.where(restart, 1.0, tn), eta_next, meas, it.trials + n)


def reset_momentum(bk, it: Iterate) -> Iterate:
    """``v = x``, ``t_k = 1``: after a change of the smooth part (penalty, multipliers)."""
    return it._replace(v=it.x, tk=1.0 + 0.0 * it.tk)


def point(bk, model: LinearModel, lin, U) -> Point:
    z, c = model.forward(bk, lin, U)
    return Point(U, z, c)


def scale_d(model: LinearModel, lin, bk) -> float:
    r"""$s_d = R_*(\mathcal F^*\nabla\ell(0))$ (1 when it is 0), in the dual norm of the model's
    penalty (`dual_norm`): the unit of the stationarity measures (for ``hinge`` the
    subgradient $-y$ at 0)."""
    xp = bk.xp
    y = bk.asarray(model.y)
    g0 = -y if model.loss == "hinge" else loss_grad(xp, model.loss, 0.0 * y, y)
    G = model.adjoint(bk, lin, g0, None)
    s = float(np.asarray(dual_norm(xp, model.penalty, G)))
    return s if s > 0 and np.isfinite(s) else 1.0
