r"""Optimal transport on the transport polytope $U(a, b) = \{P \ge 0 : P1 = a,\ P^\top 1 = b\}$.

``OptimalTransport(a, b, C, reg=None)``:

* ``reg=None``: exact OT, $\min_{P \in U(a,b)} \langle C, P\rangle$ (method
  ``"network_simplex"``, reference: the CVXPY linear program);
* ``reg > 0``: entropic OT, $\min_{P \in U(a,b)} \langle C, P\rangle + \mathrm{reg}
  \sum_{ij} P_{ij}\log P_{ij}$ (method ``"sinkhorn"``, numpy or JAX; at small ``reg``
  ``"sinkhorn_newton_sparse"``, `cvxkit.solvers.sinkhorn_newton_sparse`; reference: the CVXPY
  exponential-cone model);
* ``reg > 0, reg_m``: unbalanced entropic OT, $\min_{P \ge 0} \langle C, P\rangle +
  \mathrm{reg}\,\mathrm{KL}(P\|ab^\top) + \lambda_a\mathrm{KL}(P1\|a) +
  \lambda_b\mathrm{KL}(P^\top 1\|b)$ (method ``"sinkhorn"``; see
  `cvxkit.solvers.sinkhorn_unbalanced`).

``OptimalTransport.from_points(x, y, a, b, reg, cost)`` (`PointCloudTransport`): entropic OT
between point clouds with ``C_ij = cost(x_i, y_j)``, solved without forming ``C`` (method
``"sinkhorn_points"``, `cvxkit.solvers.sinkhorn_points`).

``TransportPolytopeProblem(a, b, objective, ...)``: $\min_{P \in U(a,b)} F(P)$ for a convex
``F`` given by its gradient; ``OnlineTransport(a, b, costs)``: costs $C_t$ revealed one per
round, regret against the best fixed plan. Both by Mirror Sinkhorn (Ballu & Berthet, "Mirror
Sinkhorn: Fast Online Optimization on Transport Polytopes", ICML 2023).

References: Cuturi, "Sinkhorn distances", NeurIPS 2013; Peyré & Cuturi, "Computational optimal
transport", 2019.
"""
from __future__ import annotations

import math

import numpy as np

from cvxkit.problems.base import Problem, user_callables
from cvxkit.solvers.backend import get_backend
from cvxkit.solvers.result import Status
from cvxkit.solvers.mirror_sinkhorn import mirror_sinkhorn
from cvxkit.solvers.network_simplex import network_simplex
from cvxkit.solvers.sinkhorn import (finite_array, sinkhorn, validate_cost, validate_marginals,
                                     validate_ot, validate_reg)
from cvxkit.solvers.sinkhorn_newton_sparse import sinkhorn_newton_sparse
from cvxkit.solvers import pointcloud
from cvxkit.solvers import sinkhorn_unbalanced as unbalanced
from cvxkit.solvers.sinkhorn_points import sinkhorn_points, validate_points
from cvxkit.solvers import validate
from cvxkit.solvers.validate import float_array


def marginal_residuals(P, a, b) -> dict[str, float]:
    """L1 row and column marginal errors of ``P`` and its most negative entry (as >= 0)."""
    P = np.asarray(P, dtype=np.float64)
    return {
        "row_marginal": float(np.abs(P.sum(axis=1) - a).sum()),
        "col_marginal": float(np.abs(P.sum(axis=0) - b).sum()),
        "negativity": float(max(0.0, -P.min())),
    }


def check_shape(P, shape) -> np.ndarray:
    """``P`` as a float array of the given shape, else ``ValueError``."""
    P = float_array("plan", P)
    if P.shape != shape:
        raise ValueError(f"plan must have shape {shape}, got {P.shape}")
    return P


class _PolytopeProblem(Problem):
    """Shared part of the families whose feasible set is the transport polytope ``U(a, b)``.

    Subclasses hold ``a`` (n,), ``b`` (m,) and give the CVXPY objective in `_cvxpy_objective`.
    """

    family = "transport"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.a.size, self.b.size)

    def residuals(self, P) -> dict[str, float]:
        return marginal_residuals(check_shape(P, self.shape), self.a, self.b)

    def _cvxpy_objective(self, P):
        raise NotImplementedError

    def _cvxpy_constraints(self, P) -> list:
        import cvxpy as cp

        return [cp.sum(P, axis=1) == self.a, cp.sum(P, axis=0) == self.b]

    def to_cvxpy(self):
        import cvxpy as cp

        P = cp.Variable(self.shape, nonneg=True)
        return cp.Problem(cp.Minimize(self._cvxpy_objective(P)), self._cvxpy_constraints(P)), P


