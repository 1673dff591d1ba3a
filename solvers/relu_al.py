r"""The augmented Lagrangian method of Mishkin, Sahiner & Pilanci for cone-constrained group-lasso
programs (the convex ReLU program), and R-FISTA for the unconstrained ones (gated ReLU).

Mishkin, Sahiner & Pilanci, "Fast convex optimization for two-layer ReLU networks: equivalent
model classes and cone decompositions", ICML 2022 (arXiv 2202.01331): the augmented Lagrangian
("AL") method for C-ReLU with R-FISTA as its subproblem solver; Rockafellar, Math. Oper. Res.
1976 and Bertsekas, "Constrained optimization and Lagrange multiplier methods" (1982) for the
method of multipliers on inequality constraints.

**Program** (a `cvxkit.solvers.fista.LinearModel`): $\min_U \ell(z) + \beta\sum_j\lVert u_j\rVert_2$
s.t. $c = \mathcal G(U) \ge 0$, $z = \mathcal F(U)$. For the convex ReLU program
$c = ((2D_i - I)Xu_i)_i$ and $z = \sum_i D_iX(v_i - w_i)$. The model's ``penalty`` may replace
the group norm of the rows by another norm $R$ (the group norms of the columns, or the entrywise
$\ell_1$ norm; `cvxkit.solvers.fista.PENALTIES`): its proximal map is taken in the R-FISTA
step, and its dual norm $R_*$ replaces $\max_j\lVert\cdot_j\rVert_2$ below.

**Augmented Lagrangian** (multipliers $\mu \ge 0$ of $c \ge 0$, penalty $\delta > 0$): each outer
step approximately minimizes

$$\mathcal L_\delta(U) = \ell(z) + \beta\sum_j\lVert u_j\rVert
+ \frac1{2\delta}\lVert(\mu - \delta c)_+\rVert^2$$

by R-FISTA (`cvxkit.solvers.fista.fista_step`), warm started at the previous solution, until the
gradient mapping is at most $\omega$ (relative to $s_d$), then updates
$\mu \leftarrow (\mu - \delta c)_+$ (the textbook update; scnn's code adds only the positive part
of the violation, so its multipliers never decrease).

**The hinge loss** is not smooth. It is $\min_{t \ge 0}\sum_kt_k$ s.t. $y_kz_k + t_k - 1 \ge 0$,
and these rows join the augmented Lagrangian with multipliers $\nu \in [0, 1]^n$. The slacks
are minimized out in closed form: with $a_k = \nu_k - \delta(y_kz_k - 1)$, the term is
$\sum_k\psi(a_k)/\delta$ with $\psi(a) = \tfrac12a_+^2$ for $a \le 1$ and $a - \tfrac12$ above
(a Huber function of the margin), its gradient in $z$ is $-y\circ\operatorname{clip}(a, 0, 1)$
and the update is $\nu \leftarrow \operatorname{clip}(a, 0, 1)$. The subproblem stays a smooth
loss plus the group penalty, in $U$ only.

The schedule (the paper's, from the authors' code):

* **penalty calibration** (warm-up): while the first subproblem, solved to $\omega_0$, leaves a
  relative constraint violation above `WARM_VIOLATION` (1e-2), $\delta \leftarrow 2\delta$ and it is
  solved again (no multiplier update); then the multiplier updates start;
* **inner tolerance**: $\omega_0$ = `inner_tol` (1e-3); after a multiplier update, if
  $\tau\,r_p < \omega$ ($\tau$ = `TAU` = 2) then $\omega \leftarrow \max(\omega/\tau, \text{tol}/2)$.

Every iteration counted by ``max_iter`` and ``Result.iterations`` is one R-FISTA iteration (a
line search may take several products); ``info["outer"]`` counts multiplier updates.

**Stopping rule** (checked after every subproblem, on the user's data), at $(U, t)$ with the
updated multipliers:

* primal: $r_p = \max(-c)_+/\max(\max|c|, 10^{-2}\max|y|) \le$ ``constraint_tol`` (default
  1e-6, or ``tol`` if smaller): the cone violation relative to the largest $|Xu_j|$ (the hinge
  loss is evaluated exactly at $U$). The floor (`VIOLATION_FLOOR` times the targets' unit: $c$
  and $z$ are the same kind of quantity) matters only where the weights tend to zero: at
  the smallest $\beta$ with the zero solution a ratio to $\max|c|$ alone does not decrease along the iterates, and a
  run ended at ``max_iter`` (100 000 iterations) with the optimum reached;
* gap: a certified relative duality gap $(f(U) - D)/f(U) \le$ ``tol``. The dual of the program is
  $\max_{\theta, \mu \ge 0} -\ell^*(\theta)$ s.t. $\lVert(\mathcal F^*\theta - \mathcal G^*
  \mu)_j\rVert \le \beta$ for every group (in general $R_*(\mathcal F^*\theta - \mathcal G^*\mu)
  \le \beta$); the point $(s\theta, s\mu)$ with $\theta = \nabla
  \ell(z)$ (hinge: $\theta = -\nu\circ y$) and the largest
  $s \le 1$ that makes it feasible has dual value $D = -\ell^*(s\theta)$ (squared:
  $-\tfrac12\lVert s\theta\rVert^2 - s\theta^\top y$; logistic: minus the binary entropy terms
  $\sum_k\phi(s\sigma(-y_kz_k))$, $\phi(a) = a\log a + (1-a)\log(1-a)$; hinge: $s\sum_ka_k$),
  a lower bound on the optimum. With $\beta = 0$ no such scaling exists and the test is the
  dual residual instead: $r_d = \max_j\operatorname{dist}(0, \partial_{u_j}L)/s_d \le$ ``tol``,
  the minimum-norm subgradient of the Lagrangian $L = \langle\theta, z\rangle +
  \beta\sum\lVert u_j\rVert - \langle\mu, c\rangle$ ($r_d$ is reported in every case).

The test is made after every subproblem and, every `PROBE_EVERY` R-FISTA iterations, inside
one, with the multipliers an update would give (a run stops there when it is met): late
subproblems at a tight inner tolerance ran thousands of iterations past a point that met it.

A small stationarity residual alone does not bound the objective error: with $\beta = 10^{-3}$ on
an instance of the benchmark's size, a run with $r_d = 4\times10^{-6}$ and $r_p = 2\times10^{-7}$
was 31% above the optimum; its certified gap was not small. The gap test ties the answer to the
objective. The inner tolerance is tightened ($\omega \leftarrow \omega/\tau$) also while the
violation test holds and the gap test does not. The residuals are recomputed in float64 on the
user's data at the answer; an ``optimal`` loop whose recheck misses the tolerances by more than
``CONFIRM_SLACK`` (a float32 run met them only in float32 rounding) is ``optimal_inaccurate``.

**R-FISTA** (`rfista`, the gated program: no constraints, smooth loss) is the same loop without
multipliers: the same gap test (the group-lasso duality gap), checked when the gradient mapping is
below the inner tolerance (which starts at ``tol``).
"""
from __future__ import annotations

