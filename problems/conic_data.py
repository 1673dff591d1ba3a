r"""The arrays of a parametric conic program (`ConicData`), validated, and the affine maps of
$\theta$ they hold (see `cvxkit.problems.parametric_conic` for the program).

Every piece of data is an affine map of $\theta \in \mathbb{R}^p$, stored as a sparse matrix
with $p + 1$ columns acting on $(\theta, 1)$; `ConicData.arrays` hands the plain arrays to the
solver functions of `cvxkit.solvers.dual_proxy`.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from cvxkit.solvers import validate
from cvxkit.solvers.dual_proxy import FIELDS, box_mask, cone_index


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


def affine_map(spec, shape, p, name):
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


def pattern(M: sp.csr_matrix, n: int):
    """Rows of a vec(A) map with any nonzero: (A_rows, A_cols, map restricted to them)."""
    keep = np.flatnonzero(np.diff(M.indptr) > 0)
    return keep // n, keep % n, M[keep]
