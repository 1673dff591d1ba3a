r"""A batch of LPs of one shape, solved by one vmapped JAX call of the restarted Halpern PDHG.

Member $b = 1..B$ is the LP of `cvxkit.solvers.halpern_pdhg.halpern_pdhg`,

$$
\min_x\ c_b^\top x \quad\text{s.t.}\quad l_{c,b} \le K_b x \le u_{c,b},\qquad l_{v,b} \le x \le u_{v,b},
$$

with the same (m, n) for every member; $K$ is one (m, n) matrix shared by all (dense or
scipy.sparse) or a dense (B, m, n) stack, and each bound is shared or given per member.

Each member is preconditioned on its own (Ruiz, Pock-Chambolle, bound and cost rescaling; its
own step size and primal weight) as the single solve does, all members at once
(`cvxkit.solvers.pdhg_setup.scale_batch`; with a shared $K$, its part once), and iterates exactly
as the single solve: one driver step is
``jax.vmap`` of the single solve's block of ``check_every`` iterations with its checks, inside the
driver's jitted ``lax.while_loop``, which runs until every member has stopped; a member that has
stopped is frozen (``where``). A member's status is decided on its own unscaled data in float64
as in the single solve: an ``optimal`` point or a certificate is checked again on the user's data,
and a member whose check fails goes on with a 10 times tighter internal test while the others
keep their answers. The starting state and these checks run on the host over the batch axis
(`_Members`), with each member's numbers those of the single solve's numpy code.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from types import SimpleNamespace

import numpy as np

from cvxkit.solvers import kkt, validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, Run, finish, run
from cvxkit.solvers.halpern_pdhg import _result, _UserCheck, store, verdict
from cvxkit.solvers.pdhg_core import Data, Settings, State, algorithm, init_state
from cvxkit.solvers.pdhg_setup import (bound_array, check_bounds, config, first_bad, make_data,
                                       matrices, scale_batch, unit_scaled, unscale, validate_lp)
from cvxkit.solvers.primal_dual import (DIVERGED, DUAL_INFEASIBLE, FLAG_STATUS,
                                        PRIMAL_INFEASIBLE, RUNNING, SOLVED, warm_parts)
from cvxkit.solvers.result import Result, Status, batch_message

_MATRICES = ("K", "Kt", "Kabs", "Ktabs")


@functools.lru_cache(maxsize=16)
def batch_algorithm(check_every: int, shared: bool) -> Algorithm:
    """The driver `Algorithm` of a batch: the state and data carry a leading batch axis (the
    matrices do not when ``shared``); a step is the vmapped block of ``check_every``
    iterations, a stopped member unchanged; the run stops once every member has stopped."""
    single = algorithm()
    axes = Data(*[None if shared and f in _MATRICES else 0 for f in Data._fields])

    def step(bk, s, d):
        jax, xp = bk._jax, bk.xp

        def one(s, d):
            stop = single.converged(bk, s, d)
            return jax.tree_util.tree_map(lambda a, b: xp.where(stop, a, b), s,
                                          single.step(bk, s, d))

        return jax.vmap(one, in_axes=(0, axes))(s, d)

    def monitor(bk, s, d):
        xp = bk.xp
        running = ~single.converged(bk, s, d)
        worst = lambda v: xp.max(xp.where(running & xp.isfinite(v), v, 0.0))  # noqa: E731
        return {"iterations": xp.max(s.it), "running": xp.sum(running),
                "rel_primal": worst(s.rel_prim), "rel_dual": worst(s.rel_dual),
                "rel_gap": worst(s.rel_gap)}

    alg = Algorithm("halpern_pdhg-batch", step, monitor,
                    lambda bk, s, d: bk.xp.all(single.converged(bk, s, d)), check_every)
    return alg


def _members(c, K, lc, uc, lv, uv):
    """Validate the batch as `validate_lp` does each member (its errors name the member):
    returns ``(c, K, lc, uc, lv, uv)``, float64 with ``c`` and the bounds (B, ·), and ``K`` one
    (m, n) matrix shared by all (dense or CSR) or a dense (B, m, n) stack."""
    c = validate.float_array("c", c, finite=True)
    if c.ndim != 2 or 0 in c.shape:
        raise ValueError(f"c must have shape (B, n) with B, n >= 1, got {c.shape}")
    B, n = c.shape
    if K is None or validate.is_sparse(K) or np.ndim(K) == 2:
        K = validate_lp(c[0], K, None, None, None, None)[1]  # once, not per member
    else:
        K = validate.float_array("K", K)
        if K.ndim != 3 or K.shape[0] != B or K.shape[2] != n:
            raise ValueError(f"K must have shape (m, n) or (B, m, n) with B, n = {B}, {n}, got "
                             f"{K.shape}")
        first_bad(~np.isfinite(K).reshape(B, -1),
                  lambda i: "K contains NaN or infinite entries")
    m = K.shape[-2]

    def bound(name, v, size, fill):
        return bound_array(name, v, (B, size), fill, f" or (B, {size}) = ({B}, {size})")

    lc, uc = bound("lc", lc, m, -np.inf), bound("uc", uc, m, np.inf)
    lv, uv = bound("lv", lv, n, -np.inf), bound("uv", uv, n, np.inf)
    check_bounds(lc, uc, lv, uv)
    return c, K, lc, uc, lv, uv


_WARM_EXPECTED = ("warm_start must be a Result of halpern_pdhg_batch, a dict {'x': (B, n), "
                  "'y': (B, m)} or a pair (X, Y)")


def _warm_batch(warm_start, B, n, m):
    """The unscaled ``(X, Y)``, (B, n) and (B, m), of a batch `Result` (NaN rows, those of
    infeasible members, start at 0), a dict or a pair; zeros for a missing part."""
    parts = warm_parts(warm_start, _WARM_EXPECTED) or {"x": None, "y": None}
    out = []
    for k, size in (("x", n), ("y", m)):
        v = np.zeros((B, size)) if parts[k] is None else parts[k]
        try:
            v = validate.float_array(f"warm_start {k}", v)
        except ValueError as e:
            raise ValueError(f"{_WARM_EXPECTED}: {e}") from None
        if isinstance(warm_start, Result):
            v = np.where(np.isfinite(v), v, 0.0)
        if v.shape != (B, size):
            raise ValueError(f"{_WARM_EXPECTED}; got {k} of shape {v.shape}, expected "
                             f"({B}, {size})")
        if not np.isfinite(v).all():
            raise ValueError(f"{_WARM_EXPECTED}; got NaN or infinite entries in {k}")
        out.append(v)
    return out


class _Stack:
    """Products member by member: ``M @ V`` is (B, m) for V (B, n), with ``M`` a dense stack
    (B, m, n) (each member's BLAS product) or one matrix shared by all (dense, or a
    scipy.sparse one: its product with the columns of ``V^T``, row sums in the same order)."""

    def __init__(self, M):
        self.M = M

    def __matmul__(self, V):
        if isinstance(self.M, np.ndarray):
            return np.matmul(self.M, V[..., None])[..., 0]
        return np.ascontiguousarray((kkt.as_scipy(self.M) @ V.T).T)


#: numpy with sums over a member's entries (the last axis, kept); the elementwise functions
#: are numpy's (pdhg_core's checks use no others)
_MEMBER_XP = SimpleNamespace(sum=lambda v: np.sum(v, axis=-1, keepdims=True), **{
    f: getattr(np, f) for f in ("abs", "clip", "inf", "isfinite", "maximum", "minimum", "sqrt",
                                "where", "zeros_like")})


class _Members(Backend):
    """numpy over a leading member axis, to run `pdhg_core`'s numpy code for one LP (the
    starting state, the checks) on every member at once: each array carries the axis (a
    member's numbers as (B, 1)), ``xp.sum`` sums within each member and the matrices are
    `_Stack`s, so that a member's numbers are bitwise those of its own numpy run (the same
    pairwise sums and BLAS products) where its matrix is dense in both."""

    def __init__(self, dtype="float64"):
        super().__init__(dtype)
        self.xp = _MEMBER_XP

    @staticmethod
    def data(d: Data) -> Data:
        """``d`` of `make_data` over the batch (a member's numbers (B,)) for this back end."""
        col = lambda v: v[:, None] if np.ndim(v) == 1 else v  # noqa: E731
        return Data(*[_Stack(M) for M in d[:4]], *[col(v) for v in d[4:-1]],
                    Settings(*[col(v) for v in d.settings]))


def _take(tree, i):
    """Members ``i`` of a batch pytree (`Data`, `Scaled` without its ``K``, dict); numbers and
    a shared matrix are left as they are."""
    if isinstance(tree, dict):
        return {k: _take(v, i) for k, v in tree.items()}
    if isinstance(tree, tuple):
        return type(tree)(*[_take(v, i) for v in tree])
    if isinstance(tree, _Stack):
        return _Stack(tree.M[i] if np.ndim(tree.M) == 3 else tree.M)
    return tree[i] if np.ndim(tree) >= 1 else tree


def halpern_pdhg_batch(c, K=None, lc=None, uc=None, lv=None, uv=None, *, tol=1e-4, eps_abs=None,
                       eps_rel=None, max_iter=100_000, time_limit=math.inf, verbose=False,
                       progress=None, callback=None, check_every=64, sync_every=None, seed=0,
                       warm_start=None, dtype="float64", reflection=1.0,
                       eps_primal_infeasible=1e-8, eps_dual_infeasible=1e-8, ruiz_iters=10,
                       pock_chambolle=True, rescale=True, primal_weight=None,
                       adaptive_primal_weight=True, sparse_format="auto") -> Result:
    r"""Solve B LPs $\min c_b^\top x$ s.t. $l_{c,b} \le K_b x \le u_{c,b}$, $l_{v,b} \le x \le
    u_{v,b}$ of one shape by r2HPDHG, in one vmapped JAX call.

    Args:
        c: (B, n) costs. K: (B, m, n) dense, or (m, n) dense or scipy.sparse shared by all
            members (None: no rows).
        lc, uc: (B, m), or (m,) / a number shared (None: -inf / +inf). lv, uv: (B, n), or (n,) /
            a number shared (None: free).
        warm_start: a batch `Result`, ``{"x": (B, n), "y": (B, m)}`` or a pair.

    The other options are `halpern_pdhg`'s (the same names, defaults and meaning, per member);
    ``max_iter`` and ``time_limit`` bound the whole batch, ``callback`` and ``verbose`` see the
    batch's summary (iterations, running members, largest relative residuals of the running
    members); ``sparse_format`` applies to a shared sparse ``K``.

    Returns one `Result` with a leading batch axis on every array field: ``x`` (B, n) (NaN
    rows for infeasible or unbounded members), ``dual`` the multipliers ``y`` (B, m),
    ``objective``, ``iterations``, ``primal_residual``, ``dual_residual`` (B,), ``status`` a
    numpy array (dtype object) of one `Status` per member (decided as in `halpern_pdhg`, on the
    member's own data in float64), ``message`` the count per status (`batch_message`); ``info``
    holds ``y``, ``dual_objective``, ``rel_primal``, ``rel_dual``, ``rel_gap``, ``gap``,
    ``restarts``, ``primal_weight``, ``step_size``, ``fixed_point_residual`` (B,), and
    ``certificates``, ``rejected``, ``messages`` (lists, one entry per member). ``history``
    and the timings are the batch's. Bad shapes (a B that differs between arguments, K not
    (m, n) or (B, m, n)) raise ``ValueError``, as do bad options.
    """
    t0 = time.perf_counter()
    lp = _members(c, K, lc, uc, lv, uv)
    (B, n), m, shared = lp[0].shape, lp[2].shape[1], lp[1].ndim == 2
    max_iter = validate.integer("max_iter", max_iter)
    check_every = validate.integer("check_every", check_every)
    sync_every = validate.integer("sync_every", sync_every, allow_none=True)
    if sync_every is None:
        sync_every = 1 if (verbose or callback is not None) else max(1, 1024 // check_every)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=sync_every, seed=seed, dtype=dtype,
                   progress=progress)
    cfg = config(tol=tol, eps_abs=eps_abs, eps_rel=eps_rel, reflection=reflection, seed=seed,
                 eps_primal_infeasible=eps_primal_infeasible, eps_dual_infeasible=eps_dual_infeasible,
                 adaptive_primal_weight=adaptive_primal_weight, check_every=check_every, max_iter=max_iter,
                 ruiz_iters=ruiz_iters, pock_chambolle=pock_chambolle, rescale=rescale,
                 primal_weight=primal_weight, sparse_format=sparse_format)
    xw, yw = _warm_batch(warm_start, B, n, m)
    host, bk = _Members(dtype), get_backend("jax", dtype)
    sc = scale_batch(*lp, cfg)
    # the data and the starting state of every member, as the single solve's numpy code makes them
    dn = make_data(host, *lp, sc, cfg, mats=matrices(host, sc.K) if shared else _dense(sc.K, dtype))
    s = init_state(host, _Members.data(dn), xw / (sc.beta_b[:, None] * sc.D),
                   yw / (sc.beta_c[:, None] * sc.E), host.asarray(sc.omega0)[:, None])
    s = State(*[v if f in _VECTORS else np.broadcast_to(v, (B, 1))[:, 0]
                for f, v in zip(State._fields, s)])
    check = _BatchCheck(lp, cfg, dict(
        tol=tol, check_every=check_every, seed=seed, reflection=reflection,
        eps_primal_infeasible=eps_primal_infeasible, eps_dual_infeasible=eps_dual_infeasible,
        ruiz_iters=ruiz_iters, pock_chambolle=pock_chambolle, rescale=rescale,
        primal_weight=primal_weight, adaptive_primal_weight=adaptive_primal_weight,
        backend="numpy", dtype=dtype, presolve=False, polish=False), t0 + time_limit)
    with bk.precision():
        d, s = _to_device(bk, dn._replace(**dict.fromkeys(_MATRICES)), B), _to_device(bk, s, B)
        if shared:  # (the preconditioning of K does not depend on c or the bounds)
            mats = matrices(bk, sc.K, None, cfg["sparse_format"])
        else:
            Ks = bk.xp.asarray(sc.K, dtype=bk.dtype)
            Kt = bk.xp.swapaxes(Ks, 1, 2)
            mats = (Ks, Kt, abs(Ks), abs(Kt))
        d = d._replace(**dict(zip(_MATRICES, mats)))
        setup_time = time.perf_counter() - t0
        alg = batch_algorithm(check_every, shared)
        runs, t_start, confirmed = [], time.perf_counter(), np.zeros(B, dtype=bool)
        while True:
            fin = {k: np.asarray(getattr(s, k)) for k in State._fields}
            busy = (fin["flag"] == RUNNING) & (fin["it"] < max_iter)
            left = max_iter - int(fin["it"][busy].min()) if busy.any() else 1
            out = run(alg, bk, s, d, dataclasses.replace(opts, max_iter=max(left, 1), time_limit=max(
                time_limit - (time.perf_counter() - t_start), 1e-9)))
            runs.append(out)
            s = out.state
            fin = check.replaced({k: np.array(getattr(s, k)) for k in State._fields})
            cand = np.flatnonzero(~np.isin(fin["flag"], (RUNNING, DIVERGED)) & ~confirmed)
            ok = check.confirms(cand, fin, sc)
            confirmed[cand[ok]] = True
            rejected, flags = cand[~ok], fin["flag"][cand[~ok]]
            fin["flag"][rejected] = RUNNING  # not confirmed: no status of it is reported
            if not rejected.size or out.status in (Status.TIME_LIMIT, Status.INTERRUPTED) or (
                    fin["it"][rejected] >= max_iter).all():
                break
            # the float64 check on a member's data failed: it goes on with a tighter test
            st = [np.array(v) for v in d.settings]
            for i, flag in zip(rejected, flags):
                new = _UserCheck.tighten(host, Settings(*[v[i] for v in st]), flag)
                for v, w in zip(st, new):
                    v[i] = w
            d = d._replace(settings=Settings(*[bk.xp.asarray(v, dtype=old.dtype)
                                               for v, old in zip(st, d.settings)]))
            s = s._replace(flag=bk.xp.asarray(fin["flag"], dtype=bk.xp.int32))
    return _batch_result(lp[0], sc, dn, fin, runs, check, setup_time, max_iter)


#: the fields of `State` that are vectors (the others are a member's numbers)
_VECTORS = ("x", "y", "x0", "y0", "xh", "yh", "ray_x", "ray_y")


def _dense(K, dtype):
    """``(K, K^T, |K|, |K|^T)`` of a dense stack (B, m, n), as `make_data` makes a member's."""
    K = K.astype(dtype)
    Kt = np.ascontiguousarray(np.swapaxes(K, 1, 2))
    return K, Kt, np.abs(K), np.abs(Kt)


def _to_device(bk, tree, B):
    """A batch pytree of the host on the device (a number for all members as (B,)): floats in
    the solve's dtype, integers int32."""
    jnp = bk.xp

    def put(v):
        a = np.broadcast_to(v, (B,)) if np.ndim(v) == 0 else np.asarray(v)
        if a.dtype == np.bool_:
            return jnp.asarray(a)
        return jnp.asarray(a, dtype=jnp.int32 if np.issubdtype(a.dtype, np.integer) else bk.dtype)

    return bk._jax.tree_util.tree_map(put, tree)


class _BatchCheck:
    """`_UserCheck` of every member at once: ``confirms(members, fin, sc)`` says which of the
    candidate ``members`` pass `verdict` on their own data in float64 (on `_Members`; a
    member's dense ``K`` gives dense products, where `_UserCheck` uses CSR for a member with
    under a quarter of nonzeros); ``rejected[i]`` lists member i's refused (iteration, status).
    An optimal member then gets the single solve's objective check (`_UserCheck.confirmed`,
    numpy polishing solves with ``options``), which may replace its x in ``fin``."""

    def __init__(self, lp, cfg, options=None, deadline=math.inf):
        self.bk, self.lp, self.cfg, self._d = _Members("float64"), lp, cfg, None
        self.options, self.deadline, self._replaced = options or {}, deadline, {}
        self.rejected = [[] for _ in range(lp[0].shape[0])]

    @property
    def d(self) -> Data:
        """The user's data with unit scaling (built on first use)."""
        if self._d is None:
            import scipy.sparse as sp

            c, K, lc, uc, lv, uv = self.lp
            mats = matrices(self.bk, sp.csr_matrix(K)) if K.ndim == 2 else _dense(K, "float64")
            self._d = _Members.data(make_data(self.bk, *self.lp, unit_scaled(c, None, lc, uc, lv, uv),
                                              self.cfg, mats=mats))
        return self._d

    def confirms(self, members, fin, sc) -> np.ndarray:
        ok, flags, sc = np.ones(members.size, dtype=bool), fin["flag"][members], sc._replace(K=None)
        for flag in (SOLVED, PRIMAL_INFEASIBLE, DUAL_INFEASIBLE):
            sel = flags == flag
            if sel.any():
                i = members[sel]
                ok[sel] = np.ravel(verdict(self.bk, _take(self.d, i), flag, _take(fin, i), _take(sc, i)))
        for k in np.flatnonzero(ok & (flags == SOLVED)):
            ok[k] = self._objective_check(int(members[k]), fin, sc)
        self.replaced(fin)
        for i in members[~ok]:
            self.rejected[i].append((int(fin["it"][i]), FLAG_STATUS[int(fin["flag"][i])].value))
        return ok


    def _objective_check(self, i, fin, sc) -> bool:
        """Member ``i``'s `_UserCheck.confirmed` (its confirmed point written into ``fin``)."""
        c, K, lc, uc, lv, uv = self.lp
        one = (c[i], K if K.ndim == 2 else K[i], lc[i], uc[i], lv[i], uv[i])
        sci, s = _take(sc, i), {k: v[i] for k, v in fin.items()}
        x, y = unscale(sci, s["xh"], s["yh"])
        got = _UserCheck(*one, self.cfg, self.options, self.deadline).confirmed(x, y, int(s["it"]))
        if got is not None:
            new = {}
            store(new, sci, got[0], y, got[1])
            self._replaced[i] = (int(s["it"]), new)
        return got is not None

    def replaced(self, fin: dict) -> dict:
        """``fin`` with the points confirmed by the objective check written in, for the members
        still stopped at the iteration of their check (the device state keeps the loop's own,
        frozen, points)."""
        for i, (it, new) in self._replaced.items():
            if int(fin["it"][i]) == it and fin["flag"][i] != RUNNING:
                for k, v in new.items():
                    fin[k][i] = v
        return fin


def _batch_result(c, sc, dn, fin, runs, check, setup_time, max_iter) -> Result:
    """Each member's result as the single solve builds it, stacked into one batch `Result`."""
    out = runs[-1]._replace(solve_time=sum(r.solve_time for r in runs),
                            compile_time=sum(r.compile_time for r in runs), history={})
    t = 0.0
    for r in runs:  # the histories one after the other (times continue)
        for k, v in r.history.items():
            out.history.setdefault(k, []).extend(np.asarray(v) + t if k == "time" else v)
        t += r.solve_time
    if "iterations" in out.history:
        out.history["iteration"] = out.history.pop("iterations")
    members, sc = [], sc._replace(K=None)
    for i in range(c.shape[0]):
        s = {k: v[i] for k, v in fin.items()}
        loop = Status.OPTIMAL if s["flag"] != RUNNING else (
            Status.MAX_ITER if s["it"] >= max_iter or out.status is Status.OPTIMAL else out.status)
        members.append(_result(c[i], s, _take(sc, i), Run(None, loop, int(s["it"]), {}, 0.0, 0.0),
                               0.0, 0.0, "jax", check.rejected[i], dn.xscale[i] > 0,
                               dn.cnorm[i] > 0))
    statuses = [r.status for r in members]
    status = np.empty(len(members), dtype=object)
    status[:] = statuses
    per = lambda f: np.array([f(r) for r in members])  # noqa: E731
    keys = ("dual_objective", "rel_primal", "rel_dual", "rel_gap", "gap", "restarts",
            "primal_weight", "step_size", "fixed_point_residual")
    y = per(lambda r: r.dual)
    info = {"y": y, **{k: per(lambda r, k=k: r.info[k]) for k in keys},
            "certificates": [r.info.get("certificate") for r in members],
            "rejected": [r.info["rejected"] for r in members],
            "messages": [r.message for r in members]}
    final = Final(x=per(lambda r: r.x), objective=per(lambda r: r.objective), dual=y,
                  primal_residual=per(lambda r: r.primal_residual),
                  dual_residual=per(lambda r: r.dual_residual), info=info, status=status,
                  message=batch_message(statuses, info["messages"]),
                  iterations=per(lambda r: r.iterations))
    return finish(final, method="halpern_pdhg", backend="jax", run=out, setup_time=setup_time)
