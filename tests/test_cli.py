"""The cvxkit command: --version, methods, and the demo (every family checked against its reference)."""
import pytest

import cvxkit
from cvxkit.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert cvxkit.__version__ in capsys.readouterr().out


def test_methods(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("sinkhorn", "mirror_sinkhorn", "network_simplex"):
        assert name in out


def test_demo_passes_every_check(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out and "FAIL" not in out
    assert out.count(" ok ") >= 5
