r"""A general proximal ADMM, and the convex two-layer ReLU training of Bai, Gautam & Sojoudi on it.

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

The problem supplies a `ProxProgram`: an `Operator` ($x \mapsto (A_j x)_j$, its adjoint, and the
factorization and solve of $P + \rho A^\top A$), the kinds of the $g_j$ (`prox`: group lasso,
$\ell_1$, $z \ge b$, the Net-Trim set, squared, logistic and hinge losses) and how to read its
answer. The factorization is computed once and reused; it is recomputed only when the adaptive
penalty changes (see below). `DENSE` is the operator of dense $A_j$, $P$, $q$. The convex ReLU
family builds its programs (the Woodbury-structured operator of the paper's splitting, the robust
program on `DENSE`) in `cvxkit.problems.relu_splitting`; Net-Trim's program is
`cvxkit.solvers.net_trim.net_trim_program`.

**On the ADMM core** (`cvxkit.solvers.admm`). The driver step is the core's: `admm.cycle` (a
block of ``check_every`` iterations, fewer at the iteration limit, then the check and the
penalty update; a stopped state stays put), `admm.repeat` (the block: untracked iterations
carrying only the iterates, then one that records $z_{prev}$ for the check) and
`admm.penalty_estimate` (OSQP's $\hat\rho$, clipped, and the ``adaptive_rho_tolerance`` test).
This module supplies the prox instance: the iteration, the residuals and how $\rho$ moves. It
is not a `cvxkit.solvers.admm.Splitting`: that one *projects* onto a set $C$ (with support
functions, recession cones, Ruiz scaling and normalized units built on it), carries the
unscaled dual $y$, a proximal term $\sigma$ and a relaxed $x$; here $z$ is a tuple of blocks
passed through a *prox* (group-$\ell_1$, non-quadratic losses; no epigraph reformulation, which
the paper does not use), $\lambda$ is scaled with its own step $\gamma$, the linear system has
no $\sigma$, $x$ is not relaxed, and the stopping rule is Boyd's.

**Stopping rule** (Boyd et al. 2011, §3.3, infinity norms), checked every ``check_every``
iterations (one driver step is that block: `Algorithm.iterations_per_step`): primal residual
$r_p = \lVert Ax - z\rVert$, dual residual
$r_d = \rho\lVert A^\top(z - z_{prev})\rVert$; stop when
$r_p \le \epsilon_{abs} + \epsilon_{rel}\max(\lVert Ax\rVert, \lVert z\rVert)$ and
$r_d \le \epsilon_{abs} + \epsilon_{rel}\rho\max_j\lVert A_j^\top\lambda_j\rVert$ (the largest
single term: their sum vanishes at an optimum when the objective is all in the $g_j$).
**Units.** The default absolute tolerance is ``tol * unit`` (`ProxProgram.unit`; convex ReLU:
``max|y|``): scaling the targets and the penalty, $(y, \beta) \to (sy, s\beta)$, scales the
optimal weights, the iterates, the scaled duals and both residuals by $s$ (all are homogeneous
of degree one), so the run and its status are the same for every $s$ and the answer is $s$
times the unscaled one.
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

from cvxkit.solvers import admm, kkt, validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, finish, run
from cvxkit.solvers.result import Result, Status

#: term kinds (`prox`)
KINDS = ("group", "l1", "nonneg", "net_trim", "squared", "logistic", "hinge")
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
    * ``l1``: $g = \\sum_i p_i|v_i|$ (``p`` a weight, or weights broadcast against $v$);
    * ``nonneg``: indicator of $v \\ge p$ (``p`` an offset array or 0);
    * ``net_trim``: indicator of the Net-Trim set, ``p = (Y, mask, V, eps)``: on the support
      (``mask = 1``) the Frobenius ball $\\lVert(v - Y)_\\Omega\\rVert_F \\le \\epsilon$ (one
      ball for the whole array), off it $v \\le V$ (the projection: a radial shrink of
      $(v - Y)_\\Omega$, and $\\min(v, V)$ off the support);
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
    if kind == "net_trim":
        Y, mask, V, eps = p
        d = mask * (v - Y)
        nrm = xp.sqrt(xp.sum(d * d))
        out = nrm > eps  # (no division by a floor, as for the group prox)
        shrink = xp.where(out, eps / xp.where(out, nrm, 1.0), 1.0)
        return xp.where(mask > 0, Y + shrink * d, xp.minimum(v, V))
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
    """$g(z)$ for the non-indicator kinds (0 for the indicators ``nonneg`` and ``net_trim``)."""
    xp = bk.xp
    if kind == "group":
        return p * xp.sum(xp.sqrt(xp.sum(z * z, axis=-1)))
    if kind == "l1":
        return xp.sum(p * xp.abs(z))
    if kind in ("nonneg", "net_trim"):
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
def _iterate(bk, op: Operator, kinds, d: Data, s: State, track=True) -> State:
    """One iteration (module docstring); ``track``: also record ``z_prev`` (for the check)."""
    lin, rho = d.lin, s.rho
    zl = tuple(z - l for z, l in zip(s.z, s.lam))
    x = op.solve(bk, lin, s.factor, op.minus_q(bk, lin) + rho * op.adjoint(bk, lin, zl), rho)
    al = d.settings.alpha
    Ax = tuple(al * a + (1.0 - al) * z for a, z in zip(op.forward(bk, lin, x), s.z))  # relaxed
    z = tuple(prox(bk, k, a + l, p, 1.0 / rho) for k, a, l, p in zip(kinds, Ax, s.lam, d.params))
    lam = tuple(l + d.settings.gamma * (a - zz) for l, a, zz in zip(s.lam, Ax, z))
    if not track:
        return s._replace(x=x, z=z, lam=lam)
    return s._replace(x=x, z=z, lam=lam, z_prev=s.z)


def _objective(bk, op, kinds, d, x, Ax):
    val = op.smooth(bk, d.lin, x)
    for k, a, p in zip(kinds, Ax, d.params):
        if k not in ("nonneg", "net_trim"):
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
    est, far = admm.penalty_estimate(xp, s.rho, rel_p, rel_d, st.adaptive_rho_tolerance)
    change = st.adaptive & ~s.done & far
    # halfway (geometrically): the estimate of a single check is noisy, and the full jump
    # (27x at (3000, 50, 100)) left rho far too small, with the objective oscillating
    est = xp.sqrt(s.rho * est)

    def update(s):
        r = s.rho / est
        return s._replace(rho=est, lam=tuple(l * r for l in s.lam),
                          factor=op.factorize(bk, d.lin, est), n_refactor=s.n_refactor + 1)

    return bk.cond(change, update, lambda s: s, s)



@functools.lru_cache(maxsize=32)
def make_algorithm(op: Operator, kinds: tuple, block: int) -> Algorithm:
    """The driver `Algorithm`: one step = a block of ``block`` (``check_every``) iterations, a
    check and a penalty update (``iterations_per_step = block``; the last block of a run stops at
    ``max_iter``). Cached on the operator (stable functions of the problem's module), the kinds
    and the block, so that the driver's compiled loop is reused."""

    def step(bk, s, d):  # the core's block loop (module docstring)
        return admm.cycle(
            bk, d, s,
            lambda s, n: admm.repeat(bk, lambda t, track: _iterate(bk, op, kinds, d, t, track),
                                     s, n, ("x", "z", "lam")),
            lambda s: _check(bk, op, kinds, d, s), lambda s: _adapt(bk, op, d, s), ~s.done)

    def monitor(bk, s, d):
        return {"iterations": s.k, "objective": s.objective, "prim_res": s.prim_res,
                "dual_res": s.dual_res, "rho": s.rho}

    return admm.per_block(Algorithm("relu_admm", step, monitor, lambda bk, s, d: s.done), block)


def _check_options(*, tol, eps_abs, eps_rel, max_iter, time_limit, verbose, progress, callback,
                   check_every, rho, gamma, alpha, adaptive_rho, adaptive_rho_tolerance, dtype,
                   seed=0):
    """Type and range checks of every option (`cvxkit.solvers.validate`): ``TypeError`` for a
    wrong type, ``ValueError`` out of range, each naming the option. Returns
    ``(tol, max_iter, check_every)`` as float, int, int."""
    tol = validate.positive("tol", tol)
    validate.nonnegative("eps_abs", eps_abs, allow_none=True)
    validate.nonnegative("eps_rel", eps_rel, allow_none=True)
    max_iter = validate.integer("max_iter", max_iter)
    validate.positive("time_limit", time_limit, allow_inf=True)
    validate.boolean("verbose", verbose)
    if progress is not None:
        validate.boolean("progress", progress)
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
              progress=None, callback=None, check_every=10, rho=1.0, gamma=1.0, alpha=1.6,
              adaptive_rho=True, adaptive_rho_tolerance=5.0, dtype="float64",
              warm_start=None) -> tuple[State, Any]:
    """Run the proximal ADMM (module docstring) from ``x0``; returns ``(final state, driver Run)``.

    ``lin`` and ``params`` are pytrees of arrays of the back end (made inside
    ``bk.precision()`` by the caller); ``kinds`` the term kinds, one per entry of ``params``.
    ``warm_start``: a previous `State` (its ``x``, ``z``, ``lam``, ``rho``).
    """
    tol, max_iter, check_every = _check_options(
        tol=tol, eps_abs=eps_abs, eps_rel=eps_rel, max_iter=max_iter, time_limit=time_limit,
        verbose=verbose, progress=progress, callback=callback, check_every=check_every, rho=rho,
        gamma=gamma, alpha=alpha, adaptive_rho=adaptive_rho,
        adaptive_rho_tolerance=adaptive_rho_tolerance, dtype=dtype)
    # one driver step = a block of check_every ADMM iterations, checked after each step
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   progress=progress, callback=callback, check_every=1, dtype=dtype)
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
        out = run(make_algorithm(op, kinds, check_every), bk, s, d, opts)
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


