r"""Entropic optimal transport at small regularization: Sinkhorn-Newton-Sparse (SNS).

Tang, Shavlovsky, Rahmanian, Tardini, Thekumparampil, Xiao & Ying, "Accelerating Sinkhorn
algorithm with sparse Newton iterations", ICLR 2024 (arXiv 2401.12253).

Problem: the entropic OT of `cvxkit.solvers.sinkhorn` (POT's entropy convention),
$\min_{P 1 = a,\ P^\top 1 = b} \langle C, P\rangle + \varepsilon \sum_{ij} P_{ij}\log P_{ij}$,
through its concave dual in the potentials $z = (f, g)$,

$$
D(f, g) = \langle f, a\rangle + \langle g, b\rangle - \varepsilon \sum_{ij} P_{ij},\qquad
P_{ij} = e^{(f_i + g_j - C_{ij})/\varepsilon},
$$

with $\nabla_f D = a - P1$, $\nabla_g D = b - P^\top 1$ and
$-\nabla^2 D = \frac1\varepsilon\begin{pmatrix}\mathrm{diag}(P1) & P\\ P^\top &
\mathrm{diag}(P^\top 1)\end{pmatrix}$. Sinkhorn is exact block ascent on $D$; at small
$\varepsilon$ it converges slowly, while $P$ becomes approximately sparse.

The algorithm, on the stabilized loop of `cvxkit.solvers.sinkhorn` (same state: absorbed
potentials, kernel $K$, scalings $u$, $v$ with $P = \mathrm{diag}(u) K \mathrm{diag}(v)$):

1. **Sinkhorn warm-up** (the sinkhorn step itself, with its epsilon scaling): each epsilon
   stage starts with stabilized Sinkhorn iterations, and switches to Newton steps after
   ``warmup_iter`` of them (the paper's rule: $N_1$ Sinkhorn iterations, then Newton) or, at
   the target $\varepsilon$ = ``reg``, as soon as the relative marginal error is at most
   ``switch_tol``. A stage ends, as in Sinkhorn, when its error is below ``stage_tol``; Newton
   steps finish the slow tail of the intermediate stages too (epsilon scaling where it helps).
2. **Sparse Newton steps**: the Hessian with $P$ replaced by $P_s$, its ``k`` largest entries
   per row (the diagonal blocks keep the exact row and column sums $r = P1$, $c = P^\top 1$):
   solve $\begin{pmatrix}\mathrm{diag}(r) & P_s\\ P_s^\top & \mathrm{diag}(c)\end{pmatrix}
   \Delta z = \varepsilon\nabla D$ by eliminating $\Delta f$ and running Jacobi-preconditioned
   conjugate gradients on the Schur complement $S = \mathrm{diag}(c) - P_s^\top
   \mathrm{diag}(1/r) P_s$ in $\Delta g$. $S$ is singular along $\mathbf 1$ for the exact
   Hessian (the shift $(f + t, g - t)$ leaves $P$ unchanged) and along the indicator of each
   connected component of the kept entries: a ridge ``ridge * diag(c)`` makes it definite,
   and the step's component along $(\mathbf 1, -\mathbf 1)$, which does not change $P$, is
   removed. CG stops at a relative residual ``cg_tol`` (or ``cg_max_iter`` iterations).
3. **Line search** (the paper's Armijo backtracking on $D$): $\alpha = 1, 1/2, \dots$ until
   $D(z + \alpha\Delta z) \ge D(z) + 10^{-4}\alpha\,\nabla D\cdot\Delta z$. The difference is
   computed directly (no cancellation of $\langle f, a\rangle$), and when it is within
   round-off of 0 the step is accepted only if the marginal error decreases. A trial costs
   two matrix-vector products with $K$ (no exponentials): $u \leftarrow u e^{\alpha\Delta
   f/\varepsilon}$, $v \leftarrow v e^{\alpha\Delta g/\varepsilon}$, absorbed into the
   potentials as in Sinkhorn when they leave their safe range. If no step length is accepted,
   a Sinkhorn iteration is taken instead.
4. **Adaptive density** (ours; the paper fixes a density): ``k`` starts at ``k`` in each
   stage and doubles, up to ``k_max``, after a full Newton step (``alpha = 1``) that reduced
   the marginal error by less than half, and after a failed line search.

Cost of a Newton step: two matrix-vector products with $K$, the sparse CG, cheap line-search
trials, and a selection of the entries (one pass over $K$: ``argpartition`` / ``lax.top_k``)
only when the plan has moved (some $|\Delta\log P_{ij}| > 1$ since the last selection, or a
new stage): the ``k_max`` largest entries of each row are kept in decreasing order, so that a
larger ``k`` needs no new selection. A Newton step costs a few Sinkhorn iterations and
replaces hundreds to thousands of them at small $\varepsilon$.

Sparse format: arrays ``idx`` (n, k) of column indices and ``vals`` (n, k) of entries (a
fixed number per row): products with $P_s$ are gathers, with $P_s^\top$ a segment sum, so
the JAX step jits (``lax.top_k`` with the static ``k_max``, entries past the current ``k``
masked). numpy builds a CSR matrix from the same arrays.

Stopping rule, normalization, warm starts and the `Result` are those of
`cvxkit.solvers.sinkhorn`: relative L1 marginal error ``<= tol`` at the target
$\varepsilon$, confirmed in float64 on the user's data.
"""
from __future__ import annotations

