"""MkDocs hook: show mkdocstrings the package as it is installed, ``cvxkit.problems`` included.

pyproject.toml maps top-level folders into the ``cvxkit`` namespace
(``[tool.setuptools.package-dir]``: ``problems/`` -> ``cvxkit.problems``, ``solvers/`` ->
``cvxkit.solvers``). Griffe, which mkdocstrings uses to read the code, finds packages by walking
folders: from the repository root it would see ``cvxkit/`` without ``problems`` or ``solvers``,
and the finder file of a setuptools editable install does not describe sub-package mappings
either. So before each build this hook assembles, from that same pyproject table, a folder
``build/mkdocs-api/`` whose layout is the installed one (symbolic links to the sources, or copies
where links are not available); ``mkdocs.yml`` gives that folder to the Python handler as its
search path. The documentation therefore comes from the working tree, and the build does not
depend on whether (or how) the package is installed.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from mkdocs.plugins import event_priority

log = logging.getLogger("mkdocs.hooks.package_layout")

#: relative to the directory of mkdocs.yml; mkdocs.yml's python handler ``paths`` must match
STAGING = Path("build", "mkdocs-api")

#: used only when pyproject.toml cannot be parsed (Python 3.10 without tomli)
_FALLBACK = {"cvxkit": "cvxkit", "cvxkit.problems": "problems", "cvxkit.solvers": "solvers"}


def _package_dir(root: Path) -> dict[str, str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            return dict(_FALLBACK)
    with open(root / "pyproject.toml", "rb") as fh:
        data = tomllib.load(fh)
    mapping = data.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return {k: v for k, v in mapping.items() if k} or dict(_FALLBACK)


def _link(src: Path, dst: Path) -> None:
    try:
        dst.symlink_to(src, target_is_directory=src.is_dir())
    except OSError:  # no symlinks (e.g. Windows without developer mode): copy
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)


def build_layout(root: Path) -> Path:
    """(Re)create ``root / STAGING`` with the installed layout of every mapped package."""
    mapping = _package_dir(root)
    staging = root / STAGING
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in sorted(mapping, key=lambda k: k.count(".")):
        src = (root / mapping[name]).resolve()
        if not src.is_dir():
            raise FileNotFoundError(f"package-dir maps {name!r} to {src}, which is not a folder")
        dst = staging.joinpath(*name.split("."))
        nested = {k.split(".")[name.count(".") + 1] for k in mapping if k.startswith(name + ".")}
        if not nested:
            _link(src, dst)
            continue
        # a package with mapped sub-packages: a real folder, its own files linked one by one
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            if child.name == "__pycache__" or child.name in nested:
                continue
            _link(child, dst / child.name)
    return staging


@event_priority(100)  # before mkdocstrings' own on_config, which already sets up its handlers
def on_config(config, **kwargs):
    root = Path(config.config_file_path).resolve().parent
    staging = build_layout(root)
    log.debug("package layout for mkdocstrings in %s", os.path.relpath(staging, root))
    return config
