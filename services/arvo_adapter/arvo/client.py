"""The HTTP client for Arvo: one method per endpoint of arvo-api.md.

Each call is bounded per attempt (``ARVO_TIMEOUT_SECONDS``) and in total (attempts and
seconds); failures where Arvo surely or possibly did nothing are retried with exponential
backoff and full jitter (tenacity), behind a circuit breaker.

Why creating calls are not retried after an unknown outcome: Arvo promises no idempotency
by ``request_id``. A POST whose answer was lost may have made a code or link; sending it
again could make a second one, which only the caller can find and delete (it knows the
bundle's ``tunniste`` and which codes it recorded). So ``create_*`` raise
``ArvoUnknownOutcome`` at once and leave the reconciliation to the adapter; PATCH, DELETE
and GET are idempotent and are retried. Answers 500/503 (and connection failures) count as
"not done" and are retried for every call; 502/504 come from a gateway that may have lost
Arvo's answer, so they count as unknown outcomes.
"""

from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from services.arvo_adapter.arvo import metrics
from services.arvo_adapter.arvo.breaker import BreakerState, CircuitBreaker
from services.arvo_adapter.arvo.errors import (
    ArvoBadRequest,
    ArvoCircuitOpen,
    ArvoError,
    ArvoNoSurvey,
    ArvoNotFound,
    ArvoRejected,
    ArvoUnavailable,
    ArvoUnknownOutcome,
)
from services.arvo_adapter.arvo.models import (
    NippuCreated,
    NippuPatch,
    NippuRequest,
    NippuStatus,
    TyopaikkakyselyCreated,
    TyopaikkakyselyRequest,
    VastaajatunnusCreated,
    VastaajatunnusPatch,
    VastaajatunnusRequest,
)
from services.arvo_adapter.settings import ArvoAdapterSettings

log = logging.getLogger(__name__)

API_PATH = "tyoelamapalaute/v1/"
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class Endpoint:
    """``name`` labels metrics and errors; ``creates``: not idempotent (see module doc)."""

    name: str
    method: str
    creates: bool = False


CREATE_VASTAAJATUNNUS = Endpoint("create_vastaajatunnus", "POST", creates=True)
PATCH_VASTAAJATUNNUS = Endpoint("patch_vastaajatunnus", "PATCH")
DELETE_VASTAAJATUNNUS = Endpoint("delete_vastaajatunnus", "DELETE")
CREATE_NIPPU = Endpoint("create_nippu", "POST", creates=True)
PATCH_NIPPU = Endpoint("patch_nippu", "PATCH")
DELETE_NIPPU = Endpoint("delete_nippu", "DELETE")
STATUS = Endpoint("status", "GET")
CREATE_TYOPAIKKAKYSELY = Endpoint("create_tyopaikkakysely_tunnus", "POST", creates=True)

