"""`scripts/demo` (python -m demo): generate the data set, walk it through a half-year of
the running system (`scripts/run` in another terminal), show each step, write the report.

Exit status: 0 when the walk finished (parts not available yet are named, not failed),
2 when the services do not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from demo.driver import Driver, Endpoints, RetryingTransport, Snapshot
from demo.generate import generate
from demo.report import (
    cases_table,
    html_report,
    reasons_table,
    rows_table,
    step_table,
    terminal_bars,
)
from shared.settings import REPO_ROOT


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--seed", type=int, default=2025, help="data set seed (2025)")
    parser.add_argument("--students", type=int, default=300, help="students (300)")
    parser.add_argument("--providers", type=int, default=3, help="koulutustoimijat (3)")
    parser.add_argument(
        "--start", type=dt.date.fromisoformat, default=dt.date(2025, 1, 1), help="first day"
    )
    parser.add_argument(
        "--answer-share", type=float, default=0.6, help="share of links the fake Arvo answers"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path(REPO_ROOT) / ".run" / "demo-report.html",
        help="where the HTML report goes (.run/demo-report.html)",
    )
    return parser.parse_args(argv)


async def reachable(client: httpx.AsyncClient, endpoints: Endpoints) -> list[str]:
    missing = []
    for name, base in endpoints.services().items():
        try:
            answer = await client.get(f"{base}/health/ready")
            if answer.status_code != 200:
                missing.append(f"{name} at {base} is not ready ({answer.status_code})")
        except httpx.HTTPError:
            missing.append(f"{name} at {base} does not answer")
    try:
        await client.get(f"{endpoints.fake_arvo}/_fake/state")
    except httpx.HTTPError:
        missing.append(f"the fake Arvo at {endpoints.fake_arvo} does not answer")
    return missing


async def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    # Wide enough for a step's table when the output goes to a file or a pipe.
    console = Console(width=None if sys.stdout.isatty() else 110)
    endpoints = Endpoints.from_env()
    dataset = generate(
        seed=args.seed, start=args.start, students=args.students, providers=args.providers
    )
    async with httpx.AsyncClient(timeout=30, transport=RetryingTransport()) as client:
        missing = await reachable(client, endpoints)
        if missing:
            console.print("[red]" + "\n".join(missing) + "[/red]")
            console.print("Start the system first: scripts/run (in another terminal).")
            return 2
        console.print(cases_table(dataset))
        driver = Driver(dataset, endpoints, client=client, answer_share=args.answer_share)
        previous: list[Snapshot] = []
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("half-year", total=dataset.days + 1)

            def on_day(day: dt.date) -> None:
                progress.update(task, advance=1, description=day.isoformat())

            def on_snapshot(snapshot: Snapshot) -> None:
                progress.console.print(step_table(snapshot, previous[-1] if previous else None))
                previous.append(snapshot)

            snapshots = await driver.run(on_day=on_day, on_snapshot=on_snapshot)
        final = snapshots[-1]
        console.print(reasons_table(final))
        console.print(cases_table(dataset, final))
        rates = await driver.response_rates()
        if rates:
            console.print(rows_table("response rates (GET /api/v1/reports/response-rates)", rates))
        console.print(f"[bold]The flow on {final.day.isoformat()}[/bold]")
        for line in terminal_bars(final):
            console.print(line)
        notes = list(driver.notes.values())
        if driver.upsert_failures:
            notes.append(f"documents refused by the ingest: {dict(driver.upsert_failures)}")
        for note in notes:
            console.print(f"[yellow]note:[/yellow] {note}")
        args.report.parent.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        args.report.write_text(html_report(dataset, snapshots, notes, now, rates), encoding="utf-8")
        console.print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
