"""The arvo_adapter's rules, pure: what to ask Arvo for and what its answers mean."""
