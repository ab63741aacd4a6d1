"""Jobs of the ingest: operator jobs run from the command line (`python -m services.ingest`,
replay) and dated jobs run by date (shared/jobs.py: the P1 clean-up)."""
