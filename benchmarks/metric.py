"""Benchmark: metric nearness and correlation clustering by Project and Forget, against CVXPY.

Instances (seeded, ``np.random.default_rng(seed)``):

* L2 metric nearness: ``D`` is the upper triangle of ``rng.random((n, n))`` mirrored (zero
  diagonal, entries uniform in [0, 1)), unit weights.
* Correlation clustering: a planted partition of ``n`` nodes into ``k`` equal clusters on the
  complete signed graph; each pair is "similar" (weight 1 in ``W_plus``) when its nodes share a
  cluster, except that every pair's sign is flipped with probability ``noise``
  (``CorrelationClustering.from_graph(A)``: the other pairs are "dissimilar", weight 1).

Protocol:

A. For each n in ``--cvxpy-sizes``: ``MetricNearness(D).to_cvxpy()`` solved by each of
   ``--solvers`` (Clarabel with its default settings; SCS with ``eps_abs = eps_rel = --tol``
   and ``max_iters = 100000``) against ``MetricNearness(D).solve(method="project_forget",
   tol=--tol)``. The CVXPY time is the wall time of building the model plus ``solve`` (so it
   includes CVXPY's compilation, which is also reported in its own column).
B. Project and Forget alone for each n in ``--pf-sizes``.
C. Correlation clustering (``--cc-n``, ``--cc-k``, one row per ``--cc-noise``): LP value,
   certified lower bound, cost of the rounded clustering and of the planted partition.

Every run happens in its own fresh Python subprocess (``subprocess.run`` with ``--timeout``
for the CVXPY runs, ``--pf-timeout`` for the others: a stalled run is killed and reported as a
timeout). Peak memory is that child's peak resident set size (``VmHWM`` on Linux, see
`peak_rss_mb`): the whole interpreter (imports and warm-up included), so a baseline child that
only imports and warms up is measured too. Project and Forget children first solve a tiny instance, so numba compilation
(or loading its on-disk cache) is not timed.

Accuracy is measured the same way for every run, from the returned matrix ``X``:
``viol = max(0, max_ijk X_ij - X_ik - X_kj, -min X) / max D`` and the objective
``0.5 * sum_{i<j} (X_ij - D_ij)^2``. ``gap vs LB`` is ``(objective - LB) / LB`` with ``LB`` the
certified lower bound (dual value) of the Project and Forget run at the same n: every metric has
objective >= LB, so a small value proves near-optimality. A CVXPY run is "comparable" when its
status is optimal, ``viol <= 10 tol`` and ``|gap vs LB| <= 10 tol``; the speedup is
(fastest comparable CVXPY time) / (Project and Forget time).

Timings on a small shared machine are noisy: the script prints the CPU count and load average.
``--pf-configs`` runs every Project and Forget case in several environments (extra environment
variables such as ``NUMBA_NUM_THREADS=1`` or ``OMP_WAIT_POLICY=passive``), to compare threading
settings of the numba kernels. (Parallel kernels were measured this way: on a shared machine
with busy cores, libgomp's spinning worker threads made them up to 30 times slower than serial
ones, and the kernels are serial since.)

    python benchmarks/metric.py --out benchmarks/results/metric.json
    python benchmarks/metric.py --skip-cvxpy --pf-sizes 500 1000 2000 --pf-configs default NUMBA_NUM_THREADS=1
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
from common import write_results


# --- instances ------------------------------------------------------------------------------

def instance(n, seed):
    rng = np.random.default_rng(seed)
    D = np.triu(rng.random((n, n)), 1)
    return D + D.T


def planted_signed(n, k, noise, seed):
    """``(A, labels)``: adjacency of the similar pairs of a noisy planted partition."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) * k // n
    same = labels[:, None] == labels[None, :]
    flip = np.triu(rng.random((n, n)) < noise, 1)
    A = np.triu(same, 1) ^ flip
    A = (A | A.T).astype(np.float64)
    return A, labels


