r"""Restarted reflected Halpern PDHG (r2HPDHG): the iteration, its checks and its state.

The LP and the method are those of `cvxkit.solvers.halpern_pdhg` (the entry point); its
preconditioning and data are `cvxkit.solvers.pdhg_setup`. Everything here is written once over
the back end (numpy or JAX) and runs on the scaled problem; the checks are made on the unscaled
one.

**Iteration.** With $X = [l_v, u_v]$, $S = [l_c, u_c]$, step $\eta$ and primal weight $\omega$
($\tau = \eta/\omega$, $\sigma = \eta\omega$), the PDHG map $T(x, y) = (\hat x, \hat y)$ is

$$
\hat x = \Pi_X\big(x - \tau(c - K^\top y)\big),\qquad
v = y - \sigma K(2\hat x - x),\qquad \hat y = v + \sigma\,\Pi_S(-v/\sigma),
$$

and the reflected Halpern step inside a restart epoch (anchor $z^{0}$, $k$ iterations since the
restart, reflection $\rho \in [0, 1]$; $\rho = 1$ is r2HPDHG, $\rho = 0$ plain Halpern PDHG) is

$$
z^{k+1} = \tfrac{k+1}{k+2}\big((1+\rho)\,T(z^k) - \rho z^k\big) + \tfrac{1}{k+2}\, z^{0}.
$$

$\eta = 0.998/\lVert K\rVert_2$ (after preconditioning), so that $T$ is firmly nonexpansive in the
norm $\lVert z\rVert_P^2 = \tfrac{\omega}{\eta}\lVert x\rVert^2 + 2y^\top Kx + \tfrac{1}{\eta\omega}\lVert y\rVert^2$.

**Restarts** (checked every ``check_every`` iterations, on the fixed-point residual
$r(z) = \lVert z - T(z)\rVert_P$ of the scaled problem): restart when
$r \le 0.2\, r_0$ (sufficient decay), or $r \le 0.5\, r_0$ and $r$ grew since the previous check
(necessary decay), or the epoch is longer than 0.36 times all iterations so far (artificial), where
$r_0$ is the residual at the epoch's start. At a restart the anchor and the iterate become the last
PDHG output $T(z)$, and the primal weight is updated by cuPDLPx's PI controller on $\log\omega$:
error $e = \log(\omega\lVert\Delta x\rVert/\lVert\Delta y\rVert)$ with $\Delta$ the displacement
since the previous anchor, $I \leftarrow 0.3 I + e$,
$\log\omega \leftarrow \log\omega - (0.99 e + 0.01 I)$; skipped when a displacement is outside
$[10^{-10}, 10^{10}]$.

**Termination** (same checks, on the unscaled problem at the PDHG output $(\hat x, \hat y)$,
Euclidean norms). Every test compares a residual with magnitudes of the same units, so that it
does not change when $c$, the bounds or the rows are multiplied by a constant:

* primal residual, each row relative to its norm $\kappa_i = \lVert K_{i,:}\rVert_\infty$ (so
  that scaling a row changes nothing): $\lVert D_\kappa^{-1}(Kx - \Pi_S(Kx))\rVert \le
  \epsilon_{abs}\beta_p + \epsilon_{rel}\lVert D_\kappa^{-1} b\rVert$, where $b_i$ is the largest
  finite bound of row $i$ in magnitude (0 if none), and $\beta_p = \lVert D_\kappa^{-1}b\rVert$,
  or $\lVert D_\kappa^{-1}\lvert K\rvert\lvert x\rvert\,\rVert$ (the magnitude of the products'
  terms) when $b = 0$ ($D_\kappa = \text{diag}(\kappa)$);
* dual residual $\lVert \lambda - \Pi_\Lambda(\lambda)\rVert \le \epsilon_{abs}\beta_d + \epsilon_{rel}\lVert c\rVert$,
  $\lambda = c - K^\top y$, $\Lambda$ the reduced costs the variable bounds allow
  ($\lambda_j \ge 0$ needs a finite $l_{v,j}$, $\lambda_j \le 0$ a finite $u_{v,j}$), $r = \Pi_\Lambda(\lambda)$,
  and $\beta_d = \lVert c\rVert$, or $\lVert\,\lvert K^\top\rvert\lvert y\rvert\,\rVert$ when $c = 0$;
* gap $g = \lvert c^\top x - d(y, r)\rvert + \sum_j \lvert(\lambda_j - r_j)x_j\rvert + \sum_i \lvert y_i v_i\rvert
  \le 10^{-3}\epsilon_{abs}\, t + \epsilon_{rel}\max(\lvert c^\top x\rvert, \lvert d\rvert)$
  with the dual objective $d(y, r) = \sum_i (l_{c,i} y_i^+ - u_{c,i} y_i^-) + \sum_j (l_{v,j} r_j^+ - u_{v,j} r_j^-)$,
  $v = Kx - \Pi_S(Kx)$, and $t$ the Euclidean norm of the vector of the terms of $c^\top x$ and
  of $d$, at least $10^{-6}\lVert c\rVert_\infty\sigma_x$ (the absolute part matters only when
  the optimal value is 0 or nearly so: ``GAP_FLOOR``, ``OBJECTIVE_FLOOR``; $\sigma_x$ below). The two sums bound what the residuals can hide: for a feasible $x^*$,
  $c^\top x^* \ge d - \sum_j\lvert(\lambda_j - r_j)x^*_j\rvert$, so that at $x \approx x^*$ the
  objective is within about $g$ of the optimal value (without them, Netlib's SCAGR7 stopped at
  ``tol=1e-4`` with the objective 8e-4 off).

Two cases would compare vanishing quantities: with $c = 0$ the tests use $y = 0$ (dual optimal;
any feasible $x$ is optimal), and with no finite nonzero bound at all ($\sigma_x = 0$ below) they
use $x = 0$ (feasible, and optimal unless the LP is unbounded); ``Result`` reports those zeros.

These are cuPDLPx's relative measures $\lVert\cdot\rVert/(1 + \text{scale})$ with the ``1`` (an
absolute quantity in the user's units, which made the tests depend on the data's scale) replaced
by a magnitude of the same units. ``Result.info`` reports ``rel_primal``
$= \lVert\cdot\rVert/(\beta_p + \lVert D_\kappa^{-1}b\rVert)$, ``rel_dual`` $= \lVert\cdot\rVert/(\beta_d + \lVert c\rVert)$
and ``rel_gap`` $= \text{gap}/(10^{-3} t + \max(\lvert c^\top x\rvert, \lvert d\rvert))$ (0 for 0/0):
with $\epsilon_{abs} = \epsilon_{rel} = \epsilon$ (``tol``, the default) the tests hold exactly
when all three are at most $\epsilon$.

**Infeasibility** (same checks, on the PDHG displacement $T(z) - z$, which tends to the minimal
displacement vector of an infeasible problem). A candidate is accepted only when it passes these
tests on the unscaled data; at the end the accepted one is checked again in float64 with the
user's own matrix (as is an ``optimal`` point), and if that check fails the iteration goes on
with a 10 times tighter internal tolerance. With $\kappa_i$ as above and
the magnitude of $x$ set by the data,
$\sigma_x = \max(\max_j \lvert l_{v,j}\rvert, \lvert u_{v,j}\rvert, \max_i \lvert b_i\rvert/\kappa_i)$
(finite bounds only):

* a dual ray $y$ (the $y$ part, projected onto the signs the row bounds allow) proves primal
  infeasibility when, with $\lambda = -K^\top y$, $r = \Pi_\Lambda(\lambda)$ and $d = d(y, r)$,
  $d > \epsilon_{pinf}\, t(y, r)$ and $\sigma_x \lVert\lambda - r\rVert_1 \le \epsilon_{pinf}\, d$:
  then no $x$ with $\lVert x\rVert_\infty \le \sigma_x/\epsilon_{pinf}$ satisfies the constraints
  (for such an $x$, $0 \ge d - \lVert\lambda - r\rVert_1\lVert x\rVert_\infty > 0$);
* a primal ray $\delta x$ (the $x$ part, projected onto the recession cone of $X$) proves dual
  infeasibility (unboundedness) when $-c^\top\delta x > \epsilon_{dinf} \lvert c\rvert^\top\lvert\delta x\rvert$
  and $\lVert c\rVert_\infty \sum_i v_i/\kappa_i \le \epsilon_{dinf}(-c^\top \delta x)$, $v$ the
  distance of $K\delta x$ to the recession cone of $S$: then no dual feasible $y$ has
  $\max_i \kappa_i\lvert y_i\rvert \le \lVert c\rVert_\infty/\epsilon_{dinf}$.

Both tests are unchanged when $c$, the bounds or any row (with its bounds) is multiplied by a
positive constant. The certificate is returned in ``Result.info['certificate']``.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from cvxkit.solvers.backend import Backend
from cvxkit.solvers.driver import Algorithm
from cvxkit.solvers.primal_dual import (DIVERGED, DIVERGED_AT, DUAL_INFEASIBLE, PRIMAL_INFEASIBLE,
                                        RUNNING, SOLVED)

#: displacements outside [WEIGHT_MIN_MOVE, WEIGHT_MAX_MOVE] skip the primal-weight update
WEIGHT_MIN_MOVE, WEIGHT_MAX_MOVE = 1e-10, 1e10
#: the absolute part of the gap test is eps_abs * GAP_FLOOR * (magnitude of the objectives' terms)
GAP_FLOOR = 1e-3
#: ... where the magnitude is at least OBJECTIVE_FLOOR ||c||_inf sigma_x
OBJECTIVE_FLOOR = 1e-6
#: restart when r <= SUFFICIENT r0, or r <= NECESSARY r0 and r grew, or k >= ARTIFICIAL * iterations
RESTART_SUFFICIENT, RESTART_NECESSARY, RESTART_ARTIFICIAL = 0.2, 0.5, 0.36


class Settings(NamedTuple):
    """Scalar settings, as arrays so that JAX can trace them."""

    eps_abs: Any
    eps_rel: Any
    eps_pinf: Any
    eps_dinf: Any
    reflection: Any
    sufficient: Any
    necessary: Any
    artificial: Any
    kp: Any
    ki: Any
    kd: Any
    integral_decay: Any
    adapt_weight: Any  # bool
    block: Any  # iterations per check (int)
    max_iter: Any  # int


class Data(NamedTuple):
    """Scaled data (``K``, ``Kt`` = K^T, ``c``, bounds), the step ``eta``, the unscaling factors
    (``x = xs * xbar``, ``y = ys * ybar``, ``K x = kxs * (K xbar)``, ``K^T y = kys * (K^T ybar)``),
    the unscaled vectors of the checks, their finite-bound masks, norms and the `Settings`."""

    K: Any
    Kt: Any
    Kabs: Any  # |K| and |K|^T (scaled), for the magnitudes of the products' terms
    Ktabs: Any
    c: Any
    lv: Any
    uv: Any
    lc: Any
    uc: Any
    eta: Any
    xs: Any
    ys: Any
    kxs: Any
    kys: Any
    c0: Any
    lv0: Any
    uv0: Any
    lc0: Any
    uc0: Any
    lvf: Any
    uvf: Any
    lcf: Any
    ucf: Any
    bnorm: Any  # ||b / kappa|| (each row's bound relative to the row's norm)
    cnorm: Any
    krow: Any  # infinity norms of K's rows (unscaled; 1 for an empty row)
    cinf: Any  # ||c||_inf
    xscale: Any  # sigma_x of the module docstring
    settings: Settings


class State(NamedTuple):
    """Halpern iterate ``(x, y)``, anchor ``(x0, y0)``, last PDHG output ``(xh, yh)``, epoch and total iteration counts, primal weight and its PI
    controller, restart bookkeeping and what the last check found (unscaled)."""

    x: Any
    y: Any
    x0: Any
    y0: Any
    xh: Any
    yh: Any
    k: Any
    it: Any
    omega: Any
    integral: Any
    err_prev: Any
    r0: Any
    r_prev: Any
    fpr: Any
    restarts: Any
    restarted: Any  # bool: the last check restarted
    flag: Any
    prim: Any
    dual: Any
    gap: Any
    pobj: Any
    dobj: Any
    rel_prim: Any
    rel_dual: Any
    rel_gap: Any
    ray_x: Any  # the last displacement T(z) - z (unscaled), certificate candidates
    ray_y: Any


def settings(bk: Backend, cfg) -> Settings:
    xp = bk.xp
    f = bk.asarray
    i = (lambda v: xp.asarray(v, dtype=xp.int32)) if bk.name == "jax" else int
    b = (lambda v: xp.asarray(v)) if bk.name == "jax" else bool
    return Settings(f(cfg["eps_abs"]), f(cfg["eps_rel"]), f(cfg["eps_pinf"]), f(cfg["eps_dinf"]),
                    f(cfg["reflection"]), f(RESTART_SUFFICIENT), f(RESTART_NECESSARY),
                    f(RESTART_ARTIFICIAL), f(0.99), f(0.01), f(0.0), f(0.3),
                    b(cfg["adapt_weight"]), i(cfg["block"]), i(cfg["max_iter"]))


# ============================================================================================
# The algorithm, written once over the back end
# ============================================================================================
def _norm(xp, v):
    return xp.sqrt(xp.sum(v * v))


def _sel(bk, pred, a, b):
    """``a if pred else b`` for arrays (``where``; a plain choice on numpy)."""
    if bk.name == "numpy":
        return a if bool(pred) else b
    return bk.xp.where(pred, a, b)


def pdhg_map(bk: Backend, d: Data, x, y, omega):
    """``T(x, y)`` of the scaled problem; returns ``(xh, yh, K^T y, K(2 xh - x))``."""
    xp = bk.xp
    tau, sig = d.eta / omega, d.eta * omega
    Kty = d.Kt @ y
    xh = xp.clip(x - tau * (d.c - Kty), d.lv, d.uv)
    Kxbar = d.K @ (2.0 * xh - x)
    v = y - sig * Kxbar
    yh = v + sig * xp.clip(-v / sig, d.lc, d.uc)
    return xh, yh, Kty, Kxbar


def _halpern(s: State, d: Data, xh, yh):
    """The reflected Halpern average of ``T(z) = (xh, yh)``, ``z`` and the anchor."""
    w = (s.k + 1.0) / (s.k + 2.0)
    rho = d.settings.reflection
    x = w * ((1.0 + rho) * xh - rho * s.x) + (1.0 - w) * s.x0
    y = w * ((1.0 + rho) * yh - rho * s.y) + (1.0 - w) * s.y0
    return x, y


def iterate(bk: Backend, d: Data, s: State) -> State:
    """One reflected Halpern PDHG iteration."""
    xh, yh, _, _ = pdhg_map(bk, d, s.x, s.y, s.omega)
    x, y = _halpern(s, d, xh, yh)
    return s._replace(x=x, y=y, xh=xh, yh=yh, k=s.k + 1, it=s.it + 1)


def _reduced(xp, d: Data, lam):
    """``Pi_Lambda(lam)``: the part of the reduced costs that the variable bounds allow."""
    return xp.where(d.lvf & d.uvf, lam, xp.where(d.lvf, xp.maximum(lam, 0.0),
                                                 xp.where(d.uvf, xp.minimum(lam, 0.0), 0.0)))


def _dual_terms(xp, d: Data, y, r):
    """The terms ``l_c y+, -u_c y-, l_v r+, -u_v r-`` of the dual objective over the finite
    bounds (unscaled): returns their sum ``d(y, r)``, the sum of their magnitudes and the sum of
    their squares."""
    z = 0.0
    parts = (xp.where(d.lcf, d.lc0, z) * xp.maximum(y, z), xp.where(d.ucf, d.uc0, z) * xp.minimum(y, z),
             xp.where(d.lvf, d.lv0, z) * xp.maximum(r, z), xp.where(d.uvf, d.uv0, z) * xp.minimum(r, z))
    return (sum(xp.sum(t) for t in parts), sum(xp.sum(xp.abs(t)) for t in parts),
            sum(xp.sum(t * t) for t in parts))


def _dual_objective(xp, d: Data, y, r):
    """``sum(l_c y+ - u_c y-) + sum(l_v r+ - u_v r-)`` over the finite bounds (unscaled)."""
    return _dual_terms(xp, d, y, r)[0]


def _ratio(xp, a, b):
    """``a / b``, 0 for 0 / 0 (every denominator here is 0 only when its numerator is)."""
    pos = b > 0
    return xp.where(pos, a / xp.where(pos, b, 1.0), xp.where(a > 0, xp.inf, 0.0))


class Metrics(NamedTuple):
    prim: Any
    dual: Any
    gap: Any
    pobj: Any
    dobj: Any
    ok: Any
    rel_prim: Any
    rel_dual: Any
    rel_gap: Any


def metrics(bk: Backend, d: Data, Kxh, Ktyh, xh, yh) -> Metrics:
    """Unscaled residuals, objectives and the optimality test (module docstring) at the scaled
    ``(xh, yh)`` given the scaled products ``K xh`` and ``K^T yh``."""
    xp, st = bk.xp, d.settings
    # c = 0: y = 0 is dual optimal; no finite nonzero bound (sigma_x = 0): x = 0 is feasible,
    # and optimal if anything is (the tests below would compare vanishing quantities)
    usex, usey = d.xscale > 0, d.cnorm > 0
    xh, Kxh = xp.where(usex, xh, 0.0), xp.where(usex, Kxh, 0.0)
    yh, Ktyh = xp.where(usey, yh, 0.0), xp.where(usey, Ktyh, 0.0)
    x, y = d.xs * xh, d.ys * yh
    Kx = d.kxs * Kxh
    Kty = d.kys * Ktyh
    viol = Kx - xp.clip(Kx, d.lc0, d.uc0)
    prim = _norm(xp, viol)
    lam = d.c0 - Kty
    r = _reduced(xp, d, lam)
    dual = _norm(xp, lam - r)
    cx = d.c0 * x
    pobj = xp.sum(cx)
    dobj, _, dsq = _dual_terms(xp, d, y, r)
    # |c^T x - d| plus the parts of c^T x* - d that the residuals can hide (module docstring)
    gap = xp.abs(pobj - dobj) + xp.sum(xp.abs((lam - r) * x)) + xp.sum(xp.abs(y * viol))
    # magnitudes of the terms: || |K| |x| ||, || |K^T| |y| ||, ||(c_j x_j, dual terms)||
    tKx = _norm(xp, d.kxs * (d.Kabs @ xp.abs(xh)) / d.krow)
    tKty = _norm(xp, d.kys * (d.Ktabs @ xp.abs(yh)))
    # at least OBJECTIVE_FLOOR of the largest objective term the data allow (an optimal value 0
    # with every term 0, as Meszaros's testps, is certified at that resolution)
    tobj = xp.maximum(xp.sqrt(xp.sum(cx * cx) + dsq), OBJECTIVE_FLOOR * d.cinf * d.xscale)
    objs = xp.maximum(xp.abs(pobj), xp.abs(dobj))  # so that the objective is right to ~eps_rel
    # the units of the absolute parts: ||b|| and ||c||, the term magnitudes where those are 0
    bp = xp.where(d.bnorm > 0, d.bnorm, tKx)
    bd = xp.where(d.cnorm > 0, d.cnorm, tKty)
    primk = _norm(xp, viol / d.krow)  # each row relative to its norm: invariant to row scaling
    ok = ((primk <= st.eps_abs * bp + st.eps_rel * d.bnorm)
          & (dual <= st.eps_abs * bd + st.eps_rel * d.cnorm)
          & (gap <= st.eps_abs * GAP_FLOOR * tobj + st.eps_rel * objs))
    return Metrics(prim, dual, gap, pobj, dobj, ok, _ratio(xp, primk, bp + d.bnorm),
                   _ratio(xp, dual, bd + d.cnorm), _ratio(xp, gap, GAP_FLOOR * tobj + objs))


def primal_infeasible(bk: Backend, d: Data, ray):
    """Does the scaled dual ray ``ray`` (projected onto the allowed signs) prove that no ``x``
    satisfies the constraints (module docstring)? Returns ``(bool, unscaled projected ray)``."""
    xp, eps = bk.xp, d.settings.eps_pinf
    ray = xp.where((~d.lcf & (ray > 0)) | (~d.ucf & (ray < 0)), 0.0, ray)
    lam = -d.kys * (d.Kt @ ray)
    r = _reduced(xp, d, lam)
    yu = d.ys * ray
    obj, terms, _ = _dual_terms(xp, d, yu, r)
    ok = (obj > eps * terms) & (d.xscale * xp.sum(xp.abs(lam - r)) <= eps * obj)
    return ok, yu


def dual_infeasible(bk: Backend, d: Data, ray):
    """Does the scaled primal ray ``ray`` (projected onto the recession cone of the variable
    bounds) prove the LP unbounded (module docstring)? Returns ``(bool, unscaled projected ray)``."""
    xp, eps = bk.xp, d.settings.eps_dinf
    ray = xp.where((d.lvf & (ray < 0)) | (d.uvf & (ray > 0)), 0.0, ray)
    Kx = d.kxs * (d.K @ ray)
    viol = xp.where(d.lcf & d.ucf, xp.abs(Kx), xp.where(d.lcf, xp.maximum(-Kx, 0.0),
                                                        xp.where(d.ucf, xp.maximum(Kx, 0.0), 0.0)))
    xu = d.xs * ray
    cx = d.c0 * xu
    obj = -xp.sum(cx)
    ok = (obj > eps * xp.sum(xp.abs(cx))) & (d.cinf * xp.sum(viol / d.krow) <= eps * obj)
    return ok, xu


def _weight_update(bk: Backend, d: Data, s: State, xh, yh):
    """cuPDLPx's PI controller on ``log(omega)`` from the displacement since the anchor."""
    xp, st = bk.xp, d.settings
    dx, dy = _norm(xp, xh - s.x0), _norm(xp, yh - s.y0)
    ok = (st.adapt_weight & (dx > WEIGHT_MIN_MOVE) & (dx < WEIGHT_MAX_MOVE)
          & (dy > WEIGHT_MIN_MOVE) & (dy < WEIGHT_MAX_MOVE))
    e = xp.log(xp.where(ok, s.omega * dx / xp.where(ok, dy, 1.0), 1.0))
    integral = st.integral_decay * s.integral + e
    log_w = xp.log(s.omega) - (st.kp * e + st.ki * integral + st.kd * (e - s.err_prev))
    omega = xp.where(ok, xp.exp(xp.clip(log_w, -30.0, 30.0)), s.omega)
    return omega, xp.where(ok, integral, s.integral), xp.where(ok, e, s.err_prev)


