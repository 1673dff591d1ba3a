"""Benchmark: parametric re-solves of one sparse QP (issue 23), a new q for each parameter value.

For each class of benchmarks/qp.py asked for (default: ``lasso`` and ``portfolio`` at n = 2000,
about 1900-1940 variables), ``--values`` parameter values are swept in order:

* ``lasso``: q = (0, 0, lambda 1) with lambda from 0.5 to 1.5 times the class's own lambda;
* ``portfolio``: q = (-mu / gamma, 0) with 1 / gamma from 0.5 to 2 (risk aversion).

Per value, wall-clock seconds of the whole call (the mean over the values):

* ``cold``: a new solve from scratch: cvxkit ``admm_qp`` (validation, scaling, factorization,
  iterations), OSQP (``setup`` + ``solve``), Clarabel (a new solver + ``solve``);
* ``re-solve``: cvxkit ``QPWorkspace.solve(q=...)`` (`cvxkit.solvers.qp_workspace`: scaling and
  factorization kept, warm start from the last solution), OSQP ``update(q=...)`` + ``solve``
  (its warm start is on), Clarabel ``update(q=...)`` + ``solve`` (Clarabel keeps its symbolic
  set-up; an interior point method does not warm-start).

Every solver runs at ``eps_abs = eps_rel = eps`` (Clarabel: all its tolerances at ``eps``);
the workspace, the OSQP object and the Clarabel solver are set up (and solved once) at the
first value before the timed sweep. ``re/cold`` is the ratio of the two means of a solver (the
issue's target for cvxkit: <= 0.2), ``vs OSQP`` divides by OSQP's time for the same kind of
call. ``obj dev`` is the largest relative objective difference to Clarabel's cold solve over the
values.

Through CVXPY (``--cvxpy``): the same models written with a ``cvxpy.Parameter`` (lambda; 1/gamma)
and solved in the same sweep by ``cvxkit.CvxpySolver`` (which reuses the workspace when CVXPY
hands over the same P and A; with ``warm_start=True``) and by CVXPY's OSQP and Clarabel
interfaces (CVXPY's ``warm_start=True``: its OSQP interface updates the kept OSQP object); times
include CVXPY's own re-canonicalization.

All in one process with ``OPENBLAS_NUM_THREADS=1`` (set here); the machine has 2 cores shared
with other jobs, so read ratios from the same run.

    python benchmarks/qp_resolve.py --values 100
    python benchmarks/qp_resolve.py --values 20 --eps 1e-3 1e-5 --cvxpy
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as spa  # noqa: E402

from common import write_results  # noqa: E402
from qp import _rand, clarabel_data, lasso_qp, portfolio_qp  # noqa: E402

from cvxkit.solvers.admm_qp import admm_qp  # noqa: E402
from cvxkit.solvers.qp_workspace import admm_qp_setup  # noqa: E402


# --- parameter sweeps ------------------------------------------------------------------------
def lasso_sweep(n, rng, values):
    P, q, A, l, u = lasso_qp(n, rng)
    k, lam0 = max(1, n // 102), q[-1]  # q = (0, 0, lambda 1) over (x, y, t), t of size k
    return P, A, l, u, [np.r_[q[:-k], lam0 * t * np.ones(k)] for t in np.linspace(0.5, 1.5, values)]


def portfolio_sweep(n, rng, values):
    P, q, A, l, u = portfolio_qp(n, rng)
    return P, A, l, u, [q * t for t in np.linspace(0.5, 2.0, values)]


SWEEPS = {"lasso": lasso_sweep, "portfolio": portfolio_sweep}


def cvxpy_model(name, n, seed):
    """The same class in CVXPY with its parameter: ``(problem, parameter, values(t))``."""
    import cvxpy as cp

    rng = np.random.default_rng(seed)
    if name == "lasso":
        k = max(1, n // 102)
        Ad = _rand(rng, 100 * k, k, 0.15)
        x_true = (rng.random(k) > 0.5) * rng.standard_normal(k) / np.sqrt(k)
        b = Ad @ x_true + rng.standard_normal(100 * k)
        lam0 = np.abs(Ad.T @ b).max() / 5
        x, lam = cp.Variable(k), cp.Parameter(nonneg=True)
        prob = cp.Problem(cp.Minimize(cp.sum_squares(Ad @ x - b) + lam * cp.norm1(x)))
        return prob, lam, lambda t: lam0 * t, (0.5, 1.5)
    k = max(1, n // 101)
    na = 100 * k
    F = _rand(rng, na, k, 0.5)
    D = rng.random(na) * np.sqrt(k)
    mu = rng.standard_normal(na)
    x, g = cp.Variable(na), cp.Parameter(nonneg=True)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(D, cp.square(x)))
                                  + cp.sum_squares(F.T @ x) - g * (mu @ x)),
                      [cp.sum(x) == 1, x >= 0, x <= 1])
    return prob, g, lambda t: t, (0.5, 2.0)


# --- solvers -----------------------------------------------------------------------------------
def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def sweep_cvxkit(P, A, l, u, qs, eps, max_iter):
    opts = dict(eps_abs=eps, eps_rel=eps, max_iter=max_iter)
    cold = [timed(lambda: admm_qp(P, q, A, l, u, **opts)) for q in qs]
    ws, t_setup = timed(lambda: admm_qp_setup(P, qs[0], A, l, u, **opts))
    ws.solve()
    re = [timed(lambda: ws.solve(q=q)) for q in qs]
    kinds = sorted({r.info["workspace"]["setup"] for r, _ in re})
    return dict(cold=cold, re=re, obj=lambda r: r.objective, iters=lambda r: r.iterations,
                ok=lambda r: r.status.value == "optimal",
                note=f"set-up {t_setup:.3f} s once; re-solves: {', '.join(kinds)}")


def sweep_osqp(P, A, l, u, qs, eps, max_iter):
    import osqp

    Pu, Ac = spa.triu(P, format="csc"), spa.csc_matrix(A)
    opts = dict(eps_abs=eps, eps_rel=eps, max_iter=max_iter, verbose=False)

    def cold(q):
        s = osqp.OSQP()
        s.setup(Pu, q, Ac, l, u, **opts)
        return s.solve(raise_error=False)

    solver = osqp.OSQP()
    solver.setup(Pu, qs[0], Ac, l, u, **opts)
    solver.solve(raise_error=False)

    def update(q):
        solver.update(q=q)
        return solver.solve(raise_error=False)

    return dict(cold=[timed(lambda: cold(q)) for q in qs],
                re=[timed(lambda: update(q)) for q in qs],
                obj=lambda r: r.info.obj_val, iters=lambda r: r.info.iter,
                ok=lambda r: r.info.status == "solved", note="update(q=...) + solve, warm start")


def sweep_clarabel(P, A, l, u, qs, eps):
    import clarabel

    Pc, _, Ac, b, cones = clarabel_data(P, qs[0], A, l, u)
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.tol_gap_abs = s.tol_gap_rel = s.tol_feas = eps
    cold = [timed(lambda: clarabel.DefaultSolver(Pc, q, Ac, b, cones, s).solve()) for q in qs]
    solver = clarabel.DefaultSolver(Pc, qs[0], Ac, b, cones, s)
    solver.solve()
    if not solver.is_data_update_allowed():
        return dict(cold=cold, re=None, obj=lambda r: r.obj_val, iters=lambda r: r.iterations,
                    ok=lambda r: str(r.status) == "Solved", note="data update not allowed")

    def update(q):
        solver.update(q=q)
        return solver.solve()

    return dict(cold=cold, re=[timed(lambda: update(q)) for q in qs], obj=lambda r: r.obj_val,
                iters=lambda r: r.iterations, ok=lambda r: str(r.status) == "Solved",
                note="update(q=...) + solve (no warm start: interior point)")


def sweep_cvxpy(name, n, seed, values, eps, max_iter):
    """Per-solve times of the CVXPY model through each solver, and their objectives."""
    import cvxpy as cp

    from cvxkit import CvxpySolver

    prob, par, value, (lo, hi) = cvxpy_model(name, n, seed)
    ts = np.linspace(lo, hi, values)
    solvers = {
        "cvxkit CvxpySolver": dict(solver=CvxpySolver(warm_start=True, eps_abs=eps, eps_rel=eps,
                                                      max_iter=max_iter, polish=False)),
        "CVXPY + OSQP": dict(solver=cp.OSQP, eps_abs=eps, eps_rel=eps, max_iter=max_iter,
                             warm_start=True),
        "CVXPY + Clarabel": dict(solver=cp.CLARABEL, tol_gap_abs=eps, tol_gap_rel=eps,
                                 tol_feas=eps, warm_start=True)}
    rows = {}
    for label, kw in solvers.items():
        par.value = value(ts[0])
        prob.solve(**kw)  # the first solve (canonicalization, set-up) is not timed
        times, objs, kinds = [], [], set()
        for t in ts:
            par.value = value(t)
            _, dt = timed(lambda: prob.solve(**kw))
            times.append(dt)
            objs.append(prob.value)
            ws = (prob.solver_stats.extra_stats or {}).get("workspace") \
                if isinstance(prob.solver_stats.extra_stats, dict) else None
            if ws:
                kinds.add(ws["setup"])
        rows[label] = dict(time=float(np.mean(times)), objs=np.array(objs),
                           note=f"re-solves: {', '.join(sorted(kinds))}" if kinds else "")
    ref = rows["CVXPY + Clarabel"]["objs"]
    base = rows["CVXPY + OSQP"]["time"]
    print(f"  through CVXPY ({values} values of the parameter; per solve, canonicalization "
          "included):")
    out = []
    for label, r in rows.items():
        dev = float(np.max(np.abs(r["objs"] - ref) / np.maximum(np.abs(ref), 1e-12)))
        print(f"    {label:<20} {r['time']:8.4f} s   vs CVXPY+OSQP {r['time'] / base:5.2f}   "
              f"obj dev {dev:.1e}  {r['note']}")
        out.append(dict(cls=name, eps=eps, solver=label, path="cvxpy", time=r["time"],
                        vs_osqp=r["time"] / base, obj_dev=dev, note=r["note"]))
    return out


def summarize(name, label, res, ref_objs):
    cold_t = float(np.mean([t for _, t in res["cold"]]))
    row = dict(solver=label, cold=cold_t, re=None, ratio=None, note=res["note"])
    objs = [res["obj"](r) for r, _ in res["cold"]]
    row["cold_iters"] = float(np.mean([res["iters"](r) for r, _ in res["cold"]]))
    row["cold_ok"] = sum(res["ok"](r) for r, _ in res["cold"])
    if res["re"] is not None:
        row["re"] = float(np.mean([t for _, t in res["re"]]))
        row["ratio"] = row["re"] / cold_t
        row["re_iters"] = float(np.mean([res["iters"](r) for r, _ in res["re"]]))
        row["re_ok"] = sum(res["ok"](r) for r, _ in res["re"])
        objs += [res["obj"](r) for r, _ in res["re"]]
    ref = np.concatenate([ref_objs, ref_objs]) if res["re"] is not None else ref_objs
    row["obj_dev"] = float(np.max(np.abs(np.array(objs) - ref) / np.maximum(np.abs(ref), 1e-12)))
    return row


def bench(name, args, eps):
    rng = np.random.default_rng(args.seed)
    P, A, l, u, qs = SWEEPS[name](args.n, rng, args.values)
    print(f"\n{name}: {P.shape[0]} variables, {A.shape[0]} constraints, nnz(P) + nnz(A) = "
          f"{P.nnz + A.nnz}; {len(qs)} values of q; eps = {eps:g}", flush=True)
    results = {"Clarabel": sweep_clarabel(P, A, l, u, qs, eps)}
    ref = np.array([r.obj_val for r, _ in results["Clarabel"]["cold"]])
    results["cvxkit admm"] = sweep_cvxkit(P, A, l, u, qs, eps, args.max_iter)
    results["OSQP"] = sweep_osqp(P, A, l, u, qs, eps, args.max_iter)
    rows = [summarize(name, label, results[label], ref)
            for label in ("cvxkit admm", "OSQP", "Clarabel")]
    osqp = rows[1]
    print(f"  {'solver':<12} {'cold s':>8} {'re-solve s':>11} {'re/cold':>8} {'cold vs OSQP':>13} "
          f"{'re vs OSQP':>11} {'iters cold/re':>14} {'optimal':>9} {'obj dev':>8}  note")
    for r in rows:
        re = "-" if r["re"] is None else f"{r['re']:.4f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        vs_re = "-" if r["re"] is None else f"{r['re'] / osqp['re']:.2f}"
        its = f"{r['cold_iters']:.0f}/{r.get('re_iters', float('nan')):.0f}"
        ok = f"{r['cold_ok']}/{r.get('re_ok', '-')}"
        print(f"  {r['solver']:<12} {r['cold']:8.4f} {re:>11} {ratio:>8} "
              f"{r['cold'] / osqp['cold']:13.2f} {vs_re:>11} {its:>14} {ok:>9} "
              f"{r['obj_dev']:8.1e}  {r['note']}", flush=True)
        r.update(cls=name, n=P.shape[0], m=A.shape[0], eps=eps, values=len(qs), path="arrays")
    if args.cvxpy:
        rows += sweep_cvxpy(name, args.n, args.seed, args.values, eps, args.max_iter)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--classes", nargs="+", default=["lasso", "portfolio"], choices=list(SWEEPS))
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--values", type=int, default=100)
    p.add_argument("--eps", type=float, nargs="+", default=[1e-3])
    p.add_argument("--max-iter", type=int, default=10_000)
    p.add_argument("--cvxpy", action="store_true", help="also through CVXPY with a Parameter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "qp_resolve.json"))
    args = p.parse_args()
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, {os.cpu_count()} "
          f"cores (shared with other jobs), {platform.processor() or platform.machine()}")
    rows = [r for eps in args.eps for name in args.classes for r in bench(name, args, eps)]
    env = dict(cores=os.cpu_count(), machine=platform.machine(),
               openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS"))
    write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