import functools
import math
import time
from typing import Any, NamedTuple

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, finish, run
from cvxkit.solvers.fista import (LOSSES, PENALTIES, Iterate, LinearModel, dual_norm,
                                  fista_step, loss_grad, min_norm_subgradient, objective_estimate,
                                  point, reset_momentum, scale_d)
from cvxkit.solvers.result import Result, Status

#: relative violation above which the warm-up doubles the penalty
WARM_VIOLATION = 1e-2
#: the default constraint_tol (or tol, if smaller): the relative cone violation
DEFAULT_VIOLATION = 1e-6
#: factor by which the inner tolerance is tightened
TAU = 2.0
#: an optimal float32 run is confirmed in float64 within this many times the tolerances
CONFIRM_SLACK = 1.5
#: the violation is relative to max|c|, but to no less than this fraction of max|y|
VIOLATION_FLOOR = 1e-2
#: R-FISTA iterations between stopping tests inside a subproblem
PROBE_EVERY = 25


class Settings(NamedTuple):
    tol: Any
    ctol: Any
    beta: Any
    scale: Any  # s_d
    omega_min: Any  # floor of the inner tolerance (a few ulps)
    c_floor: Any  # smallest unit of the violation: VIOLATION_FLOOR * max|y|


class Data(NamedTuple):
    lin: Any
    y: Any
    settings: Settings


