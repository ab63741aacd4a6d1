"""content_hash: an unchanged document is recognised whatever its key order (api.md:
the same content again is `changed: false`)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.canonical import (
    MAX_DEPTH,
    canonical_json,
    check_storable,
    content_hash,
    decode_json,
)
from services.ingest.domain.validation import DocumentInvalid

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


def test_integers_beyond_64_bits_stay_exact() -> None:
    low, high = (
        decode_json(b'{"n": 18446744073709551617}'),
        decode_json(b'{"n": 18446744073709551618}'),
    )
    assert content_hash(low) != content_hash(high)
    assert canonical_json(high) == b'{"n":18446744073709551618}'


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (b"0.1", b"0.10", True),
        (b"1.0", b"1e0", True),
        (b"1.0", b"1.00000000000000000001", False),
        (b"2.5", b"2.5000000000000000000001", False),
        (b"1e400", b"1e401", False),
        (b"1E2", b"100.0", True),
        (b"100000000000000000000000", b"1e23", False),  # an integer is not a float
        (b"100000000000000000001.0", b"100000000000000000001.00", True),
    ],
)
def test_numbers_hash_by_exact_value(a: bytes, b: bytes, same: bool) -> None:
    assert (content_hash(decode_json(a)) == content_hash(decode_json(b))) is same


def test_plain_documents_decode_as_orjson_does() -> None:
    raw = b'{"a": [1, 2.5, "x", null, true], "b": {"c": -9223372036854775808}}'
    assert decode_json(raw) == orjson.loads(raw)


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 300, 1_000, 100_000])
def test_nesting_beyond_the_bound_is_refused(levels: int) -> None:
    with pytest.raises(DocumentInvalid, match="nest"):
        decode_json(b"[" * levels + b"]" * levels)


def test_nesting_at_the_bound_is_accepted() -> None:
    raw = b'{"a":' * (MAX_DEPTH - 1) + b"[]" + b"}" * (MAX_DEPTH - 1)
    assert content_hash(decode_json(raw))


@pytest.mark.parametrize(
    "raw", [b"{", b"[1,]", b"NaN", b'{"a": Infinity}', b"1e99999", b"-" + b"9" * 20_000]
)
def test_invalid_or_unstorable_json_is_refused(raw: bytes) -> None:
    with pytest.raises(DocumentInvalid):
        decode_json(raw)


def test_an_escaped_backslash_before_u0000_is_storable() -> None:
    check_storable(rb'{"path": "C:\\u0000"}')


def test_a_nul_character_is_refused_naming_the_field() -> None:
    with pytest.raises(DocumentInvalid) as raised:
        check_storable(rb'{"ok": "\\u0000", "a": [{"b": "x\\\u0000"}]}')
    assert [e.loc for e in raised.value.errors] == [("a", 0, "b")]
    with pytest.raises(DocumentInvalid):
        check_storable(rb'{"key\u0000": 1}')
