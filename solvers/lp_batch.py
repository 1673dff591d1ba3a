r"""A batch of LPs of one shape, solved by one vmapped JAX call of the restarted Halpern PDHG.

Member $b = 1..B$ is the LP of `cvxkit.solvers.halpern_pdhg.halpern_pdhg`,

$$
\min_x\ c_b^\top x \quad\text{s.t.}\quad l_{c,b} \le K_b x \le u_{c,b},\qquad l_{v,b} \le x \le u_{v,b},
$$

with the same (m, n) for every member; $K$ is one (m, n) matrix shared by all (dense or
scipy.sparse) or a dense (B, m, n) stack, and each bound is shared or given per member.

Each member is preconditioned on its own (Ruiz, Pock-Chambolle, bound and cost rescaling; its
own step size and primal weight) and iterates exactly as the single solve: one driver step is
``jax.vmap`` of the single solve's block of ``check_every`` iterations with its checks, inside the
driver's jitted ``lax.while_loop``, which runs until every member has stopped; a member that has
stopped is frozen (``where``). A member's status is decided on its own unscaled data in float64
as in the single solve: an ``optimal`` point or a certificate is checked again on the user's data,
and a member whose check fails goes on with a 10 times tighter internal test while the others
keep their answers.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, Run, finish, run
from cvxkit.solvers.halpern_pdhg import _result, _UserCheck, _warm
from cvxkit.solvers.pdhg_core import Data, Settings, State, algorithm, init_state
from cvxkit.solvers.pdhg_setup import config, make_data, scale_problem, validate_lp
from cvxkit.solvers.primal_dual import DIVERGED, RUNNING, warm_parts
from cvxkit.solvers.result import Result, Status, batch_message

_MATRICES = ("K", "Kt", "Kabs", "Ktabs")
_ALGORITHMS: dict = {}


def batch_algorithm(check_every: int, shared: bool) -> Algorithm:
    """The driver `Algorithm` of a batch: the state and data carry a leading batch axis (the
    matrices do not when ``shared``); a step is the vmapped block of ``check_every``
    iterations, a stopped member unchanged; the run stops once every member has stopped."""
    key = (check_every, shared)
    if key in _ALGORITHMS:
        return _ALGORITHMS[key]
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
    return _ALGORITHMS.setdefault(key, alg)


def _members(c, K, lc, uc, lv, uv):
    """Validate the batch's shapes; returns ``(B, shared, [(c, K, lc, uc, lv, uv) per member])``
    with each member checked by `validate_lp` (its errors name the member)."""
    c = validate.float_array("c", c, finite=True)
    if c.ndim != 2 or 0 in c.shape:
        raise ValueError(f"c must have shape (B, n) with B, n >= 1, got {c.shape}")
    B, n = c.shape
    shared = K is None or validate.is_sparse(K) or np.ndim(K) == 2
    if shared:
        K = validate_lp(c[0], K, None, None, None, None)[1]  # once, not per member
    else:
        K = validate.float_array("K", K)
        if K.ndim != 3 or K.shape[0] != B or K.shape[2] != n:
            raise ValueError(f"K must have shape (m, n) or (B, m, n) with B, n = {B}, {n}, got "
                             f"{K.shape}")
    m = K.shape[-2]
    vecs = {}
    for name, v, size in (("lc", lc, m), ("uc", uc, m), ("lv", lv, n), ("uv", uv, n)):
        if v is not None and not validate.is_sparse(v) and np.ndim(v) == 2:
            v = validate.float_array(name, v)
            if v.shape != (B, size):
                raise ValueError(f"{name} must be a number or have shape ({size},) or (B, {size}) "
                                 f"= ({B}, {size}), got {v.shape}")
        vecs[name] = v
    per = lambda v, i: v[i] if v is not None and np.ndim(v) == 2 else v  # noqa: E731
    out = []
    for i in range(B):
        try:
            out.append(validate_lp(c[i], K if shared else K[i], *(per(vecs[k], i) for k in
                                                                   ("lc", "uc", "lv", "uv"))))
        except ValueError as e:
            raise ValueError(f"member {i}: {e}") from None
    return B, shared, out


_WARM_EXPECTED = ("warm_start must be a Result of halpern_pdhg_batch, a dict {'x': (B, n), "
                  "'y': (B, m)} or a pair (X, Y)")


def _warm_batch(warm_start, B, n, m):
    """Per-member unscaled ``(x, y)`` (checked by the single solve's `_warm`): from a batch
    `Result` (NaN rows, those of infeasible members, start at 0), a dict or a pair of (B, n)
    and (B, m) arrays; zeros for a missing part."""
    parts = warm_parts(warm_start, _WARM_EXPECTED) or {"x": None, "y": None}
    for k, size in (("x", n), ("y", m)):
        v = np.zeros((B, size)) if parts[k] is None else parts[k]
        if isinstance(warm_start, Result):
            v = np.where(np.isfinite(v), v, 0.0)
        if np.shape(v) != (B, size):
            raise ValueError(f"{_WARM_EXPECTED}; got {k} of shape {np.shape(v)}, expected "
                             f"({B}, {size})")
        parts[k] = v
    return [_warm((parts["x"][i], parts["y"][i]), n, m) for i in range(B)]


def _to_device(bk, trees):
    """Stack per-member numpy pytrees into one with a leading batch axis on the device (floats
    in the solve's dtype, integers int32)."""
    jax, jnp = bk._jax, bk.xp

    def stack(*vs):
        a = np.stack([np.asarray(v) for v in vs])
        if a.dtype == np.bool_:
            return jnp.asarray(a)
        return jnp.asarray(a, dtype=jnp.int32 if np.issubdtype(a.dtype, np.integer) else bk.dtype)

    return jax.tree_util.tree_map(stack, *trees)


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
        The options are `halpern_pdhg`'s (the same names, defaults and meaning, per member);
        ``max_iter`` and ``time_limit`` bound the whole batch, ``callback`` and ``verbose``
        see the batch's summary (iterations, running members, largest relative residuals of
        the running members); ``sparse_format`` applies to a shared sparse ``K``.
        ``warm_start``: a batch `Result`, ``{"x": (B, n), "y": (B, m)}`` or a pair.

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
    B, shared, lps = _members(c, K, lc, uc, lv, uv)
    n, m = lps[0][0].shape[0], lps[0][1].shape[0]
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
    warm = _warm_batch(warm_start, B, n, m)
    host, bk = get_backend("numpy", dtype), get_backend("jax", dtype)
    scs = [scale_problem(*lp, cfg) for lp in lps]
    datas, states = [], []
    for lp, sc, (xw, yw) in zip(lps, scs, warm):
        d = make_data(host, *lp, sc, cfg)
        states.append(init_state(host, d, xw / (sc.beta_b * sc.D), yw / (sc.beta_c * sc.E),
                                 sc.omega0))
        datas.append(d._replace(**dict.fromkeys(_MATRICES)))
    checks = [_UserCheck(*lp, cfg) for lp in lps]
    with bk.precision():
        d, s = _to_device(bk, datas), _to_device(bk, states)
        if shared:  # (the preconditioning of K does not depend on c or the bounds)
            dk = make_data(bk, *lps[0], scs[0], cfg)
            d = d._replace(**{f: getattr(dk, f) for f in _MATRICES})
        else:
            Ks = bk.xp.asarray(np.stack([sc.K.toarray() for sc in scs]), dtype=bk.dtype)
            Kt = bk.xp.swapaxes(Ks, 1, 2)
            d = d._replace(K=Ks, Kt=Kt, Kabs=abs(Ks), Ktabs=abs(Kt))
        setup_time = time.perf_counter() - t0
        alg = batch_algorithm(check_every, shared)
        runs, t_start, confirmed = [], time.perf_counter(), set()
        while True:
            fin = {k: np.asarray(getattr(s, k)) for k in State._fields}
            busy = (fin["flag"] == RUNNING) & (fin["it"] < max_iter)
            left = max_iter - int(fin["it"][busy].min()) if busy.any() else 1
            out = run(alg, bk, s, d, dataclasses.replace(opts, max_iter=max(left, 1), time_limit=max(
                time_limit - (time.perf_counter() - t_start), 1e-9)))
            runs.append(out)
            s = out.state
            fin = {k: np.array(getattr(s, k)) for k in State._fields}
            rejected = []
            for i, flag in enumerate(fin["flag"]):
                if flag in (RUNNING, DIVERGED) or i in confirmed:
                    continue
                if checks[i].confirms(int(flag), {k: v[i] for k, v in fin.items()}, scs[i]):
                    confirmed.add(i)
                else:  # not confirmed: no status of it is reported
                    rejected.append((i, int(flag)))
                    fin["flag"][i] = RUNNING
            if not rejected or out.status in (Status.TIME_LIMIT, Status.INTERRUPTED) or all(
                    fin["it"][i] >= max_iter for i, _ in rejected):
                break
            # the float64 check on a member's data failed: it goes on with a tighter test
            st = [np.array(v) for v in d.settings]
            for i, flag in rejected:
                new = _UserCheck.tighten(host, Settings(*[v[i] for v in st]), flag)
                for v, w in zip(st, new):
                    v[i] = w
            d = d._replace(settings=Settings(*[bk.xp.asarray(v, dtype=old.dtype)
                                               for v, old in zip(st, d.settings)]))
            s = s._replace(flag=bk.xp.asarray(fin["flag"], dtype=bk.xp.int32))
    return _batch_result(lps, scs, datas, fin, runs, checks, setup_time, max_iter)


def _batch_result(lps, scs, datas, fin, runs, checks, setup_time, max_iter) -> Result:
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
    members = []
    for i, ((c, *_), sc, d, check) in enumerate(zip(lps, scs, datas, checks)):
        s = {k: v[i] for k, v in fin.items()}
        loop = Status.OPTIMAL if s["flag"] != RUNNING else (
            Status.MAX_ITER if s["it"] >= max_iter or out.status is Status.OPTIMAL else out.status)
        members.append(_result(c, s, sc, Run(None, loop, int(s["it"]), {}, 0.0, 0.0), 0.0, 0.0,
                               "jax", check.rejected, d.xscale > 0, d.cnorm > 0))
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