class State(NamedTuple):
    it: Iterate
    mu: Any  # cone multipliers (shape of c) or None
    nu: Any  # hinge multipliers (n,) or None
    delta: Any
    omega: Any
    warm: Any  # penalty calibration still running
    outer: Any
    k: Any
    prim_res: Any
    dual_res: Any
    gap: Any
    done: Any


# --- the augmented Lagrangian -------------------------------------------------------------------
def _hinge_shift(nu, delta, y, z):
    """$a = \\nu - \\delta(y\\circ z - 1)$ of the hinge rows (module docstring)."""
    return nu - delta * (y * z - 1.0)


def _smooth(bk, model: LinearModel, d: Data, s: State):
    """``(grad, bregman)`` of the smooth part of $\\mathcal L_\\delta$ (the loss and the penalty
    terms) for `cvxkit.solvers.fista.fista_step`: ``grad(z, c) -> (gz, gc)`` and its Bregman
    divergence, term by term (each term in a form without cancellation where it matters: the
    squared loss $\\tfrac12\\Delta z^2$, the cone penalty from the shifted values
    $r = \\mu - \\delta c$)."""
    xp = bk.xp
    y, delta = d.y, s.delta

    def grad(z, c):
        if model.loss == "hinge":
            gz = -y * xp.clip(_hinge_shift(s.nu, delta, y, z), 0.0, 1.0)
        else:
            gz = loss_grad(xp, model.loss, z, y)
        return gz, (None if c is None else -xp.maximum(s.mu - delta * c, 0.0))

    def hinge_terms(z):
        a = _hinge_shift(s.nu, delta, y, z)
        ap = xp.maximum(a, 0.0)
        return xp.where(a <= 1.0, 0.5 * ap * ap, a - 0.5) / delta

    def bregman(zv, cv, z, c):
        dz = z - zv
        if model.loss == "squared":
            div = 0.5 * xp.sum(dz * dz)
        else:
            terms = hinge_terms if model.loss == "hinge" else (
                lambda z: xp.logaddexp(0.0, -y * z))
            div = xp.sum(terms(z) - terms(zv) - grad(zv, None)[0] * dz)
        if c is not None:
            dc = c - cv
            rv = s.mu - delta * cv
            rn = rv - delta * dc
            div = div + xp.sum(xp.where(
                rv > 0, xp.where(rn > 0, 0.5 * delta * dc * dc, rv * (dc - 0.5 * rv / delta)),
                xp.where(rn > 0, 0.5 * rn * rn / delta, 0.0)))
        return div

    return grad, bregman


def _dual_value(xp, loss, theta, y, scale):
    r"""$-\ell^*(s\theta)$, the dual objective at the loss multiplier $s\theta$ (hinge: $\theta =
    -\nu\circ y$ with $\nu \in [0, 1]$, dual value $s\sum\nu$)."""
    if loss == "squared":
        return -0.5 * scale * scale * xp.sum(theta * theta) - scale * xp.sum(theta * y)
    a = scale * (-y * theta)  # logistic: a = s sigmoid(-y z); hinge: s nu, both in [0, 1]
    if loss == "hinge":
        return xp.sum(a)
    ent = xp.where(a > 0, a * xp.log(xp.where(a > 0, a, 1.0)), 0.0) + \
        xp.where(a < 1, (1 - a) * xp.log(xp.where(a < 1, 1 - a, 1.0)), 0.0)
    return -xp.sum(ent)


