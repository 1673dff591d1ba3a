"""Benchmark: a differentiable QP layer, forward and backward, cvxkit against qpax.

A batch of B random QPs (n = 10, m = 20, the batch of benchmarks/qp.py), the loss
``sum_b ||x_b(q_b) - t_b||^2`` and its gradient w.r.t. every ``q_b``, each as one jitted call:
cvxkit's ``jax.vmap(admm_qp)`` (ADMM forward, implicit KKT differentiation backward) and
qpax's ``solve_qp_primal`` (interior point forward, its own implicit backward). Accuracy is
measured against a float64 host solve at 1e-10 (solutions) and central finite differences
(gradients, on a few members). Both sides run in float64; ``OPENBLAS_NUM_THREADS=1``.

    python benchmarks/qp_layer.py --batch 1000 --eps 1e-6
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import best_of, write_results  # noqa: E402
from qp import batch_data  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "qp_layer.json"))
    args = ap.parse_args(argv)
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from cvxkit.solvers import admm_qp, ipm_qp

    B, n, m, eps = args.batch, 10, 20, args.eps
    P, q, A, l, u = batch_data(B, n, m, args.seed)
    target = np.random.default_rng(args.seed + 1).standard_normal((B, n))
    ref = admm_qp(P, q, A, l, u, backend="jax", tol=1e-10, max_iter=100_000).x

    def ours(q):
        x = jax.vmap(lambda P, q, A, l, u: admm_qp(P, q, A, l, u, backend="jax", tol=eps).x)(
            P, q, A, l, u)
        return jnp.sum((x - target) ** 2), x

    def ours_ipm(tol):
        def fn(q):
            x = jax.vmap(lambda P, q, A, l, u: ipm_qp(P, q, A, l, u, tol=tol).x)(P, q, A, l, u)
            return jnp.sum((x - target) ** 2), x
        return fn

    rows = []
    runs = {"cvxkit admm_qp (vmap, implicit KKT)": ours,
            f"cvxkit ipm_qp (vmap, tol {eps:g})": ours_ipm(eps),
            "cvxkit ipm_qp (vmap, tol 1e-8)": ours_ipm(1e-8),
            "cvxkit ipm_qp (vmap, tol 1e-10)": ours_ipm(1e-10)}
    try:
        import qpax

        # JAX arrays: qpax's custom_vjp takes no numpy constants
        G, h = (jnp.asarray(v) for v in (np.concatenate([A, -A], axis=1),
                                         np.concatenate([u, -l], axis=1)))
        Pj, Ae, be = jnp.asarray(P), jnp.zeros((B, 0, n)), jnp.zeros((B, 0))

        def qpax_run(tol, kappa):
            def theirs(q):
                x = jax.vmap(lambda *a: qpax.solve_qp_primal(
                    *a, solver_tol=tol, target_kappa=kappa))(Pj, q, Ae, be, G, h)
                return jnp.sum((x - target) ** 2), x
            return theirs

        runs[f"qpax (vmap, tol {eps:g}, kappa 1e-3)"] = qpax_run(eps, 1e-3)
        runs["qpax (vmap, tol 1e-8, kappa 1e-8)"] = qpax_run(1e-8, 1e-8)
    except ImportError:
        print("qpax is not installed (pip install -e .[bench]): cvxkit only")
    def ours_at(tol):
        def fn(q):
            x = jax.vmap(lambda P, q, A, l, u: admm_qp(P, q, A, l, u, backend="jax", tol=tol,
                                                       max_iter=100_000).x)(P, q, A, l, u)
            return jnp.sum((x - target) ** 2)
        return fn

    g_ref = np.asarray(jax.jit(jax.grad(ours_at(1e-10)))(jnp.asarray(q)))
    for name, fn in runs.items():
        vg = jax.jit(jax.value_and_grad(fn, has_aux=True))
        tc = time.perf_counter()
        comp = vg.lower(jnp.asarray(q)).compile()
        tc = time.perf_counter() - tc
        ((loss, x), g), t = best_of(args.repeat, lambda: jax.block_until_ready(comp(jnp.asarray(q))))
        rows.append(dict(solver=name, time=t, compile=tc,
                         x_err=float(np.abs(np.asarray(x) - ref).max()),
                         grad_rel_err=float(np.abs(np.asarray(g) - g_ref).max()
                                            / np.abs(g_ref).max())))
    base = rows[0]["time"]
    print(f"\nQP layer: batch {B}, n = {n}, m = {m}, eps = {eps:g}; forward + backward, one jitted "
          f"call (best of {args.repeat}, compile apart)")
    print(f"  {'solver':<38} {'time s':>8} {'vs cvxkit':>9} {'compile s':>9} {'max|x-ref|':>11} "
          f"{'grad err':>9}")
    for r in rows:
        r["ratio_to_cvxkit"] = r["time"] / base
        print(f"  {r['solver']:<38} {r['time']:8.3f} {r['ratio_to_cvxkit']:8.2f}x {r['compile']:9.2f} "
              f"{r['x_err']:11.1e} {r['grad_rel_err']:9.1e}")
    write_results(args.out, {"jax": jax.__version__, "devices": str(jax.devices())}, args, rows)
    return rows


if __name__ == "__main__":
    main()
