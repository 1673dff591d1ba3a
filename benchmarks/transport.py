"""Benchmark: cvxkit's optimal transport solvers against POT and OTT-JAX, at equal marginal error.

Instances: n points uniform in the unit square for each side (``np.random.default_rng(seed)``),
uniform weights, squared Euclidean cost ``C = ot.dist(x, y)``, ``reg = rel * mean(C)``.

Protocol, per (n, reg):

1. POT plain Sinkhorn (kernel form) with ``--pot-stop-thr`` (POT's own 2-norm criterion on one
   marginal). Its achieved L1 marginal error ``||P1-a||_1 + ||P^T1-b||_1``, computed here from
   the plan, becomes the common target ``e_pot``. If POT plain fails (non-finite plan, or its
   "numerical errors" warning from an underflowing kernel at small reg) the target is
   ``--fallback-tol`` (1e-6).
2. cvxkit (numpy, jax) with ``tol=target`` and OTT-JAX with ``threshold=target, norm_error=1``:
   both stop on the L1 marginal error, so all runs aim at the same accuracy. Every method's
   error is recomputed here from its plan and printed.
3. POT log-domain Sinkhorn (slow; only for n <= --pot-log-max-n, iterations capped).
4. Exact OT once per n: ``ot.emd`` against cvxkit's ``network_simplex`` (a POT adapter).

Times: wall clock of the call (best of --repeat). JAX methods: the compiled code is warmed up
first; compile time is reported in its own column. cvxkit-jax time = ``solve_time + setup_time``
of a warm call, its compile column is ``Result.compile_time`` of the first (cold) call (0 when
the compiled loop was cached by an earlier reg at the same n). OTT time
includes building the PointCloud cost matrix and the plan inside the jitted function (like
POT, which returns the plan); cvxkit's ``solve_time`` excludes forming the plan (one n x m
product after the loop).

Note: OPENBLAS_CORETYPE may be set on this machine; it changes absolute numpy timings, but POT
and cvxkit-numpy use the same numpy/OpenBLAS, so it affects both sides alike.

    python benchmarks/transport.py --sizes 500 2000 5000 --regs 0.01 0.001 --out results.json
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import ot

from common import best_of, write_results

from cvxkit.solvers.network_simplex import network_simplex
from cvxkit.solvers.sinkhorn import sinkhorn

try:
    import jax
    import jax.numpy as jnp
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn as ott_sinkhorn
except ImportError:  # OTT-JAX is optional
    ott_sinkhorn = None


def instance(n, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    a = np.full(n, 1.0 / n)
    return a, a.copy(), x, y, ot.dist(x, y)


def l1_error(P, a, b):
    return float(np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum())


def x64():
    return jax.enable_x64(True) if hasattr(jax, "enable_x64") else jax.experimental.enable_x64()


# --- the methods: each returns a dict with the plan P, time, compile, iterations, notes -------

def run_pot(a, b, C, reg, method, stop_thr, max_iter, repeat):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (P, log), t = best_of(repeat, lambda: ot.sinkhorn(
            a, b, C, reg, method=method, stopThr=stop_thr, numItermax=max_iter, log=True))
    msgs = {str(w.message) for w in caught}
    failed = not np.isfinite(P).all() or any("umerical error" in m for m in msgs)
    note = "FAILED (NaN/underflow)" if failed else ""
    if any("did not converge" in m for m in msgs):
        note = (note + " not converged").strip()
    return dict(P=P, time=t, iterations=int(log["niter"]), failed=failed, note=note)


def run_cvxkit(a, b, C, reg, backend, tol, repeat):
    cold = sinkhorn(a, b, C, reg, backend=backend, tol=tol) if backend == "jax" else None
    times = []
    for _ in range(repeat):
        r = sinkhorn(a, b, C, reg, backend=backend, tol=tol)
        times.append(r.solve_time + r.setup_time)
    note = "" if r.converged else f"status {r.status.value}"
    out = dict(P=r.x, time=min(times), iterations=r.iterations, note=note)
    if cold is not None:
        out.update(compile=cold.compile_time,
                   first_call=cold.compile_time + cold.solve_time + cold.setup_time)
    return out


def run_ott(x, y, C, reg, threshold, max_iter, repeat):
    with x64():
        geom = pointcloud.PointCloud(jnp.asarray(x), jnp.asarray(y), epsilon=reg)
        cost_gap = float(np.abs(np.asarray(geom.cost_matrix) - C).max())
        assert cost_gap <= 1e-12 * C.max(), f"OTT cost differs from ot.dist by {cost_gap:.2e}"
        solver = ott_sinkhorn.Sinkhorn(threshold=threshold, max_iterations=max_iter, norm_error=1)

        def solve(x, y):
            out = solver(linear_problem.LinearProblem(
                pointcloud.PointCloud(x, y, epsilon=reg)))
            return out.matrix, out.n_iters, out.converged

        xj, yj = jnp.asarray(x), jnp.asarray(y)
        t = time.perf_counter()
        compiled = jax.jit(solve).lower(xj, yj).compile()
        compile_time = time.perf_counter() - t
        t = time.perf_counter()
        jax.block_until_ready(compiled(xj, yj))  # first call, not timed below
        first = time.perf_counter() - t
        (P, its, conv), tm = best_of(repeat, lambda: jax.block_until_ready(compiled(xj, yj)))
        assert P.dtype == jnp.float64
    return dict(P=np.asarray(P), time=tm, compile=compile_time, first_call=compile_time + first,
                iterations=int(its), note="" if bool(conv) else "not converged")


def run_exact(a, b, C, repeat):
    P, t = best_of(repeat, lambda: ot.emd(a, b, C, numItermax=10_000_000))
    r, _ = best_of(repeat, lambda: network_simplex(a, b, C, max_iter=10_000_000))
    return [dict(method="POT emd", P=P, time=t, iterations=0, note=""),
            dict(method="cvxkit network_simplex", P=r.x, time=r.solve_time + r.setup_time,
                 iterations=0, note="" if r.converged else f"status {r.status.value}")]


# --- one (n, reg) configuration -------------------------------------------------------------

def bench_entropic(args, n, rel, a, b, x, y, C):
    reg = rel * float(C.mean())
    rows = [dict(method="POT sinkhorn", **run_pot(a, b, C, reg, "sinkhorn", args.pot_stop_thr,
                                                   args.max_iter, args.repeat))]
    pot = rows[0]
    if pot["failed"]:
        target = args.fallback_tol
        print(f"n={n} reg={rel:g}*mean(C): POT plain: failed (NaN); target L1 error {target:g}")
    else:
        target = max(l1_error(pot["P"], a, b), 1e-14)
        print(f"n={n} reg={rel:g}*mean(C): POT plain reached L1 error {target:.3e}: common target")
    rows.append(dict(method="cvxkit numpy", **run_cvxkit(a, b, C, reg, "numpy", target, args.repeat)))
    rows.append(dict(method="cvxkit jax", **run_cvxkit(a, b, C, reg, "jax", target, args.repeat)))
    if ott_sinkhorn is not None and not args.skip_ott:
        rows.append(dict(method="OTT sinkhorn",
                         **run_ott(x, y, C, reg, target, args.max_iter, args.repeat)))
    if not args.skip_pot_log and n <= args.pot_log_max_n:
        rows.append(dict(method="POT sinkhorn_log", **run_pot(
            a, b, C, reg, "sinkhorn_log", args.pot_stop_thr, args.pot_log_max_iter, 1)))
    for r in rows:  # cvxkit and OTT were given the target; POT runs on its own stopThr
        r.update(reg=f"{rel:g}*mean(C)", target=target, aimed=not r["method"].startswith("POT"))
    return rows


def finish(rows, a, b, C, n):
    """Add error, cost and the comparisons against the reference rows; drop the plans.

    Times are compared with POT emd (exact rows) or POT plain (entropic rows; none if it
    failed). Costs with the first of POT emd, POT plain, OTT, POT log that gave a finite plan.
    """
    by = {r["method"]: r for r in rows}
    for r in rows:
        P = r.pop("P")
        r["n"] = n
        r["ok"] = bool(np.isfinite(P).all()) and not r.pop("failed", False)
        r["l1_error"] = l1_error(P, a, b)
        r["cost"] = float(np.vdot(C, P))
        if r.get("aimed"):
            r["meets_target"] = bool(r["l1_error"] <= r["target"] * (1 + 1e-9))
    time_ref = by.get("POT emd") or by["POT sinkhorn"]
    cost_ref = next((by[m] for m in ("POT emd", "POT sinkhorn", "OTT sinkhorn", "POT sinkhorn_log")
                     if m in by and by[m]["ok"]), None)
    ott_row = by.get("OTT sinkhorn")
    for r in rows:
        r["time_vs_ref"] = r["time"] / time_ref["time"] if time_ref["ok"] else float("nan")
        r["cost_ref"] = cost_ref and cost_ref["method"]
        r["cost_rel_diff"] = (abs(r["cost"] - cost_ref["cost"]) / abs(cost_ref["cost"])
                              if cost_ref else float("nan"))
        if ott_row is not None and r["method"] in ("cvxkit jax", "OTT sinkhorn"):
            r["time_vs_ott"] = r["time"] / ott_row["time"]
    return rows


# --- output ---------------------------------------------------------------------------------

def environment():
    info = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "numpy": np.__version__, "pot": ot.__version__,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    import cvxkit
    info["cvxkit"] = cvxkit.__version__
    if ott_sinkhorn is not None:
        import ott
        info.update(jax=jax.__version__, ott=ott.__version__,
                    jax_devices=[str(d) for d in jax.devices()])
    else:
        info["ott"] = "not importable (OTT rows skipped)"
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads",
                                                      "architecture")} for p in threadpool_info()]
    except ImportError:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
        info["simd_found"] = cfg.get("SIMD Extensions", {}).get("found")
    return info


def fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def print_table(rows):
    head = (f"{'n':>6} {'reg':>15} {'method':<23} {'time s':>9} {'compile s':>9} {'iters':>7} "
            f"{'L1 err':>9} {'target':>9} {'<C,P>':>14} {'rel diff':>9} {'t/ref':>7} "
            f"{'t/OTT':>6}  note")
    print(head)
    print("-" * len(head))
    for r in rows:
        mark = " (ABOVE TARGET)" if r.get("meets_target") is False else ""
        print(f"{r['n']:>6} {r.get('reg', 'exact'):>15} {r['method']:<23} {r['time']:>9.4f} "
              f"{fmt(r.get('compile'), '9.3f'):>9} {r['iterations']:>7} {r['l1_error']:>9.2e} "
              f"{fmt(r.get('target'), '9.2e'):>9} {r['cost']:>14.10f} "
              f"{fmt(r['cost_rel_diff'], '9.1e'):>9} {fmt(r['time_vs_ref'], '7.2f'):>7} "
              f"{fmt(r.get('time_vs_ott'), '6.2f'):>6}  {r['note']}{mark}")
    print(f"cost reference for rel diff: {rows[0]['cost_ref']}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    p.add_argument("--regs", type=float, nargs="+", default=[0.01, 0.001],
                   help="reg = rel * mean(C) for each rel")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per method (best is kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pot-stop-thr", type=float, default=1e-9)
    p.add_argument("--max-iter", type=int, default=100_000)
    p.add_argument("--fallback-tol", type=float, default=1e-6,
                   help="target L1 error when POT plain fails")
    p.add_argument("--skip-pot-log", action="store_true")
    p.add_argument("--skip-ott", action="store_true", help="skip OTT-JAX (slow on CPU at small reg)")
    p.add_argument("--pot-log-max-n", type=int, default=500)
    p.add_argument("--pot-log-max-iter", type=int, default=1000)
    p.add_argument("--skip-exact", action="store_true", help="skip ot.emd / network_simplex")
    p.add_argument("--out", help="write all rows as JSON here")
    args = p.parse_args(argv)

    env = environment()
    print("environment:")
    for k, v in env.items():
        print(f"  {k}: {v}")
    print("columns: t/ref = time / time of POT sinkhorn (entropic) or POT emd (exact); t/OTT for "
          "the JAX rows;\n  rel diff = |<C,P> - ref| / ref with ref named under each table "
          "(POT plain unless it failed).\n")

    all_rows = []
    for n in args.sizes:
        a, b, x, y, C = instance(n, args.seed)
        for rel in args.regs:
            rows = finish(bench_entropic(args, n, rel, a, b, x, y, C), a, b, C, n)
            print_table(rows)
            print()
            all_rows += rows
        if not args.skip_exact:
            rows = finish(run_exact(a, b, C, args.repeat), a, b, C, n)
            print_table(rows)
            print()
            all_rows += rows
    for r in all_rows:
        if "first_call" in r:
            print(f"n={r['n']} {r.get('reg', '')} {r['method']}: first (cold) call "
                  f"{r['first_call']:.3f} s including compile")
    if args.out:
        write_results(args.out, env, args, all_rows)


if __name__ == "__main__":
    main()
