r"""Halpern iteration with restarts, and variance-reduced Halpern for finite-sum monotone inclusions.

**Halpern iteration** (`halpern`). For a nonexpansive map $T$ with a fixed point,

$$
z_{k+1} = \lambda_k z_0 + (1 - \lambda_k)\, T(z_k), \qquad \lambda_k = \frac{1}{k + 2},
$$

has the last-iterate bound $\|z_k - T z_k\| \le 2\|z_0 - z^\star\|/(k+1)$ and converges to the fixed
point nearest the anchor $z_0$. The fixed-point residual $\|z - Tz\|$ is the progress measure and
the stopping test. An optional restart replaces the anchor by the current iterate (and restarts
$k$ at 0) once the residual has fallen below ``restart_factor`` times its value at the anchor.

**Finite-sum monotone inclusions** (`vr_halpern`): find $z$ with $0 \in F(z) + G(z)$, where
$F = \frac1n \sum_{i=1}^n F_i$ is monotone and $L$-Lipschitz "on average"
($\frac1n\sum_i \|F_i(u) - F_i(v)\|^2 \le L^2 \|u - v\|^2$) and $G$ is maximal monotone with a
cheap resolvent $J_{\eta G} = (I + \eta G)^{-1}$ (a projection or a prox). Cai, Alacaoglu &
Diakonikolas, "Variance Reduced Halpern Iteration for Finite-Sum Monotone Inclusions", ICLR 2024
(arXiv 2310.02987), give two methods; both are here, with their step sizes, batch sizes and
schedules as in the authors' released code (`zephyr-cai/Finite-Sum-Halpern-Iteration`):

* ``variant="page"`` (their Algorithm 1, for $F$ cocoercive on average): with
  $\lambda_k = 2/(k+4)$,
  $z_{k+1} = J_{\eta G}(\lambda_k z_0 + (1-\lambda_k) z_k - \eta \tilde F_k)$, where the PAGE
  estimator is $\tilde F_k = F(z_k)$ (a full pass, $n$ component evaluations) with probability
  $p_k$ and otherwise $\tilde F_k = \tilde F_{k-1} + \frac1b\sum_{j \in S_k}[F_j(z_k) - F_j(z_{k-1})]$
  for a minibatch $S_k$ of $b = \lfloor\sqrt n\rfloor$ indices drawn without replacement
  ($2b$ evaluations). $p_k = 1$ for $k \le 1$, $4/(k+4)$ while $k - 1 \le \sqrt n$, then
  $4/(\sqrt n + 5)$. Step $\eta = 1/L$ by default.
* ``variant="forb"`` (their Algorithm 2, for $F$ only monotone and Lipschitz, e.g. games): the
  inexact Halpern iteration $z_{k+1} = \lambda_k z_0 + (1-\lambda_k)\tilde v_k$,
  $\lambda_k = 1/(k+2)$, where $\tilde v_k \approx J_{\eta(F+G)}(z_k)$ comes from
  $M_k = \lfloor 0.05\, n \ln(k+2)\rfloor$ (``inner_factor`` = 0.05) steps of VR-FoRB (Alacaoglu & Malitsky 2022) on the
  1-strongly monotone inclusion $0 \in \Phi_k(v) + \eta G(v)$, $\Phi_k(v) = \eta F(v) + v - z_k$:
  with $p = 1/n$, $\alpha = 1 - p$ and one index $j$ drawn uniformly,

  $$
  \bar v = \alpha v_t + (1-\alpha) w_t,\quad
  v_{t+1} = J_{\gamma\eta G}\big(\bar v - \gamma[\Phi_k(w_t) + \Phi_{k,j}(v_t) - \Phi_{k,j}(w_{t-1})]\big),
  $$

  and with probability $p$ the snapshot moves, $w_{t+1} = v_{t+1}$ (a full pass), else
  $w_{t+1} = w_t$. Outer step $\eta = \sqrt n / L$, inner step
  $\gamma = \sqrt{p(1-p)}/(1 + \eta L)$. (The released script resets the snapshot to the outer
  point $z_k$ instead of $v_{t+1}$; the method as published moves it to $v_{t+1}$, as here. Its
  game experiment uses an inner step 5 times larger, tuned; pass ``inner_step`` to use it.)

The guaranteed complexity is $\tilde O(n + \sqrt n L/\varepsilon)$ component evaluations for the
operator residual $\varepsilon$ (deterministic Halpern needs $O(n L_F/\varepsilon)$), so variance
reduction pays when $L$, the average Lipschitz constant, is close to $L_F$, that of $F$.

Progress measure of `vr_halpern`: the forward-backward residual
$r(z) = \|z - J_{sG}(z - sF(z))\|/s$ (``residual_step`` $s$, default 1), a full pass computed every
``check_every`` iterations; it is zero exactly at solutions. Its evaluations are not counted in
``info["evals"]`` (the paper's plots do the same); ``info["residual_evals"]`` counts them.
Restarts (``restart_factor``) are off by default: the paper's methods do not restart.
"""
from __future__ import annotations

