r"""Entropic optimal transport between point clouds without the (n, m) cost matrix.

Problem (the balanced problem of `cvxkit.solvers.sinkhorn`, POT's entropy convention), with
points $x_i \in \mathbb{R}^d$ (weights $a_i$), $y_j$ (weights $b_j$) and
$C_{ij} = c(x_i, y_j)$, $c = |x - y|^2$ (``"sqeuclidean"``) or $|x - y|$ (``"euclidean"``):

$$
\min_{P \ge 0,\ P 1 = a,\ P^\top 1 = b} \langle C, P\rangle + \varepsilon \sum_{ij} P_{ij}\log P_{ij},
\qquad P_{ij} = \exp\big((f_i + g_j - C_{ij})/\varepsilon\big) \text{ at the optimum.}
$$

Iterations: log-domain Sinkhorn (Cuturi, NeurIPS 2013; log-domain stabilization as in
Schmitzer, SIAM J. Sci. Comput. 2019, with every update in the log domain),

$$
g_j \leftarrow \varepsilon\log b_j - \varepsilon\,\mathrm{LSE}_i\big((f_i - C_{ij})/\varepsilon\big),\qquad
f_i \leftarrow \varepsilon\log a_i - \varepsilon\,\mathrm{LSE}_j\big((g_j - C_{ij})/\varepsilon\big),
$$

each half-update computed by blocks of ``block`` points with the costs of a block made on the
fly from the points (`cvxkit.solvers.pointcloud`; the online evaluation of Feydy et al.,
AISTATS 2019), so memory is $O((n + m)\cdot\text{block})$. Epsilon scaling as in `sinkhorn`:
$\varepsilon$ starts at ``eps_init`` and is multiplied by ``eps_decay`` each time the relative
marginal error falls below ``stage_tol``, the potentials carrying over.

Stopping rule (that of `sinkhorn`): the relative L1 marginal error
``(||P1 - a||_1 + ||P^T 1 - b||_1) / sum(a) <= tol`` at $\varepsilon$ = ``reg``. An iteration
updates $g$ (columns exact) and then computes the next $f$; the row sums of the plan of the
current $(f, g)$ are $a_i e^{(f_i - f^{next}_i)/\varepsilon}$, so the error of the plan held in
the state is known exactly, at no extra pass. ``optimal`` is confirmed by recomputing the error
(both marginals) blockwise in float64 on the user's data.

Normalization (scale invariance): the points are centred at the middle of their joint bounding
box and divided by its diagonal $D$ (`cvxkit.solvers.pointcloud.Frame`), so that every
normalized cost is in $[0, 1]$ — $D^2$ (sqeuclidean) or $D$ (euclidean) bounds the spread of
the costs — and ``reg`` is divided by the same factor; the weights are divided by their mass.
Translating the points, scaling them by $s$ with ``reg`` scaled by $s^2$ (sqeuclidean) or $s$
(euclidean), or scaling the weights, gives the same iterates and status and the transformed
answer.
"""
from __future__ import annotations

import functools
import math
import time
from typing import NamedTuple

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import Backend, get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, finish, run
from cvxkit.solvers.pointcloud import (COSTS, PointCloudPlan, balanced_block, blocks,
                                       default_block, frame, pad_rows, softmin)
from cvxkit.solvers.result import Result, Status
from cvxkit.solvers.sinkhorn import finite_array, validate_marginals, validate_reg

METHOD = "sinkhorn_points"


