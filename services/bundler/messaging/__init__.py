"""Consumers and events of the bundler."""
