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
affine map of $\theta$). Generators of the paper's two classes, with seeded samplers of
$\theta$: `multidimensional_knapsack` (LP) and `production_planning` (rotated SOCP).

An instance is a `Problem` at one parameter value (``prob.theta``; `at` gives another):
`objective`, `residuals`, `to_cvxpy`, `reference` (Clarabel, tolerance 1e-9) and `check` as in
every family; `reference_solve` solves many $\theta$ with one DPP-compiled CVXPY model and
returns the optimal values, primal solutions and duals $y \in K^*$ (the convention
$L = c^\top x + d - y^\top(Ax + b)$). Method ``"dual_proxy"`` trains a DLL proxy on sampled
$\theta$ and returns its certified lower bound at ``theta``.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from cvxkit.problems.base import REFERENCE_SETTINGS, CheckReport, Problem, _quiet_fd1
from cvxkit.solvers import validate
from cvxkit.solvers.dual_proxy import FIELDS, ProxyNetwork, box_mask, cone_index, dual_proxy_bound
from cvxkit.solvers.result import Result


CONE_KINDS = ("zero", "nonneg", "soc")


def _as_map(M, rows: int, p: int, name: str) -> sp.csr_matrix:
    """An affine map as a (rows, p + 1) CSR matrix (last column: the constant)."""
    M = validate.matrix(name, M, finite=False)
    if M.ndim != 2 or M.shape != (rows, p + 1):
        raise ValueError(f"{name} must have shape ({rows}, {p + 1}), got {M.shape}")
    M = sp.csr_matrix(M)
    if M.shape != (rows, p + 1):
        raise ValueError(f"{name} must have shape ({rows}, {p + 1}), got {M.shape}")
    if not np.all(np.isfinite(M.data)):
        raise ValueError(f"{name} has NaN or infinite entries")
    return M


def _bound(name: str, v, n: int, default: float) -> np.ndarray:
    """A variable bound: ``None`` (``default``), a scalar or an (n,) real array."""
    if v is None:
        return np.full(n, default)
    v = validate.float_array(name, v)
    if v.shape not in ((), (1,), (n,)):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {v.shape}")
    return np.broadcast_to(v, (n,)).copy()


def _cones(cones) -> tuple:
    """``((kind, dim), ...)`` from a sequence of pairs (kind a string, dim an integer)."""
    if isinstance(cones, (str, bytes)) or not isinstance(cones, (tuple, list)):
        raise ValueError(f"cones must be a list of (kind, dim) pairs, got {type(cones).__name__}")
    out = []
    for c in cones:
        if not (isinstance(c, (tuple, list)) and len(c) == 2 and isinstance(c[0], str)):
            raise ValueError(f"cones must be a list of (kind, dim) pairs, got the entry {c!r}")
        out.append((c[0], validate.integer(f"the dimension of cone {c[0]!r}", c[1], minimum=0)))
    return tuple(out)


def _pairs(pairs):
    """``(i, j, kappa)`` of the rotated-cone pairs: integer indices and real kappa."""
    if not isinstance(pairs, (tuple, list)) or len(pairs) != 3:
        raise ValueError("pairs must be a tuple (i, j, kappa) of equal-length arrays")
    idx = []
    for name, v in (("pairs i", pairs[0]), ("pairs j", pairs[1])):
        a = validate.float_array(name, v, finite=True).ravel()
        if not np.array_equal(a, np.round(a)):
            raise ValueError(f"{name} must hold integer variable indices")
        idx.append(a.astype(np.int64))
    return idx[0], idx[1], validate.float_array("kappa", pairs[2]).ravel()


