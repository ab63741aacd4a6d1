"""HTTP routes of the sender (api.md)."""