# Sent, no answer: the request may have been processed.
_UNKNOWN_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# Never reached Arvo: safe to send again.
_NOT_SENT_TRANSPORT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class ArvoClient:
    """Async client; use ``async with ArvoClient(settings) as arvo:`` or call ``aclose``."""

    def __init__(
        self,
        settings: ArvoAdapterSettings,
        *,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self.breaker = breaker or CircuitBreaker(
            "arvo",
            failure_threshold=settings.arvo_breaker_failure_threshold,
            cooldown_seconds=settings.arvo_breaker_cooldown_seconds,
            on_change=_publish_state,
        )
        _publish_state(self.breaker.state)
        base = settings.arvo_url.rstrip("/") + "/" + API_PATH
        self._http = httpx.AsyncClient(
            base_url=base,
            auth=httpx.BasicAuth(settings.arvo_user, settings.arvo_password.get_secret_value()),
            timeout=httpx.Timeout(
                settings.arvo_timeout_seconds, connect=settings.arvo_connect_timeout_seconds
            ),
            transport=transport,
            headers={"Accept": "application/json"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ endpoints

    async def create_vastaajatunnus(self, request: VastaajatunnusRequest) -> VastaajatunnusCreated:
        """A period-level answer code; 404 means no survey (``ArvoNoSurvey``)."""
        created: VastaajatunnusCreated = await self._call(
            CREATE_VASTAAJATUNNUS,
            "vastaajatunnus",
            request.body(),
            model=VastaajatunnusCreated,
            request_id=str(request.request_id),
        )
        return created

    async def patch_vastaajatunnus(self, tunnus: str, patch: VastaajatunnusPatch) -> None:
        await self._call(PATCH_VASTAAJATUNNUS, f"vastaajatunnus/{_segment(tunnus)}", patch.body())

    async def delete_vastaajatunnus(self, tunnus: str) -> bool:
        """Remove a code; False when Arvo has no such code (already deleted: goal reached)."""
        return await self._delete(DELETE_VASTAAJATUNNUS, f"vastaajatunnus/{_segment(tunnus)}")

    async def create_nippu(self, request: NippuRequest) -> NippuCreated:
        """The bundle link; the same ``tunniste`` twice is a 400 (``ArvoBadRequest``)."""
        created: NippuCreated = await self._call(
            CREATE_NIPPU,
            "nippu",
            request.body(),
            model=NippuCreated,
            request_id=str(request.request_id),
        )
        return created

    async def patch_nippu(self, tunniste: str, patch: NippuPatch) -> None:
        await self._call(PATCH_NIPPU, f"nippu/{_segment(tunniste)}", patch.body())

    async def delete_nippu(self, tunniste: str) -> bool:
        """Remove a bundle link; False when Arvo has no such bundle."""
        return await self._delete(DELETE_NIPPU, f"nippu/{_segment(tunniste)}")

    async def status(self, tunniste: str) -> NippuStatus:
        """Answered yet? A caller waits for this, so it has its own short total budget."""
        budget = self._settings.arvo_status_timeout_seconds
        status: NippuStatus = await self._call(
            STATUS,
            f"status/{_segment(tunniste)}",
            model=NippuStatus,
            attempt_seconds=budget,
            total_seconds=budget,
        )
        return status

    async def create_tyopaikkakysely_tunnus(
        self, request: TyopaikkakyselyRequest
    ) -> TyopaikkakyselyCreated:
        created: TyopaikkakyselyCreated = await self._call(
            CREATE_TYOPAIKKAKYSELY,
            "tyopaikkakysely-tunnus",
            request.body(),
            model=TyopaikkakyselyCreated,
            request_id=str(request.request_id),
        )
        return created

    # ------------------------------------------------------------------ plumbing

    async def _delete(self, endpoint: Endpoint, path: str) -> bool:
        try:
            await self._call(endpoint, path)
        except ArvoNotFound:
            return False
        return True

    async def _call(
        self,
        endpoint: Endpoint,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        model: type[BaseModel] | None = None,
        request_id: str | None = None,
        attempt_seconds: float | None = None,
        total_seconds: float | None = None,
    ) -> Any:
        """Send with retries; return the 2xx answer (parsed as ``model``) or raise."""
        settings = self._settings
        total = total_seconds if total_seconds is not None else settings.arvo_max_total_seconds

        def stop(state: RetryCallState) -> bool:
            elapsed = state.seconds_since_start or 0.0
            if state.attempt_number >= settings.arvo_max_attempts or elapsed >= total:
                return True
            error = state.outcome.exception() if state.outcome else None
            hint = error.retry_after if isinstance(error, ArvoUnavailable) else None
            return hint is not None and elapsed + hint > total

        backoff = wait_random_exponential(
            multiplier=settings.arvo_backoff_initial_seconds,
            max=settings.arvo_backoff_max_seconds,
        )

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            hint = error.retry_after if isinstance(error, ArvoUnavailable) else None
            return max(backoff(state), hint or 0.0)

        def retryable(error: BaseException) -> bool:
            if isinstance(error, ArvoCircuitOpen):
                return False
            if isinstance(error, ArvoUnknownOutcome):
                return not endpoint.creates
            return isinstance(error, ArvoUnavailable)

        def before_sleep(state: RetryCallState) -> None:
            metrics.RETRIES.labels(endpoint.name).inc()
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "arvo call failed, retrying",
                extra={
                    "endpoint": endpoint.name,
                    "attempt": state.attempt_number,
                    "error": type(error).__name__,
                    "status": getattr(error, "status", None),
                    "request_id": request_id,
                },
            )

        outcome = "ok"
        try:
            async for attempt in AsyncRetrying(
                stop=stop,
                wait=wait,
                retry=retry_if_exception(retryable),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    answer = await self._attempt(endpoint, path, body, request_id, attempt_seconds)
                    return answer if model is None else _parse(endpoint, model, answer, request_id)
        except ArvoError as error:
            outcome = _outcome(error)
            log.warning(
                "arvo call failed",
                extra={
                    "endpoint": endpoint.name,
                    "error": type(error).__name__,
                    "status": error.status,
                    "request_id": request_id,
                },
            )
            raise
        finally:
            metrics.CALLS.labels(endpoint.name, outcome).inc()
        raise AssertionError("unreachable: tenacity either returns or reraises")

    async def _attempt(
        self,
        endpoint: Endpoint,
        path: str,
        body: dict[str, Any] | None,
        request_id: str | None,
        attempt_seconds: float | None,
    ) -> Any:
        """One HTTP exchange, classified; the breaker hears every verdict."""
        if not self.breaker.allow():
            raise ArvoCircuitOpen(
                endpoint.name,
                "circuit open, not called",
                retry_after=self.breaker.seconds_until_retry() or None,
            )
        verdict_given = False
        started = time.perf_counter()
        try:
            try:
                response = await self._http.request(
                    endpoint.method,
                    path,
                    json=body,
                    timeout=httpx.USE_CLIENT_DEFAULT
                    if attempt_seconds is None
                    else attempt_seconds,
                )
            except _NOT_SENT_TRANSPORT as exc:
                self.breaker.record_failure()
                verdict_given = True
                raise ArvoUnavailable(endpoint.name, _describe(exc)) from None
            except _UNKNOWN_TRANSPORT as exc:
                self.breaker.record_failure()
                verdict_given = True
                raise ArvoUnknownOutcome(
                    endpoint.name, _describe(exc), request_id=request_id
                ) from None
            finally:
                metrics.ATTEMPT_LATENCY.labels(endpoint.name).observe(time.perf_counter() - started)
            verdict_given = True
            if response.status_code >= 500:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
            return _classify(endpoint, response, request_id)
        finally:
            if not verdict_given:
                self.breaker.release()


def _classify(endpoint: Endpoint, response: httpx.Response, request_id: str | None) -> Any:
    """A 2xx's JSON, or the typed error of its status (errors module)."""
    status = response.status_code
    errors = _errors_of(response)
    message = f"HTTP {status}" + (f": {'; '.join(errors)}" if errors else "")
    if 200 <= status < 300:
        try:
            return response.json()
        except ValueError:
            raise ArvoUnknownOutcome(
                endpoint.name,
                f"HTTP {status} with a body that is not JSON",
                status=status,
                request_id=request_id,
            ) from None
    if status in (502, 504):
        raise ArvoUnknownOutcome(
            endpoint.name, message, status=status, errors=errors, request_id=request_id
        )
    if status >= 500:
        raise ArvoUnavailable(
            endpoint.name,
            message,
            status=status,
            errors=errors,
            retry_after=_retry_after(response.headers.get("retry-after")),
        )
    if status == 400:
        raise ArvoBadRequest(endpoint.name, message, status=status, errors=errors)
    if status == 404:
        kind = ArvoNoSurvey if endpoint is CREATE_VASTAAJATUNNUS else ArvoNotFound
        raise kind(endpoint.name, message, status=status, errors=errors)
    raise ArvoRejected(endpoint.name, message, status=status, errors=errors)


def _parse(endpoint: Endpoint, model: type[R], answer: Any, request_id: str | None) -> R:
    """A 2xx whose body is not the contract's: it happened, but we cannot use it."""
    try:
        return model.model_validate(answer)
    except ValidationError as exc:
        raise ArvoUnknownOutcome(
            endpoint.name,
            f"unexpected answer ({exc.error_count()} problems with {model.__name__})",
            status=200,
            request_id=request_id,
        ) from None


def _errors_of(response: httpx.Response) -> list[str]:
    """Arvo's ``{"errors": [...]}``, or a short excerpt of whatever else it answered."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return [text[:200]] if text else []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [str(e) for e in body["errors"]]
    return [str(body)[:200]]


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: httpx.HTTPError) -> str:
    """The transport error's class and text; httpx puts no credentials in either."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _segment(value: str) -> str:
    return quote(value, safe="")


def _outcome(error: ArvoError) -> str:
    for kind, label in (
        (ArvoCircuitOpen, "circuit_open"),
        (ArvoUnknownOutcome, "unknown_outcome"),
        (ArvoUnavailable, "unavailable"),
        (ArvoNoSurvey, "no_survey"),
        (ArvoNotFound, "not_found"),
        (ArvoBadRequest, "bad_request"),
    ):
        if isinstance(error, kind):
            return label
    return "rejected"


def _publish_state(state: BreakerState) -> None:
    metrics.CIRCUIT_STATE.set(int(state))
    if state is BreakerState.OPEN:
        metrics.CIRCUIT_OPENED.inc()