def fixed_point_residual(bk: Backend, d: Data, omega, dx, dy, Kdx):
    """``||(dx, dy)||_P`` (see the module docstring), ``Kdx = K dx``."""
    xp = bk.xp
    q = (omega / d.eta) * xp.sum(dx * dx) + 2.0 * xp.sum(dy * Kdx) + xp.sum(dy * dy) / (d.eta * omega)
    return xp.sqrt(xp.maximum(q, 0.0))


def evaluate(bk: Backend, d: Data, s: State) -> State:
    """One iteration with the checks: termination, infeasibility, restart, primal weight."""
    xp, st = bk.xp, d.settings
    xh, yh, Kty, Kxbar = pdhg_map(bk, d, s.x, s.y, s.omega)
    Kxh = d.K @ xh
    Ktyh = d.Kt @ yh
    m = metrics(bk, d, Kxh, Ktyh, xh, yh)
    # fixed-point residual at z = (x, y): K(x - xh) = K xh - K(2 xh - x)
    fpr = fixed_point_residual(bk, d, s.omega, s.x - xh, s.y - yh, Kxh - Kxbar)
    pinf, ray_y = primal_infeasible(bk, d, yh - s.y)
    dinf, ray_x = dual_infeasible(bk, d, xh - s.x)
    size = xp.maximum(xp.max(xp.abs(xh), initial=0.0), xp.max(xp.abs(yh), initial=0.0))
    finite = xp.isfinite(m.prim) & xp.isfinite(m.dual) & xp.isfinite(m.gap) & (size < DIVERGED_AT)
    flag = xp.where(~finite, DIVERGED, xp.where(m.ok, SOLVED, xp.where(
        pinf, PRIMAL_INFEASIBLE, xp.where(dinf, DUAL_INFEASIBLE, RUNNING))))
    it = s.it + 1
    restart = ((fpr <= st.sufficient * s.r0) | ((fpr <= st.necessary * s.r0) & (fpr > s.r_prev))
               | (s.k + 1 >= st.artificial * it))
    omega, integral, err = _weight_update(bk, d, s, xh, yh)
    xn, yn = _halpern(s, d, xh, yh)
    s = s._replace(
        x=_sel(bk, restart, xh, xn), y=_sel(bk, restart, yh, yn),
        x0=_sel(bk, restart, xh, s.x0), y0=_sel(bk, restart, yh, s.y0), xh=xh, yh=yh,
        k=xp.where(restart, 0, s.k + 1), it=it,
        omega=xp.where(restart, omega, s.omega), integral=xp.where(restart, integral, s.integral),
        err_prev=xp.where(restart, err, s.err_prev), r0=xp.where(restart, fpr, s.r0), r_prev=fpr,
        fpr=fpr, restarts=s.restarts + xp.where(restart, 1, 0), restarted=restart, flag=flag,
        prim=m.prim, dual=m.dual, gap=m.gap, pobj=m.pobj, dobj=m.dobj,
        rel_prim=m.rel_prim, rel_dual=m.rel_dual, rel_gap=m.rel_gap, ray_x=ray_x, ray_y=ray_y)
    if bk.name == "jax":
        s = s._replace(flag=xp.asarray(s.flag, dtype=xp.int32), k=xp.asarray(s.k, dtype=xp.int32),
                       restarts=xp.asarray(s.restarts, dtype=xp.int32))
    return s