def validate_points(x, y, a=None, b=None, cost="sqeuclidean"):
    """``(x, y, a, b)`` as float64 arrays: points (n, d), (m, d) with finite coordinates and the
    same dimension; weights (uniform ``1/n``, ``1/m`` when None) checked as histograms (see
    `cvxkit.solvers.sinkhorn.validate_marginals`); ``cost`` one of `COSTS`. ``ValueError``
    naming the argument otherwise."""
    validate.choice("cost", cost, COSTS)
    pts = []
    for name, p in (("x", x), ("y", y)):
        p = finite_array(name, p, None, nonempty=True)
        if p.ndim != 2:
            raise ValueError(f"{name} must be an array of points of shape (count, dimension), got "
                             f"shape {p.shape} (one-dimensional points: {name}[:, None])")
        pts.append(p)
    x, y = pts
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension: x is {x.shape}, y is {y.shape}")
    weights = []
    for name, w, p in (("a", a, x), ("b", b, y)):
        w = np.full(p.shape[0], 1.0 / p.shape[0]) if w is None else finite_array(name, w, 1)
        if w.size != p.shape[0]:
            raise ValueError(f"{name} must have one weight per point: len({name})={w.size} for "
                             f"{p.shape[0]} points")
        weights.append(w)
    return (x, y, *validate_marginals(*weights))


# --------------------------------------------------------------------------------------
# the loop (normalized instance, any back end; rows split over a mesh if one is given)
# --------------------------------------------------------------------------------------
class Data(NamedTuple):
    xb: object  # normalized x in blocks (nb, Bx, d), padding rows at the centre
    yb: object  # normalized y in blocks (mb, By, d)
    a: object  # (nb * Bx,) weights / mass, 0 on padding
    log_a: object  # -inf where a = 0
    log_b: object  # (mb * By,)
    eps_target: object
    eps_decay: object
    stage_tol: object
    tol: object


class State(NamedTuple):
    f: object  # the plan's potentials (f, g): g is the column update of f
    g: object
    f_next: object  # the row update of g: gives the row sums of the plan of (f, g)
    err: object  # relative L1 marginal error of the plan of (f, g)
    eps: object


def _row_error(xp, f, f_next, a, eps):
    """``sum |a_i exp((f_i - f_next_i)/eps) - a_i|`` (exponent clamped: finite when far off)."""
    on = a > 0
    t = xp.exp(xp.minimum((xp.where(on, f, 0.0) - xp.where(on, f_next, 0.0)) / eps, 50.0)) - 1.0
    return xp.sum(a * xp.abs(t))


def _sweep(bk: Backend, cost: str, axis, f, eps, d: Data):
    """``(g, f_next, err)`` from ``f``: the column update, then the row update and the row error
    of the plan of ``(f, g)``. With a mesh axis (inside ``shard_map``) the row blocks are the
    device's own and the column log-sum-exps are combined across devices."""
    xp = bk.xp
    d_ = d.xb.shape[-1]
    x_rows, y_rows = d.xb.reshape(-1, d_), d.yb.reshape(-1, d_)
    lse = softmin(bk, cost, d.yb, x_rows, f, eps)
    if axis is not None:
        lax = bk._jax.lax
        top = lax.pmax(lse, axis)
        top = xp.where(xp.isfinite(top), top, 0.0)
        lse = xp.log(lax.psum(xp.exp(lse - top), axis)) + top
    g = eps * d.log_b - eps * lse
    f_next = eps * d.log_a - eps * softmin(bk, cost, d.xb, y_rows, g, eps)
    err = _row_error(xp, f, f_next, d.a, eps)
    if axis is not None:
        err = bk._jax.lax.psum(err, axis)
    return g, f_next, err


def _monitor(bk, s: State, d: Data):
    return {"marginal_err": s.err, "eps": s.eps}


def _converged(bk, s: State, d: Data):
    return (s.err <= d.tol) & (s.eps <= d.eps_target)


class _Machinery(NamedTuple):
    algorithm: Algorithm
    init: object  # (bk, f, eps, d) -> State


