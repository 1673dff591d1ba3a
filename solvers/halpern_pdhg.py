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

**Method** (`cvxkit.solvers.pdhg_core`): the reflected Halpern iteration of the PDHG map with
restarts and an adaptive primal weight, on the problem preconditioned by
`cvxkit.solvers.pdhg_setup`; termination and infeasibility tests relative to the data's
magnitudes, on the unscaled problem. An ``optimal`` point or an infeasibility certificate that
the loop finds is checked again in float64 on the user's own data; an optimal point must also
pass the objective check (`cvxkit.solvers.pdhg_polish.Polisher.verify`: unless its primal
residual is already 100 times below the tolerance, it is replaced by a nearby point 100 times
more feasible, which must pass the tests too, so that the gap test bounds the distance of the
objective to the optimal value). If a check fails, the iteration goes on with a 10 times
tighter internal tolerance. ``presolve`` runs HiGHS's presolve and postsolve around the solve
(`cvxkit.solvers.lp_presolve`); ``polish`` adds PDLP's feasibility polishing.

**Back ends.** numpy: scipy.sparse CSR products (threaded when large). JAX: ``jax.experimental.sparse``
BCOO products (dense arrays for dense data), the whole block of ``check_every`` iterations and the
check jitted inside one ``lax.while_loop`` (the driver syncs with the host every ``sync_every``
blocks). A ``mesh`` (``jax.sharding.Mesh`` with one axis) shards the rows of $K$ (and of
$K^\top$) and the iterates over its devices. float64 by default; float32 (``dtype="float32"``)
reaches about 1e-4 relative accuracy.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from cvxkit.solvers import implicit, lp_presolve, lp_traced, pdhg_polish, validate
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.driver import Final, Options, finish, run
from cvxkit.solvers.pdhg_core import (Data, Settings, State, algorithm, dual_infeasible,
                                      init_state, metrics, primal_infeasible)
from cvxkit.solvers.pdhg_setup import (Scaled, config, make_data, scale_problem, unit_scaled,
                                       unscale, validate_lp)
from cvxkit.solvers.primal_dual import (DIVERGED, DUAL_INFEASIBLE, FLAG_STATUS,
                                        INFEASIBLE_OBJECTIVE, PRIMAL_INFEASIBLE, RUNNING, SOLVED,
                                        certificate, loop_verdict, warm_parts)
