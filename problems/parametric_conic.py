r"""Parametric conic programs: one model, many parameter values $\theta$.

$$
\min_x\ c(\theta)^\top x + d(\theta)\quad\text{s.t.}\quad A(\theta)x + b(\theta) \in K,\quad
l \le x \le u,\quad 2x_{i_k}x_{j_k} \ge \kappa_k^2
$$

with $c, A, b, d$ affine in $\theta \in \mathbb{R}^p$, $K$ a product of zero cones, nonnegative
orthants and second-order cones, and optional rotated-cone pairs $(x_i, x_j, \kappa) \in Q_r^3$
(the form of Tanneau & Van Hentenryck, "Dual Lagrangian Learning for Conic Optimization",
NeurIPS 2024, arXiv 2402.03086; their dual proxies are `DualProxy`, here, over the pure
functions of `cvxkit.solvers.dual_proxy`).

Build one from arrays (`ParametricConicProgram.from_arrays`) or from a CVXPY problem with
``cvxpy.Parameter`` objects (`ParametricConicProgram.from_cvxpy`, through CVXPY's parametric
conic canonicalization: the data tensor that CVXPY keeps for DPP re-solves is exactly the
affine map of $\theta$; `cvxkit.problems.parametric_cvxpy`). The arrays are a `ConicData`
(`cvxkit.problems.conic_data`). Generators of the paper's two classes, with seeded samplers of
$\theta$: `multidimensional_knapsack` (LP) and `production_planning` (rotated SOCP).

An instance is a `Problem` at one parameter value (``prob.theta``; `at` gives another):
`objective`, `residuals`, `to_cvxpy(param)`, `reference(param)` (Clarabel, tolerance 1e-9; the
parameter value ``param`` defaults to ``prob.theta``, as the upper-level value of the bilevel
family defaults to ``x0``) and `check` as in every family; `reference_solve` solves many $\theta$ with one DPP-compiled CVXPY model and
returns the optimal values, primal solutions and duals $y \in K^*$ (the convention
$L = c^\top x + d - y^\top(Ax + b)$). Method ``"dual_proxy"`` trains a DLL proxy on sampled
$\theta$ and returns its certified lower bound at ``theta``.
"""
from __future__ import annotations

import time
import warnings
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from cvxkit.problems.base import REFERENCE_SETTINGS, CheckReport, Problem, _quiet_fd1
from cvxkit.problems.conic_data import ConicData, affine_map, pattern
from cvxkit.problems.parametric_cvxpy import conic_data_from_cvxpy, cvxpy_model, flat_dual
from cvxkit.solvers import validate
from cvxkit.solvers.dual_proxy import ProxyNetwork, dual_proxy_bound
from cvxkit.solvers.result import Result