def _final(state: State, x, objective: float, info: dict, loop: Status,
           confirmed: State | None = None) -> Final:
    """The `Final` of a finished run (``x`` and ``objective`` in the caller's terms).

    Final check (its verdict overrides an ``optimal`` loop only): a non-finite objective is
    ``numerical_error``; ``confirmed``, the float64 recheck of a float32 run
    (`_confirm_float64`), supplies the residuals reported, and a failed recheck is
    ``optimal_inaccurate``."""
    verdict, message = None, ""
    if loop is Status.OPTIMAL and not math.isfinite(objective):
        verdict = Status.NUMERICAL_ERROR
    if confirmed is not None:
        if loop is Status.OPTIMAL and verdict is None and not bool(confirmed.done):
            verdict = Status.OPTIMAL_INACCURATE
            message = (f"the float32 run met the tolerance; rechecked in float64 on the user's "
                       f"data its residuals ({float(confirmed.prim_res):.2e} primal, "
                       f"{float(confirmed.dual_res):.2e} dual) miss it "
                       f"({float(confirmed.eps_prim):.2e}, {float(confirmed.eps_dual):.2e})")
        info = {**info, "float32_residuals": (float(state.prim_res), float(state.dual_res))}
        state = state._replace(prim_res=confirmed.prim_res, dual_res=confirmed.dual_res,
                               eps_prim=confirmed.eps_prim, eps_dual=confirmed.eps_dual)
    info = {"rho": float(state.rho), "rho_updates": int(state.n_refactor), "state": state,
            "eps_prim": float(state.eps_prim), "eps_dual": float(state.eps_dual), **info}
    return Final(x=x, objective=float(objective),
                 dual=tuple(np.asarray(state.rho * lam) for lam in state.lam),
                 primal_residual=float(state.prim_res), dual_residual=float(state.dual_res),
                 info=info, status=verdict, message=message, iterations=int(state.k))


