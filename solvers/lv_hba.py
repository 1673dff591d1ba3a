r"""Bilevel programs with constrained, convex lower levels by LV-HBA (proximal Lagrangian value
function, single loop, Hessian-free).

Paper: W. Yao, C. Yu, S. Zeng and J. Zhang, "Constrained Bi-Level Optimization: Proximal
Lagrangian Value Function Approach and Hessian-free Algorithm", ICLR 2024 (code:
SUSTech-Optimization/LV-HBA). Problem (notation of `cvxkit.solvers.bilevel_core`; the paper
writes $F$, $f$, $g$ for our $f$, $g$, $c$):

$$
\min_{x \in X,\, y \in Y} f(x, y) \quad \text{s.t.} \quad
y \in \arg\min_{\theta \in Y} \{ g(x, \theta) : c(x, \theta) \le 0 \},
$$

$g(x, \cdot)$ and $c(x, \cdot)$ convex (not necessarily strongly convex: the lower level may
have many solutions), $c: \mathbb{R}^p \times \mathbb{R}^d \to \mathbb{R}^m$.

**Proximal Lagrangian value function** ($\gamma_1, \gamma_2 > 0$):
$v_\gamma(x, y, z) = \min_{\theta \in Y}\max_{\lambda \ge 0}\, g(x, \theta) + \lambda^\top c(x, \theta)
+ \|\theta - y\|^2/(2\gamma_1) - \|\lambda - z\|^2/(2\gamma_2)$, and the single-level problem
$\min f(x, y)$ s.t. $g(x, y) - v_\gamma(x, y, z) \le 0$, $c(x, y) \le 0$, $(x, y) \in X \times Y$.

**Iteration $k$** ($c_k = \underline{c}\,(k+1)^p$, $p \in (0, 1/2)$; steps $\eta, \alpha, \beta$):

1. $\theta^{k+1} = P_Y(\theta - \eta[\nabla_y g(x, \theta) + \nabla_y c(x, \theta)^\top\lambda + (\theta - y)/\gamma_1])$,
   $\lambda^{k+1} = P_{\ge 0}(\lambda + \eta[c(x, \theta^{k+1}) - (\lambda - z)/\gamma_2])$;
2. $d_x = \nabla_x f(x, y)/c_k + \nabla_x g(x, y) - \nabla_x g(x, \theta^{k+1}) - \nabla_x c(x, \theta^{k+1})^\top\lambda^{k+1}$,
   $d_y = \nabla_y f(x, y)/c_k + \nabla_y g(x, y) - (y - \theta^{k+1})/\gamma_1$,
   $d_z = -(\lambda^{k+1} - z)/\gamma_2$;
3. $(x, y) \leftarrow P_C((x, y) - \alpha(d_x, d_y))$ with $C = \{(x, y) \in X \times Y: c(x, y) \le 0\}$,
   $z \leftarrow P_{\ge 0}(z - \beta d_z)$.

$P_C$: a clip when there are no constraints; for constraints affine in $(x, y)$, $c = A(x, y) - b$,
the projection onto $\{Au \le b\} \cap$ box by accelerated projected gradient ascent on its
dual ($u(\mu) = P_{\rm box}(u_0 - A^\top\mu)$, warm-started $\mu$), solved to KKT accuracy
(feasibility *and* complementarity, `project_c`: a warm-started multiplier of a constraint
that has become inactive must fall back to 0, else it keeps pushing the point away from the
constraint) or 2000 steps (the paper's code solves a CVXPY QP per iteration instead).

**Defaults** (the paper's toy: $\gamma_1 = \gamma_2 = 10$, $c_k = 0.025(k+1)^{0.3}$; its SVM
experiment: $c_k = (k+1)^{1/2}$): ``gamma1 = gamma2 = 10``, ``c_lower = 1``, ``p = 0.49``,
and steps set from curvature estimates at the start (power iteration on Hessian-vector
products): $\eta = 1/(L_g + 1/\gamma_1 + \gamma_2\|\nabla_y c\|^2)$,
$\alpha = 1/(L_f/\underline{c} + 2L_g^{xy} + 1/\gamma_1 + \gamma_2\|\nabla c\|^2)$, $\beta = 2\alpha$
($L_g$, $L_g^{xy}$, $L_f$: Hessian norms of $g$ in $y$, of $g$ and $f$ in $(x, y)$)
(the paper's toy: $\alpha = 0.008$, $\beta = 0.02$, $\eta = 0.01$, of the same order).

**Safeguard (ours, not in the paper):** the paper's step conditions assume global Lipschitz
constants, which the lower levels here may lack (a penalty $e^{x}\|w\|^2$ has curvature
growing with $x$). After each step, a secant estimate of the curvature along the step is taken
for the $\theta$ update and for the $(x, y)$ update (the direction $d(x, y)$ re-evaluated at the
new point with the same $\theta$, $\lambda$, $c_k$, so that the motion of those sequences is not
taken for curvature); a step size whose product with it exceeds 1 is halved ($\beta$ keeps its ratio to $\alpha$). Steps never grow back. ``info["steps"]`` has the
final values. The digest of the paper
found the released toy defaults diverge at larger sizes, so the steps scale with the problem.

**Stopping** (the paper states none). ``optimal`` when, at a check,

1. $r_k = c_k\|((x, y)^{k+1} - (x, y)^k)/\alpha,\ (z^{k+1} - z^k)/\beta\|$ (``dual_residual``;
   the projected gradient of $f + c_k(g - v_\gamma)$ over $(x, y, z)$: a KKT residual of the
   value-function reformulation with multiplier $c_k$, in the units of $\nabla f$) is
   $\le$ ``tol`` $\cdot\max(1, \|\nabla f(x, y)\|)$: relative to the size of the two terms that
   cancel at a KKT point, $\nabla f = -c_k\nabla(g - v_\gamma)$, absolute below 1 (the
   ``eps_abs = eps_rel = tol`` of a residual test);
2. the value-function gap $|g(x, y) - \hat v|$ ($\hat v$ the proximal Lagrangian at
   $(\theta, \lambda)$) is $\le$ ``tol`` $\cdot\max(1, |g(x, y)|)$;
3. the last projection met its KKT tolerance;

and the final lower solve (below) meets its target, else the status is
``optimal_inaccurate``. Why $c_k$: the unscaled step residual weights $\nabla f$ by $1/c_k$, and
stopping on it gave false optima (a toy with $F^* = 0.0625$ stopped at $F = 0.0659$, where the
two gradients cancelled at $c_k \approx 18$; a ridge with $F^* = 0.006488$ stopped at
$0.007793$ after 1866 iterations at ``tol`` $= 10^{-4}$); $z$ is included because it must
settle (without it a toy stopped at $F = 0.00412$ for $F^* = 0.00391$). Why relative: $r_k$
falls only as $1/k$. It is dominated by the drift of the penalty path: the iterate follows
the stationary point $u(c_k)$ of the penalized problem, which approaches the bilevel solution
as $B/c_k$, so $r_k \approx c_k\|du/dk\|/\alpha \approx pB/(\alpha k)$. An absolute
$10^{-4}$ on the demo's ridge ($\|\nabla f\| \approx 3.5$) needs about $1.6\cdot10^{5}$
iterations, where the relative test stops at $4.6\cdot10^{4}$ with $F$ within $3\cdot10^{-5}$
relative of $F^*$.

What ``tol`` does not bound: the hypergradient $\nabla F(x)$ (the method is Hessian-free, and
the penalty biases $x$ by $O(1/c_k)$). On that ridge, $\|x - P_X(x - \nabla F(x))\| = 1.3\cdot
10^{-2}$ at the stop; the value $F(x)$ is accurate because its error is quadratic in that of
$x$ at an interior minimum. For stationarity to ``tol`` use ``implicit_diff`` (lower levels
without constraints).

**The answer's $y$ (ours, not in the paper).** The iterate $y$ is the penalty method's,
$O(1/c_k)$ from lower-optimal: $f(x, y)$ is not $F(x)$ (on that ridge it was $0.028$ below
$F(x)$ after $10^5$ iterations, 280 times ``tol``). After the loop the lower level is solved at
the final $x$ by projected gradient with backtracking (projection onto
$\{\theta \in Y: c(x, \theta) \le 0\}$ by `project_c`), from $P(\theta)$, to a gradient mapping
$\le 10^{-3}$ ``tol`` $\max(1, \|\nabla_y g\|)$ or 20 000 steps (``LOWER_RTOL``,
``LOWER_ITERS``). ``info["y"]`` is this solution and ``objective`` is $f$ at it ($F(x)$ when the
lower solution is unique; otherwise a lower solution near $\theta$, not necessarily the best
for $f$); the iterate is ``info["y_iterate"]``, $f$ at it ``info["objective_iterate"]``.
The penalty $c_k$ grows slowly, so the method approaches bilevel stationarity at a sublinear
rate: expect ``max_iter`` at tight tolerances (the status says so).
"""
from __future__ import annotations

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.bilevel_core import (
    BilevelFunctions, Boxes, check_options, clip, drive, finish, method_functions, now,
    warm_start_point,
)