def block(bk: Backend, d: Data, s: State) -> State:
    """``check_every`` iterations (fewer at the iteration limit), the last one with the checks."""
    n = bk.xp.minimum(d.settings.block, d.settings.max_iter - s.it)
    s = bk.fori(n - 1, lambda s: iterate(bk, d, s), s)
    return evaluate(bk, d, s)


def _monitor(bk, s: State, d: Data):
    return {"objective": s.pobj, "rel_primal": s.rel_prim,
            "rel_dual": s.rel_dual, "rel_gap": s.rel_gap, "fixed_point": s.fpr,
            "omega": s.omega, "restarts": s.restarts}


def _stopped(bk, s: State, d: Data):
    return (s.flag != RUNNING) | (s.it >= d.settings.max_iter)


ALGORITHM = Algorithm("halpern_pdhg", lambda bk, s, d: block(bk, d, s), _monitor, _stopped)


def _vector_sharding(mesh, v):
    """Vectors split over the mesh's axis when their length allows, everything else replicated."""
    from jax.sharding import NamedSharding, PartitionSpec as P

    split = np.ndim(v) == 1 and v.shape[0] % mesh.devices.size == 0
    return NamedSharding(mesh, P(mesh.axis_names[0]) if split else P())


def shard_vector(bk: Backend, v, mesh):
    return bk._jax.device_put(v, _vector_sharding(mesh, v))


