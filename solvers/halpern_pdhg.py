r"""Restarted reflected Halpern PDHG (r2HPDHG) for linear programs, on numpy/scipy or JAX.

Method of Lu & Yang, "Restarted Halpern PDHG for linear programming" (arXiv 2407.16144), with the
restart, primal-weight and termination rules of cuPDLPx (Lu, Peng & Yang, arXiv 2507.14051).

**Problem** (bound form)

$$
\min_x\ c^\top x \quad\text{s.t.}\quad l_c \le Kx \le u_c,\qquad l_v \le x \le u_v,
$$

with $K$ (m, n) dense or scipy.sparse and bounds that may be infinite. Its dual variables are
$y$ (m) for the rows ($y_i \ge 0$ pushes against $l_{c,i}$, $y_i \le 0$ against $u_{c,i}$) and
the reduced costs $r = c - K^\top y$ for the variable bounds.

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

**Preconditioning.** The rows of $K$ whose infinity norms lie outside $[10^{-4}, 10^4]$ (where
Ruiz's scaling stops) divided by those norms, then 10 rounds of Ruiz equilibration of $K$ (infinity norms,
`cvxkit.solvers.scaling`), then Pock-Chambolle scaling with $\alpha = 1$ (rows by
$1/\sqrt{\lVert K_{i,:}\rVert_1}$, columns by $1/\sqrt{\lVert K_{:,j}\rVert_1}$), then the bounds
and the cost are divided by $\lVert b\rVert_2$ and $\lVert c\rVert_2$ of the equilibrated problem
(cuPDLPx's "bound-objective rescaling", without its ``1 +``: a vector that is zero is left as it
is). The scaled problem is therefore the same (up to rounding) when $c$, the bounds or the rows
are multiplied by a constant, and so are the iterations.

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
  \le 10^{-3}\epsilon_{abs}\, t + \epsilon_{rel}(\lvert c^\top x\rvert + \lvert d\rvert)$
  with the dual objective $d(y, r) = \sum_i (l_{c,i} y_i^+ - u_{c,i} y_i^-) + \sum_j (l_{v,j} r_j^+ - u_{v,j} r_j^-)$,
  $v = Kx - \Pi_S(Kx)$, and $t$ the Euclidean norm of the vector of the terms of $c^\top x$ and
  of $d$ (the absolute part matters only when the optimal value is 0 or nearly so:
  ``GAP_FLOOR``). The two sums bound what the residuals can hide: for a feasible $x^*$,
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
and ``rel_gap`` $= \text{gap}/(10^{-3} t + \lvert c^\top x\rvert + \lvert d\rvert)$ (0 for 0/0):
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

**Back ends.** numpy: scipy.sparse CSR products (threaded when large). JAX: ``jax.experimental.sparse``
BCOO products (dense arrays for dense data), the whole block of ``check_every`` iterations and the
check jitted inside one ``lax.while_loop`` (the driver syncs with the host every ``sync_every``
blocks). A ``mesh`` (``jax.sharding.Mesh`` with one axis) shards the rows of $K$ (and of
$K^\top$) and the iterates over its devices. float64 by default; float32 (``dtype="float32"``)
reaches about 1e-4 relative accuracy.
"""
from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import numpy as np

from cvxkit.solvers import kkt
from cvxkit.solvers import validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Options, run
from cvxkit.solvers.primal_dual import (DIVERGED, DIVERGED_AT, DUAL_INFEASIBLE, FLAG_STATUS,
                                        INF_BOUND, INFEASIBLE_OBJECTIVE, PRIMAL_INFEASIBLE,
                                        RUNNING, SOLVED, certificate, loop_verdict, warm_parts)
from cvxkit.solvers.result import Result, Status, as_numpy_history
from cvxkit.solvers.scaling import MAX_SCALING, MIN_SCALING, ruiz_sparse

#: displacements outside [WEIGHT_MIN_MOVE, WEIGHT_MAX_MOVE] skip the primal-weight update
WEIGHT_MIN_MOVE, WEIGHT_MAX_MOVE = 1e-10, 1e10
STEP_FRACTION = 0.998
#: the absolute part of the gap test is eps_abs * GAP_FLOOR * (magnitude of the objectives' terms)
GAP_FLOOR = 1e-3
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
    tobj = xp.sqrt(xp.sum(cx * cx) + dsq)
    objs = xp.abs(pobj) + xp.abs(dobj)
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
    return {"iterations": s.it, "objective": s.pobj, "rel_primal": s.rel_prim,
            "rel_dual": s.rel_dual, "rel_gap": s.rel_gap, "fixed_point": s.fpr,
            "omega": s.omega, "restarts": s.restarts}