def _pieces(fns: BilevelFunctions):
    import jax
    import jax.numpy as jnp

    def lag(x, th, lam):
        val = fns.lower(x, th)
        if fns.constraints is not None:
            val = val + jnp.vdot(lam, fns.constraints(x, th))
        return val

    cons = fns.constraints if fns.constraints is not None else (
        lambda x, y: jnp.zeros((0,), x.dtype))
    return lag, cons, jax.grad(lag, argnums=(0, 1)), jax.grad(fns.upper, argnums=(0, 1)), \
        jax.grad(fns.lower, argnums=(0, 1))


def project_c(u0, mu, A, b, lo, hi, step, iters: int = 2000, rtol: float = 1e-12):
    r"""Projection of ``u0`` onto $\{u: Au \le b,\ lo \le u \le hi\}$, solved to KKT accuracy.

    Dual: $\max_{\mu \ge 0} q(\mu)$, $q(\mu) = \min_{lo \le u \le hi} \tfrac12\|u - u_0\|^2
    + \mu^\top(Au - b)$, with $u(\mu) = P_{\rm box}(u_0 - A^\top\mu)$ and
    $\nabla q(\mu) = Au(\mu) - b$ ($1$-Lipschitz times $\|A\|_2^2$). Accelerated projected
    gradient ascent (FISTA, gradient restart) from the warm start ``mu`` with
    ``step`` $= 1/\|A\|_2^2$, stopped when the KKT residual of the subproblem,
    $\|\mu - P_{\ge 0}(\mu + (Au - b))\|_\infty$ (primal feasibility on the rows with
    $\mu_i = 0$, complementarity on the others, so that a stale positive multiplier is decreased,
    not kept because the point happens to be feasible), is at most
    ``rtol`` $(1 + \|b\|_\infty + \|A u_0\|_\infty)$, or after ``iters`` steps.
    Returns ``(u, mu, kkt residual)``."""
    import jax
    import jax.numpy as jnp

    if A.shape[0] == 0:
        return clip(u0, lo, hi), mu, jnp.zeros((), u0.dtype)
    scale = 1.0 + jnp.max(jnp.abs(b)) + jnp.max(jnp.abs(A @ jnp.where(jnp.isfinite(u0), u0, 0.0)))

    def u_of(m):
        return clip(u0 - A.T @ m, lo, hi)

    def kkt(m):
        return jnp.max(jnp.abs(m - jnp.maximum(m + (A @ u_of(m) - b), 0.0)))

    def cond(c):
        m, _, _, k = c
        return (kkt(m) > rtol * scale) & (k < iters)

    def body(c):
        m, w, t, k = c
        m1 = jnp.maximum(w + step * (A @ u_of(w) - b), 0.0)
        t1 = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
        # gradient restart: drop the momentum when it points against the ascent step
        restart = jnp.vdot(m1 - m, w - m1) > 0
        t1 = jnp.where(restart, 1.0, t1)
        w1 = jnp.where(restart, m1, m1 + ((t - 1.0) / t1) * (m1 - m))
        return m1, w1, t1, k + 1

    one = jnp.ones((), u0.dtype)
    mu, _, _, _ = jax.lax.while_loop(cond, body, (mu, mu, one, 0))
    return u_of(mu), mu, kkt(mu) / scale


