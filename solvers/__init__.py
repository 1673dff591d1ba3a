"""cvxkit.solvers: algorithm back ends. Each takes plain arrays or callables and returns a Result.

Solvers know one algorithm and nothing of any problem family (see DESIGN.md).

Every registered solver function is importable by its name, loaded on first use
(``from cvxkit.solvers import admm_qp, sinkhorn``). The name means the function, also where
a module of the same name holds it (``cvxkit.solvers.admm_qp`` is the function; the module is
``importlib.import_module("cvxkit.solvers.admm_qp")``).
"""
import sys
import types

from cvxkit.solvers.registry import MethodInfo, get_method, methods
from cvxkit.solvers.result import Result, Status

#: solver function name -> its registry entry
_FUNCTIONS = {m.function: m for m in methods().values()}

__all__ = ["MethodInfo", "Result", "Status", "get_method", "methods", *sorted(_FUNCTIONS)]


def __getattr__(name: str):
    if name in _FUNCTIONS:
        fn = _FUNCTIONS[name].load()
        types.ModuleType.__setattr__(sys.modules[__name__], name, fn)
        return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """This package: a submodule named like a solver function does not replace the function's
    name when it is imported (the import system sets the attribute; it is ignored here)."""

    def __setattr__(self, name, value):
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