def _stopped(bk, s: State, d: Data):
    return (s.flag != RUNNING) | (s.it >= d.settings.max_iter)


ALGORITHM = Algorithm("halpern_pdhg", lambda bk, s, d: block(bk, d, s), _monitor, _stopped)


# ============================================================================================
# Setup: validation, preconditioning, step size
# ============================================================================================
def _bounds(name, v, size, fill):
    """A bound vector: ``None`` is ``size`` copies of ``fill``, a number is broadcast; entries of
    magnitude >= 1e20 are infinite (HiGHS's convention)."""
    if v is None:
        return np.full(size, fill)
    v = validate.float_array(name, v)
    if v.ndim == 0:
        v = np.full(size, float(v))
    if v.shape != (size,):
        raise ValueError(f"{name} must be a number or have shape ({size},), got {v.shape}")
    if np.isnan(v).any():
        raise ValueError(f"{name} contains NaN entries")
    return np.where(v <= -INF_BOUND, -np.inf, np.where(v >= INF_BOUND, np.inf, v))


def validate_cost(c) -> np.ndarray:
    """``c`` as a finite float64 vector of shape (n,), n >= 1, else ``ValueError``."""
    c = validate.float_array("c", c, finite=True)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"c must have shape (n,) with n >= 1, got {c.shape}")
    return c


def validate_lp(c, K, lc, uc, lv, uv):
    """Check and normalize bound-form LP data; returns ``(c, K, lc, uc, lv, uv)`` as float64
    arrays (``K`` dense or scipy.sparse CSR, from any scipy.sparse format). Raises
    ``ValueError`` with the reason."""
    c = validate_cost(c)
    n = c.shape[0]
    K = validate.matrix("K", np.zeros((0, n)) if K is None else K)
    if K.ndim != 2 or K.shape[1] != n:
        raise ValueError(f"K must have shape (m, n) with n = {n}, got {K.shape}")
    if validate.is_sparse(K):
        K = K.tocsr()
    m = K.shape[0]
    lc, uc = _bounds("lc", lc, m, -np.inf), _bounds("uc", uc, m, np.inf)
    lv, uv = _bounds("lv", lv, n, -np.inf), _bounds("uv", uv, n, np.inf)
    for lo, hi, what in ((lc, uc, "row"), (lv, uv, "variable")):
        if (lo == np.inf).any() or (hi == -np.inf).any():
            raise ValueError(f"{what} lower bounds must be < +inf and upper bounds > -inf")
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{what} bounds cross at index {i}: lower {lo[i]:.6g} > upper {hi[i]:.6g}")
    return c, K, lc, uc, lv, uv


def data_scales(c, K, lc, uc, lv, uv):
    """The unscaled magnitudes of the tests (module docstring): ``(b, ||b / kappa||, ||c||,
    kappa, ||c||_inf, sigma_x)`` with ``b_i`` the largest finite bound of row ``i`` in magnitude
    and ``kappa_i`` the infinity norm of row ``i`` (1 for an empty row)."""
    b = np.maximum(np.where(np.isfinite(lc), np.abs(lc), 0.0), np.where(np.isfinite(uc), np.abs(uc), 0.0))
    if validate.is_sparse(K):
        kappa = abs(K).max(axis=1).toarray().ravel()
    else:
        kappa = np.abs(K).max(axis=1, initial=0.0)
    kappa = np.where(kappa > 0, kappa, 1.0)
    bounds = np.concatenate([np.abs(lv[np.isfinite(lv)]), np.abs(uv[np.isfinite(uv)]), b / kappa])
    return (b, float(np.linalg.norm(b / kappa)), float(np.linalg.norm(c)), kappa,
            float(np.abs(c).max(initial=0.0)), float(bounds.max(initial=0.0)))


def _abs_max(K, axis):
    """The largest magnitudes of ``K``'s rows (``axis=1``) or columns (``axis=0``), 1 where 0."""
    s = abs(K).max(axis=axis).toarray().ravel() if K.shape[axis] else np.zeros(K.shape[1 - axis])
    return np.where(s > 0, s, 1.0)


def _abs_sums(K, axis):
    s = np.asarray(abs(K).sum(axis=axis)).ravel()
    return np.where(s > 0, s, 1.0)


