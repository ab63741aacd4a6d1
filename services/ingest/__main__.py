"""`python -m services.ingest`: migrate the schema, then serve until SIGTERM.

`python -m services.ingest replay (--all | --since DATE | --hoks ID... |
--opiskeluoikeus OID...)` stages events for the latest stored versions (jobs/replay.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from services.ingest.app import create_service
from services.ingest.jobs.replay import Counts, Selection, replay
from services.ingest.settings import IngestSettings
from shared.db import Database


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.ingest")
    commands = parser.add_subparsers(dest="command")
    replaying = commands.add_parser("replay", help="publish stored latest versions again")
    replaying.add_argument("--all", action="store_true", help="every document")
    replaying.add_argument("--since", type=dt.date.fromisoformat, help="changed since (date)")
    replaying.add_argument("--hoks", type=int, nargs="+", default=[], metavar="ID")
    replaying.add_argument("--opiskeluoikeus", nargs="+", default=[], metavar="OID")
    replaying.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    if args.command == "replay" and not (
        args.all or args.since or args.hoks or args.opiskeluoikeus
    ):
        parser.error("replay: give --all, --since, --hoks or --opiskeluoikeus")
    return args


async def run_replay(args: argparse.Namespace) -> Counts:
    settings = IngestSettings()
    db = Database(settings.database_url, pool_size=2)
    try:
        selection = Selection(
            since=args.since, hoks_ids=args.hoks, oids=args.opiskeluoikeus, everything=args.all
        )
        return await replay(db, selection, batch_size=args.batch_size)
    finally:
        await db.dispose()


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.command == "replay":
        counts = asyncio.run(run_replay(args))
        for event_type, count in sorted(counts.by_type.items()):
            print(f"{event_type:<24} {count:>8}")
        print(f"{'staged':<24} {sum(counts.by_type.values()):>8}")
        if counts.unreadable:
            print(f"{'unreadable (skipped)':<24} {counts.unreadable:>8}")
        return
    create_service().run("services.ingest.app:create_app")


if __name__ == "__main__":
    main(sys.argv[1:])