class OptimalTransport(_PolytopeProblem):
    """Exact (``reg=None``), entropic (``reg > 0``) or unbalanced entropic (``reg_m``) OT.

    Args:
        a: source weights, shape (n,), nonnegative.
        b: target weights, shape (m,), nonnegative, same total as ``a`` (up to a relative
            1e-8; ``b`` is then rescaled to ``sum(a)``); with a finite ``reg_m`` on a side the
            totals may differ.
        C: cost matrix, shape (n, m), finite, any sign (scipy.sparse is densified: an absent
            entry costs 0).
        reg: entropic regularization (units of ``C``), or ``None`` for exact OT.
        reg_m: ``None`` (balanced), or the marginal relaxation of unbalanced OT (units of
            ``C``): a number ``lam > 0`` or a pair ``(lam_a, lam_b)``, ``math.inf`` for an
            exact side. The objective is then POT's ``sinkhorn_unbalanced(..., reg_type="kl")``
            one, ``<C,P> + reg KL(P||a b^T) + lam_a KL(P1||a) + lam_b KL(P^T 1||b)``
            (generalized KL), and ``tol`` bounds the fixed-point residual of the potentials
            (`cvxkit.solvers.sinkhorn_unbalanced`); only the exact sides' marginals count as
            constraints in `residuals`. Needs ``reg > 0``.

    The solution ``Result.x`` is the transport plan (n, m); ``Result.info['transport_cost']``
    is $\\langle C, P\\rangle$ (for exact OT it equals ``Result.objective``); ``Result.dual``
    holds the potentials.

    Tolerances (``tol``) are relative, so that scaling the mass, or ``C`` (and ``reg``), by any
    factor gives the same status and the scaled answer: for both methods ``tol`` bounds the
    relative L1 marginal error ``(||P1 - a||_1 + ||P^T 1 - b||_1) / sum(a)``, checked in float64
    on the data given here; ``network_simplex`` also bounds the dual violation and the duality
    gap relative to ``max C - min C`` (see `cvxkit.solvers.network_simplex`).
    """

    methods = {"network_simplex": "_solve_network_simplex", "sinkhorn": "_solve_sinkhorn",
               "sinkhorn_newton_sparse": "_solve_sinkhorn_newton_sparse"}

    def __init__(self, a, b, C, reg: float | None = None, reg_m=None):
        if reg_m is None:
            self.a, self.b, self.C = validate_ot(a, b, C)
            self.reg_m = None
        else:
            if reg is None:
                raise ValueError("reg_m (unbalanced OT) needs an entropic reg > 0: exact "
                                 "unbalanced OT (reg=None) is not supported")
            self.reg_m = unbalanced.validate_reg_m(reg_m)
            self.a, self.b = validate_marginals(a, b, equal_mass=unbalanced.exact(self.reg_m))
            self.C = validate_cost(C, (self.a.size, self.b.size))
        self.reg = None if reg is None else validate_reg(reg)
        self.objective_scale = 1e-9 * self.a.sum() * max(float(np.abs(self.C).max()), 1e-300)

    @classmethod
    def from_points(cls, x, y, a=None, b=None, reg=None, cost="sqeuclidean"):
        """Entropic OT between point clouds ``x`` (n, d) and ``y`` (m, d), solved without the
        cost matrix: a `PointCloudTransport` (see it for the arguments)."""
        return PointCloudTransport(x, y, a, b, reg=reg, cost=cost)

    def default_method(self) -> str:
        return "network_simplex" if self.reg is None else "sinkhorn"

    def transport_cost(self, P) -> float:
        r"""$\langle C, P\rangle$."""
        return float(np.vdot(self.C, check_shape(P, self.shape)))

    def objective(self, P) -> float:
        P = check_shape(P, self.shape)
        if self.reg_m is not None:
            return unbalanced.objective(P, self.a, self.b, self.C, self.reg, self.reg_m)[0]
        cost = float(np.vdot(self.C, P))
        if self.reg is None:
            return cost
        Pp = np.maximum(P, 0.0)
        return cost + self.reg * float(np.sum(Pp * np.log(np.where(Pp > 0, Pp, 1.0))))

    def reference_options(self) -> dict:
        """Exact OT: HiGHS (a simplex solution, exact to round-off); entropic: Clarabel."""
        return {"solver": "HIGHS"} if self.reg is None else super().reference_options()

    def residuals(self, P) -> dict[str, float]:
        """Marginal errors and negativity; unbalanced: the marginals of exact sides only."""
        r = super().residuals(P)
        for key, lam in zip(("row_marginal", "col_marginal"), self.reg_m or ()):
            if math.isfinite(lam):
                del r[key]
        return r

    def _cvxpy_objective(self, P):
        import cvxpy as cp

        obj = cp.sum(cp.multiply(self.C, P))
        if self.reg_m is not None:
            obj = obj + self.reg * _kl_div(P, np.outer(self.a, self.b))
            for lam, axis, h in zip(self.reg_m, (1, 0), (self.a, self.b)):
                if math.isfinite(lam):
                    obj = obj + lam * _kl_div(cp.sum(P, axis=axis), h)
            return obj
        return obj if self.reg is None else obj - self.reg * cp.sum(cp.entr(P))

    def _cvxpy_constraints(self, P) -> list:
        """Unbalanced: the exact sides' marginals, and ``P = 0`` where ``a_i b_j = 0``."""
        if self.reg_m is None:
            return super()._cvxpy_constraints(P)
        import cvxpy as cp

        on = np.outer(self.a, self.b) > 0
        cons = [] if on.all() else [cp.multiply(~on, P) == 0]
        return cons + [cp.sum(P, axis=axis) == h
                       for lam, axis, h in zip(self.reg_m, (1, 0), (self.a, self.b))
                       if math.isinf(lam)]

    # --- adapters ---------------------------------------------------------------------
    def _solve_network_simplex(self, backend="numpy", **options):
        if self.reg is not None:
            raise ValueError("network_simplex solves exact OT (reg=None); for reg > 0 use method='sinkhorn'")
        return network_simplex(self.a, self.b, self.C, **options)

    def _solve_sinkhorn(self, backend="numpy", **options):
        if self.reg is None:
            raise ValueError("sinkhorn solves entropic OT: give reg > 0, or use method='network_simplex'")
        return sinkhorn(self.a, self.b, self.C, self.reg, reg_m=self.reg_m, backend=backend,
                        **options)

    def _solve_sinkhorn_newton_sparse(self, backend="numpy", **options):
        if self.reg is None or self.reg_m is not None:
            raise ValueError("sinkhorn_newton_sparse solves balanced entropic OT: give reg > 0 "
                             "and no reg_m (or use method='sinkhorn')")
        return sinkhorn_newton_sparse(self.a, self.b, self.C, self.reg, backend=backend,
                                      **options)


