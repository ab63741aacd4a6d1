"""HTTP routes of the arvo_adapter (api.md)."""