import contextlib
import functools
import math
import time
from typing import Any, Callable, NamedTuple

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, compile_cache, finish, run
from cvxkit.solvers.result import Result, Status

VARIANTS = ("page", "forb")


# --------------------------------------------------------------------------------------------
# operators
# --------------------------------------------------------------------------------------------
def namespace_of(z):
    """The array namespace of ``z``: numpy for numpy arrays, jax.numpy for JAX arrays and tracers
    (jax is imported only then)."""
    if isinstance(z, (np.ndarray, np.generic, float, int)):
        return np
    import jax.numpy as jnp

    return jnp


def _affine_component(data, z, idx):
    M, q = data
    Ms = M[idx]
    return (Ms @ z).mean(axis=0) + q[idx].mean(axis=0)


class FiniteSumOperator:
    r"""$F(z) = \frac1n\sum_{i=1}^n F_i(z)$ on $\mathbb{R}^d$, given as a batched component function.

    Args:
        component: ``component(data, z, idx) -> (d,)``, the average $\frac1{|I|}\sum_{i\in I} F_i(z)$
            over the integer index array ``idx`` (repeats allowed). Written with array methods and
            operators (``A[idx]``, ``@``, ``.mean``) it runs on numpy and, traced, on JAX.
        n: number of components.
        dim: dimension d of ``z``.
        data: tuple of arrays the component reads (moved to the back end's arrays by the solver).
        lipschitz: the average Lipschitz constant $L$
            ($\frac1n\sum_i\|F_i(u)-F_i(v)\|^2 \le L^2\|u-v\|^2$), which sets the default steps;
            required unless every step is given.
        lipschitz_full: the Lipschitz constant $L_F \le L$ of $F$ (deterministic steps).

    Every evaluation of one $F_i$ at one point counts as one component evaluation.
    """

    def __init__(self, component: Callable, n: int, dim: int, data: tuple = (),
                 lipschitz: float | None = None, lipschitz_full: float | None = None):
        if not callable(component):
            raise ValueError("component must be callable: component(data, z, idx) -> (d,)")
        n = validate.integer("n (number of components)", n)
        dim = validate.integer("dim", dim)
        lipschitz = validate.positive("lipschitz", lipschitz, allow_none=True)
        lipschitz_full = validate.positive("lipschitz_full", lipschitz_full, allow_none=True)
        if not isinstance(data, (tuple, list)):
            raise ValueError(f"data must be a tuple of arrays, got {type(data).__name__}")
        self.component, self.n, self.dim = component, n, dim
        self.data = tuple(validate.float_array(f"data[{i}]", a) for i, a in enumerate(data))
        for i, a in enumerate(self.data):
            if not np.isfinite(a).all():
                raise ValueError(f"operator data[{i}] has non-finite entries (NaN or inf)")
        self.lipschitz, self.lipschitz_full = lipschitz, lipschitz_full

    @classmethod
    def from_matrices(cls, M, q=None) -> "FiniteSumOperator":
        r"""Affine components $F_i(z) = M_i z + q_i$ from ``M`` (n, d, d) and ``q`` (n, d), (d,) or None.

        $F$ is monotone when $\bar M = \frac1n\sum_i M_i$ has a positive semidefinite symmetric part.
        $L = (\frac1n\sum_i\|M_i\|_2^2)^{1/2}$, $L_F = \|\bar M\|_2$.
        """
        M = validate.float_array("M", M)
        if M.ndim != 3 or M.shape[1] != M.shape[2] or M.size == 0:
            raise ValueError(f"M must have shape (n, d, d), got {M.shape}")
        n, d = M.shape[0], M.shape[1]
        q = np.zeros((n, d)) if q is None else validate.float_array("q", q)
        if q.shape == (d,):
            q = np.broadcast_to(q, (n, d)).copy()
        if q.shape != (n, d):
            raise ValueError(f"q must have shape ({n}, {d}) or ({d},), got {q.shape}")
        if not (np.isfinite(M).all() and np.isfinite(q).all()):
            raise ValueError("M and q must be finite (no NaN or inf)")
        L = float(np.sqrt(np.mean(np.linalg.norm(M, 2, axis=(1, 2)) ** 2)))
        LF = float(np.linalg.norm(M.mean(axis=0), 2))
        return cls(_affine_component, n, d, (M, q), lipschitz=max(L, 1e-300),
                   lipschitz_full=max(LF, 1e-300))

    def full(self, z, data=None):
        """$F(z)$, (d,) (n component evaluations)."""
        xp = namespace_of(z)
        return self.component(self.data if data is None else data, z, xp.arange(self.n))

    def batch(self, z, idx, data=None):
        """Average of $F_i(z)$ over ``idx`` (``len(idx)`` component evaluations)."""
        return self.component(self.data if data is None else data, z, idx)