import importlib
import math
import time
from typing import NamedTuple

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Options, finish, run
from cvxkit.solvers.implicit import is_traced
from cvxkit.solvers.result import Result

# the module (the package attribute cvxkit.solvers.sinkhorn is the solver function)
sk = importlib.import_module("cvxkit.solvers.sinkhorn")

METHOD = "sinkhorn_newton_sparse"
ARMIJO = 1e-4  # sufficient-increase constant of the line search
LS_MAX = 30  # step halvings before a Sinkhorn iteration is taken instead
SLOW = 0.5  # a Newton step reducing the error by less than this doubles k
REPATTERN = 1.0  # the kept entries are selected again once log P moved by more than this
EPS_INIT = 1e-4  # first eps of the default schedule, relative to the cost spread


class Data(NamedTuple):
    d: sk.Data  # the Sinkhorn loop's data (normalized instance)
    ranks: object  # arange(k_max): its static length is k_max on JAX
    k0: object  # k at the start of each epsilon stage
    switch_tol: object
    warmup_iter: object
    cg_tol: object
    cg_max_iter: object
    ridge: object


class State(NamedTuple):
    s: sk.State  # the stabilized Sinkhorn state
    newton: object  # bool: the Newton stage has started
    k: object  # entries kept per row
    warm: object  # Sinkhorn iterations at the current eps (the switching rule)
    newton_steps: object
    cg_iterations: object
    fallbacks: object  # Newton steps whose line search failed (a Sinkhorn step instead)
    pattern: object  # idx (n, k_max): the selected entries of each row (`_select`)
    moved: object  # largest change of log P_ij since the selection (units of 1)


def _while(bk: Backend, cond, body, carry):
    """``while cond(carry): carry = body(carry)`` (``lax.while_loop`` on JAX)."""
    if bk.name == "jax":
        return bk._jax.lax.while_loop(cond, body, carry)
    while cond(carry):
        carry = body(carry)
    return carry


