"""What can go wrong calling Arvo, sorted by what the adapter must do about it.

- ``ArvoRejected`` (4xx): Arvo answered and said no; retrying the same call cannot help.
  ``ArvoBadRequest`` (400) and ``ArvoNotFound`` (404; ``ArvoNoSurvey`` when creating a
  code) are the answers the contract names; any other 4xx is unexpected (dead-letter it).
- ``ArvoUnavailable``: Arvo did not do it (no connection, 500/503, refused outside agreed
  hours, or the circuit is open); try again later. ``retry_after`` is Arvo's hint.
- ``ArvoUnknownOutcome``: the request was sent but no usable answer came back (timeout,
  connection lost, 502/504 from a gateway). Arvo may have done it: the adapter must
  reconcile before trying again, since Arvo has no idempotency by ``request_id``.

Messages carry the endpoint, status and Arvo's error list, never credentials.
"""

from __future__ import annotations


class ArvoError(Exception):
    """Base: ``endpoint`` is the operation name (e.g. ``create_nippu``)."""

    def __init__(
        self,
        endpoint: str,
        message: str,
        *,
        status: int | None = None,
        errors: list[str] | None = None,
    ) -> None:
        super().__init__(f"Arvo {endpoint}: {message}")
        self.endpoint = endpoint
        self.status = status
        self.errors = errors or []


class ArvoRejected(ArvoError):
    """A 4xx answer; ``errors`` is Arvo's ``{"errors": [...]}`` list (for the DLQ)."""


class ArvoBadRequest(ArvoRejected):
    """400: Arvo found the data invalid (or, for a bundle, a code already bundled)."""


class ArvoNotFound(ArvoRejected):
    """404: the code or bundle does not exist."""


class ArvoNoSurvey(ArvoNotFound):
    """404 on creating a code: no survey for the provider/date (reason ``arvo_ei_kyselya``)."""


class ArvoUnavailable(ArvoError):
    """Arvo did not do it; ``retry_after`` (seconds) when Arvo said when to come back."""

    def __init__(
        self,
        endpoint: str,
        message: str,
        *,
        status: int | None = None,
        errors: list[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(endpoint, message, status=status, errors=errors)
        self.retry_after = retry_after


class ArvoCircuitOpen(ArvoUnavailable):
    """Not called at all: the circuit breaker is open after repeated failures."""


class ArvoUnknownOutcome(ArvoError):
    """Sent, but no usable answer: Arvo may or may not have done it (``request_id`` sent)."""

    def __init__(
        self,
        endpoint: str,
        message: str,
        *,
        status: int | None = None,
        errors: list[str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(endpoint, message, status=status, errors=errors)
        self.request_id = request_id
