"""docs/concepts.md's table of which method accepts which common option matches the solvers'
signatures (regenerate it with ``python tests/test_options_table.py``)."""
import inspect
import pathlib

from cvxkit.solvers import methods

COMMON = ["tol", "eps_abs", "eps_rel", "max_iter", "time_limit", "verbose", "progress",
          "callback", "warm_start", "seed", "dtype", "check_every", "eps_primal_infeasible",
          "eps_dual_infeasible"]
#: options whose default the table shows (the others: a check mark)
SHOW_DEFAULT = {"tol", "eps_abs", "eps_rel", "max_iter", "check_every", "eps_primal_infeasible",
                "eps_dual_infeasible"}
DOC = pathlib.Path(__file__).parent.parent / "docs" / "concepts.md"


def options_table() -> str:
    lines = ["| method | " + " | ".join(f"`{c}`" for c in COMMON) + " |",
             "|---|" + "---|" * len(COMMON)]
    for name, info in methods().items():
        params = inspect.signature(info.load()).parameters
        cells = []
        for c in COMMON:
            if c not in params:
                cells.append("–")
            elif c in SHOW_DEFAULT and params[c].default is not inspect.Parameter.empty:
                cells.append(f"`{params[c].default!r}`")
            else:
                cells.append("✓")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_concepts_options_table_matches_the_signatures():
    assert options_table() in DOC.read_text(), (
        "docs/concepts.md's options table is out of date; regenerate it with "
        "`python tests/test_options_table.py`")


if __name__ == "__main__":
    print(options_table())
