r"""ADMM with a cached factorization: the OSQP algorithm for quadratic programs, batched on JAX.

Problem (OSQP's form; Stellato, Banjac, Goulart, Bemporad & Boyd, "OSQP: an operator splitting
solver for quadratic programs", Math. Prog. Comp. 2020):

$$
\min_x\ \tfrac12 x^\top P x + q^\top x \quad\text{s.t.}\quad l \le Ax \le u,
\qquad P \succeq 0,\ l_i \in \mathbb{R}\cup\{-\infty\},\ u_i \in \mathbb{R}\cup\{+\infty\}.
$$

**The general core.** Write the constraint as $z = Ax \in C$ for a closed convex set $C$ (here
the box $[l, u]$). One relaxed ADMM iteration with penalties $\rho$ (one per row), $\sigma > 0$
and relaxation $\alpha \in (0, 2)$ is

$$
\begin{aligned}
(\tilde x, \tilde z) &= \text{the solution of } (P + \sigma I + A^\top \operatorname{diag}(\rho) A)\tilde x
  = \sigma x - q + A^\top(\rho\circ z - y),\ \ \tilde z = A\tilde x,\\
x &\leftarrow \alpha\tilde x + (1-\alpha)x,\\
z &\leftarrow \Pi_C\big(\alpha\tilde z + (1-\alpha)z + \rho^{-1}\circ y\big),\\
y &\leftarrow y + \rho\circ\big(\alpha\tilde z + (1-\alpha)z_{\text{old}} - z\big).
\end{aligned}
$$

Only two things depend on the problem: how the linear system is solved, and $C$ (its
projection, its support function, its recession cone). They form a `Splitting`;
`make_algorithm` turns one into a driver `Algorithm` (see `cvxkit.solvers.driver`). The QP
below is one instantiation; another family (e.g. convex ReLU networks with cone constraints)
supplies its own `Splitting` and reuses the loop, the termination tests, the infeasibility
certificates and the adaptive penalty.

**The QP instantiation (OSQP).** Ruiz equilibration with cost scaling
(`cvxkit.solvers.scaling`); $\rho_i = \rho$ on inequality rows, $10^3\rho$ on equality rows
($u_i - l_i < 10^{-4}$ after scaling) and $10^{-6}$ on free rows; the linear system in its
reduced form with a dense Cholesky factorization, or in its full quasi-definite form with a
sparse LDL^T (`cvxkit.solvers.kkt`), factored once and refactored only when $\rho$ changes.

**Checks** (every ``check_every`` iterations, infinity norms) are made in *normalized units*:
the user's problem with each constraint row divided by its norm $a_i = \lVert A_{i:}\rVert$, $x$
measured in a length unit $\beta$ and the objective in a cost unit $\gamma$, all three computed
from the data (`cvxkit.solvers.scaling`, "Units first"; $\hat r_i = r_i/(a_i\beta)$ for a row
quantity, $\hat r = \beta r/\gamma$ for a dual one, $g/\gamma$ for the gap). So "relative" means
relative to the data's own magnitudes, and scaling a row, the cost $(P, q)$ or the right-hand
sides $(l, u, q)$ by any $10^k$ changes neither the status nor the (scaled) answer: OSQP's
absolute part $\epsilon_{abs}$ would otherwise dominate a row scaled by $10^{-12}$ (any
violation of it passes) or a cost scaled by $10^{-9}$ (any point is "optimal"). With hats for
normalized quantities:

* primal residual $r_p = \lVert \hat A x - \hat z\rVert$, tolerance
  $\epsilon_p = \epsilon_{abs} + \epsilon_{rel}\max(\lVert \hat Ax\rVert, \lVert \hat z\rVert)$;
* dual residual $r_d = \lVert \hat P x + \hat q + \hat A^\top \hat y\rVert$, tolerance
  $\epsilon_d = \epsilon_{abs} + \epsilon_{rel}\max(\lVert \hat Px\rVert, \lVert \hat A^\top \hat y\rVert, \lVert \hat q\rVert)$;
* duality gap $g = \lvert x^\top \hat P x + \hat q^\top x + \sigma_C(\hat y)\rvert$ with
  $\sigma_C(y) = u^\top y_+ + l^\top y_-$, tolerance
  $\epsilon_g = \epsilon_{abs} + \epsilon_{rel}\max(\lvert x^\top \hat Px\rvert, \lvert \hat q^\top x\rvert, \lvert\sigma_C(\hat y)\rvert)$
  (as OSQP 1.x; ``check_gap=False`` drops it);
* optimal when $r_p \le \epsilon_p$, $r_d \le \epsilon_d$ and $g \le \epsilon_g$;
* infeasibility certificates are tested relative to the data's magnitudes (each test is
  invariant under the scalings above; `certificate_error` states them on the user's data and
  re-checks every certificate on the unscaled data before it is reported: one that fails there
  gives ``numerical_error``, never a certificate status). Primal infeasible (when
  $r_p > \epsilon_p$) if $y = \delta y = y^k - y^{k-1}$, projected onto the polar of the
  recession cone of $C$, has $|(A^\top y)_j| \le \epsilon_{pinf}\max_i(|A_{ij}|/a_i)
  \max_i a_i|y_i|$ and $\sigma_C(y) < -\epsilon_{pinf}\sum_i|b_i||y_i|$ ($b_i$ the bound that
  the sign of $y_i$ selects);
* dual infeasible, i.e. unbounded (when $r_d > \epsilon_d$) if $d = \delta x = x^k - x^{k-1}$
  has $|(Pd)_j| \le \epsilon_{dinf}\max_k|P_{jk}|\lVert d\rVert$ (so a strongly convex but tiny
  $P$ is never "unbounded"), $q^\top d < -\epsilon_{dinf}|q|^\top|d|$ and $Ad$ in the recession
  cone of $C$ up to $\epsilon_{dinf}a_i\lVert d\rVert$ on row $i$;
* residuals above $10^{30}$ or not finite: ``numerical_error`` (a non-convex $P$, or data
  too badly scaled).

**Adaptive penalty.** At each check, $\rho_{new} = \rho\sqrt{(\bar r_p / \max(\lVert\bar A\bar x\rVert,
\lVert\bar z\rVert)) / (\bar r_d / \max(\lVert\bar P\bar x\rVert, \lVert\bar A^\top\bar y\rVert,
\lVert\bar q\rVert))}$ on the scaled problem, clipped to $[10^{-6}, 10^6]$; the matrix is
refactored only when $\rho_{new}$ differs from $\rho$ by more than ``adaptive_rho_tolerance``
(5x).

**Polishing** (``polish=True``): guess the active set from $(z, y)$ (lower-active if
$z_i - l_i < -y_i$ or $l_i = u_i$, upper-active if $u_i - z_i < y_i$), solve the
equality-constrained QP on it through the regularized KKT system
$\begin{bmatrix} P + \delta I & A_a^\top \\ A_a & -\delta I\end{bmatrix}$ with
``polish_refine_iter`` steps of iterative refinement against the unregularized one, and keep the
result only if it meets the tolerances, has duals of the right signs, and does not increase the
residuals (OSQP's rule).

**Back ends.** numpy: dense or scipy.sparse data; the loop runs in Python over scipy/LAPACK
kernels. JAX: dense data, the whole loop jitted; a batch (arrays with a leading batch dimension)
is one ``jax.vmap``-ed loop in one call, iterating until every member has stopped (stopped
members are frozen). Compilation is cached per shape and reported in ``Result.compile_time``.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable, NamedTuple

import numpy as np

from cvxkit.solvers import kkt
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Options, run
from cvxkit.solvers.primal_dual import (DIVERGED, DIVERGED_AT, DUAL_INFEASIBLE, INF_BOUND,
                                        INFEASIBLE_OBJECTIVE, PRIMAL_INFEASIBLE, RUNNING, SOLVED,
                                        certificate, loop_verdict, warm_parts)
from cvxkit.solvers.result import Result, Status, as_numpy_history, batch_message
from cvxkit.solvers.scaling import ruiz_dense, ruiz_sparse, units_dense, units_sparse
from cvxkit.solvers import validate
from cvxkit.solvers.validate import float_array

RHO_MIN, RHO_MAX = 1e-6, 1e6
RHO_EQ_OVER_INEQ = 1e3
#: rows whose scaled range u - l is below this get the equality penalty
RHO_TOL = 1e-4
DIVISION_TOL = 1e-30
#: a batch is compacted (to the next power of two above its running members) once that size is
#: at most this fraction of its size (each new size costs one compilation)
COMPACT_FRACTION = 0.6
#: a refactorization gathers the members that change rho into a sub-batch of 1/this of the batch
REFACTOR_FRACTION = 8
#: smallest compacted batch (a new size costs a compilation; at 1000 members of n = 10 the steps
#: of the last few dozen members cost 0.17 ms at 16 members against 0.38 ms at 64)
MIN_BUCKET = 16
#: members per chunk of a batch's iterations (see `_chunked`)
CHUNK = 256


# ============================================================================================
# The general ADMM core
# ============================================================================================
class Splitting(NamedTuple):
    """The problem-specific half of an ADMM method for $\\min \\tfrac12 x^\\top Px + q^\\top x$
    s.t. $Ax \\in C$.

    Every function takes the back end ``bk`` and the data ``d`` (a `Data`) first:

    * ``rho_vec(bk, d, rho) -> (m,)``: per-row penalties for the scalar penalty ``rho``;
    * ``factorize(bk, d, rho) -> factor``: factor the linear system for ``rho``;
    * ``solve(bk, d, factor, x, z, y, rho_vec) -> (x_tilde, z_tilde)``: the ADMM linear step;
    * ``project(bk, d, v)``: the Euclidean projection onto ``C``;
    * ``polar(bk, d, y)``: ``y`` projected onto the polar of the recession cone of ``C`` (the
      domain where the support function is finite);
    * ``support(bk, d, y)``: the support function $\\sigma_C(y) = \\sup_{z\\in C} y^\\top z$ for
      ``y`` in that domain;
    * ``in_recession(bk, d, v, tol) -> bool``: ``v`` lies in the recession cone of ``C`` up to
      ``tol`` (a scalar or one tolerance per row);
    * ``support_mag(bk, d, y)``: the magnitude of the terms of the support function,
      $\\sum_i |y_i|\\,|b_i|$ with $b_i$ the side of $C$ that $y_i$ selects (for relative
      tests of $\\sigma_C(y) < 0$).
    """

    rho_vec: Callable
    factorize: Callable
    solve: Callable
    project: Callable
    polar: Callable
    support: Callable
    in_recession: Callable
    support_mag: Callable


class Settings(NamedTuple):
    """Scalar settings, stored as arrays so that they can be traced (and batched) by JAX."""

    sigma: Any
    alpha: Any
    eps_abs: Any
    eps_rel: Any
    eps_pinf: Any
    eps_dinf: Any
    rho_tolerance: Any  # refactor when rho changes by more than this factor
    adaptive: Any  # bool
    check_gap: Any  # bool
    block: Any  # iterations between checks (int)
    max_iter: Any  # int


class Norms(NamedTuple):
    """What the tests need besides the scaled data (module docstring, "Checks").

    ``ue`` (m), ``ud`` (n), ``uc``: the tolerances' units over the total scaling (the units
    of `cvxkit.solvers.scaling`): a scaled row residual times ``ue`` is in normalized units, a
    scaled dual residual times ``ud * uc`` too. ``wA`` (m) $= E a$, ``wP`` (n) $= cD\\,
    \\max_k|P_{jk}|$, ``wC`` (n) $= D\\max_i |A_{ij}|/a_i$: the weights that turn the
    relative certificate tests (on the user's data) into tests on the scaled data."""

    ue: Any
    ud: Any
    uc: Any
    wA: Any
    wP: Any
    wC: Any


class Data(NamedTuple):
    """Scaled problem data: ``P``, ``q``, ``A`` (with ``At`` = A^T where it is stored apart, else
    None), the set data ``cset``, the scaling (``x = D xbar``, ``y = E ybar / c``,
    ``z = zbar / E``), the per-row penalty weights ``rho_w`` (0 on free rows), the linear-system
    data ``lin``, the `Settings` and the `Norms`."""

    P: Any
    q: Any
    A: Any
    At: Any
    cset: Any
    D: Any
    E: Any
    c: Any
    rho_w: Any
    lin: Any
    settings: Settings
    norms: Norms


class State(NamedTuple):
    """ADMM iterates (scaled) and what the last check found (unscaled residuals)."""

    x: Any
    z: Any
    y: Any
    dx: Any  # x^k - x^{k-1}: the dual infeasibility certificate candidate
    dy: Any  # y^k - y^{k-1}: the primal infeasibility certificate candidate
    rho: Any
    rho_vec: Any
    factor: Any
    k: Any  # ADMM iterations done
    n_refactor: Any
    flag: Any
    prim_res: Any
    dual_res: Any
    gap: Any
    eps_prim: Any
    eps_dual: Any
    eps_gap: Any
    objective: Any
    prim_rel: Any  # scaled, normalized residuals for the penalty update
    dual_rel: Any


def _norm(xp, v):
    return xp.max(xp.abs(v), initial=0.0)


def _rmatvec(d: Data, v):
    """``A^T v``."""
    return d.At @ v if d.At is not None else v @ d.A


def iterate(bk: Backend, sp: Splitting, d: Data, s: State, track: bool = True) -> State:
    """One relaxed ADMM iteration (see the module docstring); ``track``: also record the steps
    ``dx``, ``dy`` (the infeasibility certificate candidates, needed only before a check)."""
    a = d.settings.alpha
    xt, zt = sp.solve(bk, d, s.factor, s.x, s.z, s.y, s.rho_vec)
    x = a * xt + (1.0 - a) * s.x
    zr = a * zt + (1.0 - a) * s.z
    z = sp.project(bk, d, zr + s.y * (1.0 / s.rho_vec))  # XLA hoists the reciprocal out of loops
    y = s.y + s.rho_vec * (zr - z)
    if not track:
        return s._replace(x=x, z=z, y=y)
    return s._replace(x=x, z=z, y=y, dx=x - s.x, dy=y - s.y)


class Residuals(NamedTuple):
    prim: Any
    dual: Any
    gap: Any
    eps_prim: Any
    eps_dual: Any
    eps_gap: Any
    objective: Any
    prim_rel: Any
    dual_rel: Any
    polar_violation: Any  # how far y is from the domain of the support function (unscaled)


def residuals(bk: Backend, sp: Splitting, d: Data, x, z, y) -> Residuals:
    """Residuals and tolerances in normalized units (module docstring) and the user's objective,
    of the scaled point ``(x, z, y)``."""
    xp, st = bk.xp, d.settings
    Ax, Px, Aty = d.A @ x, d.P @ x, _rmatvec(d, y)
    rp, rd = Ax - z, Px + d.q + Aty
    Ei, Di, ci = d.norms.ue, d.norms.ud, d.norms.uc
    prim = _norm(xp, Ei * rp)
    eps_p = st.eps_abs + st.eps_rel * xp.maximum(_norm(xp, Ei * Ax), _norm(xp, Ei * z))
    dual = ci * _norm(xp, Di * rd)
    eps_d = st.eps_abs + st.eps_rel * ci * xp.maximum(
        xp.maximum(_norm(xp, Di * Px), _norm(xp, Di * Aty)), _norm(xp, Di * d.q))
    yp = sp.polar(bk, d, y)
    xPx, qx, sig = x @ Px, d.q @ x, sp.support(bk, d, yp)
    gap = ci * xp.abs(xPx + qx + sig)
    eps_g = st.eps_abs + st.eps_rel * ci * xp.maximum(xp.maximum(xp.abs(xPx), xp.abs(qx)), xp.abs(sig))
    prim_rel = _norm(xp, rp) / (xp.maximum(_norm(xp, Ax), _norm(xp, z)) + DIVISION_TOL)
    dual_rel = _norm(xp, rd) / (xp.maximum(xp.maximum(_norm(xp, d.q), _norm(xp, Aty)),
                                           _norm(xp, Px)) + DIVISION_TOL)
    polar_violation = ci * _norm(xp, (y - yp) / Ei)
    return Residuals(prim, dual, gap, eps_p, eps_d, eps_g, (0.5 * xPx + qx) / d.c, prim_rel,
                     dual_rel, polar_violation)


def _primal_infeasible(bk, sp, d, dy):
    r"""The primal infeasibility test on ``dy`` (scaled) projected onto the polar cone: the
    relative tests of the module docstring on the user's data, written on the scaled data (each
    side carries the same scaling factors)."""
    xp, w = bk.xp, d.norms
    dy = sp.polar(bk, d, dy)
    norm_dy = _norm(xp, w.wA * dy)  # max_i a_i |y_i| (user units, up to the factor 1/c)
    eps = d.settings.eps_pinf
    atdy = xp.abs(_rmatvec(d, dy))
    return (norm_dy > DIVISION_TOL) & \
        (sp.support(bk, d, dy) < -eps * sp.support_mag(bk, d, dy)) & \
        xp.all(atdy <= eps * w.wC * norm_dy)


def _dual_infeasible(bk, sp, d, dx):
    r"""The dual infeasibility (unboundedness) test on ``dx`` (scaled): the relative tests of the
    module docstring on the user's data, written on the scaled data."""
    xp, w = bk.xp, d.norms
    norm_dx = _norm(xp, d.D * dx)  # ||dx|| in user units
    eps = d.settings.eps_dinf
    qdx = d.q @ dx
    return (norm_dx > DIVISION_TOL) & (qdx < -eps * (xp.abs(d.q) @ xp.abs(dx))) & \
        xp.all(xp.abs(d.P @ dx) <= eps * w.wP * norm_dx) & \
        sp.in_recession(bk, d, d.A @ dx, eps * w.wA * norm_dx)


def termination_flag(bk, sp, d, s: State, r: Residuals, relax=1.0):
    """The flag for residuals ``r`` at tolerances multiplied by ``relax``."""
    xp = bk.xp
    ok_p = r.prim <= relax * r.eps_prim
    ok_d = r.dual <= relax * r.eps_dual
    ok_g = (r.gap <= relax * r.eps_gap) | ~d.settings.check_gap
    pinf = ~ok_p & _primal_infeasible(bk, sp, d, s.dy)
    dinf = ~ok_d & _dual_infeasible(bk, sp, d, s.dx)
    diverged = ~((r.prim < DIVERGED_AT) & (r.dual < DIVERGED_AT))  # also NaN
    return xp.where(diverged, DIVERGED, xp.where(
        ok_p & ok_d & ok_g, SOLVED, xp.where(pinf, PRIMAL_INFEASIBLE, xp.where(
            dinf, DUAL_INFEASIBLE, RUNNING))))


def check(bk: Backend, sp: Splitting, d: Data, s: State) -> State:
    """Compute the residuals of ``s`` and its termination flag."""
    r = residuals(bk, sp, d, s.x, s.z, s.y)
    flag = termination_flag(bk, sp, d, s, r)
    return s._replace(flag=bk.xp.asarray(flag, dtype=s.flag.dtype) if bk.name == "jax" else flag,
                      prim_res=r.prim, dual_res=r.dual, gap=r.gap, eps_prim=r.eps_prim,
                      eps_dual=r.eps_dual, eps_gap=r.eps_gap, objective=r.objective,
                      prim_rel=r.prim_rel, dual_rel=r.dual_rel)


def rho_estimate(bk: Backend, sp: Splitting, d: Data, s: State):
    """``(estimate, change)``: OSQP's penalty estimate and whether it warrants a refactorization."""
    xp, st = bk.xp, d.settings
    est = s.rho * xp.sqrt(s.prim_rel / (s.dual_rel + DIVISION_TOL))
    est = xp.clip(est, RHO_MIN, RHO_MAX)
    change = st.adaptive & (s.flag == RUNNING) & (s.rho_vec.shape[-1] > 0) & (
        (est > s.rho * st.rho_tolerance) | (est < s.rho / st.rho_tolerance))
    return est, change


def apply_rho(bk: Backend, sp: Splitting, d: Data, s: State, est, change) -> State:
    """Set the penalty to ``est`` and refactor, if ``change``."""
    def update(s):
        return s._replace(rho=est, rho_vec=sp.rho_vec(bk, d, est), factor=sp.factorize(bk, d, est),
                          n_refactor=s.n_refactor + 1)

    return bk.cond(change, update, lambda s: s, s)


def iterations(bk: Backend, sp: Splitting, d: Data, s: State, n) -> State:
    """``n`` ADMM iterations; the last one records ``dx``, ``dy``."""
    def body(xzy):  # only (x, z, y) are carried: the factor and data stay loop constants
        t = iterate(bk, sp, d, s._replace(x=xzy[0], z=xzy[1], y=xzy[2]), track=False)
        return t.x, t.z, t.y

    x, z, y = bk.fori(n - 1, body, (s.x, s.z, s.y))
    s = s._replace(x=x, z=z, y=y, k=s.k + n)
    return bk.cond(n > 0, lambda s: iterate(bk, sp, d, s), lambda s: s, s)


def block(bk: Backend, sp: Splitting, d: Data, s: State, n=None, adapt=True, advanced=None) -> State:
    """``n`` iterations (default ``check_every``, fewer at the iteration limit), a check and,
    if ``adapt``, a penalty update. ``advanced``: the state after the iterations, when they
    were done apart (batches do them in chunks, see `_chunked`).

    A stopped state (``flag != RUNNING``) is returned unchanged, so a batch can keep stepping
    until all its members have stopped.
    """
    if n is None:
        n = bk.xp.minimum(d.settings.block, d.settings.max_iter - s.k)

    def advance(s):
        s = iterations(bk, sp, d, s, n) if advanced is None else advanced
        s = check(bk, sp, d, s)
        return apply_rho(bk, sp, d, s, *rho_estimate(bk, sp, d, s)) if adapt else s

    return bk.cond(s.flag == RUNNING, advance, lambda s: s, s)


def _monitor(bk, s: State, d: Data):
    return {"iterations": s.k, "objective": s.objective, "prim_res": s.prim_res,
            "dual_res": s.dual_res, "gap": s.gap, "rho": s.rho}


def _stopped(bk, s: State, d: Data):
    return s.flag != RUNNING


def _batch_monitor(bk, s: State, d: Data):
    xp = bk.xp
    running = s.flag == RUNNING
    return {"iterations": xp.max(s.k), "running": xp.sum(running),
            "max_prim_res": xp.max(xp.where(running, s.prim_res, 0.0)),
            "max_dual_res": xp.max(xp.where(running, s.dual_res, 0.0))}


def _batch_stopped(bk, s: State, d: Data, axis=None):
    """All members stopped, or few enough still run that the batch should be compacted. With
    ``axis`` (inside ``shard_map``), over the blocks of all devices: all stopped, or the busiest
    block should be compacted (so that every device stops at the same step)."""
    xp = bk.xp
    running = most = total = xp.sum(s.flag == RUNNING)
    if axis is not None:
        most, total = bk._jax.lax.pmax(running, axis), bk._jax.lax.psum(running, axis)
    return (total == 0) | (compacted_size(xp, most, s.flag.shape[0]) > 0)


def compacted_size(xp, running, size):
    """The size to compact a batch of ``size`` with ``running`` members to, or 0 for none: the
    next power of two >= ``running`` (at least MIN_BUCKET), if it is at most
    ``COMPACT_FRACTION * size``."""
    new = xp.maximum(MIN_BUCKET, 2 ** xp.ceil(xp.log2(xp.maximum(running, 1))))
    ok = (running > 0) & (new <= COMPACT_FRACTION * size)
    return xp.where(ok, new, 0).astype(int) if xp is np else xp.where(ok, new, 0)


def _chunked(bk, f, s, d):
    """``f(s, d)`` on a batch, run over chunks of about ``CHUNK`` members one after the other
    (``lax.map``) when the batch splits evenly, so that each chunk's data stays in cache for
    all the iterations of a block."""
    size = s.k.shape[0]
    c = max(1, round(size / CHUNK))
    if c == 1 or size % c:
        return f(s, d)
    tm = bk._jax.tree_util.tree_map
    out = bk._jax.lax.map(lambda sd: f(*sd), tm(lambda a: a.reshape((c, size // c) + a.shape[1:]),
                                                (s, d)))
    return tm(lambda a: a.reshape((size,) + a.shape[2:]), out)


def make_algorithm(name: str, sp: Splitting, batched: bool = False) -> Algorithm:
    """The driver `Algorithm` of ADMM with splitting ``sp`` (one step = one `block`).

    With ``batched=True`` the state and data carry a leading batch dimension, the step is the
    ``jax.vmap`` of `block` (JAX only), and the run stops once every member has stopped.
    Call it once per splitting (at import): the driver caches compiled code per `Algorithm`.
    """
    if not batched:
        return Algorithm(name, lambda bk, s, d: block(bk, sp, d, s), _monitor, _stopped)

    def step(bk, s, d):
        # Members still running have all done the same number of iterations: one trip count for
        # the whole batch keeps the inner loop free of per-member selects. A refactorization runs
        # only when some member changes rho, and then only for the members that change (gathered
        # into a sub-batch of an eighth of the batch; all members when more change).
        xp, vmap, tm = bk.xp, bk._jax.vmap, bk._jax.tree_util.tree_map
        n = xp.minimum(d.settings.block[0], d.settings.max_iter[0] - xp.max(s.k))
        moved = _chunked(bk, vmap(lambda s, d: iterations(bk, sp, d, s, n)), s, d)
        s = vmap(lambda s, t, d: block(bk, sp, d, s, n, adapt=False, advanced=t))(s, moved, d)
        est, change = vmap(lambda s, d: rho_estimate(bk, sp, d, s))(s, d)
        size = s.k.shape[0]
        sub = max(1, size // REFACTOR_FRACTION)

        def refactor(s, d, est, change):
            return vmap(lambda s, d, e, c: apply_rho(bk, sp, d, s, e, c))(s, d, est, change)

        def some(s):
            idx = xp.nonzero(change, size=sub, fill_value=size)[0]  # `size`: no member
            part = refactor(tm(lambda a: a[idx], s), tm(lambda a: a[idx], d), est[idx],
                            change[idx])
            return tm(lambda a, b: a.at[idx].set(b, mode="drop"), s, part)

        many = xp.sum(change) > sub
        return bk.cond(xp.any(change), lambda s: bk.cond(
            many, lambda s: refactor(s, d, est, change), some, s), lambda s: s, s)

    return Algorithm(name + "-batch", step, _batch_monitor, _batch_stopped)


# ============================================================================================
# The QP instantiation: C = [l, u]
# ============================================================================================
class Box(NamedTuple):
    """``C = [l, u]`` (scaled), with masks of the finite bounds."""

    l: Any
    u: Any
    lfin: Any
    ufin: Any


def _box_project(bk, d, v):
    return bk.xp.clip(v, d.cset.l, d.cset.u)


def _box_polar(bk, d, y):
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


def _qp_rho_vec(bk, d, rho):
    return bk.xp.where(d.rho_w > 0, rho * d.rho_w, RHO_MIN)


class DenseLin(NamedTuple):
    """The reduced matrix as ``K(rho) = G0 + rho * G1`` (dense, n x n)."""

    G0: Any
    G1: Any


def _dense_factorize(bk, d, rho):
    return kkt.cholesky(bk, d.lin.G0 + rho * d.lin.G1)


def _dense_solve(bk, d, L, x, z, y, rho_vec):
    rhs = d.settings.sigma * x - d.q + _rmatvec(d, rho_vec * z - y)
    xt = kkt.cho_solve(bk, L, rhs)
    return xt, d.A @ xt


def _sparse_factorize(bk, d, rho):
    return d.lin.factorize(_qp_rho_vec(bk, d, rho))


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


_BOX = dict(rho_vec=_qp_rho_vec, project=_box_project, polar=_box_polar, support=_box_support,
            in_recession=_box_in_recession, support_mag=_box_support_mag)
#: OSQP with the reduced system and a dense Cholesky factorization (numpy or JAX)
QP_DENSE = Splitting(factorize=_dense_factorize, solve=_dense_solve, **_BOX)
#: OSQP with the full KKT system and a sparse LDL^T factorization (numpy)
QP_SPARSE = Splitting(factorize=_sparse_factorize, solve=_sparse_solve, **_BOX)

ALG_DENSE = make_algorithm("admm", QP_DENSE)
ALG_SPARSE = make_algorithm("admm", QP_SPARSE)
#: OSQP with the reduced matrix inverted explicitly (``K^{-1}[sigma I, A^T]`` stored): for batches of
#: small problems on JAX, where XLA's batched triangular solves cost about 2.5x a batched
#: matrix-vector product, and each batched product costs about the same whatever its size
QP_DENSE_INVERSE = Splitting(factorize=_inverse_factorize, solve=_inverse_solve, **_BOX)
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

ALG_DENSE_BATCH = make_algorithm("admm", QP_DENSE, batched=True)
ALG_INVERSE_BATCH = make_algorithm("admm", QP_DENSE_INVERSE, batched=True)
ALG_INVERSE_XLA_BATCH = make_algorithm("admm", QP_DENSE_INVERSE_XLA, batched=True)


def host_devices(mesh) -> bool:
    """``mesh`` spans several CPU devices (see QP_DENSE_INVERSE_XLA)."""
    return mesh is not None and mesh.devices.size > 1 and all(
        dev.platform == "cpu" for dev in mesh.devices.flat)


# --- setup ----------------------------------------------------------------------------------
def _row_weights(xp, ls, us):
    """Penalty weights: 1 on inequality rows, RHO_EQ_OVER_INEQ on equalities, 0 on free rows."""
    free = ~xp.isfinite(ls) & ~xp.isfinite(us)
    eq = (us - ls) < RHO_TOL
    return xp.where(free, 0.0, xp.where(eq, RHO_EQ_OVER_INEQ, 1.0))


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


def _norms(xp, sc, un, prow, colhat) -> Norms:
    """`Norms` from the scaling ``sc``, the units ``un``, the row maxima of ``|P|`` and the column
    maxima of the row-normalized ``|A|``."""
    return Norms(un.E0 / sc.E, un.D0 / sc.D, un.c0 / sc.c, sc.E * un.a,
                 sc.c * sc.D * prow, sc.D * colhat)


def _setup_dense(bk, P, q, A, l, u, x0, y0, rho0, st: Settings, scaling: int, sp=None):
    """Scale, build the reduced matrices and the first state (dense data, either back end)."""
    xp = bk.xp
    un = units_dense(xp, P, q, A, l, u)
    sc = ruiz_dense(xp, P, q, A, scaling, loop=bk.fori if bk.name == "jax" else None, start=un)
    prow = xp.max(xp.abs(P), axis=-1, initial=0.0)
    colhat = xp.max(xp.abs(A) / un.a[..., :, None], axis=-2, initial=0.0)
    ls, us = sc.E * l, sc.E * u
    w = _row_weights(xp, ls, us)
    free = (w == 0).astype(P.dtype)
    n = P.shape[-1]
    G0 = sc.P + st.sigma * xp.eye(n, dtype=P.dtype) + RHO_MIN * (sc.A.T * free) @ sc.A
    G1 = (sc.A.T * w) @ sc.A
    d = Data(sc.P, sc.q, sc.A, None, Box(ls, us, xp.isfinite(ls), xp.isfinite(us)), sc.D, sc.E,
             sc.c, w, DenseLin(G0, G1), st, _norms(xp, sc, un, prow, colhat))
    unrolled = functools.partial(_inverse_factorize, unrolled=True)
    return d, _init_state(bk, sp or QP_DENSE, d, x0, y0, rho0,
                          unrolled if sp is QP_DENSE_INVERSE else None)


def _setup_numpy_sparse(P, q, A, l, u, x0, y0, rho0, st: Settings, scaling: int, linsys: str):
    """numpy set-up from scipy.sparse data: scaling, then the dense Gram or the sparse KKT."""
    import scipy.sparse as sp

    bk = get_backend("numpy")
    un = units_sparse(P, q, A, l, u)
    sc = ruiz_sparse(P, q, A, scaling, start=un)
    absA = abs(sp.csr_matrix(A))
    prow = np.asarray(abs(sp.csr_matrix(P)).max(axis=1).todense()).ravel() if P.shape[0] \
        else np.zeros(0)
    colhat = np.asarray((sp.diags(1.0 / un.a) @ absA).max(axis=0).todense()).ravel() \
        if absA.shape[0] else np.zeros(absA.shape[1])
    ls, us = sc.E * l, sc.E * u
    w = _row_weights(np, ls, us)
    A_csr = sp.csr_matrix(sc.A)
    box = Box(ls, us, np.isfinite(ls), np.isfinite(us))
    if linsys == "dense":
        n = P.shape[0]
        G0 = kkt.gram(A_csr, RHO_MIN * (w == 0))
        G0 += sc.P.toarray()
        G0[np.diag_indices(n)] += float(st.sigma)
        lin, split = DenseLin(G0, kkt.gram(A_csr, w)), QP_DENSE
    else:
        lin, split = kkt.SparseKKT(sc.P, sc.A, float(st.sigma)), QP_SPARSE
    d = Data(kkt.fast_csr(sc.P.T), sc.q, kkt.fast_csr(A_csr), kkt.fast_csr(sc.A.T), box, sc.D, sc.E,
             sc.c, w, lin, st, _norms(np, sc, un, prow, colhat))
    return d, _init_state(bk, split, d, x0, y0, rho0), split


# --- polishing ------------------------------------------------------------------------------
def _active_sets(xp, d, z, y):
    b = d.cset
    low = (z - b.l < -y) | ((b.u - b.l) < RHO_TOL)
    upp = ~low & (b.u - z < y)
    return low, upp


def _polish_dense(bk, d: Data, x, z, y, delta, refine: int):
    """``(x, y, low, upp)``: the polished point from the masked KKT system of size n + m
    (inactive rows get ``y_i = 0``), and the active sets (dense; vmap-able)."""
    xp = bk.xp
    n = x.shape[-1]
    low, upp = _active_sets(xp, d, z, y)
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


def _polish_sparse(d: Data, x, z, y, delta, refine: int):
    """``(x, y, low, upp)``: the polished point from the reduced KKT system on the active
    rows, and the active sets (scipy.sparse)."""
    import scipy.sparse as sp

    low, upp = _active_sets(np, d, z, y)
    act = np.flatnonzero(low | upp)
    bnd = np.where(low, d.cset.l, d.cset.u)[act]
    n = x.shape[0]
    P = sp.csc_matrix(kkt.as_scipy(d.P))
    Aa = sp.csr_matrix(kkt.as_scipy(d.A))[act]
    K0 = sp.bmat([[P, Aa.T], [Aa, None]], format="csc")
    Kd = K0 + sp.diags(np.concatenate([np.full(n, delta), np.full(act.size, -delta)]))
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
    sign_violation = d.norms.uc * _norm(xp, wrong_sign / d.norms.ue)
    meets = (r.prim <= r.eps_prim) & (r.dual <= r.eps_dual) & \
        ((r.gap <= r.eps_gap) | ~d.settings.check_gap) & \
        (sign_violation <= d.settings.eps_abs) & (r.polar_violation <= d.settings.eps_abs)
    better = ((r.prim < s.prim_res) & (r.dual < s.dual_res)) | \
        ((r.prim < s.prim_res) & (s.dual_res < 1e-10)) | ((r.dual < s.dual_res) & (s.prim_res < 1e-10))
    return zp, r, meets & better


def _polish_state(bk, sp, d, s: State, delta, refine, sparse=False):
    """``(state, accepted)``: the polished state if accepted, else ``s``."""
    xp = bk.xp
    if sparse:
        xq, yq, low, upp = _polish_sparse(d, s.x, s.z, s.y, delta, refine)
    else:
        xq, yq, low, upp = _polish_dense(bk, d, s.x, s.z, s.y, delta, refine)
    zq, r, ok = _polish_accept(bk, sp, d, s, xq, yq, low, upp)
    pol = s._replace(x=xq, z=zq, y=yq, prim_res=r.prim, dual_res=r.dual, gap=r.gap,
                     eps_prim=r.eps_prim, eps_dual=r.eps_dual, eps_gap=r.eps_gap,
                     objective=r.objective, prim_rel=r.prim_rel, dual_rel=r.dual_rel)
    pick = lambda a, b: xp.where(ok, a, b)  # noqa: E731
    return bk._jax.tree_util.tree_map(pick, pol, s) if bk.name == "jax" else (pol if ok else s), ok


# ============================================================================================
# Public entry point
# ============================================================================================
def _vector(name, v, size, fill=None):
    """``v`` as a float64 array (``None``: ``size`` copies of ``fill``; a scalar with a ``fill``:
    ``size`` copies of it), else ValueError."""
    if v is None and size is not None:
        return np.full((size,), fill, dtype=np.float64)
    v = float_array(name, v)
    if v.ndim == 0 and fill is not None:
        v = np.full((size,), float(v))
    return v


def validate_qp(P, q, A=None, l=None, u=None, *, symmetry_rtol: float = 1e-9):
    """Check and normalize QP data; returns ``(P, q, A, l, u, batch)``.

    ``P`` (n, n) symmetric, ``q`` (n,), ``A`` (m, n) (``None``: no constraints), ``l``, ``u`` (m,)
    with ``l <= u``; ``+-inf`` (or magnitude ``>= 1e20``) bounds are infinite; ``l``/``u`` may be
    ``None`` (all ``-inf``/``+inf``). ``P`` and ``A`` may be in any scipy.sparse format. ``batch``
    is ``None`` for one problem, else ``B``: any of ``P`` (B, n, n), ``q`` (B, n), ``A`` (B, m, n),
    ``l``, ``u`` (B, m) may carry a leading batch dimension (dense arrays only); the others are
    shared by all members and broadcast. Raises ``ValueError`` naming the argument for anything
    else (None, complex, object, ragged, non-finite or misshapen input).
    """
    P = validate.matrix("P", P)
    q = float_array("q", q)
    if q.ndim not in (1, 2):
        raise ValueError(f"q must have shape (n,) or (batch, n), got {q.shape}")
    if not np.isfinite(q).all():
        raise ValueError("q contains NaN or infinite entries")
    n = q.shape[-1]
    if n == 0:
        raise ValueError("the problem has no variables (q is empty)")
    if P.ndim in (2, 3) and P.shape[-1] == P.shape[-2] and P.shape[-1] != n and P.shape[-1] > 0:
        raise ValueError(f"q must have shape (n,) = ({P.shape[-1]},) (or (batch, n)) to match P "
                         f"of shape {P.shape}, got {q.shape}")
    if A is None:
        A = np.zeros((0, n))
    A = validate.matrix("A", A)
    sparse = kkt.is_sparse(P) or kkt.is_sparse(A)
    if P.ndim not in (2, 3) or P.shape[-2:] != (n, n):
        raise ValueError(f"P must have shape (n, n) = ({n}, {n}) (or (batch, n, n)), got {P.shape}")
    if A.ndim not in (2, 3) or A.shape[-1] != n:
        raise ValueError(f"A must have shape (m, n) with n = {n} (or (batch, m, n)), got {A.shape}")
    m = A.shape[-2]
    l = _vector("l", l, m, -np.inf)
    u = _vector("u", u, m, np.inf)
    for name, b in (("l", l), ("u", u)):
        if b.ndim not in (1, 2) or b.shape[-1] != m:
            raise ValueError(f"{name} must have shape (m,) = ({m},) (or (batch, m)), got {b.shape}")
        if np.isnan(b).any():
            raise ValueError(f"{name} contains NaN entries")
    l = np.where(l <= -INF_BOUND, -np.inf, l)
    u = np.where(u >= INF_BOUND, np.inf, u)
    if (l == np.inf).any() or (u == -np.inf).any():
        raise ValueError("l must be < +inf and u > -inf")
    bad = l > u
    if bad.any():
        i = np.argwhere(bad)[0]
        raise ValueError(f"l > u at index {tuple(int(k) for k in i)}: {l[tuple(i)]:.6g} > {u[tuple(i)]:.6g}")
    sizes = {name: arr.shape[0] for name, arr, nd in
             (("P", P, 3), ("q", q, 2), ("A", A, 3), ("l", l, 2), ("u", u, 2)) if arr.ndim == nd}
    batch = None
    if sizes:
        if sparse:  # shared sparse matrices in a batch: the batch path is dense
            P = P.toarray() if kkt.is_sparse(P) else P
            A = A.toarray() if kkt.is_sparse(A) else A
        if len(set(sizes.values())) != 1:
            raise ValueError(f"batch dimensions differ: {sizes}")
        batch = next(iter(sizes.values()))
        if batch == 0:
            raise ValueError("the batch is empty")
    # symmetry (P is taken as given: OSQP users holding only the upper triangle must symmetrize)
    if kkt.is_sparse(P):
        asym = abs(P - P.T).max() if P.nnz else 0.0
        scale = abs(P).max() if P.nnz else 0.0
    else:
        asym = np.abs(P - np.swapaxes(P, -1, -2)).max(initial=0.0)
        scale = np.abs(P).max(initial=0.0)
    if asym > symmetry_rtol * max(scale, 1e-300):
        raise ValueError(
            f"P must be symmetric (max |P - P^T| = {asym:.3g}); if you hold OSQP's upper triangle "
            "U, pass U + U.T - diag(diag(U))")
    diag = P.diagonal() if kkt.is_sparse(P) else np.diagonal(P, axis1=-2, axis2=-1)
    if (diag < -symmetry_rtol * max(scale, 1e-300)).any():
        raise ValueError(f"P must be positive semidefinite; it has a negative diagonal entry "
                         f"({diag.min():.3g})")
    return P, q, A, l, u, batch


def _warm(warm_start, n, m, batch):
    """``(x0, y0, rho0)`` (unscaled) from a Result, a dict or a pair ``(x, y)``; zeros if None.

    Non-finite entries (e.g. from an infeasible solve) become 0.
    """
    shape_x = (n,) if batch is None else (batch, n)
    shape_y = (m,) if batch is None else (batch, m)
    parts = warm_parts(warm_start, "warm_start must be a Result of admm_qp, a dict with 'x' "
                       "(and 'y', 'rho'), or a pair (x, y)", ("x", "y", "rho"))
    if parts is None:
        return np.zeros(shape_x), np.zeros(shape_y), None
    x, y, rho = parts["x"], parts["y"], parts["rho"]
    x = np.zeros(shape_x) if x is None else _vector("warm_start x", x, None)
    y = np.zeros(shape_y) if y is None else _vector("warm_start y", y, None)
    if x.shape != shape_x or y.shape != shape_y:
        raise ValueError(f"warm_start has shapes x {x.shape}, y {y.shape}; expected {shape_x}, {shape_y}")
    if rho is not None:
        shape_rho = () if batch is None else (batch,)
        rho = _vector("warm_start rho", rho, None)
        if rho.shape not in ((), shape_rho):
            raise ValueError(f"warm_start rho has shape {rho.shape}; expected () or {shape_rho}")
        rho = np.broadcast_to(rho, shape_rho)
        rho = np.where(np.isfinite(rho) & (rho > 0), rho, np.nan)
    return np.where(np.isfinite(x), x, 0.0), np.where(np.isfinite(y), y, 0.0), rho


def admm_qp(P, q, A=None, l=None, u=None, *, backend="numpy", tol=1e-3, eps_abs=None, eps_rel=None,
            max_iter=4000, time_limit=math.inf, verbose=False, callback=None, check_every=25,
            seed=0, warm_start=None, dtype="float64", rho=0.1, sigma=1e-6, alpha=1.6,
            adaptive_rho=True, adaptive_rho_tolerance=5.0, scaling=10, eps_primal_infeasible=1e-4,
            eps_dual_infeasible=1e-4, check_gap=True, polish=False, polish_refine_iter=3, delta=1e-6,
            linsys="auto", mesh=None) -> Result:
    r"""Solve $\min \tfrac12 x^\top Px + q^\top x$ s.t. $l \le Ax \le u$ by OSQP's ADMM.

    Args:
        P: (n, n) symmetric positive semidefinite, dense or scipy.sparse.
        q: (n,).
        A: (m, n) dense or scipy.sparse, or ``None`` (no constraints).
        l, u: (m,) bounds, ``-inf``/``+inf`` (or magnitude $\ge 10^{20}$) where absent; ``None``
            means all infinite. Equality rows have ``l == u``.
            A batch: any of ``P`` (B, n, n), ``q`` (B, n), ``A`` (B, m, n), ``l``, ``u`` (B, m)
            may have a leading batch dimension; the rest is shared. On JAX the batch is one
            vmapped, jitted call; on numpy a loop of single solves.
        tol: sets ``eps_abs = eps_rel = tol`` unless they are given (OSQP's default 1e-3).
        eps_abs, eps_rel: absolute and relative tolerances (module docstring).
        max_iter: ADMM iterations (OSQP's default 4000).
        check_every: iterations between termination checks and penalty updates (OSQP's
            ``check_termination``, 25).
        warm_start: a previous `Result` of this solver (its ``x``, ``info['y']`` and
            ``info['rho']``), a dict with ``x`` and optionally ``y``, ``rho``, or a pair
            ``(x, y)``; for a batch, arrays with the batch dimension.
        rho, sigma, alpha: initial penalty, x-regularization, over-relaxation (0.1, 1e-6, 1.6).
        adaptive_rho, adaptive_rho_tolerance: penalty updates at checks, refactoring when the
            estimate moves by more than this factor (5).
        scaling: Ruiz equilibration rounds (10; 0 switches scaling off).
        eps_primal_infeasible, eps_dual_infeasible: infeasibility certificate tolerances (1e-4).
        check_gap: also require the duality gap test (OSQP 1.x does).
        polish, polish_refine_iter, delta: solution polishing (off by default, as in OSQP).
        linsys: ``"auto"``, ``"dense"`` (reduced system, dense Cholesky) or ``"sparse"`` (full
            KKT, LDL^T via qdldl; numpy only). See `cvxkit.solvers.kkt.choose_linsys`.
        mesh: a batch on JAX only: a ``jax.sharding.Mesh`` with one axis; each of its devices
            solves its own share of the members (no communication). For several CPU cores,
            start Python with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and pass
            ``Mesh(jax.devices(), ("batch",))``. Default: one device.
        time_limit, verbose, callback, seed, dtype: see `cvxkit.solvers.driver`.

    Returns:
        `Result` with ``x`` the primal solution (NaN when infeasible or unbounded),
        ``objective`` $\tfrac12 x^\top Px + q^\top x$ (``+inf`` for primal infeasible, ``-inf``
        for unbounded), ``primal_residual`` $\lVert \hat Ax - \hat z\rVert_\infty$,
        ``dual_residual`` $\lVert \hat Px + \hat q + \hat A^\top \hat y\rVert_\infty$ (in the
        normalized units of the module docstring, as the tolerances), and in ``info``: ``y``
        (duals, user units; $y > 0$ on upper bounds, $< 0$ on lower), ``z``
        ($= \Pi_{[l,u]}(Ax)$ at convergence), ``gap``, ``eps_prim``, ``eps_dual``, ``eps_gap``
        (normalized units), ``rho`` (final), ``rho_updates`` (refactorizations after the first),
        ``linsys``, ``polish`` (``"off"``, ``"success"``, ``"failed"``) and, when infeasible,
        ``certificate`` ($\delta y$ or $\delta x$, unscaled, unit infinity norm, checked by
        `certificate_error`). ``message`` says why a certificate was or was not accepted. The history holds, per check: ``iteration``, ``objective``,
        ``prim_res``, ``dual_res``, ``gap``, ``rho``. ``dual`` is ``info['y']``.

        A batch returns one `Result` with a leading batch axis on every array field: ``x``
        (B, n), ``dual`` (B, m), ``objective`` (B,), ``status`` a numpy array (dtype object)
        of one `Status` per member, ``iterations``, ``primal_residual``, ``dual_residual``
        (B,); ``message`` counts the members per status ("k of B members optimal; ...") and
        ``converged`` is true when every member is optimal. ``info`` keeps per-member arrays
        (``y``, ``z``, ``statuses`` as a list, ``iterations``, ``objectives``, ``gap``,
        ``rho``, ``certificates``, ``messages``, ...); ``solve_time`` and ``history`` are
        the batch's.
    """
    t_setup = time.perf_counter()
    P, q, A, l, u, batch = validate_qp(P, q, A, l, u)
    v = validate
    tol = v.positive("tol", tol)
    eps_abs = v.positive("eps_abs", tol if eps_abs is None else eps_abs)
    eps_rel = v.positive("eps_rel", tol if eps_rel is None else eps_rel)
    rho0 = v.positive("rho", rho)
    sigma = v.positive("sigma", sigma)
    alpha = v.positive("alpha", alpha, upper=2.0)
    v.positive("delta", delta)
    eps_primal_infeasible = v.positive("eps_primal_infeasible", eps_primal_infeasible)
    eps_dual_infeasible = v.positive("eps_dual_infeasible", eps_dual_infeasible)
    if v.positive("adaptive_rho_tolerance", adaptive_rho_tolerance) < 1:
        raise ValueError(f"adaptive_rho_tolerance must be >= 1, got {adaptive_rho_tolerance!r}")
    scaling = v.integer("scaling", scaling, minimum=0)
    polish_refine_iter = v.integer("polish_refine_iter", polish_refine_iter, minimum=0)
    check_every = v.integer("check_every", check_every)
    max_iter = v.integer("max_iter", max_iter)
    adaptive_rho, check_gap, polish = (v.boolean(name, val) for name, val in (
        ("adaptive_rho", adaptive_rho), ("check_gap", check_gap), ("polish", polish)))
    linsys = v.choice("linsys", linsys, ("auto", "dense", "sparse"))
    if not isinstance(backend, Backend):
        backend = v.choice("backend", backend, ("numpy", "jax"))
    if (backend == "jax" or batch is not None) and linsys == "sparse":
        raise ValueError("the JAX back end and batches solve the dense reduced system: use "
                         "linsys='auto' or 'dense'")
    if mesh is not None and (backend != "jax" or batch is None):
        raise ValueError("mesh= splits a batch over devices: it needs backend='jax' and a batch")
    if mesh is not None and len(getattr(mesh, "axis_names", ())) != 1:
        raise ValueError(f"mesh must be a jax.sharding.Mesh with one axis, got {mesh!r}")
    if host_devices(mesh) and (q.shape[-1] > UNROLLED_MAX_N or polish):
        raise ValueError(
            f"a mesh of several CPU devices takes batches of at most {UNROLLED_MAX_N} variables "
            f"without polish (got n = {q.shape[-1]}, polish={bool(polish)}): XLA:CPU deadlocks "
            "when two host devices make LAPACK calls at once, and larger or polished members "
            "need them. Use one device (mesh=None) or GPUs.")
    if isinstance(max_iter, np.integer):
        max_iter = int(max_iter)
    opts = Options(tol=min(eps_abs, eps_rel), max_iter=max_iter, time_limit=time_limit,
                   verbose=verbose, callback=callback, check_every=None, seed=seed, dtype=dtype)
    bk = get_backend(backend, dtype)
    n, m = q.shape[-1], A.shape[-2]
    x0, y0, rho_w = _warm(warm_start, n, m, batch)
    rho_start = np.where(np.isnan(rho_w), rho0, rho_w) if rho_w is not None else \
        (np.full(batch, rho0) if batch is not None else rho0)
    cfg = dict(sigma=sigma, alpha=alpha, eps_abs=eps_abs, eps_rel=eps_rel, eps_pinf=eps_primal_infeasible,
               eps_dinf=eps_dual_infeasible, rho_tolerance=float(adaptive_rho_tolerance),
               adaptive=bool(adaptive_rho), check_gap=bool(check_gap), block=int(check_every),
               max_iter=int(max_iter))
    pol = (bool(polish), float(delta), int(polish_refine_iter))
    if batch is not None and backend == "numpy":
        return _numpy_batch_loop(P, q, A, l, u, x0, y0, rho_start, batch, t_setup, opts, cfg,
                                 int(scaling), pol)
    if batch is not None:
        return _jax_batch(bk, P, q, A, l, u, x0, y0, rho_start, batch, t_setup, opts, cfg,
                          int(scaling), pol, mesh)
    if backend == "jax":
        return _jax_single(bk, P, q, A, l, u, x0, y0, float(rho_start), t_setup, opts, cfg,
                           int(scaling), pol)
    return _numpy_single(P, q, A, l, u, x0, y0, float(rho_start), t_setup, opts, cfg, int(scaling),
                         pol, linsys)


def _settings(bk, cfg) -> Settings:
    # numpy scalars on both back ends: compiled JAX code takes them as they are (cheaper than a
    # device transfer each). np.bool_, not bool: the flags are negated with ``~`` (``~True == -2``)
    def f(v):
        return np.asarray(v, dtype=bk.dtype)

    i = np.int32 if bk.name == "jax" else int
    b = np.bool_
    return Settings(f(cfg["sigma"]), f(cfg["alpha"]), f(cfg["eps_abs"]), f(cfg["eps_rel"]),
                    f(cfg["eps_pinf"]), f(cfg["eps_dinf"]), f(cfg["rho_tolerance"]),
                    b(cfg["adaptive"]), b(cfg["check_gap"]), i(cfg["block"]), i(cfg["max_iter"]))


def _driver_opts(opts: Options, cfg, jax: bool, batched: bool = False) -> Options:
    """Driver options: one driver step is one block of ``check_every`` iterations; JAX syncs with
    the host every ~100 iterations (a batch: ~500, its loop also stops to compact)."""
    blocks = -(-cfg["max_iter"] // cfg["block"])
    sync = max(1, (500 if batched else 100) // cfg["block"]) if jax else 1
    return Options(tol=opts.tol, max_iter=blocks, time_limit=opts.time_limit, verbose=opts.verbose,
                   callback=opts.callback, check_every=sync, seed=opts.seed, dtype=opts.dtype)


def _final_status(bk, sp, d, s: State, driver_status: Status) -> Status:
    """`loop_verdict` for a numpy run (the relaxed flag computed here)."""
    relaxed = s.flag
    if int(s.flag) == RUNNING:
        relaxed = termination_flag(bk, sp, d, s, residuals(bk, sp, d, s.x, s.z, s.y), relax=10.0)
    return loop_verdict(s.flag, driver_status, relaxed)


def _history(out):
    h = as_numpy_history(out.history)
    if "iterations" in h:
        h["iteration"] = h.pop("iterations").astype(int)
    return h


def _unscale(d_D, d_E, d_c, x, z, y):
    return x * d_D, z / d_E, y * d_E / d_c


def _result_single(P, q, A, x, z, y, s_np: dict, status, out, setup_time, backend, linsys,
                   polish_info, cert, message="") -> Result:
    """Assemble the `Result` of one problem from unscaled numpy vectors."""
    info = {"y": y, "z": z, "gap": s_np["gap"], "eps_prim": s_np["eps_prim"],
            "eps_dual": s_np["eps_dual"], "eps_gap": s_np["eps_gap"], "rho": s_np["rho"],
            "rho_updates": s_np["n_refactor"], "linsys": linsys, "polish": polish_info}
    if status in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE):
        info.update(certificate=cert, y=np.full_like(y, np.nan))
        x = np.full_like(x, np.nan)
        obj = INFEASIBLE_OBJECTIVE[status]
    else:
        obj = float(0.5 * x @ (P @ x) + q @ x)
    return Result(x=x, status=status, objective=obj, primal_residual=s_np["prim_res"],
                  dual_residual=s_np["dual_res"], iterations=s_np["k"], solve_time=out.solve_time,
                  setup_time=setup_time, compile_time=out.compile_time, history=_history(out),
                  backend=backend, method="admm", info=info, message=message, dual=info["y"])


def certificate_error(P, q, A, l, u, status, v, eps_pinf: float, eps_dinf: float):
    r"""Why ``v`` is not an infeasibility certificate of the QP ``(P, q, A, l, u)`` (one problem,
    the user's unscaled data), or ``None`` if it is one (module docstring, "Checks").

    ``status`` primal_infeasible: ``v`` is $y$ with $y_i > 0$ only where $u_i < \infty$ and
    $y_i < 0$ only where $l_i > -\infty$, $|(A^\top y)_j| \le \epsilon_{pinf}\,
    \max_i(|A_{ij}|/a_i)\,\max_i a_i|y_i|$ and
    $u^\top y_+ + l^\top y_- < -\epsilon_{pinf}\sum_i |b_i||y_i|$. dual_infeasible: ``v`` is
    $d$ with $|(Pd)_j| \le \epsilon_{dinf}\max_k|P_{jk}|\,\lVert d\rVert_\infty$,
    $q^\top d < -\epsilon_{dinf}|q|^\top|d|$ and $(Ad)_i \le \epsilon_{dinf}a_i\lVert d
    \rVert_\infty$ where $u_i < \infty$, $\ge -\epsilon_{dinf}a_i\lVert d\rVert_\infty$ where
    $l_i > -\infty$. Here $a_i = \max_j|A_{ij}|$ (1 for an empty row).
    """
    import scipy.sparse as sps

    if v is None:
        return "no certificate"
    v = np.asarray(v, dtype=np.float64)
    if not np.isfinite(v).all():
        return "the certificate has non-finite entries"
    absA = abs(A) if sps.issparse(A) else np.abs(A)
    a = np.asarray(absA.max(axis=1).todense()).ravel() if sps.issparse(A) and A.shape[1] else \
        (np.max(absA, axis=1, initial=0.0) if not sps.issparse(A) else np.zeros(A.shape[0]))
    a = np.where(a > 0, a, 1.0)
    lf, uf = np.isfinite(l), np.isfinite(u)
    if status is Status.PRIMAL_INFEASIBLE:
        if (v[~uf] > 0).any() or (v[~lf] < 0).any():
            return "y has a sign on a row whose bound on that side is infinite"
        ny = float(np.max(a * np.abs(v), initial=0.0))
        if ny == 0:
            return "y = 0"
        aty = np.abs(np.asarray(A.T @ v)).ravel()
        colhat = (sps.diags(1.0 / a) @ absA).max(axis=0) if sps.issparse(A) else \
            np.max(absA / a[:, None], axis=0, initial=0.0)
        colhat = np.asarray(colhat.todense()).ravel() if sps.issparse(colhat) else colhat
        bad = aty > eps_pinf * colhat * ny
        if bad.any():
            return f"A^T y is not ~0: |(A^T y)_j| / (max_i |A_ij|/a_i * max_i a_i|y_i|) = " \
                f"{float(np.max(aty[bad] / np.maximum(colhat[bad] * ny, 1e-300))):.3g} > {eps_pinf:g}"
        up, lo = (v > 0) & uf, (v < 0) & lf
        sig = float(np.sum(u[up] * v[up]) + np.sum(l[lo] * v[lo]))
        mag = float(np.sum(np.abs(u[up] * v[up])) + np.sum(np.abs(l[lo] * v[lo])))
        if not sig < -eps_pinf * mag:
            return f"u'y+ + l'y- = {sig:.3g} is not < -{eps_pinf:g} * {mag:.3g}"
        return None
    if status is Status.DUAL_INFEASIBLE:
        nd = float(np.max(np.abs(v), initial=0.0))
        if nd == 0:
            return "d = 0"
        absP = abs(P) if sps.issparse(P) else np.abs(P)
        prow = np.asarray(absP.max(axis=1).todense()).ravel() if sps.issparse(P) else \
            np.max(absP, axis=1, initial=0.0)
        pd = np.abs(np.asarray(P @ v)).ravel()
        if (pd > eps_dinf * prow * nd).any():
            return "P d is not ~0 relative to max_k |P_jk| ||d||"
        qd, mag = float(q @ v), float(np.abs(q) @ np.abs(v))
        if not qd < -eps_dinf * mag:
            return f"q'd = {qd:.3g} is not < -{eps_dinf:g} |q|'|d| = {-eps_dinf * mag:.3g}"
        ad = np.asarray(A @ v).ravel()
        tol = eps_dinf * a * nd
        if (ad[uf] > tol[uf]).any() or (ad[lf] < -tol[lf]).any():
            return "A d is not in the recession cone of [l, u]"
        return None
    return None


def _verified(status, cert, P, q, A, l, u, cfg):
    """``(status, message)``: a certificate status is kept only if `certificate_error` finds
    nothing wrong with the certificate on the user's data; else ``numerical_error``."""
    if status not in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE):
        return status, ""
    why = certificate_error(P, q, A, l, u, status, cert, cfg["eps_pinf"], cfg["eps_dinf"])
    if why is None:
        return status, f"{status.value}: the certificate holds on the unscaled data"
    return Status.NUMERICAL_ERROR, (f"stopped on a {status.value} certificate candidate that "
                                    f"does not hold on the unscaled data: {why}")


#: sparse data solved with the dense reduced system is made dense below this many entries
DENSIFY_MAX = 2_000_000


def _numpy_single(P, q, A, l, u, x0, y0, rho0, t_setup, opts, cfg, scaling, pol, linsys) -> Result:
    bk = get_backend("numpy")
    st = _settings(bk, cfg)
    if linsys == "auto":
        linsys = kkt.choose_linsys(P, A)
    n, m = q.shape[0], A.shape[0]
    if linsys == "dense" and (kkt.is_sparse(P) or kkt.is_sparse(A)) and m * n + n * n <= DENSIFY_MAX:
        # small: dense arrays avoid scipy.sparse's per-product overhead (~70 us a call)
        P = P.toarray() if kkt.is_sparse(P) else P
        A = A.toarray() if kkt.is_sparse(A) else A
    try:
        if kkt.is_sparse(P) or kkt.is_sparse(A) or linsys == "sparse":
            import scipy.sparse as sps

            d, s, sp = _setup_numpy_sparse(sps.csc_matrix(P), q, sps.csc_matrix(A), l, u, x0, y0,
                                           rho0, st, scaling, linsys)
        else:
            d, s = _setup_dense(bk, P, q, A, l, u, x0, y0, rho0, st, scaling)
            sp = QP_DENSE
    except np.linalg.LinAlgError as e:
        return _failed(q, A, str(e), time.perf_counter() - t_setup, "numpy")
    setup_time = time.perf_counter() - t_setup
    alg = ALG_DENSE if sp is QP_DENSE else ALG_SPARSE
    try:
        out = run(alg, bk, s, d, _driver_opts(opts, cfg, jax=False))
    except np.linalg.LinAlgError as e:  # a refactorization failed
        return _failed(q, A, str(e), setup_time, "numpy")
    s = out.state
    status = _final_status(bk, sp, d, s, out.status)
    polish_info = "off"
    if pol[0] and status is Status.OPTIMAL:
        s, ok = _polish_state(bk, sp, d, s, pol[1], pol[2],
                              sparse=kkt.is_sparse(kkt.as_scipy(d.P)) or A.shape[0] + A.shape[1] > 3000)
        polish_info = "success" if ok else "failed"
    x, z, y = _unscale(d.D, d.E, d.c, s.x, s.z, s.y)
    cert = certificate(status, d.E * _box_polar(bk, d, s.dy), d.D * s.dx)
    status, message = _verified(status, cert, P, q, A, l, u, cfg)
    s_np = {k: float(getattr(s, k)) for k in ("gap", "eps_prim", "eps_dual", "eps_gap", "rho",
                                               "prim_res", "dual_res")}
    s_np.update(k=int(s.k), n_refactor=int(s.n_refactor))
    label = "dense reduced (Cholesky)" if sp is QP_DENSE else f"sparse KKT ({d.lin.backend} LDL^T)"
    return _result_single(P, q, A, x, z, y, s_np, status, out, setup_time, "numpy", label,
                          polish_info, cert, message)


def _failed(q, A, msg, setup_time, backend):
    n = q.shape[-1]
    return Result(x=np.full(n, np.nan), status=Status.NUMERICAL_ERROR, objective=float("nan"),
                  setup_time=setup_time, backend=backend, method="admm",
                  dual=np.full(A.shape[-2], np.nan), message=f"factorization failed: {msg}",
                  info={"error": f"factorization failed: {msg}"})


# --- JAX ------------------------------------------------------------------------------------
_AOT: dict = {}


def _aot(bk, name, fn, *args, donate=()):
    """``fn`` jitted and compiled for the shapes of ``args`` (cached); returns (compiled, secs).
    ``donate``: positions of arguments whose buffers the call may reuse (then invalid)."""
    from cvxkit.solvers.driver import signature

    jax = bk._jax
    key = (name, bk, *signature(jax, args))
    if key in _AOT:
        return _AOT[key], 0.0
    t = time.perf_counter()
    _AOT[key] = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
    return _AOT[key], time.perf_counter() - t


@functools.lru_cache(maxsize=None)
def _setup_callable(bk, scaling: int, batched: bool, sp: Splitting):

    def one(P, q, A, l, u, x0, y0, rho0, st):
        return _setup_dense(bk, P, q, A, l, u, x0, y0, rho0, st, scaling, sp)

    if not batched:
        return one
    return bk._jax.vmap(one, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None))


@functools.lru_cache(maxsize=None)
def _finish_callable(bk, polish: bool, refine: int, batched: bool):
    """Polish (optional), relaxed flag, certificates' inputs, unscaled vectors; jit/vmap-able."""

    def one(d: Data, s: State, delta):
        ok = bk.xp.asarray(False)
        if polish:
            s_pol, ok = _polish_state(bk, QP_DENSE, d, s, delta, refine)
            ok = ok & (s.flag == SOLVED)
            s = bk._jax.tree_util.tree_map(lambda a, b: bk.xp.where(ok, a, b), s_pol, s)
        r = residuals(bk, QP_DENSE, d, s.x, s.z, s.y)
        relaxed = termination_flag(bk, QP_DENSE, d, s, r, relax=10.0)
        x, z, y = _unscale(d.D, d.E, d.c, s.x, s.z, s.y)
        cert_y = d.E * _box_polar(bk, d, s.dy)
        cert_x = d.D * s.dx
        return dict(x=x, z=z, y=y, flag=s.flag, relaxed=relaxed, k=s.k, prim_res=s.prim_res,
                    dual_res=s.dual_res, gap=s.gap, eps_prim=s.eps_prim, eps_dual=s.eps_dual,
                    eps_gap=s.eps_gap, rho=s.rho, n_refactor=s.n_refactor, polished=ok,
                    cert_y=cert_y, cert_x=cert_x)

    if not batched:
        return one
    return bk._jax.vmap(one, in_axes=(0, 0, None))


def _jax_inputs(bk, P, q, A, l, u, x0, y0, rho0, batch):
    """Dense arrays in the back end's dtype (broadcast over the batch when there is one); numpy,
    which compiled code takes as they are."""
    def dense(M):
        return M.toarray() if kkt.is_sparse(M) else M

    P, A = dense(P), dense(A)
    if batch is not None:
        n, m = q.shape[-1], A.shape[-2]
        P = np.broadcast_to(P, (batch, n, n))
        A = np.broadcast_to(A, (batch, m, n))
        q = np.broadcast_to(q, (batch, n))
        l = np.broadcast_to(l, (batch, m))
        u = np.broadcast_to(u, (batch, m))
        rho0 = np.broadcast_to(np.asarray(rho0, dtype=np.float64), (batch,))
    return tuple(np.asarray(v, dtype=bk.dtype) for v in (P, q, A, l, u, x0, y0, rho0))


def _jax_run(bk, P, q, A, l, u, x0, y0, rho0, batch, opts, cfg, scaling, pol, mesh=None):
    """Set-up, loop and finish on JAX; returns (finished dict of numpy arrays, out, times).

    A batch runs on the devices of ``mesh`` (default: one device), each on its own block of
    members (`_per_device`); it is padded with copies of its last member to a multiple of the
    number of devices, and the copies are dropped at the end."""
    jax = bk._jax
    batched = batch is not None
    with bk.precision():
        args = _jax_inputs(bk, P, q, A, l, u, x0, y0, rho0, batch)
        st = _settings(bk, cfg)
        inverse = batched and q.shape[-1] <= INVERSE_MAX_N
        sp = (QP_DENSE_INVERSE_XLA if host_devices(mesh) else QP_DENSE_INVERSE) if inverse else \
            QP_DENSE
        setup_fn = _setup_callable(bk, scaling, batched, sp)
        finish_fn = _finish_callable(bk, pol[0], pol[2], batched)
        if batched:
            mesh = mesh if mesh is not None else _one_device_mesh(_default_device(jax))
            pad = -batch % mesh.devices.size
            args = tuple(np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a
                         for a in args)
            setup_fn = _per_device(bk, mesh, setup_fn, (True,) * 8 + (False,))
            finish_fn = _per_device(bk, mesh, finish_fn, (True, True, False))
        setup, c1 = _aot(bk, ("setup", scaling, batched, sp, mesh), setup_fn, *args, st)
        t0 = time.perf_counter()
        d, s = setup(*args, st)
        if batched and pad:  # the padding copies start stopped: they never run, nor count
            s = s._replace(flag=jax.device_put(s.flag.at[batch:].set(SOLVED), s.flag.sharding))
        bk.block(s.x)
        setup_time = time.perf_counter() - t0
        alg = {QP_DENSE_INVERSE: ALG_INVERSE_BATCH, QP_DENSE_INVERSE_XLA: ALG_INVERSE_XLA_BATCH,
               QP_DENSE: ALG_DENSE_BATCH}[sp] if batched else ALG_DENSE
        dopts = _driver_opts(opts, cfg, jax=True, batched=batched)
        out = _run_batch(alg, bk, s, d, dopts, mesh) if batched else run(alg, bk, s, d, dopts)
        delta = np.asarray(pol[1], dtype=bk.dtype)
        finish, c2 = _aot(bk, ("finish", pol[0], pol[2], batched, mesh), finish_fn, d, out.state,
                          delta)
        t1 = time.perf_counter()
        fin = jax.device_get(finish(d, out.state, delta))
        if batched:
            fin = {k: v[:batch] for k, v in fin.items()}
        finish_time = time.perf_counter() - t1
    return fin, out, setup_time, finish_time, c1 + c2


def _default_device(jax):
    """The device JAX would use (``jax.default_device`` when set)."""
    dev = jax.config.jax_default_device
    return dev if isinstance(dev, jax.Device) else jax.devices()[0]


@functools.lru_cache(maxsize=None)
def _one_device_mesh(device):
    import jax

    return jax.sharding.Mesh(np.array([device]), ("batch",))


def _per_device(bk, mesh, fn, in_batched, out_batched=True):
    """``fn`` run by every device of ``mesh`` on its own block of the batch (``jax.shard_map``,
    no communication). ``in_batched[i]``: argument ``i`` is split over the batch (else each
    device gets all of it). ``out_batched`` (a bool, or one per output of a tuple): that output
    is split over the batch, else it is per device (a leading axis of one entry per device)."""
    jax = bk._jax
    spec = jax.sharding.PartitionSpec
    axis = mesh.axis_names[0]

    def local(*args):
        out = fn(*args)
        if out_batched is True:
            return out
        return tuple(o if b else jax.tree_util.tree_map(lambda v: v[None], o)
                     for o, b in zip(out, out_batched))

    return jax.shard_map(local, mesh=mesh, in_specs=tuple(spec(axis) if b else spec()
                                                          for b in in_batched),
                         out_specs=spec(axis), check_vma=False)


@functools.lru_cache(maxsize=None)
def _compaction_fns(bk):
    """``scatter(full, idx, part)`` and ``gather(full, idx)`` over whole pytrees (compiled by
    `_aot`)."""
    tm = bk._jax.tree_util.tree_map

    def scatter(full, idx, part):
        return tm(lambda F, c: F.at[idx].set(c), full, part)

    def gather(full, idx):
        return tm(lambda F: F[idx], full)

    return scatter, gather


def _run_batch(alg: Algorithm, bk: Backend, s: State, d: Data, opts: Options, mesh):
    """The driver loop for a batch on the devices of ``mesh``, with compaction.

    Under ``vmap`` every member pays for every iteration until the slowest one stops. So the
    devices step their blocks together until at most ``COMPACT_FRACTION`` of the block size
    holds the running members of the busiest block (the compiled loop stops there by itself:
    `_batch_stopped`, with the counts of all devices); then every block is cut to the same
    smaller size (a power of two, at least ``MIN_BUCKET``, padded with copies of a stopped
    member, which stays frozen) holding its running members, and the loop goes on; the stopped
    members are written back. Members never leave their device, and every member gets the
    iterations it would get on one device. Each block size is compiled once (cached; reported
    in ``compile_time``).
    """
    from cvxkit.solvers.driver import Run, _advance_fn, _Monitor

    scatter, gather = _compaction_fns(bk)
    jax = bk._jax
    stopped = functools.partial(_batch_stopped, axis=mesh.axis_names[0])  # the host's test below
    advance = _advance_fn(alg._replace(converged=stopped), bk)

    def advance_monitored(s, d, n):
        s, i = advance(s, d, n)
        return s, (i, alg.monitor(bk, s, d))

    fns = {"advance": _per_device(bk, mesh, advance_monitored, (True, True, False), (True, False)),
           "monitor": _per_device(bk, mesh, lambda s, d: (alg.monitor(bk, s, d),), (True, True),
                                  (False,)),
           "scatter": _per_device(bk, mesh, scatter, (True, True, True)),
           "gather": _per_device(bk, mesh, gather, (True, True))}
    compile_time = 0.0
    found = {}  # within this run the shapes follow from the batch sizes: skip _aot's signature

    def call(name, *args, donate=()):
        nonlocal compile_time
        key = (name, *(jax.tree_util.tree_leaves(a)[0].shape for a in args[:2]))
        if key not in found:
            found[key], c = _aot(bk, (name, alg, mesh), fns[name], *args, donate=donate)
            compile_time += c
        return found[key](*args)

    def host(v):
        """Monitor values of all devices combined."""
        v = jax.device_get(v)
        return {k: (int(v[k].sum()) if k == "running" else v[k].max()) for k in v}

    n_dev = mesh.devices.size
    t0 = time.perf_counter()
    mon = _Monitor(alg.name, opts, t0)
    full_s, full_d = s, d
    block = s.k.shape[0] // n_dev
    idx = np.tile(np.arange(block), (n_dev, 1))  # per device: positions in its block of full_s
    it = 0
    values = host(call("monitor", s, d)[0])
    status = mon.check(0, values, values["running"] == 0)
    while status is None:
        s, (i, values) = call("advance", s, d, min(opts.check_every, opts.max_iter - it))
        it += int(np.max(jax.device_get(i)))  # the same on every device
        values = host(values)
        status = mon.check(it, values, values["running"] == 0)
        flags = np.asarray(s.flag).reshape(n_dev, -1)
        size = int(compacted_size(np, (flags == RUNNING).sum(axis=1).max(), flags.shape[1]))
        if status is None and size > 0:
            new_idx = np.empty((n_dev, size), dtype=idx.dtype)
            for k in range(n_dev):
                keep = idx[k][flags[k] == RUNNING]
                new_idx[k, :keep.size] = keep
                new_idx[k, keep.size:] = idx[k][flags[k] != RUNNING][0]
            full_s = call("scatter", full_s, idx.ravel(), s, donate=(0,))  # in place
            idx = new_idx
            s, d = call("gather", (full_s, full_d), idx.ravel())
    if idx.shape[1] == block:  # never compacted: s is the whole batch, in order
        full_s = s
    else:
        full_s = call("scatter", full_s, idx.ravel(), s, donate=(0,))
    return Run(full_s, status, it, mon.history, time.perf_counter() - t0 - compile_time,
               compile_time)


def _jax_single(bk, P, q, A, l, u, x0, y0, rho0, t_setup, opts, cfg, scaling, pol) -> Result:
    pre = time.perf_counter() - t_setup
    fin, out, setup_time, finish_time, compile_extra = _jax_run(
        bk, P, q, A, l, u, x0, y0, rho0, None, opts, cfg, scaling, pol)
    status = loop_verdict(fin["flag"], out.status, fin["relaxed"])
    out = out._replace(solve_time=out.solve_time + finish_time,
                       compile_time=out.compile_time + compile_extra)
    x, z, y = (np.asarray(fin[k], dtype=np.float64) for k in ("x", "z", "y"))
    cert = certificate(status, fin["cert_y"], fin["cert_x"])
    status, message = _verified(status, cert, P, q, A, l, u, cfg)
    s_np = {k: float(fin[k]) for k in ("gap", "eps_prim", "eps_dual", "eps_gap", "rho", "prim_res",
                                       "dual_res")}
    s_np.update(k=int(fin["k"]), n_refactor=int(fin["n_refactor"]))
    polish_info = "off" if not (pol[0] and status is Status.OPTIMAL) else \
        ("success" if bool(fin["polished"]) else "failed")
    return _result_single(P, q, A, x, z, y, s_np, status, out, pre + setup_time, "jax",
                          "dense reduced (Cholesky, XLA)", polish_info, cert, message)


def _jax_batch(bk, P, q, A, l, u, x0, y0, rho0, batch, t_setup, opts, cfg, scaling, pol,
               mesh) -> Result:
    pre = time.perf_counter() - t_setup
    fin, out, setup_time, finish_time, compile_extra = _jax_run(
        bk, P, q, A, l, u, x0, y0, rho0, batch, opts, cfg, scaling, pol, mesh)
    statuses = [loop_verdict(f, out.status, r) for f, r in zip(fin["flag"], fin["relaxed"])]
    out = out._replace(solve_time=out.solve_time + finish_time,
                       compile_time=out.compile_time + compile_extra)
    linsys = "dense reduced (explicit inverse, XLA)" if q.shape[-1] <= INVERSE_MAX_N else \
        "dense reduced (Cholesky, XLA)"
    return _batch_result(P, q, A, fin, statuses, out, pre + setup_time, "jax", pol, linsys,
                         l=l, u=u, cfg=cfg)


def _batch_result(P, q, A, fin, statuses, out, setup_time, backend, pol,
                  linsys="dense reduced (Cholesky)", l=None, u=None, cfg=None) -> Result:
    B, n = np.shape(fin["x"])
    x = np.array(fin["x"], dtype=np.float64)
    y = np.array(fin["y"], dtype=np.float64)
    Pb = np.broadcast_to(P.toarray() if kkt.is_sparse(P) else P, (B, n, n))
    qb = np.broadcast_to(q, (B, n))
    objs = np.einsum("bi,bij,bj->b", x, Pb, x) * 0.5 + np.einsum("bi,bi->b", qb, x)
    certs = [None] * B
    statuses = list(statuses)
    messages = list(fin.get("messages", [""] * B))
    pick = lambda M, i, nd: M[i] if np.ndim(M) == nd else M  # noqa: E731
    for i, stt in enumerate(statuses):
        if stt in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE):
            certs[i] = certificate(stt, fin["cert_y"][i], fin["cert_x"][i])
            if cfg is not None:  # (members of a numpy batch were verified by their own solve)
                statuses[i], messages[i] = _verified(stt, certs[i], pick(P, i, 3), pick(q, i, 2),
                                                     pick(A, i, 3), pick(l, i, 2), pick(u, i, 2),
                                                     cfg)
        stt = statuses[i]
        if stt in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE):
            objs[i] = INFEASIBLE_OBJECTIVE[stt]
            x[i] = np.nan
            y[i] = np.nan
    status = np.empty(B, dtype=object)
    status[:] = statuses
    polished = np.asarray(fin.get("polished", np.zeros(B, bool)))
    info = {"y": y, "z": np.asarray(fin["z"]), "statuses": statuses,
            "iterations": np.asarray(fin["k"], dtype=int), "objectives": objs,
            "prim_res": np.asarray(fin["prim_res"]), "dual_res": np.asarray(fin["dual_res"]),
            "gap": np.asarray(fin["gap"]), "eps_prim": np.asarray(fin["eps_prim"]),
            "eps_dual": np.asarray(fin["eps_dual"]), "eps_gap": np.asarray(fin["eps_gap"]),
            "rho": np.asarray(fin["rho"]),
            "rho_updates": np.asarray(fin["n_refactor"], dtype=int), "certificates": certs,
            "polish": "off" if not pol[0] else polished, "linsys": linsys, "messages": messages}
    return Result(x=x, status=status, objective=objs, dual=y,
                  primal_residual=np.asarray(fin["prim_res"], dtype=np.float64),
                  dual_residual=np.asarray(fin["dual_res"], dtype=np.float64),
                  iterations=np.asarray(fin["k"], dtype=int), solve_time=out.solve_time,
                  setup_time=setup_time, compile_time=out.compile_time, history=_history(out),
                  backend=backend, method="admm", info=info,
                  message=batch_message(statuses, messages))



def _numpy_batch_loop(P, q, A, l, u, x0, y0, rho0, batch, t_setup, opts, cfg, scaling, pol) -> Result:
    """numpy: a batch is solved member by member (the JAX back end vmaps it)."""
    def member(M, i, nd):
        return M[i] if np.ndim(M) == nd else M

    results = []
    for i in range(batch):
        results.append(_numpy_single(
            member(P, i, 3), member(q, i, 2), member(A, i, 3), member(l, i, 2), member(u, i, 2),
            x0[i], y0[i], float(np.asarray(rho0)[i]), time.perf_counter(), opts, cfg, scaling, pol,
            "dense"))
    fin = {"x": np.stack([r.x for r in results]),
           # a member whose factorization failed has no y, z: NaN, as its x
           "y": np.stack([r.info.get("y", np.full(np.shape(y0)[-1], np.nan)) for r in results]),
           "z": np.stack([r.info.get("z", np.full(np.shape(y0)[-1], np.nan)) for r in results]),
           "k": [r.iterations for r in results],
           "prim_res": [r.primal_residual for r in results],
           "dual_res": [r.dual_residual for r in results],
           **{k: [r.info.get(k, np.nan) for r in results]
              for k in ("gap", "eps_prim", "eps_dual", "eps_gap", "rho")},
           "n_refactor": [r.info.get("rho_updates", 0) for r in results],
           "polished": np.array([r.info.get("polish") == "success" for r in results]),
           "messages": [r.message for r in results]}
    cy = [r.info.get("certificate") if r.status is Status.PRIMAL_INFEASIBLE else None for r in results]
    cx = [r.info.get("certificate") if r.status is Status.DUAL_INFEASIBLE else None for r in results]
    fin["cert_y"], fin["cert_x"] = cy, cx
    statuses = [r.status for r in results]
    from cvxkit.solvers.driver import Run

    out = Run(None, Status.OPTIMAL, 0, {}, sum(r.solve_time for r in results), 0.0)
    res = _batch_result(P, q, A, fin, statuses, out, time.perf_counter() - t_setup
                        - out.solve_time, "numpy", pol)
    return res