def identity_resolvent(z, step):
    """$J_{\\eta G}$ for $G = 0$ (unconstrained): the identity."""
    return z


def project_simplex(v):
    r"""Euclidean projection of ``v`` (d,) onto the probability simplex $\{x \ge 0, \sum x = 1\}$.

    Sort-based (Held, Wolfe & Crowder; Duchi et al. 2008), numpy or JAX arrays.
    """
    xp = namespace_of(v)
    u = xp.sort(v)[::-1]
    css = xp.cumsum(u) - 1.0
    ind = xp.arange(1, v.shape[0] + 1)
    rho = xp.sum(u - css / ind > 0)
    tau = css[rho - 1] / rho
    return xp.maximum(v - tau, 0.0)


def simplex_product_resolvent(sizes):
    """Resolvent of the normal cone of a product of simplices of the given ``sizes``: projection
    of each block of ``z`` onto its simplex (independent of the step)."""
    sizes = tuple(int(s) for s in sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"simplex sizes must be positive integers, got {sizes!r}")
    return functools.partial(_simplex_product, sizes)


def _simplex_product(sizes, z, step):
    xp = namespace_of(z)
    out, start = [], 0
    for s in sizes:
        out.append(project_simplex(z[start:start + s]))
        start += s
    return xp.concatenate(out)


def box_resolvent(lower, upper):
    """Resolvent of the normal cone of the box ``[lower, upper]``: clipping."""
    return functools.partial(_box, float(lower), float(upper))


def _box(lo, hi, z, step):
    return namespace_of(z).clip(z, lo, hi)


def forward_backward_residual(op: FiniteSumOperator, resolvent, z, step: float = 1.0, data=None):
    r"""$\|z - J_{sG}(z - sF(z))\|/s$: zero exactly at solutions of $0 \in F(z) + G(z)$ (n evaluations)."""
    xp = namespace_of(z)
    return xp.linalg.norm(z - resolvent(z - step * op.full(z, data), step)) / step


def extragradient_map(op: FiniteSumOperator, resolvent, eta: float):
    r"""$T(z) = J_{\eta G}(z - \eta F(J_{\eta G}(z - \eta F(z))))$, the extragradient map
    ($2n$ component evaluations per call). Its fixed points solve $0 \in F(z) + G(z)$; it is
    nonexpansive e.g. for bilinear $F$ with $\eta L_F \le 1$. Returns ``T(z, *data)``."""

    def T(z, *data):
        half = resolvent(z - eta * op.full(z, data), eta)
        return resolvent(z - eta * op.full(half, data), eta)

    return T


def forward_backward_map(op: FiniteSumOperator, resolvent, eta: float):
    r"""$T(z) = J_{\eta G}(z - \eta F(z))$ ($n$ evaluations per call): averaged, hence nonexpansive,
    when $F$ is $1/L_F$-cocoercive and $\eta \le 2/L_F$. Returns ``T(z, *data)``."""

    def T(z, *data):
        return resolvent(z - eta * op.full(z, data), eta)

    return T


# --------------------------------------------------------------------------------------------
# shared helpers: randomness, loops, restarts, validation
# --------------------------------------------------------------------------------------------
def _rng_init(bk: Backend, seed: int):
    if bk.name == "jax":
        return bk._jax.random.PRNGKey(seed)
    return np.random.default_rng(seed)


def _uniform(bk: Backend, key):
    """A U(0, 1) draw and the next key (numpy: the Generator itself, advanced)."""
    if bk.name == "jax":
        k1, k2 = bk._jax.random.split(key)
        return bk._jax.random.uniform(k2, dtype=bk.dtype), k1
    return key.random(), key


def _indices(bk: Backend, key, n: int, size: int, replace: bool):
    if bk.name == "jax":
        k1, k2 = bk._jax.random.split(key)
        return bk._jax.random.choice(k2, n, (size,), replace=replace), k1
    return key.choice(n, size, replace=replace), key


def _maybe_restart(bk: Backend, res, res_anchor, z, anchor, k, restarts, factor):
    """Anchor restart: once ``res <= factor * res_anchor`` (``factor > 0``), the anchor becomes
    ``z``, the schedule counter ``k`` restarts at 0 and ``res_anchor`` becomes ``res``."""
    xp = bk.xp
    hit = (factor > 0) & (res <= factor * res_anchor)
    return (xp.where(hit, z, anchor), xp.where(hit, 0, k), xp.where(hit, res, res_anchor),
            restarts + xp.where(hit, 1, 0))


