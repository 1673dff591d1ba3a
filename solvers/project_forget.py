r"""Project and Forget: Bregman projections on an active set of metric constraints.

Sonthalia & Gilbert, "Project and Forget: Solving Large-Scale Metric Constrained Problems",
JMLR 23(326), 2022 (arXiv 2005.03853).

Problem, over the edge variables $x_{ij}$ ($i < j$) of the complete graph on $n$ nodes:

$$
\min_x \ \phi(x) \quad \text{s.t.}\quad x \ge 0,\quad
x_{p_0 p_k} \le \sum_{t<k} x_{p_t p_{t+1}} \ \text{for every cycle } (p_0, \dots, p_k),
$$

i.e. $x$ is a metric (the cycle inequalities of $K_n$ are implied by, and imply, the
triangle inequalities). Two objectives:

* ``loss="l2"``: $\phi(x) = \tfrac12 \sum_{i<j} w_{ij} (x_{ij} - d_{ij})^2$ (L2 metric nearness);
* ``loss="l1"``: $\phi(x) = \sum_{i<j} w_{ij} |x_{ij} - d_{ij}|$ (L1 metric nearness, and the
  correlation clustering LP for $d \in \{0, 1\}$). The projections need a strictly convex
  objective, so, as in Veldt et al. (arXiv 1806.01678), with $e = x - d$ and $f \ge |e|$ they
  solve $\min \gamma \sum w f + \tfrac12 \sum w ((e - e_c)^2 + (f - f_c)^2)$. The paper (and
  Veldt et al.) fix the centre $e_c = f_c = 0$, which solves the LP only for $\gamma$ large
  enough and converges slowly there. Here the centre moves to the solution each time a
  subproblem is solved, inexactly at first (to ``PROX_INEXACT`` times the current LP gap):
  a proximal-point outer loop, finitely convergent on LPs, so a moderate $\gamma$ gives the
  exact LP. The duals are kept across centre moves.

Each outer iteration (one call of the oracle):

1. **find**: all-pairs shortest paths with $x$ as edge lengths (Floyd-Warshall); every pair with
   $x_{uv} > \mathrm{dist}(u, v)$ gives its most violated cycle, the edge $uv$ closed by a
   shortest $u$-$v$ path. New cycles join the active list with dual 0.
2. **project**: cyclic passes over the active list. For cycle $c$ with normal $a_c$ and dual
   $z_c$: $\theta = -a_c^\top x / (a_c^\top W^{-1} a_c)$, $\gamma_c = \min(z_c, \theta)$,
   $x \leftarrow x + \gamma_c W^{-1} a_c$, $z_c \leftarrow z_c - \gamma_c$ (Hildreth/Dykstra
   dual corrections: the iterates converge to the optimum, not just to a feasible point). The
   simple constraints ($x \ge 0$, and $|e| \le f$ for L1) are projected the same way, with their
   own duals, after each pass. Passes repeat until no edge moves by more than
   ``SWEEP_TOL * tol * max(d)``, at most ``max_sweeps`` times.
3. **forget**: cycles whose dual returned to 0 leave the list.

Stopping test, on the full constraint set: the largest cycle violation
$\max_{uv} x_{uv} - \mathrm{dist}(u, v)$ (which bounds every triangle violation) is at most
``tol * max(d)``, and the duality gap $\phi(x) - L(z)$ is at most ``tol`` times
$\max(|\phi(x)|, \bar w \max(d)^{k})$, where $L(z)$ is the Lagrangian dual value of the
current duals (a certified lower bound on the optimum; $k=2$ for L2, $1$ for L1).

Memory: $O(n^2)$ (the iterate, distances, next hops) plus the active list; never $O(n^3)$.
The compiled kernels are in `cvxkit.solvers.metric_kernels` (numba).
"""
from __future__ import annotations

import math
import time

import numpy as np

from cvxkit.solvers import validate
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.driver import Algorithm, Final, Options, compile_cache, finish, run
from cvxkit.solvers.result import Result

