r"""The prox-ADMM core with a cached factorization: one loop for every instance.

Problem: $\min_x \tfrac12 x^\top P x + q^\top x$ s.t. $Ax \in C$, $P \succeq 0$, $C$ closed
and convex. The QP instance (OSQP: $C = [l, u]$) is `cvxkit.solvers.admm_box`, solved by
`cvxkit.solvers.admm_qp.admm_qp`; batches on JAX run through `cvxkit.solvers.admm_batch`.

**The iteration.** Write the constraint as $z = Ax \in C$ for a closed convex set $C$ (for a
QP, the box $[l, u]$). One relaxed ADMM iteration with penalties $\rho$ (one per row),
$\sigma > 0$ and relaxation $\alpha \in (0, 2)$ is

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
(`cvxkit.solvers.admm_box`) is one; a family with another set $C$ supplies its own `Splitting`
and reuses the loop, the termination tests, the infeasibility certificates and the adaptive
penalty.

**Any ADMM instance** reuses the block loop and the penalty estimate, which know nothing of the
iteration: `cycle` (one driver step: a block of iterations, a check, a penalty update; a stopped
state stays put), `repeat` (the block: untracked iterations carrying only the iterates, then a
tracked one) and `penalty_estimate` (OSQP's $\hat\rho$, clipped, and the tolerance test). The
prox instance of `cvxkit.solvers.relu_admm` (a nonsmooth $g(Ax)$ by its prox, scaled duals,
Boyd's stopping rule) is built on them.

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
  invariant under the scalings above; `cvxkit.solvers.admm_box.certificate_error` states them
  on the user's data and re-checks every certificate on the unscaled data before it is
  reported: one that fails there gives ``numerical_error``, never a certificate status). Primal infeasible (when
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
(5x). With ``eps_rel = 0`` (purely absolute tests, as qpbenchmark's) the residuals are
balanced against what is asked of them instead: $\rho_{new} = \rho\sqrt{(r_p/\epsilon_p) /
(r_d/\epsilon_d)}$ in the normalized units of the checks. Balancing relative residuals there
can leave one residual far above its absolute tolerance while the other is far below (on
QPCBOEI1 at $10^{-3}$: $\rho$ stayed at 0.5 with $r_p = 26$ and $r_d = 3\times10^{-3}$ for
400,000 iterations; balanced against the tolerances it is solved in 63,000). On the shared
Maros-Meszaros half at a 10 s limit this solved 53 problems instead of 47 at $10^{-3}$ and 40
instead of 34 at $10^{-6}$.
"""
from __future__ import annotations

import types
from typing import Any, Callable, NamedTuple

import numpy as np

from cvxkit.solvers import anderson
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm
from cvxkit.solvers.primal_dual import (DIVERGED, DIVERGED_AT, DUAL_INFEASIBLE, PRIMAL_INFEASIBLE,
                                        RUNNING, SOLVED)
from cvxkit.solvers.result import Status

