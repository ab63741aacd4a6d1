"""Consumers and events of the arvo_adapter."""
