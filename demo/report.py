"""What the demo shows: a table per step, a terminal bar chart, and a self-contained HTML
report with the flow as an inline SVG bar chart (no scripts, no external files)."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table

from demo.driver import Snapshot
from demo.generate import EXPECTED, Dataset

STAGE_HELP = {
    "received": "jaksot the bundler knows",
    "waiting": "odottaa (not ended, study right missing, or waiting for its niputuspvm)",
    "eligible": "passed E1–E14",
    "bundled": "in a TEP bundle (nippu)",
    "linked": "with an Arvo answer code in a bundle link",
    "sent": "first message gone out (lahetetty or later)",
    "reminded": "reminder messages (S3)",
    "answered": "vastattu",
}
COLOURS = ("#4e79a7", "#9c755f", "#59a14f", "#edc948", "#f28e2b", "#e15759", "#b07aa1", "#76b7b2")


def step_table(snapshot: Snapshot, previous: Snapshot | None = None) -> Table:
    """One step: each stage's count, with the change since the previous step."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    table.add_column("day", no_wrap=True)
    for name in (*Snapshot.STAGES, "mail/SMS", "TPK"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))

    def change(name: str) -> str:
        if previous is None:
            return ""
        delta = int(getattr(snapshot, name)) - int(getattr(previous, name))
        return f"{delta:+d}" if delta else ""

    table.add_row(
        snapshot.day.isoformat(),
        *(str(getattr(snapshot, name)) for name in Snapshot.STAGES),
        f"{snapshot.emails}/{snapshot.sms}",
        str(snapshot.tpk_links),
    )
    if previous is not None:
        table.add_row(
            "[dim]change[/dim]",
            *(f"[dim]{change(name)}[/dim]" for name in Snapshot.STAGES),
            f"[dim]{change('emails') or 0}/{change('sms') or 0}[/dim]"
            if change("emails") or change("sms")
            else "",
            f"[dim]{change('tpk_links')}[/dim]",
        )
    return table


def reasons_table(snapshot: Snapshot, limit: int = 12) -> Table:
    table = Table(title="the rest: tila / syy", title_justify="left")
    table.add_column("tila / syy")
    table.add_column("jaksot", justify="right")
    for reason, count in snapshot.reasons.most_common(limit):
        table.add_row(reason, str(count))
    return table


def cases_table(dataset: Dataset, final: Snapshot | None = None) -> Table:
    """The data set's cases with what the rules should make of each, and (at the end)
    what the system made of their jaksot."""
    table = Table(title=f"data set (seed {dataset.seed})", title_justify="left")
    table.add_column("case")
    table.add_column("students", justify="right")
    table.add_column("what the rules should make of it")
    if final is not None:
        table.add_column("what the jaksot ended as")
    counts = Counter(student.case for student in dataset.students)
    for case, count in sorted(counts.items(), key=lambda item: -item[1]):
        cells = [case.value, str(count), EXPECTED[case]]
        if final is not None:
            cells.append(outcome_text(final, case.value))
        table.add_row(*cells)
    return table


def outcome_text(snapshot: Snapshot, case: str, limit: int = 3) -> str:
    outcomes = snapshot.outcomes.get(case, Counter())
    return ", ".join(f"{label} {n}" for label, n in outcomes.most_common(limit))


