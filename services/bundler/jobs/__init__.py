"""The bundler's dated jobs (shared/jobs.py runs them by date): thin, each calls a use case."""
