"""Checks of MPS files for what HiGHS's reader lets through without a word
(`cvxkit.problems.conic.LinearProgram.from_mps`)."""
from __future__ import annotations


def mps_scan(path) -> None:
    """What HiGHS (1.16) reads from an MPS file without a word, refused with a ``ValueError``
    naming the line: a malformed number (``four`` is read as 0) in COLUMNS, RHS or RANGES (the
    value of each ``name value`` pair) or in a BOUNDS value, and a BOUNDS entry for a column that
    COLUMNS does not define (HiGHS adds it as a new column). Fields are read in free format, and
    a line is accepted if its fixed-format fields (columns 15-22, 25-36, 50-61) are right."""
    import gzip

    def number(tok):
        try:
            float(tok.replace("D", "E").replace("d", "e"))
            return True
        except ValueError:
            return False

    valued = ("UP", "LO", "FX", "LI", "UI", "SC")
    opener = gzip.open if str(path).endswith(".gz") else open
    section, columns = None, set()
    with opener(path, "rt", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n\r")
            if not line.strip() or line.startswith("*"):
                continue
            if not line[0].isspace():
                section = line.split()[0].upper()
                continue
            t = line.split()
            where = f"{path}, line {lineno} ({section} section)"
            if section in ("COLUMNS", "RHS", "RANGES"):
                if "'MARKER'" in line.upper():
                    continue
                if section == "COLUMNS":
                    columns.update((t[0], line[4:12].strip()))
                free = [t[-1]] + ([t[-3]] if len(t) >= 4 else [])
                fixed = [v for v in (line[24:36].strip(), line[49:61].strip()) if v]
            elif section == "BOUNDS" and len(t) >= 2:
                kind = t[0].upper()
                col = t[-2] if (kind in valued or len(t) >= 4) else t[-1]
                if col not in columns and line[14:22].strip() not in columns:
                    raise ValueError(f"{where}: column {col!r} is not defined in COLUMNS: "
                                     f"{line.strip()!r}")
                if kind not in valued:
                    continue
                free, fixed = [t[-1]], [line[24:36].strip()]
            else:
                continue
            if all(number(v) for v in free) or (fixed and all(number(v) for v in fixed)):
                continue
            bad = next(v for v in free if not number(v))
            raise ValueError(f"{where}: {bad!r} is not a number: {line.strip()!r}")
