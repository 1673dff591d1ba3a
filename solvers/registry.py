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
        ),
        MethodInfo(
            "network_simplex", "network_simplex", "network_simplex", ("numpy",),
            "exact OT by POT's network simplex (ot.emd)",
            "Bonneel et al. 2011 (POT)",
        ),
        MethodInfo(
            "admm", "admm", "admm_qp", ("numpy", "jax"),
            "quadratic programs by OSQP's ADMM (cached factorization, adaptive rho); JAX batches",
            "Stellato et al., Math. Prog. Comp. 2020 (OSQP)",
        ),
        MethodInfo(
            "al_sketch", "al_sketch", "al_sketch", ("numpy", "jax"),
            "equality-constrained NLPs: exact augmented Lagrangian, Newton-KKT steps by randomized sketching",
            "Hong, Na, Mahoney & Kolar, ICML 2023",
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