def _kl_div(x, q: np.ndarray):
    """CVXPY expression of the generalized KL divergence ``sum x log(x/q) - x + q`` of a
    variable ``x`` to a constant ``q >= 0`` (entries with ``q = 0`` left out: there ``x = 0``
    is a constraint, and the term is 0)."""
    import cvxpy as cp

    on = q > 0
    terms = cp.kl_div(x, np.where(on, q, 1.0))
    return cp.sum(terms) if on.all() else cp.sum(cp.multiply(on.astype(float), terms))


class PointCloudTransport(OptimalTransport):
    """Entropic OT between point clouds: ``OptimalTransport.from_points(x, y, a, b, reg, cost)``.

    Args:
        x: source points (n, d), finite.
        y: target points (m, d), the same dimension.
        a: source weights (n,), nonnegative (default uniform ``1/n``).
        b: target weights (m,), same total as ``a`` (default uniform ``1/m``).
        reg: entropic regularization ``> 0`` (units of the cost).
        cost: ``"sqeuclidean"`` (``|x - y|^2``) or ``"euclidean"`` (``|x - y|``).

    The problem is entropic OT with ``C_ij = cost(x_i, y_j)``. Method ``"sinkhorn_points"``
    (the default; `cvxkit.solvers.sinkhorn_points.sinkhorn_points`) never forms ``C``: its
    ``Result.x`` is a lazy `cvxkit.solvers.pointcloud.PointCloudPlan`. For small instances
    (``n * m`` up to `cvxkit.solvers.pointcloud.DENSE_LIMIT`) the cost matrix ``C`` is made on
    first use, for method ``"sinkhorn"`` (the dense solver), `reference` (dense Sinkhorn at
    ``tol=1e-12``; CVXPY/Clarabel when solver options are given or Sinkhorn does not reach it)
    and `to_cvxpy`. `objective`, `residuals` and `check` accept a plan of either kind.
    """

    methods = {"sinkhorn_points": "_solve_sinkhorn_points", "sinkhorn": "_solve_sinkhorn"}

    def __init__(self, x, y, a=None, b=None, reg=None, cost="sqeuclidean"):
        if reg is None:
            raise ValueError("reg is required: point-cloud transport is entropic (reg > 0)")
        self.x, self.y, self.a, self.b = validate_points(x, y, a, b, cost)
        self.cost, self.reg, self.reg_m, self._C = cost, validate_reg(reg), None, None
        scale = pointcloud.frame(self.x, self.y, cost, fallback=self.reg).scale
        self.objective_scale = 1e-9 * self.a.sum() * scale

    @property
    def C(self) -> np.ndarray:
        """The (n, m) cost matrix, made on first use (``ValueError`` for large problems)."""
        if self._C is None:
            n, m = self.shape
            if n * m > pointcloud.DENSE_LIMIT:
                raise ValueError(f"the cost matrix would have {n} x {m} entries; a problem this "
                                 f"large is solved by method 'sinkhorn_points' only")
            self._C = pointcloud.dense_cost(self.x, self.y, self.cost)
        return self._C

    def default_method(self) -> str:
        return "sinkhorn_points"

    def _plan_summary(self, P):
        if P.shape != self.shape:
            raise ValueError(f"plan must have shape {self.shape}, got {P.shape}")
        return P.summary()

    def transport_cost(self, P) -> float:
        if isinstance(P, pointcloud.PointCloudPlan):
            return self._plan_summary(P)["cost"]
        return super().transport_cost(P)

    def objective(self, P) -> float:
        if isinstance(P, pointcloud.PointCloudPlan):
            s = self._plan_summary(P)
            return s["cost"] + self.reg * s["entropy"]
        return super().objective(P)

    def residuals(self, P) -> dict[str, float]:
        if isinstance(P, pointcloud.PointCloudPlan):
            s = self._plan_summary(P)
            return {"row_marginal": float(np.abs(s["rows"] - self.a).sum()),
                    "col_marginal": float(np.abs(s["cols"] - self.b).sum()), "negativity": 0.0}
        return super().residuals(P)

    def reference(self, **solver_options):
        """Dense Sinkhorn on ``C`` at ``tol=1e-12`` (cached); with ``solver_options``, or if
        Sinkhorn does not reach that tol, the CVXPY model (`Problem.reference`)."""
        if solver_options or getattr(self, "_reference", None) is not None:
            return super().reference(**solver_options)
        res = sinkhorn(self.a, self.b, self.C, self.reg, tol=1e-12, max_iter=10**6)
        if res.status is not Status.OPTIMAL:
            return super().reference()
        self._reference = res
        return res

    def _solve_sinkhorn_points(self, backend="jax", **options):
        return sinkhorn_points(self.x, self.y, self.a, self.b, self.reg, cost=self.cost,
                               backend=backend, **options)


