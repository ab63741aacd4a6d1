"""The `ehoks.changes` queue: the same use cases as the HTTP API, fed by upstream messages."""
