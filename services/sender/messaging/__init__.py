"""Consumers and events of the sender."""
