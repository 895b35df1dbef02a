"""Diagnosis (+ the run's series) -> one self-contained HTML page; audit rows -> a sortable table.

Why HTML: a verdict with its curves is read faster than a text report, and one file can be
attached to a ticket or opened from a cluster's shared disk. So the page carries
everything itself: CSS, inline SVG charts (:mod:`logsleuth.charts`) and, for the audit
table, a few lines of inline JS; no network, no fonts, no CDN.

Log text is untrusted (a log can print ``<script>``): every string from a log or a path
goes through :func:`html.escape`, and the scripts read and move DOM nodes only (no
``innerHTML``). Pure: values in, a string out; the CLI writes the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .charts import MAX_POINTS, Curve, Marker, downsample, fmt_step, line_chart, sparkline
from .types import Diagnosis, RunSeries, is_loss_metric, nonfinite_words

#: the curves drawn, in page order, with their titles
CHART_METRICS = (("loss", "loss"), ("grad_norm", "gradient norm"), ("lr", "learning rate"),
                 ("loss_scale", "loss scale"))

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1180px;color:#222;
padding:0 16px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #ddd}
.code{font-family:ui-monospace,monospace;background:#eef;padding:1px 5px;border-radius:3px}
.failed{color:#b00020}.ok{color:#1b7f3b}.muted{color:#777}
pre,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;word-break:break-all}
pre{background:#f6f6f6;padding:8px;border-left:3px solid #d62728;margin:4px 0}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;
vertical-align:top}th{background:#fafafa}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px;color:#555;max-width:560px}
svg.chart{background:#fff;border:1px solid #e4e4e4}svg text{font:11px system-ui,sans-serif;fill:#444}
svg .chart-title{font-weight:600;font-size:12px;fill:#222}svg .axis{stroke:#888}svg .grid{stroke:#eee}
svg path{fill:none;stroke-width:1.3}svg .nonfinite{stroke:#d62728;stroke-width:1}
th.sortable{cursor:pointer;user-select:none}th.sortable:after{content:" \\2195";color:#aaa}
#page-errors{color:#b00020}
"""

#: writes script errors into the page, so a headless browser's DOM dump shows them
_ERROR_HOOK = ("<script>window.onerror=function(m,s,l){var e=document.getElementById('page-errors');"
               "if(e){e.textContent+='script error: '+m+' (line '+l+')\\n';}};</script>")


def _page(title: str, body: Sequence[str], script: str = "") -> str:
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style>{_ERROR_HOOK}</head><body>",
        '<div id="page-errors"></div>', *body, script, "</body></html>", ""])


# ---- curves ---------------------------------------------------------------------------

def _metric_rows(run: RunSeries, metric: str) -> Any:
    """The run's train rows of ``metric`` with a step, one rank (the lowest, or none)."""
    f = run.frame
    rows = f[(f["metric"] == metric) & (f["phase"] == "train") & f["step"].notna()]
    if rows["rank"].notna().any():
        rows = rows[rows["rank"] == rows["rank"].min()]
    return rows.sort_values(["segment", "line"])


def _loss_name(runs: Sequence[RunSeries]) -> str | None:
    """``loss``, or the first train loss-like metric when the log prints no total."""
    names = sorted({str(m) for r in runs for m in r.frame["metric"][r.frame["phase"] == "train"].unique()})
    return "loss" if "loss" in names else next((m for m in names if is_loss_metric(m)), None)


def run_curves(runs: Sequence[RunSeries], metric: str, keep_step: float | None = None,
               max_points: int = MAX_POINTS) -> list[Curve]:
    """One :class:`Curve` per attempt: every segment of every log passed (attempts in order),
    down-sampled for drawing with the first non-finite step's neighbourhood kept."""
    curves: list[Curve] = []
    attempt = 0
    for run in runs:
        rows = _metric_rows(run, metric)
        for segment, part in rows.groupby("segment", sort=True):
            steps = part["step"].to_numpy(dtype=float)
            values = part["value"].to_numpy(dtype=float)
            steps, values = downsample(steps, values, max_points, keep_step)
            curves.append(Curve(attempt + int(segment), steps, values))
        attempt += int(rows["segment"].max()) + 1 if len(rows) else 1
    return curves


def _marker(d: Diagnosis) -> Marker | None:
    first = d.first_nonfinite
    if first is None or first.step is None:
        return None
    return Marker(float(first.step), f"first non-finite: {nonfinite_words(first.metric)} at step {first.step}",
                  first.text, first.line)


