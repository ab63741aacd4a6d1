"""Fake Arvo: the part of Arvo's REST API that work-life feedback uses (spec: arvo-api.md).

Runs as a real HTTP server with in-memory state, so the arvo_adapter is exercised over the
wire, including Arvo's unpleasant habits: slowness, 5xx during maintenance, 404 when no
survey exists and *no* idempotency by ``request_id`` (a retry makes a second code; the
request log lets tests count such duplicates).

API base: ``{root}/api/`` with HTTP basic auth; errors are ``{"errors": [...]}``. Every
API call passes, in order: latency, maintenance (503), agreed hours (503, link requests
only), ``fail-next`` (500), the seeded random faults, auth (401).
Bundle validity follows rules.md W2, simplified as documented in ``bundle_validity``.

Test control API under ``{root}/_fake/`` (no auth, never delayed or failed):
``POST reset`` | ``POST maintenance {"on": bool}`` | ``POST latency {"seconds": float}`` |
``POST fail-next {"count": n}`` | ``POST no-survey {"koulutustoimija_oid", "on"?: bool}`` |
``POST faults {...}`` and ``POST hours {...}`` (below) |
``POST answer/{tunniste}`` (a bundle's tunniste or a TPK tunnus) |
``POST clock {"today": "YYYY-MM-DD" | null}`` (the fake's today, as the services'
development clock API moves theirs) | ``GET state`` (codes,
bundles, deleted bundles, TPK links, request log with request_ids, statuses and faults,
settings, and ``counts``: see ``ArvoState.counts``).
In-process tests may also read ``app.state.arvo`` directly.

Random faults, ``POST faults {"seed": int, "fail": p, "timeout": p, "timeout_seconds": s,
"lose": p, "lose_as": "drop" | "502" | "504"}`` (every field optional; the call replaces
the whole configuration, so ``{}`` switches faults off). Each API call draws one number
from a ``random.Random(seed)``, so the same sequence of calls meets the same faults:
- ``fail`` — answer 500 without doing anything;
- ``timeout`` — do the effect, then hold the answer ``timeout_seconds`` (default 30),
  longer than the client waits: the client cannot know the outcome;
- ``lose`` — do the effect, then lose the answer: ``drop`` sends the status line and
  closes the connection before the body (the client sees a protocol error), ``502`` /
  ``504`` answer as a gateway that lost Arvo's answer.
Effects are only done when the call would have succeeded (auth, validation, 404 rules).

Agreed hours, ``POST hours {"start": "HH:MM", "end": "HH:MM", "now"?: "HH:MM"}`` (or
``{"start": null}`` to switch off): link requests (``POST nippu``, ``POST
tyopaikkakysely-tunnus``) outside ``[start, end)`` Helsinki time (a window may cross
midnight) are refused. The contract names no status; the fake answers **503 with
``Retry-After``** (seconds until the window opens) and ``{"errors": ["outside agreed
hours ..."]}``, so a client treats it as "Arvo unavailable, try later". ``now`` freezes
the fake's time of day for tests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import random
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

__all__ = [
    "NIPPU_STATUSES",
    "ArvoError",
    "ArvoState",
    "Faults",
    "Hours",
    "bundle_validity",
    "create_app",
    "niputuspvm_for",
]

API_PREFIX = "/api/tyoelamapalaute/v1"

NIPPU_STATUSES = frozenset(
    {
        "odottaa_lahetysta",
        "lahetetty",
        "lahetys_epaonnistunut",
        "bounced",
        "ei_kelvollisia_yhteystietoja",
        "vastausaika_loppunut_ennen_lahetysta",
        "vastausaika_loppunut_ennen_muistutusta",
        "vastattu",
    }
)
SOPIMUSTYYPIT = frozenset({"koulutussopimus", "oppisopimus"})
OPPISOPIMUKSEN_PERUSTAT = frozenset({"01", "02"})

_OID_RE = re.compile(r"^\d+(\.\d+)+$")
_YTUNNUS_RE = re.compile(r"^\d{7}-\d$")
_TUNNISTE_RE = re.compile(r"^[a-z0-9_-]+$")
# Arvo-like answer codes: upper case, no easily confused characters.
_CODE_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXY3456789"
_CODE_LENGTH = 8
_HELSINKI = ZoneInfo("Europe/Helsinki")
# Link requests: the calls Arvo refuses outside agreed hours (arvo-api.md, "Errors").
_LINK_REQUESTS = frozenset(
    {("POST", f"{API_PREFIX}/nippu"), ("POST", f"{API_PREFIX}/tyopaikkakysely-tunnus")}
)


class ArvoError(Exception):
    """An API error answered as ``{"errors": [...]}`` with the given HTTP status."""

    def __init__(self, status: int, errors: list[str]) -> None:
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors


# --------------------------------------------------------------------------- dates


def niputuspvm_for(loppupvm: date) -> date:
    """Statutory bundling date by the default half-monthly policy (rules.md D1)."""
    if loppupvm.day <= 15:
        return loppupvm.replace(day=16)
    if loppupvm.month == 12:
        return date(loppupvm.year + 1, 1, 1)
    return date(loppupvm.year, loppupvm.month + 1, 1)


def bundle_validity(alkupvm: date, niputuspvm: date | None) -> date:
    """Last answer day: 30 days from ``alkupvm`` inclusive, at most niputuspvm + 59 (W2).

    Simplification: the fake only knows the jaksot' end dates, so niputuspvm is derived
    with the default D1 policy from the latest ``tyopaikkajakson_loppupvm`` of the
    bundle's codes; without dates only the 30-day rule applies.
    """
    loppu = alkupvm + timedelta(days=29)
    if niputuspvm is not None:
        loppu = min(loppu, niputuspvm + timedelta(days=59))
    return loppu


def _today() -> date:
    """Today in Helsinki, honouring ``CLOCK_TODAY`` like our services do."""
    override = os.environ.get("CLOCK_TODAY")
    if override:
        return date.fromisoformat(override)
    return datetime.now(_HELSINKI).date()


# --------------------------------------------------------------------------- validation


class _Checker:
    """Collects every problem of a request body, so one 400 lists them all (as Arvo does)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.errors: list[str] = []

    def _get(self, name: str, required: bool) -> tuple[bool, Any]:
        if name not in self.body or self.body[name] is None:
            if required:
                self.errors.append(f"{name}: required")
            return False, None
        return True, self.body[name]

    def string(
        self, name: str, *, required: bool = True, pattern: re.Pattern[str] | None = None
    ) -> str | None:
        present, value = self._get(name, required)
        if not present:
            return None
        if not isinstance(value, str) or not value.strip():
            self.errors.append(f"{name}: must be a non-empty string")
            return None
        if pattern is not None and not pattern.match(value):
            self.errors.append(f"{name}: invalid format {value!r}")
            return None
        return value

    def choice(self, name: str, allowed: frozenset[str], *, required: bool = True) -> str | None:
        present, value = self._get(name, required)
        if not present:
            return None
        if value not in allowed:
            self.errors.append(f"{name}: must be one of {sorted(allowed)}, got {value!r}")
            return None
        return str(value)

    def day(self, name: str, *, required: bool = True) -> date | None:
        present, value = self._get(name, required)
        if not present:
            return None
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.errors.append(f"{name}: must be a date YYYY-MM-DD, got {value!r}")
        return None

    def uuid(self, name: str) -> str | None:
        value = self.string(name)
        if value is None:
            return None
        try:
            uuid.UUID(value)
        except ValueError:
            self.errors.append(f"{name}: must be a UUID, got {value!r}")
            return None
        return value

    def string_list(self, name: str, *, required: bool = True) -> list[str] | None:
        present, value = self._get(name, required)
        if not present:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.errors.append(f"{name}: must be a list of non-empty strings")
            return None
        return value

    def percentage(self, name: str) -> None:
        present, value = self._get(name, required=False)
        if present and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100
        ):
            self.errors.append(f"{name}: must be an integer 1-100 or null, got {value!r}")

    def obj(self, name: str, *, required: bool = True) -> dict[str, Any] | None:
        present, value = self._get(name, required)
        if not present:
            return None
        if not isinstance(value, dict):
            self.errors.append(f"{name}: must be an object")
            return None
        return value

    def order(self, first: str, a: date | None, second: str, b: date | None) -> None:
        if a is not None and b is not None and a > b:
            self.errors.append(f"{first} is after {second}")

    def raise_if_any(self) -> None:
        if self.errors:
            raise ArvoError(400, self.errors)


