r"""Block coordinate descent with greedy block selection and proximal block updates.

Nutini, Laradji & Schmidt, "Let's make block coordinate descent converge faster: faster greedy
rules, message-passing, active-set complexity, and superlinear convergence", JMLR 23 (2022);
the proximal Gauss-Southwell rules of Nutini, Schmidt, Laradji, Friedlander & Koepke (ICML 2015).

Problem (blocks $b = 1..B$ of size $s$, $A_b \in \mathbb{R}^{n\times s}$):

$$
\min_x\ \tfrac12\Big\lVert \sum_b A_b x_b - y\Big\rVert_2^2 + \lambda\sum_b h(x_b),\qquad
h = \lVert\cdot\rVert_2\ \text{(group lasso)}\ \text{or}\ \lVert\cdot\rVert_1\ \text{(lasso)}.
$$

One step of the driver is a *sweep* of $B$ block updates. The residual $r = Ax - y$ is kept up to
date ($O(ns)$ per update); block $b$'s gradient is $g_b = A_b^\top r$, its Lipschitz constant
$L_b = \lambda_{\max}(A_b^\top A_b)$.

**Selection rules** (``rule``): ``"cyclic"``; ``"random"`` (uniform, with replacement);
``"gs"`` (proximal Gauss-Southwell, GS-r: the block with the largest step
$\lVert x_b - \operatorname{prox}_{\lambda h/L}(x_b - g_b/L)\rVert$ for $L = \max_b L_b$);
``"gsl"`` (Gauss-Southwell-Lipschitz, GS-q with $L_b$: the block whose proximal model
$g_b^\top d + \tfrac{L_b}2\lVert d\rVert^2 + \lambda(h(x_b + d) - h(x_b))$ decreases most; for
$\lambda = 0$ it is $\lVert g_b\rVert^2/L_b$). The greedy rules keep the full gradient up to date
through the Gram matrix $A^\top A$ (precomputed, $O(np^2)$ time, $p^2$ memory; $O(ps)$ per update).

**Block updates** (``update``): ``"prox_gradient"`` (Nutini's "Lb":
$x_b \leftarrow \operatorname{prox}_{\lambda h/L_b}(x_b - g_b/L_b)$) or ``"exact"`` (the matrix /
Newton update "Hb": the block minimized exactly; for the group lasso
$u = (Q_b + \mu I)^{-1}c$ with $\mu\lVert u\rVert = \lambda$, $Q_b = A_b^\top A_b$,
$c = Q_bx_b - g_b$, solved by safeguarded Newton on $1/\lVert u(\mu)\rVert - \mu/\lambda$ in
$Q_b$'s eigenbasis; for the lasso with $s = 1$ the soft-threshold).

**Stopping rule.** The proximal-gradient mapping
$G_b = L_b(x_b - \operatorname{prox}_{\lambda h/L_b}(x_b - g_b/L_b))$ (zero exactly at a
minimizer): stop when $\max_b\lVert G_b\rVert_\infty \le \text{tol}\cdot\lVert A^\top y\rVert_\infty$.
For ``cyclic`` it is taken for each block when the sweep visits it (as coordinate descent codes
do); for the other rules it is the full mapping at the end of the sweep. A run that stops
``optimal`` is confirmed in float64 on the user's data: the full mapping at the returned $x$
must be within ``CONFIRM_SLACK`` (3) times the tolerance (the per-visit test of ``cyclic`` lets
it exceed tol by up to ~1.5x), else the status is ``optimal_inaccurate`` (what a float32 run
that met its test only in float32 rounding gets).

**Anderson acceleration** (``accelerate``; Bertrand & Massias, "Anderson acceleration of
coordinate descent", AISTATS 2021). With the cyclic rule a sweep is a fixed map $T$. The last $K$
sweeps $z_j \mapsto T(z_j)$ are kept (``anderson_memory``). After a sweep, with
$F = [T(z_j) - z_j]_j$ ($p\times K$), solve $(F^\top F/\operatorname{tr}(F^\top F) + 10^{-10}I)u
= \mathbf 1$, set $c = u/\mathbf 1^\top u$ and $x_e = \sum_j c_jT(z_j)$ (the later iterates
of each pair, as in Anderson mixing; the authors' ``andersoncd`` code combines the earlier ones
$z_j$, which took 1.8x more sweeps here). Its residual is $\sum_j c_j\,r(T(z_j))$, exact because
$r$ is affine in $x$ and $\sum_j c_j = 1$, so the extrapolation costs $O(K^2p + Kn)$ and no product
with $A$. $x_e$ replaces the sweep's result only if its objective is lower, so the objective never
increases. The paper extrapolates every $K$ sweeps from the $K$ sweeps since the last
extrapolation (``anderson_every = anderson_memory``). The default extrapolates after every sweep
from the sliding window (``anderson_every=1``, classical Anderson mixing: Walker & Ni, SIAM J.
Numer. Anal. 49, 2011), which took 2.8x fewer sweeps on the gated ReLU program (1000, 20, 50) of
``benchmarks/convex_relu.py``. No extrapolation is tried after a sweep that meets the stopping
test, so the solver only stops on the measure of a point that a sweep produced. Every
`REFRESH` sweeps the residual is recomputed, and the window's residuals get the same
correction, against rounding drift. The rules ``random``, ``gs`` and ``gsl`` change the block
order from sweep to sweep (no fixed map) and are not accelerated.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Any, NamedTuple

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, finish, run
from cvxkit.solvers.result import Result, Status

RULES = ("cyclic", "random", "gs", "gsl")
UPDATES = ("prox_gradient", "exact")
ACCELERATIONS = ("auto", "anderson", None)
#: ridge (relative to trace(F^T F)) of the Anderson linear system
ANDERSON_RIDGE = 1e-10
#: sweeps between exact recomputations of the residual (accelerated runs)
REFRESH = 50
PENALTIES = ("group", "l1")
#: Newton steps of the exact group-lasso block update
NEWTON_STEPS = 16
#: an ``optimal`` run is confirmed when the float64 mapping at x is within this many tol
CONFIRM_SLACK = 3.0
#: largest Gram matrix (entries) the greedy rules may build
GRAM_MAX = 6e7


class Data(NamedTuple):
    A: Any  # (B, n, s)
    y: Any  # (n,)
    L: Any  # (B,)
    lam: Any
    scale: Any  # ||A^T y||_inf
    q: Any  # (B, s) eigenvalues of Q_b (exact) or None
    V: Any  # (B, s, s) eigenvectors
    Gram: Any  # (B, B, s, s): Gram[b] = A^T A_b in blocks (greedy rules) or None
    tol: Any


class State(NamedTuple):
    x: Any  # (B, s)
    r: Any  # (n,) = A x - y
    g: Any  # (B, s) full gradient (greedy rules) or zeros
    key: Any
    k: Any  # sweeps done
    measure: Any
    objective: Any
    window: Any  # Window of the last K sweeps (Anderson) or None
    accepted: Any  # extrapolations accepted


class Window(NamedTuple):
    """Ring buffer of the last K sweeps $z_j \\mapsto T(z_j)$ (slot ``k mod K`` for sweep ``k``)."""

    z: Any  # (K, B, s) points a sweep started from
    t: Any  # (K, B, s) the sweep's results T(z)
    r: Any  # (K, n) residuals A T(z) - y


def _prox(xp, penalty, v, t):
    if penalty == "l1":
        return xp.sign(v) * xp.maximum(xp.abs(v) - t, 0.0)
    nrm = xp.sqrt(xp.sum(v * v, axis=-1, keepdims=True))
    keep = nrm > t  # (no division by a floor: t / tiny overflows)
    return v * xp.where(keep, 1.0 - t / xp.where(keep, nrm, 1.0), 0.0)


def _h(xp, penalty, v):
    """h per block (last axis)."""
    if penalty == "l1":
        return xp.sum(xp.abs(v), axis=-1)
    return xp.sqrt(xp.sum(v * v, axis=-1))


def _mapping(xp, penalty, x, g, L, lam):
    """Proximal-gradient steps d (with L per block) for x, g of shape (..., s)."""
    return _prox(xp, penalty, x - g / L[..., None], lam / L[..., None]) - x


def _exact_group(xp, qb, Vb, c, lam):
    """argmin_u 1/2 u^T Q u - c^T u + lam ||u|| with Q = V diag(q) V^T."""
    tiny = xp.finfo(c.dtype).tiny  # the floors below: 1e-300 is 0 in float32
    lam = xp.maximum(lam, tiny)  # lam = 0: the least-squares block solve
    ct = Vb.T @ c
    nc = xp.sqrt(ct @ ct)
    qmax = xp.max(qb)
    ct = xp.where(qb > 1e-13 * qmax, ct, 0.0)  # c lies in range(Q_b): drop rounding noise
    # (nc <= lam: u = 0 below; the floor keeps hi finite, <= qmax / eps)
    hi = lam * qmax / xp.maximum(nc - lam, xp.finfo(c.dtype).eps * lam) * (1.0 + 1e-12) + tiny
    lo = 0.0 * hi
    mu = hi

    def phi(mu):
        qm = xp.maximum(qb + mu, tiny)  # (no 0/0 at mu = 0 on a singular Q_b)
        w = ct / qm
        s2 = xp.maximum(w @ w, xp.sqrt(tiny))  # (s2 ** -1.5 stays finite)
        return 1.0 / xp.sqrt(s2) - mu / lam, s2 ** -1.5 * xp.sum(w * w / qm) - 1.0 / lam

    for _ in range(NEWTON_STEPS):
        f, fp = phi(mu)
        lo = xp.where(f > 0, mu, lo)
        hi = xp.where(f > 0, hi, mu)
        nxt = mu - f / fp
        mu = xp.where((nxt >= lo) & (nxt <= hi), nxt, 0.5 * (lo + hi))
    u = Vb @ xp.where(qb + mu > 0, ct / xp.maximum(qb + mu, tiny), 0.0)
    return xp.where(nc > lam, u, 0.0 * u)


def _set(bk, a, i, v):
    if bk.name == "jax":
        return a.at[i].set(v)
    a[i] = v
    return a


def _update_block(bk, rule, penalty, update, d: Data, s: State, b):
    xp = bk.xp
    Ab, xb, Lb = d.A[b], s.x[b], d.L[b]
    gb = s.r @ Ab  # (JAX on CPU: much faster than Ab.T @ r)
    step = _prox(xp, penalty, xb - gb / Lb, d.lam / Lb) - xb
    meas = Lb * xp.max(xp.abs(step))
    if update == "prox_gradient" or penalty == "l1":  # l1 exact (s = 1): the same soft-threshold
        new, delta = xb + step, step
    else:
        qb, Vb = d.q[b], d.V[b]
        c = Vb @ (qb * (Vb.T @ xb)) - gb
        new = _exact_group(xp, qb, Vb, c, d.lam)
        delta = new - xb
    r = s.r + Ab @ delta
    g = s.g + d.Gram[b] @ delta if rule in ("gs", "gsl") else s.g
    return s._replace(x=_set(bk, s.x, b, new), r=r, g=g,
                      measure=xp.maximum(s.measure, meas))


def _greedy_select(xp, rule, penalty, d: Data, s: State):
    if rule == "gs":
        Lm = xp.max(d.L) + 0.0 * d.L
        step = _mapping(xp, penalty, s.x, s.g, Lm, d.lam)
        return xp.argmax(xp.max(xp.abs(step), axis=-1))
    step = _mapping(xp, penalty, s.x, s.g, d.L, d.lam)
    model = xp.sum(s.g * step, axis=-1) + 0.5 * d.L * xp.sum(step * step, axis=-1) + d.lam * (
        _h(xp, penalty, s.x + step) - _h(xp, penalty, s.x))
    return xp.argmin(model)


def _sweep(bk: Backend, rule, penalty, update, d: Data, s: State) -> State:
    xp = bk.xp
    B = d.A.shape[0]
    if rule == "random":
        if bk.name == "jax":
            key, sub = bk._jax.random.split(s.key)
            order = bk._jax.random.randint(sub, (B,), 0, B)
        else:
            key, order = s.key, s.key.integers(0, B, B)
        s = s._replace(key=key)
    s = s._replace(measure=0.0 * s.measure)

    def body(i, s):
        if rule == "cyclic":
            b = i
        elif rule == "random":
            b = order[i]
        else:
            b = _greedy_select(xp, rule, penalty, d, s)
        return _update_block(bk, rule, penalty, update, d, s, b)

    if bk.name == "jax":
        s = bk._jax.lax.fori_loop(0, B, body, s)
    else:
        for i in range(B):
            s = body(i, s)
    if rule != "cyclic":  # the full mapping at the end of the sweep
        g = s.g if rule in ("gs", "gsl") else _ATr(xp, d.A, s.r)
        s = s._replace(measure=_full_measure(xp, penalty, d, s.x, g))
    obj = _objective(xp, penalty, d.lam, s.r, s.x)
    return s._replace(k=s.k + 1, objective=obj)


def _ATr(xp, A, r):
    r"""(B, s) blocks of $A^\top r$ (batched matrix products)."""
    return xp.matmul(r, A)


def _Ax(xp, A, x):
    r"""$Ax = \sum_b A_b x_b$ (n,)."""
    return xp.sum(xp.matmul(A, x[:, :, None])[:, :, 0], axis=0)


def _objective(xp, penalty, lam, r, x):
    return 0.5 * r @ r + lam * xp.sum(_h(xp, penalty, x))


def _full_measure(xp, penalty, d: Data, x, g):
    r"""$\max_b\lVert G_b\rVert_\infty$ of the proximal-gradient mapping at ``x``."""
    return xp.max(d.L[:, None] * xp.abs(_mapping(xp, penalty, x, g, d.L, d.lam)))


def _anderson(bk: Backend, penalty, K, every, d: Data, s: State, z, slot) -> State:
    """Record the sweep ``z -> s.x`` in the window; every ``every`` sweeps extrapolate (module
    docstring). Skipped when the sweep already meets the stopping test, so the solver only stops
    on the measure of a point the sweep produced."""
    xp = bk.xp
    w = Window(_set(bk, s.window.z, slot, z), _set(bk, s.window.t, slot, s.x),
               _set(bk, s.window.r, slot, s.r))
    s = s._replace(window=w)

    def extrapolate(s):
        valid = xp.arange(K) < s.k  # slots filled so far
        F = (w.t - w.z).reshape(K, -1)
        C = F @ F.T
        # the ridge at least 100 eps of the dtype (1e-10 is lost in float32: C singular)
        ridge = max(ANDERSON_RIDGE, 100 * float(np.finfo(C.dtype).eps))
        C = C / xp.maximum(xp.trace(C), xp.finfo(C.dtype).tiny) + ridge * xp.eye(K, dtype=C.dtype)
        both = valid[:, None] & valid[None, :]
        C = xp.where(both, C, xp.eye(K, dtype=C.dtype))  # empty slots: c_i = 0
        u = xp.linalg.solve(C, xp.where(valid, 1.0, 0.0))
        c = u / xp.sum(u)
        xe = xp.tensordot(c, w.t, axes=1)
        re = xp.tensordot(c, w.r, axes=1)  # r is affine in x and sum(c) = 1
        fe = _objective(xp, penalty, d.lam, re, xe)
        ok = xp.isfinite(fe) & (fe < s.objective)
        return bk.cond(ok, lambda s: s._replace(x=xe, r=re, objective=fe,
                                                accepted=s.accepted + 1), lambda s: s, s)

    go = (s.k % every == 0) & (s.measure > d.tol * d.scale)
    return bk.cond(go, extrapolate, lambda s: s, s)


def _refresh(bk, penalty, d: Data, s: State) -> State:
    """Every `REFRESH` sweeps, the residual and objective afresh (one product with $A$): the
    updated and combined residuals drift by rounding (about 1e-9 relative in 3000 sweeps).

    The window's residuals get the same correction: their rounding errors are nearly equal, and
    the extrapolation (coefficients summing to 1, possibly large) cancels only a common error."""
    def fresh(s):
        r = _Ax(bk.xp, d.A, s.x) - d.y
        w = s.window._replace(r=s.window.r + (r - s.r))
        return s._replace(r=r, objective=_objective(bk.xp, penalty, d.lam, r, s.x), window=w)

    return bk.cond(s.k % REFRESH == 0, fresh, lambda s: s, s)


def _step(bk, rule, penalty, update, K, every, d, s):
    if not K:
        return _sweep(bk, rule, penalty, update, d, s)
    slot = s.k % K
    z = s.x + 0.0  # a copy: the numpy sweep updates x in place
    s = _anderson(bk, penalty, K, every, d, _sweep(bk, rule, penalty, update, d, s), z, slot)
    return _refresh(bk, penalty, d, s)


@functools.lru_cache(maxsize=32)
def _algorithm(rule, penalty, update, K, every) -> Algorithm:
    """One Algorithm per static configuration (a bounded cache: the driver's compiled loop is
    reused across solves)."""
    return Algorithm(
        "bcd", lambda bk, s, d: _step(bk, rule, penalty, update, K, every, d, s),
        lambda bk, s, d: {"objective": s.objective, "measure": s.measure / d.scale},
        lambda bk, s, d: (s.k > 0) & (s.measure <= d.tol * d.scale))


def _warm_start(ws, shape) -> np.ndarray:
    """The start point of ``warm_start``: a `Result` (its ``x``) or an array, of shape ``shape``
    (that of ``Result.x``) and finite; ``ValueError`` saying what is expected otherwise."""
    expected = (f"warm_start must be a Result of this problem or an array of shape {shape} "
                f"(the shape of Result.x)")
    return validate.warm_array(expected, "warm_start", ws.x if isinstance(ws, Result) else ws,
                               shape)


def as_blocks(A, block_size: int) -> np.ndarray:
    """(n, p) -> (B, n, s) with ``p`` padded by zero columns to a multiple of ``block_size``."""
    A = np.asarray(A, dtype=np.float64)
    n, p = A.shape
    B = -(-p // block_size)
    Ap = np.zeros((n, B * block_size))
    Ap[:, :p] = A
    return np.ascontiguousarray(Ap.reshape(n, B, block_size).transpose(1, 0, 2))


def bcd(A, y, *, lam: float, block_size: int | None = None, penalty: str = "group",
        rule: str = "cyclic", update: str = "exact", backend="numpy", tol: float = 1e-6,
        max_iter: int = 10_000, time_limit=math.inf, verbose=False, progress=None, callback=None,
        check_every: int = 1, seed: int = 0, dtype="float64", warm_start=None,
        accelerate: str | None = "auto", anderson_memory: int = 10,
        anderson_every: int = 1) -> Result:
    r"""Minimize $\tfrac12\lVert Ax - y\rVert^2 + \lambda\sum_b h(x_b)$ by block coordinate descent.

    Args:
        A: (n, p) matrix with ``block_size`` (the last block padded with zero columns), or
            (B, n, s) blocks ``A[b]``.
        y: (n,) targets.
        lam: penalty weight $\lambda \ge 0$.
        penalty: ``"group"`` ($h = \lVert\cdot\rVert_2$ per block) or ``"l1"``.
        rule: ``"cyclic"``, ``"random"``, ``"gs"`` or ``"gsl"`` (module docstring).
        update: ``"exact"`` (group lasso, or lasso with ``block_size=1``) or ``"prox_gradient"``.
        tol: stopping tolerance on the proximal-gradient mapping (module docstring).
        max_iter: sweeps (``B`` block updates each).
        warm_start: a previous `Result` (its ``x``) or an array, of the shape of ``Result.x``
            ((p,) for a 2-D ``A``, (B, s) for blocks) and finite; else ``ValueError``.
        accelerate: ``"anderson"`` (Anderson extrapolation of the sweeps, module docstring;
            the cyclic rule only, as it needs a fixed sweep map: with ``random``, ``gs`` or
            ``gsl`` it raises ``ValueError``), ``None`` (off) or ``"auto"`` (the default:
            ``"anderson"`` for ``cyclic``, off for the other rules).
        anderson_memory: $K \ge 1$, the last $K$ sweeps the extrapolation combines (integer).
        anderson_every: extrapolate after every ``anderson_every``-th sweep (integer >= 1;
            ``anderson_every = anderson_memory`` is Bertrand & Massias's scheme).
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        backend, time_limit, verbose, callback, check_every, seed, dtype: see
            `cvxkit.solvers.driver`.

    Every option is type-checked (``TypeError`` for a wrong type, ``ValueError`` out of range,
    naming it); ``A`` and ``y`` must be real, finite and of matching shapes (``ValueError``
    naming them; a scipy.sparse ``A`` is densified). The stopping test is relative to
    $\lVert A^\top y\rVert_\infty$, so scaling ``y`` and ``lam`` by ``s`` scales ``x`` by ``s``
    with the same sweeps and status.

    Returns:
        `Result` with ``x`` (B, s) (2-D input: the (p,) vector), ``objective``, ``dual_residual``
        the final mapping measure relative to $\lVert A^\top y\rVert_\infty$, ``iterations`` sweeps;
        ``info["extrapolations"]`` the accepted Anderson extrapolations.
    """
    t0 = time.perf_counter()
    # every option first (`cvxkit.solvers.validate`): TypeError for a wrong type, ValueError
    # out of range, naming the option
    validate.choice("rule", rule, RULES)
    validate.choice("update", update, UPDATES)
    validate.choice("penalty", penalty, PENALTIES)
    if accelerate is not None:
        validate.choice("accelerate", accelerate, [a for a in ACCELERATIONS if a is not None])
    if accelerate == "anderson" and rule != "cyclic":
        raise ValueError(f"accelerate='anderson' needs rule='cyclic' (a fixed sweep map); rule "
                         f"{rule!r} changes the block order between sweeps: use accelerate=None")
    validate.integer("anderson_memory", anderson_memory)
    validate.integer("anderson_every", anderson_every)
    validate.integer("block_size", block_size, allow_none=True)
    lam = validate.nonnegative("lam", lam)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                   progress=progress)
    K = int(anderson_memory) if rule == "cyclic" and accelerate in ("auto", "anderson") else 0
    A_in = validate.matrix("A", A, nonempty=True, sparse=False)  # every sparse format: densified
    flat = A_in.ndim == 2
    if flat:
        if block_size is None:
            raise ValueError("block_size (a positive integer) is required for a 2-D A")
        p = A_in.shape[1]
        Ab = as_blocks(A_in, block_size)
    elif A_in.ndim == 3:
        Ab = np.ascontiguousarray(A_in)
        if block_size is not None and block_size != Ab.shape[2]:
            raise ValueError(f"block_size {block_size} contradicts the blocks of A, of shape "
                             f"{A_in.shape} (B, n, s): leave it out")
    else:
        raise ValueError(f"A must be (n, p) or (B, n, s), got shape {A_in.shape}")
    B, n, s_ = Ab.shape
    y = validate.float_array("y", y, finite=True)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match A {A_in.shape}, got {y.shape}")
    if update == "exact" and penalty == "l1" and s_ != 1:
        raise ValueError("update='exact' for the l1 penalty needs block_size=1 "
                         "(use update='prox_gradient' for larger blocks)")
    if rule in ("gs", "gsl") and (B * s_) ** 2 > GRAM_MAX:
        raise ValueError(f"the greedy rules keep the gradient through the Gram matrix; p = {B * s_}"
                         f" is too large (p^2 > {GRAM_MAX:.0e}): use rule='cyclic' or 'random'")
    x_shape = (p,) if flat else (B, s_)
    x0 = np.zeros((B, s_))
    if warm_start is not None:
        w = _warm_start(warm_start, x_shape)
        x0 = np.concatenate([w, np.zeros(B * s_ - p)]).reshape(B, s_) if flat else w.copy()
    Q = np.matmul(Ab.transpose(0, 2, 1), Ab)
    qv, V = np.linalg.eigh(Q)
    qv = np.maximum(qv, 0.0)
    L = np.maximum(qv[:, -1], 1e-12)
    scale = max(float(np.abs(_ATr(np, Ab, y)).max()), 1e-300)
    Gram = (np.einsum("ans,bnt->bast", Ab, Ab) if rule in ("gs", "gsl") else None)
    bk = get_backend(backend, dtype)
    with bk.precision():
        f = bk.asarray
        d = Data(f(Ab), f(y), f(L), f(lam), f(scale), f(qv), f(V),
                 f(Gram) if Gram is not None else None, f(tol))
        x = f(x0)
        r0 = _Ax(np, Ab, x0) - y
        g0 = _ATr(np, Ab, r0)
        r = f(r0)
        g = f(g0) if Gram is not None else bk.xp.zeros_like(x)
        key = bk._jax.random.PRNGKey(seed) if bk.name == "jax" else np.random.default_rng(seed)
        i32 = (lambda v: bk.xp.asarray(v, dtype=bk.xp.int32)) if bk.name == "jax" else int
        obj = float(_objective(np, penalty, lam, r0, x0))
        m0 = float(np.max(L[:, None] * np.abs(_mapping(np, penalty, x0, g0, L, lam))))
        window = Window(f(np.zeros((K, B, s_))), f(np.zeros((K, B, s_))),
                        f(np.zeros((K, n)))) if K else None
        s = State(x, r, g, key, i32(0), f(m0), f(obj), window, i32(0))
        setup = time.perf_counter() - t0
        out = run(_algorithm(rule, penalty, update, K, anderson_every), bk, s, d, opts)
    st = out.state
    xs = np.asarray(st.x, dtype=np.float64)
    rf = _Ax(np, Ab, xs) - y  # the objective afresh: no drift of the updated residual
    fx = float(_objective(np, penalty, lam, rf, xs))
    # the status confirmed in float64 on the user's data: the full mapping at x (module
    # docstring; the cyclic per-visit test lets it exceed tol by up to ~1.5x)
    final = float(np.max(L[:, None] * np.abs(_mapping(np, penalty, xs, _ATr(np, Ab, rf), L,
                                                       lam)))) / scale
    status, message = None, ""
    if out.status is Status.OPTIMAL and not final <= CONFIRM_SLACK * tol:
        status = Status.OPTIMAL_INACCURATE
        message = (f"the sweeps met the tolerance, but the proximal-gradient mapping at the "
                   f"returned x, recomputed in float64 on the user's data, is {final:.2e} "
                   f"(relative to ||A^T y||), above {CONFIRM_SLACK} tol")
    xr = xs.ravel()[:p] if flat else xs
    return finish(Final(
        x=xr, objective=fx, dual_residual=float(st.measure) / scale, status=status,
        message=message, iterations=int(st.k),
        info={"rule": rule, "update": update, "penalty": penalty, "blocks": B, "block_size": s_,
              "accelerate": "anderson" if K else None, "anderson_memory": K or None,
              "anderson_every": anderson_every if K else None,
              "extrapolations": int(st.accepted), "final_measure": final}),
        method="bcd", backend=bk.name, run=out, setup_time=setup)