from cvxkit.solvers.result import Result, Status, as_numpy_history

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
                 progress: bool | None = None, callback=None, check_every=64, sync_every=None,
                 seed=0, warm_start=None, dtype="float64", reflection=1.0,
                 eps_primal_infeasible=1e-8, eps_dual_infeasible=1e-8, ruiz_iters=10,
                 pock_chambolle=True, rescale=True, primal_weight=None,
                 adaptive_primal_weight=True, mesh=None, sparse_format="auto",
                 presolve="auto", polish=False) -> Result:
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
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on a
            terminal.
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
        presolve: ``True``: HiGHS's presolve (``highspy``) reduces the LP, the reduced LP is
            solved and HiGHS's postsolve maps the solution back; the status is decided on this
            LP (`cvxkit.solvers.lp_presolve`). ``"auto"`` (default): presolve when highspy is
            installed, there is no warm start and no mesh, and $K$ has at least
            ``lp_presolve.AUTO_MIN_NNZ`` nonzeros. ``False``: never.
        polish: PDLP's feasibility polishing (`cvxkit.solvers.pdhg_polish`): once the gap is
            within the tolerance but a residual is not, short solves of the primal and the dual
            feasibility problems started at the current point; their pair is accepted only if
            it passes every test on this LP.

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
    shared = dict(tol=tol, eps_abs=eps_abs, eps_rel=eps_rel, max_iter=max_iter,
                  check_every=check_every, seed=seed, reflection=reflection,
                  eps_primal_infeasible=eps_primal_infeasible,
                  eps_dual_infeasible=eps_dual_infeasible, ruiz_iters=ruiz_iters,
                  pock_chambolle=pock_chambolle, rescale=rescale, primal_weight=primal_weight,
                  adaptive_primal_weight=adaptive_primal_weight, presolve=presolve,
                  polish=validate.boolean("polish", polish))
    if implicit.is_traced(c, K, lc, uc, lv, uv):  # inside jax.jit / vmap / grad
        if backend != "jax" or mesh is not None:
            raise ValueError("inside jax.jit, vmap or grad halpern_pdhg needs backend='jax' "
                             "(and no mesh)")
        return lp_traced.solve(c, K, lc, uc, lv, uv, dict(shared, warm_start=warm_start))
    c, K, lc, uc, lv, uv = validate_lp(c, K, lc, uc, lv, uv)
    n, m = c.shape[0], K.shape[0]
    tol = validate.positive("tol", tol)
    max_iter = validate.integer("max_iter", max_iter)
    check_every = validate.integer("check_every", check_every)
    sync_every = validate.integer("sync_every", sync_every, allow_none=True)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, seed=seed, dtype=dtype, progress=progress)
    if mesh is not None and backend != "jax":
        raise ValueError("mesh needs backend='jax'")
    cfg = config(tol=tol, eps_abs=eps_abs, eps_rel=eps_rel, reflection=reflection, seed=seed,
                 eps_primal_infeasible=eps_primal_infeasible, eps_dual_infeasible=eps_dual_infeasible,
                 adaptive_primal_weight=adaptive_primal_weight, check_every=check_every, max_iter=max_iter,
                 ruiz_iters=ruiz_iters, pock_chambolle=pock_chambolle, rescale=rescale,
                 primal_weight=primal_weight, sparse_format=sparse_format)
    if lp_presolve.wanted(presolve, K, warm_start, mesh):
        return lp_presolve.solve((c, K, lc, uc, lv, uv), cfg, dict(
            shared, backend=backend, time_limit=time_limit, verbose=verbose, progress=progress,
            callback=callback, sync_every=sync_every, dtype=dtype, sparse_format=sparse_format,
            presolve=False), halpern_pdhg)
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
        user = _UserCheck(c, K, lc, uc, lv, uv, cfg, polish_options(shared, backend, dtype),
                          time.perf_counter() + time_limit)
        polisher = user.polisher if polish and mesh is None else None
        runs, t_start = [], time.perf_counter()
        while True:
            done = int(np.asarray(bk.to_numpy(s.it)))
            left = time_limit - (time.perf_counter() - t_start)
            stop = max_iter if polisher is None else min(max_iter, polisher.next_at(done))
            dopts = dataclasses.replace(opts, max_iter=stop - done, time_limit=max(left, 1e-9),
                                        check_every=sync_every if bk.name == "jax" else 1)
            out = run(algorithm(mesh, check_every), bk, s, d, dopts)
            runs.append(out)
            s = out.state
            fin = {k: np.asarray(bk.to_numpy(getattr(s, k))) for k in State._fields}
            flag = int(fin["flag"])
            if flag == RUNNING and polisher is not None and out.status is Status.MAX_ITER \
                    and fin["it"] < max_iter:  # a pause for polishing
                if _polished(polisher, fin, sc, cfg, time_limit - (time.perf_counter() - t_start)):
                    runs[-1] = out._replace(status=Status.OPTIMAL)
                    break
                continue
            if flag in (RUNNING, DIVERGED) or user.confirms(flag, fin, sc):
                break
            fin["flag"] = np.asarray(RUNNING)  # not confirmed: no status of it is reported
            if fin["it"] >= max_iter or out.status in (Status.TIME_LIMIT, Status.INTERRUPTED):
                break
            # the float64 check on the user's data failed: go on with a tighter internal test
            d = d._replace(settings=user.tighten(bk, d.settings, flag))
            s = s._replace(flag=bk.xp.asarray(RUNNING, dtype=bk.xp.int32) if bk.name == "jax" else RUNNING)
    usex, usey = float(np.asarray(bk.to_numpy(d.xscale))) > 0, float(np.asarray(bk.to_numpy(d.cnorm))) > 0
    out = _merge(runs)
    res = _result(c, fin, sc, out, setup_time, t_init, bk.name, user.rejected, usex, usey)
    return res.replace(info=dict(res.info, polish=user.polisher.log,
                                 polish_iterations=user.polisher.iterations))


def polish_options(shared: dict, backend, dtype) -> dict:
    """The options of the polishing solves (`cvxkit.solvers.pdhg_polish`) of a solve with the
    options ``shared``: the same settings, no presolve, no polishing, no output."""
    return dict(shared, backend=backend, dtype=dtype, presolve=False, polish=False)


def store(fin, sc: Scaled, x, y, m):
    """Put the user's ``(x, y)`` (scaled) and its metrics ``m`` into the final state ``fin``."""
    fin.update(xh=x / (sc.beta_b * sc.D), yh=y / (sc.beta_c * sc.E), prim=m.prim, dual=m.dual,
               gap=m.gap, pobj=m.pobj, dobj=m.dobj, rel_prim=m.rel_prim, rel_dual=m.rel_dual,
               rel_gap=m.rel_gap)


def _polished(polisher, fin, sc: Scaled, cfg, time_left) -> bool:
    """Try feasibility polishing at the main loop's point when it is due; on success the
    polished pair, its measures and the ``SOLVED`` flag go into ``fin`` (scaled, as the loop's)."""
    if not polisher.due(fin, max(cfg["eps_abs"], cfg["eps_rel"])):
        return False
    x, y = unscale(sc, fin["xh"], fin["yh"])
    got = polisher.attempt(x, y, int(fin["it"]), time_left)
    if got is None:
        return False
    store(fin, sc, *got)
    fin["flag"] = np.asarray(SOLVED)
    return True


