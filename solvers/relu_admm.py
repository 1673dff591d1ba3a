r"""ADMM for convex two-layer ReLU training (Bai, Gautam & Sojoudi), on a general proximal ADMM.

Bai, Gautam & Sojoudi, "Efficient global optimization of two-layer ReLU networks: quadratic-time
algorithms and adversarial training", SIAM J. Math. Data Sci. 2023 (arXiv 2201.01965); convex
program of Pilanci & Ergen, ICML 2020.

**The general core.** For
$\min_x\ \tfrac12 x^\top Px + q^\top x + \sum_j g_j(A_j x)$ with prox-friendly $g_j$, scaled duals
$\lambda_j$, penalty $\rho$ and dual step $\gamma$ (the paper's $\gamma_a/\rho$, default 1):

$$
\begin{aligned}
x &\leftarrow (P + \rho A^\top A)^{-1}\big(-q + \rho A^\top(z - \lambda)\big),\\
z_j &\leftarrow \operatorname{prox}_{g_j/\rho}(A_j x + \lambda_j),\qquad
\lambda_j \leftarrow \lambda_j + \gamma (A_j x - z_j).
\end{aligned}
$$

The problem supplies an `Operator` ($x \mapsto (A_j x)_j$, its adjoint, and the factorization and
solve of $P + \rho A^\top A$) and the kinds of the $g_j$ (`prox`: group lasso, $\ell_1$,
$z \ge b$, squared, logistic and hinge losses). The factorization is computed once and reused;
it is recomputed only when the adaptive penalty changes (see below).

**Why not `cvxkit.solvers.admm.Splitting`.** That core is OSQP's: a quadratic objective in $x$
and one constraint $Ax \in C$ handled by a *projection* (with support functions, recession cones
and Ruiz scaling built on it). The ReLU program has a nonsmooth objective term (the group-$\ell_1$
penalty, a *prox*, not a projection) and, for classification, a non-quadratic loss: it does not
fit that interface without an epigraph reformulation the paper does not use. Both cores share
`cvxkit.solvers.driver` and `cvxkit.solvers.kkt`.

**The paper's splitting** (squared loss, $\ell = \tfrac12\lVert Fu - y\rVert^2$):
$u \in \mathbb{R}^{2P\times d}$ (blocks $v_i$, $w_i$), $F u = \sum_i D_i X(v_i - w_i)$,
$G u = ((2D_i - I)Xv_i, (2D_i - I)Xw_i)_i$; $z = (u, Gu)$ with $g_1 = \beta\lVert\cdot\rVert_{2,1}$
(group soft-threshold) and $g_2$ the indicator of $s \ge 0$ (the cone constraints). The
$u$-system $F^\top F + \rho(I + G^\top G)$ is solved through Woodbury with
$I + G^\top G = I_{2P}\otimes(I + X^\top X)$ (one $d\times d$ inverse $K$) and the $n\times n$
matrix $S = \rho I + (DD^\top)\circ(XKX^\top)$ inverted once (through its Cholesky factor): $O(n^2 + ndP + Pd^2)$ per
iteration (the paper's "quadratic time"). The gated variant drops $G$ ($K = I$).
For the logistic loss the loss is a third term $g_0(Fu)$ (its prox by a few Newton steps), so
the $u$-step stays the same linear system (the paper uses an inexact inner solver there instead).

**Stopping rule** (Boyd et al. 2011, §3.3, infinity norms), checked every ``check_every``
iterations: primal residual $r_p = \lVert Ax - z\rVert$, dual residual
$r_d = \rho\lVert A^\top(z - z_{prev})\rVert$; stop when
$r_p \le \epsilon_{abs} + \epsilon_{rel}\max(\lVert Ax\rVert, \lVert z\rVert)$ and
$r_d \le \epsilon_{abs} + \epsilon_{rel}\rho\max_j\lVert A_j^\top\lambda_j\rVert$ (the largest
single term: their sum vanishes at an optimum when the objective is all in the $g_j$).
**Units.** The default absolute tolerance is ``tol * max|y|``: scaling the targets and the
penalty, $(y, \beta) \to (sy, s\beta)$, scales the optimal weights, the iterates, the scaled
duals and both residuals by $s$ (all are homogeneous of degree one), so the run and its status
are the same for every $s$ and the answer is $s$ times the unscaled one.
**Adaptive penalty** (OSQP's estimate, not in the paper): $\hat\rho = \rho\sqrt{\hat r_p/\hat r_d}$
from the normalized residuals; when it differs from $\rho$ by more than ``adaptive_rho_tolerance`` (5x),
$\rho$ moves halfway (geometrically) towards it, $\rho \leftarrow \sqrt{\rho\hat\rho}$, $\lambda$ is
rescaled and the system refactored.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable, NamedTuple

import numpy as np

from cvxkit.solvers import kkt, validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Options, run
from cvxkit.solvers.result import Result, Status, as_numpy_history

RHO_MIN, RHO_MAX = 1e-6, 1e6
#: term kinds (`prox`)
KINDS = ("group", "l1", "nonneg", "squared", "logistic", "hinge")
LOSS_KINDS = ("squared", "logistic", "hinge")
#: Newton steps of the logistic prox (quadratic convergence from the start point)
LOGISTIC_NEWTON = 30


class Operator(NamedTuple):
    """The problem-specific half of the proximal ADMM (functions of ``(bk, lin, ...)``):

    * ``forward(bk, lin, x) -> tuple``: $(A_j x)_j$;
    * ``adjoint(bk, lin, z) -> x-shaped``: $\\sum_j A_j^\\top z_j$;
    * ``factorize(bk, lin, rho) -> factor`` of $P + \\rho A^\\top A$;
    * ``solve(bk, lin, factor, rhs, rho) -> x``;
    * ``smooth(bk, lin, x) -> float``: $\\tfrac12 x^\\top Px + q^\\top x + c$;
    * ``minus_q(bk, lin) -> x-shaped``: $-q$.
    """

    forward: Callable
    adjoint: Callable
    factorize: Callable
    solve: Callable
    smooth: Callable
    minus_q: Callable


class Settings(NamedTuple):
    alpha: Any
    eps_abs: Any
    eps_rel: Any
    gamma: Any
    adaptive_rho_tolerance: Any
    adaptive: Any
    block: Any
    max_iter: Any


class Data(NamedTuple):
    lin: Any  # operator data
    params: tuple  # one array per term: weight(s) / labels / offsets
    settings: Settings


class State(NamedTuple):
    x: Any
    z: tuple
    lam: tuple
    z_prev: tuple
    rho: Any
    factor: Any
    k: Any
    n_refactor: Any
    prim_res: Any
    dual_res: Any
    eps_prim: Any
    eps_dual: Any
    objective: Any
    done: Any


# --- proximal maps ----------------------------------------------------------------------------
def prox(bk: Backend, kind: str, v, p, t):
    """$\\operatorname{prox}_{t g}(v)$ for the term ``kind`` with parameters ``p``.

    * ``group``: $g = p\\sum_r\\lVert v_r\\rVert_2$ over rows (last axis), ``p`` = weight $\\beta$;
    * ``l1``: $g = p\\lVert v\\rVert_1$;
    * ``nonneg``: indicator of $v \\ge p$ (``p`` an offset array or 0);
    * ``squared``: $g = \\tfrac{w}{2}\\lVert v - y\\rVert^2$, ``p = (w, y)``;
    * ``logistic``: $g = w\\sum\\log(1 + e^{-y v})$, ``p = (w, y)``, $y \\in \\{\\pm1\\}$;
    * ``hinge``: $g = w\\sum(1 - yv)_+$, ``p = (w, y)``.
    """
    xp = bk.xp
    if kind == "group":
        nrm = xp.sqrt(xp.sum(v * v, axis=-1, keepdims=True))
        keep = nrm > t * p  # (no division by a floor: t p / tiny overflows)
        return v * xp.where(keep, 1.0 - t * p / xp.where(keep, nrm, 1.0), 0.0)
    if kind == "l1":
        return xp.sign(v) * xp.maximum(xp.abs(v) - t * p, 0.0)
    if kind == "nonneg":
        return xp.maximum(v, p)
    w, y = p
    c = t * w
    if kind == "squared":
        return (v + c * y) / (1.0 + c)
    a = y * v  # margins; y = +-1
    if kind == "hinge":
        m = xp.where(a >= 1.0, a, xp.where(a <= 1.0 - c, a + c, 1.0))
        return y * m
    # logistic: h(m) = m - a - c*sigmoid(-m) = 0, root in [a, a + c]. h is convex on m <= 0 and
    # concave on m >= 0: Newton from m = 0 (if h(0) >= 0) or from max(a, 0) (if h(0) < 0) is
    # monotone and quadratically convergent; the bracket guards against rounding.
    lo, hi = a, a + c
    m = xp.where(-a - 0.5 * c >= 0, 0.0 * a, xp.maximum(a, 0.0))
    for _ in range(LOGISTIC_NEWTON):
        s = 0.5 * (1.0 - xp.tanh(0.5 * m))  # sigmoid(-m), overflow-free
        h = m - a - c * s
        lo, hi = xp.where(h < 0, m, lo), xp.where(h < 0, hi, m)
        nxt = m - h / (1.0 + c * s * (1.0 - s))
        m = xp.where((nxt >= lo) & (nxt <= hi), nxt, 0.5 * (lo + hi))
    return y * m


def term_value(bk: Backend, kind: str, z, p):
    """$g(z)$ for the non-indicator kinds (0 for ``nonneg``)."""
    xp = bk.xp
    if kind == "group":
        return p * xp.sum(xp.sqrt(xp.sum(z * z, axis=-1)))
    if kind == "l1":
        return p * xp.sum(xp.abs(z))
    if kind == "nonneg":
        return 0.0 * xp.sum(z[..., :1])
    w, y = p
    if kind == "squared":
        return 0.5 * w * xp.sum((z - y) ** 2)
    if kind == "hinge":
        return w * xp.sum(xp.maximum(0.0, 1.0 - y * z))
    return w * xp.sum(xp.logaddexp(0.0, -y * z))


def _inf(xp, tree):
    return functools.reduce(lambda a, b: xp.maximum(a, b),
                            [xp.max(xp.abs(t)) for t in tree])


# --- the iteration ----------------------------------------------------------------------------
def _iterate(bk, op: Operator, kinds, d: Data, s: State) -> State:
    lin, rho = d.lin, s.rho
    zl = tuple(z - l for z, l in zip(s.z, s.lam))
    x = op.solve(bk, lin, s.factor, op.minus_q(bk, lin) + rho * op.adjoint(bk, lin, zl), rho)
    al = d.settings.alpha
    Ax = tuple(al * a + (1.0 - al) * z for a, z in zip(op.forward(bk, lin, x), s.z))  # relaxed
    z = tuple(prox(bk, k, a + l, p, 1.0 / rho) for k, a, l, p in zip(kinds, Ax, s.lam, d.params))
    lam = tuple(l + d.settings.gamma * (a - zz) for l, a, zz in zip(s.lam, Ax, z))
    return s._replace(x=x, z=z, lam=lam, z_prev=s.z)


def _objective(bk, op, kinds, d, x, Ax):
    val = op.smooth(bk, d.lin, x)
    for k, a, p in zip(kinds, Ax, d.params):
        if k != "nonneg":
            val = val + term_value(bk, k, a, p)
    return val


def _check(bk, op, kinds, d: Data, s: State) -> State:
    xp, st, lin = bk.xp, d.settings, d.lin
    Ax = op.forward(bk, lin, s.x)
    prim = _inf(xp, [a - z for a, z in zip(Ax, s.z)])
    eps_p = st.eps_abs + st.eps_rel * xp.maximum(_inf(xp, Ax), _inf(xp, s.z))
    dz = tuple(z - zp for z, zp in zip(s.z, s.z_prev))
    dual = s.rho * xp.max(xp.abs(op.adjoint(bk, lin, dz)))
    # scale of the dual residual: the largest single term A_j^T y_j (their sum vanishes at an
    # optimum when P = 0, q = 0, so it cannot serve as the scale)
    zero = tuple(xp.zeros_like(l) for l in s.lam)
    eps_d = st.eps_abs + st.eps_rel * s.rho * functools.reduce(xp.maximum, [
        xp.max(xp.abs(op.adjoint(bk, lin, zero[:j] + (l,) + zero[j + 1:])))
        for j, l in enumerate(s.lam)])
    done = (prim <= eps_p) & (dual <= eps_d) & (s.k > 0)
    return s._replace(prim_res=prim, dual_res=dual, eps_prim=eps_p, eps_dual=eps_d,
                      objective=_objective(bk, op, kinds, d, s.x, Ax), done=done)


def _adapt(bk, op, d: Data, s: State) -> State:
    """OSQP's penalty estimate from normalized residuals; refactor on a change > adaptive_rho_tolerance."""
    xp, st = bk.xp, d.settings
    rel_p = s.prim_res / xp.maximum(s.eps_prim - st.eps_abs, 1e-30) * st.eps_rel
    rel_d = s.dual_res / xp.maximum(s.eps_dual - st.eps_abs, 1e-30) * st.eps_rel
    est = xp.clip(s.rho * xp.sqrt(rel_p / xp.maximum(rel_d, 1e-30)), RHO_MIN, RHO_MAX)
    change = st.adaptive & ~s.done & ((est > s.rho * st.adaptive_rho_tolerance) |
                                      (est < s.rho / st.adaptive_rho_tolerance))
    # halfway (geometrically): the estimate of a single check is noisy, and the full jump
    # (27x at (3000, 50, 100)) left rho far too small, with the objective oscillating
    est = xp.sqrt(s.rho * est)

    def update(s):
        r = s.rho / est
        return s._replace(rho=est, lam=tuple(l * r for l in s.lam),
                          factor=op.factorize(bk, d.lin, est), n_refactor=s.n_refactor + 1)

    return bk.cond(change, update, lambda s: s, s)


