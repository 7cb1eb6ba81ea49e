import numpy as np
import pytest
from PIL import Image

from vision.embedders import Embedder, TextNotSupported
from vision.registry import clear_loaded_models, load_embedder


def photos():
    rng = np.random.default_rng(7)
    images = [Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)) for _ in range(4)]
    images.append(Image.new("RGB", (50, 70), (200, 30, 40)))
    images.append(Image.new("L", (64, 64), 90))  # not RGB: converted on the way in
    return images


def test_tiny_test_vectors_have_the_right_shape_and_unit_norm(fresh_models):
    embedder = load_embedder("tiny-test")

    vectors = embedder.embed_images(photos())

    assert isinstance(embedder, Embedder)
    assert embedder.pretrained is False and embedder.weights_source == "random"
    assert vectors.shape == (6, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.abs(vectors @ vectors.T - np.eye(6)).max() > 0.01  # not all the same vector


def test_tiny_test_is_deterministic_across_calls_and_loads(fresh_models):
    first = load_embedder("tiny-test").embed_images(photos())
    again = load_embedder("tiny-test").embed_images(photos())
    clear_loaded_models()
    fresh = load_embedder("tiny-test").embed_images(photos())

    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, fresh, atol=1e-6)


def test_batching_does_not_change_results(fresh_models):
    embedder = load_embedder("tiny-test")
    one_by_one = np.concatenate([embedder.embed_images([image]) for image in photos()])

    embedder.batch_size = 4  # six images in two batches
    batched = embedder.embed_images(photos())

    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_tiny_test_embeds_text(fresh_models):
    embedder = load_embedder("tiny-test")

    vectors = embedder.embed_text(["a photo of a bag", "a photo of a shoe", "a photo of a bag"])

    assert vectors.shape == (3, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert float(vectors[0] @ vectors[1]) < 0.9999


def test_empty_inputs_give_empty_matrices(fresh_models):
    for key, dim in (("tiny-test", 64), ("color-texture-v1", 512)):
        embedder = load_embedder(key)
        assert embedder.embed_images([]).shape == (0, dim)
    assert load_embedder("tiny-test").embed_text([]).shape == (0, 64)


def test_weights_free_embedder_has_no_text():
    embedder = load_embedder("color-texture-v1")

    assert isinstance(embedder, Embedder)
    assert embedder.supports_text is False
    with pytest.raises(TextNotSupported):
        embedder.embed_text(["a red dress"])