LOSSES = ("l2", "l1")
#: projection passes stop once no edge moves by more than SWEEP_TOL * tol * max(d)
SWEEP_TOL = 0.01
#: an L1 proximal subproblem counts as solved at accuracy max(tol, PROX_INEXACT * LP gap)
PROX_INEXACT = 0.1


def _check_data(D, W, loss: str):
    r"""The algorithm's preconditions on its own arrays: ``(d, w)`` float64 (n, n), ``D``
    symmetric, nonnegative, zero diagonal, $n \ge 2$; ``W`` (``None``: ones) symmetric, positive
    off the diagonal (the Bregman projections need a strictly convex objective); the objective's
    scale $\max w \max(d)^k n^2$ finite. ``ValueError`` naming the argument otherwise (the
    family's own validation, with its vocabulary, is in `cvxkit.problems.metric`)."""
    d = validate.symmetric("D", D)
    n = d.shape[0]
    if n < 2:
        raise ValueError(f"D needs at least 2 points, got shape {d.shape}")
    if (d < 0).any():
        raise ValueError(f"D has negative entries (min {d.min():.3g}); D must be >= 0")
    if np.abs(np.diag(d)).max() > 0:
        raise ValueError("D must have a zero diagonal")
    if W is None:
        w = np.ones((n, n))
    else:
        w = validate.symmetric("W", W, n, floor=0.0)
        off = ~np.eye(n, dtype=bool)
        if (w[off] <= 0).any():
            raise ValueError(f"W must be positive off the diagonal (min {w[off].min():.3g}); the "
                             "Bregman projections need a strictly convex objective")
        np.fill_diagonal(w, 1.0)
    power = 2 if loss == "l2" else 1
    with np.errstate(over="ignore"):
        size = np.float64(d.max()) ** power * np.float64(w.max()) * n ** 2
    if not np.isfinite(size):
        raise ValueError(f"D is too large for the {loss.upper()} objective (max D^{power} x max "
                         "W x n^2 overflows float64); rescale D")
    return d, w


class _State:
    r"""The mutable state of Project and Forget (numpy arrays; the active list grows and shrinks).

    Invariant of the dual method: the iterate minimizes the Lagrangian of the current duals,
    e.g. for L2 $x = d - W^{-1}(\sum_c z_c a_c - W\mu)$.
    """

    def __init__(self, d, w, loss, gamma, upper):
        n = d.shape[0]
        self.n, self.d, self.w, self.loss, self.gamma, self.upper = n, d, w, loss, gamma, upper
        self.winv = 1.0 / w
        self.x = d.copy()
        self.mu = np.zeros_like(d)  # x >= 0 duals, divided by w
        if loss == "l1":
            # proximal centres of x = d + e and of the epigraph variable f >= |e|
            self.xc, self.fc = d.copy(), np.zeros_like(d)
            self.f = self.fc - gamma
            self.lam = np.zeros_like(d)  # duals of f + e >= 0 and f - e >= 0, divided by w
            self.pi = np.zeros_like(d)
        self.offsets = np.zeros(1, np.int64)
        self.nodes = np.zeros(0, np.int32)
        self.z = np.zeros(0)
        self.hashes = np.zeros(0, np.uint64)
        self.pending = (np.zeros(1, np.int64), np.zeros(0, np.int32))
        self.violation = self.gap = self.objective = math.inf
        self.lower_bound = -math.inf
        self.sweeps = self.oracle_calls = self.found = self.peak_active = self.prox_steps = 0


def _project_simple(s: _State) -> float:
    """Projections with duals onto the always-present constraints (elementwise, exact).

    Returns the largest change of an entry."""
    change = 0.0
    if s.loss == "l1":
        e = s.x - s.d
        for sign, dual in ((1.0, s.lam), (-1.0, s.pi)):  # f + e >= 0, then f - e >= 0
            c = np.minimum((s.f + sign * e) / 2, dual)
            e -= sign * c
            s.f -= c
            dual -= c
            change = max(change, float(np.abs(c).max()))
        s.x = s.d + e
    c = np.minimum(s.x, s.mu)  # x >= 0
    s.x -= c
    s.mu -= c
    np.fill_diagonal(s.x, 0.0)
    return max(change, float(np.abs(c).max()))


