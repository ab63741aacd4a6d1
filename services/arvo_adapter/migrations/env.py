from services.arvo_adapter.store.tables import metadata
from shared.migrations import run_env

run_env(metadata)
