"""Benchmark of the ingest: PUT /api/v1/hoks with realistic generated HOKS documents.

Starts a real ingest process (`python -m services.ingest`) on a fresh database, drives it
over HTTP at a chosen concurrency from this process, and prints documents/s and latency
percentiles. As a baseline measured in the same run, on the same machine, it prints the
rate of single-row INSERT-and-commit into PostgreSQL from Python (asyncpg, same
concurrency), and the ratio of the two. Figures, not assertions: these machines are noisy.

    python bench/ingest.py --documents 20000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "data" / "examples" / "ehoks-examples"
TOKEN = "dev-upstream-token"
ADMIN_URL = os.environ.get("BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

WORKPLACES = [
    "Perhosen Päiväkoti",
    "Kahvila Kolputinrauta Oy",
    "Superhamsteri",
    "Helsingin koti, Bulevardin tp",
    "Eponton Oy, Ravintola Karppi",
]


def templates() -> list[dict[str, Any]]:
    """Every eHOKS example: their sizes (1-33 KiB) are the spread real documents have."""
    return [json.loads(path.read_text()) for path in sorted(EXAMPLES.glob("*.json"))]


def generate(template: dict[str, Any], n: int, rng: random.Random) -> dict[str, Any]:
    """A variant of a real HOKS: new people, dates, workplaces and tunnisteet."""
    doc = copy.deepcopy(template)
    doc["oppija-oid"] = f"1.2.246.562.24.{10**10 + n}"
    doc["opiskeluoikeus-oid"] = f"1.2.246.562.15.{10**10 + n}"
    doc["sahkoposti"] = f"opiskelija{n}@example.org"

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "osaamisen-hankkimistapa-koodi-uri" in node:
                start = 19000 + rng.randrange(2000)
                node["alku"] = time.strftime("%Y-%m-%d", time.gmtime(start * 86400))
                node["loppu"] = time.strftime(
                    "%Y-%m-%d", time.gmtime((start + rng.randrange(10, 120)) * 86400)
                )
                node["yksiloiva-tunniste"] = uuid.UUID(int=rng.getrandbits(128)).hex
                tjk = node.get("tyopaikalla-jarjestettava-koulutus")
                if tjk:
                    tjk["tyopaikan-nimi"] = rng.choice(WORKPLACES)
                    tjk["vastuullinen-tyopaikka-ohjaaja"] = {
                        "nimi": f"Ohjaaja {rng.randrange(5000)}",
                        "sahkoposti": f"ohjaaja{rng.randrange(5000)}@example.org",
                        "puhelinnumero": f"040{rng.randrange(10**7):07d}",
                    }
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return doc


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Connection:
    """A minimal keep-alive HTTP/1.1 client connection.

    The load generator shares the machine's two cores with the server and PostgreSQL, so
    it must cost little per request; a general-purpose client (httpx) spent more CPU than
    the server it measured.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def put(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def drive(
    port: int, bodies: list[bytes], concurrency: int, first_id: int = 1
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    work = iter(enumerate(bodies))

    async def worker() -> None:
        conn = await Connection.open("127.0.0.1", port)
        try:
            for i, body in work:
                start = time.perf_counter()
                status, answer = await conn.put(f"/api/v1/hoks/{first_id + i}", body)
                latencies.append(time.perf_counter() - start)
                if status != 201:
                    raise RuntimeError(f"{status}: {answer[:200]!r}")
        finally:
            conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies


async def baseline(dsn: str, count: int, concurrency: int) -> float:
    """Single-row INSERT, each its own committed transaction, from Python (asyncpg)."""
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, body text)")
    remaining = iter(range(count))

    async def worker() -> None:
        async with pool.acquire() as conn:
            for n in remaining:
                await conn.execute("INSERT INTO bench_baseline (body) VALUES ($1)", f"row {n}")

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    await pool.close()
    return count / elapsed


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process and its children so far (Linux /proc): far less
    noisy on a shared machine than throughput."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """The server and its worker processes (WEB_CONCURRENCY > 1)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + sum(cpu_seconds(int(child)) for child in children)


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit("ingest exited during start-up")
            try:
                if (await client.get(f"{url}/health/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("ingest not ready")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    sources = templates()
    bodies = [
        json.dumps(generate(sources[n % len(sources)], n, rng)).encode()
        for n in range(args.documents)
    ]
    database = f"tp_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    dsn = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    env = {
        **os.environ,
        "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
        "PORT": str(args.port),
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "services.ingest"], cwd=ROOT, env=env)
    try:
        url = f"http://127.0.0.1:{args.port}"
        await wait_ready(url, proc)
        await drive(
            args.port, bodies[:200], 8, first_id=10**9
        )  # warm-up: first request pays imports and pools
        cpu_before = tree_cpu_seconds(proc.pid)
        elapsed, latencies = await drive(args.port, bodies, args.concurrency)
        cpu_per_document = (tree_cpu_seconds(proc.pid) - cpu_before) / len(latencies)
        rate = len(latencies) / elapsed
        inserts = await baseline(dsn, args.documents, args.concurrency)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()

    size = statistics.mean(len(b) for b in bodies) / 1024
    print(f"documents: {len(latencies)} (mean {size:.1f} KiB), concurrency {args.concurrency}")
    print(f"ingest: {rate:,.0f} documents/s, server CPU {cpu_per_document * 1000:.2f} ms/document")
    print(
        f"latency: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    print(f"baseline: {inserts:,.0f} single-row INSERT+COMMIT/s (asyncpg, same concurrency)")
    print(f"ratio: ingest documents/s / baseline inserts/s = {rate / inserts:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
