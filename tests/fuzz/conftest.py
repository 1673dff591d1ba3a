"""Fuzz-suite settings: a small hypothesis budget in the default run, a large one with -m slow.

Every test here carries the ``fuzz`` marker (added below). The outcome counts of the run are
printed at its end (`harness.COUNTS`).
"""
import pytest
from hypothesis import HealthCheck, settings

from .harness import COUNTS, FAILURES

settings.register_profile("fuzz-small", max_examples=8, deadline=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz-large", max_examples=200, deadline=None,
                          suppress_health_check=list(HealthCheck))


def pytest_configure(config):
    expr = config.getoption("markexpr", "") or ""
    large = "slow" in expr and "not slow" not in expr
    settings.load_profile("fuzz-large" if large else "fuzz-small")


def pytest_collection_modifyitems(config, items):
    expr = config.getoption("markexpr", "") or ""
    large = "slow" in expr and "not slow" not in expr
    for item in items:
        if "/fuzz/" in str(item.fspath):
            item.add_marker(pytest.mark.fuzz)
            if large:  # -m slow runs the fuzz suite with the large budget
                item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter):
    if not COUNTS:
        return
    tr = terminalreporter
    tr.section("fuzz outcomes")
    total, failed = 0, {k: 0 for k in FAILURES}
    for family in sorted(COUNTS):
        c = COUNTS[family]
        total += sum(c.values())
        for k in FAILURES:
            failed[k] += c.get(f"FAILED: {k}", 0)
        tr.write_line(f"{family:>24}: {sum(c.values()):5d} cases  " +
                      ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    tr.write_line(f"{'total':>24}: {total:5d} cases; failed (hypothesis counts shrinking "
                  "retries too): " + ", ".join(f"{k} {v}" for k, v in failed.items()))