def precondition(c, K, lc, uc, lv, uv, ruiz_iters=10, pock_chambolle=True, rescale=True):
    """Scale the LP (see the module docstring); returns ``(Ks, D, E, beta_b, beta_c)`` with
    ``Ks = diag(E) K diag(D)`` (CSR) and the bound / cost divisors."""
    import scipy.sparse as sp

    n = c.shape[0]
    Kc = sp.csc_matrix(K)
    # Ruiz (OSQP's) leaves rows with norms below MIN_SCALING alone and scales those above
    # MAX_SCALING as if they were MAX_SCALING: a row multiplied by 1e-9 would stay 1e-9 times
    # smaller than the others. Such rows go to unit infinity norm first; Ruiz equilibrates the
    # others, so that the result hardly depends on the scale of any row.
    kappa = _abs_max(Kc, 1)
    E0 = np.where((kappa < MIN_SCALING) | (kappa > MAX_SCALING), 1.0 / kappa, 1.0)
    Kc = sp.csc_matrix(sp.diags(E0) @ Kc)
    D0 = np.ones(n)
    if ruiz_iters > 0 and Kc.shape[0] > 0:
        s = ruiz_sparse(sp.csc_matrix((n, n)), np.zeros(n), Kc, iters=ruiz_iters)
        Ks, D, E = s.A, s.D * D0, s.E * E0
    else:
        Ks, D, E = Kc, D0, E0
    if pock_chambolle and Ks.shape[0] > 0:
        er = 1.0 / np.sqrt(_abs_sums(Ks, 1))
        dc = 1.0 / np.sqrt(_abs_sums(Ks, 0))
        Ks = sp.diags(er) @ Ks @ sp.diags(dc)
        D, E = D * dc, E * er
    beta_b = beta_c = 1.0
    if rescale:
        b = np.maximum(np.where(np.isfinite(lc), np.abs(lc), 0.0),
                       np.where(np.isfinite(uc), np.abs(uc), 0.0)) * E
        beta_b = float(np.linalg.norm(b)) or 1.0
        beta_c = float(np.linalg.norm(c * D)) or 1.0
    return sp.csr_matrix(Ks), D, E, beta_b, beta_c


def operator_norm(K, seed=0) -> float:
    """``||K||_2`` (LAPACK for small matrices, ARPACK's Lanczos otherwise)."""
    m, n = K.shape
    if m == 0 or K.nnz == 0:
        return 0.0
    if min(m, n) <= 2 or m * n <= 40_000:
        return float(np.linalg.norm(K.toarray(), 2))
    from scipy.sparse.linalg import svds

    v0 = np.random.default_rng(seed).standard_normal(min(m, n))
    try:
        return float(svds(K, k=1, return_singular_vectors=False, tol=1e-5, v0=v0)[0])
    except Exception:  # noqa: BLE001 - ARPACK did not converge: power iteration
        v = v0 if n <= m else np.random.default_rng(seed).standard_normal(n)
        v = np.resize(v, n)
        est = 0.0
        for _ in range(500):
            w = K.T @ (K @ v)
            new = float(np.sqrt(np.linalg.norm(w)))
            v = w / max(np.linalg.norm(w), 1e-300)
            if abs(new - est) <= 1e-7 * new:
                break
            est = new
        return new * 1.001


#: products with matrices denser than this (fraction of entries) use dense arrays
DENSE_FRACTION = 0.25
#: and only below this many entries
DENSE_MAX = 4_000_000


class _Scaled(NamedTuple):
    K: Any  # scipy CSR (scaled)
    c: Any
    lv: Any
    uv: Any
    lc: Any
    uc: Any
    D: Any
    E: Any
    beta_b: float
    beta_c: float
    eta: float
    omega0: float


def scale_problem(c, K, lc, uc, lv, uv, cfg) -> _Scaled:
    """The preconditioned problem, its step size and initial primal weight (numpy)."""
    Ks, D, E, bb, bc = precondition(c, K, lc, uc, lv, uv, cfg["ruiz_iters"], cfg["pock_chambolle"],
                                    cfg["rescale"])
    xs = bb * D
    cs = c * xs / (bb * bc)  # = D c / beta_c
    lvs, uvs = lv / xs, uv / xs
    lcs, ucs = lc * E / bb, uc * E / bb
    normK = operator_norm(Ks, cfg["seed"])
    eta = STEP_FRACTION / normK if normK > 0 else 1.0
    bfin = np.maximum(np.where(np.isfinite(lcs), np.abs(lcs), 0.0),
                      np.where(np.isfinite(ucs), np.abs(ucs), 0.0))
    cn, bn = np.linalg.norm(cs), np.linalg.norm(bfin)
    omega0 = cfg["primal_weight"] or (cn / bn if cn > 1e-10 and bn > 1e-10 else 1.0)
    return _Scaled(Ks, cs, lvs, uvs, lcs, ucs, D, E, bb, bc, eta, float(omega0))