def charts_section(d: Diagnosis, runs: Sequence[RunSeries]) -> list[str]:
    """One small chart per metric the run printed (loss, grad norm, lr, loss scale)."""
    marker = _marker(d)
    keep = marker.step if marker else None
    out = ["<h2>Curves</h2>", '<div class="charts">']
    drawn = 0
    for metric, title in CHART_METRICS:
        name = _loss_name(runs) if metric == "loss" else metric
        curves = run_curves(runs, name, keep) if name else []
        if not any(len(c.steps) for c in curves):
            continue
        caption = (f"<figcaption>first non-finite at step {fmt_step(marker.step)}, line {marker.line}: "
                   f'<span class="mono">{escape(marker.text[:300])}</span></figcaption>') if marker and not drawn else ""
        label = title if name == metric else f"{title} ({name})"
        out.append(f"<figure>{line_chart(label, curves, marker)}{caption}</figure>")
        drawn += 1
    out.append("</div>")
    return out if drawn else ['<h2>Curves</h2><p class="muted">no training curve in the log</p>']


# ---- the diagnosis page ---------------------------------------------------------------

def _verdict_section(d: Diagnosis) -> list[str]:
    v = d.verdict
    state = "failed" if d.failed else "ok"
    out = [f'<h1 class="{state}"><span class="code verdict-code">{escape(v.code)}</span> '
           f'{escape(v.slug)}: {escape(v.title)}</h1>',
           f'<p>confidence <b class="confidence">{v.confidence:.2f}</b> · decided by {escape(v.decided_by)}</p>']
    for i in d.inputs:
        size = f"{i.size:,} B" if i.size is not None else "stream"
        out.append(f'<div class="muted">input: <span class="mono">{escape(i.path)}</span> '
                   f'({escape(i.format)}, {size})</div>')
    if d.attempts > 1:
        out.append(f"<p>{d.attempts} attempts in the log (the step counter went back, or training restarted)</p>")
    if d.first_nonfinite:
        f = d.first_nonfinite
        out += [f'<p class="first-nonfinite"><b>First non-finite</b>: {escape(f.described())}</p>',
                f"<pre>{escape(f.text)}</pre>"]
    return out


def _evidence_section(d: Diagnosis) -> list[str]:
    if not d.evidence:
        return []
    out = ["<h2>Evidence</h2>", '<table class="evidence"><tr><th>step</th><th>line</th><th>why</th>'
           "<th>line text</th></tr>"]
    for e in d.evidence:
        step = "" if e.step is None else str(e.step)
        line = "header" if e.line is None else str(e.line)
        out.append(f"<tr><td>{step}</td><td>{line}</td><td>{escape(e.why)}</td>"
                   f'<td class="mono">{escape(e.text)}</td></tr>')
    return out + ["</table>"]


def _causes_section(d: Diagnosis) -> list[str]:
    if not d.causes:
        return []
    out = ["<h2>Likely causes</h2>", '<ol class="causes">']
    for c in d.causes:
        because = f'<div class="muted">because {escape("; ".join(c.because))}</div>' if c.because else ""
        fixes = "".join(f"<li>{escape(fix)}</li>" for fix in c.fixes)
        out.append(f'<li><span class="code">{escape(c.code)}</span> {escape(c.title)} '
                   f"<b>({c.probability:.0%})</b>{because}" + (f"<ul>{fixes}</ul>" if fixes else "") + "</li>")
    return out + ["</ol>"]


def _notes_section(d: Diagnosis) -> list[str]:
    out = []
    if d.bad_sample:
        out.append(f"<h2>Bad sample</h2><p>{escape(str(d.bad_sample.get('summary', '')))}</p>")
    if d.next_steps:
        out += ["<h2>Next</h2><ul>", *(f'<li class="mono">{escape(s)}</li>' for s in d.next_steps), "</ul>"]
    if d.warnings:
        out += ["<h2>Warnings</h2><ul>", *(f"<li>{escape(w)}</li>" for w in d.warnings), "</ul>"]
    return out


def diagnosis_page(d: Diagnosis, runs: Sequence[RunSeries] = ()) -> str:
    """The whole report: verdict, curves (from ``runs``, the series diagnosed), evidence,
    ranked causes with fixes, warnings. Without ``runs`` the page has no charts."""
    name = d.inputs[0].path.rsplit("/", 1)[-1] if d.inputs else "run"
    body = [*_verdict_section(d), *(charts_section(d, runs) if runs else []), *_evidence_section(d),
            *_causes_section(d), *_notes_section(d),
            f'<p class="muted">`logsleuth explain {escape(d.verdict.code)}` documents the signature.</p>']
    return _page(f"logsleuth: {d.verdict.code} {name}", body)


# ---- the audit page -------------------------------------------------------------------

