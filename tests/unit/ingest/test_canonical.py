"""content_hash: an unchanged document is recognised whatever its key order (api.md:
the same content again is `changed: false`)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.canonical import canonical_json, content_hash

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


def reorder(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: reorder(item, rng) for key, item in items}
    if isinstance(value, list):
        return [reorder(item, rng) for item in value]
    return value


@given(JSON_VALUES, st.randoms(use_true_random=False))
def test_hash_is_invariant_to_key_order(value: Any, rng: random.Random) -> None:
    assert content_hash(reorder(value, rng)) == content_hash(value)


def test_canonical_form_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": [1, {"d": 1, "c": "ä"}], "a": None}) == (
        '{"a":null,"b":[1,{"c":"ä","d":1}]}'.encode()
    )


def test_hash_is_hex_sha256_and_sees_value_changes() -> None:
    digest = content_hash({"loppu": "2024-03-17"})
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest != content_hash({"loppu": "2024-03-18"})
    # List order is content (the jakso's path depends on it).
    assert content_hash([1, 2]) != content_hash([2, 1])
