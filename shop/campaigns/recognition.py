"""The creative index of this process: loaded from the database once, then kept in step.

Each worker process holds one `vision.creatives.CreativeIndex`. Before a scan is matched, one
aggregate query tells whether the recognisable creatives changed (`matchable_version`: their count
and a sum of hashes of each one's id and last update, so no clock's order matters); only then are
the changed ones read and added or removed, so a merchandiser's new creative is recognised by the
next scan without a restart.

The index is not thread-safe (web processes run threads: the admin's duplicate check uses it), so
it is only reached through `using_creative_index`, which holds this process's lock while it is used.

Snapshots: building the index compares each creative with its neighbours (the template learning),
about 7 minutes for 10,000 creatives here, longer than a scan may take. So a process's first use
loads the newest snapshot in the `creative_index` storage (seconds; see `vision.creative_snapshots`)
and then only applies what changed since it was written. `save_snapshot` writes one: the
`build_creative_index` command (at deploy) and a periodic task (`CREATIVE_INDEX_SNAPSHOT_SECONDS`)
call it. A snapshot that cannot be loaded (of other code, altered, cut short) is logged and passed
over for an older one, or the index is built from the features as without snapshots.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Callable, Iterator

from django.core.files import File
from django.core.files.storage import storages
from django.db.models import BigIntegerField, Count, DecimalField, Func, Sum, TextField, Value
from django.db.models.functions import Cast, Concat
from django.utils.crypto import salted_hmac

from shop import vision_adapter
from shop.campaigns.models import AdCreative, Campaign

logger = logging.getLogger(__name__)

_lock = threading.Lock()
# index; version: `matchable_version()` of the creatives it holds; loaded: creative id -> updated_at of the
# features it holds; saved: the version of the snapshot this process last loaded or wrote
_state: dict = {"index": None, "version": None, "loaded": {}, "saved": None}

SNAPSHOT_STORAGE = "creative_index"
SNAPSHOT_SUFFIX = ".snapshot"


def matchable_creatives():
    """Active creatives of campaigns that are not drafts, with features."""
    return AdCreative.objects.filter(status=AdCreative.Status.ACTIVE, features__isnull=False).exclude(
        campaign__status=Campaign.Status.DRAFT
    )


class _Hash64(Func):
    """PostgreSQL's 64-bit hash of a text (seed 0)."""

    function = "hashtextextended"
    output_field = BigIntegerField()


def matchable_version() -> tuple:
    """What changes whenever the recognisable creatives do: their count and the sum of a 64-bit hash
    of each one's id and last update. A creative added, changed, set inactive or active, or leaving or
    joining with its campaign's status changes it, whatever the time stamps say: a save stamped
    earlier than one a worker already saw (clocks of two web hosts apart, a slow save committing after
    a quicker one) is not missed, as it was by the last update time. One pass over those creatives'
    rows, as a count alone needs."""
    row = _Hash64(Concat(Cast("id", TextField()), Value("@"), Cast("updated_at", TextField()), output_field=TextField()),
                  Value(0))
    return tuple(matchable_creatives().aggregate(n=Count("id"), hashes=Sum(row, output_field=DecimalField())).values())


@contextmanager
def using_creative_index() -> Iterator:
    """This process's index, brought up to date, held under its lock for the `with` block.

    A creative whose stored features cannot be read (damaged, or of a newer format than this code)
    is left out and logged, never a reason to fail every scan; it is tried again when it changes."""
    queryset = matchable_creatives()
    version = matchable_version()
    with _lock:
        if _state["index"] is None:
            _state.update(
                _from_snapshot() or {"index": vision_adapter.CreativeIndex(), "loaded": {}, "saved": None}, version=None
            )
        index, loaded = _state["index"], _state["loaded"]
        if version != _state["version"]:
            current = dict(queryset.values_list("id", "updated_at"))
            for creative_id in [c for c in loaded if current.get(c) != loaded[c]]:
                index.remove(creative_id)  # nothing to remove for one whose features could not be read
                del loaded[creative_id]
            missing = [c for c in current if c not in loaded]
            for creative_id, data in AdCreative.objects.filter(id__in=missing).values_list("id", "features"):
                try:
                    index.add(creative_id, vision_adapter.CreativeFeatures.from_bytes(bytes(data)))
                except ValueError as exc:
                    logger.warning("creative left out of recognition: its features cannot be read",
                                   extra={"creative_id": creative_id, "error": str(exc)})
                loaded[creative_id] = current[creative_id]
            _state["version"] = version
        yield index