def _add_pending(s: _State) -> None:
    from cvxkit.solvers import metric_kernels as K

    offsets, nodes = s.pending
    if offsets.size <= 1:
        return
    hashes = K.cycle_hashes(offsets, nodes)
    unique, first = np.unique(hashes, return_index=True)  # duplicates within the new batch
    keep = np.sort(first[~np.isin(unique, s.hashes)])
    if keep.size == 0:
        return
    lengths = np.diff(offsets)[keep]
    starts = offsets[keep]
    idx = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    idx += np.arange(lengths.sum())
    s.nodes = np.concatenate((s.nodes, nodes[idx]))
    s.offsets = np.concatenate((s.offsets, s.offsets[-1] + np.cumsum(lengths)))
    s.z = np.concatenate((s.z, np.zeros(keep.size)))
    s.hashes = np.concatenate((s.hashes, hashes[keep]))
    s.found += keep.size


def _forget(s: _State) -> None:
    keep = s.z > 0
    if keep.all():
        return
    lengths = np.diff(s.offsets)
    mask = np.repeat(keep, lengths)
    s.nodes = s.nodes[mask]
    s.offsets = np.concatenate(([0], np.cumsum(lengths[keep])))
    s.z, s.hashes = s.z[keep], s.hashes[keep]


def _upper_pairs(s: _State):
    r"""``(iu, S)``: upper-triangle indices and the cycle dual load $S = \sum_c z_c a_c$ there."""
    from cvxkit.solvers import metric_kernels as K

    iu = np.triu_indices(s.n, 1)
    return iu, K.cycle_dual_load(s.n, s.offsets, s.nodes, s.z)[iu]


def _subproblem_gap(s: _State, iu, S) -> tuple[float, float]:
    r"""``(objective, dual value)`` of the problem the projections solve, at the current duals
    (``iu, S`` from `_upper_pairs`; for L2 the objective is ``s.objective``).

    L2: $\phi$ and $\min_{x \ge 0} \phi(x) + S^\top x$. L1: the proximal regularized problem
    $R(e, f) = \gamma \sum w f + \tfrac12 \sum w ((e - e_c)^2 + (f - f_c)^2)$ and its
    Lagrangian minimized over $f$ and $e \ge -d$ (closed forms, valid for any duals $\ge 0$).
    """
    d, w = s.d[iu], s.w[iu]
    if s.loss == "l2":
        x = np.maximum(0.0, d - S / w)
        return s.objective, float(np.sum(0.5 * w * (x - d) ** 2 + S * x))
    ec, fc, lam, pi = s.xc[iu] - d, s.fc[iu], s.lam[iu], s.pi[iu]
    e, f = s.x[iu] - d, s.f[iu]
    reg = lambda e, f: s.gamma * w * f + 0.5 * w * ((e - ec) ** 2 + (f - fc) ** 2)  # noqa: E731
    fs = fc - s.gamma + lam + pi
    slope = S - w * (lam - pi)  # Lagrangian coefficient of e
    es = np.maximum(-d, ec - slope / w)
    dual = reg(es, fs) - w * (lam + pi) * fs + slope * es + S * d
    return float(np.sum(reg(e, f))), float(np.sum(dual))


def _lp_lower_bound(s: _State, iu, S) -> float:
    r"""Certified lower bound of the L1 problem from the cycle duals $y = z / \gamma$:
    $\sum_{i<j} \min_{x \in \{0, d_{ij}, U\}} w_{ij}|x - d_{ij}| + (S y)_{ij} x$ with
    $U = \max d$ (a metric truncated at $U$ stays a metric and is no farther from $d$)."""
    d, w, S = s.d[iu], s.w[iu], S / s.gamma
    cands = (np.zeros_like(d), d, np.full_like(d, s.upper))
    return float(np.sum(np.min([w * np.abs(c - d) + S * c for c in cands], axis=0)))


def _move_centre(s: _State) -> None:
    """Proximal-point step of the L1 solve: the centre moves to the iterate; keeping the duals,
    the iterate moves by the same displacement so that the invariant still holds."""
    dx, df = s.x - s.xc, s.f - s.fc
    s.xc, s.fc = s.x.copy(), s.f.copy()
    s.x, s.f = s.x + dx, s.f + df
    s.prox_steps += 1