# --- the solver entry point ------------------------------------------------------------------
class ProxProgram(NamedTuple):
    r"""A program $\min_x \tfrac12x^\top Px + q^\top x + \sum_j g_j(A_jx)$ as a problem hands it
    to `relu_admm` (the convex ReLU family: `cvxkit.problems.relu_splitting.relu_program`).

    * ``operator``, ``kinds``: its `Operator` and the kind of each $g_j$ (`prox`);
    * ``build(bk) -> (lin, params)``: the operator data and the terms' parameters as arrays of
      the back end ``bk`` (made inside ``bk.precision()``; called once per back end);
    * ``block``, ``shape``: the answer ``Result.x`` is ``z[block]`` reshaped to ``shape``;
    * ``to_x(W) -> x``: the iterate $x$ of answer-shaped weights ``W`` (numpy; warm starts);
    * ``objective(W) -> float``: the program's objective at an answer (``Result.objective``);
    * ``unit``: the unit of the absolute tolerance (``eps_abs = tol * unit`` by default);
    * ``info``: entries added to ``Result.info``;
    * ``method``: the method named in ``Result.method`` and in the warm-start error.
    """

    operator: Operator
    kinds: tuple
    build: Callable
    block: int
    shape: tuple
    to_x: Callable
    objective: Callable
    unit: float = 1.0
    info: dict = {}
    method: str = "relu_admm"


