"""Where the example documents live: `tests/data/examples/` (source and licence in its
README), so a clone runs its tests alone."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
EHOKS_EXAMPLES = EXAMPLES / "ehoks-examples"
KOSKI_EXAMPLES = EXAMPLES / "koski-examples"
