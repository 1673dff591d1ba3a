"""The fuzz suite's judge: run one hostile call and classify what came back.

Every generated case must end in one of three outcome classes:

* ``"error"``: a ``ValueError`` or ``TypeError`` raised by cvxkit's own code (the innermost frame
  of the traceback is in cvxkit) whose message names the argument (``names``);
* ``"status:<s>"``: a Result with an honest non-optimal status ``<s>``;
* ``"optimal"``: a Result with status optimal that ``verify(result)`` confirms against a
  reference (HiGHS, Clarabel, POT, a closed form) on the generated instance.

Anything else fails the test: an exception from inside a dependency (numpy, scipy, POT, JAX ...),
another exception type, an "optimal" that ``verify`` rejects (a silent wrong answer), a
certificate status that ``verify_certificate`` rejects. `COUNTS` tallies the outcomes per family;
the suite's conftest prints them at the end of the run.
"""
from __future__ import annotations

import collections
import os
import traceback

from cvxkit.solvers.result import Status

#: outcome counts: COUNTS[family][outcome class] -> number of cases
COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

_CVXKIT_DIRS = tuple(os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", d))
                     + os.sep for d in ("solvers", "problems", "cvxkit"))


def _raised_in_cvxkit(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return False
    path = os.path.normpath(frames[-1].filename)
    return path.startswith(_CVXKIT_DIRS) or "/cvxkit/" in path.replace(os.sep, "/")


def judge(family: str, call, *, names=(), verify=None, verify_certificate=None,
          allowed_statuses=None) -> str:
    """Run ``call()`` and return its outcome class (module docstring); fail on a bad outcome.

    Args:
        family: the key under which the outcome is counted.
        call: a zero-argument callable making the hostile call.
        names: words of which at least one must appear in an error message (the argument's name);
            empty: any cvxkit ValueError/TypeError is accepted.
        verify: ``verify(result) -> str | None``: ``None`` when an optimal result is right,
            else the reason it is wrong. Required when the call may return ``optimal``.
        verify_certificate: the same for ``primal_infeasible`` / ``dual_infeasible`` results.
        allowed_statuses: statuses accepted besides optimal (default: every non-optimal one).
    """
    try:
        res = call()
    except (ValueError, TypeError) as e:
        if not _raised_in_cvxkit(e):
            _fail(family, "crash", f"{type(e).__name__} from inside a dependency: {e}\n"
                  f"{''.join(traceback.format_tb(e.__traceback__)[-3:])}")
        msg = str(e).lower()
        if names and not any(n.lower() in msg for n in names):
            _fail(family, "unclear error", f"error message does not name any of {names}: {e}")
        COUNTS[family]["error"] += 1
        return "error"
    except Exception as e:  # noqa: BLE001 - every other exception is a defect
        _fail(family, "crash", f"{type(e).__name__}: {e}\n"
              f"{''.join(traceback.format_tb(e.__traceback__)[-3:])}")
    status = Status(res.status)
    if status is Status.OPTIMAL:
        if verify is None:
            _fail(family, "unverified optimal", "an optimal result with no way to verify it")
        why = verify(res)
        if why is not None:
            _fail(family, "silent wrong answer", f"status optimal, but {why}")
        COUNTS[family]["optimal (verified)"] += 1
        return "optimal"
    if status in (Status.PRIMAL_INFEASIBLE, Status.DUAL_INFEASIBLE) and verify_certificate:
        why = verify_certificate(res)
        if why is not None:
            _fail(family, "silent wrong answer", f"wrong certificate ({status.value}): {why}")
    if allowed_statuses is not None and status not in allowed_statuses:
        _fail(family, "unexpected status", f"status {status.value} not in {allowed_statuses}")
    COUNTS[family][f"status:{status.value}"] += 1
    return f"status:{status.value}"


#: the outcome classes that fail a test (counted before the test fails, for the summary)
FAILURES = ("crash", "unclear error", "unverified optimal", "silent wrong answer",
            "unexpected status")


def _fail(family: str, kind: str, message: str):
    COUNTS[family][f"FAILED: {kind}"] += 1
    raise AssertionError(f"{family}: {kind.upper()}: {message}")