class ParametricConicProgram(Problem):
    r"""A parametric conic program at a parameter value ``theta`` (see the module docstring).

    Construct with `from_arrays`, `from_cvxpy` or the generators; ``ParametricConicProgram(data,
    theta, sampler)`` wraps a validated `ConicData`.

    Args:
        data: the affine maps, cones, bounds and pairs.
        theta: (p,) the current parameter value (default: zeros).
        sampler: optional ``sampler(rng, k) -> (k, p)`` drawing parameter values (the
            distribution a proxy is trained on); `sample` calls it.
        name: a label.
    """

    family = "parametric_conic"
    methods = {"dual_proxy": "_solve_dual_proxy"}

    def __init__(self, data: ConicData, theta=None, sampler=None, name: str = ""):
        if not isinstance(data, ConicData):
            raise ValueError(f"data must be a ConicData, got {type(data).__name__}")
        if sampler is not None and not callable(sampler):
            raise ValueError("sampler must be callable: sampler(rng, k) -> (k, p) array")
        self.data = data
        self.theta = np.zeros(data.p) if theta is None else data.theta1(theta)[:-1]
        self.sampler = sampler
        self.name = name
        self._cvxpy_source = None       # (problem, parameters) for from_cvxpy
        self._ref_model = None          # cached DPP model for reference_solve

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, c, A, b, cones, *, n_params: int, lb=None, ub=None, d=0.0, pairs=None,
                    theta=None, sampler=None, name: str = "") -> "ParametricConicProgram":
        r"""From affine maps of $\theta$ given as arrays.

        Each of ``c`` (n,), ``A`` (m, n), ``b`` (m,), ``d`` (scalar) is a constant array or a pair
        ``(constant, J)`` with ``J`` the jacobian in $\theta$: dense of shape ``(*shape, p)`` or
        scipy.sparse of shape ``(size, p)`` (row-major vec, e.g. entry ``(i, j)`` of ``A`` is row
        ``i * n + j``). ``cones``: ``[(kind, dim), ...]`` over the rows of ``A`` in order, kind in
        ``"zero"``, ``"nonneg"``, ``"soc"``. ``lb``, ``ub``: variable bounds (default free).
        ``pairs``: ``(i, j, kappa)`` index arrays for the constraints $2x_ix_j \ge \kappa^2$ (their
        variables need bounds $[0, \infty)$).
        """
        p = validate.integer("n_params", n_params)
        c0 = validate.float_array("c", c[0] if isinstance(c, tuple) else c)
        n = int(c0.size) if c0.ndim else None
        A0 = validate.matrix("A", A[0] if isinstance(A, tuple) else A, finite=False, sparse=False)
        if A0.ndim != 2:
            raise ValueError("A (or its constant part) must be a 2-D array (m, n)")
        if isinstance(A, tuple):
            A = (A0, A[1])
        else:
            A = A0
        m = A0.shape[0]
        n = A0.shape[1] if n is None else n
        if A0.shape[1] != n or n == 0:
            raise ValueError(f"A has {A0.shape[1]} columns but c has {n} entries (need >= 1)")
        c_map = affine_map(c, (n,), p, "c")
        A_vec = affine_map(A, (m, n), p, "A")
        b_map = affine_map(b, (m,), p, "b")
        d_map = affine_map(d, (1,), p, "d")
        rows, cols, A_map = pattern(A_vec, n)
        data = ConicData.build(n, m, p, cones, rows, cols, A_map, c_map, b_map, d_map, lb, ub,
                               pairs)
        return cls(data, theta=theta, sampler=sampler, name=name)

    @classmethod
    def from_cvxpy(cls, problem, parameters=None) -> "ParametricConicProgram":
        r"""From a DPP-compliant CVXPY problem whose data depend on ``cvxpy.Parameter`` objects.

        $\theta$ stacks ``parameters`` (default: ``problem.parameters()``) in order, each
        flattened column-major (``cp.vec``); parameters left out keep their current values.
        ``x`` is CVXPY's canonical variable vector (the problem's variables stacked, plus any
        auxiliary ones). Single-variable rows $a x_j + \beta \ge 0$ with constant $a, \beta$
        become bounds. A ``Maximize`` problem becomes the minimization of the negated objective
        (so its bounds are lower bounds on minus the CVXPY value). ``theta`` starts at the
        parameters' current values (zeros where unset).
        Quadratic objective terms are canonicalized exactly into second-order cones (CVXPY's
        ``use_quad_obj=False``). Raises ``ValueError`` for anything the program cannot hold
        exactly: a problem that is not DPP (data not affine in the parameters), integer or
        boolean variables, cones other than zero, nonnegative and second-order ones, or a
        quadratic objective term left in the canonical data -- never a silently dropped term.
        """
        data, theta, params = conic_data_from_cvxpy(problem, parameters)
        prob = cls(data, theta=theta, name="from_cvxpy")
        prob._cvxpy_source = (problem, params)
        return prob

    # --- parameters ---------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.data.n

    @property
    def m(self) -> int:
        return self.data.m

    @property
    def p(self) -> int:
        return self.data.p

    def conic_data(self) -> ConicData:
        """The validated arrays (what `DualProxy` consumes)."""
        return self.data

    def at(self, theta) -> "ParametricConicProgram":
        """The same program at another parameter value (shares data, sampler, compiled model)."""
        other = ParametricConicProgram(self.data, theta, self.sampler, self.name)
        other._cvxpy_source, other._ref_model = self._cvxpy_source, self._ref_model
        return other

    def sample(self, k: int, seed: int = 0) -> np.ndarray:
        """``k`` parameter values (k, p) from the instance's sampler (``ValueError`` if none)."""
        if self.sampler is None:
            raise ValueError("this program has no sampler of theta; pass thetas explicitly")
        k = validate.integer("k", k)
        seed = validate.integer("seed", seed, minimum=0)
        T = validate.float_array("the sampler's output",
                                 self.sampler(np.random.default_rng(seed), k))
        if T.shape != (k, self.p):
            raise ValueError(f"the sampler returned shape {T.shape}, expected ({k}, {self.p})")
        return T

    # --- the Problem interface ----------------------------------------------------------
    def default_method(self) -> str:
        return "dual_proxy"

    def objective(self, x) -> float:
        r"""$c(\theta)^\top x + d(\theta)$ at the current ``theta``."""
        c, _, _, d = self.data.at(self.theta)
        return float(c @ self._check_x(x) + d)

    def residuals(self, x) -> dict[str, float]:
        """Largest violations: ``zero`` ($|Ax+b|$), ``nonneg`` ($(Ax+b)_-$), ``soc``
        ($\\lVert s\\rVert - t$), ``bounds`` and ``pairs`` ($\\kappa^2/2 - x_ix_j$ or a negative
        entry)."""
        x = self._check_x(x)
        _, A, b, _ = self.data.at(self.theta)
        v = A @ x + b
        idx = self.data.cone_index()
        out = {"zero": float(np.max(np.abs(v[idx["zero"]]), initial=0.0)),
               "nonneg": float(np.max(-v[idx["nonneg"]], initial=0.0)),
               "soc": max([0.0] + [float(np.max(np.linalg.norm(v[r][:, 1:], axis=1) - v[r][:, 0]))
                                   for r in idx["soc"].values()]),
               "bounds": float(max(np.max(self.data.lb - x, initial=0.0),
                                   np.max(x - self.data.ub, initial=0.0)))}
        D = self.data
        xi, xj = x[D.pairs_i], x[D.pairs_j]
        out["pairs"] = float(max(np.max(D.kappa ** 2 / 2 - xi * xj, initial=0.0),
                                 np.max(-xi, initial=0.0), np.max(-xj, initial=0.0)))
        return {k: max(val, 0.0) for k, val in out.items()}

    def to_cvxpy(self, param=None, *, theta=None):
        """``(cvxpy.Problem, x)``: the canonical conic model at the parameter value ``param``
        (default ``self.theta``) with constants; cone rows in order, then bounds and
        rotated-cone pairs. ``theta=`` is the former name of ``param`` (deprecated)."""
        if theta is not None:  # the former keyword
            warnings.warn("to_cvxpy(theta=...) is deprecated: use to_cvxpy(param=...)",
                          DeprecationWarning, stacklevel=2)
            param = theta if param is None else param
        t = self.theta if param is None else self.data.theta1(param)[:-1]
        model, x, _, _ = cvxpy_model(self.data, t, parametric=False)
        return model, x

    def reference(self, param=None, **solver_options) -> Result:
        """Clarabel's solution at the parameter value ``param`` (default ``self.theta``, cached
        there without ``solver_options``; another value: ``self.at(param).reference()``)."""
        if param is None:
            return super().reference(**solver_options)
        return self.at(param).reference(**solver_options)

    def reference_solve(self, thetas, **solver_options) -> dict:
        r"""Clarabel (through one DPP-compiled CVXPY model) at each row of ``thetas`` (B, p).

        Returns ``objective`` (B,), ``x`` (B, n), ``y`` (B, m) (duals in $K^*$, convention
        $L = c^\top x + d - y^\top(Ax+b)$), ``status`` (B,) (CVXPY's strings),
        ``solver_time`` (B,) (Clarabel's own seconds) and ``wall_time`` (B,) (with CVXPY's
        parameter update). Tolerances 1e-9 unless ``solver_options`` say otherwise (an instance
        that Clarabel reports inaccurate at 1e-9 is re-solved at its default tolerances).
        """
        T = np.atleast_2d(validate.float_array("thetas", thetas))
        if T.ndim != 2 or T.shape[1] != self.p:
            raise ValueError(f"thetas must have shape (B, {self.p}), got {np.shape(thetas)}")
        for t in T:
            self.data.theta1(t)
        if self._ref_model is None:
            self._ref_model = cvxpy_model(self.data, self.theta, parametric=True)
        prob, x, cons, setter = self._ref_model
        opts = {"solver": "CLARABEL", **REFERENCE_SETTINGS, **solver_options}
        B = T.shape[0]
        out = {"objective": np.full(B, np.nan), "x": np.full((B, self.n), np.nan),
               "y": np.full((B, self.m), np.nan), "status": [], "solver_time": np.zeros(B),
               "wall_time": np.zeros(B)}
        for k, t in enumerate(T):
            t0 = time.perf_counter()
            setter(t)
            with _quiet_fd1(not opts.get("verbose", False)):
                prob.solve(**opts)
                if prob.status == "optimal_inaccurate" and not solver_options:
                    # Clarabel could not reach 1e-9: its default tolerances (as `reference`)
                    prob.solve(solver="CLARABEL")
            out["wall_time"][k] = time.perf_counter() - t0
            out["status"].append(prob.status)
            out["solver_time"][k] = prob.solver_stats.solve_time or np.nan
            if prob.value is not None and np.isfinite(prob.value):
                out["objective"][k] = prob.value
                out["x"][k] = x.value
                # CVXPY's equality duals enter its Lagrangian with a plus sign: negate them
                out["y"][k] = np.concatenate([flat_dual(c) * (-1.0 if kind == "zero" else 1.0)
                                              for c, (kind, _) in zip(cons, self.data.cones)])
        return out

    def _solve_dual_proxy(self, backend="jax", seed: int = 0, train_thetas=None, **options):
        """Train on ``train_thetas`` (B, p); default: 512 draws of the sampler, or, for a
        program without one, ``theta`` itself (the bound is valid either way)."""
        seed = validate.integer("seed", seed, minimum=0)
        if train_thetas is not None:
            train = validate.float_array("train_thetas", train_thetas, finite=True)
            if train.ndim == 1:
                train = train[None]
            if train.ndim != 2 or train.shape[0] < 1 or train.shape[1] != self.p:
                raise ValueError(f"train_thetas must have shape (B, {self.p}), got "
                                 f"{np.shape(train_thetas)}")
        elif self.sampler is not None:
            train = self.sample(512, seed=seed + 1)
        else:
            train = self.theta[None]
        return dual_proxy_bound(self.data.arrays(), train, self.theta, backend=backend, seed=seed,
                                **options)

    def check(self, result: Result, rtol: float = 1e-6, atol: float = 1e-6,
              reference: Result | None = None) -> CheckReport:
        """A primal answer: as `Problem.check`. A dual bound (``result.info['dual_bound']``):
        ``rel_gap = (reference - bound) / |reference|``, ``max_violation`` = the dual
        infeasibility of its duals plus any excess of the bound over the reference;
        ``ok`` when the bound is valid (<= reference + 1e-7 (1 + |reference|)), ``rel_gap <= rtol``
        and the duals are feasible to ``atol``."""
        if not result.info.get("dual_bound"):
            return super().check(result, rtol, atol, reference)
        ref = self.reference() if reference is None else reference
        g = result.objective
        gap = (ref.objective - g) / max(abs(ref.objective), 1e-12)
        viol = self.dual_infeasibility(result.x)
        excess = max(0.0, g - ref.objective - 1e-7 * (1 + abs(ref.objective)))
        ok = bool(ref.status.converged and result.status.converged and excess == 0
                  and gap <= rtol and viol <= atol)
        return CheckReport(g, ref.objective, float(abs(gap)), viol + excess, float("nan"),
                           result.status, ref.status, rtol, atol, ok)

    def dual_infeasibility(self, duals: dict) -> float:
        r"""Largest violation of dual feasibility of ``duals`` (`DualProxy.duals` at ``theta``):
        $y \notin K^*$ (orthant: $y_-$; SOC: $\lVert s\rVert - t$), negative bound multipliers,
        pair duals outside $Q_r$ ($\sigma^2 - 2\pi\tau$ relative to $1 + 2\pi\tau$), and the
        stationarity residual
        $\lVert c - A^\top y - z_l + z_u - z_{\text{pairs}}\rVert_\infty$ relative to
        $1 + \lVert c\rVert_\infty$."""
        D = self.data
        c, A, _, _ = D.at(self.theta)
        y = np.asarray(duals["y"], dtype=np.float64)
        idx = D.cone_index()
        v = [np.max(-y[idx["nonneg"]], initial=0.0)]
        v += [np.max(np.linalg.norm(y[r][:, 1:], axis=1) - y[r][:, 0]) for r in idx["soc"].values()]
        zl, zu, zp = (np.asarray(duals[k], dtype=np.float64) for k in
                      ("z_lower", "z_upper", "z_pairs"))
        v += [np.max(-zl, initial=0.0), np.max(-zu, initial=0.0)]
        if zp.size:
            prod = 2 * zp[:, 0] * zp[:, 1]
            v += [np.max((zp[:, 2] ** 2 - prod) / (1 + np.abs(prod))), np.max(-zp[:, :2])]
        zpair = np.zeros(D.n)
        zpair[D.pairs_i], zpair[D.pairs_j] = zp[:, 0], zp[:, 1]
        stat = c - A.T @ y - zl + zu - zpair
        v.append(np.max(np.abs(stat), initial=0.0) / (1 + np.max(np.abs(c))))
        return float(max(0.0, *v))