@dataclasses.dataclass(frozen=True, eq=False)
class ConicData:
    r"""A parametric conic program as plain arrays (see the module docstring).

    Every piece of data is an affine map of $\theta$, stored as a sparse matrix with $p + 1$
    columns acting on $(\theta, 1)$:

    Attributes:
        n, m, p: numbers of variables, cone rows and parameters.
        cones: ``((kind, dim), ...)`` with kind in ``"zero"``, ``"nonneg"``, ``"soc"``, covering
            the ``m`` rows of $K$ in order (SOC blocks: first row $t$, then $s$).
        A_rows, A_cols: (nnz,) positions of the entries of $A(\theta)$ (a fixed pattern).
        A_map: (nnz, p + 1) — the entries' values are ``A_map @ [theta, 1]``.
        c_map: (n, p + 1); b_map: (m, p + 1); d_map: (1, p + 1).
        lb, ub: (n,) variable bounds (``-inf``/``inf`` allowed; `DualProxy` needs them finite
            except on pair variables).
        pairs_i, pairs_j: (P,) variable indices of the rotated-cone pairs; kappa: (P,) > 0.
    """

    n: int
    m: int
    p: int
    cones: tuple
    A_rows: np.ndarray
    A_cols: np.ndarray
    A_map: sp.csr_matrix
    c_map: sp.csr_matrix
    b_map: sp.csr_matrix
    d_map: sp.csr_matrix
    lb: np.ndarray
    ub: np.ndarray
    pairs_i: np.ndarray
    pairs_j: np.ndarray
    kappa: np.ndarray

    @classmethod
    def build(cls, n, m, p, cones, A_rows, A_cols, A_map, c_map, b_map, d_map=None, lb=None,
              ub=None, pairs=None) -> "ConicData":
        """Validate and assemble (raises ``ValueError`` naming what is wrong)."""
        n, m, p = int(n), int(m), int(p)
        if n < 1 or m < 0 or p < 1:
            raise ValueError(f"need n >= 1, m >= 0, p >= 1; got n={n}, m={m}, p={p}")
        cones = _cones(cones)
        for k, d in cones:
            if k not in CONE_KINDS:
                raise ValueError(f"unknown cone {k!r}; valid choices: {', '.join(CONE_KINDS)}")
            if d < (2 if k == "soc" else 1):
                raise ValueError(f"cone {k!r} of dimension {d} is too small")
        if sum(d for _, d in cones) != m:
            raise ValueError(f"the cones cover {sum(d for _, d in cones)} rows, A has {m}")
        A_rows = np.asarray(A_rows, dtype=np.int64).ravel()
        A_cols = np.asarray(A_cols, dtype=np.int64).ravel()
        if A_rows.shape != A_cols.shape:
            raise ValueError("A_rows and A_cols must have the same length")
        if A_rows.size and (A_rows.min() < 0 or A_rows.max() >= m or A_cols.min() < 0
                            or A_cols.max() >= n):
            raise ValueError("A_rows/A_cols out of range")
        A_map = _as_map(A_map, A_rows.size, p, "A_map")
        c_map = _as_map(c_map, n, p, "c_map")
        b_map = _as_map(b_map, m, p, "b_map")
        d_map = _as_map(sp.csr_matrix((1, p + 1)) if d_map is None else d_map, 1, p, "d_map")
        lb, ub = _bound("lb", lb, n, -np.inf), _bound("ub", ub, n, np.inf)
        if np.isnan(lb).any() or np.isnan(ub).any() or (lb > ub).any():
            raise ValueError("bounds must satisfy lb <= ub (no NaN)")
        if (lb == np.inf).any() or (ub == -np.inf).any():
            raise ValueError("lb = +inf or ub = -inf makes the problem infeasible")
        pi, pj, kap = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)) if pairs is None \
            else _pairs(pairs)
        if not (pi.shape == pj.shape == kap.shape):
            raise ValueError("pairs must be (i, j, kappa) of equal lengths")
        if pi.size:
            used = np.concatenate([pi, pj])
            if used.min() < 0 or used.max() >= n or np.unique(used).size != used.size:
                raise ValueError("pair variables must be distinct indices in range(n)")
            if not (np.all(np.isfinite(kap)) and np.all(kap > 0)):
                raise ValueError("kappa must be finite and positive")
            if np.any(lb[used] != 0) or np.any(ub[used] != np.inf):
                raise ValueError("pair variables must have bounds [0, inf)")
        return cls(n, m, p, cones, A_rows, A_cols, A_map, c_map, b_map, d_map, lb, ub, pi, pj, kap)

    # --- numpy evaluation ---------------------------------------------------------------
    def theta1(self, theta) -> np.ndarray:
        """``[theta, 1]`` after checking the shape (p,) and finiteness."""
        theta = validate.float_array("theta", theta)
        if theta.shape != (self.p,):
            raise ValueError(f"theta must have shape ({self.p},), got {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ValueError("theta has NaN or infinite entries")
        return np.append(theta, 1.0)

    def at(self, theta):
        """``(c, A, b, d)`` at ``theta``: c (n,), A (m, n) scipy CSR, b (m,), d float."""
        t1 = self.theta1(theta)
        A = sp.csr_matrix((self.A_map @ t1, (self.A_rows, self.A_cols)), shape=(self.m, self.n))
        return self.c_map @ t1, A, self.b_map @ t1, float((self.d_map @ t1)[0])

    @property
    def box(self) -> np.ndarray:
        """(n,) mask of the variables completed by their bounds (all but the pair variables)."""
        return box_mask(self.n, self.pairs_i, self.pairs_j)

    def cone_index(self) -> dict:
        """Row indices by cone kind: ``{"zero": (k,), "nonneg": (k,), "soc": {dim: (blocks, dim)}}``."""
        return cone_index(self.cones)

    def arrays(self) -> dict:
        """The plain arrays (a dict with the keys of `cvxkit.solvers.dual_proxy.FIELDS`): what
        the solver functions of `cvxkit.solvers.dual_proxy` take."""
        return {k: getattr(self, k) for k in FIELDS}

    def dual_value(self, theta, y) -> float:
        """The Lagrangian dual function $g(y)$ at one ``theta`` in plain float64 numpy (no
        rounding slack; ``-inf`` if a pair's reduced cost is negative). ``y`` must lie in $K^*$."""
        c, A, b, d = self.at(theta)
        r = c - A.T @ np.asarray(y, dtype=np.float64)
        box = self.box
        with np.errstate(invalid="ignore"):
            terms = np.where(r > 0, self.lb * r, np.where(r < 0, self.ub * r, 0.0))[box]
        ri, rj = r[self.pairs_i], r[self.pairs_j]
        if np.any(ri < 0) or np.any(rj < 0):
            return -np.inf
        return float(d - b @ y + terms.sum() + (self.kappa * np.sqrt(2 * ri * rj)).sum())


def _affine(spec, shape, p, name):
    """``spec`` (a constant array, or ``(const, J)`` with J dense (*shape, p) or sparse
    (prod(shape), p) in row-major order) as a CSR map (prod(shape), p + 1)."""
    size = int(np.prod(shape))
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise ValueError(f"{name} must be an array or a (constant, jacobian) pair")
        const, J = spec
    else:
        const, J = spec, None
    const = validate.float_array(name, const)
    try:
        const = np.broadcast_to(const, shape).reshape(size)
    except ValueError:
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {const.shape}") from None
    if J is None:
        J = sp.csr_matrix((size, p))
    elif validate.is_sparse(J):
        J = validate.matrix(f"the jacobian of {name}", J, finite=False).tocsr()
    else:
        J = validate.float_array(f"the jacobian of {name}", J)
        if J.shape != tuple(shape) + (p,):
            raise ValueError(f"the jacobian of {name} must have shape {tuple(shape) + (p,)}, "
                             f"got {J.shape}")
        J = sp.csr_matrix(J.reshape(size, p))
    if J.shape != (size, p):
        raise ValueError(f"the jacobian of {name} must have shape ({size}, {p}), got {J.shape}")
    if not (np.all(np.isfinite(const)) and np.all(np.isfinite(J.data))):
        raise ValueError(f"{name} has NaN or infinite entries")
    return sp.hstack([J, sp.csr_matrix(const[:, None])]).tocsr()


def _pattern(M: sp.csr_matrix, n: int):
    """Rows of a vec(A) map with any nonzero: (A_rows, A_cols, map restricted to them)."""
    keep = np.flatnonzero(np.diff(M.indptr) > 0)
    return keep // n, keep % n, M[keep]


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
        c_map = _affine(c, (n,), p, "c")
        A_vec = _affine(A, (m, n), p, "A")
        b_map = _affine(b, (m,), p, "b")
        d_map = _affine(d, (1,), p, "d")
        rows, cols, A_map = _pattern(A_vec, n)
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
        import cvxpy as cp
        from cvxpy.constraints import SOC, NonNeg, Zero

        if not isinstance(problem, cp.Problem):
            raise ValueError(f"from_cvxpy needs a cvxpy.Problem, got {type(problem).__name__}")
        params = list(problem.parameters()) if parameters is None else list(parameters)
        if not params:
            raise ValueError("the problem has no cvxpy.Parameter to vary")
        known = {q.id for q in problem.parameters()}
        for q in params:
            if not isinstance(q, cp.Parameter) or q.id not in known:
                raise ValueError(f"{q!r} is not a parameter of the problem")
        if not problem.is_dpp():
            raise ValueError("the problem is not DPP: its data are not affine in the parameters")
        if any(getattr(v, "attributes", {}).get(a) for v in problem.variables()
               for a in ("integer", "boolean")):
            raise ValueError("integer and boolean variables are not supported (a parametric "
                             "conic program is continuous)")
        saved = {q.id: q.value for q in problem.parameters()}
        for q in problem.parameters():       # canonicalization needs values, any will do
            if q.value is None:
                q.value = np.zeros(q.shape)
        try:
            # no quadratic objective: CVXPY writes x'Px terms as second-order cones, exactly
            data, _, _ = problem.get_problem_data(cp.CLARABEL,
                                                  solver_opts={"use_quad_obj": False})
        except (cp.error.DCPError, cp.error.SolverError, ValueError) as e:
            raise ValueError(f"CVXPY could not canonicalize the problem for Clarabel: {e}") from None
        finally:
            for q in problem.parameters():
                q.value = saved[q.id]
        pp = data["param_prob"]
        P_map = getattr(pp, "P", None)
        if data.get("P") is not None or (P_map is not None and sp.csr_matrix(P_map).nnz):
            raise ValueError("the canonical problem keeps a quadratic objective term, which a "
                             "parametric conic program (linear objective) cannot represent")
        n = pp.x.size
        cones = []
        for con in pp.constraints:
            if isinstance(con, Zero):
                cones.append(("zero", con.size))
            elif isinstance(con, NonNeg):
                cones.append(("nonneg", con.size))
            elif isinstance(con, SOC):
                cones.extend(("soc", k) for k in con.cone_sizes())
            else:
                raise ValueError(f"cone {type(con).__name__} is not supported (zero, nonnegative "
                                 "and second-order cones only)")
        m = sum(k for _, k in cones)
        # columns of CVXPY's parameter vector -> theta (+ constant); left-out parameters folded
        ptot = pp.total_param_size
        order, p = np.full(ptot + 1, -1), 0
        fold = np.zeros(ptot + 1)
        fold[ptot] = 1.0
        ids = {q.id for q in params}
        for q in params:
            start = pp.param_id_to_col.get(q.id)
            if start is not None:  # absent: the canonical data do not depend on it
                order[start:start + q.size] = p + np.arange(q.size)
            p += q.size
        for q in pp.parameters:
            if q.id not in ids:
                if q.value is None:
                    raise ValueError(f"parameter {q.name()} is left out of theta but has no value")
                start = pp.param_id_to_col[q.id]
                fold[start:start + q.size] = np.asarray(q.value, dtype=float).ravel(order="F")
        # P maps CVXPY's parameter vector to (theta, 1): data = T @ pvec = (T @ P) @ (theta, 1)
        cols = np.flatnonzero(order >= 0)
        P = sp.csr_matrix((np.ones(cols.size), (cols, order[cols])), shape=(ptot + 1, p + 1))
        P = P + sp.csr_matrix((fold[fold != 0], (np.flatnonzero(fold), np.full(
            np.count_nonzero(fold), p))), shape=(ptot + 1, p + 1))
        T = sp.csr_matrix(pp.A) @ P                       # rows: vec([A b]) column-major
        Q = sp.csr_matrix(pp.q) @ P                       # rows: (q, d)
        # column-major vec([A b]) -> row-major vec(A) and b
        k = np.arange(m * n)
        i, j = k // n, k % n
        A_vec = T[j * m + i].tocsr()
        b_map = T[n * m + np.arange(m)].tocsr()
        rows, cols_, A_map = _pattern(A_vec, n)
        lb, ub = np.full(n, -np.inf), np.full(n, np.inf)
        if pp.lower_bounds is not None:
            lb = np.maximum(lb, pp.lower_bounds)
        if pp.upper_bounds is not None:
            ub = np.minimum(ub, pp.upper_bounds)
        # single-variable, parameter-free nonnegative rows -> bounds
        drop = np.zeros(m, dtype=bool)
        nonneg_rows = np.zeros(m, dtype=bool)
        start = 0
        for kind, dim in cones:
            nonneg_rows[start:start + dim] = kind == "nonneg"
            start += dim
        per_row = np.bincount(rows, minlength=m)
        const_entry = np.diff(A_map[:, :p].tocsr().indptr) == 0
        const_b = np.diff(b_map[:, :p].tocsr().indptr) == 0
        aval = A_map[:, p].toarray().ravel()
        bval = b_map[:, p].toarray().ravel()
        for e in np.flatnonzero(const_entry & nonneg_rows[rows] & (per_row[rows] == 1)):
            r, v, a = rows[e], cols_[e], aval[e]
            if not const_b[r] or a == 0:
                continue
            if a > 0:
                lb[v] = max(lb[v], -bval[r] / a) + 0.0   # no -0.0
            else:
                ub[v] = min(ub[v], bval[r] / -a)
            drop[r] = True
        if drop.any():
            keep_rows = np.flatnonzero(~drop)
            new_index = np.full(m, -1)
            new_index[keep_rows] = np.arange(keep_rows.size)
            keep_e = ~drop[rows]
            rows, cols_, A_map = new_index[rows[keep_e]], cols_[keep_e], A_map[keep_e]
            b_map = b_map[keep_rows]
            new_cones, start = [], 0
            for kind, dim in cones:
                kept = int((~drop[start:start + dim]).sum())
                if kept:
                    new_cones.append((kind, kept))
                start += dim
            cones, m = new_cones, keep_rows.size
        if np.any(lb > ub):
            raise ValueError("the problem's bounds are inconsistent (some lb > ub)")
        data = ConicData.build(n, m, p, cones, rows, cols_, A_map, Q[:n], b_map, Q[n:n + 1],
                               lb, ub)
        theta = np.concatenate([np.zeros(q.size) if q.value is None else
                                np.asarray(q.value, dtype=float).ravel(order="F") for q in params])
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

    def _cvxpy_model(self, parametric: bool):
        """``(problem, x, cone constraints, setter)``: the canonical model; with ``parametric``
        the data are cvxpy Parameters (DPP, compiled once) that ``setter(theta)`` fills."""
        import cvxpy as cp

        D = self.data
        x = cp.Variable(D.n)
        if parametric:
            c, A, b = cp.Parameter(D.n), cp.Parameter((D.m, D.n)), cp.Parameter(D.m)
            d = cp.Parameter()
        else:
            cv, Av, bv, dv = D.at(self.theta)
            c, A, b, d = cv, Av, bv, dv
        expr = A @ x + b
        cons, start = [], 0
        for kind, dim in D.cones:
            e = expr[start:start + dim]
            cons.append(e == 0 if kind == "zero" else e >= 0 if kind == "nonneg"
                        else cp.SOC(e[0], e[1:]))
            start += dim
        extra = []
        fin_l, fin_u = np.isfinite(D.lb), np.isfinite(D.ub)
        if fin_l.any():
            extra.append(x[np.flatnonzero(fin_l)] >= D.lb[fin_l])
        if fin_u.any():
            extra.append(x[np.flatnonzero(fin_u)] <= D.ub[fin_u])
        if D.pairs_i.size:
            xi, xj = x[D.pairs_i], x[D.pairs_j]
            extra.append(cp.SOC(xi + xj, cp.vstack([xi - xj, np.sqrt(2) * D.kappa]), axis=0))
        prob = cp.Problem(cp.Minimize(c @ x + d), cons + extra)

        def setter(theta):
            cv, Av, bv, dv = D.at(theta)
            c.value, A.value, b.value, d.value = cv, Av.toarray(), bv, dv

        return prob, x, cons, (setter if parametric else None)

    def to_cvxpy(self, theta=None):
        """``(cvxpy.Problem, x)``: the canonical conic model at ``theta`` (default ``self.theta``)
        with constants; cone rows in order, then bounds and rotated-cone pairs."""
        prob = self if theta is None else self.at(theta)
        model, x, _, _ = prob._cvxpy_model(parametric=False)
        return model, x

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
            self._ref_model = self._cvxpy_model(parametric=True)
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
                out["y"][k] = np.concatenate([_flat_dual(c) * (-1.0 if kind == "zero" else 1.0)
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


def _flat_dual(con):
    """A CVXPY constraint's dual as a flat array (SOC: (t, s) stacked)."""
    dv = con.dual_value
    if isinstance(dv, list):
        return np.concatenate([np.atleast_1d(np.asarray(a, dtype=float)).ravel() for a in dv])
    return np.atleast_1d(np.asarray(dv, dtype=float)).ravel()


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