def _objective(x, d, w, loss) -> float:
    """$\\phi(x)$ over the pairs $i < j$ (module docstring): what the gap test measures."""
    iu = np.triu_indices(d.shape[0], 1)
    r = x[iu] - d[iu]
    if loss == "l2":
        return float(0.5 * np.sum(w[iu] * r * r))
    return float(np.sum(w[iu] * np.abs(r)))


def _oracle(s: _State, threshold: float, oracle_backend: str) -> None:
    """Shortest paths on the current ``x``: the largest violation and the violated cycles."""
    from cvxkit.solvers import metric_kernels as K

    x = np.maximum(s.x, 0.0)  # path lengths must be >= 0 (x < 0 is reported as a violation)
    if oracle_backend == "jax":
        dist, nxt = _jax_shortest_paths(x)
    else:
        dist = x.copy()
        nxt = np.tile(np.arange(s.n, dtype=np.int32), (s.n, 1))
        K.floyd_warshall(dist, nxt)
    v = max(float(np.max(x - dist)), float(-s.x.min()))
    s.violation = max(0.0, v) if v == v else math.inf  # NaN: never "feasible"
    s.pending = K.violated_cycles(x, dist, nxt, threshold)
    s.oracle_calls += 1


def _jax_shortest_paths(x):
    """Floyd-Warshall as ``n`` rank-one min-plus updates in one jitted ``lax.fori_loop``."""
    bk = get_backend("jax")
    jax, jnp = bk._jax, bk.xp
    n = x.shape[0]

    def build():
        def body(k, carry):
            dist, nxt = carry
            cand = dist[:, k, None] + dist[None, k, :]
            better = cand < dist
            return jnp.where(better, cand, dist), jnp.where(better, nxt[:, k, None], nxt)

        return jax.jit(lambda dist, nxt: jax.lax.fori_loop(0, n, body, (dist, nxt)))

    fw = compile_cache.get(("project_forget.floyd_warshall", bk, n), build)
    with bk.precision():
        nxt0 = jnp.tile(jnp.arange(n, dtype=jnp.int32), (n, 1))
        dist, nxt = fw(jnp.asarray(x), nxt0)
        return np.array(dist), np.array(nxt)


def _gap(diff: float, scale: float) -> float:
    """``max(0, diff) / scale``, and ``inf`` when either is not a number: an overflowed bound
    (e.g. a tiny ``gamma``) must never read as a zero gap."""
    g = max(0.0, diff) / scale if diff == diff and scale == scale else math.inf
    return g if g == g else math.inf


def _make_algorithm(tol: float, scale: float, gap_scale: float, max_sweeps: int,
                    oracle_backend: str):
    """The `Algorithm` (one outer iteration per step) and the measuring function."""
    from cvxkit.solvers import metric_kernels as K

    def measure(s: _State):
        _oracle(s, 0.1 * tol * scale, oracle_backend)
        s.objective = _objective(s.x, s.d, s.w, s.loss)
        iu, S = _upper_pairs(s)  # the duals' load, shared by both bounds
        sub, dual = _subproblem_gap(s, iu, S)
        s.sub_gap = _gap(sub - dual, max(abs(sub), gap_scale * (s.gamma or 1.0)))
        if s.loss == "l2":
            s.lower_bound, s.gap = dual, s.sub_gap
        else:
            s.lower_bound = _lp_lower_bound(s, iu, S)
            s.gap = _gap(s.objective - s.lower_bound, max(abs(s.objective), gap_scale))

    def step(bk, s: _State, data):
        _add_pending(s)
        for _ in range(max_sweeps):
            change = K.project_cycles(s.x, s.winv, s.offsets, s.nodes, s.z)
            change = max(change, _project_simple(s))
            s.sweeps += 1
            if change <= SWEEP_TOL * tol * scale:
                break
        s.peak_active = max(s.peak_active, s.z.size)
        _forget(s)
        measure(s)
        inner = max(tol, PROX_INEXACT * s.gap)
        if (s.loss == "l1" and s.violation <= inner * scale and s.sub_gap <= inner
                and s.gap > tol):
            _move_centre(s)  # the regularized problem is solved but not yet the LP
            measure(s)
        return s

    def feasible(s: _State) -> bool:
        return s.violation <= tol * scale

    def monitor(bk, s: _State, data):
        return {"violation": s.violation / scale, "gap": s.gap, "objective": s.objective,
                "active": float(s.z.size)}

    def converged(bk, s: _State, data):
        return feasible(s) and s.gap <= tol

    return Algorithm("project_forget", step, monitor, converged), measure


