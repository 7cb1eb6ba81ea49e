"""The creative index of this process: loaded from the database once, then kept in step.

Each worker process holds one `vision.creatives.CreativeIndex`. Before a scan is matched, one
aggregate query tells whether creatives changed (count and last update); only then are the
changed ones read and added or removed, so a merchandiser's new creative is recognised by the
next scan without a restart.
"""

from __future__ import annotations

import threading

from django.db.models import Count, Max

from shop.campaigns.models import AdCreative, Campaign

_lock = threading.Lock()
_state: dict = {"index": None, "version": None, "loaded": {}}


def matchable_creatives():
    """Active creatives of campaigns that are not drafts, with features."""
    return AdCreative.objects.filter(status=AdCreative.Status.ACTIVE, features__isnull=False).exclude(
        campaign__status=Campaign.Status.DRAFT
    )


def creative_index():
    from vision.creatives import CreativeFeatures, CreativeIndex

    queryset = matchable_creatives()
    version = tuple(queryset.aggregate(n=Count("id"), last=Max("updated_at")).values())
    with _lock:
        if _state["index"] is None:
            _state["index"] = CreativeIndex()
        if version == _state["version"]:
            return _state["index"]
        index, loaded = _state["index"], _state["loaded"]
        current = dict(queryset.values_list("id", "updated_at"))
        for creative_id in [c for c in loaded if current.get(c) != loaded[c]]:
            index.remove(creative_id)
            del loaded[creative_id]
        missing = [c for c in current if c not in loaded]
        for creative_id, data in AdCreative.objects.filter(id__in=missing).values_list("id", "features"):
            index.add(creative_id, CreativeFeatures.from_bytes(bytes(data)))
            loaded[creative_id] = current[creative_id]
        _state["version"] = version
        return index


def reset() -> None:
    """Forget the loaded index (tests that rebuild the database)."""
    with _lock:
        _state.update(index=None, version=None, loaded={})