# --- the paper's instance classes -----------------------------------------------------------
def multidimensional_knapsack(m: int = 5, n: int = 100, seed: int = 0) -> ParametricConicProgram:
    r"""The paper's LP class: continuous multi-dimensional knapsack.

    $\min -p^\top x$ s.t. $Wx \le b$, $0 \le x \le 1$ with $\theta = (p, \mathrm{vec}(W), b)$
    ($p = n + mn + m$ parameters, W row-major). Sampler (the paper's MIPLearn-style generator):
    $W_{ij}$ uniform integers in [0, 1000], $b_i = \mathrm{round}(\tfrac14\sum_j W_{ij})$,
    $p_j = \mathrm{round}(\mathrm{mean}_i W_{ij} + 100 u_j)$, $u_j \sim U[0, 1]$. ``theta`` is
    one draw with ``seed``.
    """
    m, n = int(m), int(n)
    if m < 1 or n < 1:
        raise ValueError(f"need m, n >= 1, got m={m}, n={n}")
    P = n + m * n + m
    Jc = sp.csr_matrix((-np.ones(n), (np.arange(n), np.arange(n))), shape=(n, P))
    JA = sp.csr_matrix((-np.ones(m * n), (np.arange(m * n), n + np.arange(m * n))),
                       shape=(m * n, P))
    Jb = sp.csr_matrix((np.ones(m), (np.arange(m), n + m * n + np.arange(m))), shape=(m, P))

    def sampler(rng, k):
        W = rng.integers(0, 1001, size=(k, m, n)).astype(float)
        b = np.round(0.25 * W.sum(2))
        p = np.round(W.mean(1) + 100 * rng.random((k, n)))
        return np.hstack([p, W.reshape(k, -1), b])

    theta = sampler(np.random.default_rng(seed), 1)[0]
    return ParametricConicProgram.from_arrays(
        (np.zeros(n), Jc), (np.zeros((m, n)), JA), (np.zeros(m), Jb), [("nonneg", m)],
        n_params=P, lb=0.0, ub=1.0, theta=theta, sampler=sampler,
        name=f"multi-knapsack m={m} n={n}")


