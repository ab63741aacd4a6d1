"""Loading the real example documents (`tests/data/examples/`, copied into the repo with
their source and licence noted)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.examples import EXAMPLES


def examples_dir() -> Path:
    return EXAMPLES


def load(relative: str) -> Any:
    return json.loads((examples_dir() / relative).read_text(encoding="utf-8"))


def hoks_files() -> list[str]:
    return sorted(p.name for p in (examples_dir() / "ehoks-examples").glob("*.json"))


def koski_study_rights() -> list[tuple[str, dict[str, Any]]]:
    """Every study right in the Koski examples: (file#index, document).

    The single `koski_api_opiskeluoikeus_*` documents, and each element of the
    `opiskeluoikeudet` of the oppija and sure files; organisaatio files are not study
    rights.
    """
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((examples_dir() / "koski-examples").glob("koski_api_*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if path.name.startswith("koski_api_opiskeluoikeus_"):
            found.append((path.name, document))
        elif isinstance(document, dict):
            for i, oo in enumerate(document["opiskeluoikeudet"]):
                found.append((f"{path.name}#{i}", oo))
        else:
            for i, oppija in enumerate(document):
                for j, oo in enumerate(oppija["opiskeluoikeudet"]):
                    found.append((f"{path.name}#{i}.{j}", oo))
    return found


def at(document: dict[str, Any], loc: tuple[str | int, ...]) -> Any:
    """The value at a field location (as in `FieldError.loc`)."""
    node: Any = document
    for part in loc:
        node = node[part]
    return node


def setter(loc: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets the field at `loc`: one row of an invalid-document table."""

    def mutate(document: dict[str, Any]) -> None:
        at(document, loc[:-1])[loc[-1]] = value

    return mutate


def deleter(loc: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    """A mutation that removes the field at `loc`."""

    def mutate(document: dict[str, Any]) -> None:
        del at(document, loc[:-1])[loc[-1]]

    return mutate
