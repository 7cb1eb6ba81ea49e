"""Snapshots of a `CreativeIndex`, so that a fresh process loads the learnt index in seconds instead of
comparing every creative with its neighbours again (about 7 minutes for 10,000 creatives here).

A snapshot is the pickled, refreshed index with the caller's `meta` (what it needs to bring the index
up to date: which creatives, as of when). Pickles run code when loaded, so a snapshot is signed with
HMAC-SHA256 under a key the caller holds, over the code version and the payload, and is unpickled
only once the signature holds. It is read only by the code that wrote it: the version is a hash of
`vision/creatives.py` (the pickled classes) with FAISS's and NumPy's versions, so a snapshot of other
code is refused before it is read, never half-understood.

Layout: a magic line, a JSON header line (code version, payload size, signature), the payload.
No Django here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vision.creatives import CreativeIndex

MAGIC = b"creative-index-snapshot 1\n"
HEADER_MAX_BYTES = 4096


class SnapshotRefused(ValueError):
    """Not a snapshot this code may load (another code version, a bad signature, cut short): build
    the index from the creatives' features instead."""


@lru_cache(maxsize=1)
def code_version() -> str:
    import faiss

    digest = hashlib.sha256((Path(__file__).resolve().parent / "creatives.py").read_bytes())
    digest.update(f"faiss {faiss.__version__} numpy {np.__version__}".encode())
    return digest.hexdigest()[:16]


def _signature(key: bytes, version: str, payload: bytes) -> str:
    mac = hmac.new(key, version.encode(), hashlib.sha256)
    mac.update(payload)
    return mac.hexdigest()


def write_snapshot(index: CreativeIndex, meta: dict, key: bytes, out: BinaryIO) -> int:
    """Refresh `index` (the snapshot holds the learnt template content, not work left to do) and
    write it with `meta` to `out`, signed under `key`. Returns the bytes written."""
    index.refresh()
    payload = pickle.dumps((index, meta), protocol=5)
    version = code_version()
    header = json.dumps({"code": version, "bytes": len(payload), "hmac": _signature(key, version, payload)})
    head = MAGIC + header.encode() + b"\n"
    out.write(head)
    out.write(payload)
    return len(head) + len(payload)


def read_header(source: BinaryIO) -> dict:
    """The header of the snapshot `source` is positioned at (raises `SnapshotRefused`)."""
    if source.read(len(MAGIC)) != MAGIC:
        raise SnapshotRefused("not a creative index snapshot")
    try:
        header = json.loads(source.readline(HEADER_MAX_BYTES))
    except ValueError as exc:
        raise SnapshotRefused(f"unreadable snapshot header ({exc})") from None
    if not (isinstance(header, dict) and isinstance(header.get("code"), str) and isinstance(header.get("hmac"), str)
            and isinstance(header.get("bytes"), int) and header["bytes"] >= 0):
        raise SnapshotRefused("unreadable snapshot header")
    return header


def read_snapshot(source: BinaryIO, key: bytes) -> tuple[CreativeIndex, dict]:
    """(index, meta) from a snapshot written by `write_snapshot` with the same `key` and code."""
    header = read_header(source)
    if header["code"] != code_version():
        raise SnapshotRefused(f"written by other code ({header['code']}, this is {code_version()})")
    payload = source.read(header["bytes"])
    if len(payload) != header["bytes"]:
        raise SnapshotRefused(f"cut short ({len(payload)} of {header['bytes']} bytes)")
    if not hmac.compare_digest(_signature(key, header["code"], payload), header["hmac"]):
        raise SnapshotRefused("bad signature (another key, or altered)")
    index, meta = pickle.loads(payload)
    if not isinstance(index, CreativeIndex) or not isinstance(meta, dict):
        raise SnapshotRefused("signed, but not an index and its meta")
    return index, meta