@functools.lru_cache(maxsize=16)
def _machinery(cost: str, mesh=None) -> _Machinery:
    """The loop's `Algorithm` and its initial sweep for one cost (and mesh), made once so that
    the driver's compiled code is reused."""
    axis = None if mesh is None else mesh.axis_names[0]

    def sweep(bk, f, eps, d):
        return _sweep(bk, cost, axis, f, eps, d)

    if mesh is not None:
        sweep = _sharded(sweep, mesh, axis)

    def step(bk, s: State, d: Data) -> State:
        advance = (s.err <= d.stage_tol) & (s.eps > d.eps_target)
        eps = bk.xp.where(advance, bk.xp.maximum(s.eps * d.eps_decay, d.eps_target), s.eps)
        return State(s.f_next, *sweep(bk, s.f_next, eps, d), eps)

    def init(bk, f, eps, d):
        return State(f, *sweep(bk, f, eps, d), eps)

    return _Machinery(Algorithm(METHOD, step, _monitor, _converged), init)


def _data_specs(axis):
    """Partition specs of `Data`: x's row blocks and the row weights split over ``axis``."""
    from jax.sharding import PartitionSpec as P

    rows, rep = P(axis), P()
    return Data(rows, rep, rows, rows, rep, rep, rep, rep, rep)


def _sharded(sweep, mesh, axis):
    """``sweep`` under ``jax.shard_map``: x's row blocks, ``a`` and ``f`` split over the mesh
    axis, y and ``g`` replicated."""
    import jax
    from jax.sharding import PartitionSpec as P

    def sharded(bk, f, eps, d):
        fn = jax.shard_map(lambda f, eps, d: sweep(bk, f, eps, d), mesh=mesh,
                           in_specs=(P(axis), P(), _data_specs(axis)),
                           out_specs=(P(), P(axis), P()))
        return fn(f, eps, d)

    return sharded


def _place(bk: Backend, d: Data, f0, mesh):
    """``d`` and the first row potentials ``f0`` on ``mesh`` (`_data_specs`)."""
    from jax.sharding import NamedSharding

    put = bk._jax.device_put
    specs = _data_specs(mesh.axis_names[0])
    d = Data(*(put(v, NamedSharding(mesh, p)) for v, p in zip(d, specs)))
    return d, put(f0, NamedSharding(mesh, specs.a))


# --------------------------------------------------------------------------------------
# set-up and the user's units
# --------------------------------------------------------------------------------------
class _Instance(NamedTuple):
    """The normalized instance: points in the `Frame`, unit mass, ``reg / scale``."""

    x: np.ndarray
    y: np.ndarray
    a: np.ndarray
    b: np.ndarray
    reg: float
    mass: float
    scale: float


def _normalize(x, y, a, b, reg, cost) -> _Instance:
    fr = frame(x, y, cost, fallback=reg)
    reg_n = reg / fr.scale
    if not (reg_n > 0 and math.isfinite(reg_n)):
        raise ValueError(f"reg={reg!r} relative to the cost bound {fr.scale:.3g} (the squared "
                         f"or plain bounding-box diagonal) is not representable in float64")
    mass = float(a.sum())
    return _Instance((x - fr.center) / fr.length, (y - fr.center) / fr.length, a / mass,
                     b / mass, reg_n, mass, fr.scale)


def _warm_potentials(warm_start, inst: _Instance, reg: float):
    """Normalized ``(f, g)`` from a `Result` of this method or a pair in the user's units."""
    if warm_start is None:
        return None
    sizes = (inst.a.size, inst.b.size)
    expected = (f"warm_start must be a Result of method {METHOD!r} or a pair (f, g) of dual "
                f"potentials with shapes ({sizes[0]},) and ({sizes[1]},), finite where the "
                f"weights are > 0")
    own = isinstance(warm_start, Result) and warm_start.method == METHOD
    pair = warm_start.dual if own else warm_start
    if isinstance(pair, Result):
        raise ValueError(f"{expected}; got a Result of method {pair.method!r}")
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{expected}; got {type(pair).__name__}")
    out = []
    for name, pot, w in zip("fg", pair, (inst.a, inst.b)):
        try:
            pot = validate.float_array(f"warm_start {name}", pot, ndim=1)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{expected}; {e}") from None
        if pot.shape != w.shape or not np.isfinite(pot[w > 0]).all():
            raise ValueError(f"{expected}; got {name} of shape {pot.shape}")
        out.append(np.where(w > 0, pot, -np.inf))
    return (out[0] - reg * math.log(inst.mass)) / inst.scale, out[1] / inst.scale


