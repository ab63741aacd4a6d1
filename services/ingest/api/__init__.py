"""HTTP routes of the ingest (api.md, "ingest")."""