def _check_vastaajatunnus(body: dict[str, Any], *, partial: bool) -> None:
    """Validate a code's background data; ``partial`` (PATCH) checks only present fields."""
    c = _Checker(body)
    req = not partial
    if not partial:
        c.uuid("request_id")
    c.string("koulutustoimija_oid", required=req, pattern=_OID_RE)
    c.string("oppilaitos_oid", required=req, pattern=_OID_RE)
    c.string("toimipiste_oid", required=False, pattern=_OID_RE)
    c.string("tyonantaja", required=req, pattern=_YTUNNUS_RE)
    c.string("tyopaikka", required=req)
    c.string("tyopaikka_normalisoitu", required=req)
    c.string("tutkintotunnus", required=req)
    c.string("tutkinnon_osa", required=False)
    c.string("paikallinen_tutkinnon_osa", required=False)
    c.string_list("tutkintonimike", required=req)
    c.string_list("osaamisala", required=req)
    alku = c.day("tyopaikkajakson_alkupvm", required=req)
    loppu = c.day("tyopaikkajakson_loppupvm", required=req)
    c.order("tyopaikkajakson_alkupvm", alku, "tyopaikkajakson_loppupvm", loppu)
    c.day("rahoituskausi_pvm", required=req)
    c.percentage("osa_aikaisuus")
    sopimustyyppi = c.choice("sopimustyyppi", SOPIMUSTYYPIT, required=req)
    perusta = c.choice("oppisopimuksen_perusta", OPPISOPIMUKSEN_PERUSTAT, required=False)
    if perusta is not None and sopimustyyppi == "koulutussopimus":
        c.errors.append("oppisopimuksen_perusta: only for sopimustyyppi oppisopimus")
    v_alku = c.day("vastaamisajan_alkupvm", required=req)
    v_loppu = c.day("vastaamisajan_loppupvm", required=req)
    c.order("vastaamisajan_alkupvm", v_alku, "vastaamisajan_loppupvm", v_loppu)
    c.obj("metatiedot", required=False)
    c.raise_if_any()


