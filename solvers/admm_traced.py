r"""`cvxkit.solvers.admm_qp` inside JAX programs: ``jax.jit``, ``jax.vmap`` and ``jax.grad``.

When any of ``P, q, A, l, u`` is a JAX tracer, `admm_qp` calls `solve`: the same set-up
(Ruiz scaling, factorization), the same ADMM blocks and the same polishing as the host path,
as one pure JAX function (`cvxkit.solvers.driver.while_solve`), returning a `Result` whose array
fields are traced (``status`` an integer code: ``Status(int(res.status))``).

**Gradients** come from the implicit function theorem on the KKT conditions at the solution
(`cvxkit.solvers.implicit.root_vjp`; Amos & Kolter, OptNet, ICML 2017), never by unrolling. With
$y > 0$ on rows whose upper bound is active and $y < 0$ on lower-active rows, the solution
$(x, y)$ solves

$$
Px + q + A^\top y = 0,\qquad A_i x = u_i \ (y_i > 0),\qquad A_i x = l_i\ (y_i < 0),\qquad
y_i = 0 \ \text{otherwise},
$$

an equation in $(x, y)$ whose Jacobian is nonsingular at a strictly complementary solution
with linearly independent active rows; gradients then flow to ``P, q, A, l, u``. A row is active
when $|y_i| >$ ``ACTIVE_RTOL`` $\cdot\max_k |y_k|$ and $|y_i|$ exceeds the row's slack to that
bound (so that multipliers at round-off level on rows with room to their bounds do not count;
an equality row, $l_i = u_i$, is always active; its bound gets the gradient). Where the Jacobian is singular (degenerate active sets) the
least-squares solve of `root_vjp` returns the gradient of the minimum-norm solution.

**What differs from the host path.** Validation that needs values (finiteness, symmetry, PSD)
is skipped: the inputs are not concrete. The loop runs until the tolerance or ``max_iter``
(no ``time_limit``, ``callback``, ``verbose``, ``progress``, history). The working precision is
the inputs' (float32 unless ``jax_enable_x64`` is on). A certificate of infeasibility is the
loop's test on the scaled data; `admm_qp` outside ``jit`` also verifies it on the user's data.
"""
from __future__ import annotations

from cvxkit.solvers.admm import make_algorithm, per_block
from cvxkit.solvers.admm_box import (ALG_DENSE, INVERSE_MAX_N, QP_DENSE, QP_DENSE_INVERSE,
                                     setup_dense)
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.driver import _steps_left, traced_result, while_solve
from cvxkit.solvers.implicit import root_vjp
from cvxkit.solvers.primal_dual import (DIVERGED, DUAL_INFEASIBLE, INF_BOUND, PRIMAL_INFEASIBLE,
                                        SOLVED)
from cvxkit.solvers.result import Status

_ALG_INVERSE = make_algorithm("admm", QP_DENSE_INVERSE)
#: a row is active when |y_i| exceeds this fraction of max |y|
ACTIVE_RTOL = 1e-7


def _status(xp, flag, relaxed, finite):
    """The `Status` code of the loop's flag (as `cvxkit.solvers.primal_dual.loop_verdict`)."""
    def c(s):
        return Status(s).code

    running = xp.where(relaxed == SOLVED, c("optimal_inaccurate"), c("max_iter"))
    code = xp.select([flag == SOLVED, flag == PRIMAL_INFEASIBLE, flag == DUAL_INFEASIBLE,
                      flag == DIVERGED], [c("optimal"), c("primal_infeasible"),
                                          c("dual_infeasible"), c("numerical_error")], running)
    return xp.where(finite | (flag == PRIMAL_INFEASIBLE) | (flag == DUAL_INFEASIBLE), code,
                    c("numerical_error"))


def kkt_map(z, theta):
    """The optimality map $F((x, y), (P, q, A, l, u))$ of the module docstring."""
    import jax
    import jax.numpy as jnp

    (x, y), (P, q, A, l, u) = z, theta
    ys = jax.lax.stop_gradient(y)
    big = ACTIVE_RTOL * jnp.max(jnp.abs(ys), initial=0.0)
    eq = jax.lax.stop_gradient(l == u)
    Ax = A @ x
    # a multiplier at round-off level on a row with room to its bound is not an active row:
    # |y_i| must also exceed the slack (when every y is noise, big is noise too)
    Axs = jax.lax.stop_gradient(Ax)
    slack_u = jnp.where(jnp.isfinite(u), u - Axs, jnp.inf)
    slack_l = jnp.where(jnp.isfinite(l), Axs - l, jnp.inf)
    upper = ((ys > big) & (ys > slack_u)) | (eq & (ys >= 0))
    lower = ((ys < -big) & (-ys > slack_l)) | (eq & (ys < 0))
    return (P @ x + q + A.T @ y,
            jnp.where(upper, Ax - jnp.where(upper, u, 0.0),
                      jnp.where(lower, Ax - jnp.where(lower, l, 0.0), y)))


