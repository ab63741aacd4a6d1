"""Tables of schema `sender`: for now the inbox and outbox."""

from shared.db import service_metadata
from shared.messaging.inbox import inbox_table
from shared.messaging.outbox import outbox_table

SCHEMA = "sender"
metadata = service_metadata(SCHEMA)

inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
