"""Prometheus metrics of the calls to Arvo (issue 13: calls, latency, retries, circuit).

The circuit gauge uses ``livemax`` so, with several worker processes (multiprocess mode),
the scrape shows the worst breaker among live processes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CALLS = Counter(
    "arvo_calls_total",
    "Calls to Arvo by endpoint and final outcome (after retries)",
    ["endpoint", "outcome"],
)
ATTEMPT_LATENCY = Histogram(
    "arvo_request_duration_seconds",
    "Latency of each HTTP attempt to Arvo",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES = Counter("arvo_retries_total", "Attempts to Arvo repeated after a failure", ["endpoint"])
CIRCUIT_STATE = Gauge(
    "arvo_circuit_state",
    "Arvo circuit breaker: 0 closed, 1 half-open, 2 open",
    multiprocess_mode="livemax",
)
CIRCUIT_OPENED = Counter("arvo_circuit_opened_total", "Times the Arvo circuit breaker opened")
DUPLICATES_RECONCILED = Counter(
    "arvo_duplicates_reconciled_total",
    "Codes or links Arvo made twice (or made for a lost answer) found and deleted",
    ["kind"],
)
IN_DOUBT = Counter(
    "arvo_calls_in_doubt_total",
    "Creating calls whose effect is unknown (lost answer, crash before the commit)",
    ["endpoint"],
)
BACKLOG = Gauge(
    "arvo_backlog",
    "Pieces of work waiting for Arvo, by kind",
    ["kind"],
    multiprocess_mode="livemax",
)
OUTCOMES = Counter(
    "arvo_bundle_outcomes_total", "Bundles finished, by outcome", ["kind", "outcome"]
)
POSSIBLE_ORPHANS = Gauge(
    "arvo_possible_orphans",
    "Creating calls still in doubt that the contract cannot reconcile (codes, TPK links)",
    ["endpoint"],
    multiprocess_mode="livemax",
)
