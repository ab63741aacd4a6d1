"""What "exactly one link per bundle, one live code per jakso, no orphans" means, checked
against the fake Arvo's state and the adapter's own tables (issue 13).

Orphans: a live code in no bundle and not marked `ei_kuulu_lahetettavien_perusjoukkoon`.
Every code the adapter asks for carries one of its jaksot' request_ids, so the codes of
the bundles under test are those with their request_ids; codes and links of other tests
(which may still be at work when a test failed) are left out.
The contract cannot find a code whose answer was lost (there is no search by request_id),
so such a code may be left; the adapter keeps every call whose effect it does not know in
its intent log. The check: every orphan carries the request_id of one of our jaksot, and
no request_id has more orphans than calls in doubt. Anything else is a failure.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from services.arvo_adapter.store.tables import calls, jakso_tunnukset, niput
from shared.db import Database
from shared.events import NippuReady
from tests.fakes.arvo import ArvoState


@dataclass
class Checked:
    bundles: int
    jaksot: int
    orphans: int
    links_reconciled: int
    calls_in_doubt: int
    fake_requests: int

    def __str__(self) -> str:
        return (
            f"{self.bundles} bundles, {self.jaksot} jaksot: {self.fake_requests} requests to "
            f"Arvo, {self.calls_in_doubt} creating calls in doubt, {self.links_reconciled} "
            f"links reconciled (deleted), {self.orphans} orphan codes (all accounted for)"
        )


async def check_exactly_once(db: Database, state: ArvoState, sent: list[NippuReady]) -> Checked:
    ids = [n.nippu_id for n in sent]
    async with db.transaction() as session:
        ours = {
            r.nippu_id: r
            for r in await session.execute(select(niput).where(niput.c.nippu_id.in_(ids)))
        }
        jaksot = list(
            await session.execute(
                select(jakso_tunnukset).where(jakso_tunnukset.c.nippu_id.in_(ids))
            )
        )
        doubt_rows = await session.execute(
            select(calls.c.endpoint, calls.c.request_id, calls.c.state, func.count())
            .where(calls.c.subject.in_(ids))
            .group_by(calls.c.endpoint, calls.c.request_id, calls.c.state)
        )
        call_counts: dict[tuple[str, uuid.UUID, str], int] = {
            (e, r, s): int(c) for e, r, s, c in doubt_rows
        }

    request_ids = {str(j.request_id) for j in jaksot}

    # Every bundle done and linked, with exactly one live link under its own tunniste.
    assert len(ours) == len(sent), "bundles missing from the adapter's table"
    not_linked = [str(i) for i, r in ours.items() if (r.state, r.outcome) != ("done", "linked")]
    assert not not_linked, f"not linked: {not_linked[:5]} ({len(not_linked)})"
    # Only this test's data: the fake may also hold what another test left behind.
    tunnisteet = {n.tunniste for n in sent}
    mine = ArvoState(
        codes={t: c for t, c in state.codes.items() if c.request_id in request_ids},
        bundles={t: b for t, b in state.bundles.items() if t in tunnisteet},
        deleted_bundles=[b for b in state.deleted_bundles if b.tunniste in tunnisteet],
    )
    counts = mine.counts()
    assert counts["bundles_with_several_links"] == 0
    assert counts["nippu_requests_linked_twice"] == 0
    for nippu in sent:
        bundle = state.bundles.get(nippu.tunniste)
        assert bundle is not None, f"no live link for {nippu.tunniste}"
        assert ours[nippu.nippu_id].linkki == bundle.nippulinkki

    # Every jakso: one code, ours, live, in its bundle's link.
    by_nippu: dict[uuid.UUID, set[str]] = {}
    for jakso in jaksot:
        assert jakso.state == "created" and jakso.tunnus, f"jakso {jakso.jakso_id}: {jakso.state}"
        code = state.codes.get(jakso.tunnus)
        assert code is not None and not code.deleted, f"code of jakso {jakso.jakso_id} not live"
        assert code.request_id == str(jakso.request_id)
        by_nippu.setdefault(jakso.nippu_id, set()).add(jakso.tunnus)
    assert len(jaksot) == sum(len(n.jaksot) for n in sent)
    for nippu in sent:
        assert set(state.bundles[nippu.tunniste].tunnukset) == by_nippu[nippu.nippu_id]

    # Links deleted by reconciliation: never more than our calls in doubt.
    deleted = mine.deleted_bundles
    reconciled_calls = sum(
        c for (e, _, s), c in call_counts.items() if e == "create_nippu" and s == "reconciled"
    )
    assert len(deleted) <= reconciled_calls

    # Orphan codes: only from calls in doubt, never more than those calls.
    doubt = Counter[str]()
    for (endpoint, request_id, call_state), count in call_counts.items():
        if endpoint == "create_vastaajatunnus" and call_state in ("intended", "unknown"):
            doubt[str(request_id)] += count
    orphans = [
        c
        for c in mine.codes.values()
        if not c.deleted
        and c.nippu is None
        and not (c.data.get("metatiedot") or {}).get("ei_kuulu_lahetettavien_perusjoukkoon")
    ]
    orphans_by_request = Counter(c.request_id for c in orphans)
    unexplained: dict[Any, int] = {
        r: n for r, n in orphans_by_request.items() if n > doubt[r or ""]
    }
    assert not unexplained, f"orphan codes not accounted for by calls in doubt: {unexplained}"
    return Checked(
        bundles=len(sent),
        jaksot=len(jaksot),
        orphans=len(orphans),
        links_reconciled=len(deleted),
        calls_in_doubt=sum(doubt.values())
        + sum(
            c
            for (e, _, s), c in call_counts.items()
            if e == "create_nippu" and s in ("intended", "unknown", "reconciled")
        ),
        fake_requests=len(state.log),
    )