def _violation(xp, c, floor):
    r"""$\max(-c)_+$ relative to $\max(\max|c|, \text{floor})$ (module docstring)."""
    unit = xp.maximum(xp.maximum(xp.max(xp.abs(c)), floor), xp.finfo(c.dtype).tiny)
    return xp.max(xp.maximum(-c, 0.0)) / unit


def _residuals(bk, model: LinearModel, d: Data, x, mu, nu):
    """``(r_p, r_d, gap, f)`` of the module docstring at the point ``x`` with the multipliers
    ``mu`` (cones) and ``nu`` (hinge rows): one ``adjoint``."""
    xp, st, y = bk.xp, d.settings, d.y
    tiny = xp.finfo(x.z.dtype).tiny
    r_p = 0.0 * st.tol
    gc = None
    if x.c is not None:
        r_p = _violation(xp, x.c, st.c_floor)
        gc = -mu
    theta = -y * nu if model.loss == "hinge" else loss_grad(xp, model.loss, x.z, y)
    G = model.adjoint(bk, d.lin, theta, gc)  # F* theta - G* mu
    r_d = min_norm_subgradient(xp, G, x.U, st.beta, model.penalty) / st.scale
    # the dual point (s theta, s mu), s <= 1 the largest scale with R_*(F* theta - G* mu) <= beta
    # (R_* the penalty's dual norm): its dual value bounds the optimum from below
    worst = dual_norm(xp, model.penalty, G)
    scale = xp.where(worst > st.beta, st.beta / xp.where(worst > st.beta, worst, 1.0), 1.0)
    f = objective_estimate(xp, model.loss, x.z, y, x.U, st.beta, model.penalty)
    gap = (f - _dual_value(xp, model.loss, theta, y, scale)) / xp.maximum(xp.abs(f), tiny)
    return r_p, r_d, gap, f


def _met(xp, st: Settings, r_p, r_d, gap):
    """The stopping test: violation and certified gap (``beta = 0``: the dual residual; the
    scaled dual point is then not dual feasible)."""
    return (r_p <= st.ctol) & xp.where(st.beta > 0, gap <= st.tol, r_d <= st.tol)


def _tighten(xp, st: Settings, s: State, r_p, met):
    r"""The inner-tolerance schedule: $\omega/\tau$ once the violation is below it, and while the
    violation test holds but the gap test does not (the subproblems are not solved accurately
    enough for the certificate)."""
    tighten = ((TAU * r_p < s.omega) | (r_p <= st.ctol)) & ~met
    return xp.where(tighten, xp.maximum(s.omega / TAU, st.omega_min), s.omega)


def _outer(bk, model: LinearModel, d: Data, s: State) -> State:
    """After a subproblem: the penalty calibration, or the multiplier update, the stopping test
    and the inner-tolerance schedule (module docstring)."""
    xp, st, x = bk.xp, d.settings, s.it.x
    if x.c is None and model.loss != "hinge":  # R-FISTA: the stopping test only
        r_p, r_d, gap, _ = _residuals(bk, model, d, x, None, None)
        met = _met(xp, st, r_p, r_d, gap)
        return s._replace(prim_res=r_p, dual_res=r_d, gap=gap, done=met,
                          omega=_tighten(xp, st, s, r_p, met), outer=s.outer + 1)
    mu, nu = _updated(bk, model, d, s)
    r_p, r_d, gap, _ = _residuals(bk, model, d, x, mu, nu)
    calibrate = s.warm & (r_p > WARM_VIOLATION)

    def double(s):
        return s._replace(delta=2.0 * s.delta, prim_res=r_p, it=reset_momentum(bk, s.it))

    def update(s):
        met = _met(xp, st, r_p, r_d, gap)
        return s._replace(mu=mu, nu=nu, warm=xp.asarray(False), outer=s.outer + 1,
                          omega=_tighten(xp, st, s, r_p, met), prim_res=r_p, dual_res=r_d,
                          gap=gap, done=met, it=reset_momentum(bk, s.it))

    return bk.cond(calibrate, double, update, s)


