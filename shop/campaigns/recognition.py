"""The creative index of this process: loaded from the database once, then kept in step.

Each worker process holds one `vision.creatives.CreativeIndex`. Before a scan is matched, one
aggregate query tells whether creatives changed (count and last update); only then are the
changed ones read and added or removed, so a merchandiser's new creative is recognised by the
next scan without a restart.

The index is not thread-safe (web processes run threads: the admin's duplicate check uses it), so
it is only reached through `using_creative_index`, which holds this process's lock while it is used.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

from django.db.models import Count, Max

from shop.campaigns.models import AdCreative, Campaign

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict = {"index": None, "version": None, "loaded": {}}


def matchable_creatives():
    """Active creatives of campaigns that are not drafts, with features."""
    return AdCreative.objects.filter(status=AdCreative.Status.ACTIVE, features__isnull=False).exclude(
        campaign__status=Campaign.Status.DRAFT
    )


@contextmanager
def using_creative_index() -> Iterator:
    """This process's index, brought up to date, held under its lock for the `with` block.

    A creative whose stored features cannot be read (damaged, or of a newer format than this code)
    is left out and logged, never a reason to fail every scan; it is tried again when it changes."""
    from vision.creatives import CreativeFeatures, CreativeIndex

    queryset = matchable_creatives()
    version = tuple(queryset.aggregate(n=Count("id"), last=Max("updated_at")).values())
    with _lock:
        if _state["index"] is None:
            _state["index"] = CreativeIndex()
        index, loaded = _state["index"], _state["loaded"]
        if version != _state["version"]:
            current = dict(queryset.values_list("id", "updated_at"))
            for creative_id in [c for c in loaded if current.get(c) != loaded[c]]:
                index.remove(creative_id)  # nothing to remove for one whose features could not be read
                del loaded[creative_id]
            missing = [c for c in current if c not in loaded]
            for creative_id, data in AdCreative.objects.filter(id__in=missing).values_list("id", "features"):
                try:
                    index.add(creative_id, CreativeFeatures.from_bytes(bytes(data)))
                except ValueError as exc:
                    logger.warning("creative left out of recognition: its features cannot be read",
                                   extra={"creative_id": creative_id, "error": str(exc)})
                loaded[creative_id] = current[creative_id]
            _state["version"] = version
        yield index


def reset() -> None:
    """Forget the loaded index (tests that rebuild the database)."""
    with _lock:
        _state.update(index=None, version=None, loaded={})