def _functions(fns: BilevelFunctions):
    import jax
    import jax.numpy as jnp

    lag, cons, g_lag, g_f, g_g = _pieces(fns)

    def step(bk, st, d):
        x, y, z, th, lam, k = st["x"], st["y"], st["z"], st["theta"], st["lam"], st["k"]
        g1, g2, eta, alpha = d["gamma1"], d["gamma2"], st["eta"], st["alpha"]
        _, gth = g_lag(x, th, lam)
        G = gth + (th - y) / g1
        th1 = clip(th - eta * G, d["y_lo"], d["y_hi"])
        lam1 = jnp.maximum(lam + eta * (cons(x, th1) - (lam - z) / g2), 0.0)
        ck = d["c_lower"] * (k + 1.0) ** d["p"]
        fx, fy = g_f(x, y)
        gx, gy = g_g(x, y)
        lx, _ = g_lag(x, th1, lam1)
        dx = fx / ck + gx - lx
        dy = fy / ck + gy - (y - th1) / g1
        dz = -(lam1 - z) / g2
        p = x.size
        u_old = jnp.concatenate([x, y])
        dxy = jnp.concatenate([dx, dy])
        u, mu, pkkt = project_c(u_old - alpha * dxy, st["mu"], d["A"], d["b"], d["u_lo"],
                                d["u_hi"], d["proj_step"])
        z1 = jnp.maximum(z - 2 * alpha * d["beta_ratio"] * dz, 0.0)
        x1, y1 = u[:p], u[p:]
        # step residual of the whole variable (x, y, z): z must settle too (lambda = z), else
        # the proximal value function still biases x
        res = jnp.sqrt(jnp.sum((u - u_old) ** 2) / alpha**2
                       + jnp.sum((z1 - z) ** 2) / (2 * alpha * d["beta_ratio"]) ** 2)
        # safeguard (ours): halve a step when a secant curvature estimate exceeds 1/step
        _, gth1 = g_lag(x, th1, lam)
        dth = jnp.linalg.norm(th1 - th)
        L_th = jnp.linalg.norm(gth1 + (th1 - y) / g1 - G) / jnp.where(dth > 0, dth, 1.0)
        # the (x, y) direction at the new point with the same (theta, lambda, c_k): a secant of
        # the map u -> d(u) alone (the auxiliary sequences move on their own, so comparing with
        # the previous iteration's direction would see their motion as curvature)
        fx1, fy1 = g_f(x1, y1)
        gx1, gy1 = g_g(x1, y1)
        lx1, _ = g_lag(x1, th1, lam1)
        dxy1 = jnp.concatenate([fx1 / ck + gx1 - lx1, fy1 / ck + gy1 - (y1 - th1) / g1])
        du = jnp.linalg.norm(u - u_old)
        L_u = jnp.linalg.norm(dxy1 - dxy) / jnp.where(du > 0, du, 1.0)
        eta = jnp.where(eta * L_th > 1.0, 0.5 * eta, eta)
        alpha = jnp.where(alpha * L_u > 1.0, 0.5 * alpha, alpha)
        return {"x": x1, "y": y1, "z": z1, "theta": th1, "lam": lam1, "mu": mu,
                "k": k + 1, "res": res, "eta": eta, "alpha": alpha, "proj_kkt": pkkt}

    def gap(st, d):
        x, y, th, lam, z = st["x"], st["y"], st["theta"], st["lam"], st["z"]
        vhat = (lag(x, th, lam) + jnp.sum((th - y) ** 2) / (2 * d["gamma1"])
                - jnp.sum((lam - z) ** 2) / (2 * d["gamma2"]))
        return fns.lower(x, y) - vhat

    def monitor(bk, st, d):
        return {"upper": fns.upper(st["x"], st["y"]), "step_residual": st["res"],
                "kkt": kkt(st, d), "kkt_scale": kkt_scale(st),
                "value_gap": gap(st, d),
                "violation": jnp.max(jnp.concatenate([cons(st["x"], st["y"]),
                                                      jnp.zeros((1,), st["x"].dtype)]))}

    def kkt(st, d):
        # c_k times the step residual: the projected gradient of f + c_k (g - v) (the step
        # of iteration k used c_k = c_lower (k + 1)^p; st["k"] counts steps taken)
        ck = d["c_lower"] * jnp.maximum(st["k"], 1).astype(st["res"].dtype) ** d["p"]
        return ck * st["res"]

    def kkt_scale(st):
        # the size of the terms that cancel at a KKT point: grad f = -c_k grad(g - v)
        fx, fy = g_f(st["x"], st["y"])
        return jnp.maximum(1.0, jnp.sqrt(jnp.sum(fx**2) + jnp.sum(fy**2)))

    def converged(bk, st, d):
        # relative to max(1, |grad f|) and max(1, |g|) (tol is absolute below 1, relative above)
        g_scale = jnp.maximum(1.0, jnp.abs(fns.lower(st["x"], st["y"])))
        return ((kkt(st, d) <= d["tol"] * kkt_scale(st))
                & (jnp.abs(gap(st, d)) <= d["tol"] * g_scale)
                & (st["proj_kkt"] <= 1e-9))

    def curvatures(x, y, vy, vu):
        """(L_g in y, L_g in (x, y), L_f in (x, y)): Hessian norms at the start."""
        gy = jax.grad(fns.lower, argnums=1)
        u = jnp.concatenate([x, y])

        def joint(fn):
            return jax.grad(lambda u: fn(u[:x.size], u[x.size:]))

        gf, gg = joint(fns.upper), joint(fns.lower)
        return (_power_norm(lambda v: jax.jvp(lambda t: gy(x, t), (y,), (v,))[1], vy),
                _power_norm(lambda v: jax.jvp(gg, (u,), (v,))[1], vu),
                _power_norm(lambda v: jax.jvp(gf, (u,), (v,))[1], vu))

    def lower_solve(x, y, t, A, b, lo, hi, proj_step, target, iters):
        r"""The lower level at fixed ``x``: projected gradient with backtracking on
        $\{\theta \in Y: c(x, \theta) \le 0\}$ from ``y``, until the gradient mapping
        $\|\theta - P(\theta - t\nabla_y g)\|/t \le$ ``target`` or ``iters`` steps.
        Returns ``(theta, gradient mapping, steps)``."""
        p = x.size
        Ay, by = A[:, p:], b - A[:, :p] @ x

        def proj(v, mu):
            u, mu, _ = project_c(v, mu, Ay, by, lo, hi, proj_step)
            return u, mu

        low = lambda v: fns.lower(x, v)  # noqa: E731
        glow = jax.grad(low)
        mu0 = jnp.zeros(A.shape[0], y.dtype)
        y, mu0 = proj(y, mu0)

        def cond(c):
            return (c[3] > target) & (c[4] < iters)

        def body(c):
            v, mu, t, _, k = c
            gv, fv = glow(v), low(v)

            def bt_cond(b):
                v1, _, t1, j = b
                dv = v1 - v
                return ((low(v1) > fv + jnp.vdot(gv, dv) + jnp.vdot(dv, dv) / (2 * t1)
                         + 1e-14 * (1.0 + jnp.abs(fv))) & (j < 60))

            def bt_body(b):
                _, m, t1, j = b
                t1 = 0.5 * t1
                v1, m = proj(v - t1 * gv, m)
                return v1, m, t1, j + 1

            v1, m1 = proj(v - t * gv, mu)
            v1, m1, t1, _ = jax.lax.while_loop(bt_cond, bt_body, (v1, m1, t, 0))
            r = jnp.linalg.norm(v1 - v) / t1
            return v1, m1, 1.5 * t1, r, k + 1

        inf = jnp.asarray(jnp.inf, y.dtype)
        y, _, _, r, k = jax.lax.while_loop(cond, body, (y, mu0, t, inf, 0))
        return y, r, k

    return step, monitor, converged, cons, jax.jit(curvatures), jax.jit(lower_solve)


