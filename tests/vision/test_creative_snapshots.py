"""Snapshots of a creative index (vision.creative_snapshots): signed, of this code only, and loaded
they answer as the index that was written."""

import io

import pytest

from vision import adgen, creative_snapshots
from vision.creative_snapshots import SnapshotRefused, read_header, read_snapshot, write_snapshot
from vision.creatives import CreativeIndex, extract_features

KEY = b"k" * 32
PAGE = (480, 640)


@pytest.fixture(scope="module")
def pages():
    template = adgen.make_template(4, size=PAGE)
    return [adgen.make_creative(template, seed, detail="rich") for seed in range(4)]


@pytest.fixture(scope="module")
def snapshot(pages) -> bytes:
    index = CreativeIndex()
    for n, page in enumerate(pages):
        index.add(f"c{n}", extract_features(page.image))
    out = io.BytesIO()
    size = write_snapshot(index, {"loaded": {f"c{n}": n for n in range(len(pages))}}, KEY, out)
    assert size == len(out.getvalue())
    return out.getvalue()


def test_a_loaded_snapshot_recognises_as_the_index_written_and_learns_nothing_again(snapshot, pages, monkeypatch):
    compared = []
    original = CreativeIndex._compare_with_neighbours
    monkeypatch.setattr(CreativeIndex, "_compare_with_neighbours",
                        lambda self, entry: compared.append(entry.creative_id) or original(self, entry))
    index, meta = read_snapshot(io.BytesIO(snapshot), KEY)
    assert meta == {"loaded": {"c0": 0, "c1": 1, "c2": 2, "c3": 3}} and len(index) == 4
    for n, page in enumerate(pages):
        photo, _ = adgen.photograph(page.image, seed=40 + n, difficulty="easy", size=PAGE)
        match = index.match(photo)
        assert match is not None and match.creative_id == f"c{n}"
    assert compared == [], "the snapshot holds the learnt template content: nothing is compared again"
    assert 0 < index.distinctive_fraction("c1") < 1  # the template is known as such


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[:-1000], "cut short"),
    (lambda data: data[:-5] + bytes([data[-5] ^ 1]) + data[-4:], "bad signature"),
    (lambda data: b"PK\x03\x04" + data[4:], "not a creative index snapshot"),
    (lambda data: data.replace(b'"code": "', b'"code": "0', 1), "written by other code"),
    (lambda data: data.replace(b'"bytes": ', b'"bytes": -', 1), "unreadable snapshot header"),
])
def test_a_damaged_or_foreign_snapshot_is_refused_before_it_is_unpickled(snapshot, damage, reason, monkeypatch):
    monkeypatch.setattr(creative_snapshots.pickle, "loads", lambda data: pytest.fail("unpickled"))
    with pytest.raises(SnapshotRefused, match=reason):
        read_snapshot(io.BytesIO(damage(snapshot)), KEY)


def test_a_snapshot_signed_under_another_key_is_refused(snapshot):
    with pytest.raises(SnapshotRefused, match="bad signature"):
        read_snapshot(io.BytesIO(snapshot), b"another key")
    assert read_header(io.BytesIO(snapshot))["code"] == creative_snapshots.code_version()