def _start_point(z0, warm_start, dim: int | None = None) -> np.ndarray:
    """The first iterate: ``warm_start`` (a `Result` of this method, or a point of ``z0``'s
    shape) when given, else ``z0``; a finite (d,) float array, else ``ValueError`` saying what
    is expected."""
    z0 = _point("z0", z0, dim)
    if warm_start is None:
        return z0
    dim = z0.size
    if isinstance(warm_start, Result):
        if warm_start.x is None:
            raise ValueError("warm_start is a Result without a solution x; expected a Result of "
                             f"this method or an array of shape ({dim or 'd'},)")
        return _point("warm_start (its x)", warm_start.x, dim)
    if isinstance(warm_start, (dict, str, bytes)) or callable(warm_start):
        raise ValueError(f"warm_start must be a Result of this method or an array of shape "
                         f"({dim or 'd'},), got {type(warm_start).__name__}")
    return _point("warm_start", warm_start, dim)


def _point(name: str, z, dim: int | None) -> np.ndarray:
    z = validate.float_array(name, z, finite=False)
    want = f"({dim},)" if dim is not None else "(d,) with d >= 1"
    if z.ndim != 1 or z.size == 0 or (dim is not None and z.shape != (dim,)):
        raise ValueError(f"{name} must be a 1-D array of shape {want}, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return z


def _restart_factor(v):
    """``restart_factor`` in [0, 1) (0 = no restarts)."""
    return validate.nonnegative("restart_factor", v, upper=1.0)


def _call(what: str, fn: Callable, *args):
    """``fn(*args)``; what the user's callable raises is reported as ``ValueError("<what> failed: ...")``."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - report what the user's callable raised
        raise ValueError(f"{what} failed: {type(e).__name__}: {e}") from None


@contextlib.contextmanager
def _on_backend(backend: str, dtype: str, data: tuple, z0):
    """Inside the back end's precision: ``(bk, data on the back end, z0 on the back end)``."""
    bk = get_backend(backend, dtype)
    with bk.precision():
        yield bk, tuple(bk.asarray(a) for a in data), bk.asarray(z0)


def _final(x, res: float, tol: float, loop: Status, info: dict) -> Final:
    """The `Final` of a Halpern run, with the final check of its stopping residual ``res``:
    ``numerical_error`` when it is not finite; ``max_iter`` when the loop stopped ``optimal``
    with ``res > tol`` (a stop on the evaluation budget ``max_evals``, or a residual that only
    the working dtype saw below ``tol``)."""
    status, message = None, ""
    if not math.isfinite(res):
        status, message = Status.NUMERICAL_ERROR, f"the stopping residual is {res}"
    elif loop is Status.OPTIMAL and not res <= tol:
        status = Status.MAX_ITER
        message = (f"the stopping residual {res:.3g} is above tol={tol:.1e}: the evaluation "
                   f"budget (max_evals) was reached, or only the working dtype saw it below tol")
    return Final(x=x, objective=float("nan"), primal_residual=res, info=info, status=status,
                 message=message)


# --------------------------------------------------------------------------------------------
# generic Halpern iteration
# --------------------------------------------------------------------------------------------
class HalpernState(NamedTuple):
    z: Any  # current iterate (d,)
    z_res: Any  # the iterate whose residual is ``res`` (the previous one)
    anchor: Any  # z_0 of the current restart epoch (d,)
    k: Any  # iterations since the last restart
    res: Any  # ||z - T z|| / residual_scale at the last evaluation of T
    res_anchor: Any  # residual when the anchor was set
    calls: Any  # evaluations of T
    restarts: Any
    stop: Any  # the stopping residual of z_res (``residual_fn``, else ``res``)


class HalpernData(NamedTuple):
    data: tuple
    tol: Any
    scale: Any
    restart_factor: Any


def _halpern_algorithm(T: Callable, aux_fn: Callable | None,
                       residual_fn: Callable | None = None) -> Algorithm:
    def step(bk, s: HalpernState, d: HalpernData):
        xp = bk.xp
        Tz = T(s.z, *d.data)
        res = xp.linalg.norm(s.z - Tz) / d.scale
        stop = res if residual_fn is None else residual_fn(s.z, *d.data)
        anchor, k, res_anchor, restarts = _maybe_restart(
            bk, res, s.res_anchor, s.z, s.anchor, s.k, s.restarts, d.restart_factor)
        lam = 1.0 / (k + 2.0)
        z = lam * anchor + (1.0 - lam) * Tz
        return HalpernState(z, s.z, anchor, k + 1, res, res_anchor, s.calls + 1, restarts, stop)

    def monitor(bk, s, d):
        out = {"residual": s.stop, "calls": s.calls}
        if residual_fn is not None:
            out["fixed_point_residual"] = s.res
        if aux_fn is not None:  # the stopping residual itself is not evaluated twice
            out["aux"] = s.stop if aux_fn is residual_fn else aux_fn(s.z, *d.data)
        return out

    def converged(bk, s, d):
        return s.stop <= d.tol

    return Algorithm("halpern", step, monitor, converged)


def halpern(T: Callable, z0, *, backend="numpy", tol=1e-6, max_iter=10_000, time_limit=math.inf,
            verbose=False, progress=None, callback=None, check_every=None, seed=0, warm_start=None,
            dtype="float64", data=(), residual_scale=1.0, restart_factor=0.0,
            monitor_fn: Callable | None = None, residual_fn: Callable | None = None,
            evals_per_call: int = 1) -> Result:
    r"""Halpern iteration $z_{k+1} = \frac{1}{k+2} z_0 + \frac{k+1}{k+2} T(z_k)$ for a nonexpansive ``T``.

    Args:
        T: ``T(z, *data) -> (d,)``, nonexpansive with a fixed point; on the JAX back end it must be
            traceable (jax.numpy operations).
        z0: (d,) the anchor and first iterate.
        tol: stop when $\|z_k - T z_k\| / \text{residual\_scale} \le$ ``tol`` (absolute, in the
            units of ``z`` over ``residual_scale``; e.g. the step $\eta$ of a resolvent-type ``T``
            makes it an operator residual).
        data: tuple of arrays passed to ``T`` (converted to the back end's arrays).
        restart_factor: restart the anchor at $z_k$ once the residual is at most this factor times
            its value at the anchor (0, the default: no restarts).
        monitor_fn: optional ``monitor_fn(z, *data) -> scalar`` recorded in ``history["aux"]`` at
            every check (e.g. an operator residual shared by several methods).
        residual_fn: optional ``residual_fn(z, *data) -> scalar``, the stopping residual instead
            of the fixed-point residual (e.g. a problem's own optimality measure, so that ``tol``
            means the same for several methods); evaluated at every iterate. Restarts still
            compare fixed-point residuals, recorded in ``history["fixed_point_residual"]``.
            ``monitor_fn`` may be the same function: it is then not evaluated again.
        evals_per_call: oracle cost of one call of ``T`` (e.g. 2n component evaluations for an
            extragradient map), reported as ``info["evals"]``.
        warm_start: a previous `Result` or a (d,) point: the new anchor.
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        Other options: see `cvxkit.solvers.driver`.

    Returns:
        `Result` with ``x`` the last iterate whose fixed-point residual was evaluated (d,),
        ``primal_residual`` its stopping residual ($\|x - Tx\|$/scale, or ``residual_fn(x)``),
        ``objective`` nan, and ``info``: ``calls`` (of
        ``T``), ``evals`` (calls times ``evals_per_call``), ``restarts``.
    """
    t0 = time.perf_counter()
    if not callable(T):
        raise ValueError("T must be callable: T(z, *data) -> array of z's shape")
    z0 = _start_point(z0, warm_start)
    scale = validate.positive("residual_scale", residual_scale)
    factor = _restart_factor(restart_factor)
    evals_per_call = validate.integer("evals_per_call", evals_per_call)
    for name, fn in (("monitor_fn", monitor_fn), ("residual_fn", residual_fn)):
        if fn is not None and not callable(fn):
            raise ValueError(f"{name} must be callable: {name}(z, *data) -> scalar")
    if not isinstance(data, (tuple, list)):
        raise ValueError(f"data must be a tuple of arrays, got {type(data).__name__}")
    data = tuple(validate.float_array(f"data[{i}]", a) for i, a in enumerate(data))
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                   progress=progress)
    with _on_backend(backend, dtype, data, z0) as (bk, arrays, z):
        xp = bk.xp
        Tz0 = np.asarray(_call("T(z0)", T, z, *arrays))
        if Tz0.shape != z0.shape:
            raise ValueError(f"T(z) must have z's shape {z0.shape}, got {Tz0.shape}")
        res0 = bk.asarray(np.linalg.norm(z0 - Tz0) / scale)
        stop0 = res0
        if residual_fn is not None:
            stop0 = bk.asarray(float(_call("residual_fn(z0)", residual_fn, z, *arrays)))
        state = HalpernState(z, z, z, xp.asarray(0), res0, res0, xp.asarray(0), xp.asarray(0),
                             stop0)
        d = HalpernData(arrays, bk.asarray(tol), bk.asarray(scale), bk.asarray(factor))
        # one Algorithm per (callables, back end, shapes): the driver's compiled loop is reused
        alg = compile_cache.get(
            ("halpern", T, monitor_fn, residual_fn, bk, z0.shape, tuple(a.shape for a in data)),
            lambda: _halpern_algorithm(T, monitor_fn, residual_fn))
        setup = time.perf_counter() - t0
        out = run(alg, bk, state, d, opts)
        s = out.state
        x = bk.to_numpy(s.z_res)
        res = float(s.stop)
        calls = int(s.calls)
    info = {"calls": calls, "evals": calls * int(evals_per_call), "restarts": int(s.restarts)}
    return finish(_final(x, res, tol, out.status, info), method="halpern", backend=bk.name,
                  run=out, setup_time=setup)