def _settings(bk: Backend, cfg) -> Settings:
    xp = bk.xp
    f = bk.asarray
    i = (lambda v: xp.asarray(v, dtype=xp.int32)) if bk.name == "jax" else int
    b = (lambda v: xp.asarray(v)) if bk.name == "jax" else bool
    return Settings(f(cfg["eps_abs"]), f(cfg["eps_rel"]), f(cfg["eps_pinf"]), f(cfg["eps_dinf"]),
                    f(cfg["reflection"]), f(RESTART_SUFFICIENT), f(RESTART_NECESSARY),
                    f(RESTART_ARTIFICIAL), f(0.99), f(0.01), f(0.0), f(0.3),
                    b(cfg["adapt_weight"]), i(cfg["block"]), i(cfg["max_iter"]))


class RowSparse:
    """A sparse matrix for JAX as its nonzeros in row order: ``data``, column ``cols`` and row
    ``rows`` indices (static ``shape``). ``M @ v`` is ``segment_sum(data * v[cols], rows)`` with
    sorted segments: on CPU about 4x faster than a BCOO product (one gather, one sorted
    reduction, no scatter). A pytree (registered on first use)."""

    _registered = False

    def __init__(self, data, cols, rows, shape):
        self.data, self.cols, self.rows, self.shape = data, cols, rows, tuple(shape)

    def __matmul__(self, v):
        import jax

        return jax.ops.segment_sum(self.data * v[self.cols], self.rows,
                                   num_segments=self.shape[0], indices_are_sorted=True)

    @classmethod
    def from_scipy(cls, bk: Backend, M):
        import jax

        if not cls._registered:
            jax.tree_util.register_pytree_node(
                cls, lambda a: ((a.data, a.cols, a.rows), a.shape),
                lambda shape, leaves: cls(*leaves, shape))
            cls._registered = True
        M = M.tocsr()
        M.sort_indices()
        jnp = bk.xp
        rows = np.repeat(np.arange(M.shape[0], dtype=np.int32), np.diff(M.indptr))
        return cls(jnp.asarray(M.data, dtype=bk.dtype), jnp.asarray(M.indices, dtype=jnp.int32),
                   jnp.asarray(rows), M.shape)


def _matrices(bk: Backend, Ks, mesh, sparse_format="auto"):
    """``(K, K^T)`` for the back end: dense if dense enough, else CSR (numpy), or on JAX
    `RowSparse` (``sparse_format="segment"``; the default on CPU) or BCOO (``"bcoo"``; the
    default on accelerators, where it maps to cuSPARSE)."""
    import scipy.sparse as sp

    m, n = Ks.shape
    dense = m * n <= DENSE_MAX and Ks.nnz >= DENSE_FRACTION * m * n
    if bk.name == "numpy":
        if dense:
            A = Ks.toarray().astype(bk.dtype)
            return A, np.ascontiguousarray(A.T)
        return (kkt.fast_csr(Ks.astype(bk.dtype)), kkt.fast_csr(sp.csr_matrix(Ks.T).astype(bk.dtype)))
    from jax.experimental import sparse as jsparse

    jnp = bk.xp
    if dense:
        K, Kt = jnp.asarray(Ks.toarray(), dtype=bk.dtype), jnp.asarray(Ks.T.toarray(), dtype=bk.dtype)
    else:
        if sparse_format == "auto":
            sparse_format = "segment" if bk._jax.default_backend() == "cpu" else "bcoo"
        if sparse_format == "segment":
            K, Kt = RowSparse.from_scipy(bk, Ks), RowSparse.from_scipy(bk, sp.csr_matrix(Ks.T))
        else:
            K = jsparse.BCOO.from_scipy_sparse(Ks.astype(bk.dtype)).sort_indices()
            Kt = jsparse.BCOO.from_scipy_sparse(sp.csr_matrix(Ks.T).astype(bk.dtype)).sort_indices()
    if mesh is not None:
        K, Kt = _shard_rows(bk, K, mesh), _shard_rows(bk, Kt, mesh)
    return K, Kt


