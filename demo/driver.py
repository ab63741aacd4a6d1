"""Drives the running system through the demo's half-year, over its public HTTP APIs only.

Day by day: move every service's clock (development clock API, `shared/devclock.py`) and
the fake Arvo's, send that day's documents to the ingest, run the dated jobs due that day
(`POST /api/v1/runs` on the bundler and the sender, api.md), let the fake Arvo answer a
seeded share of the links, wait for the events to settle, and on each bundling date (1st
and 16th) take a snapshot through the read APIs and the fakes' views.

Parts of the system that are not there yet (a job the runs API does not know, a read API
that answers 404) are reported once as "not available yet" and skipped, so the demo runs
against whatever has landed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from demo.generate import Dataset, Upsert

ADMIN_TOKEN = "dev-admin-token"
# The dated jobs (api.md), by service, each with the spelling some code uses as a second
# guess (a job a service does not know is "not available yet"), and whether what it does
# sets events going that the walk must wait for (the clean-ups only change rows).
JOBS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("bundler", "tep-niputus", ("tep-niputus", "tep_niputus"), True),
    ("bundler", "tpk-niputus", ("tpk-niputus", "tpk_niputus"), True),
    ("sender", "reminders", ("reminders",), True),
    ("bundler", "tep-close-unsent", ("tep-close-unsent",), True),
    ("bundler", "personal-data-cleanup", ("personal-data-cleanup", "personal_data_cleanup"), False),
    ("sender", "personal-data-cleanup", ("personal-data-cleanup", "personal_data_cleanup"), False),
    ("ingest", "personal-data-cleanup", ("personal-data-cleanup", "personal_data_cleanup"), False),
)
SENT_STATES = {"lahetetty", "vastattu", "vastausaika_loppunut"}
BUNDLED_STATES = {"niputettu", *SENT_STATES}
# States a jakso reaches only after passing E1–E14 (C3 and Arvo's 404 come later).
LATE_REFUSALS = {"yhteystieto_puuttuu", "arvo_ei_kyselya"}


def job_due(job: str, day: dt.date) -> bool:
    """When the demo runs each job: as the scheduler would (architecture.md, "Time"), but
    the clean-up and the closing of unsent windows on the 1st and 16th only. Each is a
    function of its date (everything whose time ran out by then), so it ends the same, at
    a fraction of the runs of a walk."""
    if job in ("tep-niputus", "personal-data-cleanup", "tep-close-unsent"):
        return day.day in (1, 16)
    if job == "tpk-niputus":
        return (day.month, day.day) in ((1, 1), (7, 1))
    return True


@dataclass(frozen=True)
class Endpoints:
    ingest: str
    bundler: str
    arvo_adapter: str
    sender: str
    fake_arvo: str
    fake_sms: str
    fake_smtp_view: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Endpoints:
        """The addresses `scripts/run` uses, from the same variables."""
        env = dict(os.environ) if env is None else env
        host = _client_host(env.get("HOST", "127.0.0.1"))
        fake = _client_host(env.get("FAKE_HOST", "127.0.0.1"))

        def url(h: str, variable: str, default: int) -> str:
            return f"http://{h}:{env.get(variable, default)}"

        return cls(
            ingest=url(host, "INGEST_PORT", 8001),
            bundler=url(host, "BUNDLER_PORT", 8002),
            arvo_adapter=url(host, "ARVO_ADAPTER_PORT", 8003),
            sender=url(host, "SENDER_PORT", 8004),
            fake_arvo=url(fake, "FAKE_ARVO_PORT", 8090),
            fake_sms=url(fake, "FAKE_SMS_PORT", 8091),
            fake_smtp_view=url(fake, "FAKE_SMTP_VIEW_PORT", 8092),
        )

    def services(self) -> dict[str, str]:
        return {
            "ingest": self.ingest,
            "bundler": self.bundler,
            "arvo_adapter": self.arvo_adapter,
            "sender": self.sender,
        }


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@dataclass
class Snapshot:
    """What the system shows on one day: jaksot by stage, messages, and the reasons of
    the jaksot that will get no survey (or wait)."""

    day: dt.date
    received: int = 0
    waiting: int = 0
    eligible: int = 0
    bundled: int = 0
    linked: int = 0
    sent: int = 0
    reminded: int = 0
    answered: int = 0
    emails: int = 0
    sms: int = 0
    tpk_links: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    # case (demo.generate.Case value) → its jaksot's outcomes ("lahetetty", "ei_laheteta /
    # keskeytynyt"...), to set beside what the rules should make of each case
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    STAGES = (
        "received",
        "waiting",
        "eligible",
        "bundled",
        "linked",
        "sent",
        "reminded",
        "answered",
    )

    def stages(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.STAGES}


def count_jaksot(snapshot: Snapshot, jaksot: Iterable[dict[str, Any]]) -> None:
    """Stages and reasons from the bundler's jakso rows (api.md fields `tila`, `syy`,
    `nippu_id`)."""
    for jakso in jaksot:
        tila, syy = jakso.get("tila"), jakso.get("syy")
        snapshot.received += 1
        if tila == "odottaa":
            snapshot.waiting += 1
            snapshot.reasons[f"odottaa / {syy}"] += 1
            if syy in ("odottaa_niputusta", "jatkuu_myohemmin"):
                snapshot.eligible += 1
            continue
        if tila == "ei_laheteta":
            snapshot.reasons[f"ei_laheteta / {syy}"] += 1
            if syy in LATE_REFUSALS:
                snapshot.eligible += 1
                snapshot.bundled += jakso.get("nippu_id") is not None
            continue
        snapshot.eligible += 1
        if tila in BUNDLED_STATES or jakso.get("nippu_id") is not None:
            snapshot.bundled += 1
        if tila in SENT_STATES:
            snapshot.sent += 1
        if tila == "vastattu":
            snapshot.answered += 1
        if tila == "vastausaika_loppunut":
            snapshot.reasons["vastausaika_loppunut"] += 1


LINK = re.compile(r"https?://[^\s?\"'<>]+")


def count_outcomes(
    snapshot: Snapshot, jaksot: Iterable[dict[str, Any]], cases: dict[int, str]
) -> None:
    """Each case's jaksot by state: the state alone once past the judgement, with the
    reason while waiting or refused."""
    for jakso in jaksot:
        case = cases.get(int(jakso.get("hoks_id", 0)))
        if case is None:
            continue
        tila = str(jakso.get("tila"))
        label = f"{tila} / {jakso.get('syy')}" if tila in ("odottaa", "ei_laheteta") else tila
        snapshot.outcomes.setdefault(case, Counter())[label] += 1


def count_messages(
    snapshot: Snapshot,
    mails: list[dict[str, Any]],
    sms: list[dict[str, Any]],
    bundle_sizes: dict[str, int],
) -> None:
    """E-mails and SMS the fakes received, and the jaksot whose bundle got a reminder: a
    reminder says so first (S3, templates) and carries its bundle's link, whose bundle
    (`bundle_sizes`: link → jaksot) tells how many jaksot it reminds of."""
    snapshot.emails = len(mails)
    snapshot.sms = len(sms)
    texts = [
        str(m.get("text", "")) for m in mails if str(m.get("subject", "")).startswith("Muistutus")
    ]
    texts += [str(m.get("text", "")) for m in sms if str(m.get("text", "")).startswith("Muistutus")]
    reminded = {link for text in texts for link in LINK.findall(text) if link in bundle_sizes}
    snapshot.reminded = sum(bundle_sizes[link] for link in reminded)


def answers_on(seed: int, tunniste: str, share: float) -> int | None:
    """After how many days the respondent of `tunniste` answers, or None for never:
    seeded by the link, so a run answers the same links as the last one did. Seven in ten
    of those who answer do so within four days (before the reminder), the rest within 20."""
    digest = hashlib.sha256(f"{seed}:{tunniste}".encode()).digest()
    if digest[0] / 256 >= share:
        return None
    if digest[2] % 10 < 7:
        return 1 + digest[1] % 4
    return 6 + digest[1] % 15


class RetryingTransport(httpx.AsyncBaseTransport):
    """Every call the demo makes is idempotent (PUTs, GETs, a run of a (job, date), an
    answer), so a connection lost under load (a keep-alive connection the server had just
    closed) or a 5xx (a database out of connections) is simply tried again, a few times,
    after a growing pause. A resend is not idempotent: never retried."""

    def __init__(self, attempts: int = 4, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.attempts = attempts

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempts = 1 if request.url.path.endswith("/resend") else self.attempts
        for attempt in range(1, attempts + 1):
            try:
                response = await self.inner.handle_async_request(request)
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError):
                if attempt == attempts:
                    raise
            else:
                if response.status_code < 500 or attempt == attempts:
                    return response
                await response.aclose()
            await asyncio.sleep(0.3 * attempt)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.inner.aclose()


class NotAvailable(Exception):
    """A part of the system that has not landed yet (404, unknown job)."""


class Driver:
    """One demo run against the running system."""

    def __init__(
        self,
        dataset: Dataset,
        endpoints: Endpoints,
        *,
        client: httpx.AsyncClient,
        answer_share: float = 0.6,
        settle_seconds: float = 1.0,
        settle_timeout: float = 30.0,
        concurrency: int = 16,
    ) -> None:
        self.dataset = dataset
        self.endpoints = endpoints
        self.client = client
        self.answer_share = answer_share
        self.settle_seconds = settle_seconds
        self.settle_timeout = settle_timeout
        self.semaphore = asyncio.Semaphore(concurrency)
        self.auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        self.notes: dict[str, str] = {}
        self.job_names: dict[str, str | None] = {}
        self.first_seen: dict[str, dt.date] = {}
        self.answered: set[str] = set()
        self.upsert_failures: Counter[str] = Counter()
        self.use_report = True
        self.run_counts: dict[str, Counter[str]] = {}

    def note(self, key: str, text: str) -> None:
        """Say once what is not available (shown under the tables)."""
        self.notes.setdefault(key, text)

    # --- the clock -------------------------------------------------------------------

    async def set_today(self, day: dt.date) -> None:
        """Every service's clock and the fake Arvo's, side by side."""
        body = {"today": day.isoformat()}

        async def service(name: str, base: str) -> None:
            answer = await self.client.put(f"{base}/api/v1/dev/clock", json=body, headers=self.auth)
            if answer.status_code == 404:
                self.note(f"clock-{name}", f"{name}: no development clock API (not available yet)")
            else:
                answer.raise_for_status()

        async def fake_arvo() -> None:
            answer = await self.client.post(f"{self.endpoints.fake_arvo}/_fake/clock", json=body)
            if answer.status_code == 404:
                self.note("clock-arvo", "fake Arvo: no clock control (not available yet)")

        await asyncio.gather(
            *(service(name, base) for name, base in self.endpoints.services().items()),
            fake_arvo(),
        )

    # --- documents -------------------------------------------------------------------

    async def send(self, upserts: list[Upsert]) -> None:
        await asyncio.gather(*(self._send_one(u) for u in upserts))

    async def _send_one(self, upsert: Upsert) -> None:
        base = self.endpoints.ingest
        headers = {**self.auth, "X-Correlation-ID": f"demo-{upsert.kind}-{upsert.key}"}
        async with self.semaphore:
            if upsert.kind == "hoks":
                answer = await self.client.put(
                    f"{base}/api/v1/hoks/{upsert.key}", json=upsert.document, headers=headers
                )
            elif upsert.kind == "opiskeluoikeus":
                answer = await self.client.put(
                    f"{base}/api/v1/opiskeluoikeudet/{upsert.key}",
                    json=upsert.document,
                    headers=headers,
                )
            else:
                answer = await self.client.delete(
                    f"{base}/api/v1/hoks/{upsert.key}", headers=headers
                )
        if answer.status_code >= 400:
            self.upsert_failures[f"{upsert.kind} {answer.status_code}"] += 1

    # --- runs ------------------------------------------------------------------------

    async def run_due_jobs(
        self, day: dt.date, due: Callable[[str, dt.date], bool] = job_due
    ) -> bool:
        """Every job due on `day`: each service's in the scheduler's order, the services
        side by side. True when a job that sets events going did something."""

        async def of_service(service: str) -> bool:
            busy = False
            for owner, job, _, settles in JOBS:
                if owner == service and due(job, day):
                    counts = await self.run_job(service, job, day)
                    busy = busy or (settles and bool(counts and any(counts.values())))
            return busy

        services = dict.fromkeys(service for service, *_ in JOBS)
        return any(await asyncio.gather(*(of_service(s) for s in services)))

    async def run_job(self, service: str, job: str, day: dt.date) -> dict[str, int] | None:
        """Run `job` of `service` for `day` and wait for it; None when not available."""
        key = f"{service} {job}"
        base = self.endpoints.services()[service]
        if key not in self.job_names:
            names = next(n for s, j, n, _ in JOBS if (s, j) == (service, job))
            self.job_names[key] = await self._find_job_name(key, base, names, day)
        name = self.job_names[key]
        if name is None:
            return None
        answer = await self.client.post(
            f"{base}/api/v1/runs", json={"job": name, "date": day.isoformat()}, headers=self.auth
        )
        answer.raise_for_status()
        run = answer.json()
        deadline = asyncio.get_running_loop().time() + 120
        while run["status"] not in ("done", "failed"):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{key} {day} still {run['status']} after 120 s")
            await asyncio.sleep(0.03)
            polled = await self.client.get(f"{base}/api/v1/runs/{run['run_id']}", headers=self.auth)
            polled.raise_for_status()
            run = polled.json()
        if run["status"] == "failed":
            self.note(f"failed-{key}-{day}", f"{key} {day} failed: {run.get('error')}")
            return {}
        counts: dict[str, int] = run.get("counts") or {}
        self.run_counts.setdefault(key, Counter()).update(counts)
        return counts

    async def _find_job_name(
        self, job: str, base: str, names: tuple[str, ...], day: dt.date
    ) -> str | None:
        """The job's name as the service knows it, asked without running anything: an
        unknown name answers 422 with the list of known ones (shared/jobs.py)."""
        answer = await self.client.post(
            f"{base}/api/v1/runs", json={"job": "?", "date": day.isoformat()}, headers=self.auth
        )
        service = job.split()[0]
        if answer.status_code == 404:
            self.note(f"runs-{service}", f"{service}: no runs API (not available yet)")
            return None
        text = answer.text
        for name in names:
            if name in text:
                return name
        self.note(f"job-{job}", f"{job}: not available yet")
        return None

    # --- the fakes -------------------------------------------------------------------

    async def arvo_state(self) -> dict[str, Any]:
        answer = await self.client.get(f"{self.endpoints.fake_arvo}/_fake/state")
        answer.raise_for_status()
        state: dict[str, Any] = answer.json()
        return state

    async def messages(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        mails = await self.client.get(f"{self.endpoints.fake_smtp_view}/_fake/messages")
        sms = await self.client.get(f"{self.endpoints.fake_sms}/_fake/messages")
        mails.raise_for_status()
        sms.raise_for_status()
        return mails.json(), sms.json()

    async def answer_links(self, day: dt.date) -> int:
        """The fake respondents: each link (TEP bundle or TPK) of the data set's providers
        answered by its seeded delay after the day it was first seen, or never."""
        state = await self.arvo_state()
        ours = {provider.oid for provider in self.dataset.providers}
        links = [
            b["tunniste"] for b in state["bundles"] if b["data"].get("koulutustoimija_oid") in ours
        ] + [t["tunnus"] for t in state["tpk"] if t["data"].get("koulutustoimija_oid") in ours]
        answered = 0
        for tunniste in links:
            seen = self.first_seen.setdefault(tunniste, day)
            delay = answers_on(self.dataset.seed, tunniste, self.answer_share)
            if tunniste in self.answered or delay is None or day < seen + dt.timedelta(delay):
                continue
            response = await self.client.post(f"{self.endpoints.fake_arvo}/_fake/answer/{tunniste}")
            if response.status_code == 200:
                self.answered.add(tunniste)
                answered += 1
        return answered

    async def message_counts(self) -> tuple[float, float]:
        """Across the services' `/metrics`: messages handled and published so far, and
        outbox rows still waiting."""
        moved = waiting = 0.0
        for base in self.endpoints.services().values():
            answer = await self.client.get(f"{base}/metrics")
            if answer.status_code != 200:
                continue
            for line in answer.text.splitlines():
                if line.startswith(("messages_handled_total", "outbox_published_total")):
                    moved += float(line.rsplit(" ", 1)[1])
                elif line.startswith("outbox_pending"):
                    waiting += float(line.rsplit(" ", 1)[1])
        return moved, waiting

    async def fingerprint(self) -> tuple[float, ...]:
        state = await self.arvo_state()
        mails, sms = await self.messages()
        moved, waiting = await self.message_counts()
        counts = state.get("counts", {})
        return (
            moved,
            waiting,
            len(state["codes"]),
            len(state["bundles"]),
            len(state["tpk"]),
            len(state["requests"]),
            len(mails),
            len(sms),
            *(int(v) for v in counts.values() if isinstance(v, int)),
        )

    async def settle(self) -> None:
        """Wait until the events have gone round: no outbox row waits, and nothing changes
        in the services' message counts or at the fakes for `settle_seconds` (or
        `settle_timeout` passed: shown, not hidden)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_timeout
        last = await self.fingerprint()
        quiet_since = loop.time()
        while loop.time() - quiet_since < self.settle_seconds or last[1] > 0:
            if loop.time() > deadline:
                self.note("settle", f"the system did not settle within {self.settle_timeout:.0f} s")
                return
            await asyncio.sleep(0.2)
            current = await self.fingerprint()
            if current != last:
                last, quiet_since = current, loop.time()

    # --- snapshots -------------------------------------------------------------------

    async def jaksot(self) -> list[dict[str, Any]]:
        """Every jakso of the data set: each provider's `GET /api/v1/reports/jaksot` (pages
        of 10,000), then `GET /api/v1/hoks/{id}/jaksot` for the HOKS the report does not
        show (a jakso whose study right has not come is of no provider yet)."""
        base = self.endpoints.bundler
        rows: list[dict[str, Any]] = []
        if self.use_report:
            try:
                for provider in self.dataset.providers:
                    rows += await self._report(provider.oid)
            except NotAvailable:
                self.use_report, rows = False, []
        ours = {s.hoks_id for s in self.dataset.students}
        rows = [row for row in rows if row.get("hoks_id") in ours]
        shown = {row["hoks_id"] for row in rows}

        async def one(hoks_id: int) -> list[dict[str, Any]]:
            async with self.semaphore:
                answer = await self.client.get(
                    f"{base}/api/v1/hoks/{hoks_id}/jaksot", headers=self.auth
                )
            if answer.status_code == 404:
                return []
            answer.raise_for_status()
            found: list[dict[str, Any]] = answer.json()
            return found

        lists = await asyncio.gather(*(one(h) for h in sorted(ours - shown)))
        return rows + [jakso for found in lists for jakso in found]

    async def _report(self, koulutustoimija: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"koulutustoimija": koulutustoimija, "limit": "10000"}
            if cursor:
                params["cursor"] = cursor
            answer = await self.client.get(
                f"{self.endpoints.bundler}/api/v1/reports/jaksot",
                params=params,
                headers={**self.auth, "Accept": "application/json"},
            )
            if answer.status_code == 404 and not rows:
                raise NotAvailable("reports/jaksot")
            answer.raise_for_status()
            rows += answer.json()
            cursor = answer.headers.get("X-Next-Cursor")
            if not cursor:
                return rows

    async def snapshot(self, day: dt.date) -> Snapshot:
        snapshot = Snapshot(day)
        try:
            rows = await self.jaksot()
            count_jaksot(snapshot, rows)
            cases = {s.hoks_id: s.case.value for s in self.dataset.students}
            count_outcomes(snapshot, rows, cases)
        except httpx.HTTPStatusError as exc:
            snapshot.missing.append(f"bundler jaksot: {exc.response.status_code}")
        state = await self.arvo_state()
        ours = {provider.oid for provider in self.dataset.providers}
        snapshot.linked = sum(
            1
            for code in state["codes"]
            if code.get("nippu")
            and not code["deleted"]
            and code["data"].get("koulutustoimija_oid") in ours
        )
        snapshot.tpk_links = sum(
            1 for link in state["tpk"] if link["data"].get("koulutustoimija_oid") in ours
        )
        mails, sms = await self.messages()
        sizes = {
            b["nippulinkki"]: len(b["tunnukset"])
            for b in state["bundles"]
            if b["data"].get("koulutustoimija_oid") in ours
        }
        count_messages(snapshot, mails, sms, sizes)
        return snapshot

    async def response_rates(self) -> list[dict[str, Any]]:
        """Each provider's `GET /api/v1/reports/response-rates` over the half-year, as rows
        (whatever shape the report has: a list of rows, or one object)."""
        rows: list[dict[str, Any]] = []
        for provider in self.dataset.providers:
            answer = await self.client.get(
                f"{self.endpoints.bundler}/api/v1/reports/response-rates",
                params={
                    "koulutustoimija": provider.oid,
                    "alku": self.dataset.start.isoformat(),
                    "loppu": self.dataset.end.isoformat(),
                },
                headers={**self.auth, "Accept": "application/json"},
            )
            if answer.status_code == 404 and not rows:
                self.note("response-rates", "response-rates report: not available yet")
                return []
            answer.raise_for_status()
            body = answer.json()
            for row in body if isinstance(body, list) else [body]:
                rows.append({"provider": provider.nimi, **row})
        return rows

    # --- the half-year ---------------------------------------------------------------

    async def run(
        self,
        on_day: Callable[[dt.date], None] | None = None,
        on_snapshot: Callable[[Snapshot], Awaitable[None] | None] | None = None,
    ) -> list[Snapshot]:
        snapshots: list[Snapshot] = []
        day = self.dataset.start
        while day <= self.dataset.end:
            await self.set_today(day)
            busy = False
            upserts = self.dataset.upserts_on(day)
            if upserts:
                await self.send(upserts)
                await self.settle()
            busy = await self.run_due_jobs(day) or busy
            # An answer sets nothing going by itself: the reminders run asks Arvo.
            await self.answer_links(day)
            if busy:
                await self.settle()
            if day.day in (1, 16) or day == self.dataset.end:
                snapshot = await self.snapshot(day)
                snapshots.append(snapshot)
                if on_snapshot is not None:
                    result = on_snapshot(snapshot)
                    if result is not None:
                        await result
            if on_day is not None:
                on_day(day)
            day += dt.timedelta(days=1)
        return snapshots