def rows_table(title: str, rows: Sequence[dict[str, Any]]) -> Table:
    """A report of unknown shape as a table: one column per key of its rows."""
    table = Table(title=title, title_justify="left")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_plain(row.get(column)) for column in columns))
    return table


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def html_rows(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p class='muted'>not available</p>"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_plain(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def terminal_bars(snapshot: Snapshot, width: int = 48) -> list[str]:
    """The flow as horizontal bars, for the terminal (rich markup)."""
    stages = snapshot.stages()
    top = max(stages.values()) or 1
    lines = []
    for index, (name, value) in enumerate(stages.items()):
        length = round(value / top * width)
        colour = COLOURS[index % len(COLOURS)]
        lines.append(f"{name:>9} [{colour}]{'█' * length}[/{colour}] {value}")
    return lines


def svg_bars(snapshot: Snapshot, width: int = 640, bar: int = 26, gap: int = 8) -> str:
    """The same bars as an inline SVG."""
    stages = snapshot.stages()
    top = max(stages.values()) or 1
    label, room = 90, width - 90 - 60
    height = len(stages) * (bar + gap) + gap
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="the flow on {snapshot.day.isoformat()}">'
    ]
    for index, (name, value) in enumerate(stages.items()):
        y = gap + index * (bar + gap)
        length = max(1, round(value / top * room)) if value else 0
        colour = COLOURS[index % len(COLOURS)]
        parts.append(
            f'<text x="{label - 6}" y="{y + bar * 0.7:.0f}" text-anchor="end">{name}</text>'
            f'<rect x="{label}" y="{y}" width="{length}" height="{bar}" fill="{colour}">'
            f"<title>{html.escape(STAGE_HELP[name])}</title></rect>"
            f'<text x="{label + length + 6}" y="{y + bar * 0.7:.0f}">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_timeline(snapshots: Sequence[Snapshot], width: int = 640, height: int = 220) -> str:
    """Bundled, sent and answered jaksot over the half-year, as lines."""
    if len(snapshots) < 2:
        return ""
    series = ("bundled", "sent", "answered")
    top = max(max(getattr(s, name) for s in snapshots) for name in series) or 1
    left, bottom = 40, height - 24
    step = (width - left - 10) / (len(snapshots) - 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    parts.append(f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" stroke="#999"/>')
    for index, snapshot in enumerate(snapshots):
        if index % 2 == 0:
            x = left + index * step
            day = snapshot.day.strftime("%d.%m.")
            parts.append(f'<text x="{x:.0f}" y="{height - 6}" font-size="10">{day}</text>')
    for colour, name in zip(COLOURS[3:], series, strict=False):
        points = " ".join(
            f"{left + i * step:.0f},{bottom - getattr(s, name) / top * (bottom - 10):.0f}"
            for i, s in enumerate(snapshots)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
    legend = " ".join(
        f'<tspan fill="{colour}">■ {name}</tspan>'
        for colour, name in zip(COLOURS[3:], series, strict=False)
    )
    parts.append(f'<text x="{left + 4}" y="14" font-size="12">{legend}</text></svg>')
    return "".join(parts)


def html_report(
    dataset: Dataset,
    snapshots: Sequence[Snapshot],
    notes: Sequence[str],
    generated_at: dt.datetime,
    response_rates: Sequence[dict[str, Any]] = (),
) -> str:
    """One self-contained page: the final flow, its course, each step, the reasons."""
    if not snapshots:
        raise ValueError("no snapshots to report")
    final = snapshots[-1]
    esc = html.escape
    rows = "".join(
        "<tr><td>"
        + esc(s.day.isoformat())
        + "</td>"
        + "".join(f"<td>{getattr(s, n)}</td>" for n in Snapshot.STAGES)
        + f"<td>{s.emails} / {s.sms}</td><td>{s.tpk_links}</td></tr>"
        for s in snapshots
    )
    header = "".join(f"<th title='{esc(STAGE_HELP[n])}'>{n}</th>" for n in Snapshot.STAGES)
    reasons = "".join(
        f"<tr><td>{esc(r)}</td><td>{c}</td></tr>" for r, c in final.reasons.most_common()
    )
    counts = Counter(student.case for student in dataset.students)
    cases = "".join(
        f"<tr><td>{esc(c.value)}</td><td>{n}</td><td>{esc(EXPECTED[c])}</td>"
        f"<td>{esc(outcome_text(final, c.value, limit=5))}</td></tr>"
        for c, n in sorted(counts.items(), key=lambda item: -item[1])
    )
    note_items = "".join(f"<li>{esc(n)}</li>" for n in notes) or "<li>none</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>työelämäpalaute demo, seed {dataset.seed}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 960px; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
svg text {{ font-size: 13px; }}
.muted {{ color: #666; }}
</style></head><body>
<h1>työelämäpalaute: a half-year of the flow</h1>
<p class="muted">{len(dataset.students)} students of {len(dataset.providers)} providers,
{dataset.start.isoformat()} – {dataset.end.isoformat()}, seed {dataset.seed};
generated {esc(generated_at.isoformat(timespec="seconds"))}.</p>
<h2>The flow on {final.day.isoformat()}</h2>
{svg_bars(final)}
<h2>Over the half-year</h2>
{svg_timeline(snapshots)}
<h2>Step by step</h2>
<table><tr><th>day</th>{header}<th>e-mails / SMS</th><th>TPK links</th></tr>{rows}</table>
<h2>Response rates (the bundler's report)</h2>
{html_rows(response_rates)}
<h2>Jaksot without a survey (or still waiting), by reason</h2>
<table><tr><th>tila / syy</th><th>jaksot</th></tr>{reasons}</table>
<h2>The data set</h2>
<table><tr><th>case</th><th>students</th><th>expected</th><th>what the jaksot ended as</th></tr>
{cases}</table>
<h2>Not available in this run</h2>
<ul>{note_items}</ul>
</body></html>
"""
