"""One self-contained HTML report of a run. It opens with the study's four findings as verdicts
(statistic, interval, the figure behind each), then every analysis (figure, table, one-line
reading), the pre-training loss, links to the per-example predictions, grid completeness, and
last the config, collapsed.

Figures are embedded as base64 PNG and styles inline, so the file can be mailed or archived
alone; only the links to prediction files point outside it (relative, so the report and the run
directory can move together).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.api import ANALYSES, Results, compute
from ptft.analysis.changes import RATIO_EPS
from ptft.analysis.findings import BEHIND, CLAIMS
from ptft.analysis.slices import Slice
from ptft.analysis.text import ci, num, rounded
from ptft.checkpoints.fingerprint import fingerprint
from ptft.errors import DataError
from ptft.grid import store_path
from ptft.store import ResultsStore

STATUSES = ("done", "running", "pending", "failed")
OPEN_TABLE_ROWS = 40

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1, h2, h3 { font-weight: 600; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; font-size: .85rem; }
table.data { border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }
table.data th, table.data td { border: 1px solid #ccc; padding: .2rem .5rem; text-align: right; }
table.data th { background: #eee; }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
p.reading { font-size: 1.05rem; border-left: 4px solid #555; padding-left: .6rem; }
.failed { color: #a00; }
table.findings td, table.findings th { text-align: left; vertical-align: top; }
.verdict { font-weight: 600; white-space: nowrap; }
.supported { color: #060; } .contradicted { color: #a00; } .inconclusive { color: #a60; } .untestable { color: #666; }
.scroll { overflow-x: auto; }
"""

# Lets a headless browser (and the tests) confirm that every embedded figure decoded and that no
# resource failed to load: the counts land on <body> as data attributes, visible in a DOM dump.
CHECK_SCRIPT = """
window.ptftErrors = 0;
window.addEventListener("error", function () { window.ptftErrors += 1; }, true);
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var external = Array.prototype.slice.call(document.querySelectorAll("[src], link[href], object[data]"))
    .filter(function (e) { return (e.getAttribute("src") || e.getAttribute("href") || e.getAttribute("data"))
      .indexOf("data:") !== 0; });
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesOk = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.dataset.svgs = document.querySelectorAll("svg").length;
  document.body.dataset.externalResources = external.length;
  document.body.dataset.resourceErrors = window.ptftErrors;
  document.body.dataset.sections = Array.prototype.map.call(document.querySelectorAll("section"),
    function (s) { return s.id; }).join(",");
  var config = document.querySelector("#config details");
  document.body.dataset.configOpen = config ? String(config.open) : "none";
});
"""


def write_report(run_dir: str | Path, out_path: str | Path, sl: Slice = Slice(), *, seed: int = 0,
                 eps: float = RATIO_EPS) -> Path:
    """Write the HTML report of ``run_dir`` to ``out_path`` and return its path. The analysis
    options are those of :func:`ptft.analysis.compute`."""
    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(f"{run} is not a run directory")
    # compute() refuses a run without results.sqlite, so the store below opens an existing file.
    results = compute(run, sl, seed=seed, eps=eps)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with ResultsStore(store_path(run)) as store:
        cells = store.cells()
    sections = [
        ("findings", ANALYSES["findings"].title, _findings(results)),
        *((name, ANALYSES[name].title, _analysis(results, name)) for name in ANALYSES if name != "findings"),
        ("series", "Checkpoint series", _series(run, cells)),
        ("loss", "Pre-training loss", _loss(run / "checkpoints" / "loss.csv")),
        ("predictions", "Per-example predictions", _predictions(run / "predictions", out.parent)),
        ("grid", "Grid completeness", _grid(cells)),
        ("config", "Study configuration", _config(run)),
    ]
    toc = "".join(f'<li><a href="#{anchor}">{html.escape(title)}</a></li>' for anchor, title, _ in sections[1:])
    first, *rest = (f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n{content}</section>'
                    for anchor, title, content in sections)
    body = first + f"\n<nav><h2>Contents</h2><ul>{toc}</ul></nav>\n" + "\n".join(rest)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>ptft report: {html.escape(run.resolve().name)}</title>
