"""`ptft report`: a self-contained HTML file, checked as text and rendered in headless Chromium."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote

import pytest

from ptft.analysis.api import ANALYSES
from ptft.cli import main
from ptft.report import write_report
from ptft.store import ResultsStore

CHROMIUM = Path("/usr/bin/chromium")
N_FIGURES = len(ANALYSES) + 1  # and the pre-training loss


def test_report_contents(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "report.html"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "name: tiny-study  # &lt;checked: escaped&gt;" in page  # study.yaml, verbatim and escaped
    assert "1 of 3 cells done (33%); 1 failed." in page
    assert "OutOfMemoryError: &lt;GPU&gt; ran out of memory" in page
    # Readings computed from the data (see conftest.py for the hand calculation).
    assert "MRC classification-&gt;generation = -62.5% (95% CI [-75.0, -50.0], n=2)" in page
    assert "MRC generation-&gt;classification = -5.0% (95% CI [-10.0, +0.0], n=2)" in page
    assert "Mean gain changes by -0.050 per 1k steps" in page  # (.15 - .20) over 1k steps, in a unit that fits
    assert "slope of the mean gain per 1k steps" in page
    assert "final heldout loss 4.500 at step 2k" in page
    # The series as the cells recorded it, in order: a Hub checkpoint with the fingerprint its cells'
    # ids hash, a pre-trained one with its folder's, worked out by hand from its one tensor.
    series = page[page.index('<section id="series">'):page.index('<section id="loss">')]
    c2 = hashlib.sha256(b"w|F32|[2]|" + struct.pack("<2f", 1.0, -2.0)).hexdigest()[:16]
    assert "2 checkpoint(s), 2 fingerprinted; no two hold the same weights." in series
    assert re.findall(r"<td>([^<]*)</td>", series) == [
        "c1", "1000", "org/model@step1000", "0123456789abcdef", "its weights",
        "c2", "2000", "runs/tiny/checkpoints/c2", c2, "its pre-training cell"]
    # The findings come first, the config last and collapsed.
    sections = re.findall(r'<section id="([a-z_]+)"', page)
    assert sections[0] == "findings" and sections[-1] == "config" and sections[-2] == "grid"
    assert sections[1:1 + len(ANALYSES) - 1] == [name for name in ANALYSES if name != "findings"]
    assert page.index('id="findings"') < page.index("<h2>Contents</h2>") < page.index('id="trajectory"')
    assert re.search(r'<section id="config"><h2>Study configuration</h2>\n<details><summary>', page)
    # Both sets rise clearly in BASE (+.10 and +.20 with endpoint CIs of +/- .03): no set is learned in
    # fine-tuning, so findings 1 and 2 cannot be tested; MRC gen->cls's CI reaches 0: supported; the FT
    # spread on nli_val falls from .20 (c1) to .05 (c2), se of the difference 2 x .03 / 3.92: supported.
    verdicts = re.findall(r'<td class="verdict ([a-z]+)">', page)
    assert verdicts == ["untestable", "untestable", "supported", "supported"]
    assert "mean FT spread across formats, late minus early checkpoints = -0.15<br>95% CI [-0.21, -0.09]" in page
    # Every figure embedded, nothing fetched from elsewhere.
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == N_FIGURES and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"<link|<script src|<iframe|url\(", page)
    # The prediction file is linked relative to the report, and the link resolves.
    (prediction,) = (run_dir / "predictions").rglob("*.jsonl")
    links = re.findall(r'href="([^"#][^"]*)"', page)
    assert links == [Path(os.path.relpath(prediction, out.parent)).as_posix()]
    assert links[0].startswith("../") and (out.parent / unquote(links[0])).resolve() == prediction.resolve()


def test_report_names_two_checkpoints_holding_the_same_weights(run_dir: Path, tmp_path: Path) -> None:
    from dataclasses import asdict

    from ptft.checkpoints.series import Checkpoint

    shutil.copytree(run_dir / "checkpoints" / "c2", run_dir / "checkpoints" / "c3")
    with ResultsStore(run_dir / "results.sqlite") as store:
        store.register_cells([("ft-c3-summ", "finetune", "fine-tune c3 on summ",
                               {"checkpoint": asdict(Checkpoint("c3", 3000, "x", pretrained=True))})])
    page = write_report(run_dir, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "3 checkpoint(s), 3 fingerprinted; the same weights under two names: c2 and c3." in page


def test_report_of_a_run_without_results(tmp_path: Path) -> None:
    run = tmp_path / "empty-run"
    with ResultsStore(run / "results.sqlite") as store:
        store.register_cells([("c", "eval", "BASE c1", {})])
    page = write_report(run, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "0 of 1 cells done (0%); 0 failed." in page
    assert page.count("No data:") == len(ANALYSES) - 1  # every analysis but the findings, which say why
    assert page.count('<td class="verdict untestable">') == 4 and "the results table is empty" in page
    assert "No study.yaml" in page and "No checkpoints/loss.csv" in page and "No prediction files" in page


def render(html_file: Path, tmp_path: Path) -> dict[str, str]:
    """Load the page in headless Chromium and return the data attributes its check script set on <body>."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--dump-dom", html_file.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")
def test_report_renders_in_chromium(run_dir: Path, tmp_path: Path) -> None:
    out = write_report(run_dir, tmp_path / "report.html")
    seen = render(out, tmp_path)
    sections = ",".join(["findings", *(name for name in ANALYSES if name != "findings"), "series", "loss",
                         "predictions", "grid", "config"])
    assert seen == {"images-total": str(N_FIGURES), "images-ok": str(N_FIGURES), "svgs": "0",
                    "external-resources": "0", "resource-errors": "0", "sections": sections, "config-open": "false"}
    # The check itself must see failures: a broken image and a missing file.
    broken = tmp_path / "broken.html"
    broken.write_text(out.read_text(encoding="utf-8").replace(
        "</body>", '<img src="data:image/png;base64,AAAA"><img src="missing.png"></body>'), encoding="utf-8")
    seen = render(broken, tmp_path)
    assert seen["images-total"] == str(N_FIGURES + 2) and seen["images-ok"] == str(N_FIGURES)
    assert seen["external-resources"] == "1" and int(seen["resource-errors"]) >= 1
