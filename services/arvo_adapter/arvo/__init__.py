"""The arvo_adapter's outbound port: a typed HTTP client for Arvo (arvo-api.md).

Only this package speaks Arvo's HTTP; the adapter's consumers and jobs call
``ArvoClient`` methods with the models of ``models`` and handle the errors of ``errors``.
"""

from services.arvo_adapter.arvo.breaker import BreakerState, CircuitBreaker
from services.arvo_adapter.arvo.client import ArvoClient
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

__all__ = [
    "ArvoBadRequest",
    "ArvoCircuitOpen",
    "ArvoClient",
    "ArvoError",
    "ArvoNoSurvey",
    "ArvoNotFound",
    "ArvoRejected",
    "ArvoUnavailable",
    "ArvoUnknownOutcome",
    "BreakerState",
    "CircuitBreaker",
]