def production_planning(n: int = 10, seed: int = 0) -> ParametricConicProgram:
    r"""The paper's nonlinear class: production planning with rotated second-order cones.

    $\min d^\top x + e^\top t$ s.t. $r^\top x \le B$, $x_it_i \ge 1$ ($(x_i, t_i, \sqrt2) \in
    Q_r^3$), $x, t \ge 0$; variables ``(x, t)`` (2n), $\theta = (d, e, r, B)$ (3n + 1).
    Sampler (the authors' generator): demand $D_i \sim U[1, 100]$, production cost
    $c_p \sim U[1, 10]$, holding rate $c_r \sim U[0.05, 2]$, ordering factor $U[0.1, 1.5]$,
    storage factor $U[0.1, 2]$, capacity factor $U[0.25, 0.75]$; $d = c_pc_r/2$,
    $e = \text{ordering}\cdot c_p\cdot D$, $r = \text{storage}\cdot c_p$,
    $B = \text{capacity}\cdot\sum_i r_i$. The budget dual is the one predicted; the cone duals
    are completed in closed form.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"need n >= 1, got n={n}")
    P = 3 * n + 1
    Jc = sp.csr_matrix((np.ones(2 * n), (np.arange(2 * n), np.arange(2 * n))), shape=(2 * n, P))
    JA = sp.csr_matrix((-np.ones(n), (np.arange(n), 2 * n + np.arange(n))), shape=(2 * n, P))
    Jb = sp.csr_matrix(([1.0], ([0], [3 * n])), shape=(1, P))

    def sampler(rng, k):
        u = lambda lo, hi: rng.uniform(lo, hi, size=(k, n))  # noqa: E731
        demand, cp_, cr = u(1, 100), u(1, 10), u(0.05, 2)
        order, store = u(0.1, 1.5), u(0.1, 2)
        cap = rng.uniform(0.25, 0.75, size=(k, 1))
        r = store * cp_
        return np.hstack([cp_ * cr / 2, order * cp_ * demand, r, cap * r.sum(1, keepdims=True)])

    theta = sampler(np.random.default_rng(seed), 1)[0]
    idx = np.arange(n)
    return ParametricConicProgram.from_arrays(
        (np.zeros(2 * n), Jc), (np.zeros((1, 2 * n)), JA), (np.zeros(1), Jb), [("nonneg", 1)],
        n_params=P, lb=0.0, ub=np.inf, pairs=(idx, n + idx, np.full(n, np.sqrt(2.0))),
        theta=theta, sampler=sampler, name=f"production planning n={n}")


def portfolio(n: int = 20, seed: int = 0):
    r"""A parametric portfolio SOCP built through `ParametricConicProgram.from_cvxpy`.

    $\max \mu^\top w$ s.t. $\lVert F^\top w\rVert_2 \le \sigma$, $\mathbf 1^\top w = 1$,
    $0 \le w \le w_{\max}$ with a fixed factor matrix $F$ (n, n/2 + 1), $w_{\max} = 3/n$ (capped
    at 1) and $\theta = (\mu, \sigma)$: expected returns $\mu = \bar\mu + 0.02\,\xi$,
    $\xi \sim N(0, I)$, around a seeded $\bar\mu \sim U[0.02, 0.12]$, and the risk budget
    $\sigma \sim U[1, 2]\,\sigma_{\min}$, $\sigma_{\min}$ the least risk of any feasible
    portfolio (solved once), so every draw is feasible. Returns the program and the CVXPY
    problem (a maximization: its value is minus the program's; parameters ``mu``, ``sigma``).
    """
    import cvxpy as cp

    n = int(n)
    if n < 2:
        raise ValueError(f"need n >= 2, got n={n}")
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n, n // 2 + 1)) * 0.1 / np.sqrt(n // 2 + 1)
    wmax = min(1.0, 3.0 / n)
    w = cp.Variable(n)
    mu, sigma = cp.Parameter(n, name="mu"), cp.Parameter(name="sigma")
    cons = [cp.SOC(sigma, F.T @ w), cp.sum(w) == 1, w >= 0, w <= wmax]
    prob = cp.Problem(cp.Maximize(mu @ w), cons)
    # the least risk a feasible portfolio can have (solved once)
    risk = cp.Problem(cp.Minimize(cp.norm(F.T @ w)), [cp.sum(w) == 1, w >= 0, w <= wmax])
    with _quiet_fd1(True):
        risk.solve(solver="CLARABEL")
    smin = float(risk.value)
    mubar = rng.uniform(0.02, 0.12, size=n)

    def sampler(rng_, k):
        return np.hstack([mubar + 0.02 * rng_.standard_normal((k, n)),
                          smin * rng_.uniform(1.0, 2.0, size=(k, 1))])

    theta = sampler(np.random.default_rng(seed + 1), 1)[0]
    mu.value, sigma.value = theta[:n], theta[n]
    pcp = ParametricConicProgram.from_cvxpy(prob, [mu, sigma])
    pcp.sampler, pcp.name = sampler, f"portfolio n={n}"
    return pcp, prob


VALIDATION_GAP_DRAWS = 256
"""The most validation draws `DualProxy.fit` solves with Clarabel to report its gap."""


def _as_conic_data(problem, parameters) -> ConicData:
    if isinstance(problem, ConicData):
        return problem
    if hasattr(problem, "conic_data"):
        return problem.conic_data()
    try:
        import cvxpy as cp
    except ImportError:  # pragma: no cover
        cp = None
    if cp is not None and isinstance(problem, cp.Problem):
        return ParametricConicProgram.from_cvxpy(problem, parameters).conic_data()
    raise ValueError("DualProxy needs a cvxpy.Problem with parameters, a ParametricConicProgram "
                     f"or a ConicData; got {type(problem).__name__}")


class DualProxy(ProxyNetwork):
    r"""A learned dual proxy (Dual Lagrangian Learning): $\theta \mapsto$ dual-feasible
    $(\hat y, z)$ and the certified bound $g(\hat y)$; the front end of
    `cvxkit.solvers.dual_proxy.ProxyNetwork` (which runs on plain arrays).

    Args:
        problem: a ``cvxpy.Problem`` whose data depend on ``cvxpy.Parameter`` objects (DPP), a
            `ParametricConicProgram`, or a `ConicData`.
        parameters: for a CVXPY problem, the parameters in the order they are stacked into
            $\theta$ (each flattened column-major, like ``cp.vec``); default: all of them.
        hidden, activation, orthant, seed, dtype: the network and its training, as in
            `ProxyNetwork` (defaults: the paper's sigmoid network of width
            ``max(32, min(256, 2 (m + n)))``, float32 training, float64 bounds).

    Every variable outside the rotated-cone pairs needs finite bounds: ``ValueError``
    otherwise. ``data`` is the
    `ConicData`; `bound`, `duals`, `fit` and `result` are documented on `ProxyNetwork`.
    """

    def __init__(self, problem, parameters: Sequence | None = None, *, hidden=None,
                 activation: str = "sigmoid", orthant: str = "softplus", seed: int = 0,
                 dtype: str = "float32"):
        data = _as_conic_data(problem, parameters)
        super().__init__(data.arrays(), hidden=hidden, activation=activation, orthant=orthant,
                         seed=seed, dtype=dtype)
        self.data = data
        self.validation_gap_ = None

    def fit(self, thetas, *, validation_gap: bool = True, **options) -> "DualProxy":
        r"""`ProxyNetwork.fit` (same ``options``: ``epochs``, ``batch_size``, ``lr``,
        ``val_thetas``, ``val_fraction``, ``patience``, ``min_lr``, ``time_limit``,
        ``verbose``, ``progress``), then, with ``validation_gap``, the gap on the validation
        split: Clarabel solves up to `VALIDATION_GAP_DRAWS` of its draws (through one
        DPP-compiled CVXPY model, `ParametricConicProgram.reference_solve`; about a millisecond
        each for small programs) and ``validation_gap_`` is
        ``{"mean", "median", "max", "invalid", "draws", "seconds"}`` of
        ``(OPT - bound) / |OPT|`` over the draws Clarabel solved (``invalid``: bounds above
        ``OPT + 1e-7 (1 + |OPT|)``). With ``verbose`` it is printed."""
        validation_gap = validate.boolean("validation_gap", validation_gap)
        super().fit(thetas, **options)
        self.validation_gap_ = None
        if validation_gap:
            self.validation_gap_ = self._validation_gap()
            if options.get("verbose") and self.validation_gap_ is not None:
                v = self.validation_gap_
                print(f"gap on {v['draws']} validation draws (Clarabel reference, "
                      f"{v['seconds']:.1f} s): mean {v['mean']:.3%}, median {v['median']:.3%}, "
                      f"max {v['max']:.3%}, invalid {v['invalid']}")
        return self

    def _validation_gap(self) -> dict | None:
        V = self.validation_thetas_[:VALIDATION_GAP_DRAWS]
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                ref = ParametricConicProgram(self.data, theta=V[0]).reference_solve(V)
        except Exception as exc:  # noqa: BLE001 - no reference (no solver): report why
            warnings.warn(f"DualProxy.fit: no validation gap (reference solve failed: {exc})",
                          RuntimeWarning, stacklevel=3)
            return None
        ok = np.array([s == "optimal" for s in ref["status"]])
        if not ok.any():
            return None
        opt, b = ref["objective"][ok], self.bound(V[ok])
        gap = (opt - b) / np.maximum(np.abs(opt), 1e-12)
        return {"mean": float(gap.mean()), "median": float(np.median(gap)),
                "max": float(gap.max()),
                "invalid": int(np.sum(b > opt + 1e-7 * (1 + np.abs(opt)))),
                "draws": int(ok.sum()), "seconds": time.perf_counter() - t0}
