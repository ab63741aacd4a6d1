"""HTTP routes of the bundler (api.md)."""