RHO_MIN, RHO_MAX = 1e-6, 1e6
DIVISION_TOL = 1e-30
#: a primal infeasibility certificate may lie this far outside the polar cone (relative to its
#: infinity norm: the rounding of its projection and unscaling)
POLAR_RTOL = 1e-10


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
      tests of $\\sigma_C(y) < 0$);
    * ``compiled(d, s, n) -> State | None`` (optional, numpy only): ``n`` iterations as
      `iterations` does them, by a compiled kernel, or ``None`` where the kernel does not apply
      (`cvxkit.solvers.admm_kernels`).
    """

    rho_vec: Callable
    factorize: Callable
    solve: Callable
    project: Callable
    polar: Callable
    support: Callable
    in_recession: Callable
    support_mag: Callable
    compiled: Callable | None = None


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
    accel: Any = None  # numpy: the Anderson memory (`cvxkit.solvers.anderson`), or None


def norm_inf(xp, v):
    """The infinity norm (0 for an empty vector)."""
    if xp is np:  # (the method skips numpy's reduction wrappers: a check makes ~20 of these)
        return np.abs(v).max() if v.size else np.float64(0.0)
    return xp.max(xp.abs(v), initial=0.0)


def rmatvec(d: Data, v):
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
    Ax, Px, Aty = d.A @ x, d.P @ x, rmatvec(d, y)
    rp, rd = Ax - z, Px + d.q + Aty
    Ei, Di, ci = d.norms.ue, d.norms.ud, d.norms.uc
    prim = norm_inf(xp, Ei * rp)
    eps_p = st.eps_abs + st.eps_rel * xp.maximum(norm_inf(xp, Ei * Ax), norm_inf(xp, Ei * z))
    dual = ci * norm_inf(xp, Di * rd)
    eps_d = st.eps_abs + st.eps_rel * ci * xp.maximum(
        xp.maximum(norm_inf(xp, Di * Px), norm_inf(xp, Di * Aty)), norm_inf(xp, Di * d.q))
    yp = sp.polar(bk, d, y)
    xPx, qx, sig = x @ Px, d.q @ x, sp.support(bk, d, yp)
    gap = ci * xp.abs(xPx + qx + sig)
    eps_g = st.eps_abs + st.eps_rel * ci * xp.maximum(xp.maximum(xp.abs(xPx), xp.abs(qx)), xp.abs(sig))
    prim_rel = norm_inf(xp, rp) / (xp.maximum(norm_inf(xp, Ax), norm_inf(xp, z)) + DIVISION_TOL)
    dual_rel = norm_inf(xp, rd) / (xp.maximum(xp.maximum(norm_inf(xp, d.q), norm_inf(xp, Aty)),
                                           norm_inf(xp, Px)) + DIVISION_TOL)
    polar_violation = ci * norm_inf(xp, (y - yp) / Ei)
    return Residuals(prim, dual, gap, eps_p, eps_d, eps_g, (0.5 * xPx + qx) / d.c, prim_rel,
                     dual_rel, polar_violation)


def _primal_infeasible(bk, sp, d, dy):
    r"""The primal infeasibility test on ``dy`` (scaled) projected onto the polar cone: the
    relative tests of the module docstring on the user's data, written on the scaled data (each
    side carries the same scaling factors)."""
    xp, w = bk.xp, d.norms
    dy = sp.polar(bk, d, dy)
    norm_dy = norm_inf(xp, w.wA * dy)  # max_i a_i |y_i| (user units, up to the factor 1/c)
    eps = d.settings.eps_pinf
    atdy = xp.abs(rmatvec(d, dy))
    return (norm_dy > DIVISION_TOL) & \
        (sp.support(bk, d, dy) < -eps * sp.support_mag(bk, d, dy)) & \
        xp.all(atdy <= eps * w.wC * norm_dy)


def _dual_infeasible(bk, sp, d, dx):
    r"""The dual infeasibility (unboundedness) test on ``dx`` (scaled): the relative tests of the
    module docstring on the user's data, written on the scaled data."""
    xp, w = bk.xp, d.norms
    norm_dx = norm_inf(xp, d.D * dx)  # ||dx|| in user units
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
    """``(estimate, change)``: OSQP's penalty estimate (with ``eps_rel = 0``, from the residuals
    over their tolerances; module docstring, "Adaptive penalty") and whether it warrants a
    refactorization."""
    st, xp = d.settings, bk.xp
    absolute = st.eps_rel == 0  # balance the residuals against their (absolute) tolerances
    pr = xp.where(absolute, s.prim_res / s.eps_prim, s.prim_rel)
    dr = xp.where(absolute, s.dual_res / s.eps_dual, s.dual_rel)
    est, far = penalty_estimate(xp, s.rho, pr, dr, st.rho_tolerance)
    return est, st.adaptive & (s.flag == RUNNING) & (s.rho_vec.shape[-1] > 0) & far


def penalty_estimate(xp, rho, prim_rel, dual_rel, tolerance):
    """``(estimate, far)``: OSQP's penalty $\\hat\\rho = \\rho\\sqrt{\\hat r_p/\\hat r_d}$ from the
    relative residuals, clipped to ``[RHO_MIN, RHO_MAX]``, and whether it is more than
    ``tolerance`` times away from ``rho`` (each instance adds its own conditions and its move)."""
    est = xp.clip(rho * xp.sqrt(prim_rel / (dual_rel + DIVISION_TOL)), RHO_MIN, RHO_MAX)
    return est, (est > rho * tolerance) | (est < rho / tolerance)


