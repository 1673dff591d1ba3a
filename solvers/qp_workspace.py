r"""Re-solves of one QP that keep the set-up (OSQP's ``update`` semantics): `admm_qp_setup`
returns a `QPWorkspace`.

A parametric study solves one QP again and again with a new $q$, $l$ or $u$ (a new risk
aversion, a new right-hand side, a new state in model predictive control). `admm_qp` redoes
everything on each call: validation, units, Ruiz scaling, the linear system and its
factorization, which on a sparse QP can cost several times the iterations of a warm-started
solve. A workspace does them once::

    ws = admm_qp_setup(P, q, A, l, u, tol=1e-6)   # validation, scaling, factorization
    res = ws.solve()                              # as admm_qp(P, q, A, l, u, tol=1e-6)
    res = ws.solve(q=q2)                          # new q, warm-started from res
    ws.update(l=l3, u=u3)                         # or in two steps
    res = ws.solve()

**What is kept.** $P$ and $A$ (validated once and never read again), the Ruiz scaling
$D, E, c$ and the scaled matrices, the row weights of the penalty (equality, inequality, free
rows) and the factorization of the linear system with the penalty $\rho$ of the last solve.

**What is recomputed** from the new vectors, in $O(n + m)$: their validation, their scaled
copies $\bar q = cDq$, $\bar l = El$, $\bar u = Eu$, and the problem's *units*
(`cvxkit.solvers.scaling.units_from`: the length and cost units depend on $q$, $l$, $u$) with the
tolerances' weights built from them (`cvxkit.solvers.admm.Norms`). So ``optimal`` means what it
means for a cold `admm_qp` solve of the new data: the tolerances of `cvxkit.solvers.admm`
("Checks") in the new data's normalized units, then the same final tests on the user's unscaled
data and the same certificate verification (both solves end in
`cvxkit.solvers.admm_qp.numpy_solve`). Only the scaling that steers the iterations is the one of
the first data (as in OSQP), so a re-solve iterates differently from a cold solve; both meet
the tolerances.

**When it refactors.** The row weights are recomputed from the new scaled bounds
(`cvxkit.solvers.admm_box`: $10^3$ on rows with $u_i - l_i < 10^{-4}$ after scaling, 0 on rows
with both bounds infinite, 1 on the others). When they change (a row becomes an equality, or a
bound becomes infinite or finite), the scaling is kept and the matrix refactored: the sparse KKT
matrix numerically (qdldl keeps its symbolic analysis), the dense reduced matrix after adding
the changed rows' terms $A_i^\top \Delta w_i A_i$ to its Gram parts. A start from another
$\rho$ (``warm_start=False`` restarts from the option ``rho``) refactors too.
``Result.info["workspace"]`` says what happened: ``setup`` is ``"new"`` (the full set-up of
the first solve; on JAX every solve), ``"kept"`` or ``"refactored"``, ``why`` says why in
words, ``changed`` lists the vectors that changed since the last solve.

**Warm starts.** ``warm_start=True`` (the default) starts from the last solution $(x, y)$,
unscaled (the NaN of an infeasible result become 0), with its final $\rho$ and its
factorization; ``False`` starts from zeros with the option ``rho``, which with unchanged data
repeats the iterates of `admm_qp`; a `Result`, a dict or a pair ``(x, y)`` as `admm_qp` takes
them.

**JAX** (``backend="jax"``): the set-up is compiled once per shape and re-run on each solve
(warm-started; the factorization is not kept): data of the same shapes never recompiles
(``Result.compile_time`` is 0 after the first solve).
"""
from __future__ import annotations

import inspect
import time

import numpy as np

from cvxkit.solvers import kkt
from cvxkit.solvers.admm import RHO_MAX, RHO_MIN, _row_norms
from cvxkit.solvers.admm_box import BOX_ROWS, DenseLin, _init_state
from cvxkit.solvers.admm_qp import (_failed, _solve, _warm, admm_qp, check_bounds, check_q,
                                    configure, numpy_setup, numpy_solve, validate_qp)
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.result import Result
from cvxkit.solvers.scaling import units_from