def _shard_rows(bk: Backend, M, mesh):
    """Place ``M`` on ``mesh`` split by rows (a BCOO: its nonzeros in row-sorted order)."""
    jax = bk._jax
    from jax.sharding import NamedSharding, PartitionSpec as P

    axis = mesh.axis_names[0]
    if isinstance(M, RowSparse):  # nonzeros in row order: split them in contiguous blocks
        pad = (-M.data.shape[0]) % mesh.devices.size
        leaves = [M.data, M.cols, M.rows]
        if pad:  # zero entries in the last row keep the product unchanged
            leaves = [bk.xp.concatenate([v, bk.xp.broadcast_to(v[-1:] * (0 if i == 0 else 1), (pad,))])
                      for i, v in enumerate(leaves)]
        sh = NamedSharding(mesh, P(axis))
        return RowSparse(*[jax.device_put(v, sh) for v in leaves], M.shape)
    if hasattr(M, "indices"):  # BCOO with sorted indices: nonzeros are in row blocks
        ndev = mesh.devices.size
        nnz = M.data.shape[0]
        pad = (-nnz) % ndev
        data, idx = M.data, M.indices
        if pad:  # zero entries at the last position keep the product unchanged
            data = bk.xp.concatenate([data, bk.xp.zeros(pad, data.dtype)])
            idx = bk.xp.concatenate([idx, bk.xp.broadcast_to(idx[-1:], (pad, 2))])
        from jax.experimental import sparse as jsparse

        data = jax.device_put(data, NamedSharding(mesh, P(axis)))
        idx = jax.device_put(idx, NamedSharding(mesh, P(axis, None)))
        return jsparse.BCOO((data, idx), shape=M.shape, indices_sorted=True)
    rows = M.shape[0]
    if rows % mesh.devices.size == 0:
        return jax.device_put(M, NamedSharding(mesh, P(axis, None)))
    return jax.device_put(M, NamedSharding(mesh, P()))


def _vector_sharding(mesh, v):
    """Vectors split over the mesh's axis when their length allows, everything else replicated."""
    from jax.sharding import NamedSharding, PartitionSpec as P

    split = np.ndim(v) == 1 and v.shape[0] % mesh.devices.size == 0
    return NamedSharding(mesh, P(mesh.axis_names[0]) if split else P())


def _shard_vector(bk: Backend, v, mesh):
    return bk._jax.device_put(v, _vector_sharding(mesh, v))


_MESH_ALGORITHMS: dict = {}


def algorithm(mesh=None) -> Algorithm:
    """The driver `Algorithm`; with a mesh, its step pins the state's sharding (vectors split
    over the devices), so that the driver's compiled loop sees the same layout at every call."""
    if mesh is None:
        return ALGORITHM
    if mesh not in _MESH_ALGORITHMS:
        def step(bk, s, d):
            s = block(bk, d, s)
            wsc = bk._jax.lax.with_sharding_constraint
            return State(*[wsc(v, _vector_sharding(mesh, v)) for v in s])

        _MESH_ALGORITHMS[mesh] = Algorithm("halpern_pdhg", step, _monitor, _stopped)
    return _MESH_ALGORITHMS[mesh]


def make_data(bk: Backend, c, K_user, lc, uc, lv, uv, sc: _Scaled, cfg, mesh=None) -> Data:
    """The `Data` of the scaled problem ``sc`` of the LP ``(c, K_user, ...)`` on back end ``bk``."""
    K, Kt = _matrices(bk, sc.K, mesh, cfg["sparse_format"])
    Kabs, Ktabs = _matrices(bk, abs(sc.K), mesh, cfg["sparse_format"])
    f = bk.asarray
    _, bnorm, cnorm, kappa, cinf, xscale = data_scales(c, K_user, lc, uc, lv, uv)
    xs, ys = sc.beta_b * sc.D, sc.beta_c * sc.E
    kxs, kys = sc.beta_b / sc.E, sc.beta_c / sc.D
    mask = (lambda v: bk.xp.asarray(v)) if bk.name == "jax" else np.asarray
    d = Data(K, Kt, Kabs, Ktabs, f(sc.c), f(sc.lv), f(sc.uv), f(sc.lc), f(sc.uc), f(sc.eta), f(xs), f(ys), f(kxs),
             f(kys), f(c), f(lv), f(uv), f(lc), f(uc), mask(np.isfinite(lv)), mask(np.isfinite(uv)),
             mask(np.isfinite(lc)), mask(np.isfinite(uc)), f(bnorm), f(cnorm), f(kappa), f(cinf),
             f(xscale), _settings(bk, cfg))
    if mesh is not None:
        shard = {name: _shard_vector(bk, getattr(d, name), mesh) for name in Data._fields
                 if name not in ("K", "Kt", "Kabs", "Ktabs", "settings") and np.ndim(getattr(d, name)) == 1}
        d = d._replace(**shard)
    return d


def init_state(bk: Backend, d: Data, x0, y0, omega0, mesh=None) -> State:
    """The state at the (scaled) starting point, with ``r0`` its fixed-point residual (jitted
    on JAX)."""
    f = bk.asarray
    x, y = f(x0), f(y0)
    if mesh is not None:
        x, y = _shard_vector(bk, x, mesh), _shard_vector(bk, y, mesh)
    if bk.name == "jax":
        s = bk.jit(_init_state, static_argnums=0)(bk, d, x, y, f(omega0))
        return s if mesh is None else State(*[_shard_vector(bk, v, mesh) for v in s])
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


