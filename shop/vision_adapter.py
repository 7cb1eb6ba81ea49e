"""The one place where Django code reaches the `vision` package.

`vision/` knows nothing of Django; this module passes it the settings and caches what it returns
once per process. The other names Django code uses from `vision/` (exceptions, helpers, the creative
matcher) are re-exported here, each imported from its module at first use: `vision_adapter.CreativeIndex`
in a function loads OpenCV and FAISS only when it runs, so web processes and workers of the other
queues never load what they do not use. Once read, a name is kept here: a test that replaces a
vision function for Django code patches it on this module.
"""

from __future__ import annotations

import functools
import importlib
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

DEFAULT_PRETRAINED_MODEL = "clip-vit-b-32"
WEIGHTS_FREE_MODEL = "color-texture-v1"

# Re-exported modules, and names -> the vision module each comes from
_VISION_MODULES = {"adgen": "vision.adgen"}
_FROM_VISION = {
    **dict.fromkeys(("color_names", "dominant_colors"), "vision.colors"),
    **dict.fromkeys(
        ("SnapshotRefused", "code_version", "read_snapshot", "write_snapshot"), "vision.creative_snapshots"
    ),
    **dict.fromkeys(
        ("CreativeFeatures", "CreativeIndex", "extract_features", "rate_recognisability"), "vision.creatives"
    ),
    **dict.fromkeys(("item_crop", "boxed_item_view", "main_item_view"), "vision.crops"),
    **dict.fromkeys(("ImageRejected", "encode_clean_jpeg"), "vision.decode"),
    "detect": "vision.detect",
    **dict.fromkeys(("after_fork", "loading_to_share_after_fork", "retain_freed_memory"), "vision.memory"),
    **dict.fromkeys(("REGISTRY", "UnknownModel", "WeightsUnavailable"), "vision.registry"),
    **dict.fromkeys(("threads_in_use", "use_threads"), "vision.threads"),
}


def __getattr__(name: str):
    """A re-exported vision name, imported at first use (PEP 562) and kept as this module's."""
    if name in _VISION_MODULES:
        value = importlib.import_module(_VISION_MODULES[name])
    elif name in _FROM_VISION:
        value = getattr(importlib.import_module(_FROM_VISION[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_VISION_MODULES, *_FROM_VISION})


@functools.cache
def configured_model_key() -> str:
    """The VISION_MODEL setting with "auto" resolved: the key enabled first (see catalog.selectors)."""
    from vision import registry

    key = settings.VISION_MODEL
    if key != "auto":
        registry.get_spec(key)  # an unknown key fails loudly at first use, naming the valid ones
        return key
    if registry.weights_available(DEFAULT_PRETRAINED_MODEL, weights_path=settings.VISION_WEIGHTS_PATH):
        return DEFAULT_PRETRAINED_MODEL
    logger.warning(
        "no pretrained weights for %s on this machine: using the weights-free %s model; "
        "set VISION_WEIGHTS_PATH or pre-load the Hugging Face cache to use CLIP",
        DEFAULT_PRETRAINED_MODEL,
        WEIGHTS_FREE_MODEL,
    )
    return WEIGHTS_FREE_MODEL


def _loader_options(key: str) -> dict:
    # VISION_WEIGHTS_PATH is the checkpoint of the configured model; other keys use the hub cache.
    configured = settings.VISION_MODEL == key or (settings.VISION_MODEL == "auto" and key == DEFAULT_PRETRAINED_MODEL)
    return {
        "weights_path": settings.VISION_WEIGHTS_PATH if configured else None,
        "allow_random_weights": settings.VISION_ALLOW_RANDOM_WEIGHTS,
    }


def get_embedder(key: str | None = None):
    """The embedder for a registry key (the active one by default), loaded once per process."""
    from vision import registry

    key = key or configured_model_key()
    return registry.load_embedder(
        key, device=settings.VISION_DEVICE, threads=settings.VISION_THREADS, **_loader_options(key)
    )


def model_status(key: str | None = None) -> dict:
    """What /readyz and admin show about a model, without loading it."""

    try:
        from vision import registry

        key = key or configured_model_key()
        status = registry.model_status(key, **_loader_options(key))
        return {**status, "error": None if status.get("ready") else status.get("message", "not ready")}
    except Exception as exc:  # unknown key or unusable weights: reported, not raised
        return {"key": key or settings.VISION_MODEL, "pretrained": None, "error": f"{type(exc).__name__}: {exc}"}


def model_dim(key: str) -> int:
    from vision import registry

    return registry.get_spec(key).dim


def decode(data: bytes):
    """Decode uploaded bytes with the configured limits (raises vision.decode.ImageRejected)."""
    from vision.decode import DecodeLimits, decode_image

    return decode_image(data, limits=DecodeLimits(max_bytes=settings.UPLOAD_MAX_BYTES))
