import numpy as np
from PIL import Image

from vision.handcrafted import DIM, ColorTextureEmbedder

RED, WHITE, BLUE = (200, 20, 30), (240, 240, 240), (20, 40, 200)
GREEN, YELLOW, BLACK = (40, 160, 60), (230, 200, 20), (25, 25, 25)


def stripes(first, second, period=16, size=200):
    x = np.arange(size)[None, :].repeat(size, 0)
    return _two_tone(x % period < period / 2, first, second)


def dots(first, second, period=20, size=200):
    y, x = np.mgrid[:size, :size]
    return _two_tone((x % period - period / 2) ** 2 + (y % period - period / 2) ** 2 < (period / 4) ** 2, first, second)


def noise(color, size=200, seed=0):
    rng = np.random.default_rng(seed)
    pixels = np.array(color)[None, None, :] + rng.normal(0, 40, (size, size, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _two_tone(where, first, second):
    return Image.fromarray(np.where(where[..., None], np.array(first), np.array(second)).astype(np.uint8))


def test_recolour_and_same_colour_rank_above_unrelated():
    embedder = ColorTextureEmbedder()
    query = stripes(RED, WHITE)
    recoloured = stripes(BLUE, BLACK)  # same pattern, no colour in common
    same_colour = Image.new("RGB", (200, 200), RED)  # same colour, no pattern
    unrelated = [noise(GREEN), dots(YELLOW, BLACK), Image.new("RGB", (200, 200), GREEN)]

    vectors = embedder.embed_images([query, recoloured, same_colour, *unrelated])
    similarity = vectors[1:] @ vectors[0]

    best_unrelated = similarity[2:].max()
    assert similarity[0] > best_unrelated
    assert similarity[1] > best_unrelated


def test_vectors_are_deterministic_unit_and_fixed_size():
    embedder = ColorTextureEmbedder()
    images = [stripes(RED, WHITE), noise(GREEN)]

    first = embedder.embed_images(images)
    second = embedder.embed_images(images)

    assert first.shape == (2, DIM) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)


def test_same_picture_at_another_size_stays_close():
    embedder = ColorTextureEmbedder()
    image = dots(RED, WHITE, size=400)

    vectors = embedder.embed_images([image, image.resize((260, 260)), stripes(BLUE, WHITE)])

    assert vectors[0] @ vectors[1] > 0.95
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
