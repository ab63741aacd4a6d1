"""The ingest's tables: every accepted document version, append-only, and the latest one."""
