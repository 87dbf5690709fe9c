"""The self-contained HTML report of a run (``ptft report``)."""

from ptft.report.html import write_report

__all__ = ["write_report"]