#: the duals and proximal centre (``"l1"``) a warm start resumes from (``info["state"]``)
_DUALS = {"l2": ("mu",), "l1": ("mu", "lam", "pi", "xc", "fc")}


def _saved(s: _State) -> dict:
    """What `_resume` needs: the active list, its duals, the simple constraints' duals and, for
    L1, the proximal centre."""
    return {"loss": s.loss, "offsets": s.offsets, "nodes": s.nodes, "z": s.z,
            "hashes": s.hashes, **{k: getattr(s, k) for k in _DUALS[s.loss]}}


def _resume(s: _State, warm_start) -> None:
    r"""Start ``s`` from a previous `Result` of project_forget: its active cycles, their duals,
    the duals of the simple constraints and (L1) the proximal centre, kept in
    ``info["state"]``. The iterate is rebuilt from them on this ``D``, ``W`` and ``gamma``
    through the invariant of the dual method (any duals $\ge 0$ give a valid start):
    $x = c - W^{-1} S + \mu + \lambda - \pi$, $f = f_c - \gamma + \lambda + \pi$ (L1; L2:
    $c = d$, no $\lambda, \pi$), with $S$ the cycles' dual load. ``ValueError`` otherwise."""
    from cvxkit.solvers import metric_kernels as K

    n = s.n
    expected = (f"warm_start must be a Result of project_forget with loss {s.loss!r} on {n} "
                "points (its duals and active cycles, kept in info['state'])")
    st = warm_start.info.get("state") if isinstance(warm_start, Result) else None
    if not isinstance(st, dict) or warm_start.method != "project_forget":
        got = (f"a Result of method {warm_start.method!r} without that state"
               if isinstance(warm_start, Result) else type(warm_start).__name__)
        raise ValueError(f"{expected}; got {got}")
    if st.get("loss") != s.loss:
        raise ValueError(f"{expected}; got the state of loss {st.get('loss')!r}")
    for k in _DUALS[s.loss]:
        v = validate.warm_array(expected, f"warm_start state {k!r}", st.get(k), (n, n))
        if k in ("mu", "lam", "pi") and (v < 0).any():
            raise ValueError(f"{expected}; its dual {k!r} has negative entries")
        setattr(s, k, v)
    try:
        offsets = np.array(st["offsets"], dtype=np.int64).ravel()
        nodes = np.array(st["nodes"], dtype=np.int32).ravel()
        z = np.array(st["z"], dtype=np.float64).ravel()
        hashes = np.array(st["hashes"], dtype=np.uint64).ravel()
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"{expected}; its active list is malformed: {e}") from None
    if not (offsets.size == z.size + 1 == hashes.size + 1 and offsets[0] == 0
            and (np.diff(offsets) >= 2).all() and offsets[-1] == nodes.size
            and ((nodes >= 0) & (nodes < n)).all() and np.isfinite(z).all() and (z >= 0).all()):
        raise ValueError(f"{expected}; its active list is malformed (cycles of nodes in "
                         f"[0, {n}) with finite duals >= 0)")
    s.offsets, s.nodes, s.z, s.hashes = offsets, nodes, z, hashes
    S = K.cycle_dual_load(n, offsets, nodes, z)
    shift = s.mu - (S + S.T) * s.winv
    if s.loss == "l1":
        shift += s.lam - s.pi
        s.f = s.fc - s.gamma + s.lam + s.pi
    s.x = (s.xc if s.loss == "l1" else s.d) + shift
    np.fill_diagonal(s.x, 0.0)