def _updated(bk, model: LinearModel, d: Data, s: State):
    """The multipliers after an update at the current point: ``(mu, nu)``."""
    xp, x = bk.xp, s.it.x
    mu = None if x.c is None else xp.maximum(s.mu - s.delta * x.c, 0.0)
    nu = None
    if model.loss == "hinge":
        nu = xp.clip(_hinge_shift(s.nu, s.delta, d.y, x.z), 0.0, 1.0)
    return mu, nu


def _probe(bk, model: LinearModel, d: Data, s: State) -> State:
    """The stopping test inside a subproblem, with the multipliers an update would give: the
    run stops (keeping them) when it is met, and goes on unchanged otherwise. Without it, a
    subproblem at a tight inner tolerance runs on long after its point has met the test."""
    mu, nu = _updated(bk, model, d, s)
    r_p, r_d, gap, _ = _residuals(bk, model, d, s.it.x, mu, nu)
    met = _met(bk.xp, d.settings, r_p, r_d, gap) & ~s.warm
    return bk.cond(met, lambda s: s._replace(mu=mu, nu=nu, prim_res=r_p, dual_res=r_d, gap=gap,
                                             done=met), lambda s: s, s)


def _step(bk, model: LinearModel, d: Data, s: State) -> State:
    st = d.settings
    it = fista_step(bk, model, d.lin, st.beta, *_smooth(bk, model, d, s), s.it)
    s = s._replace(it=it, k=s.k + 1)
    probe = lambda s: bk.cond(s.k % PROBE_EVERY == 0, lambda s: _probe(bk, model, d, s),  # noqa: E731
                              lambda s: s, s)
    return bk.cond(it.measure <= s.omega * st.scale, lambda s: _outer(bk, model, d, s), probe, s)


@functools.lru_cache(maxsize=32)
def make_algorithm(model_key: tuple, name: str) -> Algorithm:
    """The driver `Algorithm` (one step = one R-FISTA iteration and, when its subproblem is
    solved, the outer step). Cached on the model's functions and kinds (``model_key``), so that
    the driver's compiled loop is reused."""
    forward, adjoint, loss, constrained, penalty = model_key
    model = LinearModel(forward, adjoint, None, None, loss, 0.0, (), (), None, constrained,
                        penalty=penalty)

    def monitor(bk, s, d):
        xp, x = bk.xp, s.it.x
        f = objective_estimate(xp, loss, x.z, d.y, x.U, d.settings.beta, penalty)
        inner = s.it.measure / d.settings.scale
        if not (constrained or loss == "hinge"):  # R-FISTA: no multipliers, no penalty
            return {"objective": f, "dual_res": s.dual_res, "gap": s.gap, "inner": inner}
        viol = 0.0 * f if x.c is None else _violation(xp, x.c, d.settings.c_floor)
        return {"objective": f, "violation": viol, "prim_res": s.prim_res, "dual_res": s.dual_res,
                "gap": s.gap, "inner": inner, "delta": s.delta, "outer": s.outer}

    return Algorithm(name, lambda bk, s, d: _step(bk, model, d, s), monitor,
                     lambda bk, s, d: s.done)


# --- set-up, warm starts, the final check ---------------------------------------------------------
def _step_estimate(bk, model: LinearModel, lin, delta: float, shape) -> float:
    """A first step $1/L$: ten power iterations on $U \\mapsto \\mathcal F^*\\mathcal F U +
    \\delta\\mathcal G^*\\mathcal G U$ (an underestimate of $L$: the line search corrects it)."""
    xp = bk.xp
    U = bk.asarray(np.random.default_rng(0).standard_normal(shape))
    L = 1.0
    for _ in range(10):
        U = U / xp.maximum(xp.sqrt(xp.sum(U * U)), 1e-300)
        z, c = model.forward(bk, lin, U)
        U = model.adjoint(bk, lin, z, None if c is None else delta * c)
        L = float(xp.sqrt(xp.sum(U * U)))
    w = 0.25 if model.loss == "logistic" else 1.0
    return 1.0 / max(w * L, 1e-300) if np.isfinite(L) else 1.0