# ======================================================================================
# Convex objectives on the transport polytope, offline and online (Mirror Sinkhorn)
# ======================================================================================
#: options the problem sets itself when it calls mirror_sinkhorn
_MS_RESERVED = ("objective", "exact_gradient", "grad_args", "loss")


def _x64():
    """float64 JAX arithmetic for the user's callables (as inside cvxkit's own solves)."""
    return get_backend("jax").precision()


def _reserved(options, extra=()):
    bad = sorted(set(options) & set(_MS_RESERVED + tuple(extra)))
    if bad:
        raise ValueError(f"option(s) {', '.join(bad)} are set by the problem and cannot be given to solve()")


class TransportPolytopeProblem(_PolytopeProblem):
    r"""Minimize a convex ``F(P)`` over $U(a, b) = \{P \ge 0 : P1 = a,\ P^\top 1 = b\}$.

    Args:
        a: source weights (n,), nonnegative; b: target weights (m,), same total.
        objective: ``F(P) -> scalar``, convex, written with ``jax.numpy`` (it is differentiated by
            ``jax.grad`` when no ``gradient`` is given, and traced on the JAX back end).
        gradient: optional ``P -> grad F(P)`` (n, m), deterministic; default ``jax.grad(objective)``.
        cvxpy_objective: optional ``P_var -> cvxpy expression`` (the same ``F``); enables
            `to_cvxpy`, hence `reference` and `check`.

    Ready-made instances: `linear` (exact OT, ``F = <C, P>``) and `quadratic`
    (``F = 0.5 ||P - P0||_F^2``, the Frobenius projection of ``P0`` onto the polytope).

    Method ``"mirror_sinkhorn"`` (numpy or JAX). ``Result.x`` is the rounded averaged plan (exact
    marginals); ``Result.dual_residual`` a certified bound on ``F(x) - min F``; with ``tol`` the
    status is ``optimal`` only once that bound is below ``tol * sum(a) * max|grad F(x)|``.
    """

    methods = {"mirror_sinkhorn": "_solve_mirror_sinkhorn"}

    def __init__(self, a, b, objective, gradient=None, cvxpy_objective=None):
        self.a, self.b = validate_marginals(a, b)
        for name, f in (("objective", objective), ("gradient", gradient),
                        ("cvxpy_objective", cvxpy_objective)):
            if f is not None and not callable(f):
                raise ValueError(f"{name} must be callable, got {type(f).__name__}")
        if objective is None:
            raise ValueError("objective must be a callable F(P) -> scalar")
        self._F = objective
        self._cvx = cvxpy_objective
        self._cost = None  # fixed cost matrix for the linear case
        if gradient is None:
            import jax

            self._grad = jax.grad(objective)
            self._grad_jit = jax.jit(self._grad)
        else:
            self._grad = self._grad_jit = gradient
        P1 = np.outer(self.a, self.b) / self.a.sum()
        with user_callables("objective/gradient failed at the product coupling a b^T"):
            F1 = self.objective(P1)
            G1 = self.gradient(P1)
        if not math.isfinite(F1):
            raise ValueError(f"objective at the product coupling is not finite ({F1})")
        if G1.shape != self.shape:
            raise ValueError(f"gradient must return shape {self.shape}, got {G1.shape}")
        if not np.isfinite(G1).all():
            raise ValueError("gradient at the product coupling has NaN or infinite entries")

    # --- constructors -------------------------------------------------------------------
    @classmethod
    def linear(cls, a, b, C) -> "TransportPolytopeProblem":
        """Exact OT as a polytope problem: ``F(P) = <C, P>`` (gradient ``C``; the LP reference)."""
        a, b, C = validate_ot(a, b, C)

        def F(P):
            import jax.numpy as jnp

            return jnp.sum(jnp.asarray(C) * P)

        def cvx(P):
            import cvxpy as cp

            return cp.sum(cp.multiply(C, P))

        prob = cls(a, b, F, gradient=lambda P: C, cvxpy_objective=cvx)
        prob._cost = C
        return prob

    @classmethod
    def quadratic(cls, a, b, P0) -> "TransportPolytopeProblem":
        """``F(P) = 0.5 ||P - P0||_F^2``: the Euclidean projection of ``P0`` onto ``U(a, b)``."""
        a, b = validate_marginals(a, b)
        P0 = finite_array("P0", P0, 2)
        if P0.shape != (a.size, b.size):
            raise ValueError(f"P0 must have shape (len(a), len(b)) = {(a.size, b.size)}, got {P0.shape}")

        def F(P):
            import jax.numpy as jnp

            return 0.5 * jnp.sum((P - jnp.asarray(P0)) ** 2)

        def grad(P):
            return P - P0

        def cvx(P):
            import cvxpy as cp

            return 0.5 * cp.sum_squares(P - P0)

        return cls(a, b, F, gradient=grad, cvxpy_objective=cvx)

    # --- the Problem interface ----------------------------------------------------------
    def default_method(self) -> str:
        return "mirror_sinkhorn"

    def objective(self, P) -> float:
        P = check_shape(P, self.shape)
        with _x64():
            return float(self._F(P))

    def gradient(self, P) -> np.ndarray:
        """``grad F(P)`` as a float64 numpy array."""
        with _x64():
            return np.asarray(self._grad_jit(check_shape(P, self.shape)), dtype=np.float64)

    def reference_options(self) -> dict:
        """The linear case: HiGHS (exact LP); otherwise Clarabel with tight tolerances."""
        return {"solver": "HIGHS"} if self._cost is not None else super().reference_options()

    def _cvxpy_objective(self, P):
        if self._cvx is None:
            raise ValueError("no CVXPY model: build the problem with cvxpy_objective=P -> expression")
        return self._cvx(P)

    # --- adapter ------------------------------------------------------------------------
    # the callables handed to the solver are made once per problem, so repeated solves reuse
    # the compiled JAX loop
    def _np_step_grad(self, P, t, key):
        return self.gradient(P)

    def _np_objective(self, P):
        with _x64():
            return float(self._F(P))

    def _jax_step_grad(self, P, t, key):
        return self._grad(P)

    def _solve_mirror_sinkhorn(self, backend="numpy", **options):
        _reserved(options)
        if self._cost is not None:
            return mirror_sinkhorn(self.a, self.b, self._cost, backend=backend, **options)
        if backend == "jax":
            fns = dict(gradient=self._jax_step_grad, objective=self._F, exact_gradient=self._grad)
        else:
            fns = dict(gradient=self._np_step_grad, objective=self._np_objective,
                       exact_gradient=self.gradient)
        return mirror_sinkhorn(self.a, self.b, fns.pop("gradient"), backend=backend, **fns, **options)