# --------------------------------------------------------------------------------------------
# variance-reduced Halpern (Cai, Alacaoglu & Diakonikolas, ICLR 2024)
# --------------------------------------------------------------------------------------------
class VRState(NamedTuple):
    z: Any  # current iterate (d,)
    z_prev: Any  # previous iterate (PAGE differences)
    g: Any  # PAGE estimate of F(z_prev -> z) (d,)
    anchor: Any
    k: Any  # iterations since the last restart (schedule counter)
    it: Any  # iterations in total
    res: Any  # forward-backward residual at the last check
    res_anchor: Any
    evals: Any  # component evaluations (float, no overflow)
    res_evals: Any  # component evaluations spent on residual checks
    restarts: Any
    key: Any  # numpy Generator or JAX PRNG key


class VRData(NamedTuple):
    data: tuple
    eta: Any  # step (page: eta; forb: outer resolvent parameter)
    gamma: Any  # forb inner step
    inner_factor: Any  # forb: M_k = floor(inner_factor * n * ln(k + 2)) inner steps
    tol: Any
    res_step: Any
    res_every: Any
    restart_factor: Any
    max_evals: Any


def _check_residual(bk, op, resolvent, s: VRState, d: VRData, z, it):
    """Every ``res_every`` iterations: the forward-backward residual at ``z`` and the restart test."""
    xp = bk.xp

    def compute(args):
        z, anchor, k, res, res_anchor, restarts = args
        r = forward_backward_residual(op, resolvent, z, d.res_step, d.data)
        anchor, k, res_anchor, restarts = _maybe_restart(
            bk, r, res_anchor, z, anchor, k, restarts, d.restart_factor)
        return anchor, k, r, res_anchor, restarts

    def keep(args):
        z, anchor, k, res, res_anchor, restarts = args
        return anchor, k, res, res_anchor, restarts

    due = (it % d.res_every) == 0
    anchor, k, res, res_anchor, restarts = bk.cond(
        due, compute, keep, (z, s.anchor, s.k, s.res, s.res_anchor, s.restarts))
    return anchor, k, res, res_anchor, restarts, s.res_evals + xp.where(due, op.n, 0)