def _warm_start(ws, model: LinearModel, method: str):
    """``(U, parts)`` from ``warm_start`` (``None``: no warm start; ``parts``: the multipliers
    ``mu``, ``nu`` and the penalty ``delta`` of a run of ``method``, else empty): a `Result` of
    ``method`` on a program of the same shapes (its state), or weights of the shape of
    ``Result.x`` (an array, or another method's `Result`). Anything else: ``ValueError``
    (multiplier shapes are checked in `_solve`)."""
    expected = (f"warm_start must be a Result of {method} on this problem, or weights of shape "
                f"{model.out_shape} (an array or another method's Result with that x)")
    if ws is None:
        return None
    if isinstance(ws, Result):
        state = ws.info.get("state") if isinstance(ws.info, dict) else None
        if ws.method == method and isinstance(state, dict):
            U = validate.warm_array(expected, "warm_start", np.asarray(state["U"]), model.shape)
            parts = {k: state[k] for k in ("mu", "nu", "delta")}  # omega starts afresh
            if (parts["nu"] is None) != (model.loss != "hinge"):
                raise ValueError(f"{expected}; got a Result of another loss")
            return U, parts
        ws = ws.x
    W = validate.warm_array(expected, "warm_start", ws, model.out_shape)
    return W.reshape(model.shape), {}


def _final_check(model: LinearModel, x, mu, nu, tol, ctol, beta, s_d, c_floor):
    """The residuals at the answer recomputed in float64 on the user's data (numpy)."""
    bk = get_backend("numpy", "float64")
    lin = model.build(bk)
    g = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    p = point(bk, model, lin, g(x.U))
    st = Settings(tol, ctol, beta, s_d, 0.0, c_floor)
    return _residuals(bk, model, Data(lin, np.asarray(model.y, dtype=np.float64), st), p,
                      g(mu), g(nu))


def _options(tol, constraint_tol, max_iter, time_limit, verbose, progress, callback, check_every,
             seed, dtype, delta, inner_tol):
    tol = validate.positive("tol", tol)
    ctol = min(tol, DEFAULT_VIOLATION) if constraint_tol is None else validate.positive(
        "constraint_tol", constraint_tol)
    validate.positive("delta", delta)
    validate.positive("inner_tol", inner_tol)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                   progress=progress)
    return opts, tol, ctol


