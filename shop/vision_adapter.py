"""The one place where Django code reaches the `vision` package.

`vision/` knows nothing of Django; this module passes it the settings and caches what it returns
once per process.
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

DEFAULT_PRETRAINED_MODEL = "clip-vit-b-32"
WEIGHTS_FREE_MODEL = "color-texture-v1"


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