def admm_qp_setup(P, q, A=None, l=None, u=None, **options) -> "QPWorkspace":
    r"""Set up $\min \tfrac12 x^\top Px + q^\top x$ s.t. $l \le Ax \le u$ for repeated solves
    with new ``q``, ``l``, ``u`` (module docstring).

    Args:
        P, q, A, l, u: one QP, as `cvxkit.solvers.admm_qp.admm_qp` takes it (no batch).
        **options: `admm_qp`'s options (``tol``, ``eps_abs``, ``max_iter``, ``polish``,
            ``linsys``, ``backend``, ...), fixed for every solve of the workspace;
            ``warm_start`` is the start of the first solve.

    Returns:
        A `QPWorkspace`, set up (scaled and factored on numpy) but not solved.

    Raises ``ValueError`` as `admm_qp` does (bad data, an unknown or bad option), and for a
    batch.
    """
    t_setup = time.perf_counter()
    options = _with_defaults(options)
    warm_start = options.pop("warm_start")
    if isinstance(warm_start, bool):  # nothing solved before the set-up: no start to reuse
        warm_start = None
    P, q, A, l, u, batch = validate_qp(P, q, A, l, u)
    if batch is not None:
        raise ValueError("admm_qp_setup takes one QP, not a batch (a batch of parameter values "
                         "is admm_qp(..., backend='jax') with a leading batch dimension)")
    return QPWorkspace(P, q, A, l, u, warm_start, options, configure(q, None, **options),
                       t_setup)


def _with_defaults(options: dict) -> dict:
    """``options`` with `admm_qp`'s defaults for the others; ValueError for an unknown one."""
    params = inspect.signature(admm_qp).parameters
    defaults = {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY}
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for admm_qp_setup; valid "
                         f"options: {', '.join(sorted(defaults))}")
    return {**defaults, **options}


