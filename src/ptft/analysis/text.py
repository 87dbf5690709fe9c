"""Numbers and tables as text, for the readings, summary.md and the report."""

from __future__ import annotations

import pandas as pd


def num(value: object, spec: str = "+.3f") -> str:
    """``value`` formatted with ``spec``; "n/a" for a missing value."""
    return "n/a" if pd.isna(value) else format(float(value), spec)  # type: ignore[arg-type]


def ci(low: object, high: object, spec: str = "+.3f") -> str:
    if pd.isna(low) or pd.isna(high):
        return "no CI"
    return f"95% CI [{num(low, spec)}, {num(high, spec)}]"


def which_higher(later: tuple[object, object], earlier: tuple[object, object], higher: str, lower: str,
                 what: str = "change") -> str:
    """How two 95 % intervals (low, high) compare: ``higher`` when the later lies wholly above the
    earlier, ``lower`` when wholly below, else that they overlap and no ``what`` is shown."""
    if later[0] > earlier[1]:
        return higher
    if later[1] < earlier[0]:
        return lower
    return f"the intervals overlap, no {what} shown"


def percent(value: object) -> str:
    """A value already in percent, signed, e.g. "-65.0%"; "n/a" when missing."""
    return "n/a" if pd.isna(value) else f"{float(value):+.1f}%"


def rounded(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Floats to ``digits`` significant digits as text, missing values as empty cells."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}g}")
        else:
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else str(v))
    return out


def markdown_table(frame: pd.DataFrame) -> str:
    text = rounded(frame)
    lines = ["| " + " | ".join(text.columns) + " |", "|" + "---|" * len(text.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in text.itertuples(index=False)]
    return "\n".join(lines)