def _solve(model: LinearModel, method: str, *, backend, tol, constraint_tol, max_iter,
           time_limit, verbose, progress, callback, check_every, seed, dtype, warm_start, delta,
           inner_tol) -> Result:
    t0 = time.perf_counter()
    if not isinstance(model, LinearModel):
        raise ValueError(f"{method} solves a LinearModel (cvxkit.problems.ConvexReLU."
                         f"linear_model() builds the convex ReLU one), got {type(model).__name__}")
    validate.choice("loss", model.loss, LOSSES)
    validate.choice("penalty", model.penalty, PENALTIES)
    opts, tol, ctol = _options(tol, constraint_tol, max_iter, time_limit, verbose, progress,
                               callback, check_every, seed, dtype, delta, inner_tol)
    constrained = model.constrained or model.loss == "hinge"
    if method == "rfista" and constrained:
        raise ValueError("rfista solves unconstrained programs with a smooth loss (the gated "
                         "variant, squared or logistic loss): use relu_al")
    ws = _warm_start(warm_start, model, method)
    bk = get_backend(backend, dtype)
    xp = bk.xp
    y = np.asarray(model.y, dtype=np.float64)
    n = y.shape[0]
    with bk.precision():
        f = bk.asarray
        lin = model.build(bk)
        s_d = scale_d(model, lin, bk)
        U0, parts = (np.zeros(model.shape), {}) if ws is None else ws
        delta0 = float(parts.get("delta", delta))
        x = point(bk, model, lin, f(U0))
        for name, shape in (("mu", None if x.c is None else x.c.shape), ("nu", (n,))):
            if parts.get(name) is not None and np.shape(parts[name]) != shape:
                raise ValueError(f"warm_start must be a Result of {method} on this problem; got "
                                 f"one whose multipliers {name} have shape "
                                 f"{np.shape(parts[name])}, not {shape} (another data set)")
        mu = None if x.c is None else (f(parts["mu"]) if parts.get("mu") is not None
                                       else xp.zeros_like(x.c))
        nu = (f(parts["nu"]) if parts.get("nu") is not None else f(np.zeros(n))) \
            if model.loss == "hinge" else None
        eta = _step_estimate(bk, model, lin, delta0, model.shape)
        omega0 = tol if not constrained else inner_tol
        i32 = (lambda v: xp.asarray(v, dtype=xp.int32)) if bk.name == "jax" else int
        c_floor = VIOLATION_FLOOR * float(np.max(np.abs(y), initial=0.0))
        st = Settings(f(tol), f(ctol), f(model.beta), f(s_d),
                      f(10 * float(np.finfo(np.dtype(dtype)).eps)), f(c_floor))
        d = Data(lin, f(y), st)
        r0 = _residuals(bk, model, d, x, mu, nu)[:3]  # at the start point (monitored)
        it = Iterate(x, x, f(1.0), f(eta), r0[1] * st.scale, i32(0))
        warm = constrained and "delta" not in parts  # calibrate unless resuming a run
        s = State(it, mu, nu, f(delta0), f(omega0), xp.asarray(warm), i32(0), i32(0), *r0,
                  xp.asarray(False))
        setup = time.perf_counter() - t0
        key = (model.forward, model.adjoint, model.loss, bool(model.constrained), model.penalty)
        out = run(make_algorithm(key, method), bk, s, d, opts)
    s = out.state
    U = np.asarray(s.it.x.U, dtype=np.float64)
    W = U.reshape(model.out_shape)
    mu = None if s.mu is None else np.asarray(s.mu, dtype=np.float64)
    nu = None if s.nu is None else np.asarray(s.nu, dtype=np.float64)
    r_p, r_d, gap, _ = (float(v) for v in _final_check(model, s.it.x, mu, nu, tol, ctol,
                                                        model.beta, s_d, c_floor))
    objective = float(model.objective(W))
    status, message = None, ""
    rechecked = r_p <= CONFIRM_SLACK * ctol and (
        gap <= CONFIRM_SLACK * tol if model.beta > 0 else r_d <= CONFIRM_SLACK * tol)
    if out.status is Status.OPTIMAL:
        if not math.isfinite(objective):
            status, message = Status.NUMERICAL_ERROR, "the objective at the answer is not finite"
        elif not rechecked:
            status = Status.OPTIMAL_INACCURATE
            message = (f"the loop met the tolerance in {dtype}; rechecked in float64 on the "
                       f"user's data the violation {r_p:.2e}, gap {gap:.2e} and dual residual "
                       f"{r_d:.2e} miss it by more than {CONFIRM_SLACK:g}x")
    state = {"U": U, "mu": mu, "nu": nu,
             "delta": float(s.delta), "omega": float(s.omega)}
    info = {**model.info, "state": state, "outer": int(s.outer), "delta": float(s.delta),
            "gap": gap, "line_search_trials": int(s.it.trials), "scale_d": s_d}
    dual = mu if nu is None else (mu, nu)
    return finish(Final(x=W, objective=objective, dual=dual, primal_residual=r_p,
                        dual_residual=r_d, info=info, status=status, message=message,
                        iterations=int(s.k)),
                  method=method, backend=bk.name, run=out, setup_time=setup)