def _setup(bk: Backend, inst: _Instance, cost, block, mesh, tol, eps0, eps_decay, stage_tol,
           warm):
    """`Data` and the first `State` (after one sweep) of the normalized instance."""
    n, m = inst.a.size, inst.b.size
    parts = 1 if mesh is None else mesh.devices.size
    nb, bx = balanced_block(n, block or default_block(n, m), parts)
    mb, by = balanced_block(m, block or default_block(m, n))
    a = pad_rows(inst.a, nb * bx)
    b = pad_rows(inst.b, mb * by)
    with np.errstate(divide="ignore"):
        log_a, log_b = np.log(a), np.log(b)
    d = Data(*(bk.asarray(v) for v in (blocks(inst.x, nb, bx), blocks(inst.y, mb, by), a, log_a,
                                       log_b, inst.reg, eps_decay, max(tol, stage_tol), tol)))
    f0 = np.where(a > 0, 0.0, -np.inf) if warm is None else pad_rows(warm[0], nb * bx, -np.inf)
    f0 = bk.asarray(f0)
    if mesh is not None:
        d, f0 = _place(bk, d, f0, mesh)
    mach = _machinery(cost, mesh)
    state = bk.jit(mach.init, static_argnums=(0,))(bk, f0, bk.asarray(eps0), d)
    return mach.algorithm, d, state, (n, m)


def _final(plan: PointCloudPlan, f, g, a, b, reg, tol, dtype, loop: Status) -> Final:
    """The `Final` of the plan: one float64 blockwise pass for both marginals, ``<C, P>`` and
    ``sum P log P``; ``optimal`` confirmed on the relative marginal error recomputed here."""
    s = plan.summary()
    mass = float(a.sum())
    err = float(np.abs(s["rows"] - a).sum() + np.abs(s["cols"] - b).sum())
    rel = err / mass
    status, message = None, ""
    objective = s["cost"] + reg * s["entropy"]
    if not (np.isfinite(s["rows"]).all() and np.isfinite(s["cols"]).all()
            and math.isfinite(objective)):
        status, message = Status.NUMERICAL_ERROR, "the plan has non-finite entries"
    elif loop is Status.OPTIMAL and not rel <= tol:
        status = Status.OPTIMAL_INACCURATE
        message = (f"the relative marginal error recomputed in float64 on the user's data is "
                   f"{rel:.2e} > tol={tol:.1e} (the {dtype} iterations cannot reach this tol)")
    fa, fb = a > 0, b > 0
    dual = float(np.dot(f[fa], a[fa]) + np.dot(g[fb], b[fb]))
    return Final(
        x=plan, objective=objective, dual=(f, g), primal_residual=err, status=status,
        message=message,
        info={"transport_cost": s["cost"], "f": f, "g": g, "dual_objective": dual, "reg": reg,
              "relative_marginal_error": rel, "row_marginal": s["rows"],
              "col_marginal": s["cols"]},
    )