def apply_rho(bk: Backend, sp: Splitting, d: Data, s: State, est, change) -> State:
    """Set the penalty to ``est`` and refactor, if ``change``."""
    def update(s):
        return s._replace(rho=est, rho_vec=sp.rho_vec(bk, d, est), factor=sp.factorize(bk, d, est),
                          n_refactor=s.n_refactor + 1)

    return bk.cond(change, update, lambda s: s, s)


def iterations(bk: Backend, sp: Splitting, d: Data, s: State, n) -> State:
    """``n`` ADMM iterations; the last one records ``dx``, ``dy`` (on numpy by the splitting's
    compiled kernel where it has one that applies, with Anderson acceleration where the state
    carries its memory, `cvxkit.solvers.anderson`)."""
    if bk.name == "numpy" and s.accel is not None and n > 0:
        return anderson.iterations(lambda s, c: _plain(bk, sp, d, s, c), s, int(n), s.accel)
    return _plain(bk, sp, d, s, n)


def _plain(bk: Backend, sp: Splitting, d: Data, s: State, n) -> State:
    if bk.name == "numpy" and sp.compiled is not None and n > 0:
        t = sp.compiled(d, s, n)
        if t is not None:
            return t
    return repeat(bk, lambda s, track: iterate(bk, sp, d, s, track), s, n)


def repeat(bk: Backend, one, s, n, carried=("x", "z", "y")):
    """``n`` iterations ``one(s, track) -> s`` of any ADMM instance: ``n - 1`` untracked ones
    carrying only the fields ``carried`` (the iterates: the factor and data stay loop
    constants), then one with ``track=True`` (it records what the check needs); ``k += n``."""
    def body(c):
        t = one(s._replace(**dict(zip(carried, c))), False)
        return tuple(getattr(t, f) for f in carried)

    c = bk.fori(n - 1, body, tuple(getattr(s, f) for f in carried))
    s = s._replace(k=s.k + n, **dict(zip(carried, c)))
    return bk.cond(n > 0, lambda s: one(s, True), lambda s: s, s)


def cycle(bk: Backend, d, s, advance, check, adapt, running, n=None):
    """One driver step of any ADMM instance: ``advance(s, n)`` (``n`` iterations: default
    ``check_every``, fewer at the iteration limit; ``d.settings`` has ``block`` and
    ``max_iter``), ``check(s)``, ``adapt(s)`` (the penalty update). A state that is not
    ``running`` is returned unchanged (so a batch can step until all its members stop)."""
    if n is None:
        n = bk.xp.minimum(d.settings.block, d.settings.max_iter - s.k)
    return bk.cond(running, lambda s: adapt(check(advance(s, n))), lambda s: s, s)


def block(bk: Backend, sp: Splitting, d: Data, s: State, n=None, adapt=True, advanced=None) -> State:
    """``n`` iterations (default ``check_every``, fewer at the iteration limit), a check and,
    if ``adapt``, a penalty update. ``advanced``: the state after the iterations, when they
    were done apart (batches do them in chunks, `cvxkit.solvers.admm_batch`).

    A stopped state (``flag != RUNNING``) is returned unchanged, so a batch can keep stepping
    until all its members have stopped.
    """
    return cycle(bk, d, s,
                 lambda s, n: iterations(bk, sp, d, s, n) if advanced is None else advanced,
                 lambda s: check(bk, sp, d, s),
                 (lambda s: apply_rho(bk, sp, d, s, *rho_estimate(bk, sp, d, s))) if adapt
                 else (lambda s: s), s.flag == RUNNING, n)


def _monitor(bk, s: State, d: Data):
    return {"objective": s.objective, "prim_res": s.prim_res, "dual_res": s.dual_res,
            "gap": s.gap, "rho": s.rho}


def _stopped(bk, s: State, d: Data):
    return s.flag != RUNNING


def make_algorithm(name: str, sp: Splitting) -> Algorithm:
    """The driver `Algorithm` of ADMM with splitting ``sp`` (one step = one `block`; a batch on
    JAX: `cvxkit.solvers.admm_batch.batch_algorithm`).

    Call it once per splitting (at import): the driver caches compiled code per `Algorithm`. A
    solve sets ``iterations_per_step`` to its ``check_every`` (`per_block`).
    """
    return Algorithm(name, lambda bk, s, d: block(bk, sp, d, s), _monitor, _stopped)