<style>{STYLE}</style>
<script>{CHECK_SCRIPT}</script>
</head><body>
<h1>ptft report: {html.escape(run.resolve().name)}</h1>
<p>Run directory <code>{html.escape(str(run.resolve()))}</code>. {html.escape(results.describe())}</p>
{_notes(results)}
{body}
</body></html>
"""
    out.write_text(page, encoding="utf-8")
    return out


def _notes(results: Results) -> str:
    if not results.notes:
        return ""
    return "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in results.notes) + "</ul>"


def _img(fig: Figure, alt: str) -> str:
    return f'<img src="{plots.png_data_uri(fig)}" alt="{html.escape(alt)}">'


def _table(frame: pd.DataFrame, caption: str = "table") -> str:
    table = rounded(frame).to_html(index=False, border=0, classes="data", escape=True)
    opened = " open" if len(frame) <= OPEN_TABLE_ROWS else ""
    return (f'<details{opened}><summary>{html.escape(caption)} ({len(frame)} rows)</summary>'
            f'<div class="scroll">{table}</div></details>')


def _config(run: Path) -> str:
    path = run / "study.yaml"
    if not path.is_file():
        return "<p>No study.yaml in the run directory.</p>"
    return f"<details><summary>study.yaml</summary><pre>{html.escape(path.read_text(encoding='utf-8'))}</pre></details>"


def _findings(results: Results) -> str:
    rows = []
    for _, r in results.frames["findings"].iterrows():
        number = int(r["finding"])
        behind = BEHIND[number]
        rows.append(
            f"<tr><td>{number}</td><td>{html.escape(CLAIMS[number])}</td>"
            f'<td class="verdict {r["verdict"]}">{r["verdict"]}</td>'
            f"<td>{html.escape(r['statistic'])} = {num(r['value'], '+.3g')}<br>"
            f"{html.escape(ci(r['ci_low'], r['ci_high'], '+.3g'))}</td>"
            f"<td>{html.escape(r['evidence'])}</td>"
            f'<td><a href="#{behind}">{html.escape(ANALYSES[behind].title)}</a></td></tr>')
    table = ('<table class="data findings"><tr><th>#</th><th>finding</th><th>verdict</th><th>statistic (95% CI)</th>'
             "<th>evidence</th><th>figure behind it</th></tr>" + "".join(rows) + "</table>")
    detail = results.frames["findings_detail"]
    values = _table(detail, "every value behind the four statistics, with its 95% interval") if not detail.empty else ""
    return (table + _img(results.figure("findings"), ANALYSES["findings"].title) + values
            + "<p>Each statistic and verdict rule is defined once, for every table, in the ptft repository's "
              "<code>docs/method.md</code> (\"The four findings as verdicts\").</p>")


def _series(run: Path, cells: pd.DataFrame) -> str:
    """The checkpoints the cells were computed from, in series order, as their specs record them:
    the weights' fingerprint is what their cell ids hash. A series pre-trained in the run is
    identified by its pre-training cell instead; its folders are fingerprinted here, so that the
    series can be compared with another copy of it."""
    seen: dict[str, dict] = {}
    for spec in cells["spec"] if not cells.empty else ():
        ck = json.loads(spec).get("checkpoint")
        if isinstance(ck, dict):
            seen.setdefault(ck["label"], ck)
    if not seen:
        return "<p>No cell records its checkpoint.</p>"
    rows, weights = [], {}
    for ck in seen.values():
        value = ck.get("fingerprint")
        if ck.get("pretrained"):
            value = fingerprint(run / "checkpoints" / ck["label"])  # None once the folder is gone
        if value:
            weights.setdefault(value, []).append(ck["label"])
        rows.append({"checkpoint": ck["label"], "step": ck.get("step"),
                     "revision / path": f"{ck['path']}@{ck['revision']}" if ck.get("revision") else ck["path"],
                     "weights fingerprint": value or "-",
                     "identified in cell ids by": "its pre-training cell" if ck.get("pretrained") else
                     "its weights" if ck.get("fingerprint") else "its name"})
    same = "; ".join(" and ".join(labels) for labels in weights.values() if len(labels) > 1)
    reading = (f'<p class="reading">{len(seen)} checkpoint(s), {sum(len(v) for v in weights.values())} '
               "fingerprinted; " + (f"the same weights under two names: {same}." if same else
                                    "no two hold the same weights.") + "</p>")
    return reading + _table(pd.DataFrame(rows), "the series")


def _grid(cells: pd.DataFrame) -> str:
    if cells.empty:
        return "<p>No cells registered.</p>"
    statuses = list(STATUSES) + sorted(set(cells["status"]) - set(STATUSES))
    counts = (cells.groupby(["kind", "status"]).size().unstack(fill_value=0)
              .reindex(columns=statuses, fill_value=0).rename_axis(index="kind", columns=None))
    counts.loc["all"] = counts.sum()
    counts["total"] = counts.sum(axis=1)
    done = counts.loc["all", "done"] / counts.loc["all", "total"]
    parts = [f"<p class=\"reading\">{counts.loc['all', 'done']} of {counts.loc['all', 'total']} cells done "
             f"({done:.0%}); {counts.loc['all', 'failed']} failed.</p>",
             _table(counts.reset_index())]
    failed = cells[cells["status"] == "failed"]
    if not failed.empty:
        parts.append('<h3 class="failed">Failed cells</h3>')
        parts.append(_table(failed[["label", "kind", "attempts", "error"]]))
    return "\n".join(parts)


def _analysis(results: Results, name: str) -> str:
    """An analysis as the registry describes it: its reading, its figure, the list items of its
    summary section, its companion tables and its own table."""
    frame, spec = results.frames[name], ANALYSES[name]
    parts = [f'<p class="reading">{html.escape(results.reading(name))}</p>', _img(results.figure(name), spec.title)]
    if frame.empty:
        return "\n".join(parts + ["<p>No rows.</p>"])
    items = [line.removeprefix("- ") for line in (spec.summary(results) if spec.summary else [])
             if line.startswith("- ")]
    if items:
        parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>")
    parts += [_table(results.frames[companion], caption(results.frames[companion]))
              for companion, caption in spec.companions]
    parts.append(_table(frame))
    return "\n".join(parts)


def _loss(path: Path) -> str:
    if not path.is_file():
        return "<p>No checkpoints/loss.csv in the run directory (no pre-training in this run).</p>"
    loss = pd.read_csv(path)
    curves = [c for c in ("train_loss", "heldout_loss") if c in loss.columns and loss[c].notna().any()]
    if "step" not in loss.columns or not curves:
        return f"<p>{html.escape(str(path))} has no step column or no loss values.</p>"
    fig, (ax,) = plots.panels(1, "Pre-training loss", width=7.0)
    finals = []
    for i, col in enumerate(curves):
        part = loss[["step", col]].dropna().sort_values("step")
        name = col.replace("_", " ")
        ax.plot(part["step"], part[col], label=name, **{**plots.style(i), "markevery": max(1, len(part) // 20)})
        finals.append(f"final {name} {part[col].iloc[-1]:.3f} at step {plots.format_step(part['step'].iloc[-1])}")
    plots.steps_on_x(ax)
    plots.finish(ax, ylabel="loss")
    return f'<p class="reading">{html.escape("; ".join(finals))}.</p>' + _img(fig, "pre-training loss")


def _predictions(root: Path, report_dir: Path) -> str:
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    if not files:
        return "<p>No prediction files under predictions/.</p>"
    items = []
    for path in files:
        href = quote(Path(os.path.relpath(path.resolve(), report_dir.resolve())).as_posix())
        items.append(f'<li><a href="{href}">{html.escape(path.relative_to(root).as_posix())}</a></li>')
    return f"<p>{len(files)} file(s), one JSON object per example.</p><ul>{''.join(items)}</ul>"