def sinkhorn_points(x, y, a=None, b=None, reg=None, *, cost="sqeuclidean", block=None,
                    backend="jax", tol=1e-6, max_iter=100_000, time_limit=math.inf,
                    verbose=False, progress=None, callback=None, check_every=None, seed=0,
                    warm_start=None, dtype="float64", eps_init=None, eps_decay=0.5,
                    stage_tol=1e-2, mesh=None, refine=False) -> Result:
    """Entropic OT between point clouds ``x`` (n, d) and ``y`` (m, d), never forming the cost
    matrix (memory O((n + m) * block)).

    Args:
        x: source points (n, d), finite.
        y: target points (m, d), the same dimension d.
        a: source weights (n,), nonnegative (default uniform ``1/n``).
        b: target weights (m,), same total as ``a`` (default uniform ``1/m``).
        reg: entropic regularization ``> 0``, in the units of the cost (required).
        cost: ``"sqeuclidean"`` (``|x - y|^2``) or ``"euclidean"`` (``|x - y|``).
        block: points per block of a half-update (default: about 2**23 cost entries per
            block, e.g. 838 rows against 10,000 points); memory is O((n + m) * block).
        backend: ``"jax"`` (default; ``lax.map`` over blocks inside one jitted loop) or
            ``"numpy"`` (the same blockwise code, a Python loop over blocks).
        tol: stop when the relative L1 marginal error ``(||P1-a||_1 + ||P^T 1-b||_1) / sum(a)
            <= tol`` at ``eps = reg``; ``optimal`` is confirmed by recomputing it in float64
            (a ``tol`` that ``dtype`` cannot reach ends ``optimal_inaccurate`` or ``max_iter``).
        eps_init: first ``eps`` of the scaling schedule, in units of the cost (default: the
            cost bound, squared or plain diagonal of the points' bounding box); ``eps_init=reg``
            switches epsilon scaling off.
        eps_decay: factor in (0, 1) applied to ``eps`` at each stage.
        stage_tol: relative marginal error that ends a stage.
        warm_start: a previous `Result` of this method or potentials ``(f, g)`` (user's units);
            the run then starts at ``eps = reg``.
        mesh: a one-axis ``jax.sharding.Mesh`` (JAX only): the points x (and ``a``, ``f``) are
            split by rows over its devices, y and ``g`` replicated; the column updates combine
            the devices' log-sum-exps.
        max_iter: iteration limit (one iteration updates g then f).
        time_limit: seconds (checked every ``check_every`` iterations).
        verbose: print a table of the marginal error and ``eps`` at each check.
        progress: progress bar (see `cvxkit.solvers.driver`).
        callback: called at each check with the monitored values; ``True`` stops.
        check_every: iterations between checks (default: 1 numpy, 10 JAX).
        seed: accepted for the common vocabulary (the method is deterministic).
        dtype: ``"float64"`` or ``"float32"`` (the iterations; the final check is float64).
        refine: with ``dtype="float32"``, when the float64 check finds the answer short of
            ``tol`` (float32 potentials define the plan only to about their rounding over
            ``reg``), go on in float64 from its potentials at ``eps = reg``, within what is left
            of ``max_iter`` and ``time_limit``. The `Result` is the float64 run's, with both
            runs' iterations and times (``info["float32_iterations"]``; ``history`` is the
            float64 run's).

    Returns:
        `Result` with ``x`` a `cvxkit.solvers.pointcloud.PointCloudPlan` (the plan as an
        operator: ``apply``, ``apply_transpose``, ``marginals``, ``cost``, ``grad_cost``,
        ``materialize`` for small problems), ``dual`` the potentials ``(f, g)`` (``-inf`` at
        zero weights), ``objective`` ``<C,P> + reg*sum(P log P)``, ``primal_residual`` the L1
        marginal error (absolute), and in ``info``: ``transport_cost``, ``f``, ``g``,
        ``dual_objective`` ``<f,a> + <g,b>``, ``relative_marginal_error``, ``row_marginal``,
        ``col_marginal``, ``reg``, ``block`` (rows per block of x), ``cost``. The plan's
        passes use blocks of a quarter of ``block`` (they hold more arrays per block).
    """
    t_setup = time.perf_counter()
    refine = validate.boolean("refine", refine)
    if reg is None:
        raise ValueError("reg is required: the entropic regularization (> 0, units of the cost)")
    x, y, a, b = validate_points(x, y, a, b, cost)
    reg = validate_reg(reg)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, check_every=check_every, seed=seed, dtype=dtype,
                   progress=progress)
    block, eps_init, eps_decay, stage_tol = _check_settings(block, eps_init, eps_decay,
                                                            stage_tol, mesh, backend)
    inst = _normalize(x, y, a, b, reg, cost)
    warm = _warm_potentials(warm_start, inst, reg)
    eps0 = inst.reg if warm is not None else max(
        inst.reg, 1.0 if eps_init is None else eps_init / inst.scale)
    bk = get_backend(backend, dtype)
    with bk.precision():
        alg, d, state, (n, m) = _setup(bk, inst, cost, block, mesh, float(opts.tol), eps0,
                                       eps_decay, stage_tol, warm)
        setup_time = time.perf_counter() - t_setup
        out = run(alg, bk, state, d, opts)
        fn = np.asarray(bk.to_numpy(out.state.f), dtype=np.float64)[:n]
        gn = np.asarray(bk.to_numpy(out.state.g), dtype=np.float64)[:m]
    f = inst.scale * fn + reg * math.log(inst.mass)
    g = inst.scale * gn
    if "eps" in out.history:
        out = out._replace(history={**out.history,
                                    "eps": [inst.scale * e for e in out.history["eps"]]})
    # a pass over the plan keeps about four block-sized arrays (costs, plan, products) where a
    # half-update keeps one or two: its blocks are a quarter of the loop's
    plan = PointCloudPlan(x, y, f, g, reg, cost=cost, backend=bk.name,
                          block=max(1, (block or default_block(n, m)) // 4))
    final = _final(plan, f, g, a, b, reg, float(opts.tol), dtype, out.status)
    final = final._replace(info={**final.info, "block": block or default_block(n, m),
                                 "cost": cost})
    res = finish(final, method=METHOD, backend=bk.name, run=out, setup_time=setup_time)
    if not (refine and dtype == "float32" and res.status is Status.OPTIMAL_INACCURATE):
        return res
    spent = time.perf_counter() - t_setup
    if res.iterations >= max_iter or spent >= time_limit:
        return res
    fine = sinkhorn_points(x, y, a, b, reg, cost=cost, block=block, backend=backend, tol=tol,
                           max_iter=max_iter - res.iterations, time_limit=time_limit - spent,
                           verbose=verbose, progress=progress, callback=callback,
                           check_every=check_every, seed=seed, warm_start=res,
                           dtype="float64", eps_decay=eps_decay, stage_tol=stage_tol, mesh=mesh)
    return fine.replace(iterations=res.iterations + fine.iterations,
                        setup_time=res.setup_time + fine.setup_time,
                        solve_time=res.solve_time + fine.solve_time,
                        compile_time=res.compile_time + fine.compile_time,
                        info={**fine.info, "float32_iterations": res.iterations})


def _check_settings(block, eps_init, eps_decay, stage_tol, mesh, backend):
    """The method's own options, validated (``ValueError`` naming the option)."""
    settings = (validate.integer("block", block, allow_none=True),
                validate.positive("eps_init", eps_init, allow_none=True),
                validate.positive("eps_decay", eps_decay, upper=1.0),
                validate.positive("stage_tol", stage_tol))
    if mesh is None:
        return settings
    if backend != "jax":
        raise ValueError("mesh needs backend='jax'")
    names = getattr(mesh, "axis_names", None)
    if names is None or len(names) != 1:
        raise ValueError(f"mesh must be a jax.sharding.Mesh with one axis, got {mesh!r}")
    return settings


class ValueAndGrad(NamedTuple):
    """What `sinkhorn_points_value_and_grad` returns."""

    value: float  # <f, a> + <g, b>
    grad_x: np.ndarray  # (n, d)
    grad_y: np.ndarray  # (m, d)
    result: Result


def sinkhorn_points_value_and_grad(x, y, a=None, b=None, reg=None, **options) -> ValueAndGrad:
    r"""The entropic OT value between point clouds and its gradients w.r.t. the points.

    The value is the dual objective $W = \langle f, a\rangle + \langle g, b\rangle$ at the
    potentials `sinkhorn_points` returns (equal to ``Result.objective`` at an exact solution).
    By the envelope theorem (the optimal dual potentials do not move to first order),
    $\partial W/\partial x_i = \sum_j P_{ij}\nabla_x c(x_i, y_j)$ — for ``"sqeuclidean"``,
    $2(a_i x_i - (P y)_i)$ — and likewise for $y$: one blockwise pass over the plan
    (`cvxkit.solvers.pointcloud.PointCloudPlan.grad_cost`), no differentiation through the
    iterations. The error of the gradient is of the order of ``tol`` (relative).

    Args:
        x: source points (n, d).
        y: target points (m, d).
        a: source weights (default uniform).
        b: target weights (default uniform).
        reg: entropic regularization (units of the cost).
        **options: any option of `sinkhorn_points` (``cost``, ``block``, ``backend``, ``tol``,
            ``dtype``, ``mesh``, ...).

    Returns:
        `ValueAndGrad` ``(value, grad_x, grad_y, result)``, ``result`` the solve's `Result`
        (check its ``status``: the gradient is that of the plan it holds).
    """
    res = sinkhorn_points(x, y, a, b, reg, **options)
    gx, gy = res.x.grad_cost()
    return ValueAndGrad(res.info["dual_objective"], gx, gy, res)


def sinkhorn_points_value(x, y, a=None, b=None, reg=None, **options):
    r"""The entropic OT value $W(x, y)$ of `sinkhorn_points_value_and_grad` as a JAX function
    of the points: usable inside ``jax.grad``, ``jax.jit`` and ``jax.vmap`` w.r.t. ``x`` and
    ``y``.

    The solve runs on the host (``jax.pure_callback``; one solve after the other under
    ``vmap``) and its envelope gradients are the VJP (a ``jax.custom_vjp``): nothing is
    differentiated through the iterations. The weights and options are constants: ``a`` and
    ``b`` must be concrete arrays (or None). A solve that does not end ``optimal`` raises (there
    is no status to return here: call `sinkhorn_points_value_and_grad` to inspect it).

    Args:
        x: source points (n, d), a JAX or numpy array (traced or not).
        y: target points (m, d).
        a: source weights, concrete (default uniform).
        b: target weights, concrete (default uniform).
        reg: entropic regularization (units of the cost).
        **options: options of `sinkhorn_points`.

    Returns:
        A JAX scalar in the dtype of ``x`` and ``y``.

    Example:
        ``jax.grad(lambda x: sinkhorn_points_value(x, y, reg=0.01))(x)``
    """
    import jax
    import jax.numpy as jnp

    for name, w in (("a", a), ("b", b)):
        if isinstance(w, jax.core.Tracer):
            raise ValueError(f"{name} must be a concrete array or None: sinkhorn_points_value "
                             f"differentiates w.r.t. the points only")
    import inspect

    known = [p.name for p in inspect.signature(sinkhorn_points).parameters.values()
             if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; valid options: "
                         f"{', '.join(known)}")
    a = None if a is None else np.asarray(a)
    b = None if b is None else np.asarray(b)
    x, y = jnp.asarray(x), jnp.asarray(y)
    dtype = jnp.result_type(x, y)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    shapes = (jax.ShapeDtypeStruct((), dtype), jax.ShapeDtypeStruct(x.shape, dtype),
              jax.ShapeDtypeStruct(y.shape, dtype))

    def host(xh, yh):
        r = sinkhorn_points_value_and_grad(np.asarray(xh, dtype=np.float64),
                                           np.asarray(yh, dtype=np.float64), a, b, reg, **options)
        if r.result.status is not Status.OPTIMAL:
            raise RuntimeError(f"sinkhorn_points_value: the solve ended {r.result.status.value}: "
                               f"{r.result.message}")
        return tuple(np.asarray(v, dtype=dtype) for v in (r.value, r.grad_x, r.grad_y))

    def solve(x, y):
        return jax.pure_callback(host, shapes, x, y, vmap_method="sequential")

    @jax.custom_vjp
    def value(x, y):
        return solve(x, y)[0]

    def fwd(x, y):
        v, gx, gy = solve(x, y)
        return v, (gx, gy)

    def bwd(res, ct):
        return ct * res[0], ct * res[1]

    value.defvjp(fwd, bwd)
    return value(x.astype(dtype), y.astype(dtype))