class _UserCheck:
    """The final tests of an ``optimal`` point or an infeasibility certificate, in float64 on the
    user's own (unscaled) data, with the same formulas as the loop's; ``tighten`` divides the
    loop's tolerance of a test that this check rejected by 10."""

    def __init__(self, c, K, lc, uc, lv, uv, cfg, options=None, deadline=math.inf):
        self.bk = get_backend("numpy", "float64")
        self.lp, self.cfg, self._d = (c, K, lc, uc, lv, uv), cfg, None
        self.rejected = []  # (iteration, status) of each rejected candidate
        #: the objective check of an optimal candidate (`pdhg_polish.Polisher.verify`), with
        #: the solver options of its polishing solve; `deadline`: time.perf_counter()'s
        self.polisher = pdhg_polish.Polisher(self.lp, self, options or {}, halpern_pdhg)
        self.deadline = deadline

    @property
    def d(self) -> Data:
        """The user's data as a `Data` with unit scaling (built on first use)."""
        if self._d is None:
            import scipy.sparse as sp

            c, K, lc, uc, lv, uv = self.lp
            ident = unit_scaled(c, sp.csr_matrix(K), lc, uc, lv, uv)
            self._d = make_data(self.bk, c, K, lc, uc, lv, uv, ident, self.cfg)
        return self._d

    def metrics(self, x, y):
        """The `cvxkit.solvers.pdhg_core.Metrics` (residuals, gap, ``ok``) of the user's
        ``(x, y)`` on the user's LP."""
        d = self.d
        return metrics(self.bk, d, d.K @ x, d.Kt @ y, x, y)

    def confirmed(self, x, y, done):
        """``(x, metrics)`` of an optimal candidate ``(x, y)`` (user's units) that passes the
        tests and the objective check (`pdhg_polish.Polisher.verify`: ``x`` may be replaced by
        a more feasible point near it), else None (recorded as rejected)."""
        m = self.metrics(x, y)
        got = self.polisher.verify(x, y, m, done, self.deadline - time.perf_counter()) \
            if bool(m.ok) else None
        if got is None:
            self.rejected.append((done, Status.OPTIMAL.value))
        return got

    def confirms(self, flag, fin, sc) -> bool:
        """Does the loop's candidate pass (`verdict`, and for an optimal point `confirmed`)?
        A confirmed optimal point replaces the one in ``fin``."""
        if flag not in (SOLVED, PRIMAL_INFEASIBLE, DUAL_INFEASIBLE):
            return True
        if flag == SOLVED:
            x, y = unscale(sc, fin["xh"], fin["yh"])
            got = self.confirmed(x, y, int(fin["it"]))
            if got is not None:
                store(fin, sc, got[0], y, got[1])
            return got is not None
        ok = bool(verdict(self.bk, self.d, flag, fin, sc))
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


def verdict(bk, d: Data, flag, fin, sc: Scaled):
    """Does the candidate of status ``flag`` (solved or an infeasibility) in the final state
    ``fin`` (numpy) of the scaled problem ``sc`` pass the tests on the user's data ``d`` (unit
    scaling)? (``metrics`` zeroes x or y where the module docstring says.) Written for one LP;
    `cvxkit.solvers.lp_batch` runs it over a batch."""
    if flag == SOLVED:
        x, y = unscale(sc, fin["xh"], fin["yh"])
        return metrics(bk, d, d.K @ x, d.Kt @ y, x, y).ok
    if flag == PRIMAL_INFEASIBLE:
        return primal_infeasible(bk, d, fin["ray_y"].astype(np.float64))[0]
    return dual_infeasible(bk, d, fin["ray_x"].astype(np.float64))[0]


def _merge(runs):
    """One driver `Run` from the runs of the loop above (histories concatenated; the times and
    iterations of each run continue those of the runs before)."""
    if len(runs) == 1:
        return runs[0]
    last, hist, t, it = runs[-1], {}, 0.0, 0
    for r in runs:
        for k, v in r.history.items():
            shift = {"time": t, "iteration": it}.get(k, 0)
            hist.setdefault(k, []).extend([e + shift for e in v])
        t += r.solve_time
        it += r.iterations
    return last._replace(history=hist, solve_time=t, iterations=sum(r.iterations for r in runs),
                         compile_time=sum(r.compile_time for r in runs))


def _result(c, s: dict, sc: Scaled, out, setup_time, init_time, backend, rejected=(),
            usex=True, usey=True) -> Result:
    """The `Result` from the final state ``s`` (numpy arrays) and the driver `Run` ``out``; the
    status is `loop_verdict`'s (the flag was confirmed by `_UserCheck`, or reset to running)."""
    status = loop_verdict(s["flag"], out.status)
    h = as_numpy_history(out.history)
    restart_its = []
    if "restarts" in h and len(h["restarts"]):
        grew = np.diff(h["restarts"], prepend=0) > 0
        restart_its = h["iteration"][grew].tolist()
    x, y = unscale(sc, s["xh"], s["yh"])
    x, y = x * bool(usex), y * bool(usey)
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
    final = Final(x=x, objective=obj, dual=y, primal_residual=float(s["prim"]),
                  dual_residual=float(s["dual"]), info=info, status=status,
                  iterations=int(s["it"]))
    return finish(final, method="halpern_pdhg", backend=backend, setup_time=setup_time,
                  run=out._replace(compile_time=out.compile_time + init_time))