def traced_qp(P, q, A, l, u):
    """QP data inside ``jit``/``vmap``/``grad`` as JAX arrays of ``q``'s dtype: ``A=None`` is an
    empty (0, n) block, ``l``/``u`` ``None`` are infinite, bounds of magnitude ``INF_BOUND`` or
    more are infinite; ``ValueError`` for shapes that do not fit (values are not checked)."""
    import jax.numpy as jnp

    q = jnp.asarray(q)
    if q.ndim != 1:
        raise ValueError(f"q must have shape (n,) inside jit/vmap/grad (vmap adds the batch), got "
                         f"{q.shape}")
    n = q.shape[0]
    P = jnp.asarray(P, dtype=q.dtype)
    A = jnp.zeros((0, n), q.dtype) if A is None else jnp.asarray(A, dtype=q.dtype)
    m = A.shape[0]
    l = jnp.full(m, -jnp.inf, q.dtype) if l is None else jnp.broadcast_to(jnp.asarray(l, q.dtype), (m,))
    u = jnp.full(m, jnp.inf, q.dtype) if u is None else jnp.broadcast_to(jnp.asarray(u, q.dtype), (m,))
    if P.shape != (n, n) or A.shape != (m, n):
        raise ValueError(f"P must have shape {(n, n)} and A shape (m, {n}); got {P.shape} and "
                         f"{A.shape}")
    return (P, q, A, jnp.where(l <= -INF_BOUND, -jnp.inf, l), jnp.where(u >= INF_BOUND, jnp.inf, u))


def solve(P, q, A, l, u, *, cfg: dict, scaling: int, polish: tuple, rho0: float, warm,
          linear_solve="auto"):
    """`admm_qp` on traced dense data; see the module docstring. ``cfg``, ``polish`` and
    ``rho0`` are `admm_qp`'s validated settings, ``warm`` a pair ``(x0, y0)`` or None."""
    import jax.numpy as jnp

    from cvxkit.solvers.admm_qp import _finish_callable, _settings

    P, q, A, l, u = traced_qp(P, q, A, l, u)
    dtype = "float64" if q.dtype == jnp.float64 else "float32"
    bk = get_backend("jax", dtype)
    n, m = A.shape[1], A.shape[0]
    warm = (None, None) if warm is None else warm
    x0, y0 = (jnp.zeros(k, q.dtype) if v is None else jnp.asarray(v, q.dtype).reshape(k)
              for v, k in zip(warm, (n, m)))
    st = _settings(bk, cfg)
    # small problems: the explicit inverse (one matrix-vector product per iteration), as batches
    sp = QP_DENSE_INVERSE if n <= INVERSE_MAX_N else QP_DENSE
    alg = per_block(_ALG_INVERSE if sp is QP_DENSE_INVERSE else ALG_DENSE, cfg["block"])
    finish_one = _finish_callable(bk, polish[0], polish[2], False)
    delta = jnp.asarray(polish[1], q.dtype)
    steps = _steps_left(cfg["max_iter"], cfg["block"])

    def solver(theta):
        with bk.precision():
            d, s = setup_dense(bk, *theta, x0, y0, jnp.asarray(rho0, q.dtype), st, scaling, sp,
                               user_units=cfg["eps_rel"] == 0)
            s, _ = while_solve(alg, bk, s, d, steps)
            fin = finish_one(d, s, delta)
        return (fin["x"], fin["y"]), fin

    (x, y), fin = root_vjp(solver, kkt_map, linear_solve=linear_solve)((P, q, A, l, u))
    finite = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(y))
    status = _status(jnp, fin["flag"], fin["relaxed"], finite)
    certified = (fin["flag"] == PRIMAL_INFEASIBLE) | (fin["flag"] == DUAL_INFEASIBLE)
    x = jnp.where(certified, jnp.nan, x)
    objective = jnp.where(fin["flag"] == PRIMAL_INFEASIBLE, jnp.inf, jnp.where(
        fin["flag"] == DUAL_INFEASIBLE, -jnp.inf, 0.5 * x @ (P @ x) + q @ x))
    return traced_result(
        x=x, status=status, objective=objective, dual=jnp.where(certified, jnp.nan, y),
        primal_residual=fin["prim_res"], dual_residual=fin["dual_res"], iterations=fin["k"],
        info={"y": y, "z": fin["z"], "rho": fin["rho"], "gap": fin["gap"]}, method="admm")

