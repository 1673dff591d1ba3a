"""Benchmark: point-cloud entropic OT (value and gradient w.r.t. the points) without the cost
matrix: cvxkit's ``sinkhorn_points_value_and_grad`` against OTT-JAX's online ``PointCloud``
(``batch_size``) + ``Sinkhorn`` + ``jax.value_and_grad`` of ``reg_ot_cost``, in the same run.

Instances: n = m points uniform in the unit square (``np.random.default_rng(seed)``), uniform
weights, squared Euclidean cost, ``reg`` absolute (default 0.01, about 3% of the mean cost 1/3).

Protocol, per (n, dtype, solver), each in its own subprocess (so that the peak resident memory,
``VmHWM`` of /proc/self/status, is the solver's own):

1. warm-up on the same shapes (cvxkit: ``max_iter=1``; OTT: ``jax.jit(...).lower().compile()``):
   the "compile" column (cvxkit's also includes one iteration and the final passes);
2. the timed call: value and gradients w.r.t. both clouds (OTT's default gradient of
   ``reg_ot_cost`` is Danskin's, the envelope theorem, as cvxkit's), ``block_until_ready``;
3. the peak RSS is read right after the timed call ("base MB": after the imports, before the
   data), then a common evaluator (cvxkit's
   ``PointCloudPlan``, float64, blockwise) measures the relative L1 marginal error
   ``||P1 - a||_1 + ||P^T 1 - b||_1`` of the plan ``exp((f + g - C)/reg)`` each solver's
   potentials define. cvxkit stops on that error (``tol``); OTT on its own L1 error of one
   marginal (``threshold=tol``, checked every 10 iterations), so both aim at the same accuracy.

Both use ``block`` rows per block (OTT: ``batch_size``). cvxkit starts with epsilon scaling (its
default), OTT at the target epsilon (its default). The gradients of the two are compared in the
parent process (relative Frobenius difference).

    python benchmarks/point_cloud_ot.py --sizes 10000 --dtypes float64 float32 --out results.json

``--refine``: cvxkit's float32 runs use ``refine=True`` (float64 iterations from the float32
potentials when the float64 check finds them short of ``tol``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from common import write_results


def instance(n, seed):
    rng = np.random.default_rng(seed)
    return rng.random((n, 2)), rng.random((n, 2))


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- workers (one per subprocess) ---------------------------------------------------------
def work_cvxkit(x, y, args):
    import jax  # noqa: F401 - imported by the solve anyway: in the baseline, as for OTT

    from cvxkit.solvers.sinkhorn_points import sinkhorn_points_value_and_grad

    base = peak_rss_mb()
    opts = dict(tol=args.tol, dtype=args.dtype, block=args.block, max_iter=args.max_iter,
                refine=args.refine and args.dtype == "float32")
    t = time.perf_counter()
    sinkhorn_points_value_and_grad(x, y, reg=args.reg, **{**opts, "max_iter": 1})
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    out = sinkhorn_points_value_and_grad(x, y, reg=args.reg, **opts)
    seconds = time.perf_counter() - t
    res = out.result
    return dict(time=seconds, compile=compile_s, iterations=int(res.iterations),
                status=res.status.value, value=float(out.value), f=res.dual[0], g=res.dual[1],
                grad_x=out.grad_x, grad_y=out.grad_y, peak=peak_rss_mb(), baseline_rss=base)


def work_ott(x, y, args):
    import jax
    import jax.interpreters.batching as batching
    from jax._src.interpreters import batching as batching_impl

    # OTT-JAX 0.6's online PointCloud (batch_size) reads a name JAX 0.10 made private
    if not hasattr(batching, "is_vmappable"):
        batching.is_vmappable = batching_impl.is_vmappable
    jax.config.update("jax_enable_x64", args.dtype == "float64")
    import jax.numpy as jnp
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    base = peak_rss_mb()
    n = x.shape[0]
    a = jnp.full(n, 1.0 / n, dtype=args.dtype)
    solver = sinkhorn.Sinkhorn(threshold=args.tol, max_iterations=args.max_iter)

    def value(x, y):
        geom = pointcloud.PointCloud(x, y, epsilon=args.reg, batch_size=args.block)
        out = solver(linear_problem.LinearProblem(geom, a, a))
        return out.reg_ot_cost, (out.f, out.g, out.n_iters, out.converged)

    fn = jax.jit(jax.value_and_grad(value, argnums=(0, 1), has_aux=True))
    xj, yj = jnp.asarray(x, dtype=args.dtype), jnp.asarray(y, dtype=args.dtype)
    t = time.perf_counter()
    compiled = fn.lower(xj, yj).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    (v, (f, g, its, conv)), (gx, gy) = jax.block_until_ready(compiled(xj, yj))
    seconds = time.perf_counter() - t
    return dict(time=seconds, compile=compile_s, iterations=int(its),
                status="converged" if bool(conv) else "not converged", value=float(v),
                f=np.asarray(f, dtype=np.float64), g=np.asarray(g, dtype=np.float64),
                grad_x=np.asarray(gx, dtype=np.float64), grad_y=np.asarray(gy, dtype=np.float64),
                peak=peak_rss_mb(), baseline_rss=base)


def worker(args):
    x, y = instance(args.n, args.seed)
    out = (work_cvxkit if args.worker == "cvxkit" else work_ott)(x, y, args)
    from cvxkit.solvers.pointcloud import PointCloudPlan

    rows, cols = PointCloudPlan(x, y, out.pop("f"), out.pop("g"), args.reg,
                                block=args.block).marginals()
    out["marginal_err"] = float(np.abs(rows - 1 / args.n).sum() + np.abs(cols - 1 / args.n).sum())
    np.savez(os.path.join(args.outdir, f"{args.worker}-{args.n}-{args.dtype}.npz"),
             grad_x=out.pop("grad_x"), grad_y=out.pop("grad_y"))
    print("RESULT " + json.dumps(out))


# --- the parent ---------------------------------------------------------------------------
def run_one(solver, n, dtype, args, outdir):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", solver, "--n", str(n),
           "--dtype", dtype, "--reg", str(args.reg), "--tol", str(args.tol), "--block",
           str(args.block), "--seed", str(args.seed), "--max-iter", str(args.max_iter),
           "--outdir", outdir] + (["--refine"] if args.refine else [])
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"solver": solver, "n": n, "dtype": dtype, "error": f"timeout {args.timeout} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        return {"solver": solver, "n": n, "dtype": dtype, "error": p.stderr[-2000:]}
    row = {"solver": solver, "n": n, "dtype": dtype, **json.loads(lines[-1][7:]),
           "wall": time.perf_counter() - t}
    return row


def grad_gap(outdir, n, dtype):
    try:
        c = np.load(os.path.join(outdir, f"cvxkit-{n}-{dtype}.npz"))
        o = np.load(os.path.join(outdir, f"ott-{n}-{dtype}.npz"))
    except FileNotFoundError:
        return float("nan")
    num = np.linalg.norm(c["grad_x"] - o["grad_x"]) ** 2 + np.linalg.norm(c["grad_y"] - o["grad_y"]) ** 2
    den = np.linalg.norm(o["grad_x"]) ** 2 + np.linalg.norm(o["grad_y"]) ** 2
    return float(np.sqrt(num / den))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    ap.add_argument("--solvers", nargs="+", default=["cvxkit", "ott"])
    ap.add_argument("--reg", type=float, default=0.01)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-iter", type=int, default=20_000)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    ap.add_argument("--out", default=None)
    ap.add_argument("--refine", action="store_true",
                    help="cvxkit float32: go on in float64 when short of tol (refine=True)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--outdir", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    rows = []
    hdr = (f"{'n':>7} {'dtype':>8} {'solver':>7} {'time s':>8} {'compile s':>9} {'iters':>6} "
           f"{'marg. err':>10} {'value':>12} {'peak MB':>8} {'base MB':>8}  status")
    print(f"reg={args.reg}, tol={args.tol}, block={args.block}, seed={args.seed}")
    print(hdr)
    with tempfile.TemporaryDirectory() as outdir:
        for n in args.sizes:
            for dtype in args.dtypes:
                got = {}
                for solver in args.solvers:
                    r = run_one(solver, n, dtype, args, outdir)
                    rows.append(r)
                    got[solver] = r
                    if "error" in r:
                        print(f"{n:>7} {dtype:>8} {solver:>7}  failed: {r['error'][-300:]}")
                        continue
                    print(f"{n:>7} {dtype:>8} {solver:>7} {r['time']:>8.2f} {r['compile']:>9.2f} "
                          f"{r['iterations']:>6} {r['marginal_err']:>10.2e} {r['value']:>12.6g} "
                          f"{r['peak']:>8.0f} {r['baseline_rss']:>8.0f}  {r['status']}", flush=True)
                c, o = got.get("cvxkit", {}), got.get("ott", {})
                if "time" in c and "time" in o:
                    gap = grad_gap(outdir, n, dtype)
                    print(f"{'':>7} {dtype:>8} OTT time / cvxkit time = {o['time'] / c['time']:.2f}; "
                          f"gradients differ by {gap:.1e} (relative)", flush=True)
                    c["ott_time_ratio"], c["grad_gap"] = o["time"] / c["time"], gap
    if args.out:
        env = {"python": sys.version.split()[0], "machine": platform.machine(),
               "cpus": os.cpu_count()}
        write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
