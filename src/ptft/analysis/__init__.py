"""The study's analyses (docs/method.md, "The analyses") on the long-format results table.

Each analysis is a function from a validated table (:func:`load_table`) and a :class:`Slice` to a
DataFrame; :func:`analyze` runs them all and writes tables, figures and summary.md.
"""

from ptft.analysis.api import Results, analyze, compute
from ptft.analysis.changes import RATIO_EPS
from ptft.analysis.findings import findings
from ptft.analysis.forgetting import mrc, mrc_ratios, ood
from ptft.analysis.formats import format_sensitivity
from ptft.analysis.gain import gain, gain_slope
from ptft.analysis.groups import groups
from ptft.analysis.slices import Slice
from ptft.analysis.table import load_table
from ptft.analysis.trajectory import trajectory

__all__ = [
    "RATIO_EPS", "Results", "Slice", "analyze", "compute", "findings", "format_sensitivity", "gain", "gain_slope",
    "groups",
    "load_table", "mrc", "mrc_ratios", "ood", "trajectory",
]