def metric_accuracy(X, D):
    from cvxkit.problems.metric import max_triangle_violation

    X = np.asarray(X, dtype=np.float64)
    viol = max(0.0, max_triangle_violation(X), float(-X.min()))
    return viol / D.max()


def peak_rss_mb():
    """Peak resident memory of this process, MiB.

    Linux: ``VmHWM`` of /proc/self/status (the high-water mark of this process image).
    ``getrusage(RUSAGE_SELF).ru_maxrss`` is not used there because Linux carries it across
    ``fork`` + ``exec``: a child would report at least the parent's size at the fork.
    Elsewhere: ``ru_maxrss`` (bytes on macOS, KiB otherwise)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


# --- child processes: one run each ----------------------------------------------------------

def _warm_numba():
    """Compile (or load from numba's disk cache) every kernel before anything is timed."""
    from cvxkit.problems import CorrelationClustering, MetricNearness
    MetricNearness(instance(8, 0)).solve(tol=1e-6)
    A, _ = planted_signed(8, 2, 0.0, 0)
    CorrelationClustering.from_graph(A).solve(tol=1e-6)
    metric_accuracy(np.zeros((3, 3)), np.ones((3, 3)))


def child_pf(spec):
    from cvxkit.problems import MetricNearness

    _warm_numba()
    D = instance(spec["n"], spec["seed"])
    t = time.perf_counter()
    res = MetricNearness(D).solve(method="project_forget", tol=spec["tol"],
                                  max_iter=spec["max_iter"])
    elapsed = time.perf_counter() - t
    return dict(time=elapsed, status=res.status.value, objective=res.objective,
                lower_bound=res.info["lower_bound"], viol=metric_accuracy(res.x, D),
                gap=res.dual_residual, iterations=res.iterations, sweeps=res.info["sweeps"],
                peak_active=res.info["peak_active"], active=res.info["active"],
                found=res.info["found"])


def child_cvxpy(spec):
    import cvxpy as cp

    from cvxkit.problems import MetricNearness

    solver, tol = spec["solver"], spec["tol"]
    opts = {"SCS": dict(eps_abs=tol, eps_rel=tol, max_iters=100_000)}.get(solver, {})
    D = instance(spec["n"], spec["seed"])
    prob = MetricNearness(D)
    t = time.perf_counter()
    model, X = prob.to_cvxpy()
    try:
        model.solve(solver=solver, **opts)
    except cp.SolverError as exc:
        return dict(time=time.perf_counter() - t, status=f"solver error: {exc}")
    elapsed = time.perf_counter() - t
    if X.value is None:
        return dict(time=elapsed, status=model.status)
    x = np.asarray(X.value)
    stats = model.solver_stats
    return dict(time=elapsed, compile=model.compilation_time, solver_time=stats.solve_time,
                iterations=stats.num_iters, status=model.status, objective=prob.objective(x),
                viol=metric_accuracy(x, D),
                constraints=int(sum(c.size for c in model.constraints)))


def child_cc(spec):
    from cvxkit.problems import CorrelationClustering

    _warm_numba()
    A, labels = planted_signed(spec["n"], spec["k"], spec["noise"], spec["seed"])
    prob = CorrelationClustering.from_graph(A)
    t = time.perf_counter()
    res = prob.solve(method="project_forget", tol=spec["tol"], max_iter=spec["max_iter"])
    elapsed = time.perf_counter() - t
    found = res.info["labels"]
    return dict(time=elapsed, status=res.status.value, lp_value=res.info["lp_value"],
                lower_bound=res.info["lower_bound"], rounded_cost=res.info["clustering_cost"],
                planted_cost=prob.clustering_cost(labels), clusters=int(len(set(found))),
                same_as_planted=bool(same_partition(found, labels)),
                iterations=res.iterations, prox_steps=res.info["prox_steps"],
                sweeps=res.info["sweeps"], peak_active=res.info["peak_active"],
                viol=res.primal_residual, gap=res.dual_residual)


def child_baseline(spec):
    if spec["what"] == "cvxpy":
        import cvxpy  # noqa: F401

        from cvxkit.problems import MetricNearness

        model, _ = MetricNearness(instance(5, 0)).to_cvxpy()
        model.solve(solver=spec["solver"])
        metric_accuracy(np.zeros((3, 3)), np.ones((3, 3)))  # loads numba, as the real runs do
    else:
        _warm_numba()
    return {}


def same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :])