class QPWorkspace:
    """One QP set up for re-solves with new ``q``, ``l``, ``u`` (module docstring); made by
    `admm_qp_setup`.

    Attributes:
        P, A: the matrices (validated; made dense when small, as `admm_qp` does).
        q, l, u: the current vectors.
        setups: full set-ups done (1 on numpy; one per solve on JAX).
        refactorizations: factorizations done at the start of a solve after the set-up (a
            changed equality/free pattern or another starting penalty; the adaptive penalty's
            refactorizations inside a solve are ``Result.info['rho_updates']``).
        solves: solves done.
    """

    def __init__(self, P, q, A, l, u, warm_start, options: dict, config: dict, t_setup: float):
        self.P, self.q, self.A, self.l, self.u = P, q, A, l, u
        self._options = options
        self.n, self.m = q.shape[0], A.shape[0]
        self._config = config
        self.setups = self.refactorizations = self.solves = 0
        self._last: Result | None = None  # the last solve's Result
        self._factor = None  # (rho, factor) valid for the current linear system, or None
        self._changed: set = set()  # vectors changed since the last solve
        self._why = ""  # why the next solve must refactor
        self._warm0 = warm_start  # the first solve's start
        self._pending = 0.0  # set-up and update time not yet reported in a Result
        if config["backend"] == "numpy":
            x0, y0, rho = self._start_point(warm_start)
            try:
                self.P, self.A, self._d, s, self._sp = numpy_setup(
                    P, q, A, l, u, x0, y0, rho, config["cfg"], config["scaling"],
                    config["linsys"])
                self._factor = (s.rho, s.factor)
            except np.linalg.LinAlgError as e:  # reported by the first solve
                self._d, self._error = None, str(e)
            self._a = _row_norms(self.A)[1]
            self._pmax = float(abs(self.P).max()) if (
                self.P.nnz if kkt.is_sparse(self.P) else self.P.size) else 0.0
        self.setups = 1
        self._pending = time.perf_counter() - t_setup

    def __repr__(self) -> str:
        return (f"QPWorkspace(n={self.n}, m={self.m}, backend={self._config['backend']!r}, "
                f"solves={self.solves}, setups={self.setups}, "
                f"refactorizations={self.refactorizations})")

    def same_options(self, **options) -> bool:
        """Whether ``options`` (`admm_qp`'s, without ``warm_start``; defaults for those not
        given) are the ones this workspace was set up with, so that a solve with them may use
        it."""
        try:
            options = _with_defaults(options)
            options.pop("warm_start")
            return bool(options == self._options)
        except (TypeError, ValueError):  # options that do not compare (arrays), or unknown
            return False

    @property
    def rho(self) -> float | None:
        """The penalty of the kept factorization (the last solve's final one; on JAX the last
        `Result`'s), or ``None`` before a solve on JAX or after a failed factorization.
        ``warm_start={"rho": ws.rho}`` starts a solve from zeros without refactoring."""
        if self._config["backend"] != "numpy":
            return None if self._last is None else self._last.info.get("rho")
        return None if self._factor is None else float(self._factor[0])

    # --- new data ---------------------------------------------------------------------------
    def update(self, q=None, l=None, u=None) -> "QPWorkspace":
        """Replace ``q``, ``l`` and/or ``u`` (``None``: keep) for the next `solve`, as OSQP's
        ``update``: the vectors are validated (shapes, NaN, ``l <= u``; bounds of magnitude
        $\\ge 10^{20}$ become infinite) and scaled with the kept scaling; ``P`` and ``A`` are
        not read. Returns the workspace. Raises ``ValueError`` for bad vectors (and then
        changes nothing)."""
        t0 = time.perf_counter()
        new = {}
        if q is not None:
            q = check_q(q)
            if q.shape != (self.n,):
                raise ValueError(f"q must have shape ({self.n},), got {q.shape}")
            new["q"] = q
        if l is not None or u is not None:
            lb, ub = check_bounds(self.l if l is None else l, self.u if u is None else u, self.m)
            if lb.ndim != 1 or ub.ndim != 1:
                raise ValueError(f"l and u must have shape ({self.m},), got {lb.shape}, {ub.shape}")
            new.update(l=lb, u=ub)
        changed = {k for k, v in new.items() if not np.array_equal(v, getattr(self, k))}
        for k in changed:
            setattr(self, k, new[k])
        if changed and self._config["backend"] == "numpy" and self._d is not None:
            self._rescale(changed)
        self._changed |= changed
        self._pending += time.perf_counter() - t0
        return self

    def _rescale(self, changed: set) -> None:
        """The scaled data of the new vectors with the kept scaling; new row weights (and the
        linear system's parts that depend on them) when the equality/free pattern changed."""
        d = self._d
        if "q" in changed:
            d = d._replace(q=d.c * d.D * self.q)
        if changed & {"l", "u"}:
            cset, w = BOX_ROWS.make(np, d.E, self.l, self.u)
            d = d._replace(cset=cset)
            moved = np.flatnonzero(w != d.rho_w)
            if moved.size:
                d = d._replace(rho_w=w, lin=_reweighted(d, w))
                self._factor = None
                self._why = (f"the equality/free pattern of l, u changed on {moved.size} "
                             f"row(s) (first: {int(moved[0])}): new penalty weights")
        un = units_from(self._a, self._pmax, self.q, self.l, self.u)
        self._d = d._replace(norms=d.norms._replace(ue=un.E0 / d.E, ud=un.D0 / d.D,
                                                    uc=un.c0 / d.c))

    # --- solves -----------------------------------------------------------------------------
    def solve(self, q=None, l=None, u=None, warm_start=True) -> Result:
        """`update` with the vectors given, then solve; returns the `Result` of `admm_qp`
        (same fields, statuses and checks), with ``info['workspace']`` (module docstring)
        and ``setup_time`` the time spent in set-up and updates since the last solve.

        Args:
            q, l, u: new vectors (``None``: keep the current ones).
            warm_start: ``True``: from the last solution, its penalty and its factorization;
                ``False``: from zeros with the option ``rho``; or a `Result`, dict or pair
                ``(x, y)`` (as in `admm_qp`).
        """
        self.update(q, l, u)  # (its time goes to _pending)
        t0 = time.perf_counter()
        changed = sorted(self._changed)
        self._changed = set()
        first = self.solves == 0
        self.solves += 1
        if self._config["backend"] != "numpy":
            return self._solve_jax(warm_start, t0, changed, first)
        pending, self._pending = self._pending, 0.0
        if self._d is None:  # the set-up's factorization failed
            return _failed(self.q, self.A, self._error, pending, "numpy")
        x0, y0, rho = self._start_point(warm_start)
        rho = float(np.clip(rho, RHO_MIN, RHO_MAX))
        kept = self._factor is not None and self._factor[0] == rho
        if kept:
            why = "new set-up" if first else "scaling, penalty weights and factorization kept"
        else:
            why = self._why or ("the last factorization failed: factored again"
                                if self._factor is None else
                                f"start from rho = {rho:.3g}, not {self._factor[0]:.3g}")
            why = ("new set-up; " if first else "") + why
        factorize = (lambda bk, d, r: self._factor[1]) if kept else None
        try:
            s = _init_state(get_backend("numpy"), self._sp, self._d, x0, y0, rho, factorize)
        except np.linalg.LinAlgError as e:
            self._factor = None
            return _failed(self.q, self.A, str(e), pending + time.perf_counter() - t0, "numpy")
        if not kept:
            self.refactorizations += 1
        self._why = ""
        info = {"workspace": {"setup": "new" if first else ("kept" if kept else "refactored"),
                              "why": why, "changed": changed}}
        res, state = numpy_solve(self.P, self.q, self.A, self.l, self.u, self._d, s, self._sp,
                                 pending + time.perf_counter() - t0, self._config["opts"],
                                 self._config["cfg"], self._config["pol"], info)
        self._factor = None if state is None else (float(state.rho), state.factor)
        self._last = res
        return res

    def _start_point(self, warm_start):
        """``(x0, y0, rho0)`` (unscaled) of a solve (see `solve`)."""
        rho0 = self._config["rho0"]
        if warm_start is True:
            if self._last is None:  # nothing solved yet: the set-up's start
                return self._start_point(self._warm0)
            warm_start, rho0 = self._last, self._factor[0] if self._factor else rho0
        elif warm_start is False:
            warm_start = None
        x0, y0, rho = _warm(warm_start, self.n, self.m, None)
        if rho is not None and np.isfinite(rho):
            rho0 = float(rho)
        return x0, y0, rho0

    def _solve_jax(self, warm_start, t0, changed, first) -> Result:
        """JAX: `admm_qp`'s compiled set-up and loop on the current data (no validation of
        ``P``, ``A``; compiled code cached by shapes), warm-started as `solve` says."""
        if warm_start is True:
            warm_start = self._warm0 if self._last is None else self._last
        elif warm_start is False:
            warm_start = None
        if not first:
            self.setups += 1
        pending, self._pending = self._pending, 0.0
        res = _solve(self.P, self.q, self.A, self.l, self.u, None, False, warm_start,
                     t0 - pending, **self._config)
        self._last = res
        return res.replace(info={**res.info, "workspace": {
            "setup": "new", "changed": changed,
            "why": "JAX: the compiled set-up runs again (compiled code reused for these shapes)"}})


def _reweighted(d, w):
    """The linear-system data for the new row weights ``w`` (``d.rho_w`` the old ones): the
    dense reduced matrix's parts $G_0$ (free rows' $\\rho_{min}$ term) and $G_1 = A^\\top W A$
    updated by the changed rows only; the sparse KKT matrix takes the weights at its next
    factorization (through the penalties), so it is returned as it is."""
    if not isinstance(d.lin, DenseLin):
        return d.lin
    A = kkt.as_scipy(d.A)
    dfree = (w == 0).astype(np.float64) - (d.rho_w == 0)
    return DenseLin(d.lin.G0 + RHO_MIN * kkt.gram(A, dfree), d.lin.G1 + kkt.gram(A, w - d.rho_w))
