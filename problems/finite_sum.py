r"""Finite-sum monotone inclusions: a finite-sum bilinear matrix game over simplices.

``FiniteSumMatrixGame(A)`` with ``A`` of shape (n, m, k) is the zero-sum game

$$
\min_{x \in \Delta_m} \max_{y \in \Delta_k}\ x^\top \bar A y, \qquad
\bar A = \frac1n \sum_{i=1}^n A_i,
$$

(the row player $x$ pays $x^\top \bar A y$ to the column player $y$), i.e. the monotone inclusion
$0 \in F(z) + N_{\Delta_m \times \Delta_k}(z)$ for $z = (x, y)$ with the finite sum
$F(z) = \frac1n\sum_i F_i(z)$, $F_i(x, y) = (A_i y,\, -A_i^\top x)$: one component evaluation
costs $O(mk)$, a full pass $n$ of them. This is the matrix-game experiment of Cai, Alacaoglu &
Diakonikolas (ICLR 2024), with a payoff that is itself an average (e.g. over samples or
scenarios). Its average Lipschitz constant is $L = (\frac1n\sum_i\|A_i\|_2^2)^{1/2}$ and that of
$F$ is $L_F = \|\bar A\|_2 \le L$; variance reduction pays when the two are close.

Methods: ``"vr_halpern"`` (`cvxkit.solvers.halpern.vr_halpern`, default ``variant="forb"``, the
paper's method for monotone Lipschitz operators) and ``"halpern"`` (deterministic: the Halpern
iteration on the extragradient map with step $1/L_F$, $2n$ component evaluations per iteration,
plus $n$ for the stopping residual, not counted in ``info["evals"]`` as for ``vr_halpern``).
Both stop on the same residual, so ``tol`` means the same for both.

Scale: every tolerance is relative to the payoff scale $\alpha = \max_{i,j,l}|(A_i)_{jl}|$
(1 if $A = 0$). The solvers run on the normalized payoffs $A/\alpha$, so ``tol`` bounds the
forward-backward residual of the normalized game,
$r(z) = \|z - P(z - F(z)/\alpha)\| \le$ ``tol`` ($P$ the projection onto
$\Delta_m\times\Delta_k$), and $A \cdot 10^k$ gives the same status, the same strategies and
the value times $10^k$. At such a $z$ the duality gap is at most
$\alpha\, r(z)\,(2 + 2L_F/\alpha + \sqrt m + \sqrt k)$ (``info["gap_bound"]``).

Certificates for $z = (x, y)$: the duality gap $\max_j (\bar A^\top x)_j - \min_i (\bar A y)_i \ge 0$
(zero exactly at equilibria) and the forward-backward operator residual
$\|z - P(z - F(z))\|$. Reference: the LP $\min t$ s.t. $\bar A^\top x \le t\mathbf 1$,
$\bar A y \ge t\mathbf 1$, $x \in \Delta_m$, $y \in \Delta_k$, whose only feasible $t$ is the game
value and whose feasible points are the equilibria, solved by HiGHS through CVXPY (its
constraints on $\bar A/\alpha$, its objective $\alpha t$: every feasible point is optimal, so
HiGHS's absolute tolerances act on normalized data).
"""
from __future__ import annotations

import numpy as np

from cvxkit.problems.base import Problem
from cvxkit.solvers import validate
from cvxkit.solvers.halpern import namespace_of
from cvxkit.solvers.result import Result


def _game_component(data, z, idx):
    """Average over ``idx`` of $F_i(x, y) = (A_i y, -A_i^\\top x)$ (numpy or JAX arrays)."""
    (A,) = data
    m = A.shape[1]
    x, y = z[:m], z[m:]
    As = A[idx]  # (b, m, k)
    return namespace_of(z).concatenate([(As @ y).mean(axis=0), -(x @ As).mean(axis=0)])