#: (row key, header, numeric?) of the audit table
AUDIT_COLUMNS = (("path", "run", False), ("verdict", "verdict", False), ("slug", "signature", False),
                 ("confidence", "confidence", True), ("nonfinite_step", "first non-finite step", True),
                 ("cause", "top cause", False), ("error", "error", False))

_SORT_JS = """<script>
(function(){var t=document.getElementById('runs');if(!t)return;var hs=t.tHead.rows[0].cells;
for(var i=0;i<hs.length;i++){(function(i,h){if(!h.classList.contains('sortable'))return;
h.addEventListener('click',function(){var asc=h.getAttribute('data-dir')!=='asc';
for(var j=0;j<hs.length;j++)hs[j].removeAttribute('data-dir');h.setAttribute('data-dir',asc?'asc':'desc');
var num=h.getAttribute('data-type')==='num',b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
rows.sort(function(x,y){var a=x.cells[i].getAttribute('data-sort'),c=y.cells[i].getAttribute('data-sort');
if(num){a=a===''?Infinity:parseFloat(a);c=c===''?Infinity:parseFloat(c);return asc?a-c:c-a;}
return asc?a.localeCompare(c):c.localeCompare(a);});
rows.forEach(function(r){b.appendChild(r);});});})(i,hs[i]);}})();
</script>"""


def _cell(row: Mapping[str, Any], key: str, numeric: bool, root: str = "") -> str:
    value = row.get(key)
    if key == "path" and root and value:  # the runs' common directory is said once, above the table
        full = str(value)
        short = os.path.relpath(full, root) if full != root else os.path.basename(full)
        return f'<td data-sort="{escape(short.lower())}" class="mono" title="{escape(full)}">{escape(short)}</td>'
    missing = value is None or (isinstance(value, float) and value != value) or str(value) in ("<NA>", "nan")
    text = "" if missing else (f"{value:.2f}" if key == "confidence" else str(value))
    if key == "cause" and text and row.get("cause_slug"):
        text = f"{text} {row['cause_slug']}"
    sort = "" if missing else (str(float(value)) if numeric else text.lower())  # type: ignore[arg-type]
    css = ' class="mono"' if key in ("path", "error") else ""
    return f'<td data-sort="{escape(sort)}"{css}>{escape(text)}</td>'


def audit_page(rows: Sequence[Mapping[str, Any]], sparks: Mapping[str, tuple[Sequence[float], Sequence[float]]],
               title: str = "logsleuth audit") -> str:
    """The audit as a table (one row per run; click a header to sort) with a loss sparkline
    per run; ``sparks`` maps a run's path to its down-sampled (steps, losses)."""
    failed = sum(bool(r.get("failed")) for r in rows)
    paths = [str(r.get("path")) for r in rows if r.get("path")]
    root = os.path.commonpath(paths) if len(paths) > 1 else (os.path.dirname(paths[0]) if paths else "")
    root = os.path.dirname(root) if root in paths else root
    heads = "".join(f'<th class="sortable" data-type="{"num" if num else "text"}">{escape(h)}</th>'
                    for _, h, num in AUDIT_COLUMNS)
    where = f' under <span class="mono">{escape(root)}</span>' if root else ""
    body = [f"<h1>{escape(title)}</h1>",
            f"<p>{len(rows)} run(s){where}, {failed} failed. Click a header to sort.</p>",
            f'<table id="runs"><thead><tr>{heads}<th>loss</th></tr></thead><tbody>']
    for row in rows:
        cells = "".join(_cell(row, key, num, root) for key, _, num in AUDIT_COLUMNS)
        step = row.get("nonfinite_step")
        step = None if step is None or str(step) in ("<NA>", "nan") else float(step)
        steps, values = sparks.get(str(row.get("path")), ((), ()))
        state = "failed" if row.get("failed") else "ok"
        body.append(f'<tr class="{state}">{cells}<td>{sparkline(steps, values, step)}</td></tr>')
    body.append("</tbody></table>")
    return _page(title, body, _SORT_JS)


def loss_spark(run: RunSeries, points: int = 120) -> tuple[list[float], list[float]]:
    """A run's train loss down-sampled for a sparkline (min/max kept, the first nan kept):
    small enough to travel in an audit row."""
    name = _loss_name([run])
    if name is None:
        return [], []
    first = run.first_nonfinite()
    keep = float(first.step) if first is not None and first.step is not None else None
    steps: list[float] = []
    values: list[float] = []
    for curve in run_curves([run], name, keep, points):
        if steps:  # a nan between attempts lifts the pen: no line drawn back to a restart
            steps.append(float(curve.steps[0]) if len(curve.steps) else steps[-1])
            values.append(float("nan"))
        steps += curve.steps.tolist()
        values += curve.values.tolist()
    return steps, values
