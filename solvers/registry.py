"""The table of registered methods: name -> where the solver lives and what it supports.

Solvers are imported only when asked for, so listing methods stays cheap.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """One registered method."""

    name: str
    module: str
    function: str
    backends: tuple[str, ...]
    summary: str
    reference: str
    #: where a back end does not run the whole method: ``(back end, what runs on it)`` pairs;
    #: a back end not named here runs every iteration of the method
    scope: tuple[tuple[str, str], ...] = ()

    def backend_scope(self, backend: str) -> str:
        """What runs on ``backend``, in words."""
        return dict(self.scope).get(backend, "every iteration")

    def load(self) -> Callable:
        """Import and return the solver function."""
        return getattr(importlib.import_module(f"cvxkit.solvers.{self.module}"), self.function)


_METHODS = {
    m.name: m
    for m in [
        MethodInfo(
            "sinkhorn", "sinkhorn", "sinkhorn", ("numpy", "jax"),
            "entropic OT: log-domain-stabilized Sinkhorn with epsilon scaling",
            "Cuturi 2013; Schmitzer 2019",
        ),
        MethodInfo(
            "mirror_sinkhorn", "mirror_sinkhorn", "mirror_sinkhorn", ("numpy", "jax"),
            "convex objectives on the transport polytope, offline or online",
            "Ballu & Berthet, ICML 2023",
        ),
        MethodInfo(
            "project_forget", "project_forget", "project_forget", ("numpy", "jax"),
            "metric-constrained problems: Bregman projections on an active set of cycles",
            "Sonthalia & Gilbert, JMLR 2022",
            scope=(("jax", "the shortest-path oracle (Floyd-Warshall) only; the Bregman "
                           "projections are numba kernels on the host"),),
        ),
        MethodInfo(
            "network_simplex", "network_simplex", "network_simplex", ("numpy",),
            "exact OT by POT's network simplex (ot.emd)",
            "Bonneel et al. 2011 (POT)",
        ),
        MethodInfo(
            "admm", "admm_qp", "admm_qp", ("numpy", "jax"),
            "quadratic programs by OSQP's ADMM (cached factorization, adaptive rho); JAX batches",
            "Stellato et al., Math. Prog. Comp. 2020 (OSQP)",
        ),
        MethodInfo(
            "al_sketch", "al_sketch", "al_sketch", ("numpy", "jax"),
            "equality-constrained NLPs: exact augmented Lagrangian, Newton-KKT steps by randomized sketching",
            "Hong, Na, Mahoney & Kolar, ICML 2023",
            scope=(("jax", "the sketch-and-project loop of each Newton-KKT step; the outer loop "
                           "(line search, penalty updates) is a host loop"),),
        ),
        MethodInfo(
            "relu_admm", "relu_admm", "relu_admm", ("numpy", "jax"),
            "convex two-layer (gated) ReLU training, robust variant: ADMM, Woodbury system factored once",
            "Bai, Gautam & Sojoudi, SIMODS 2023",
        ),
        MethodInfo(
            "bcd", "bcd", "bcd", ("numpy", "jax"),
            "group lasso / lasso (gated ReLU): block coordinate descent, cyclic/random/GS/GSL rules",
            "Nutini, Laradji & Schmidt, JMLR 2022",
        ),
        MethodInfo(
            "halpern", "halpern", "halpern", ("numpy", "jax"),
            "Halpern iteration with restarts for a nonexpansive map (fixed-point residual)",
            "Halpern 1967; Lieder 2021 (rate)",
        ),
        MethodInfo(
            "vr_halpern", "halpern", "vr_halpern", ("numpy", "jax"),
            "finite-sum monotone inclusions: variance-reduced Halpern (PAGE / VR-FoRB)",
            "Cai, Alacaoglu & Diakonikolas, ICLR 2024",
        ),
        MethodInfo(
            "halpern_pdhg", "halpern_pdhg", "halpern_pdhg", ("numpy", "jax"),
            "linear programs: restarted reflected Halpern PDHG (r2HPDHG), infeasibility certificates",
            "Lu & Yang, arXiv 2407.16144 (2024); cuPDLPx, arXiv 2507.14051",
        ),
        MethodInfo(
            "implicit_diff", "implicit_diff", "implicit_diff", ("numpy", "jax"),
            "bilevel: implicit-differentiation hypergradients (matrix-free CG), projected gradient outer loop",
            "Lorraine, Vicol & Duvenaud, AISTATS 2020",
            scope=(("numpy", "a host loop over the jitted JAX step (the functions are JAX)"),),
        ),
        MethodInfo(
            "bilevel_penalty", "bilevel_penalty", "bilevel_penalty", ("numpy", "jax"),
            "bilevel: fully first-order penalty method (no second derivatives)",
            "Kwon, Kwon, Wright & Nowak, ICLR 2024",
            scope=(("numpy", "a host loop over the jitted JAX step (the functions are JAX)"),),
        ),
        MethodInfo(
            "lv_hba", "lv_hba", "lv_hba", ("numpy", "jax"),
            "bilevel with constrained convex lower levels: proximal Lagrangian value function, single loop",
            "Yao, Yu, Zeng & Zhang, ICLR 2024",
            scope=(("numpy", "a host loop over the jitted JAX step (the functions are JAX)"),),
        ),
        MethodInfo(
            "dual_proxy", "dual_proxy", "dual_proxy_bound", ("jax",),
            "parametric conic programs: learned dual-feasible proxies, certified Lagrangian lower bounds",
            "Tanneau & Van Hentenryck, NeurIPS 2024 (Dual Lagrangian Learning)",
        ),
    ]
}


def methods() -> dict[str, MethodInfo]:
    """All registered methods, by name."""
    return dict(_METHODS)


def get_method(name: str, backend: str | None = None) -> MethodInfo:
    """Look up ``name``; raise ``ValueError`` naming the valid choices if it, or ``backend``, is unknown."""
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; valid choices: {', '.join(sorted(_METHODS))}")
    info = _METHODS[name]
    if backend is not None and backend not in info.backends:
        raise ValueError(
            f"method {name!r} has no backend {backend!r}; valid choices: {', '.join(info.backends)}"
        )
    return info