@functools.lru_cache(maxsize=16)
def algorithm(mesh=None, check_every: int = 1) -> Algorithm:
    """The driver `Algorithm`, one step counted as ``check_every`` iterations (the block of
    `block`; the last block of a run stops at ``max_iter``); with a mesh, its step pins the
    state's sharding (vectors split over the devices), so that the driver's compiled loop sees
    the same layout at every call. Cached on these static arguments."""
    if mesh is None:
        return ALGORITHM._replace(iterations_per_step=check_every)

    def step(bk, s, d):
        s = block(bk, d, s)
        wsc = bk._jax.lax.with_sharding_constraint
        return State(*[wsc(v, _vector_sharding(mesh, v)) for v in s])

    return Algorithm("halpern_pdhg", step, _monitor, _stopped, check_every)


def init_state(bk: Backend, d: Data, x0, y0, omega0, mesh=None) -> State:
    """The state at the (scaled) starting point, with ``r0`` its fixed-point residual (jitted
    on JAX)."""
    f = bk.asarray
    x, y = f(x0), f(y0)
    if mesh is not None:
        x, y = shard_vector(bk, x, mesh), shard_vector(bk, y, mesh)
    if bk.name == "jax":
        s = bk.jit(_init_state, static_argnums=0)(bk, d, x, y, f(omega0))
        return s if mesh is None else State(*[shard_vector(bk, v, mesh) for v in s])
    return _init_state(bk, d, x, y, omega0)


def _init_state(bk: Backend, d: Data, x, y, omega) -> State:
    xp, f = bk.xp, bk.asarray
    xh, yh, _, Kxbar = pdhg_map(bk, d, x, y, omega)
    Kxh = d.K @ xh
    r0 = fixed_point_residual(bk, d, omega, x - xh, y - yh, Kxh - Kxbar)
    m = metrics(bk, d, Kxh, d.Kt @ yh, xh, yh)
    i = (lambda v: xp.asarray(v, dtype=xp.int32)) if bk.name == "jax" else int
    b = (lambda v: xp.asarray(v)) if bk.name == "jax" else bool
    zero = f(0.0)
    return State(x, y, x, y, xh, yh, i(0), i(0), omega, zero, zero, r0, r0, r0, i(0), b(False),
                 i(RUNNING), m.prim, m.dual, m.gap, m.pobj, m.dobj, m.rel_prim, m.rel_dual, m.rel_gap,
                 xp.zeros_like(x), xp.zeros_like(y))