def relu_al(model: LinearModel, *, backend="numpy", tol: float = 1e-4,
            constraint_tol: float | None = None, max_iter: int = 100_000,
            time_limit: float = math.inf, verbose: bool = False, progress: bool | None = None,
            callback=None, check_every: int | None = None, seed: int = 0,
            dtype: str = "float64", warm_start=None, delta: float = 1.0,
            inner_tol: float = 1e-3) -> Result:
    r"""Solve a cone-constrained group-lasso `cvxkit.solvers.fista.LinearModel` by the augmented
    Lagrangian method with R-FISTA subproblems (module docstring); for the convex ReLU program
    the model is ``ConvexReLU.linear_model()`` (``ConvexReLU.solve("relu_al")`` builds it).

    Args:
        model: the `cvxkit.solvers.fista.LinearModel` (constraints, the hinge loss, or neither).
        tol: the tolerance on the certified relative duality gap (on the dual residual when
            ``beta = 0``; module docstring). The certificate is conservative: the objective is
            usually much closer than ``tol``.
        constraint_tol: the tolerance on the relative constraint violation (default: 1e-6, or
            ``tol`` if smaller).
        max_iter: R-FISTA iterations in all (every subproblem counted).
        delta: the initial penalty $\delta$ (the calibration doubles it while the first
            subproblem's violation exceeds 1e-2).
        inner_tol: the first subproblems' tolerance $\omega_0$ on the gradient mapping.
        warm_start: a previous `Result` of ``relu_al`` on a program of the same shapes (its
            iterate, multipliers and penalty), or weights of the shape of
            ``Result.x`` (an array, or another method's `Result`) with zero multipliers; anything
            else raises ``ValueError``.
        seed: has no effect (the method is deterministic); accepted because every method takes it.
        backend, time_limit, verbose, progress, callback, check_every, dtype: see
            `cvxkit.solvers.driver` (``check_every``: iterations between checks; default 1 on
            numpy, 10 on JAX).

    Every option is type-checked (``TypeError`` for a wrong type, ``ValueError`` out of range,
    naming it).

    Returns:
        `Result` with ``x`` the weights (shape ``model.out_shape``), ``objective``
        ``model.objective(x)``, ``primal_residual`` $r_p$, ``dual_residual`` $r_d$ (both
        recomputed in float64 at ``x``), ``dual`` the multipliers $\mu$ of $c \ge 0$ (shape of
        $c$; for the hinge loss the pair $(\mu, \nu)$), ``iterations`` R-FISTA iterations;
        ``info``: ``gap`` (the certified relative gap), ``outer`` (multiplier updates), ``delta``,
        ``line_search_trials``, ``scale_d`` ($s_d$), ``state`` (for warm starts).
    """
    return _solve(model, "relu_al", backend=backend, tol=tol, constraint_tol=constraint_tol,
                  max_iter=max_iter, time_limit=time_limit, verbose=verbose, progress=progress,
                  callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                  warm_start=warm_start, delta=delta, inner_tol=inner_tol)


def rfista(model: LinearModel, *, backend="numpy", tol: float = 1e-6, max_iter: int = 20_000,
           time_limit: float = math.inf, verbose: bool = False, progress: bool | None = None,
           callback=None, check_every: int | None = None, seed: int = 0,
           dtype: str = "float64", warm_start=None) -> Result:
    r"""Solve an unconstrained `cvxkit.solvers.fista.LinearModel` with a smooth loss (squared,
    logistic; the gated ReLU program) by R-FISTA (`cvxkit.solvers.fista`).

    Args:
        model: the `cvxkit.solvers.fista.LinearModel` (``constrained=False``).
        tol: the tolerance on the certified relative duality gap (module docstring of
            `cvxkit.solvers.relu_al`; on the dual residual when ``beta = 0``).
        max_iter: R-FISTA iterations.
        warm_start: a previous `Result` of ``rfista`` on this program, or weights of the shape
            of ``Result.x`` (an array or another method's `Result`).
        seed: has no effect (the method is deterministic).
        backend, time_limit, verbose, progress, callback, check_every, dtype: see
            `cvxkit.solvers.driver`.

    Returns:
        `Result` as `relu_al`'s (``primal_residual`` 0, ``dual`` ``None``).
    """
    return _solve(model, "rfista", backend=backend, tol=tol, constraint_tol=None,
                  max_iter=max_iter, time_limit=time_limit, verbose=verbose, progress=progress,
                  callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                  warm_start=warm_start, delta=1.0, inner_tol=tol)