# --------------------------------------------------------------------------- state


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Code:
    """One answer code (vastaajatunnus)."""

    tunnus: str
    request_id: str | None
    data: dict[str, Any]
    created_at: str = field(default_factory=_now)
    deleted: bool = False
    nippu: str | None = None
    patches: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Bundle:
    """One bundle link (nippu)."""

    tunniste: str
    request_id: str | None
    data: dict[str, Any]
    tunnukset: list[str]
    nippulinkki: str
    voimassa_alkupvm: str
    voimassa_loppupvm: str
    niputuspvm: str | None
    tila: str | None = None
    vastattu: bool = False
    created_at: str = field(default_factory=_now)
    deleted_at: str | None = None
    patches: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TpkLink:
    """One workplace-survey (TPK) link."""

    tunnus: str
    request_id: str | None
    data: dict[str, Any]
    kysely_linkki: str
    voimassa_loppupvm: str
    vastattu: bool = False
    created_at: str = field(default_factory=_now)


@dataclass
class LogEntry:
    """One API call as seen by the fake (control calls are not logged)."""

    seq: int
    method: str
    path: str
    request_id: str | None
    status: int | None = None
    fault: str | None = None
    at: str = field(default_factory=_now)


LoseAs = Literal["drop", "502", "504"]


@dataclass
class Faults:
    """Seeded random misbehaviour (see the module docstring); rates are fractions 0..1."""

    seed: int = 0
    fail: float = 0.0
    timeout: float = 0.0
    timeout_seconds: float = 30.0
    lose: float = 0.0
    lose_as: LoseAs = "drop"
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self) -> str | None:
        """The fault for the next call: one draw per call keeps a seed's sequence stable."""
        if not (self.fail or self.timeout or self.lose):
            return None
        x = self.rng.random()
        for name, rate in (("fail", self.fail), ("timeout", self.timeout), ("lose", self.lose)):
            if x < rate:
                return name
            x -= rate
        return None

    def public(self) -> dict[str, Any]:
        names = ("seed", "fail", "timeout", "timeout_seconds", "lose", "lose_as")
        return {name: getattr(self, name) for name in names}


@dataclass
class Hours:
    """Agreed hours for link requests, Helsinki time; ``start > end`` crosses midnight."""

    start: time
    end: time
    now: time | None = None

    def open_at(self, at: time) -> bool:
        if self.start <= self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end

    def check(self) -> int | None:
        """None when open; else the seconds until the window opens (for Retry-After)."""
        current = self.now or datetime.now(_HELSINKI).time()
        if self.open_at(current):
            return None
        today = date(2000, 1, 1)
        wait = datetime.combine(today, self.start) - datetime.combine(today, current)
        return max(1, int(wait.total_seconds()) % 86_400)

    def public(self) -> dict[str, str | None]:
        return {
            "start": self.start.isoformat("minutes"),
            "end": self.end.isoformat("minutes"),
            "now": self.now.isoformat("minutes") if self.now else None,
        }