def _page_algorithm(op: FiniteSumOperator, resolvent: Callable, b: int) -> Algorithm:
    n = op.n
    sqrt_n = math.sqrt(n)

    def step(bk, s: VRState, d: VRData):
        xp = bk.xp
        k = s.k
        lam = 2.0 / (k + 4.0)
        p = xp.where(k <= 1, 1.0, xp.where(k - 1 <= sqrt_n, 4.0 / (k + 4.0), 4.0 / (sqrt_n + 5.0)))
        u, key = _uniform(bk, s.key)
        idx, key = _indices(bk, key, n, b, replace=False)

        def full(args):
            z, z_prev, g = args
            return op.full(z, d.data), 1.0 * n

        def minibatch(args):
            z, z_prev, g = args
            return g + op.batch(z, idx, d.data) - op.batch(z_prev, idx, d.data), 2.0 * b

        g, cost = bk.cond(u < p, full, minibatch, (s.z, s.z_prev, s.g))
        z = resolvent(lam * s.anchor + (1.0 - lam) * s.z - d.eta * g, d.eta)
        it = s.it + 1
        anchor, k1, res, res_anchor, restarts, res_evals = _check_residual(
            bk, op, resolvent, s, d, z, it)
        restarted = restarts > s.restarts
        return VRState(z, s.z, g, anchor, xp.where(restarted, 0, k1 + 1), it, res, res_anchor,
                       s.evals + cost, res_evals, restarts, key)

    return Algorithm("vr_halpern", step, _vr_monitor, _vr_converged)


