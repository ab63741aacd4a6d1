"""The inbox: a consumer's record of the messages it has already applied.

The handler claims the message id in the same transaction as its effect, so a redelivered
message (after a crash between commit and ack, or a relay that published twice) finds its
id already there and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import (
    ARRAY,
    Column,
    DateTime,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("message_id", Uuid, primary_key=True),
        Column("type", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def claim(session: AsyncSession, inbox: Table, message_id: uuid.UUID, type_: str) -> bool:
    """True when this message is new; False when it was applied before."""
    result = await session.execute(
        insert(inbox)
        .values(message_id=message_id, type=type_)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(inbox.c.message_id)
    )
    return result.first() is not None


async def claim_many(
    session: AsyncSession, inbox: Table, messages: Sequence[tuple[uuid.UUID, str]]
) -> set[uuid.UUID]:
    """Claim (message id, type) pairs in one statement; the ids that are new. An id given
    twice is claimed once."""
    if not messages:
        return set()
    ids, types = zip(*messages, strict=True)
    given = select(
        func.unnest(bindparam("ids", type_=ARRAY(Uuid))),
        func.unnest(bindparam("types", type_=ARRAY(Text))),
    )
    result = await session.execute(
        insert(inbox)
        .from_select(["message_id", "type"], given)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(inbox.c.message_id),
        {"ids": list(ids), "types": list(types)},
    )
    return set(result.scalars())


async def release(session: AsyncSession, inbox: Table, message_id: uuid.UUID) -> None:
    """Undo a claim whose message was not applied after all, so its redelivery applies it."""
    await session.execute(delete(inbox).where(inbox.c.message_id == message_id))