def random_game(n: int, m: int, k: int, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    r"""Payoffs ``A`` (n, m, k): $A_i = B + \sigma N_i$ with $B$, $N_i$ i.i.d. standard normal entries
    scaled by $1/\sqrt{\max(m, k)}$ and $\sigma$ = ``noise`` (``np.random.default_rng(seed)``).
    Small ``noise`` makes the components alike ($L \approx L_F$)."""
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(max(m, k))
    B = rng.standard_normal((m, k)) * s
    return B[None] + noise * s * rng.standard_normal((n, m, k))


def policeman_burglar(m: int, theta: float = 0.8, seed: int = 1) -> np.ndarray:
    r"""The policeman-and-burglar payoff of the paper's experiment, (m, m):
    $M_{ij} = w_j (1 - e^{-\theta |i - j|})$, $w_j = |N(0, 1)|$ (``np.random.default_rng(seed)``).

    With ``noisy_components`` it gives a finite sum whose average is this matrix."""
    rng = np.random.default_rng(seed)
    w = np.abs(rng.standard_normal(m))
    i = np.arange(m)
    return w[None, :] * (1.0 - np.exp(-theta * np.abs(i[:, None] - i[None, :])))


def noisy_components(M, n: int, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    r"""``A`` (n, m, k) with $A_i = M + \sigma\|M\|_\infty N_i$, the $N_i$ centred (their mean is 0),
    so that $\bar A = M$ exactly."""
    M = validate.float_array("M", M, ndim=2, nonempty=True, finite=True)
    rng = np.random.default_rng(seed)
    N = rng.standard_normal((n,) + M.shape)
    N -= N.mean(axis=0, keepdims=True)
    return M[None] + noise * np.abs(M).max() * N


class FiniteSumMatrixGame(Problem):
    r"""$\min_{x\in\Delta_m}\max_{y\in\Delta_k} x^\top \bar A y$, $\bar A = \frac1n\sum_i A_i$ (module docstring).

    Args:
        A: (n, m, k) finite real payoffs, n components (a single (m, k) matrix, dense or any
            scipy.sparse format, is one component).

    The solution ``Result.x`` is $z = (x, y)$, shape (m + k,); `strategies` splits it.
    ``Result.dual`` is the second (column, maximizing) player's strategy $y$ = ``x[m:]``, shape
    (k,): the dual variable of the row player's problem $\min_x \max_j (\bar A^\top x)_j$.
    `objective` is $\max_j(\bar A^\top x)_j$, the loss the row strategy guarantees (the game value
    at an equilibrium); `residuals` gives the duality gap and the simplex violations. ``payoff_scale`` is
    $\alpha = \max|A|$, the unit of every tolerance (module docstring).
    """

    family = "finite_sum"
    methods = {"vr_halpern": "_solve_vr_halpern", "halpern": "_solve_halpern"}

    def __init__(self, A):
        A = validate.matrix("A", A, finite=False, sparse=False)
        if A.ndim == 2:
            A = A[None]
        if A.ndim != 3 or A.size == 0:
            raise ValueError(f"A must be a non-empty array of shape (n, m, k) (or (m, k)), "
                             f"got shape {A.shape}")
        if not np.isfinite(A).all():
            raise ValueError("A has non-finite entries (NaN or inf)")
        self.A = A
        self.n, self.m, self.k = A.shape
        amax = float(np.abs(A).max())
        self.payoff_scale = amax if amax > 0 else 1.0
        An = A / self.payoff_scale  # sums and norms of normalized data: no overflow near 1e308
        with np.errstate(over="ignore"):
            self.A_bar = A.mean(axis=0)
        if not np.isfinite(self.A_bar).all():  # the sum overflowed: average normalized data
            self.A_bar = self.payoff_scale * An.mean(axis=0)
        self.lipschitz = self.payoff_scale * float(
            np.sqrt(np.mean(np.linalg.norm(An, 2, axis=(1, 2)) ** 2)))
        self.lipschitz_full = self.payoff_scale * float(np.linalg.norm(An.mean(axis=0), 2))
        # values and gaps are compared in units of the payoff scale
        self.objective_scale = 1e-9 * self.payoff_scale

    # --- the operator view --------------------------------------------------------------
    def operator(self, normalized: bool = False):
        r"""The `FiniteSumOperator` $F$ and the resolvent of $G$ (projection onto the simplices);
        with ``normalized``, $F/\alpha$ (payoffs $A/\alpha$: what the solvers run on).

        Built once per instance, so that repeated JAX solves reuse their compiled loops."""
        from cvxkit.solvers.halpern import FiniteSumOperator, simplex_product_resolvent

        cache = getattr(self, "_operators", None)
        if cache is None:
            cache = self._operators = {}
        if normalized not in cache:
            s = self.payoff_scale if normalized else 1.0
            op = FiniteSumOperator(_game_component, self.n, self.m + self.k, (self.A / s,),
                                   lipschitz=max(self.lipschitz / s, 1e-300),
                                   lipschitz_full=max(self.lipschitz_full / s, 1e-300))
            cache[normalized] = (op, simplex_product_resolvent((self.m, self.k)))
        return cache[normalized]

    def start(self) -> np.ndarray:
        """The uniform strategies (the paper's starting point), (m + k,)."""
        return np.concatenate([np.full(self.m, 1.0 / self.m), np.full(self.k, 1.0 / self.k)])

    def _strategy_vector(self, z, name: str = "z") -> np.ndarray:
        z = validate.float_array(name, z)
        if z.shape != (self.m + self.k,):
            raise ValueError(f"{name} must have shape ({self.m + self.k},) (the strategies x, y "
                             f"stacked), got {z.shape}")
        return z

    def strategies(self, z) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` from ``z`` (m + k,)."""
        z = self._strategy_vector(z)
        return z[:self.m], z[self.m:]

    def operator_residual(self, z, step: float | None = None) -> float:
        r"""$\|z - P(z - sF(z))\|/s$, $P$ the projection onto $\Delta_m\times\Delta_k$; the
        default step $s = 1/\alpha$ makes it $\alpha$ times the residual that ``tol`` bounds."""
        from cvxkit.solvers.halpern import forward_backward_residual

        step = 1.0 / self.payoff_scale if step is None else validate.positive("step", step)
        op, J = self.operator()
        z = self._strategy_vector(z)
        return float(forward_backward_residual(op, J, z, step))

    def relative_residual(self, z) -> float:
        r"""$\|z - P(z - F(z)/\alpha)\|$: the scale-free residual that ``tol`` bounds."""
        from cvxkit.solvers.halpern import forward_backward_residual

        op, J = self.operator(normalized=True)
        return float(forward_backward_residual(op, J, self._strategy_vector(z), 1.0))

    def gap_bound(self, residual: float) -> float:
        r"""The duality-gap bound $\alpha r(2 + 2L_F/\alpha + \sqrt m + \sqrt k)$ at a point whose
        relative residual is $r$ (module docstring)."""
        a = self.payoff_scale
        return a * residual * (2 + 2 * self.lipschitz_full / a + np.sqrt(self.m) + np.sqrt(self.k))

    def duality_gap(self, z) -> float:
        r"""$\max_j(\bar A^\top x)_j - \min_i(\bar A y)_i$ for the simplex projections of ``x``, ``y``."""
        from cvxkit.solvers.halpern import project_simplex

        x, y = self.strategies(z)
        x, y = project_simplex(x), project_simplex(y)
        return float((self.A_bar.T @ x).max() - (self.A_bar @ y).min())

    # --- Problem interface --------------------------------------------------------------
    def default_method(self) -> str:
        return "vr_halpern"

    def objective(self, z) -> float:
        x, _ = self.strategies(z)
        return float((self.A_bar.T @ x).max())

    def residuals(self, z) -> dict[str, float]:
        x, y = self.strategies(z)
        return {
            "duality_gap": max(0.0, self.duality_gap(z)),
            "simplex_x": max(0.0, float(-x.min()), abs(float(x.sum()) - 1.0)),
            "simplex_y": max(0.0, float(-y.min()), abs(float(y.sum()) - 1.0)),
        }

    def check(self, result: Result, rtol: float = 1e-6, atol: float = 1e-6, reference=None):
        r"""`Problem.check` with the duality gap measured in units of the payoff scale: the
        report's ``max_violation`` is the largest of gap/$\alpha$ and the simplex violations, so
        that ``atol`` means the same for $A$ and $A \cdot 10^k$."""
        import dataclasses

        rep = super().check(result, rtol, atol, reference)
        r = self.residuals(result.x)
        viol = max(r["duality_gap"] / self.payoff_scale, r["simplex_x"], r["simplex_y"])
        ok = bool(result.status.converged and rep.reference_status.converged
                  and rep.rel_gap <= rtol and viol <= atol)
        return dataclasses.replace(rep, max_violation=viol, ok=ok)

    def reference_options(self) -> dict:
        return {"solver": "HIGHS"}

    def to_cvxpy(self):
        """``(problem, z)``: the reference LP (module docstring), in the user's units."""
        import cvxpy as cp

        z = cp.Variable(self.m + self.k)
        t = cp.Variable()  # the value over the payoff scale
        x, y = z[:self.m], z[self.m:]
        An = self.A_bar / self.payoff_scale
        cons = [x >= 0, cp.sum(x) == 1, y >= 0, cp.sum(y) == 1, An.T @ x <= t, An @ y >= t]
        return cp.Problem(cp.Minimize(self.payoff_scale * t), cons), z

    # --- adapters -----------------------------------------------------------------------
    def _start_from(self, warm_start) -> np.ndarray:
        """The first iterate: uniform strategies, or ``warm_start`` (a Result of this game or a
        (m + k,) point) projected onto the simplices."""
        from cvxkit.solvers.halpern import project_simplex

        if warm_start is None:
            return self.start()
        expect = f"a Result of this game or an array of shape ({self.m + self.k},)"
        if isinstance(warm_start, Result):
            if warm_start.x is None:
                raise ValueError(f"warm_start is a Result without x; expected {expect}")
            v = warm_start.x
        elif isinstance(warm_start, (dict, str, bytes)) or callable(warm_start):
            raise ValueError(f"warm_start must be {expect}, got {type(warm_start).__name__}")
        else:
            v = warm_start
        v = validate.float_array("warm_start", v)
        if v.shape != (self.m + self.k,):
            raise ValueError(f"warm_start must be {expect}, got shape {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError("warm_start has non-finite entries (NaN or inf)")
        return np.concatenate([project_simplex(v[:self.m]), project_simplex(v[self.m:])])

    def _solve_vr_halpern(self, backend="numpy", variant="forb", warm_start=None,
                          **options) -> Result:
        from cvxkit.solvers.halpern import vr_halpern

        op, J = self.operator(normalized=True)
        # residual_step 1 on the normalized game: the residual that tol bounds (module docstring)
        res = vr_halpern(op, self._start_from(warm_start), J, backend=backend, variant=variant,
                         residual_step=1.0, **options)
        return self._finish(res)

    def _solve_halpern(self, backend="numpy", warm_start=None, **options) -> Result:
        from cvxkit.solvers.halpern import extragradient_map, forward_backward_residual, halpern

        op, J = self.operator(normalized=True)
        eta = 1.0 / op.lipschitz_full
        if getattr(self, "_halpern_maps", None) is None:  # once, for compiled-loop reuse

            def fb_residual(z, *data):
                return forward_backward_residual(op, J, z, 1.0, data)

            self._halpern_maps = (extragradient_map(op, J, eta), fb_residual)
        T, fb_residual = self._halpern_maps
        # stop on the game's residual (module docstring), as vr_halpern does
        res = halpern(T, self._start_from(warm_start), backend=backend, data=op.data,
                      residual_scale=eta, evals_per_call=2 * self.n, residual_fn=fb_residual,
                      monitor_fn=fb_residual, **options)
        return self._finish(res)

    def _finish(self, res: Result) -> Result:
        """User units: the objective and duality gap in payoff units; the residuals relative."""
        r = self.relative_residual(res.x)
        info = {**res.info, "duality_gap": self.duality_gap(res.x), "relative_residual": r,
                "operator_residual": self.operator_residual(res.x), "gap_bound": self.gap_bound(r),
                "payoff_scale": self.payoff_scale}
        # dual: the column player's (maximizer's) strategy y = z[m:] (a copy; x keeps z whole)
        dual = None if res.x is None else np.array(np.asarray(res.x)[self.m:])
        return res.replace(objective=self.objective(res.x), info=info, dual=dual)