@dataclass
class ArvoState:
    """All in-memory state plus the simulated misbehaviour; ``reset`` restores defaults."""

    codes: dict[str, Code] = field(default_factory=dict)
    bundles: dict[str, Bundle] = field(default_factory=dict)
    deleted_bundles: list[Bundle] = field(default_factory=list)
    tpk: dict[str, TpkLink] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    no_survey: set[str] = field(default_factory=set)
    maintenance: bool = False
    latency: float = 0.0
    fail_next: int = 0
    faults: Faults = field(default_factory=Faults)
    hours: Hours | None = None
    # ``POST /_fake/clock``: the demo and the e2e tests move "today" as the services'.
    today: date | None = None

    def reset(self) -> None:
        self.__dict__.update(ArvoState().__dict__)

    def current_date(self) -> date:
        return self.today or _today()

    def new_code(self) -> str:
        """A fresh code, unique across answer codes and TPK codes."""
        while True:
            code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
            if code not in self.codes and code not in self.tpk:
                return code

    def live_code(self, tunnus: str) -> Code:
        code = self.codes.get(tunnus)
        if code is None or code.deleted:
            raise ArvoError(404, [f"vastaajatunnus {tunnus} not found"])
        return code

    def live_bundle(self, tunniste: str) -> Bundle:
        bundle = self.bundles.get(tunniste)
        if bundle is None:
            raise ArvoError(404, [f"nippu {tunniste} not found"])
        return bundle

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready, for ``GET /_fake/state``."""
        return {
            "codes": [asdict(c) for c in self.codes.values()],
            "bundles": [asdict(b) for b in self.bundles.values()],
            "deleted_bundles": [asdict(b) for b in self.deleted_bundles],
            "tpk": [asdict(t) for t in self.tpk.values()],
            "requests": [asdict(e) for e in self.log],
            "no_survey": sorted(self.no_survey),
            "maintenance": self.maintenance,
            "latency": self.latency,
            "fail_next": self.fail_next,
            "faults": self.faults.public(),
            "hours": self.hours.public() if self.hours else None,
            "counts": self.counts(),
        }

    def counts(self) -> dict[str, int]:
        """What tests of exactly-once assert on: live and deleted things, and duplicates.

        Duplicates are what Arvo itself cannot prevent (no idempotency by ``request_id``):
        - ``codes_created_twice``: request_ids that made more than one code (ever);
        - ``duplicate_live_codes``: live codes beyond the first per request_id;
        - ``nippu_requests_linked_twice``: request_ids that made more than one bundle (ever);
        - ``bundles_with_several_links``: bundle keys with more than one live link; the
          key is koulutustoimija, tyonantaja, tutkinto and the tunniste without its random
          suffix (normalised workplace name and bundling date, arvo-api.md);
        - ``tpk_with_several_links``: TPK keys (koulutustoimija, tyonantaja, normalised
          workplace, tiedonkeruu_alkupvm) with more than one link.
        ``unbundled_codes`` are live codes in no live bundle: orphans, unless sent with
        ``ei_kuulu_lahetettavien_perusjoukkoon`` (``unbundled_codes_not_sent`` of them).
        """
        live = [c for c in self.codes.values() if not c.deleted]
        unbundled = [c for c in live if c.nippu is None]
        codes_by_request = _group(self.codes.values(), lambda c: c.request_id)
        live_by_request = _group(live, lambda c: c.request_id)
        all_bundles = [*self.bundles.values(), *self.deleted_bundles]
        return {
            "codes_live": len(live),
            "codes_deleted": len(self.codes) - len(live),
            "codes_bundled": len(live) - len(unbundled),
            "unbundled_codes": len(unbundled),
            "unbundled_codes_not_sent": sum(
                1
                for c in unbundled
                if (c.data.get("metatiedot") or {}).get("ei_kuulu_lahetettavien_perusjoukkoon")
            ),
            "bundles_live": len(self.bundles),
            "bundles_deleted": len(self.deleted_bundles),
            "tpk_links": len(self.tpk),
            "codes_created_twice": sum(1 for g in codes_by_request.values() if len(g) > 1),
            "duplicate_live_codes": sum(len(g) - 1 for g in live_by_request.values()),
            "nippu_requests_linked_twice": sum(
                1 for g in _group(all_bundles, lambda b: b.request_id).values() if len(g) > 1
            ),
            "bundles_with_several_links": sum(
                1 for g in _group(self.bundles.values(), _bundle_key).values() if len(g) > 1
            ),
            "tpk_with_several_links": sum(
                1 for g in _group(self.tpk.values(), _tpk_key).values() if len(g) > 1
            ),
        }


def _group(items: Any, key: Callable[[Any], Any]) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def _bundle_key(bundle: Bundle) -> tuple[Any, ...]:
    d = bundle.data
    stem = bundle.tunniste.rsplit("_", 1)[0]
    return (d.get("koulutustoimija_oid"), d.get("tyonantaja"), d.get("tutkintotunnus"), stem)


def _tpk_key(link: TpkLink) -> tuple[Any, ...]:
    d = link.data
    return tuple(
        d.get(k)
        for k in (
            "koulutustoimija_oid",
            "tyonantaja",
            "tyopaikka_normalisoitu",
            "tiedonkeruu_alkupvm",
        )
    )


# --------------------------------------------------------------------------- app


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


async def _object_body(request: Request) -> dict[str, Any]:
    body = _json_body(await request.body())
    if not isinstance(body, dict):
        raise ArvoError(400, ["request body must be a JSON object"])
    return body


class _DroppedResponse(Response):
    """Send the status line, then close the connection before the body (a lost answer).

    uvicorn closes the transport when the app returns with the response incomplete and
    logs one line about it; ``_QuietDrops`` keeps that line out of the test output.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


