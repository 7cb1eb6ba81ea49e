"""Fixtures for the vision package tests (no Django, no network)."""

import io

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def offline_empty_hub(tmp_path, monkeypatch):
    """An empty Hugging Face cache in offline mode, so the machine's real cache cannot interfere."""
    hub = tmp_path / "hf-hub"
    hub.mkdir()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub


@pytest.fixture
def fresh_models():
    """No embedder cached from another test, before or after this one."""
    from vision.registry import clear_loaded_models

    clear_loaded_models()
    yield
    clear_loaded_models()


@pytest.fixture
def encode():
    """encode(image, "PNG", **save_options) -> bytes"""

    def _encode(image: Image.Image, fmt: str, **options) -> bytes:
        out = io.BytesIO()
        image.save(out, format=fmt, **options)
        return out.getvalue()

    return _encode


@pytest.fixture
def noisy_background():
    """noisy_background(width, height, grey=128) -> a grey RGB image with sensor-like noise"""

    def _background(width: int, height: int, grey: int = 128, seed: int = 0) -> Image.Image:
        rng = np.random.default_rng(seed)
        pixels = np.clip(grey + rng.normal(0, 12, (height, width, 1)), 0, 255).repeat(3, axis=2)
        return Image.fromarray(pixels.astype(np.uint8))

    return _background
