"""Operator jobs of the ingest, run from the command line (`python -m services.ingest`)."""