def _select(bk: Backend, K, v, k_max: int):
    """Indices ``idx`` (n, k_max) of the ``k_max`` largest entries of each row of the plan
    ``diag(u) K diag(v)`` (the order within a row does not depend on ``u``), in decreasing
    order, so that ``idx[:, :k]`` are the top ``k`` for every ``k <= k_max``: ``lax.top_k``
    on JAX; on numpy ``argpartition`` and a sort of the (rows, k_max) block, by blocks of rows
    of about 2^20 entries (no n x m temporary)."""
    if bk.name == "jax":
        return bk._jax.lax.top_k(K * v[None, :], k_max)[1]
    n, m = K.shape
    if k_max >= m:
        return np.argsort(-(K * v[None, :]), axis=1)
    idx = np.empty((n, k_max), dtype=np.intp)
    rows = max(1, (1 << 20) // m)
    for lo in range(0, n, rows):
        Q = K[lo:lo + rows] * v[None, :]
        top = np.argpartition(Q, m - k_max, axis=1)[:, m - k_max:]
        order = np.argsort(-np.take_along_axis(Q, top, axis=1), axis=1)
        idx[lo:lo + rows] = np.take_along_axis(top, order, axis=1)
    return idx


def _sparse_plan(bk: Backend, idx, s: sk.State, k, d: Data):
    """``(mv, rmv, mv_sq)``: the products ``x -> P_s x`` and ``y -> P_s^T y`` with the plan's
    entries at ``idx[:, :k]`` (``P_s``), and ``w -> (P_s o P_s)^T w``. JAX: all ``k_max``
    columns with the ones past ``k`` zeroed (static shapes); numpy: a CSR matrix."""
    xp = bk.xp
    n, m = s.u.shape[0], s.v.shape[0]
    if bk.name == "jax":
        seg = bk._jax.ops.segment_sum
        vals = xp.take_along_axis(s.K, idx, axis=1) * s.v[idx] * s.u[:, None]
        vals = xp.where(d.ranks[None, :] < k, vals, 0.0)
        flat = idx.reshape(-1)
        return (lambda x: xp.sum(vals * x[idx], axis=1),
                lambda y: seg((vals * y[:, None]).reshape(-1), flat, num_segments=m),
                lambda w: seg((vals * vals * w[:, None]).reshape(-1), flat, num_segments=m))
    import scipy.sparse as sp

    k = int(k)
    idx = idx[:, :k]
    vals = (np.take_along_axis(s.K, idx, axis=1) * s.v[idx] * s.u[:, None]).ravel()
    cols, indptr = idx.ravel(), np.arange(0, n * k + 1, k)
    A = sp.csr_matrix((vals, cols, indptr), shape=(n, m))
    A2 = sp.csr_matrix((vals * vals, cols, indptr), shape=(n, m))
    return A.dot, A.T.dot, A2.T.dot


def _pcg(bk: Backend, A, rhs, precond, rtol, max_iter):
    """Preconditioned conjugate gradients for ``A x = rhs`` (A symmetric positive definite)
    from ``x = 0``: ``(x, iterations)``, stopping at ``||A x - rhs|| <= rtol ||rhs||``."""
    xp = bk.xp
    stop = (rtol * xp.linalg.norm(rhs)) ** 2
    z = precond * rhs
    rz = xp.dot(rhs, z)
    zero = xp.asarray(0)

    def cond(c):
        i, x, r, p, rz, ok = c
        return (i < max_iter) & (xp.dot(r, r) > stop) & ok

    def body(c):
        i, x, r, p, rz, ok = c
        Ap = A(p)
        pAp = xp.dot(p, Ap)
        ok = pAp > 0
        alpha = xp.where(ok, rz / xp.where(ok, pAp, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * Ap
        z = precond * r
        rz_new = xp.dot(r, z)
        p = z + (rz_new / xp.where(rz > 0, rz, 1.0)) * p
        return i + 1, x, r, p, rz_new, ok

    out = _while(bk, cond, body, (zero, xp.zeros_like(rhs), rhs, z, rz, rz > 0))
    return out[1], out[0]


def _direction(bk: Backend, st: State, d: Data):
    """The sparse Newton direction ``(df, dg)``, the gradient ``(gf, gg)``, the CG iterations
    and the pattern (selected again when ``k`` changed or ``log P`` moved by more than 1)."""
    xp, s, dd = bk.xp, st.s, d.d
    r = s.u * s.Kv
    c = s.v * (s.u @ s.K)
    gf, gg = dd.a - r, dd.b - c
    fresh = st.moved > REPATTERN
    if bk.name == "jax":
        pattern = bk.cond(fresh, lambda p: _select(bk, s.K, s.v, d.ranks.shape[0]),
                          lambda p: p, st.pattern)
    else:
        pattern = _select(bk, s.K, s.v, d.ranks.shape[0]) if fresh else st.pattern
    mv, rmv, mv_sq = _sparse_plan(bk, pattern, s, st.k, d)
    rinv = xp.where(r > 0, 1.0 / xp.where(r > 0, r, 1.0), 0.0)
    shifted = c * (1.0 + d.ridge)
    # Jacobi preconditioner: diag(S)_j = c_j - sum_i P_s[i, j]^2 / r_i
    precond = 1.0 / xp.maximum(shifted - mv_sq(rinv), d.ridge * c + 1e-300)
    w, its = _pcg(bk, lambda x: shifted * x - rmv(rinv * mv(x)), gg - rmv(gf * rinv), precond,
                  d.cg_tol, d.cg_max_iter)
    dg = s.eps * w
    df = s.eps * (gf - mv(w)) * rinv
    t = 0.5 * (xp.mean(dg) - xp.mean(df))  # the (1, -1) component does not change P
    return df + t, dg - t, gf, gg, its, pattern, fresh


def _trial(bk: Backend, s: sk.State, dd: sk.Data, df, dg, alpha):
    """Scalings, ``K v``, marginal error and dual increase at ``z + alpha * (df, dg)``."""
    xp = bk.xp
    u = s.u * xp.exp(alpha * df / s.eps)
    v = s.v * xp.exp(alpha * dg / s.eps)
    Kv = s.K @ v
    r = u * Kv
    c = v * (u @ s.K)
    err = xp.sum(xp.abs(r - dd.a)) + xp.sum(xp.abs(c - dd.b))
    gain = alpha * (xp.dot(dd.a, df) + xp.dot(dd.b, dg)) - s.eps * (xp.sum(r) - xp.sum(s.u * s.Kv))
    noise = 1e-15 * (alpha * (xp.dot(dd.a, xp.abs(df)) + xp.dot(dd.b, xp.abs(dg)))
                     + s.eps * xp.sum(r))
    return u, v, Kv, err, gain, noise


def _newton(bk: Backend, st: State, d: Data):
    """One sparse Newton step with backtracking: the state's Newton fields, the new scalings
    ``(u, v, K v, err)`` for `accept`, whether a step length was accepted and whether it was
    the full step."""
    xp, s, dd = bk.xp, st.s, d.d
    df, dg, gf, gg, its, pattern, fresh = _direction(bk, st, d)
    slope = xp.dot(gf, df) + xp.dot(gg, dg)

    def attempt(i):
        alpha = 0.5 ** i
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing trial is rejected
            u, v, Kv, err, gain, noise = _trial(bk, s, dd, df, dg, alpha)
        ok = (xp.isfinite(err) & xp.isfinite(gain) & (gain >= ARMIJO * alpha * slope - noise)
              & ((alpha * slope > 100 * noise) | (err < s.err)) & (slope > 0))
        return i, ok, (u, v, Kv, err)

    start = (xp.asarray(-1), xp.asarray(False), (s.u, s.v, s.Kv, s.err))
    i, ok, cand = _while(bk, lambda c: ~c[1] & (c[0] < LS_MAX), lambda c: attempt(c[0] + 1),
                         start)
    step = 0.5 ** i * (xp.max(xp.abs(df)) + xp.max(xp.abs(dg))) / s.eps
    st = st._replace(newton_steps=st.newton_steps + 1, cg_iterations=st.cg_iterations + its,
                     fallbacks=st.fallbacks + xp.where(ok, 0, 1), pattern=pattern,
                     moved=xp.where(ok, xp.where(fresh, 0.0, st.moved) + step, xp.inf))
    return st, cand, ok, i == 0


def _step(bk: Backend, st: State, d: Data) -> State:
    """A Sinkhorn iteration, or a Newton step once the current epsilon stage has had
    ``warmup_iter`` Sinkhorn iterations (at the target: or the error is below ``switch_tol``).
    A new stage (epsilon scaling) starts with Sinkhorn iterations again."""
    xp, s, dd = bk.xp, st.s, d.d
    at_target = s.eps <= dd.eps_target
    newton = st.newton | (st.warm >= d.warmup_iter) | (at_target & (s.err <= d.switch_tol))

    def sinkhorn(st):
        return st._replace(warm=st.warm + 1), (s.u, s.v, s.Kv, s.err), xp.asarray(False), \
            xp.asarray(False)

    st, cand, ok, full = bk.cond(newton, lambda st: _newton(bk, st, d), sinkhorn, st)
    # a Sinkhorn iteration: in the warm-up, or when the line search accepted no step
    cand = bk.cond(ok, lambda s: cand, lambda s: sk.scalings(bk, s, dd), s)
    new = sk.accept(bk, s, dd, *cand, sk._rebuild)
    # a poor full Newton step means a poor Hessian (a damped one, that z is still far away)
    slow = newton & (~ok | (full & (new.err > SLOW * s.err)))
    k = xp.where(slow, xp.minimum(2 * st.k, d.ranks.shape[0]), st.k)
    same = new.eps == s.eps
    return st._replace(s=new, newton=newton & same, warm=xp.where(same, st.warm, 0),
                       moved=xp.where(same, st.moved, xp.inf), k=xp.where(same, k, d.k0))


def _monitor(bk, st: State, d: Data):
    return {"marginal_err": st.s.err, "eps": st.s.eps, "k": st.k * st.newton}


def _converged(bk, st: State, d: Data):
    return sk._converged(bk, st.s, d.d)


ALGORITHM = Algorithm(METHOD, _step, _monitor, _converged)


def sinkhorn_newton_sparse(a, b, C, reg, *, backend="numpy", tol=1e-9, max_iter=10_000,
                           time_limit=math.inf, verbose=False, progress=None, callback=None,
                           check_every=None, seed=0, warm_start=None, dtype="float64", k=16,
                           k_max=None, switch_tol=0.05, warmup_iter=10, cg_tol=1e-2,
                           cg_max_iter=500, ridge=1e-10, eps_init=None, eps_decay=0.1,
                           stage_tol=1e-2) -> Result:
    """Solve entropic OT between histograms ``a`` (n,) and ``b`` (m,) with cost ``C`` (n, m)
    by Sinkhorn-Newton-Sparse (see the module docstring).

    Args:
        a: nonnegative weights (n,) (zero entries are allowed).
        b: nonnegative weights (m,) with the same total as ``a``.
        C: cost matrix (n, m), any real values (scipy.sparse is densified), units of ``reg``.
        reg: entropic regularization ``eps > 0`` in units of ``C``.
        backend: ``"numpy"`` (scipy.sparse products) or ``"jax"`` (one jitted step).
        tol: stop when the relative L1 marginal error ``(||P1-a||_1 + ||P^T 1-b||_1) / sum(a)``
            is at most ``tol`` at ``eps = reg``; ``optimal`` is confirmed in float64 on the
            user's data, as in `cvxkit.solvers.sinkhorn.sinkhorn`.
        max_iter: iterations, Sinkhorn and Newton steps together.
        warm_start: a previous `Result` of ``sinkhorn`` or ``sinkhorn_newton_sparse``, or a
            pair of potentials ``(f, g)`` in the user's units (the run starts at ``eps = reg``).
        time_limit, verbose, progress, callback, check_every, seed, dtype: the common
            options (`cvxkit.solvers.driver.Options`; ``seed`` is unused, the method
            is deterministic).
        k: entries of the plan kept per row in the sparsified Hessian at the first Newton step.
        k_max: largest ``k`` of the adaptive rule (default ``min(m, 16 k)``; on JAX the
            selection always takes ``k_max`` entries and masks the ones past ``k``).
        switch_tol: relative marginal error at ``eps = reg`` below which Newton steps start.
        warmup_iter: Sinkhorn iterations in an epsilon stage after which Newton steps start
            (the paper's ``N1``, 20 there; at the target ``eps`` also once the error is below
            ``switch_tol``).
        cg_tol: relative residual at which conjugate gradients stop (inexact Newton).
        cg_max_iter: conjugate-gradient iterations per Newton step.
        ridge: relative ridge of the Schur complement, ``ridge * diag(P^T 1)``.
        eps_init: first ``eps`` of the warm-up's epsilon scaling (units of ``C``; default
            ``1e-4 (max(C) - min(C))``, so no scaling when ``reg`` is larger: a stage costs
            about a whole solve; ``eps_init=reg`` switches scaling off, as in the paper).
        eps_decay: factor in (0, 1) applied to ``eps`` at each warm-up stage.
        stage_tol: relative marginal error that ends a warm-up stage.

    Returns:
        `Result` as `cvxkit.solvers.sinkhorn.sinkhorn`'s: ``x`` the plan, ``dual`` the
        potentials ``(f, g)``, ``objective`` ``<C,P> + reg*sum(P log P)``, ``primal_residual``
        the L1 marginal error, ``history`` ``marginal_err``, ``eps`` and ``k`` (0 during the
        warm-up) per check; ``info`` has ``transport_cost``, ``f``, ``g``,
        ``dual_objective``, ``reg``, ``relative_marginal_error`` and ``newton_steps``,
        ``sinkhorn_iterations``, ``cg_iterations``, ``line_search_failures``, ``k``.
    """
    t_setup = time.perf_counter()
    if is_traced(a, b, C):
        raise ValueError(f"{METHOD} cannot run inside jax.jit, vmap or grad; use method "
                         f"'sinkhorn' (backend='jax') there")
    a, b, C = sk.validate_ot(a, b, C)
    reg = sk.validate_reg(reg)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                   progress=progress)
    k = validate.integer("k", k)
    k_max = validate.integer("k_max", k_max, allow_none=True)
    switch_tol = validate.positive("switch_tol", switch_tol)
    warmup_iter = validate.integer("warmup_iter", warmup_iter, minimum=0)
    cg_tol = validate.positive("cg_tol", cg_tol, upper=1.0)
    cg_max_iter = validate.integer("cg_max_iter", cg_max_iter)
    ridge = validate.positive("ridge", ridge)
    eps_decay = validate.positive("eps_decay", eps_decay, upper=1.0)
    stage_tol = validate.positive("stage_tol", stage_tol)
    eps_init = validate.positive("eps_init", eps_init, allow_none=True)
    nz = sk._normalize(a, b, C, reg)
    # normalized first eps: the spread of the costs is 1 there
    eps0 = EPS_INIT if eps_init is None else eps_init / nz.scale
    warm = sk._warm_potentials(warm_start, nz, reg, methods=("sinkhorn", METHOD))
    m = nz.b.size
    k = min(k, m)
    k_max = max(k, min(m, 16 * k if k_max is None else k_max))
    bk = get_backend(backend, dtype)
    xp = bk.xp
    with bk.precision():
        dd, s0 = sk._setup(bk, nz.a, nz.b, nz.C, nz.reg, float(opts.tol),
                           eps0, eps_decay,
                           stage_tol, warm)
        d = Data(dd, xp.arange(k_max), xp.asarray(k), bk.asarray(switch_tol),
                 xp.asarray(warmup_iter), bk.asarray(cg_tol), xp.asarray(cg_max_iter),
                 bk.asarray(ridge))
        count = xp.asarray(0)
        pattern = xp.zeros((nz.a.size, k_max), dtype=xp.int32 if bk.name == "jax" else int)
        st = State(s0, xp.asarray(False), xp.asarray(k), count, count, count, count, pattern,
                   bk.asarray(math.inf))
        setup_time = time.perf_counter() - t_setup
        out = run(ALGORITHM, bk, st, d, opts)
        last = out.state
        out, P, f, g = sk.plan_and_potentials(bk, out._replace(state=last.s), nz)
    final = sk._final(P, f, g, a, b, C, reg, float(opts.tol), dtype, out.status)
    newton = int(last.newton_steps)
    final = final._replace(info={
        **final.info, "newton_steps": newton, "sinkhorn_iterations": out.iterations - newton,
        "cg_iterations": int(last.cg_iterations), "line_search_failures": int(last.fallbacks),
        "k": int(last.k)})
    return finish(final, method=METHOD, backend=bk.name, run=out, setup_time=setup_time)