def _cost_from_stack(P, t, key, costs):
    """Online cost of round ``t`` (1-based) from a stacked array ``costs`` (T, n, m)."""
    return costs[t - 1]


class OnlineTransport(_PolytopeProblem):
    r"""Online linear optimization on the transport polytope: at round ``t`` play ``pi_t`` in
    $U(a, b)$, then pay $\langle C_t, \pi_t\rangle$.

    Args:
        a, b: marginals (nonnegative, same total).
        costs: an array (T, n, m) of the cost matrices, or a callable ``t -> C_t`` (``t = 1..T``;
            jax-traceable in ``t`` for the JAX back end), with ``horizon=T``.

    Method ``"mirror_sinkhorn"`` plays the Mirror Sinkhorn iterates (each ``pi_t`` depends only on
    ``C_1..C_{t-1}``). ``Result.info['regret']`` holds the regret history at checkpoints ``t``:
    $\sum_{s \le t} \langle C_s, \pi_s\rangle - \min_{P \in U(a,b)} \sum_{s\le t}\langle C_s, P\rangle$,
    the comparator solved exactly by `network_simplex` on the summed cost. ``Result.objective`` is the
    cumulative loss, ``Result.x`` the rounded average of the plays; the status is ``max_iter``
    (all rounds played). `objective` is the cumulative cost $\langle \sum_t C_t, P\rangle$
    of a fixed plan, so `check` compares the averaged plan with the best plan in hindsight.
    """

    methods = {"mirror_sinkhorn": "_solve_mirror_sinkhorn"}

    def __init__(self, a, b, costs, horizon: int | None = None):
        self.a, self.b = validate_marginals(a, b)
        n, m = self.a.size, self.b.size
        if callable(costs):
            if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
                raise ValueError(f"a callable costs needs horizon=T (a positive integer), got {horizon!r}")
            self.horizon = int(horizon)
            self._cost_fn, self.costs = costs, None
            first = self.cost(1)
            if first.shape != (n, m):
                raise ValueError(f"costs(t) must return shape (len(a), len(b)) = {(n, m)}, got {first.shape}")
        else:
            C = finite_array("costs", costs, 3)
            if C.shape[1:] != (n, m) or C.shape[0] < 1:
                raise ValueError(f"costs must have shape (T, len(a), len(b)) = (T, {n}, {m}), got {C.shape}")
            if horizon is not None and horizon != C.shape[0]:
                raise ValueError(f"horizon={horizon!r} differs from the number of cost matrices {C.shape[0]}")
            self.horizon = C.shape[0]
            self._cost_fn, self.costs = None, C
        self._cum = None

    def cost(self, t: int) -> np.ndarray:
        """``C_t`` (1-based) as a float64 array."""
        if self.costs is not None:
            return self.costs[t - 1]
        with _x64():
            C = np.asarray(self._cost_fn(t), dtype=np.float64)
        if C.shape != self.shape or not np.isfinite(C).all():
            raise ValueError(f"costs({t}) must be a finite array of shape {self.shape}")
        return C

    def cumulative_costs(self, ts) -> np.ndarray:
        """``sum_{s <= t} C_s`` for each ``t`` in the increasing sequence ``ts``: (len(ts), n, m)."""
        out, S, s = [], np.zeros(self.shape), 0
        for t in ts:
            if self.costs is not None:
                S = S + self.costs[s:t].sum(axis=0)
            else:
                for u in range(s + 1, t + 1):
                    S = S + self.cost(u)
            s = t
            out.append(S.copy())
        return np.asarray(out)

    def total_cost(self) -> np.ndarray:
        if self._cum is None:
            self._cum = self.cumulative_costs([self.horizon])[0]
        return self._cum

    def default_method(self) -> str:
        return "mirror_sinkhorn"

    def objective(self, P) -> float:
        return float(np.vdot(self.total_cost(), check_shape(P, self.shape)))

    def reference_options(self) -> dict:
        return {"solver": "HIGHS"}

    def _cvxpy_objective(self, P):
        import cvxpy as cp

        return cp.sum(cp.multiply(self.total_cost(), P))

    def _best_in_hindsight(self, S) -> float:
        """``min_{P in U(a,b)} <S, P>`` by `network_simplex` (any sign and scale of ``S``);
        ``nan`` unless it is confirmed optimal."""
        res = network_simplex(self.a, self.b, S, max_iter=10**7)
        return res.objective if res.status is Status.OPTIMAL else float("nan")

    def regret(self, losses, checkpoints=None) -> dict:
        """Regret history of per-round losses ``losses[t-1] = <C_t, pi_t>`` (see the class docstring)."""
        losses = np.asarray(losses, dtype=np.float64)
        T = losses.size
        if checkpoints is None:
            checkpoints = np.unique(np.r_[np.geomspace(1, T, num=min(T, 30)).round().astype(int), T])
        ts = np.asarray(checkpoints, dtype=int)
        S = self.cumulative_costs(ts)
        best = np.array([self._best_in_hindsight(St) for St in S])
        cum = np.cumsum(losses)[ts - 1]
        return {"t": ts, "regret": cum - best, "cumulative_loss": cum, "best_in_hindsight": best}

    # --- adapter ------------------------------------------------------------------------
    def _np_cost_fn(self, P, t, key):
        return self.cost(int(t))

    def _jax_cost_fn(self, P, t, key):
        return self._cost_fn(t)

    def _solve_mirror_sinkhorn(self, backend="numpy", max_iter=None, **options):
        _reserved(options, extra=("tol", "record_steps"))
        T = self.horizon if max_iter is None else validate.integer("max_iter", max_iter)
        if T > self.horizon:
            raise ValueError(f"max_iter (rounds to play) must be an integer in [1, {self.horizon}], got {T!r}")
        if options.get("warm_start") is not None:
            raise ValueError("OnlineTransport does not resume runs (warm_start); play the rounds in one call")
        if self.costs is not None:
            grad, args = _cost_from_stack, (self.costs,)
        else:
            grad, args = (self._jax_cost_fn if backend == "jax" else self._np_cost_fn), ()
        res = mirror_sinkhorn(self.a, self.b, grad, backend=backend, max_iter=int(T), grad_args=args,
                              loss="linear", record_steps=int(T), **options)
        losses = res.info["losses"]
        reg = self.regret(losses)
        return res.replace(objective=float(losses.sum()), info={**res.info, "regret": reg})