def _power_norm(matvec, v, iters: int = 30):
    """Largest eigenvalue magnitude of a symmetric operator by ``iters`` power iterations from
    ``v`` (pure JAX)."""
    import jax
    import jax.numpy as jnp

    def body(_, c):
        v, _ = c
        w = matvec(v)
        nw = jnp.linalg.norm(w)
        return jnp.where(nw > 0, w / jnp.where(nw > 0, nw, 1.0), v), nw

    return jax.lax.fori_loop(0, iters, body, (v / jnp.linalg.norm(v), jnp.zeros((), v.dtype)))[1]


def affine_constraints(cons, x, y, seed: int = 0):
    r"""$(A, b)$ with $c(x, y) = A (x, y) - b$, checked at a second random point; ``ValueError``
    when $c$ is not affine in $(x, y)$ (LV-HBA's projection onto $C$ needs that here)."""
    import jax
    import jax.numpy as jnp

    u = jnp.concatenate([x, y])
    p = x.size
    cu = lambda u: cons(u[:p], u[p:])  # noqa: E731
    A = jax.jacfwd(cu)(u)
    u2 = u + jnp.asarray(np.random.default_rng(seed).standard_normal(u.size))
    A2 = jax.jacfwd(cu)(u2)
    if not np.allclose(np.asarray(A), np.asarray(A2), rtol=1e-9, atol=1e-9):
        raise ValueError("lv_hba projects (x, y) onto {c(x, y) <= 0}: lower_constraints must "
                         "be affine in (x, y) (its Jacobian differs at two points)")
    if not np.allclose(np.asarray(cu(u2)), np.asarray(A @ u2 - (A @ u - cu(u))), atol=1e-8):
        raise ValueError("lower_constraints must be affine in (x, y)")
    return A, A @ u - cu(u)


