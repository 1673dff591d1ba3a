"""The one rule of the architecture (DESIGN.md): solvers/ never imports problems/.

Every module in solvers/ is parsed (not imported) and each import is read: ``import
cvxkit.problems...``, ``from cvxkit.problems... import ...``, ``from cvxkit import problems``,
relative imports that climb into problems/, imports inside functions, and string arguments of
``importlib.import_module`` / ``__import__``. Also: importing the package or its front end does
not import JAX (solvers import it lazily, when a JAX back end runs).
"""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOLVERS = sorted((ROOT / "solvers").rglob("*.py"))
FORBIDDEN = "cvxkit.problems"


def _is_forbidden(name: str | None) -> bool:
    return bool(name) and (name == FORBIDDEN or name.startswith(FORBIDDEN + "."))


def _dynamic_name(node: ast.Call) -> str | None:
    """The module-name string of ``importlib.import_module("...")`` / ``__import__("...")``."""
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    if name not in ("import_module", "__import__") or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr):  # f"cvxkit.problems.{x}": its constant prefix
        head = arg.values[0] if arg.values else None
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value.rstrip(".") or None
    return None


def violations(source: str, module: str) -> list[str]:
    """``"line: what"`` for each import of cvxkit.problems in ``source`` (the module ``module``,
    e.g. ``cvxkit.solvers.admm``, for resolving relative imports)."""
    out = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [f"{node.lineno}: import {a.name}" for a in node.names if _is_forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
            if any(_is_forbidden(n) for n in names):
                out.append(f"{node.lineno}: from {'.' * node.level}{node.module or ''} import "
                           + ", ".join(a.name for a in node.names))
        elif isinstance(node, ast.Call):
            name = _dynamic_name(node)
            if _is_forbidden(name) or name in ("cvxkit.prob", "cvxkit.problem"):
                out.append(f"{node.lineno}: dynamic import of {name!r}")
    return out


@pytest.mark.parametrize("path", SOLVERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_solver_does_not_import_problems(path):
    rel = path.relative_to(ROOT).with_suffix("")
    module = "cvxkit." + ".".join(rel.parts)
    found = violations(path.read_text(encoding="utf-8"), module)
    assert not found, f"{rel} imports cvxkit.problems (solvers never import problems/): {found}"


def test_solvers_found():
    names = {p.name for p in SOLVERS}
    assert {"__init__.py", "admm.py", "dual_proxy.py", "project_forget.py"} <= names


@pytest.mark.parametrize("src, n", [
    ("import cvxkit.problems", 1),
    ("import cvxkit.problems.metric as m", 1),
    ("from cvxkit.problems import MetricNearness", 1),
    ("from cvxkit.problems.parametric_conic import ConicData", 1),
    ("from cvxkit import problems", 1),
    ("from ..problems import metric", 1),
    ("from .. import problems", 1),
    ("def f():\n    from cvxkit.problems.metric import x\n    return x", 1),
    ("import importlib\nimportlib.import_module('cvxkit.problems.metric')", 1),
    ("from importlib import import_module\nimport_module('cvxkit.problems')", 1),
    ("__import__('cvxkit.problems.conic')", 1),
    ("import importlib\nimportlib.import_module(f'cvxkit.problems.{name}')", 1),
    ("import cvxkit.problemsets", 0),
    ("from cvxkit.solvers import validate", 0),
    ("from . import validate", 0),
    ("import importlib\nimportlib.import_module('cvxkit.solvers.admm')", 0),
    ("x = 'cvxkit.problems'", 0),
])
def test_the_checker_catches_every_form(src, n):
    """The checker itself: each form of importing problems/ is caught, near misses are not."""
    assert len(violations(src, "cvxkit.solvers.some_solver")) == n, src


@pytest.mark.parametrize("module", ["cvxkit", "cvxkit.problems", "cvxkit.solvers"])
def test_import_does_not_import_jax(module):
    code = (f"import sys, {module}\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib'))\n"
            "print(','.join(bad[:5]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"import {module} imported JAX: {out.stdout.strip()}"