CHILDREN = {"pf": child_pf, "cvxpy": child_cvxpy, "cc": child_cc, "baseline": child_baseline}


def child_main(spec_json):
    spec = json.loads(spec_json)
    out = CHILDREN[spec["kind"]](spec)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out))


def parse_config(text):
    """``"default"`` -> {}; ``"A=1,B=x"`` -> {"A": "1", "B": "x"} (environment of a child)."""
    if text == "default":
        return {}
    pairs = [item.split("=", 1) for item in text.split(",")]
    if any(len(p) != 2 or not p[0] for p in pairs):
        raise argparse.ArgumentTypeError(f"expected 'default' or NAME=VALUE[,NAME=VALUE], got {text!r}")
    return dict(pairs)


def run_child(spec, timeout, config=None):
    """Run one spec in a fresh interpreter; a dict with its results (or the failure).

    ``config``: extra environment variables of the child (see ``--pf-configs``)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    env = {**os.environ, **(config or {})}
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(spec, status=f"timeout ({timeout:g} s)", time=time.perf_counter() - t)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return dict(spec, status=f"failed (rc {proc.returncode}): {' | '.join(tail)}",
                    time=time.perf_counter() - t)
    return dict(spec, **json.loads(lines[-1][len("RESULT "):]))


# --- output ---------------------------------------------------------------------------------

def environment():
    import numba

    info = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "numpy": np.__version__, "numba": numba.__version__,
            "numba_threads": numba.config.NUMBA_NUM_THREADS,
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}
    try:
        import cvxpy as cp

        info["cvxpy"] = cp.__version__
        for name in ("clarabel", "scs"):
            try:
                info[name] = __import__(name).__version__
            except ImportError:
                pass
    except ImportError:
        info["cvxpy"] = "not importable (Part A skipped)"
    import cvxkit
    info["cvxkit"] = cvxkit.__version__
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True,  # noqa: E731
                                        text=True, timeout=30).stdout.strip()
        dirty = git("status", "--porcelain", "solvers/project_forget.py",
                    "solvers/metric_kernels.py", "problems/metric.py")
        info["git"] = git("rev-parse", "--short", "HEAD") + (" (solver files modified)" if dirty
                                                             else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def fmt(v, spec="", missing="-"):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return missing
    return format(v, spec)


def print_md(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


def pf_label(config, base="P&F"):
    return base if not config else base + " [" + ",".join(f"{k}={v}" for k, v in config.items()) + "]"


def converged(r):
    return r.get("status") in ("optimal", "optimal_inaccurate")


def part_a(args, env_note):
    rows = []
    for n in args.cvxpy_sizes:
        pfs = []
        for config in args.pf_configs:
            pf = run_child(dict(kind="pf", n=n, seed=args.seed, tol=args.tol,
                                max_iter=args.max_iter), args.pf_timeout, config)
            pf.update(method=pf_label(config), pf=True)
            pfs.append(pf)
        group = list(pfs)
        for solver in args.solvers:
            r = run_child(dict(kind="cvxpy", n=n, seed=args.seed, tol=args.tol, solver=solver),
                          args.timeout)
            r["method"] = f"CVXPY + {solver}"
            group.append(r)
        lb = next((pf["lower_bound"] for pf in pfs if converged(pf)), None)
        if lb is None:  # P&F failed: fall back to the smallest objective of a converged run
            lb = min((r["objective"] for r in group if converged(r)), default=None)
        for r in group:
            r["n"] = n
            if lb and "objective" in r:
                r["gap_vs_lb"] = (r["objective"] - lb) / lb
            if converged(pfs[0]) and converged(r):
                r["time_vs_pf"] = r["time"] / pfs[0]["time"]
            r["comparable"] = bool(converged(r) and r.get("viol", np.inf) <= 10 * args.tol
                                   and abs(r.get("gap_vs_lb", np.inf)) <= 10 * args.tol)
        cands = [r for r in group if r["comparable"] and not r.get("pf")]
        for pf in pfs:
            if cands and converged(pf):
                best = min(cands, key=lambda r: r["time"])
                pf["speedup"] = best["time"] / pf["time"]
                pf["speedup_vs"] = best["method"]
        for r in group:
            print(f"  n={n:4d} {r['method']:<20} {fmt(r.get('time'), '.3f'):>9} s  "
                  f"{r['status']}", flush=True)
        rows += group
    print(f"\n### Part A: L2 metric nearness, CVXPY vs Project and Forget (tol={args.tol:g})\n")
    print(env_note)
    header = ["n", "method", "time s", "CVXPY compile s", "objective", "gap vs LB",
              "viol / max D", "peak RSS MB", "time / first P&F", "status"]
    table = []
    for r in rows:
        table.append([r["n"], r["method"], fmt(r.get("time"), ".3g"), fmt(r.get("compile"), ".2f"),
                      fmt(r.get("objective"), ".10g"), fmt(r.get("gap_vs_lb"), ".1e"),
                      fmt(r.get("viol"), ".1e"), fmt(r.get("peak_rss_mb"), ".0f"),
                      fmt(r.get("time_vs_pf"), ".3g"), r["status"]])
    print_md(header, table)
    print("Speedup of Project and Forget over the fastest CVXPY solver of comparable accuracy "
          f"(converged, viol and |gap vs LB| <= {10 * args.tol:g}):\n")
    table = [[r["n"], r["method"], fmt(r.get("time"), ".3g"), r.get("speedup_vs", "none comparable"),
              fmt(r.get("speedup"), ".3g") + ("x" if "speedup" in r else "")]
             for r in rows if r.get("pf")]
    print_md(["n", "method", "P&F time s", "fastest comparable CVXPY", "speedup"], table)
    return rows


def part_b(args, env_note):
    rows = []
    for n in args.pf_sizes:
        for config in args.pf_configs:
            r = run_child(dict(kind="pf", n=n, seed=args.seed, tol=args.tol,
                               max_iter=args.max_iter), args.pf_timeout, config)
            r.update(n=n, method=pf_label(config), pf=True,
                     triangles=3 * (n * (n - 1) * (n - 2) // 6))
            print(f"  n={n:5d} {r['method']} {fmt(r.get('time'), '.2f'):>9} s  {r['status']}",
                  flush=True)
            rows.append(r)
    print(f"\n### Part B: Project and Forget alone, L2 metric nearness (tol={args.tol:g})\n")
    print(env_note)
    header = ["n", "method", "time s", "outer its", "sweeps", "peak active", "final active",
              "peak / all triangles", "viol / max D", "rel. gap", "peak RSS MB", "status"]
    table = [[r["n"], r["method"], fmt(r.get("time"), ".3g"), fmt(r.get("iterations")),
              fmt(r.get("sweeps")),
              fmt(r.get("peak_active")), fmt(r.get("active")),
              fmt(r["peak_active"] / r["triangles"] if "peak_active" in r else None, ".2%"),
              fmt(r.get("viol"), ".1e"), fmt(r.get("gap"), ".1e"), fmt(r.get("peak_rss_mb"), ".0f"),
              r["status"]] for r in rows]
    print_md(header, table)
    return rows


def part_c(args, env_note):
    rows = []
    for noise in args.cc_noise:
        for config in args.pf_configs:
            r = run_child(dict(kind="cc", n=args.cc_n, k=args.cc_k, noise=noise, seed=args.seed,
                               tol=args.tol, max_iter=args.max_iter), args.pf_timeout, config)
            r.update(method=pf_label(config, "P&F, L1 LP"), pf=True)
            print(f"  CC n={args.cc_n} noise={noise:g} {r['method']} "
                  f"{fmt(r.get('time'), '.2f'):>9} s  {r['status']}", flush=True)
            rows.append(r)
    print(f"\n### Part C: correlation clustering LP, planted partition (tol={args.tol:g})\n")
    print(env_note)
    header = ["n", "clusters", "sign noise", "method", "time s", "outer its", "prox steps", "LP value",
              "certified LB", "rounded cost", "planted cost", "rounded / LB",
              "rounded = planted", "peak RSS MB", "status"]
    table = [[r["n"], r["k"], r["noise"], r["method"], fmt(r.get("time"), ".3g"), fmt(r.get("iterations")),
              fmt(r.get("prox_steps")), fmt(r.get("lp_value"), ".6f"),
              fmt(r.get("lower_bound"), ".6f"), fmt(r.get("rounded_cost"), ".0f"),
              fmt(r.get("planted_cost"), ".0f"),
              fmt(r["rounded_cost"] / r["lower_bound"] if "rounded_cost" in r else None, ".3f"),
              fmt(r.get("same_as_planted")), fmt(r.get("peak_rss_mb"), ".0f"), r["status"]]
             for r in rows]
    print_md(header, table)
    return rows


def main(argv=None):
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(sys.argv[2])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cvxpy-sizes", type=int, nargs="+", default=[10, 20, 40, 60, 100])
    p.add_argument("--pf-sizes", type=int, nargs="+", default=[100, 200, 500, 1000])
    p.add_argument("--solvers", nargs="+", default=["CLARABEL", "SCS"])
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--max-iter", type=int, default=5000, help="P&F outer iterations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-cvxpy", action="store_true", help="skip Part A")
    p.add_argument("--skip-cc", action="store_true", help="skip Part C")
    p.add_argument("--cc-n", type=int, default=200)
    p.add_argument("--cc-k", type=int, default=4)
    p.add_argument("--cc-noise", type=float, nargs="+", default=[0.1, 0.2])
    p.add_argument("--pf-configs", nargs="+", type=parse_config, default=[{}],
                   help="one P&F run per value: 'default' (the environment as is) or extra "
                        "environment variables NAME=VALUE[,NAME=VALUE], e.g. --pf-configs default "
                        "OMP_WAIT_POLICY=passive NUMBA_NUM_THREADS=1")
    p.add_argument("--timeout", type=float, default=600, help="seconds per CVXPY run")
    p.add_argument("--pf-timeout", type=float, default=3600,
                   help="seconds per Project and Forget run")
    p.add_argument("--out", help="write all rows as JSON here (e.g. benchmarks/results/metric.json)")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    env = environment()
    print("environment:")
    for k, v in env.items():
        print(f"  {k}: {v}")
    baselines = {"P&F": run_child(dict(kind="baseline", what="pf"), args.pf_timeout)}
    if not args.skip_cvxpy:
        for solver in args.solvers:
            baselines[f"CVXPY + {solver}"] = run_child(
                dict(kind="baseline", what="cvxpy", solver=solver), args.timeout)
    env["baseline_rss_mb"] = {k: v.get("peak_rss_mb") for k, v in baselines.items()}
    env_note = (f"{env['cpus']} CPU cores, load average {env['load_average_at_start']} at start: "
                "timings on a shared machine are noisy. Peak RSS is the whole child process; "
                "baseline (imports + warm-up only): "
                + ", ".join(f"{k} {fmt(v, '.0f')} MB" for k, v in env["baseline_rss_mb"].items())
                + ".\n")
    print()
    rows = []
    if not args.skip_cvxpy:
        rows += part_a(args, env_note)
    if args.pf_sizes:
        rows += part_b(args, env_note)
    if not args.skip_cc and args.cc_noise:
        rows += part_c(args, env_note)
    env["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    env["git_at_end"] = environment().get("git")
    if env["git_at_end"] != env.get("git"):
        print(f"WARNING: the solver changed during the run: {env.get('git')} -> {env['git_at_end']}")
    print(f"load average at end: {env['load_average_at_end']}; total {time.perf_counter() - t0:.0f} s")
    if args.out:
        write_results(args.out, env, args, rows)


if __name__ == "__main__":
    main()