def project_forget(D, W=None, *, loss="l2", gamma=None, backend="numpy", tol=1e-6,
                   max_iter=1000, max_sweeps=50, time_limit=math.inf, verbose=False,
                   progress=None, callback=None, warm_start=None) -> Result:
    r"""Nearest metric to ``D`` by Project and Forget (see the module docstring).

    Args:
        D: (n, n) symmetric nonnegative dissimilarities with zero diagonal (any unit).
        W: (n, n) symmetric positive weights, or ``None`` for all ones.
        loss: ``"l2"`` (weighted squared distance) or ``"l1"`` (weighted absolute distance; the
            LP is solved in its regularized form with ``gamma``).
        gamma: L1 proximal weight (default ``3 * max(D)``, same unit as ``D``): each proximal
            subproblem is the LP plus $\frac{1}{2\gamma}\sum w((e - e_c)^2 + (f - f_c)^2)$;
            larger means fewer proximal steps, each slower.
        backend: ``"numpy"`` (numba kernels for the oracle and the projections) or ``"jax"``
            (the all-pairs shortest paths oracle in JAX, jitted, for GPUs; the projection passes
            are sequential by nature and stay in the numba kernel).
        tol: relative tolerance of the violation and of the duality gap (module docstring).
        max_iter: maximum number of outer iterations (oracle calls).
        max_sweeps: maximum projection passes over the active list per outer iteration.
        time_limit: seconds. verbose: print a progress table. callback: called with the
            monitored values at each outer iteration; return True to stop.
        progress: show a progress bar (tqdm); None: only for runs longer than a few seconds on
            a terminal.
        warm_start: a `Result` of project_forget with the same ``loss`` and ``n``: resume from
            its duals and active cycles (``info["state"]``; the iterate is rebuilt from them on
            this ``D``, ``W``, see `_resume`). A point alone cannot start the dual method.

    No ``seed`` (the method makes no random choice) and no ``dtype``: the numba kernels
    compute in float64.

    Returns:
        `Result` with ``x`` the metric (n, n), ``objective`` $\phi(x)$, ``primal_residual`` the
        largest cycle violation (absolute), ``dual_residual`` the relative duality gap, and
        ``info``: ``lower_bound`` (certified), ``active`` (final list size), ``peak_active``,
        ``found`` (cycles ever added), ``sweeps``, ``oracle_calls``, ``gamma``, ``state`` (for
        ``warm_start``).
    """
    t0 = time.perf_counter()
    validate.choice("loss", loss, LOSSES)
    validate.choice("backend", backend, ("numpy", "jax"))
    max_sweeps = validate.integer("max_sweeps", max_sweeps)
    gamma = validate.positive("gamma", gamma, allow_none=True)
    d, w = _check_data(D, W, loss)
    opts = Options(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, progress=progress)
    n = d.shape[0]
    off = ~np.eye(n, dtype=bool)
    scale = float(d.max()) if d.max() > 0 else 1.0
    wbar = float(w[off].mean())
    if loss == "l1":
        gamma = 3.0 * scale if gamma is None else gamma
        gap_scale = wbar * scale
    else:
        gamma, gap_scale = None, wbar * scale * scale
    alg, measure = _make_algorithm(tol, scale, gap_scale, max_sweeps, backend)
    state = _State(d, w, loss, gamma, scale)
    if warm_start is not None:
        _resume(state, warm_start)
    _project_simple(state)
    measure(state)
    t1 = time.perf_counter()
    out = run(alg, get_backend("numpy"), state, None, opts)
    s = out.state
    final = Final(
        x=s.x, objective=s.objective, primal_residual=s.violation, dual_residual=s.gap,
        info={"lower_bound": s.lower_bound, "active": int(s.z.size),
              "peak_active": int(s.peak_active), "found": int(s.found), "sweeps": s.sweeps,
              "oracle_calls": s.oracle_calls, "prox_steps": s.prox_steps, "gamma": gamma,
              "loss": loss, "state": _saved(s)})
    return finish(final, method="project_forget", backend=backend, run=out, setup_time=t1 - t0)
