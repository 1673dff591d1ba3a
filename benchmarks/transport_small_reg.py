"""Benchmark: entropic OT at small regularization (issue 22): Sinkhorn-Newton-Sparse against
Sinkhorn (cvxkit, POT plain and log, OTT-JAX) and exact OT (``ot.emd``), all stopped at the
same L1 marginal error.

Instances (as benchmarks/transport.py): n points uniform in the unit square on each side
(``np.random.default_rng(seed)``), uniform weights, squared Euclidean cost ``C = ot.dist(x, y)``,
``reg = rel * mean(C)`` for ``rel`` in ``--regs`` (default 0.01, 0.001, 0.0001).

Stopping, at the target L1 marginal error ``e = ||P1 - a||_1 + ||P^T 1 - b||_1`` (default
1e-8; the mass is 1, so relative = absolute):

* cvxkit ``sinkhorn_newton_sparse`` and ``sinkhorn``: ``tol=e`` (their stopping error is this
  one, confirmed in float64 on the plan returned);
* OTT-JAX ``Sinkhorn(threshold=e, norm_error=1)``: the L1 error of the marginal the last update
  did not fit (the other one is exact), i.e. the same error;
* POT ``sinkhorn`` / ``sinkhorn_log``: POT tests the 2-norm of the column violation every 10
  iterations; ``stopThr = e / sqrt(n)`` guarantees an L1 error <= e (it may go a little
  further: the error reached is printed);
* ``ot.emd``: exact (network simplex).

Every iterative method gets ``--time-limit`` seconds (cvxkit: ``time_limit``; POT and OTT: an
iteration cap from a short timed run); a run stopped there is marked in the note column with
the error it reached. Times: wall clock, best of ``--repeat`` (JAX: compiled first, compile time
apart), and the process CPU time of the same call (robust on a shared machine). Columns:
``L1 err`` reached, ``<C,P>``, ``obj`` the entropic objective ``<C,P> + reg sum P log P``
computed here for every plan, ``|P-P*|`` the largest entry difference with the SNS plan
relative to its largest entry, ``t/SNS`` the wall-time ratio.

``--paper``: the experiment of Tang et al. (ICLR 2024, Table 1, "random assignment") as the
digest describes it: n = 500, ``C ~ U[0, 1]`` i.i.d., uniform marginals, ``eta = 1200``
(``reg = 1/1200``), no epsilon scaling, 20 Sinkhorn iterations then Newton, run to machine
accuracy (``tol=1e-14``), against Sinkhorn iteration counts.

    OPENBLAS_NUM_THREADS=1 python benchmarks/transport_small_reg.py --sizes 2000 --out sns.json
    OPENBLAS_NUM_THREADS=1 python benchmarks/transport_small_reg.py --paper
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import ot  # noqa: E402

from common import write_results  # noqa: E402
from transport import environment, instance, l1_error, ott_sinkhorn, x64  # noqa: E402

from cvxkit.solvers.sinkhorn import sinkhorn  # noqa: E402
from cvxkit.solvers.sinkhorn_newton_sparse import sinkhorn_newton_sparse  # noqa: E402

if ott_sinkhorn is not None:
    import jax
    import jax.numpy as jnp
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem


def timed(repeat, fn):
    """``(output, best wall time, CPU time of that call)`` over ``repeat`` calls."""
    best = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        w, c = time.perf_counter() - w, time.process_time() - c
        if best is None or w < best[1]:
            best = (out, w, c)
    return best


def run_cvxkit(solver, a, b, C, reg, target, args, repeat=1, **kw):
    def call():
        return solver(a, b, C, reg, tol=target, max_iter=10**7, time_limit=args.time_limit, **kw)

    cold = call() if kw.get("backend") == "jax" else None
    r, wall, cpu = timed(repeat, call)
    its = r.iterations
    if "newton_steps" in r.info:
        its = f"{r.info['sinkhorn_iterations']}+{r.info['newton_steps']}"
    row = dict(P=r.x, time=wall, cpu=cpu, iterations=its,
               note="" if r.converged else f"status {r.status.value}")
    if cold is not None:
        row["compile"] = cold.compile_time
    return row


def run_pot(a, b, C, reg, method, target, args):
    stop = target / math.sqrt(len(b))

    def call(cap):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            P, log = ot.sinkhorn(a, b, C, reg, method=method, stopThr=stop, numItermax=cap,
                                 log=True)
        return P, log, {str(w.message) for w in caught}

    (_, _, _), probe, _ = timed(1, lambda: call(20))
    cap = max(20, int(args.time_limit / max(probe / 20, 1e-9)))
    (P, log, msgs), wall, cpu = timed(1, lambda: call(cap))
    note = ""
    if not np.isfinite(P).all() or any("umerical error" in m for m in msgs):
        note = "FAILED (NaN/underflow)"
    elif int(log["niter"]) >= cap - 1 and l1_error(P, a, b) > target:
        note = f"iteration cap {cap} (time limit)"
    return dict(P=P, time=wall, cpu=cpu, iterations=int(log["niter"]), note=note)


def run_ott(x, y, reg, target, args):
    with x64():
        xj, yj = jnp.asarray(x), jnp.asarray(y)

        def compiled(cap):
            solver = ott_sinkhorn.Sinkhorn(threshold=target, max_iterations=cap, norm_error=1)

            def solve(x, y):
                out = solver(linear_problem.LinearProblem(pointcloud.PointCloud(x, y, epsilon=reg)))
                return out.matrix, out.n_iters, out.converged

            t = time.perf_counter()
            fn = jax.jit(solve).lower(xj, yj).compile()
            return fn, time.perf_counter() - t

        probe, _ = compiled(100)
        jax.block_until_ready(probe(xj, yj))
        _, per, _ = timed(1, lambda: jax.block_until_ready(probe(xj, yj)))
        cap = max(100, int(args.time_limit / max(per / 100, 1e-9)) // 10 * 10)
        fn, compile_time = compiled(cap)
        (P, its, conv), wall, cpu = timed(1, lambda: jax.block_until_ready(fn(xj, yj)))
    note = "" if bool(conv) else f"iteration cap {cap} (time limit)"
    return dict(P=np.asarray(P), time=wall, cpu=cpu, compile=compile_time,
                iterations=int(its), note=note)


def run_emd(a, b, C, args):
    P, wall, cpu = timed(args.repeat, lambda: ot.emd(a, b, C, numItermax=10**8))
    return dict(P=P, time=wall, cpu=cpu, iterations="-", note="exact (reg = 0)")


def objective(P, C, reg):
    Pp = np.maximum(P, 0.0)
    return float(np.vdot(C, P) + reg * np.sum(Pp * np.log(np.where(Pp > 0, Pp, 1.0))))


def bench(args, n, rel, a, b, x, y, C):
    reg = rel * float(C.mean())
    e = args.target
    want = set(args.methods)
    rows = [dict(method="cvxkit SNS numpy", **run_cvxkit(
        sinkhorn_newton_sparse, a, b, C, reg, e, args, repeat=args.repeat))]
    if "sns-jax" in want:
        rows.append(dict(method="cvxkit SNS jax", **run_cvxkit(
            sinkhorn_newton_sparse, a, b, C, reg, e, args, repeat=args.repeat, backend="jax")))
    if "sinkhorn" in want:
        rows.append(dict(method="cvxkit sinkhorn numpy",
                         **run_cvxkit(sinkhorn, a, b, C, reg, e, args)))
    if "pot" in want:
        rows.append(dict(method="POT sinkhorn", **run_pot(a, b, C, reg, "sinkhorn", e, args)))
    if "pot-log" in want:
        rows.append(dict(method="POT sinkhorn_log",
                         **run_pot(a, b, C, reg, "sinkhorn_log", e, args)))
    if "ott" in want and ott_sinkhorn is not None:
        rows.append(dict(method="OTT sinkhorn", **run_ott(x, y, reg, e, args)))
    if "emd" in want:
        rows.append(dict(method="POT emd", **run_emd(a, b, C, args)))
    ref = rows[0]["P"]
    for r in rows:
        P = r.pop("P")
        r.update(n=n, reg=f"{rel:g}*mean(C)", target=e, l1_error=l1_error(P, a, b),
                 iterations=str(r["iterations"]),
                 cost=float(np.vdot(C, P)), objective=objective(P, C, reg),
                 plan_diff=float(np.abs(P - ref).max() / ref.max()),
                 time_vs_sns=r["time"] / rows[0]["time"])
        if r["method"] != "POT emd" and r["l1_error"] > e * (1 + 1e-9):
            r["note"] = (r["note"] + " ABOVE TARGET").strip()
        print(f"  {r['method']:<22} {r['time']:8.3f} s", flush=True)
    return rows


#: the table's columns: title, format spec (its width also aligns the title), value of a row
COLUMNS = [("n", ">5", "n"), ("reg", ">13", "reg"), ("method", "<22", "method"),
           ("time s", ">8.3f", "time"), ("cpu s", ">8.3f", "cpu"), ("compile", ">7.2f", "compile"),
           ("iters", ">11", "iterations"), ("L1 err", ">8.1e", "l1_error"),
           ("<C,P>", ">13.9f", "cost"), ("obj", ">13.9f", "objective"),
           ("|P-P*|", ">8.1e", "plan_diff"), ("t/SNS", ">7.2f", "time_vs_sns"),
           ("note", "<0", "note")]


def print_table(rows):
    def width(spec):
        return spec[0] + spec[1:].split(".")[0].rstrip("fe")

    print(" ".join(format(title, width(spec)) for title, spec, _ in COLUMNS))
    for r in rows:
        cells = []
        for _, spec, key in COLUMNS:
            v = r.get(key)
            plain = v is None or isinstance(v, str)
            cells.append(format("-" if v is None else v, width(spec) if plain else spec))
        print(" ".join(cells))


def paper(args):
    """Tang et al.'s random-assignment case (see the module docstring)."""
    n, reg = 500, 1 / 1200
    C = np.random.default_rng(args.seed).random((n, n))
    a = np.full(n, 1 / n)
    rows = []
    for tol in (1e-10, 1e-14):
        r, wall, _ = timed(args.repeat, lambda: sinkhorn_newton_sparse(
            a, a, C, reg, tol=tol, eps_init=reg, warmup_iter=20, switch_tol=1e-300))
        rows.append((f"SNS (N1 = 20), tol {tol:g}", r, wall,
                     f"{r.info['sinkhorn_iterations']} + {r.info['newton_steps']}"))
    r, wall, _ = timed(1, lambda: sinkhorn(a, a, C, reg, tol=1e-10, eps_init=reg,
                                           max_iter=10**6, time_limit=args.time_limit))
    rows.append(("cvxkit sinkhorn, tol 1e-10", r, wall, str(r.iterations)))
    print(f"random assignment, n = {n}, C ~ U[0,1], reg = 1/1200 (no epsilon scaling)")
    print(f"{'method':<30} {'status':<12} {'iterations':>12} {'rel. L1 err':>12} {'time s':>8}")
    for name, r, wall, its in rows:
        print(f"{name:<30} {r.status.value:<12} {its:>12} "
              f"{r.info['relative_marginal_error']:12.1e} {wall:8.3f}")
    return [dict(method=name, status=r.status.value, iterations=its, time=wall,
                 l1_error=r.info["relative_marginal_error"]) for name, r, wall, its in rows]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2000])
    p.add_argument("--regs", type=float, nargs="+", default=[0.01, 0.001, 0.0001],
                   help="reg = rel * mean(C) for each rel")
    p.add_argument("--target", type=float, default=1e-8, help="L1 marginal error to reach")
    p.add_argument("--time-limit", type=float, default=180.0,
                   help="seconds per iterative run (POT/OTT: an iteration cap)")
    p.add_argument("--repeat", type=int, default=2, help="timed runs of the fast methods")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+",
                   default=["sns-jax", "sinkhorn", "pot", "pot-log", "ott", "emd"],
                   help="besides SNS numpy: sns-jax sinkhorn pot pot-log ott emd")
    p.add_argument("--paper", action="store_true", help="only the paper's random assignment")
    p.add_argument("--out", help="write all rows as JSON here")
    args = p.parse_args(argv)

    env = environment()
    env["XLA_FLAGS"] = os.environ.get("XLA_FLAGS")
    env["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS")
    env["load_average"] = os.getloadavg()
    print("environment:")
    for k, v in env.items():
        print(f"  {k}: {v}")
    if args.paper:
        rows = paper(args)
    else:
        rows = []
        for n in args.sizes:
            a, b, x, y, C = instance(n, args.seed)
            for rel in args.regs:
                print(f"n={n} reg={rel:g}*mean(C):", flush=True)
                rows += bench(args, n, rel, a, b, x, y, C)
        print()
        print_table(rows)
    env["load_average_end"] = os.getloadavg()
    print(f"load average at the end: {env['load_average_end']}")
    if args.out:
        write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
