import logging
import threading

import numpy as np
import pytest
from PIL import Image

from vision.registry import (
    REGISTRY,
    UnknownModel,
    WeightsUnavailable,
    clear_loaded_models,
    get_spec,
    load_embedder,
    model_status,
    weights_available,
)


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(UnknownModel) as caught:
        get_spec("clip-vit-huge")

    assert isinstance(caught.value, KeyError)
    message = str(caught.value)
    assert "clip-vit-huge" in message
    assert all(key in message for key in REGISTRY)


def test_unknown_key_is_refused_everywhere():
    for call in (load_embedder, weights_available, model_status):
        with pytest.raises(UnknownModel):
            call("nope")


def test_registry_matches_open_clip_configs():
    import open_clip

    from vision.registry import _register_tiny_test_architecture

    _register_tiny_test_architecture()
    for spec in REGISTRY.values():
        if spec.family != "open_clip":
            continue
        config = open_clip.get_model_config(spec.architecture)
        assert config["embed_dim"] == spec.dim, spec.key
        assert config["vision_cfg"]["image_size"] == spec.image_size, spec.key
        if spec.pretrained_tag:
            hub = open_clip.get_pretrained_cfg(spec.architecture, spec.pretrained_tag)["hf_hub"]
            assert hub.rstrip("/") == spec.hf_hub_id, spec.key


def test_missing_weights_raise_a_helpful_error(offline_empty_hub, fresh_models):
    assert not weights_available("clip-vit-b-32")

    with pytest.raises(WeightsUnavailable) as caught:
        load_embedder("clip-vit-b-32", allow_random_weights=False)

    message = str(caught.value)
    assert "VISION_WEIGHTS_PATH" in message
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message
    assert str(offline_empty_hub) in message  # where the hub cache was looked for
    assert "VISION_ALLOW_RANDOM_WEIGHTS=true" in message


def test_status_reports_unavailable_weights_without_loading(offline_empty_hub, fresh_models):
    status = model_status("clip-vit-b-32")

    assert status["weights_source"] == "unavailable"
    assert status["ready"] is False and status["loaded"] is False
    assert status["pretrained"] is None
    assert "VISION_WEIGHTS_PATH" in status["message"]
    assert model_status("clip-vit-b-32", allow_random_weights=True)["weights_source"] == "random"


def test_missing_checkpoint_path_is_an_error_not_a_fallback(tmp_path, offline_empty_hub, fresh_models):
    missing = tmp_path / "nowhere.safetensors"

    assert not weights_available("tiny-test", weights_path=str(missing))
    with pytest.raises(WeightsUnavailable, match="nowhere.safetensors"):
        load_embedder("tiny-test", weights_path=str(missing), allow_random_weights=True)


def test_hub_cache_is_found_without_network(offline_empty_hub, fresh_models):
    repo = offline_empty_hub / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"placeholder")

    assert weights_available("clip-vit-b-32")
    status = model_status("clip-vit-b-32")
    assert status["weights_source"] == "hub-cache"
    assert status["ready"] and not status["loaded"]
    assert not weights_available("clip-vit-b-16")  # other repos stay missing


def _tiny_model_with_seed(seed):
    import open_clip
    import torch

    from vision.registry import _register_tiny_test_architecture

    _register_tiny_test_architecture()
    torch.manual_seed(seed)
    return open_clip.create_model(get_spec("tiny-test").architecture).eval()


def _scene_images():
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)) for _ in range(3)]


@pytest.mark.parametrize("layout", ["file", "directory"])
def test_checkpoint_is_loaded_from_weights_path(tmp_path, offline_empty_hub, fresh_models, layout):
    import torch

    trained = _tiny_model_with_seed(1234)
    if layout == "file":
        weights_path = tmp_path / "tiny.pt"
        torch.save(trained.state_dict(), weights_path)
    else:
        from safetensors.torch import save_file

        weights_path = tmp_path
        save_file(trained.state_dict(), tmp_path / "open_clip_model.safetensors")

    embedder = load_embedder("tiny-test", weights_path=str(weights_path))

    assert embedder.weights_source == "checkpoint"
    assert embedder.pretrained is True
    images = _scene_images()
    with torch.inference_mode():
        expected = trained.encode_image(embedder.preprocess_images(images)).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed_images(images), expected, atol=1e-5)
    random_vectors = load_embedder("tiny-test").embed_images(images)
    assert not np.allclose(random_vectors, expected, atol=1e-3)  # the checkpoint really was used
    status = model_status("tiny-test", weights_path=str(weights_path))
    assert status["loaded"] and status["pretrained"] is True and status["weights_source"] == "checkpoint"


