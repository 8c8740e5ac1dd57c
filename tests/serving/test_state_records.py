"""Reading stored stream records: every malformed field is named, with what can be salvaged."""

from __future__ import annotations

import json

import pytest

from serving.sidecar.state import CorruptRecord, StreamRecord, Version


def _fields(**changes: bytes | None) -> dict[bytes, bytes]:
    record = StreamRecord(
        tracker="qdtrack",
        state=b"npz",
        last_index=7,
        model_version="m1",
        id_offset=3,
        ids_issued=12,
        results=[(7, json.dumps({"frame_index": 7, "tracks": [{"track_id": 15}]}).encode())],
        generation="e" * 32,
    )
    fields = {name.encode(): value for name, value in record.fields().items()}
    for name, value in changes.items():
        if value is None:
            del fields[name.encode()]
        else:
            fields[name.encode()] = value
    return fields


def test_a_record_reads_back() -> None:
    record = StreamRecord.from_fields(_fields())
    assert record.version == Version("e" * 32, "7")
    assert (record.ids_issued, record.id_offset, record.model_version) == (12, 3, "m1")


def test_a_record_older_than_generations_is_still_read() -> None:
    record = StreamRecord.from_fields(_fields(generation=None))
    assert record.generation == "" and record.version == Version("", "7")


@pytest.mark.parametrize(
    ("field", "value", "last_index", "ids_issued"),
    [
        ("generation", b"XYZ", 7, 16),
        ("last_index", b"1_0", None, 16),
        ("last_index", b"+7", None, 16),
        ("last_index", b"007", None, 16),  # not canonical: the compare-and-set would never match
        ("last_index", None, None, 16),
        ("meta", b"{not json", 7, 16),  # ids from the stored results
        ("meta", b'{"tracker": "qdtrack", "ids_issued": -1}', 7, 16),
        ("meta", b"[]", 7, 16),
        ("results", b"{}", 7, 12),  # ids from the meta
        ("results", b'[{"frame_index": true, "tracks": []}]', 7, 12),
        ("state", None, 7, 16),
    ],
)
def test_every_malformed_field_is_named(
    field: str, value: bytes | None, last_index: int | None, ids_issued: int
) -> None:
    with pytest.raises(CorruptRecord) as info:
        StreamRecord.from_fields(_fields(**{field: value}))
    assert info.value.field == field and info.value.reason == f"corrupt_{field}"
    assert info.value.salvage.last_index == last_index
    assert info.value.salvage.ids_issued == ids_issued
    # the reset's compare-and-set expects exactly the stored text
    stored_index = (value or b"").decode() if field == "last_index" else "7"
    assert info.value.raw.last_index == stored_index