def _forb_algorithm(op: FiniteSumOperator, resolvent: Callable) -> Algorithm:
    n = op.n
    p = 1.0 / n
    alpha = 1.0 - p

    def step(bk, s: VRState, d: VRData):
        xp = bk.xp
        eta, gamma, center = d.eta, d.gamma, s.z
        # inner accuracy grows with the total count (a restart resets only the anchoring)
        M = xp.maximum(xp.floor(d.inner_factor * n * xp.log(s.it + 2.0)), 1.0).astype(int)

        def inner(c):
            v, w, w_prev, Fw, evals, key = c  # Fw = F(w): Phi(w) = eta F(w) + w - center
            j, key = _indices(bk, key, n, 1, replace=True)
            vbar = alpha * v + (1.0 - alpha) * w
            dphi = eta * (op.batch(v, j, d.data) - op.batch(w_prev, j, d.data)) + v - w_prev
            v_new = resolvent(vbar - gamma * (eta * Fw + w - center + dphi), gamma * eta)
            u, key = _uniform(bk, key)
            w_new, Fw_new, cost = bk.cond(
                u < p, lambda a: (a[0], op.full(a[0], d.data), 2.0 + n),
                lambda a: (a[1], a[2], 2.0), (v_new, w, Fw))
            return v_new, w_new, w, Fw_new, evals + cost, key

        carry = (center, center, center, op.full(center, d.data), s.evals + n, s.key)
        v, _, _, _, evals, key = bk.fori(M, inner, carry)
        lam = 1.0 / (s.k + 2.0)
        z = lam * s.anchor + (1.0 - lam) * v
        it = s.it + 1
        anchor, k1, res, res_anchor, restarts, res_evals = _check_residual(
            bk, op, resolvent, s, d, z, it)
        restarted = restarts > s.restarts
        return VRState(z, s.z, s.g, anchor, xp.where(restarted, 0, k1 + 1), it, res, res_anchor,
                       evals, res_evals, restarts, key)

    return Algorithm("vr_halpern", step, _vr_monitor, _vr_converged)


def _vr_monitor(bk, s: VRState, d: VRData):
    return {"residual": s.res, "evals": s.evals}


def _vr_converged(bk, s: VRState, d: VRData):
    return (s.res <= d.tol) | (s.evals >= d.max_evals)