def save_snapshot(*, progress: Callable[[int, int], None] | None = None, force: bool = False,
                  rebuild: bool = False) -> str | None:
    """Write this process's index, brought up to date, as the newest snapshot, unless the creatives
    have not changed since the snapshot this process last loaded or wrote (`force` writes anyway;
    `rebuild` first drops this process's index and builds it from the features, not from a snapshot).
    `progress(done, total)` as creatives are compared with their neighbours. Returns the snapshot's
    name, or None when there was nothing new. Older snapshots of this code are deleted after."""
    storage = storages[SNAPSHOT_STORAGE]
    if rebuild:
        with _lock:
            _state.update(index=vision_adapter.CreativeIndex(), version=None, loaded={}, saved=None)
    spool = tempfile.TemporaryFile()
    try:
        with using_creative_index() as index:
            version = _state["version"]
            if version == _state["saved"] and not force:
                return None
            index.refresh(progress)  # the long part, the first time: interruptible, goes on where it stopped
            creatives = len(index)
            meta = {"loaded": dict(_state["loaded"]), "version": version}
            vision_adapter.write_snapshot(index, meta, _snapshot_key(), spool)
        spool.seek(0)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{vision_adapter.code_version()}-{stamp}-{secrets.token_hex(4)}{SNAPSHOT_SUFFIX}"
        name = storage.save(name, File(spool))
    finally:
        spool.close()
    with _lock:
        if _state["version"] == version:
            _state["saved"] = version
    for older in _snapshot_names(storage):
        if older < name:
            storage.delete(older)
    logger.info("creative index snapshot written", extra={"snapshot": name, "creatives": creatives})
    return name


def load_before_fork() -> int:
    """Load this process's index (from the newest snapshot) and do its pending work, in a worker's
    parent process before the pool forks: the pool's processes then share its pages copy-on-write
    (the FAISS lists and the NumPy arrays are never written by a scan), instead of each reading the
    snapshot into memory of its own, and a process that replaces one that died starts with it. Each
    process still applies what changed since. Returns the creatives it holds.

    FAISS runs on one OpenMP thread meanwhile and the garbage collector is frozen after
    (`vision.memory.loading_to_share_after_fork`); `after_fork` gives the forked processes their
    threads back. `bench/index_sharing.py` measures what is shared."""
    with vision_adapter.loading_to_share_after_fork() as threads:
        _state["omp_threads"] = threads
        with using_creative_index() as index:
            index.refresh()
            return len(index)


def after_fork(threads: int | None = None) -> bool:
    """In a forked pool process of a vision worker (whose parent ran `load_before_fork`): `threads`
    for OpenCV and FAISS when given (`VISION_THREADS`, see vision.threads), else FAISS's OpenMP
    threads as they were before `load_before_fork`. In other workers' processes it does nothing, and
    says so: False."""
    if not _state.get("omp_threads"):
        return False
    if threads:
        vision_adapter.use_threads(threads)
    else:
        vision_adapter.after_fork(_state["omp_threads"])
    return True


def snapshot_ready() -> str | None:
    """What lets a fresh worker start without building the index inside its first scans: the name of
    the newest snapshot of this code in storage, or "no creatives" when none is to be recognised. None
    while neither holds (the deploy's `build_creative_index` has not written one for this code yet).
    Whether that snapshot loads is only known when it is read; one refused is passed over then."""
    if not matchable_creatives().exists():
        return "no creatives"
    names = _snapshot_names(storages[SNAPSHOT_STORAGE])
    return names[-1] if names else None


def indexed_creatives() -> int:
    """Creatives this process's index can return (0 before its first use)."""
    with _lock:
        return len(_state["index"]) if _state["index"] is not None else 0


def _snapshot_key() -> bytes:
    """Snapshots are signed under a key derived from SECRET_KEY: one that another key signed, or
    that was altered, is never unpickled."""
    return salted_hmac("shop.campaigns.recognition.snapshot", "creative index snapshots").digest()


def _snapshot_names(storage) -> list[str]:
    """This code's snapshots in `storage`, oldest first (the names start with the code version and
    the time written)."""
    try:
        _, files = storage.listdir("")
    except FileNotFoundError:
        return []
    prefix = f"{vision_adapter.code_version()}-"
    return sorted(name for name in files if name.startswith(prefix) and name.endswith(SNAPSHOT_SUFFIX))


def _from_snapshot() -> dict | None:
    """index, loaded and saved from the newest snapshot that loads; None when there is none."""
    try:
        storage = storages[SNAPSHOT_STORAGE]
        names = _snapshot_names(storage)
    except Exception:
        logger.exception("creative index snapshots could not be listed; building the index from the features")
        return None
    for name in reversed(names):
        started = time.perf_counter()
        try:
            with storage.open(name, "rb") as source:
                index, meta = vision_adapter.read_snapshot(source, _snapshot_key())
            loaded, saved = dict(meta["loaded"]), meta["version"]
        except FileNotFoundError:
            continue  # replaced by a newer one since it was listed
        except vision_adapter.SnapshotRefused as exc:
            logger.warning("creative index snapshot refused", extra={"snapshot": name, "error": str(exc)})
            continue
        except Exception as exc:
            logger.warning("creative index snapshot could not be loaded",
                           extra={"snapshot": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        logger.info("creative index loaded from a snapshot", extra={
            "snapshot": name, "creatives": len(loaded), "seconds": round(time.perf_counter() - started, 2)})
        return {"index": index, "loaded": loaded, "saved": saved}
    return None


def reset() -> None:
    """Forget the loaded index (tests that rebuild the database)."""
    with _lock:
        _state.update(index=None, version=None, loaded={}, saved=None)