#: the final lower solve: gradient mapping <= LOWER_RTOL * tol * max(1, |grad_y g|), at most
#: LOWER_ITERS projected gradient steps
LOWER_RTOL, LOWER_ITERS = 1e-3, 20_000


def lv_hba(fns: BilevelFunctions, x0, y0, boxes: Boxes, *, tol: float = 1e-5,
           max_iter: int = 20_000, gamma1: float = 10.0, gamma2: float = 10.0,
           c_lower: float = 1.0, p: float = 0.49, eta: float | None = None,
           alpha: float | None = None, beta: float | None = None,
           time_limit: float = float("inf"), verbose: bool = False,
           progress: bool | None = None, callback=None, check_every: int | None = None,
           warm_start=None, dtype: str = "float64", backend: str = "numpy"):
    r"""LV-HBA on $\min f(x, y)$ s.t. $y$ solves the (constrained, convex) lower level.

    Args:
        fns: `BilevelFunctions` (``constraints`` optional, affine in $(x, y)$).
        x0: (p,), y0: (d,) starts. boxes: `Boxes` of $X$ and $Y$.
        tol: on the $c_k$-scaled step residual and the value-function gap, relative above 1
            (see the module docstring); the final lower solve targets ``1e-3 * tol``.
        max_iter: iterations (single loop: one $\theta$/$\lambda$ step, one $(x, y, z)$ step).
        gamma1, gamma2: proximal parameters. c_lower, p: penalty $c_k = $ c_lower$(k+1)^p$.
        eta, alpha, beta: step sizes (default: from curvature estimates, module docstring).
        warm_start: a `Result` of the same problem (``x``, ``info["y"]``; from ``lv_hba`` also
            its ``theta``, ``lam``, ``z``) or a pair ``(x, y)`` (shapes (p,), (d,)).
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        time_limit, verbose, callback, check_every, dtype: as in
            `cvxkit.solvers.driver.Options`. backend: ``"numpy"`` or ``"jax"``.

    Returns:
        `Result`: ``x`` (p,), ``objective`` $f(x, y)$ at the lower level solved at ``x``,
        ``primal_residual`` the largest constraint violation $\max(c(x, y))_+$,
        ``dual_residual`` $c_k$ times the step residual, ``info``: ``y`` (that lower solution),
        ``y_iterate`` and ``objective_iterate`` (the method's own $y$ and $f$ at it),
        ``lower_residual`` and ``lower_polish_steps`` (the final lower solve), ``theta``,
        ``lam``, ``z``, ``value_gap``, ``steps`` (eta, alpha, beta), ``lower_gradient_steps``
        (one per iteration plus the final solve's), ``lower_solves`` (0: single loop).
    """
    import jax
    import jax.numpy as jnp

    from cvxkit.solvers.backend import get_backend
    from cvxkit.solvers.driver import Options

    t0 = now()
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   progress=progress, callback=callback, check_every=check_every,
                   warm_start=warm_start, dtype=dtype)
    check_options({"gamma1": gamma1, "gamma2": gamma2, "c_lower": c_lower},
                  optional_positive={"eta": eta, "alpha": alpha, "beta": beta})
    validate.positive("p", p, upper=0.5)
    if backend not in ("numpy", "jax"):
        raise ValueError(f"unknown backend {backend!r}; valid choices: numpy, jax")
    prev = None
    if warm_start is not None:
        x0, y0, prev = warm_start_point(warm_start, x0, y0)
    step, monitor, converged, cons, curvatures, lower_solve = method_functions(
        "lv_hba", _functions, fns, x0, y0)
    bk = get_backend("jax", dtype)
    with bk.precision():
        bx = {k: bk.asarray(v) for k, v in boxes._asdict().items()}
        x = clip(bk.asarray(x0), bx["x_lo"], bx["x_hi"])
        y = clip(bk.asarray(y0), bx["y_lo"], bx["y_hi"])
        m = int(np.size(cons(x, y)))
        if fns.constraints is not None:
            A, b = affine_constraints(cons, x, y)
        else:
            A, b = jnp.zeros((0, x.size + y.size)), jnp.zeros((0,))
        # curvature estimates at the start (power iteration on Hessian-vector products)
        rng = np.random.default_rng(0)
        tc = now()  # compilation (and 30 power iterations) of the curvature estimates
        Lg, Lgu, Lf = (float(v) for v in curvatures(
            x, y, bk.asarray(rng.standard_normal(y.size)),
            bk.asarray(rng.standard_normal(x.size + y.size))))
        Ay = float(jnp.linalg.norm(A[:, x.size:], 2)) if m else 0.0
        Ax = float(jnp.linalg.norm(A, 2)) if m else 0.0
        tc = now() - tc
        eta = eta or 1.0 / (Lg + 1 / gamma1 + gamma2 * Ay**2)
        alpha = alpha or 1.0 / (Lf / c_lower + 2 * Lgu + 1 / gamma1 + gamma2 * Ax**2)
        beta = beta or 2 * alpha
        d = {"gamma1": bk.asarray(gamma1), "gamma2": bk.asarray(gamma2),
             "beta_ratio": bk.asarray(beta / (2 * alpha)),
             "c_lower": bk.asarray(c_lower), "p": bk.asarray(p), "tol": bk.asarray(tol),
             "A": bk.asarray(A), "b": bk.asarray(b),
             "proj_step": bk.asarray(1.0 / max(Ax**2, 1e-300)), "y_lo": bx["y_lo"], "y_hi": bx["y_hi"],
             "u_lo": jnp.concatenate([bx["x_lo"], bx["y_lo"]]),
             "u_hi": jnp.concatenate([bx["x_hi"], bx["y_hi"]])}
        z0, th0, lam0 = jnp.zeros(m), y, jnp.zeros(m)
        if prev is not None and prev.method == "lv_hba":  # reuse the auxiliary sequences
            aux = [np.asarray(prev.info.get(k, ()), dtype=np.float64).reshape(-1)
                   for k in ("z", "theta", "lam")]
            if [a.size for a in aux] == [m, y.size, m] and all(np.isfinite(a).all() for a in aux):
                z0, th0, lam0 = (bk.asarray(a) for a in aux)
        state = {"x": x, "y": y, "z": z0, "theta": th0, "lam": lam0,
                 "mu": jnp.zeros(m), "k": jnp.asarray(0, jnp.int32),
                 "res": jnp.asarray(1e30, x.dtype),  # no step taken yet
                 "eta": bk.asarray(eta), "alpha": bk.asarray(alpha),
                 "proj_kkt": jnp.zeros((), x.dtype)}
        setup = now() - t0 - tc
        start = (np.asarray(x), float(fns.upper(x, y)))
        r = drive("lv_hba", step, monitor, converged, state, d, backend, opts)
        st = r.state
        ck = c_lower * max(int(st["k"]), 1) ** p
        # the answer's y: the lower level solved at the final x (the iterate y is the penalty
        # method's, O(1/c_k) from lower-optimal; f at it is not F(x))
        xf, yit = st["x"], st["y"]
        gy0 = float(jnp.linalg.norm(jax.grad(fns.lower, argnums=1)(xf, yit)))
        target = LOWER_RTOL * tol * max(1.0, gy0)
        tp = now()
        y_ans, lres, lsteps = lower_solve(
            xf, clip(st["theta"], bx["y_lo"], bx["y_hi"]), bk.asarray(float(st["eta"])),
            d["A"], d["b"], bx["y_lo"], bx["y_hi"], bk.asarray(1.0 / max(Ay**2, 1e-300)),
            bk.asarray(target), LOWER_ITERS)
        lres, lsteps, tp = float(lres), int(lsteps), now() - tp
        if not (np.isfinite(np.asarray(y_ans)).all() and lres <= 1e3 * target):
            y_ans = yit  # keep the iterate when the lower solve failed outright
        viol = float(jnp.max(jnp.concatenate([cons(xf, y_ans), jnp.zeros(1)])))
        r = r._replace(solve_time=r.solve_time + tp)
        missed = "" if lres <= target else (
            f"the lower level at the final x was solved to gradient mapping {lres:.3g} only "
            f"(target {target:.3g}) within {LOWER_ITERS} steps")
        return finish(r, "lv_hba", backend, xf, y_ans, float(fns.upper(xf, y_ans)),
                      ck * float(st["res"]), 0, jnp.asarray([0, r.iterations + lsteps, 0]),
                      setup,
                      {"theta": np.asarray(st["theta"]), "lam": np.asarray(st["lam"]),
                       "z": np.asarray(st["z"]), "y_iterate": np.asarray(yit),
                       "lower_residual": lres, "lower_polish_steps": lsteps,
                       "objective_iterate": float(fns.upper(xf, yit)),
                       "value_gap": float(r.history["value_gap"][-1]),
                       "steps": {"eta": float(st["eta"]), "alpha": float(st["alpha"]),
                                 "beta": float(st["alpha"]) * beta / alpha}}, tc, start=start,
                      primal_residual=max(viol, 0.0), inaccurate=missed)