def per_block(alg: Algorithm, check_every: int) -> Algorithm:
    """``alg`` with one step counted as ``check_every`` iterations: the driver's ``max_iter``,
    iteration counts and ``history["iteration"]`` are then iterations (the last block of a run
    stops at ``max_iter``, where the driver caps its count)."""
    return alg._replace(iterations_per_step=int(check_every))


def _row_norms(A):
    r"""``(|A|, a)``: the absolute values of ``A`` (dense or scipy.sparse) and its row norms
    $a_i = \max_j |A_{ij}|$ (1 for an empty row)."""
    import scipy.sparse as sps

    absA = abs(A) if sps.issparse(A) else np.abs(A)
    a = np.asarray(absA.max(axis=1).todense()).ravel() if sps.issparse(A) and A.shape[1] else \
        (np.max(absA, axis=1, initial=0.0) if not sps.issparse(A) else np.zeros(A.shape[0]))
    return absA, np.where(a > 0, a, 1.0)


def set_certificate_error(sp: Splitting, cset, P, q, A, status, v, eps_pinf: float,
                          eps_dinf: float, names: dict):
    r"""Why ``v`` is not an infeasibility certificate of $\min \tfrac12 x^\top Px + q^\top x$
    s.t. $Ax \in C$ (one problem, the user's unscaled data; $C$ given by the set data ``cset``
    of the splitting ``sp``), or ``None`` if it is one (the tests of the module docstring,
    "Checks", on the user's data).

    ``status`` primal_infeasible: ``v`` is $y$ in the polar of $C$'s recession cone (up to
    `POLAR_RTOL`), $|(A^\top y)_j| \le \epsilon_{pinf}\max_i(|A_{ij}|/a_i)\max_i a_i|y_i|$ and
    $\sigma_C(y) < -\epsilon_{pinf}$ ``support_mag(y)``. dual_infeasible: ``v`` is $d$ with
    $|(Pd)_j| \le \epsilon_{dinf}\max_k|P_{jk}|\,\lVert d\rVert_\infty$,
    $q^\top d < -\epsilon_{dinf}|q|^\top|d|$ and $Ad$ in the recession cone of $C$ up to
    $\epsilon_{dinf}a_i\lVert d\rVert_\infty$ on row $i$. Here $a_i = \max_j|A_{ij}|$.
    ``names``: how the messages name the set's pieces (``domain``: the message for a $y$ outside
    the polar cone; ``support``: $\sigma_C(y)$ as a formula; ``set``: $C$).
    """
    import scipy.sparse as sps

    if v is None:
        return "no certificate"
    v = np.asarray(v, dtype=np.float64)
    if not np.isfinite(v).all():
        return "the certificate has non-finite entries"
    bk, d = get_backend("numpy"), types.SimpleNamespace(cset=cset)
    absA, a = _row_norms(A)
    if status is Status.PRIMAL_INFEASIBLE:
        y = sp.polar(bk, d, v)
        if norm_inf(np, v - y) > POLAR_RTOL * norm_inf(np, v):
            return names["domain"]
        ny = float(np.max(a * np.abs(y), initial=0.0))
        if ny == 0:
            return "y = 0"
        aty = np.abs(np.asarray(A.T @ y)).ravel()
        colhat = (sps.diags(1.0 / a) @ absA).max(axis=0) if sps.issparse(A) else \
            np.max(absA / a[:, None], axis=0, initial=0.0)
        colhat = np.asarray(colhat.todense()).ravel() if sps.issparse(colhat) else colhat
        bad = aty > eps_pinf * colhat * ny
        if bad.any():
            return f"A^T y is not ~0: |(A^T y)_j| / (max_i |A_ij|/a_i * max_i a_i|y_i|) = " \
                f"{float(np.max(aty[bad] / np.maximum(colhat[bad] * ny, 1e-300))):.3g} > {eps_pinf:g}"
        sig, mag = float(sp.support(bk, d, y)), float(sp.support_mag(bk, d, y))
        if not sig < -eps_pinf * mag:
            return f"{names['support']} = {sig:.3g} is not < -{eps_pinf:g} * {mag:.3g}"
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
        if not sp.in_recession(bk, d, np.asarray(A @ v).ravel(), eps_dinf * a * nd):
            return f"A d is not in the recession cone of {names['set']}"
        return None
    return None