@functools.lru_cache(maxsize=None)
def make_algorithm(op: Operator, kinds: tuple) -> Algorithm:
    """The driver `Algorithm`: one step = ``check_every`` iterations, a check, a penalty update."""

    def step(bk, s, d):
        n = bk.xp.minimum(d.settings.block, d.settings.max_iter - s.k)

        def body(c):  # only the iterates are carried: the factor stays a loop constant
            t = _iterate(bk, op, kinds, d, s._replace(x=c[0], z=c[1], lam=c[2], z_prev=c[3]))
            return t.x, t.z, t.lam, t.z_prev

        x, z, lam, z_prev = bk.fori(n, body, (s.x, s.z, s.lam, s.z_prev))
        s = s._replace(x=x, z=z, lam=lam, z_prev=z_prev)
        s = _check(bk, op, kinds, d, s._replace(k=s.k + n))
        return _adapt(bk, op, d, s)

    def monitor(bk, s, d):
        return {"iterations": s.k, "objective": s.objective, "prim_res": s.prim_res,
                "dual_res": s.dual_res, "rho": s.rho}

    return Algorithm("relu_admm", step, monitor, lambda bk, s, d: s.done)


def _check_options(*, tol, eps_abs, eps_rel, max_iter, time_limit, verbose, callback,
                   check_every, rho, gamma, alpha, adaptive_rho, adaptive_rho_tolerance, dtype, seed=0):
    """Type and range checks of every option (`cvxkit.solvers.validate`): ``TypeError`` for a
    wrong type, ``ValueError`` out of range, each naming the option. Returns
    ``(tol, max_iter, check_every)`` as float, int, int."""
    tol = validate.positive("tol", tol)
    validate.nonnegative("eps_abs", eps_abs, allow_none=True)
    validate.nonnegative("eps_rel", eps_rel, allow_none=True)
    max_iter = validate.integer("max_iter", max_iter)
    validate.positive("time_limit", time_limit, allow_inf=True)
    validate.boolean("verbose", verbose)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    check_every = validate.integer("check_every", check_every)
    validate.positive("rho", rho, allow_none=True)
    validate.positive("gamma (the dual step over rho)", gamma, upper=(1 + math.sqrt(5)) / 2)
    validate.positive("alpha (over-relaxation)", alpha, upper=2.0)
    validate.boolean("adaptive_rho", adaptive_rho)
    if validate.positive("adaptive_rho_tolerance", adaptive_rho_tolerance) < 1:
        raise ValueError(f"adaptive_rho_tolerance must be >= 1, got {adaptive_rho_tolerance!r}")
    validate.choice("dtype", dtype, ("float64", "float32"))
    validate.integer("seed", seed, minimum=0)
    return tol, max_iter, check_every