def relu_admm(program: ProxProgram, *, backend="numpy", tol=1e-6, eps_abs=None, eps_rel=None,
              max_iter=20_000, time_limit=math.inf, verbose=False, progress: bool | None = None,
              callback=None, check_every=10, rho=None, gamma=1.0, alpha=1.6, adaptive_rho=True,
              adaptive_rho_tolerance=5.0, dtype="float64", warm_start=None, seed=0) -> Result:
    r"""Solve a `ProxProgram` by the proximal ADMM (module docstring); for the convex (gated)
    ReLU training program of Bai, Gautam & Sojoudi,

    $$\min_{u}\ \ell\Big(\sum_i D_iX(v_i - w_i), y\Big) + \beta\sum_i(\lVert v_i\rVert_2 + \lVert w_i\rVert_2)
    \quad\text{s.t.}\ (2D_i - I)Xv_i \ge 0,\ (2D_i - I)Xw_i \ge 0,$$

    the program is `cvxkit.problems.relu_splitting.relu_program` (``ConvexReLU.solve`` builds it).

    Args:
        program: the `ProxProgram`.
        rho: initial penalty (default 1).
        gamma: dual step over rho (the paper's $\gamma_a/\rho$), in (0, 1.618).
        alpha: over-relaxation in (0, 2) (1.6; 1 is the paper's plain ADMM).
        seed: has no effect (the method is deterministic); accepted (a nonnegative integer)
            because ``seed`` belongs to the options every method takes.
        tol: sets ``eps_rel = tol`` and ``eps_abs = tol * program.unit`` (ReLU: ``max|y|``, the
            absolute tolerance in the units of ``y``, so that scaling ``y`` and ``beta`` by ``s``
            scales the answer by ``s`` and changes neither status nor iteration count).
        eps_abs, eps_rel: override those (``eps_abs`` then absolute, in the program's units).
        check_every, adaptive_rho, adaptive_rho_tolerance: see the module docstring.
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        warm_start: a previous `Result` of this solver on a program of the same shapes (its
            iterates and penalty), or an answer of the shape of ``Result.x`` (an array, or
            another method's `Result`), from which the ADMM starts with zero duals; anything
            else raises ``ValueError``.
        max_iter, time_limit, verbose, callback, dtype: see `cvxkit.solvers.driver`.

    Every option is type-checked (``TypeError`` for a wrong type, ``ValueError`` out of range).

    Returns:
        `Result` with ``x`` the answer ``z[program.block]`` (ReLU: the weights (2, P, d), ``v``,
        ``w``; gated: (P, d), from the group-lasso copy: exactly group-sparse, cone-feasible up
        to ``primal_residual``), ``objective`` ``program.objective(x)``, ``dual`` the unscaled
        multipliers $\rho\lambda_j$ (one per term); ``info``: ``rho``, ``rho_updates``,
        ``state`` (for warm starts), ``eps_prim``, ``eps_dual``, ``eps_abs``.
    """
    t0 = time.perf_counter()
    if not isinstance(program, ProxProgram):
        raise ValueError(f"relu_admm solves a ProxProgram (cvxkit.problems.relu_splitting."
                         f"relu_program builds the convex ReLU one), got {type(program).__name__}")
    tol = _check_options(tol=tol, eps_abs=eps_abs, eps_rel=eps_rel, max_iter=max_iter,
                         time_limit=time_limit, verbose=verbose, progress=progress,
                         callback=callback, check_every=check_every, rho=rho, gamma=gamma,
                         alpha=alpha, adaptive_rho=adaptive_rho,
                         adaptive_rho_tolerance=adaptive_rho_tolerance, dtype=dtype,
                         seed=seed)[0]
    # the absolute tolerance in the program's units (ReLU: x, z, the scaled duals and both
    # residuals are homogeneous of degree 1 in (y, beta), so the iterates of (s y, s beta) are s
    # times those of (y, beta) and stop at the same iteration; module docstring)
    eps_abs = tol * program.unit if eps_abs is None else eps_abs
    op, kinds = program.operator, program.kinds
    bk = get_backend(backend, dtype)
    lin, params = program.build(bk)
    with bk.precision():
        x0, ws = _warm_start(warm_start, bk, op, lin, program.shape, program.to_x,
                             program.method)
    setup = time.perf_counter() - t0
    state, out = prox_admm(op, kinds, lin, params, x0, backend=bk, warm_start=ws, tol=tol,
                           eps_abs=eps_abs, eps_rel=eps_rel, max_iter=max_iter,
                           time_limit=time_limit, verbose=verbose, progress=progress,
                           callback=callback, check_every=check_every,
                           rho=1.0 if rho is None else rho, gamma=gamma, alpha=alpha,
                           adaptive_rho=adaptive_rho,
                           adaptive_rho_tolerance=adaptive_rho_tolerance, dtype=dtype)
    W = np.asarray(state.z[program.block]).reshape(program.shape)
    confirmed = _confirm_float64(op, kinds, program.build, state, eps_abs, eps_rel, tol) \
        if dtype == "float32" else None
    final = _final(state, W, program.objective(W), {**program.info, "eps_abs": float(eps_abs)},
                   out.status, confirmed)
    return finish(final, method=program.method, backend=bk.name, run=out, setup_time=setup)


def _warm_start(ws, bk, op, lin, shape, to_x, method="relu_admm"):
    """``(x0, state)`` from ``warm_start``: ``(zeros, None)`` for ``None``; the run's `State` for
    a `Result` of `relu_admm` (``method``) on a problem of the same shapes; ``(to_x(W), None)`` for weights
    ``W`` of shape ``shape`` (an array, or the ``x`` of another method's `Result`). Anything
    else: ``ValueError`` saying what is expected."""
    expected = (f"warm_start must be a Result of {method} on this problem, or weights of "
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
                raise ValueError(f"{expected}; got a Result of {method} on a problem of "
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


# --- dense terms -------------------------------------------------------------------------------
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
"""The `Operator` of dense terms (`DenseLin`): $P + \\rho A^\\top A$ by Cholesky."""