_QUIET_DROPS = _QuietDrops()


def _error(status: int, errors: list[str], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status, headers=headers)


def _authorized(request: Request, user: str, password: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    got_user, sep, got_password = decoded.partition(":")
    return bool(sep) and (
        secrets.compare_digest(got_user.encode(), user.encode())
        & secrets.compare_digest(got_password.encode(), password.encode())
    )


def create_app(
    user: str = "arvo", password: str = "arvo", public_url: str | None = None
) -> FastAPI:
    """Build a fresh fake Arvo; state is at ``app.state.arvo`` (an :class:`ArvoState`).

    ``public_url`` is the root used in links (``{root}/v/<tunniste>``); by default the
    URL the request came to, e.g. ``http://127.0.0.1:8090``.
    """
    state = ArvoState()
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
    app = FastAPI(title="Fake Arvo", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.arvo = state

    def link(request: Request, tunniste: str) -> str:
        root = (public_url or str(request.base_url)).rstrip("/")
        return f"{root}/v/{tunniste}"

    @app.exception_handler(ArvoError)
    async def _arvo_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ArvoError)
        return _error(exc.status, exc.errors)

    @app.middleware("http")
    async def _gate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Latency, maintenance, hours, injected faults and basic auth, in that order."""
        if not request.url.path.startswith("/api/"):
            return await call_next(request)
        body = _json_body(await request.body())
        request_id = body.get("request_id") if isinstance(body, dict) else None
        entry = LogEntry(
            seq=len(state.log) + 1,
            method=request.method,
            path=request.url.path.removeprefix("/api/"),
            request_id=request_id if isinstance(request_id, str) else None,
        )
        state.log.append(entry)
        if state.latency > 0:
            await asyncio.sleep(state.latency)
        closed_for = (
            state.hours.check()
            if state.hours and (request.method, request.url.path) in _LINK_REQUESTS
            else None
        )
        response: Response
        if state.maintenance:
            response = _error(503, ["Arvo is under maintenance"], {"Retry-After": "60"})
        elif closed_for is not None:
            assert state.hours is not None
            entry.fault = "hours"
            window = state.hours.public()
            response = _error(
                503,
                [f"outside agreed hours {window['start']}-{window['end']} Europe/Helsinki"],
                {"Retry-After": str(closed_for)},
            )
        elif state.fail_next > 0:
            state.fail_next -= 1
            response = _error(500, ["simulated internal error"])
        elif (fault := state.faults.draw()) == "fail":
            entry.fault = fault
            response = _error(500, ["simulated internal error"])
        elif not _authorized(request, user, password):
            response = _error(401, ["unauthorized"], {"WWW-Authenticate": 'Basic realm="arvo"'})
        else:
            entry.fault = fault
            response = await call_next(request)
            if fault == "timeout":
                # The effect is done; the answer comes after the client has given up.
                await asyncio.sleep(state.faults.timeout_seconds)
            elif fault == "lose":
                if state.faults.lose_as == "drop":
                    entry.status = None
                    return _DroppedResponse(status_code=response.status_code)
                status = int(state.faults.lose_as)
                response = _error(status, ["simulated gateway error: Arvo's answer lost"])
        entry.status = response.status_code
        return response

    api = APIRouter(prefix=API_PREFIX)

    @api.post("/vastaajatunnus")
    async def create_vastaajatunnus(request: Request) -> dict[str, str]:
        body = await _object_body(request)
        _check_vastaajatunnus(body, partial=False)
        if body["koulutustoimija_oid"] in state.no_survey:
            raise ArvoError(404, ["no survey for koulutustoimija/date"])
        code = Code(tunnus=state.new_code(), request_id=body["request_id"], data=body)
        state.codes[code.tunnus] = code
        return {"tunnus": code.tunnus}

    @api.patch("/vastaajatunnus/{tunnus}")
    async def patch_vastaajatunnus(tunnus: str, request: Request) -> dict[str, Any]:
        code = state.live_code(tunnus)
        body = await _object_body(request)
        if not body:
            raise ArvoError(400, ["nothing to update"])
        _check_vastaajatunnus(body, partial=True)
        code.data.update(body)
        code.patches.append(body)
        return {"tunnus": tunnus}

    @api.delete("/vastaajatunnus/{tunnus}")
    async def delete_vastaajatunnus(tunnus: str) -> dict[str, Any]:
        state.live_code(tunnus).deleted = True
        return {"tunnus": tunnus, "poistettu": True}

    @api.post("/nippu")
    async def create_nippu(request: Request) -> dict[str, str]:
        body = await _object_body(request)
        c = _Checker(body)
        c.uuid("request_id")
        tunniste = c.string("tunniste", pattern=_TUNNISTE_RE)
        oid = c.string("koulutustoimija_oid", pattern=_OID_RE)
        tutkinto = c.string("tutkintotunnus")
        tyonantaja = c.string("tyonantaja", pattern=_YTUNNUS_RE)
        c.string("tyopaikka")
        alku = c.day("voimassa_alkupvm")
        entries = body.get("tunnukset")
        tunnukset: list[str] = []
        loppupvmt: list[date] = []
        if not isinstance(entries, list) or not entries:
            c.errors.append("tunnukset: must be a non-empty list")
        else:
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict) or not isinstance(entry.get("tunnus"), str):
                    c.errors.append(f"tunnukset[{i}]: must be {{tunnus, tyopaikkajakson_loppupvm}}")
                    continue
                sub = _Checker(entry)
                loppu = sub.day("tyopaikkajakson_loppupvm")
                c.errors.extend(f"tunnukset[{i}].{e}" for e in sub.errors)
                if loppu is not None:
                    loppupvmt.append(loppu)
                tunnukset.append(entry["tunnus"])
        if tunniste is not None and tunniste in state.bundles:
            c.errors.append(f"tunniste: {tunniste} already used")
        if len(set(tunnukset)) != len(tunnukset):
            c.errors.append("tunnukset: the same tunnus twice")
        for t in dict.fromkeys(tunnukset):
            code = state.codes.get(t)
            if code is None or code.deleted:
                c.errors.append(f"tunnukset: unknown tunnus {t}")
                continue
            if code.nippu is not None:
                c.errors.append(f"tunnukset: {t} already in nippu {code.nippu}")
            for key, value in (
                ("koulutustoimija_oid", oid),
                ("tutkintotunnus", tutkinto),
                ("tyonantaja", tyonantaja),
            ):
                if value is not None and code.data.get(key) != value:
                    c.errors.append(f"tunnukset: {t} has a different {key}")
        c.raise_if_any()
        assert tunniste is not None and alku is not None
        niputuspvm = niputuspvm_for(max(loppupvmt)) if loppupvmt else None
        bundle = Bundle(
            tunniste=tunniste,
            request_id=body["request_id"],
            data=body,
            tunnukset=tunnukset,
            nippulinkki=link(request, tunniste),
            voimassa_alkupvm=alku.isoformat(),
            voimassa_loppupvm=bundle_validity(alku, niputuspvm).isoformat(),
            niputuspvm=niputuspvm.isoformat() if niputuspvm else None,
        )
        state.bundles[tunniste] = bundle
        for t in tunnukset:
            state.codes[t].nippu = tunniste
        return {"nippulinkki": bundle.nippulinkki, "voimassa_loppupvm": bundle.voimassa_loppupvm}

    @api.patch("/nippu/{tunniste}")
    async def patch_nippu(tunniste: str, request: Request) -> dict[str, Any]:
        bundle = state.live_bundle(tunniste)
        body = await _object_body(request)
        c = _Checker(body)
        tila = c.choice("tila", NIPPU_STATUSES)
        loppu = c.day("voimassa_loppupvm", required=False)
        c.raise_if_any()
        if loppu is None and tila == "lahetetty" and bundle.tila != "lahetetty":
            # First send without an explicit date: Arvo applies the W2 rule itself.
            nip = date.fromisoformat(bundle.niputuspvm) if bundle.niputuspvm else None
            loppu = bundle_validity(state.current_date(), nip)
        bundle.tila = tila
        if loppu is not None:
            bundle.voimassa_loppupvm = loppu.isoformat()
        bundle.patches.append(body)
        return {
            "tunniste": tunniste,
            "tila": bundle.tila,
            "voimassa_loppupvm": bundle.voimassa_loppupvm,
        }

    @api.delete("/nippu/{tunniste}")
    async def delete_nippu(tunniste: str) -> dict[str, Any]:
        bundle = state.live_bundle(tunniste)
        # Deleting undoes the bundle: its codes and its tunniste can be used again.
        for t in bundle.tunnukset:
            if t in state.codes and state.codes[t].nippu == tunniste:
                state.codes[t].nippu = None
        bundle.deleted_at = _now()
        state.deleted_bundles.append(state.bundles.pop(tunniste))
        return {"tunniste": tunniste, "poistettu": True}

    @api.get("/status/{tunniste}")
    async def status(tunniste: str) -> dict[str, Any]:
        bundle = state.live_bundle(tunniste)
        return {"vastattu": bundle.vastattu, "voimassa_loppupvm": bundle.voimassa_loppupvm}

    @api.post("/tyopaikkakysely-tunnus")
    async def create_tpk(request: Request) -> dict[str, str]:
        body = await _object_body(request)
        c = _Checker(body)
        c.uuid("request_id")
        c.string("koulutustoimija_oid", pattern=_OID_RE)
        c.string("tyonantaja", pattern=_YTUNNUS_RE)
        c.string("tyopaikka")
        c.string("tyopaikka_normalisoitu")
        t_alku = c.day("tiedonkeruu_alkupvm")
        t_loppu = c.day("tiedonkeruu_loppupvm")
        c.order("tiedonkeruu_alkupvm", t_alku, "tiedonkeruu_loppupvm", t_loppu)
        v_alku = c.day("vastaamisajan_alkupvm")
        v_loppu = c.day("vastaamisajan_loppupvm")
        c.order("vastaamisajan_alkupvm", v_alku, "vastaamisajan_loppupvm", v_loppu)
        c.raise_if_any()
        assert v_loppu is not None
        tunnus = state.new_code()
        tpk = TpkLink(
            tunnus=tunnus,
            request_id=body["request_id"],
            data=body,
            kysely_linkki=link(request, tunnus),
            voimassa_loppupvm=v_loppu.isoformat(),
        )
        state.tpk[tunnus] = tpk
        return {
            "tunnus": tunnus,
            "kysely_linkki": tpk.kysely_linkki,
            "voimassa_loppupvm": tpk.voimassa_loppupvm,
        }

    app.include_router(api)
    app.include_router(_control_router(state))
    return app


def _control_router(state: ArvoState) -> APIRouter:
    """Test control API: no auth, never affected by maintenance/latency/failures."""
    router = APIRouter(prefix="/_fake")

    async def body_of(request: Request) -> dict[str, Any]:
        body = _json_body(await request.body())
        if not isinstance(body, dict):
            raise ArvoError(400, ["request body must be a JSON object"])
        return body

    @router.post("/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"ok": True}

    @router.post("/maintenance")
    async def maintenance(request: Request) -> dict[str, bool]:
        body = await body_of(request)
        if not isinstance(body.get("on"), bool):
            raise ArvoError(400, ["on: must be a boolean"])
        state.maintenance = body["on"]
        return {"maintenance": state.maintenance}

    @router.post("/latency")
    async def latency(request: Request) -> dict[str, float]:
        seconds = (await body_of(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ArvoError(400, ["seconds: must be a number >= 0"])
        state.latency = float(seconds)
        return {"latency": state.latency}

    @router.post("/fail-next")
    async def fail_next(request: Request) -> dict[str, int]:
        count = (await body_of(request)).get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ArvoError(400, ["count: must be an integer >= 0"])
        state.fail_next = count
        return {"fail_next": state.fail_next}

    @router.post("/faults")
    async def faults(request: Request) -> dict[str, Any]:
        """Replace the random fault configuration (the module docstring has the fields)."""
        body = await body_of(request)
        errors: list[str] = []

        def number(name: str, default: float, upper: float | None) -> float:
            value = body.get(name, default)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value < 0
                or (upper is not None and value > upper)
            ):
                errors.append(f"{name}: must be a number 0..{upper if upper else 'inf'}")
                return default
            return float(value)

        seed = body.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            errors.append("seed: must be an integer")
            seed = 0
        rates = {name: number(name, 0.0, 1.0) for name in ("fail", "timeout", "lose")}
        if sum(rates.values()) > 1:
            errors.append("fail + timeout + lose: must be at most 1")
        hold = number("timeout_seconds", 30.0, None)
        lose_as = body.get("lose_as", "drop")
        if lose_as not in ("drop", "502", "504"):
            errors.append("lose_as: must be one of drop, 502, 504")
        if errors:
            raise ArvoError(400, errors)
        state.faults = Faults(seed=seed, timeout_seconds=hold, lose_as=lose_as, **rates)
        return state.faults.public()

    @router.post("/hours")
    async def hours(request: Request) -> dict[str, Any]:
        """Agreed hours for link requests; ``{"start": null}`` accepts them at any time."""
        body = await body_of(request)
        if body.get("start") is None:
            state.hours = None
            return {"hours": None}
        parsed: dict[str, time | None] = {}
        errors: list[str] = []
        for name in ("start", "end", "now"):
            value = body.get(name)
            if value is None and name == "now":
                parsed[name] = None
                continue
            try:
                if not isinstance(value, str) or not re.fullmatch(r"\d{2}:\d{2}", value):
                    raise ValueError
                parsed[name] = time.fromisoformat(value)
            except ValueError:
                errors.append(f"{name}: must be HH:MM")
        if errors:
            raise ArvoError(400, errors)
        start, end = parsed["start"], parsed["end"]
        assert start is not None and end is not None
        if start == end:
            raise ArvoError(400, ["start and end: must differ"])
        state.hours = Hours(start, end, parsed["now"])
        return {"hours": state.hours.public()}

    @router.post("/no-survey")
    async def no_survey(request: Request) -> dict[str, list[str]]:
        """Mark a koulutustoimija as having no survey (``"on": false`` undoes it)."""
        body = await body_of(request)
        oid = body.get("koulutustoimija_oid")
        if not isinstance(oid, str) or not oid:
            raise ArvoError(400, ["koulutustoimija_oid: required"])
        if body.get("on", True):
            state.no_survey.add(oid)
        else:
            state.no_survey.discard(oid)
        return {"no_survey": sorted(state.no_survey)}

    @router.post("/clock")
    async def clock(request: Request) -> dict[str, str | None]:
        """Move the fake's "today" (``{"today": "YYYY-MM-DD"}``; ``null`` lets it run)."""
        body = await body_of(request)
        raw = body.get("today")
        try:
            state.today = None if raw is None else date.fromisoformat(str(raw))
        except ValueError:
            raise ArvoError(400, ["today: expected YYYY-MM-DD or null"]) from None
        return {"today": state.current_date().isoformat()}

    @router.post("/answer/{tunniste}")
    async def answer(tunniste: str) -> dict[str, Any]:
        """Simulate a respondent: a bundle (by tunniste) or a TPK link (by tunnus)."""
        target: Bundle | TpkLink | None = state.bundles.get(tunniste) or state.tpk.get(tunniste)
        if target is None:
            raise ArvoError(404, [f"{tunniste} not found"])
        target.vastattu = True
        return {"tunniste": tunniste, "vastattu": True}

    @router.get("/state")
    async def get_state() -> dict[str, Any]:
        return state.snapshot()

    return router
