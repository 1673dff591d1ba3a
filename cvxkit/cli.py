"""The ``cvxkit`` command: ``cvxkit demo``, ``cvxkit methods``, ``cvxkit --version``."""
from __future__ import annotations

import argparse
import sys
import warnings


def _methods() -> int:
    from cvxkit.solvers import methods

    rows = [(m.name, ", ".join(m.backends), m.summary, m.reference) for m in methods().values()]
    w = [max(len(r[i]) for r in rows + [("method", "backends", "what", "paper")]) for i in range(4)]
    for r in [("method", "backends", "what", "paper")] + rows:
        print("  ".join(f"{v:<{w[i]}}" for i, v in enumerate(r)))
    partial = [(m.name, b, what) for m in methods().values() for b, what in m.scope]
    if partial:
        print("\nback ends that run only part of a method:")
        for name, b, what in partial:
            print(f"  {name} on {b}: {what}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from cvxkit import __version__

    parser = argparse.ArgumentParser(prog="cvxkit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cvxkit {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("demo", help="solve every family on a small instance and check it against its reference")
    sub.add_parser("methods", help="list the registered methods and their backends")
    args = parser.parse_args(argv)
    if args.command == "methods":
        return _methods()
    if args.command == "demo":
        from cvxkit.demo import run_demo

        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        return 0 if run_demo() else 1
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