# ============================================================================================
# Public entry point
# ============================================================================================
_WARM_EXPECTED = ("warm_start must be a Result of halpern_pdhg, a dict {'x': (n,), 'y': (m,)} "
                  "or a pair (x, y) of finite arrays of shapes (n,) and (m,)")


def _warm(warm_start, n, m):
    """``(x, y)`` (unscaled) from a Result, a dict or a pair; zeros if None (or for a missing
    part). Anything else, or parts of the wrong shape or with NaN/inf entries, raise
    ``ValueError`` saying what is expected."""
    parts = warm_parts(warm_start, _WARM_EXPECTED) or {"x": None, "y": None}
    out = []
    for part, size in (("x", n), ("y", m)):
        v = parts[part]
        if v is None:
            out.append(np.zeros(size))
            continue
        try:
            v = validate.float_array(f"warm_start {part}", v)
        except ValueError as e:
            raise ValueError(f"{_WARM_EXPECTED}: {e}") from None
        if v.shape != (size,):
            raise ValueError(f"{_WARM_EXPECTED}; got {part} of shape {v.shape}, expected ({size},)")
        if not np.isfinite(v).all():
            if isinstance(warm_start, Result):  # an infeasibility status has x = NaN: start at 0
                v = np.where(np.isfinite(v), v, 0.0)
            else:
                raise ValueError(f"{_WARM_EXPECTED}; got NaN or infinite entries in {part}")
        out.append(v)
    return out[0], out[1]


