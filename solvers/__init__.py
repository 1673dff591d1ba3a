"""cvxkit.solvers: algorithm back ends. Each takes plain arrays or callables and returns a Result.

Solvers know one algorithm and nothing of any problem family (see DESIGN.md).
"""
from cvxkit.solvers.registry import MethodInfo, get_method, methods
from cvxkit.solvers.result import Result, Status

__all__ = ["MethodInfo", "Result", "Status", "get_method", "methods"]