def test_checkpoint_for_another_architecture_is_refused(tmp_path, offline_empty_hub, fresh_models):
    import torch

    torch.save({"not": torch.zeros(3)}, tmp_path / "wrong.pt")

    with pytest.raises(WeightsUnavailable, match="could not be loaded"):
        load_embedder("tiny-test", weights_path=str(tmp_path / "wrong.pt"))


@pytest.mark.parametrize("name, content", [("bad.safetensors", b"\xff" * 64), ("bad.pt", b"not a pickle at all")])
def test_a_corrupt_checkpoint_is_named_and_reported_not_ready(tmp_path, offline_empty_hub, fresh_models, name, content):
    """A truncated or foreign file was 'ready' (it exists), its loader's error escaped as an internal
    error in every scan, and each scan tried the load again."""
    path = tmp_path / name
    path.write_bytes(content)
    assert model_status("tiny-test", weights_path=str(path))["ready"] is True  # as far as a look can tell
    with pytest.raises(WeightsUnavailable, match=f"could not be loaded.*{name}|{name}.*could not be loaded"):
        load_embedder("tiny-test", weights_path=str(path))
    status = model_status("tiny-test", weights_path=str(path))
    assert status["ready"] is False and "could not be loaded" in status["message"]


def test_random_weights_only_when_allowed_and_said_plainly(offline_empty_hub, fresh_models, caplog):
    with caplog.at_level(logging.WARNING, logger="vision.registry"):
        embedder = load_embedder("mobileclip2-s0", allow_random_weights=True)

    assert embedder.pretrained is False
    assert embedder.weights_source == "random"
    assert embedder.embed_images(_scene_images()[:1]).shape == (1, 512)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("RANDOM weights" in message for message in warnings)
    status = model_status("mobileclip2-s0", allow_random_weights=True)
    assert status["loaded"] and status["pretrained"] is False and "RANDOM" in status["message"]


def test_loading_is_cached_once_per_process_and_thread_safe(fresh_models, monkeypatch):
    import vision.registry as registry

    builds = []
    real_build = registry._build_open_clip

    def counting_build(*args, **kwargs):
        builds.append(args[0].key)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(registry, "_build_open_clip", counting_build)
    results = []
    def load():
        results.append(load_embedder("tiny-test", device="cpu"))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert builds == ["tiny-test"]
    assert len(results) == 4 and all(result is results[0] for result in results)
    clear_loaded_models()
    assert load_embedder("tiny-test", device="cpu") is not results[0]


def test_status_answers_while_a_model_is_being_built(fresh_models, monkeypatch):
    """/readyz and the admin ask model_status while a worker thread loads the model (seconds for a
    real checkpoint): the answer comes at once, 'not loaded yet', instead of after the build."""
    import vision.registry as registry

    building, release = threading.Event(), threading.Event()
    real_build = registry._build_open_clip

    def slow_build(*args, **kwargs):
        building.set()
        release.wait(30)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(registry, "_build_open_clip", slow_build)
    loader = threading.Thread(target=lambda: load_embedder("tiny-test", device="cpu"))
    loader.start()
    try:
        assert building.wait(30)
        answers = []
        asker = threading.Thread(target=lambda: answers.append(model_status("tiny-test")))
        asker.start()
        asker.join(5)
        assert answers, "model_status waited for the model build"
        assert answers[0]["ready"] and not answers[0]["loaded"]
    finally:
        release.set()
        loader.join(30)
        asker.join(30)
    assert model_status("tiny-test")["loaded"]


def test_weights_free_model_status():
    status = model_status("color-texture-v1")

    assert status["weights_source"] == "none (weights-free)"
    assert status["ready"] and status["pretrained"] is False and status["supports_text"] is False
    assert weights_available("color-texture-v1")
    assert load_embedder("color-texture-v1").dim == get_spec("color-texture-v1").dim


def test_vision_never_imports_django():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, vision, vision.decode, vision.registry, vision.embedders, vision.handcrafted, "
        "vision.detect, vision.colors, vision.synthetic; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'shop', 'catalog')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip() == "[]"