def prox_admm(op: Operator, kinds: tuple, lin, params: tuple, x0, *, backend="numpy", tol=1e-6,
              eps_abs=None, eps_rel=None, max_iter=10_000, time_limit=math.inf, verbose=False,
              callback=None, check_every=10, rho=1.0, gamma=1.0, alpha=1.6, adaptive_rho=True,
              adaptive_rho_tolerance=5.0, dtype="float64", warm_start=None) -> tuple[State, Any]:
    """Run the proximal ADMM (module docstring) from ``x0``; returns ``(final state, driver Run)``.

    ``lin`` and ``params`` are pytrees of arrays of the back end (made inside
    ``bk.precision()`` by the caller); ``kinds`` the term kinds, one per entry of ``params``.
    ``warm_start``: a previous `State` (its ``x``, ``z``, ``lam``, ``rho``).
    """
    tol, max_iter, check_every = _check_options(
        tol=tol, eps_abs=eps_abs, eps_rel=eps_rel, max_iter=max_iter, time_limit=time_limit,
        verbose=verbose, callback=callback, check_every=check_every, rho=rho, gamma=gamma,
        alpha=alpha, adaptive_rho=adaptive_rho, adaptive_rho_tolerance=adaptive_rho_tolerance, dtype=dtype)
    # one driver step = check_every ADMM iterations
    opts = Options(tol=tol, max_iter=-(-max_iter // check_every), time_limit=time_limit,
                   verbose=verbose, callback=callback, check_every=1, dtype=dtype)
    bk = get_backend(backend, dtype)
    xp = bk.xp
    eps_abs = tol if eps_abs is None else eps_abs
    eps_rel = tol if eps_rel is None else eps_rel
    with bk.precision():
        f = lambda v: bk.asarray(v)  # noqa: E731
        i32 = (lambda v: xp.asarray(v, dtype=xp.int32)) if bk.name == "jax" else int
        st = Settings(f(alpha), f(eps_abs), f(eps_rel), f(gamma), f(adaptive_rho_tolerance),
                      xp.asarray(bool(adaptive_rho)), i32(check_every), i32(max_iter))
        d = Data(lin, params, st)
        if warm_start is not None:
            x, z, lam, rho0 = warm_start.x, warm_start.z, warm_start.lam, warm_start.rho
            rho0 = f(rho0)
        else:
            x = x0
            z = op.forward(bk, lin, x)
            z = tuple(prox(bk, k, a, p, 1.0 / rho) for k, a, p in zip(kinds, z, params))
            lam = tuple(xp.zeros_like(a) for a in z)
            rho0 = f(rho)
        factor = op.factorize(bk, lin, rho0)
        nan = f(np.nan)
        s = State(x, z, lam, z, rho0, factor, i32(0), i32(0), nan, nan, nan, nan, nan,
                  xp.asarray(False))
        s = _check(bk, op, kinds, d, s)
        out = run(make_algorithm(op, kinds), bk, s, d, opts)
    return out.state, out


def _confirm_float64(op, kinds, build, state: State, eps_abs, eps_rel, tol) -> State:
    """The stopping test of a float32 run recomputed in float64 on the user's data (``build``
    makes the operator data on a back end) at its final iterates: a `State` whose residuals,
    tolerances and ``done`` are the float64 ones."""
    bk = get_backend("numpy", "float64")
    lin, params = build(bk)
    g = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
    s = state._replace(x=g(state.x), z=tuple(map(g, state.z)), lam=tuple(map(g, state.lam)),
                       z_prev=tuple(map(g, state.z_prev)), rho=g(state.rho), k=int(state.k),
                       factor=None)
    eps_rel = tol if eps_rel is None else eps_rel
    st = Settings(1.0, float(eps_abs), float(eps_rel), 1.0, 1.0, False, 1, 1)
    return _check(bk, op, kinds, Data(lin, params, st), s)


def result_from_run(state: State, out, x, objective: float, backend: str, setup_time: float,
                    info: dict, confirmed: State | None = None) -> Result:
    """A `Result` from a finished run (``x`` and ``objective`` in the caller's terms).

    ``confirmed``: the float64 recheck of a float32 run (`_confirm_float64`); its residuals are
    reported, and ``optimal`` becomes ``optimal_inaccurate`` when the test fails in float64."""
    status, message = out.status, ""
    if status is Status.OPTIMAL and not math.isfinite(objective):
        status = Status.NUMERICAL_ERROR
    if confirmed is not None:
        if status is Status.OPTIMAL and not bool(confirmed.done):
            status = Status.OPTIMAL_INACCURATE
            message = (f"the float32 run met the tolerance; rechecked in float64 on the user's "
                       f"data its residuals ({float(confirmed.prim_res):.2e} primal, "
                       f"{float(confirmed.dual_res):.2e} dual) miss it "
                       f"({float(confirmed.eps_prim):.2e}, {float(confirmed.eps_dual):.2e})")
        info = {**info, "float32_residuals": (float(state.prim_res), float(state.dual_res))}
        state = state._replace(prim_res=confirmed.prim_res, dual_res=confirmed.dual_res,
                               eps_prim=confirmed.eps_prim, eps_dual=confirmed.eps_dual)
    info = {"rho": float(state.rho), "rho_updates": int(state.n_refactor), "state": state,
            "eps_prim": float(state.eps_prim), "eps_dual": float(state.eps_dual), **info}
    return Result(x=x, status=status, objective=float(objective), message=message,
                  primal_residual=float(state.prim_res), dual_residual=float(state.dual_res),
                  iterations=int(state.k), solve_time=out.solve_time, setup_time=setup_time,
                  compile_time=out.compile_time, history=as_numpy_history(out.history),
                  backend=backend, method="relu_admm", info=info,
                  dual=tuple(np.asarray(state.rho * lam) for lam in state.lam))


# ============================================================================================
# The structured operator of the convex ReLU program (Woodbury, factor n x n once)
# ============================================================================================
class ReluLin(NamedTuple):
    """``X`` (n, d); ``Ds`` (n, m) signed pattern columns (+D_i for v_i, -D_i for w_i); ``E``
    (n, m) the +-1 cone signs (``None`` for gated); ``K`` (d, d) = (I + c X^T X)^{-1};
    ``S0`` (n, n) = F B^{-1} F^T; ``y`` (n,) (for the squared loss in P, else zeros);
    ``a`` the weight of F^T F in the system (1: loss in P, 0: loss as a term)."""

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


def _relu_solve(loss_term: bool):
    def solve(bk, lin, Si, R, rho):
        T = R @ lin.K  # B^{-1} R (K symmetric)
        s = Si @ _pred(bk, lin, T)
        return (T - _Ft(bk, lin, s) @ lin.K) / rho

    return solve


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


@functools.lru_cache(maxsize=None)
def relu_operator(loss_term: bool, cones: bool) -> Operator:
    """The structured `Operator` of the convex ReLU (``cones``) or gated ReLU program, with the
    loss in ``P`` (squared) or as its own term (``loss_term``)."""
    return Operator(_relu_forward(loss_term, cones), _relu_adjoint(loss_term, cones),
                    _relu_factorize(loss_term), _relu_solve(loss_term), _relu_smooth(loss_term),
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


def relu_admm(X, y, D, *, beta: float, loss: str = "squared", cones: bool = True,
              epsilon: float = 0.0, backend="numpy", tol=1e-6, eps_abs=None, eps_rel=None,
              max_iter=20_000, time_limit=math.inf, verbose=False, callback=None, check_every=10,
              rho=None, gamma=1.0, alpha=1.6, adaptive_rho=True, adaptive_rho_tolerance=5.0,
              dtype="float64", warm_start=None, seed=0) -> Result:
    r"""Solve the convex (gated) ReLU training program by the ADMM of Bai, Gautam & Sojoudi.

    $$\min_{u}\ \ell\Big(\sum_i D_iX(v_i - w_i), y\Big) + \beta\sum_i(\lVert v_i\rVert_2 + \lVert w_i\rVert_2)
    \quad\text{s.t.}\ (2D_i - I)Xv_i \ge 0,\ (2D_i - I)Xw_i \ge 0$$

    (``cones=False``: the gated program, one block $u_i$ per pattern, no constraints). With
    ``epsilon > 0`` the $\ell_\infty$-robust program (`robust_operator`) is solved instead.

    Args:
        X: (n, d) data; y: (n,) targets (``+-1`` for ``logistic``/``hinge``).
        D: (n, P) 0/1 activation patterns.
        beta: group-lasso weight (>= 0).
        loss: ``"squared"`` ($\tfrac12\lVert\hat y - y\rVert^2$), ``"logistic"``
            ($\sum\log(1 + e^{-y\hat y})$) or ``"hinge"`` ($\sum(1 - y\hat y)_+$).
        rho: initial penalty (default 1).
        gamma: dual step over rho (the paper's $\gamma_a/\rho$), in (0, 1.618).
        alpha: over-relaxation in (0, 2) (1.6; 1 is the paper's plain ADMM).
        seed: has no effect (the method is deterministic); accepted (a nonnegative integer)
            because ``seed`` belongs to the options every method takes.
        tol: sets ``eps_rel = tol`` and ``eps_abs = tol * max|y|`` (the absolute tolerance in
            the units of ``y``, so that scaling ``y`` and ``beta`` by ``s`` scales the answer
            by ``s`` and changes neither status nor iteration count).
        eps_abs, eps_rel: override those (``eps_abs`` then absolute, in the units of ``y``).
        check_every, adaptive_rho, adaptive_rho_tolerance: see the module docstring.
        warm_start: a previous `Result` of this solver on a problem of the same shapes (its
            iterates and penalty), or weights of the shape of ``Result.x`` (an array, or another
            method's `Result`), from which the ADMM starts with zero duals; anything else raises
            ``ValueError``.
        max_iter, time_limit, verbose, callback, dtype: see `cvxkit.solvers.driver`.

    Every option is type-checked (``TypeError`` for a wrong type, ``ValueError`` out of range),
    and ``X``, ``y``, ``D`` are validated (finite, real, matching shapes; sparse ``X``
    densified): ``ValueError`` naming the argument.

    Returns:
        `Result` with ``x`` the weights (2, P, d) (``v``, ``w``; gated: (P, d)) taken from the
        group-lasso copy $z_1$ (exactly group-sparse; cone-feasible up to ``primal_residual``),
        ``objective`` at ``x``; ``info``: ``rho``, ``rho_updates``, ``state`` (for warm starts).
    """
    t0 = time.perf_counter()
    X, y, D = _check_data(X, y, D, loss)
    validate.choice("loss", loss, LOSS_KINDS)
    validate.boolean("cones", cones)
    beta = validate.nonnegative("beta", beta)
    epsilon = validate.nonnegative("epsilon", epsilon)
    _check_options(tol=tol, eps_abs=eps_abs, eps_rel=eps_rel, max_iter=max_iter,
                   time_limit=time_limit, verbose=verbose, callback=callback,
                   check_every=check_every, rho=rho, gamma=gamma, alpha=alpha,
                   adaptive_rho=adaptive_rho, adaptive_rho_tolerance=adaptive_rho_tolerance, dtype=dtype, seed=seed)
    # the absolute tolerance in the units of y: x, z, the scaled duals and both residuals are
    # homogeneous of degree 1 in (y, beta), so the iterates of (s y, s beta) are s times those of
    # (y, beta) and stop at the same iteration (module docstring)
    eps_abs = tol * _y_scale(y) if eps_abs is None else eps_abs
    kw = dict(tol=tol, eps_abs=eps_abs, eps_rel=eps_rel, max_iter=max_iter,
              time_limit=time_limit, verbose=verbose, callback=callback,
              check_every=check_every, rho=1.0 if rho is None else rho, gamma=gamma,
              alpha=alpha, adaptive_rho=adaptive_rho, adaptive_rho_tolerance=adaptive_rho_tolerance, dtype=dtype)
    if epsilon > 0:
        if not cones:
            raise ValueError("the robust program (epsilon > 0) is formulated for the ReLU variant "
                             "(cones=True)")
        return _robust_admm(X, y, D, beta=beta, loss=loss, epsilon=epsilon, backend=backend,
                            warm_start=warm_start, t0=t0, **kw)
    loss_term = loss != "squared"
    bk = get_backend(backend, dtype)
    P, d = D.shape[1], X.shape[1]
    shape = (2, P, d) if cones else (P, d)
    op = relu_operator(loss_term, cones)
    kinds = ((loss,) if loss_term else ()) + ("group",) + (("nonneg",) if cones else ())

    def build(b):
        """The operator data and term parameters on back end ``b``."""
        with b.precision():
            f = b.asarray
            params = ((f(1.0), f(y)),) if loss_term else ()
            return relu_lin(b, X, D, y, cones, loss_term), \
                params + (f(beta),) + ((f(0.0),) if cones else ())

    lin, params = build(bk)
    with bk.precision():
        x0, ws = _warm_start(warm_start, bk, op, lin, shape,
                             lambda W: W.reshape(-1, d))
    setup = time.perf_counter() - t0
    state, out = prox_admm(op, kinds, lin, params, x0, backend=bk, warm_start=ws, **kw)
    U = np.asarray(state.z[1 if loss_term else 0])
    W = U.reshape(shape)
    obj = relu_objective(X, y, D, W, beta, loss)
    confirmed = _confirm_float64(op, kinds, build, state, eps_abs, kw["eps_rel"], tol) \
        if dtype == "float32" else None
    return result_from_run(state, out, W, obj, bk.name, setup, {"eps_abs": float(eps_abs)},
                           confirmed)


def _y_scale(y) -> float:
    """$\\lVert y\\rVert_\\infty$ (1 for ``y = 0``): the unit of the absolute tolerance."""
    m = float(np.max(np.abs(y)))
    return m if m > 0 else 1.0


def _check_data(X, y, D, loss):
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


def _warm_start(ws, bk, op, lin, shape, to_x):
    """``(x0, state)`` from ``warm_start``: ``(zeros, None)`` for ``None``; the run's `State` for
    a `Result` of `relu_admm` on a problem of the same shapes; ``(to_x(W), None)`` for weights
    ``W`` of shape ``shape`` (an array, or the ``x`` of another method's `Result`). Anything
    else: ``ValueError`` saying what is expected."""
    xp = bk.xp
    expected = (f"warm_start must be a Result of relu_admm on this problem, or weights of "
                f"shape {shape} (an array or another method's Result with that x)")
    x_zero = bk.asarray(np.zeros(np.shape(to_x(np.zeros(shape)))))
    if ws is None:
        return x_zero, None
    if isinstance(ws, Result):
        state = ws.info.get("state") if isinstance(ws.info, dict) else None
        if isinstance(state, State):
            z_ref = op.forward(bk, lin, x_zero)
            same = (np.shape(state.x) == x_zero.shape and len(state.z) == len(z_ref)
                    and len(state.lam) == len(z_ref)
                    and all(np.shape(a) == b.shape for a, b in zip(state.z, z_ref))
                    and all(np.shape(a) == b.shape for a, b in zip(state.lam, z_ref)))
            if not same:
                raise ValueError(f"{expected}; got a Result of relu_admm on a problem of "
                                 f"other shapes (weights {np.shape(ws.x)})")
            leaves = (state.x, *state.z, *state.lam, state.rho)
            if not all(np.isfinite(np.asarray(v)).all() for v in leaves):
                raise ValueError(f"{expected}; got a Result whose iterates are not finite")
            g = lambda v: bk.asarray(np.asarray(v))  # noqa: E731 - any back end -> this one
            z = tuple(g(v) for v in state.z)
            return g(state.x), state._replace(x=g(state.x), z=z, lam=tuple(g(v) for v in state.lam),
                                              z_prev=z, rho=g(state.rho))
        ws = ws.x
    return bk.asarray(to_x(validate.warm_array(expected, "warm_start", ws, shape))), None


def relu_predict(X, D, W):
    """$\\sum_i D_iX(v_i - w_i)$ for weights ``W`` (2, P, d) or gated (P, d)."""
    U = W[0] - W[1] if W.ndim == 3 else W
    return np.sum(D * (X @ U.T), axis=1)


def loss_value(loss: str, pred, y) -> float:
    """The training loss: squared $\\tfrac12\\sum(\\hat y - y)^2$, logistic, hinge (sums)."""
    if loss == "squared":
        return 0.5 * float(np.sum((pred - y) ** 2))
    if loss == "logistic":
        return float(np.sum(np.logaddexp(0.0, -y * pred)))
    return float(np.sum(np.maximum(0.0, 1.0 - y * pred)))


def relu_objective(X, y, D, W, beta, loss) -> float:
    """Loss plus $\\beta\\sum\\lVert\\text{blocks}\\rVert_2$ of weights ``W``."""
    return loss_value(loss, relu_predict(X, D, W), y) + beta * float(
        np.sum(np.linalg.norm(W, axis=-1)))


# ============================================================================================
# The robust program (l_inf ball of radius epsilon), dense operator
# ============================================================================================
class DenseLin(NamedTuple):
    """Stacked dense maps ``A`` (one array of shape (*z_j.shape, N) per term), quadratic
    ``Pm`` (N, N), ``q`` (N,) and constant ``c``."""

    A: tuple
    Pm: Any
    q: Any
    c: Any


def _dense_forward(bk, lin, x):
    return tuple(A @ x for A in lin.A)


def _dense_adjoint(bk, lin, z):
    xp = bk.xp
    return functools.reduce(lambda a, b: a + b, [
        xp.tensordot(zz, A, axes=zz.ndim) for zz, A in zip(z, lin.A)])


def _dense_factorize(bk, lin, rho):
    xp = bk.xp
    N = lin.q.shape[0]
    AtA = functools.reduce(lambda a, b: a + b, [
        xp.tensordot(A, A, axes=(tuple(range(A.ndim - 1)),) * 2) for A in lin.A])
    return kkt.cholesky(bk, lin.Pm + rho * AtA + 1e-12 * xp.eye(N, dtype=lin.q.dtype))


def _dense_solve(bk, lin, L, rhs, rho):
    return kkt.cho_solve(bk, L, rhs)


def _dense_smooth(bk, lin, x):
    return 0.5 * x @ (lin.Pm @ x) + lin.q @ x + lin.c


DENSE = Operator(_dense_forward, _dense_adjoint, _dense_factorize, _dense_solve, _dense_smooth,
                 lambda bk, lin: -lin.q)


def robust_operator(X, y, D, beta: float, loss: str, epsilon: float):
    r"""The $\ell_\infty$-robust convex program of Bai et al. (ACC 2022; SIMODS §4) as dense terms.

    Variables $x = (U, T, S[, Q])$: $U$ (2P, d) the weights, $T \ge |U|$, $S_k \ge |a_k|$ with
    $a_k = \sum_i d_{ik}(v_i - w_i)$, and for the squared loss $Q_k \ge |x_k^\top a_k - y_k| +
    \epsilon 1^\top S_k$ with objective $\tfrac12\lVert Q\rVert^2$ (the worst case
    $\tfrac12(|x_k^\top a_k - y_k| + \epsilon\lVert a_k\rVert_1)^2$). Classification losses act
    on the worst-case margin $y_kx_k^\top a_k - \epsilon 1^\top S_k$. Robust cones:
    $(2d_{ik} - 1)x_k^\top u_j - \epsilon 1^\top T_j \ge 0$ (the pattern of every point of the
    ball is kept). Returns ``(kinds, A-blocks, params, N, P_matrix, q, c, sizes)``.
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
    kinds = ["group", "nonneg", "nonneg", "nonneg"]
    params = [beta, 0.0, 0.0, 0.0]
    if loss == "squared":
        # Q - (x^T a - y) - eps 1^T S >= 0 and Q + (x^T a - y) - eps 1^T S >= 0
        A_q = np.zeros((2, n, N))
        A_q[0, :, iQ:iQ + n] = np.eye(n)
        A_q[1, :, iQ:iQ + n] = np.eye(n)
        A_q[0] += -A_xa - epsilon * A_s1
        A_q[1] += A_xa - epsilon * A_s1
        blocks.append(A_q.reshape(2 * n, N))
        kinds.append("nonneg")
        params.append(np.concatenate([-y, y]))
        Pm[iQ:, iQ:] = np.eye(n)
    else:
        blocks.append(y[:, None] * A_xa - epsilon * A_s1)  # worst-case margins
        kinds.append(loss)
        params.append((1.0, np.ones(n)))
    return tuple(kinds), blocks, params, N, Pm, q, (m, d, nU)


def _robust_admm(X, y, D, *, beta, loss, epsilon, backend, warm_start, t0, **kw) -> Result:
    kinds, blocks, params, N, Pm, q, (m, d, nU) = robust_operator(X, y, D, beta, loss, epsilon)
    P = m // 2
    bk = get_backend(backend, kw["dtype"])

    def to_x(W):
        """x = (U, T, S[, Q]) of weights W (2, P, d): the tightest T, S, Q (feasible)."""
        U = W.reshape(m, d)
        a = np.einsum("kp,pq->kq", D, U[:P] - U[P:])
        parts = [U.ravel(), np.abs(U).ravel(), np.abs(a).ravel()]
        if loss == "squared":
            parts.append(np.abs(np.sum(X * a, axis=1) - y) + epsilon * np.abs(a).sum(axis=1))
        return np.concatenate(parts)

    def build(b):
        with b.precision():
            f = b.asarray
            return DenseLin(tuple(f(A) for A in blocks), f(Pm), f(q), f(0.0)), \
                tuple((f(p[0]), f(p[1])) if isinstance(p, tuple) else f(p) for p in params)

    lin, ps = build(bk)
    with bk.precision():
        x0, ws = _warm_start(warm_start, bk, DENSE, lin, (2, P, d), to_x)
    setup = time.perf_counter() - t0
    state, out = prox_admm(DENSE, kinds, lin, ps, x0, backend=bk, warm_start=ws, **kw)
    W = np.asarray(state.z[0]).reshape(2, P, d)
    obj = robust_objective(X, y, D, W, beta, loss, epsilon)
    confirmed = _confirm_float64(DENSE, kinds, build, state, kw["eps_abs"], kw["eps_rel"],
                                 kw["tol"]) if kw["dtype"] == "float32" else None
    return result_from_run(state, out, W, obj, bk.name, setup,
                           {"epsilon": epsilon, "eps_abs": float(kw["eps_abs"])}, confirmed)


def robust_objective(X, y, D, W, beta, loss, epsilon) -> float:
    """Worst-case loss over $\\lVert\\delta_k\\rVert_\\infty \\le \\epsilon$ with the patterns
    fixed, plus the group penalty."""
    U = W[0] - W[1]
    a = np.einsum("kp,pq->kq", D, U)  # (n, d): a_k
    pred = np.sum(X * a, axis=1)
    l1 = epsilon * np.sum(np.abs(a), axis=1)
    if loss == "squared":
        val = 0.5 * float(np.sum((np.abs(pred - y) + l1) ** 2))
    elif loss == "logistic":
        val = float(np.sum(np.logaddexp(0.0, -y * pred + l1)))
    else:
        val = float(np.sum(np.maximum(0.0, 1.0 - y * pred + l1)))
    return val + beta * float(np.sum(np.linalg.norm(W, axis=-1)))