def halpern_pdhg(c, K=None, lc=None, uc=None, lv=None, uv=None, *, backend="numpy", tol=1e-4,
                 eps_abs=None, eps_rel=None, max_iter=100_000, time_limit=math.inf, verbose=False,
                 callback=None, check_every=64, sync_every=None, seed=0, warm_start=None,
                 dtype="float64", reflection=1.0, eps_primal_infeasible=1e-8,
                 eps_dual_infeasible=1e-8, ruiz_iters=10, pock_chambolle=True, rescale=True,
                 primal_weight=None, adaptive_primal_weight=True, mesh=None,
                 sparse_format="auto") -> Result:
    r"""Solve $\min c^\top x$ s.t. $l_c \le Kx \le u_c$, $l_v \le x \le u_v$ by r2HPDHG.

    Args:
        c: (n,) cost. K: (m, n) dense or scipy.sparse (None: no rows).
        lc, uc: (m,) row bounds (None: -inf / +inf). lv, uv: (n,) variable bounds (None: free).
        backend: ``"numpy"`` (scipy.sparse products) or ``"jax"`` (BCOO, jitted loop).
        tol: default for ``eps_abs`` and ``eps_rel``: the tests of the module docstring, all
            relative to magnitudes of the data (invariant to scaling the cost, the bounds or
            any row); ``eps_abs`` may be 0 (not both).
        max_iter: PDHG iterations; time_limit: seconds; check_every: iterations between checks
            (restart, termination, infeasibility); sync_every: JAX blocks between host syncs
            (default: about 1000 iterations' worth, 1 when verbose or with a callback).
        warm_start: a `Result`, ``{"x": ..., "y": ...}`` or a pair ``(x, y)`` (unscaled).
        dtype: ``"float64"`` or ``"float32"``.
        reflection: $\rho$ of the Halpern step (1: r2HPDHG, 0: Halpern PDHG).
        eps_primal_infeasible, eps_dual_infeasible: certificate tolerances (relative; see the
            module docstring for what an accepted certificate proves).
        ruiz_iters, pock_chambolle, rescale: the preconditioning steps (0/False to skip).
        primal_weight: initial $\omega$ (default $\lVert c\rVert/\lVert b\rVert$ after scaling);
        adaptive_primal_weight: update it at restarts.
        mesh: a one-axis ``jax.sharding.Mesh`` (JAX only): shard $K$'s rows and the iterates.
        sparse_format: JAX products with sparse $K$: ``"segment"`` (`RowSparse`), ``"bcoo"``
            (``jax.experimental.sparse``) or ``"auto"`` (segment on CPU, BCOO on accelerators).

    Returns a `Result` with ``x`` (n,), ``objective`` $c^\top x$, ``primal_residual`` and
    ``dual_residual`` (the absolute Euclidean residuals of the module docstring), ``dual`` the
    multipliers ``y`` (m,) (the same array as ``info['y']``), and ``info``
    holding ``y`` (m), ``reduced_costs`` (n), ``dual_objective``, ``rel_primal``, ``rel_dual``,
    ``rel_gap``, ``restarts``, ``restart_iterations``, ``primal_weight``, ``certificate`` (an
    unscaled ray, for an infeasibility status), ``step_size``, ``rejected`` (the candidates,
    (iteration, status), that the final float64 check on the user's data refused). A
    ``warm_start`` of another type or shape, or with NaN entries, raises ``ValueError``.
    ``history`` holds, per check,
    the iteration, relative residuals, fixed-point residual, primal weight and restart count.
    """
    t0 = time.perf_counter()
    c, K, lc, uc, lv, uv = validate_lp(c, K, lc, uc, lv, uv)
    n, m = c.shape[0], K.shape[0]
    tol = validate.positive("tol", tol)
    max_iter = validate.integer("max_iter", max_iter)
    check_every = validate.integer("check_every", check_every)
    sync_every = validate.integer("sync_every", sync_every, allow_none=True)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, seed=seed, dtype=dtype)
    reflection = validate.nonnegative("reflection", reflection)
    if reflection > 1.0:
        raise ValueError(f"reflection must be in [0, 1], got {reflection!r}")
    if mesh is not None and backend != "jax":
        raise ValueError("mesh needs backend='jax'")
    validate.choice("sparse_format", sparse_format, ("auto", "segment", "bcoo"))
    cfg = dict(eps_abs=validate.positive("eps_abs", tol if eps_abs is None else eps_abs, allow_zero=True),
               eps_rel=validate.positive("eps_rel", tol if eps_rel is None else eps_rel, allow_zero=True),
               eps_pinf=validate.positive("eps_primal_infeasible", eps_primal_infeasible),
               eps_dinf=validate.positive("eps_dual_infeasible", eps_dual_infeasible),
               reflection=reflection, adapt_weight=validate.boolean("adaptive_primal_weight",
                                                                    adaptive_primal_weight),
               block=check_every, max_iter=max_iter,
               ruiz_iters=validate.integer("ruiz_iters", ruiz_iters, minimum=0),
               pock_chambolle=validate.boolean("pock_chambolle", pock_chambolle),
               rescale=validate.boolean("rescale", rescale), seed=seed,
               primal_weight=validate.positive("primal_weight", primal_weight, allow_none=True),
               sparse_format=sparse_format)
    if cfg["eps_abs"] == 0 and cfg["eps_rel"] == 0:
        raise ValueError("eps_abs and eps_rel cannot both be 0")
    xw, yw = _warm(warm_start, n, m)
    bk = get_backend(backend, dtype)
    sc = scale_problem(c, K, lc, uc, lv, uv, cfg)
    with bk.precision():
        d = make_data(bk, c, K, lc, uc, lv, uv, sc, cfg, mesh)
        t_init = time.perf_counter()
        s = bk.block(init_state(bk, d, xw / (sc.beta_b * sc.D), yw / (sc.beta_c * sc.E), sc.omega0,
                                mesh))
        # on JAX the (jitted) first PDHG step is mostly its compilation: count it as such
        t_init = time.perf_counter() - t_init if bk.name == "jax" else 0.0
        setup_time = time.perf_counter() - t0 - t_init
        if sync_every is None:
            sync_every = 1 if (verbose or callback is not None) else max(1, 1024 // check_every)
        user = _UserCheck(c, K, lc, uc, lv, uv, cfg)
        runs, t_start = [], time.perf_counter()
        while True:
            done = int(np.asarray(bk.to_numpy(s.it)))
            left = time_limit - (time.perf_counter() - t_start)
            dopts = Options(tol=opts.tol, max_iter=-(-(max_iter - done) // check_every) + 1,
                            time_limit=max(left, 1e-9), verbose=verbose, callback=callback,
                            check_every=sync_every if bk.name == "jax" else 1, seed=seed, dtype=dtype)
            out = run(algorithm(mesh), bk, s, d, dopts)
            runs.append(out)
            s = out.state
            fin = {k: np.asarray(bk.to_numpy(getattr(s, k))) for k in State._fields}
            flag = int(fin["flag"])
            if flag in (RUNNING, DIVERGED) or user.confirms(flag, fin, sc):
                break
            fin["flag"] = np.asarray(RUNNING)  # not confirmed: no status of it is reported
            if fin["it"] >= max_iter or out.status in (Status.TIME_LIMIT, Status.INTERRUPTED):
                break
            # the float64 check on the user's data failed: go on with a tighter internal test
            d = d._replace(settings=user.tighten(bk, d.settings, flag))
            s = s._replace(flag=bk.xp.asarray(RUNNING, dtype=bk.xp.int32) if bk.name == "jax" else RUNNING)
    usex, usey = float(np.asarray(bk.to_numpy(d.xscale))) > 0, float(np.asarray(bk.to_numpy(d.cnorm))) > 0
    return _result(c, fin, sc, _merge(runs), setup_time, t_init, bk.name, user.rejected, usex, usey)


class _UserCheck:
    """The final tests of an ``optimal`` point or an infeasibility certificate, in float64 on the
    user's own (unscaled) data, with the same formulas as the loop's; ``tighten`` divides the
    loop's tolerance of a test that this check rejected by 10."""

    def __init__(self, c, K, lc, uc, lv, uv, cfg):
        self.bk = get_backend("numpy", "float64")
        self.lp, self.cfg, self._d = (c, K, lc, uc, lv, uv), cfg, None
        self.rejected = []  # (iteration, status) of each rejected candidate

    @property
    def d(self) -> Data:
        """The user's data as a `Data` with unit scaling (built on first use)."""
        if self._d is None:
            import scipy.sparse as sp

            c, K, lc, uc, lv, uv = self.lp
            ident = _Scaled(sp.csr_matrix(K), c, lv, uv, lc, uc, np.ones(c.shape[0]),
                            np.ones(K.shape[0]), 1.0, 1.0, 1.0, 1.0)
            self._d = make_data(self.bk, c, K, lc, uc, lv, uv, ident, self.cfg)
        return self._d

    def confirms(self, flag, fin, sc) -> bool:
        bk, d = self.bk, self.d
        if flag == SOLVED:  # (metrics zeroes x or y where the module docstring says)
            x = sc.beta_b * sc.D * fin["xh"].astype(np.float64)
            y = sc.beta_c * sc.E * fin["yh"].astype(np.float64)
            ok = bool(metrics(bk, d, d.K @ x, d.Kt @ y, x, y).ok)
        elif flag == PRIMAL_INFEASIBLE:
            ok = bool(primal_infeasible(bk, d, fin["ray_y"].astype(np.float64))[0])
        elif flag == DUAL_INFEASIBLE:
            ok = bool(dual_infeasible(bk, d, fin["ray_x"].astype(np.float64))[0])
        else:
            return True
        if not ok:
            self.rejected.append((int(fin["it"]), FLAG_STATUS[flag].value))
        return ok

    @staticmethod
    def tighten(bk, st: Settings, flag) -> Settings:
        f = bk.asarray
        if flag == SOLVED:
            return st._replace(eps_abs=f(0.1 * st.eps_abs), eps_rel=f(0.1 * st.eps_rel))
        if flag == PRIMAL_INFEASIBLE:
            return st._replace(eps_pinf=f(0.1 * st.eps_pinf))
        return st._replace(eps_dinf=f(0.1 * st.eps_dinf))


def _merge(runs):
    """One driver `Run` from the runs of the loop above (histories concatenated)."""
    if len(runs) == 1:
        return runs[0]
    last, hist, t = runs[-1], {}, 0.0
    for r in runs:
        for k, v in r.history.items():
            v = list(v)
            hist.setdefault(k, []).extend([e + t for e in v] if k == "time" else v)
        t += r.solve_time
    return last._replace(history=hist, solve_time=t, iterations=sum(r.iterations for r in runs),
                         compile_time=sum(r.compile_time for r in runs))


def _result(c, s: dict, sc: _Scaled, out, setup_time, init_time, backend, rejected=(),
            usex=True, usey=True) -> Result:
    status = loop_verdict(s["flag"], out.status)
    h = as_numpy_history(out.history)
    if "iterations" in h:
        h["iteration"] = h.pop("iterations").astype(int)
    restart_its = []
    if "restarts" in h and len(h["restarts"]):
        grew = np.diff(h["restarts"], prepend=0) > 0
        restart_its = h["iteration"][grew].tolist()
    x = sc.beta_b * sc.D * s["xh"].astype(np.float64) * bool(usex)
    y = sc.beta_c * sc.E * s["yh"].astype(np.float64) * bool(usey)
    info = {"y": y, "dual_objective": float(s["dobj"]), "rel_primal": float(s["rel_prim"]),
            "rel_dual": float(s["rel_dual"]), "rel_gap": float(s["rel_gap"]),
            "gap": float(s["gap"]), "restarts": int(s["restarts"]),
            "restart_iterations": restart_its, "primal_weight": float(s["omega"]),
            "step_size": float(sc.eta), "fixed_point_residual": float(s["fpr"]),
            "rejected": list(rejected)}
    cert = certificate(status, s["ray_y"], s["ray_x"])
    if cert is not None:
        info["certificate"] = cert
        obj = INFEASIBLE_OBJECTIVE[status]
        x = np.full_like(x, np.nan)
    else:
        obj = float(c @ x)
    return Result(x=x, status=status, objective=obj, primal_residual=float(s["prim"]),
                  dual_residual=float(s["dual"]), iterations=int(s["it"]), solve_time=out.solve_time,
                  setup_time=setup_time, compile_time=out.compile_time + init_time, history=h,
                  backend=backend, dual=y,
                  method="halpern_pdhg", info=info)