def vr_halpern(op: FiniteSumOperator, z0, resolvent: Callable = identity_resolvent, *,
               backend="numpy", tol=1e-6, max_iter=100_000, time_limit=math.inf, verbose=False,
               progress=None, callback=None, check_every=None, seed=0, warm_start=None,
               dtype="float64",
               variant="page", eta=None, batch_size=None, inner_step=None, inner_factor=0.05,
               residual_step=1.0, restart_factor=0.0, max_evals=math.inf) -> Result:
    r"""Variance-reduced Halpern iteration for $0 \in F(z) + G(z)$, $F = \frac1n\sum_i F_i$ (module docstring).

    Args:
        op: the `FiniteSumOperator` $F$ (n components on $\mathbb{R}^d$).
        z0: (d,) anchor and first iterate.
        resolvent: ``resolvent(z, step) -> (d,)``, $J_{\text{step}\,G}$ (default: $G = 0$); see
            `simplex_product_resolvent`, `box_resolvent`.
        variant: ``"page"`` (Algorithm 1, cocoercive $F$) or ``"forb"`` (Algorithm 2, monotone
            Lipschitz $F$: games).
        eta: step; default $1/L$ (page) or $\sqrt n/L$ (forb), $L$ = ``op.lipschitz``.
        batch_size: PAGE minibatch $b$ (default $\lfloor\sqrt n\rfloor$).
        inner_step: VR-FoRB step $\gamma$ (default $\sqrt{p(1-p)}/(1+\eta L)$, $p = 1/n$).
        inner_factor: VR-FoRB runs $M_k = \max(1, \lfloor c\, n \ln(k+2)\rfloor)$ steps in outer
            iteration $k$ (counted from the start: restarts reset the anchoring, not the inner
            accuracy), $c$ = ``inner_factor`` in (0, 1000) (default 0.05, the released code's
            value).
        tol: stop when the forward-backward residual
            $\|z - J_{sG}(z - sF(z))\|/s \le$ ``tol``, $s$ = ``residual_step``.
        check_every: iterations between residual checks (default: about one epoch, $n$ component
            evaluations: $\lceil \sqrt n/2\rceil$ for page, 1 for forb).
        restart_factor: anchor restarts, as in `halpern` (default 0: off, as in the paper).
        max_evals: budget of component evaluations; reaching it stops with ``max_iter``.
        max_iter: iterations (page) or outer iterations (forb).
        seed: the random draws (numpy ``default_rng(seed)``, or ``jax.random.PRNGKey(seed)``).
        warm_start: a previous `Result` or a (d,) point, used as ``z0``.
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        Other options: see `cvxkit.solvers.driver`.

    Returns:
        `Result`: ``x`` the last iterate (d,), ``primal_residual`` its forward-backward residual at
        the last check, ``objective`` nan; ``history`` has ``residual`` and ``evals`` per check;
        ``info``: ``evals`` (component evaluations), ``epochs`` (evals / n), ``residual_evals``,
        ``eta``, ``batch_size``, ``inner_step``, ``restarts``, ``variant``.
    """
    t0 = time.perf_counter()
    if not isinstance(op, FiniteSumOperator):
        raise ValueError("op must be a FiniteSumOperator (see FiniteSumOperator, from_matrices)")
    validate.choice("variant", variant, VARIANTS)
    if not callable(resolvent):
        raise ValueError("resolvent must be callable: resolvent(z, step) -> array of z's shape")
    z0 = _start_point(z0, warm_start, op.dim)
    n = op.n
    eta = validate.positive("eta", eta, allow_none=True)
    inner_step = validate.positive("inner_step", inner_step, allow_none=True)
    # at most 1e3 n ln(k + 2) inner steps per outer iteration (an inner loop cannot be timed out)
    inner_factor = validate.positive("inner_factor", inner_factor, upper=1e3)
    res_step = validate.positive("residual_step", residual_step)
    factor = _restart_factor(restart_factor)
    max_evals = validate.positive("max_evals", max_evals, allow_inf=True)
    check_every = validate.integer("check_every", check_every, allow_none=True)
    need_L = eta is None or (variant == "forb" and inner_step is None)
    if need_L and op.lipschitz is None:
        raise ValueError("op.lipschitz (average Lipschitz constant) is needed for the default "
                         "steps; give it to FiniteSumOperator or pass eta (and inner_step)")
    L = op.lipschitz
    b = 0
    gamma = 0.0
    if variant == "page":
        b = max(1, int(math.isqrt(n))) if batch_size is None else validate.integer(
            "batch_size", batch_size)
        if b > n:
            raise ValueError(f"batch_size must be an integer in [1, n={n}], got {batch_size!r}")
        eta = 1.0 / L if eta is None else eta
        every = check_every or max(1, math.ceil(math.sqrt(n) / 2))
    else:
        eta = math.sqrt(n) / L if eta is None else eta
        p = 1.0 / n
        gamma = (math.sqrt(p * (1 - p)) / (1 + eta * L) if inner_step is None else inner_step)
        if n == 1 and inner_step is None:
            gamma = 0.5 / (1 + eta * L)
        every = check_every or 1
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=every, seed=seed, dtype=dtype,
                   progress=progress)
    with _on_backend(backend, dtype, op.data, z0) as (bk, arrays, z):
        xp = bk.xp
        shape = tuple(np.shape(_call("evaluating the operator at z0", op.full, z, arrays)))
        rz = np.shape(_call("evaluating the resolvent at z0", resolvent, z, eta))
        if shape != z0.shape or rz != z0.shape:
            raise ValueError(f"F(z) and resolvent(z, step) must have z's shape {z0.shape}, got "
                             f"{shape} and {rz}")
        res0 = forward_backward_residual(op, resolvent, z, res_step, arrays)
        zero = bk.asarray(0.0)
        state = VRState(z, z, xp.zeros_like(z), z, xp.asarray(0), xp.asarray(0), res0, res0,
                        zero, bk.asarray(float(n)), xp.asarray(0), _rng_init(bk, seed))
        d = VRData(arrays, bk.asarray(eta), bk.asarray(gamma), bk.asarray(inner_factor),
                   bk.asarray(tol),
                   bk.asarray(res_step), xp.asarray(every), bk.asarray(factor),
                   bk.asarray(float(max_evals)))
        shapes = (z0.shape, tuple(a.shape for a in op.data))
        alg = compile_cache.get(  # one Algorithm per (operator, resolvent, statics, shapes)
            ("vr_halpern", variant, op, resolvent, b, bk, shapes),
            lambda: (_page_algorithm(op, resolvent, b) if variant == "page"
                     else _forb_algorithm(op, resolvent)))
        setup = time.perf_counter() - t0
        out = run(alg, bk, state, d, opts)
        s = out.state
        x = bk.to_numpy(s.z)
        res, evals = float(s.res), float(s.evals)
        info = {"evals": int(evals), "epochs": evals / n, "residual_evals": int(s.res_evals),
                "eta": float(eta), "batch_size": b if variant == "page" else 1,
                "inner_step": float(gamma) if variant == "forb" else None,
                "inner_factor": float(inner_factor) if variant == "forb" else None,
                "restarts": int(s.restarts), "variant": variant}
    return finish(_final(x, res, tol, out.status, info), method="vr_halpern", backend=bk.name,
                  run=out, setup_time=setup)
