"""The table of registered methods: name -> where the solver lives and what it supports.

The table itself is data, ``methods.json`` beside this module (one object per method, with the
fields of `MethodInfo`; ``scope`` maps a back end to what runs on it). Registering a method is
one entry there. Solvers are imported only when asked for, so listing methods stays cheap.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
from importlib import resources
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


def _load() -> dict[str, MethodInfo]:
    """The table in ``methods.json`` (one object per method, fields as in `MethodInfo`)."""
    rows = json.loads(resources.files("cvxkit.solvers").joinpath("methods.json").read_text("utf-8"))
    return {r["name"]: MethodInfo(**{**r, "backends": tuple(r["backends"]),
                                     "scope": tuple(r.get("scope", {}).items())})
            for r in rows}


_METHODS = _load()


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
