"""`color-texture-v1`: a weights-free image descriptor (numpy + OpenCV, deterministic, ~3 ms/image).

The vector (512 float32, unit L2 norm) is two blocks, each a set of Hellinger-normalised
histograms (square root of the L1-normalised histogram), so the cosine similarity of two vectors
is a weighted sum of Bhattacharyya coefficients:

* colour (256 dims, weight 0.5): a soft-binned (trilinear) CIE Lab histogram, 4 L x 8 a x 8 b bins,
  with pixels near the image centre counting more than those at the border (product photos and
  item crops put the item in the middle);
* texture (256 dims, weight 0.5): on the L channel at 4 pyramid scales (128, 64, 32, 16 px) and in
  2x2 cells, a 12-bin unsigned gradient-orientation histogram weighted by magnitude (HOG-like,
  soft-binned between neighbouring orientations, with a small uniform prior so flat cells read as
  "no orientation") plus a 4-level gradient-strength histogram (flat, faint, clear, strong edges).

Good at: finding items of the same colour, and items with the same pattern or weave in another
colour (stripes, checks, dots, knit) -- recolour variants rank high through the texture block,
same-colour items through the colour block. Fast and needs no weights, so it runs anywhere.

Bad at: shape and semantics (a red bag and a red shirt look alike), viewpoint and scale changes
beyond the pyramid's reach, lighting colour casts, and background clutter in crops (the centre
weighting helps only a little). It has no text tower: `embed_text` raises `TextNotSupported`.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from vision.embedders import TextNotSupported, l2_normalize

KEY = "color-texture-v1"
WORK_SIZE = 128
L_BINS, A_BINS, B_BINS = 4, 8, 8
AB_RANGE = 96.0  # a*, b* clipped to [-96, 96]; covers sRGB except the most saturated blues/greens
ORIENTATION_BINS = 12
STRENGTH_EDGES = (1.0, 4.0, 12.0)  # L units per pixel separating flat / faint / clear / strong
SCALES = 4
CELLS = 2
ORIENTATION_SHARE = 0.75  # of each cell's similarity; the rest is edge strength
COLOR_WEIGHT = 0.5
TEXTURE_WEIGHT = 0.5
COLOR_DIM = L_BINS * A_BINS * B_BINS
TEXTURE_DIM = SCALES * CELLS * CELLS * (ORIENTATION_BINS + len(STRENGTH_EDGES) + 1)
DIM = COLOR_DIM + TEXTURE_DIM


class ColorTextureEmbedder:
    key = KEY
    dim = DIM
    pretrained = False  # no learned weights at all; nothing to load
    weights_source = "none (weights-free)"
    device = "cpu"
    supports_text = False

    def __repr__(self) -> str:
        return f"ColorTextureEmbedder(key={self.key!r}, dim={self.dim})"

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, DIM), np.float32)
        return np.stack([describe(image) for image in images])

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        raise TextNotSupported(f"{KEY} describes colour and texture only; it cannot embed text.")


def describe(image: Image.Image) -> np.ndarray:
    """The 512-dim unit vector for one image."""
    rgb = np.asarray(image.convert("RGB").resize((WORK_SIZE, WORK_SIZE), Image.Resampling.BILINEAR))
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    color = np.sqrt(_l1(_lab_histogram(lab)))
    texture = _texture_histograms(lab[..., 0])
    vector = np.concatenate([np.sqrt(COLOR_WEIGHT) * color, np.sqrt(TEXTURE_WEIGHT) * texture])
    return l2_normalize(vector)


def _l1(hist: np.ndarray) -> np.ndarray:
    total = hist.sum()
    return hist / total if total > 0 else np.full_like(hist, 1.0 / hist.size)


def _centre_weights(size: int) -> np.ndarray:
    ramp = 0.3 + 0.7 * np.sin(np.linspace(0.0, np.pi, size)) ** 0.5
    return np.outer(ramp, ramp).astype(np.float32)


_CENTRE_WEIGHTS = _centre_weights(WORK_SIZE)


def _soft_bin(values: np.ndarray, lo: float, hi: float, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation between bin centres: (lower bin, upper bin, weight of upper bin)."""
    pos = (np.clip(values, lo, hi) - lo) / (hi - lo) * bins - 0.5
    pos = np.clip(pos, 0.0, bins - 1.0)
    low = np.floor(pos).astype(np.int64)
    high = np.minimum(low + 1, bins - 1)
    return low, high, (pos - low).astype(np.float32)


def _lab_histogram(lab: np.ndarray) -> np.ndarray:
    weights = _CENTRE_WEIGHTS.reshape(-1)
    per_axis = [
        _soft_bin(lab[..., 0].reshape(-1), 0.0, 100.0, L_BINS),
        _soft_bin(lab[..., 1].reshape(-1), -AB_RANGE, AB_RANGE, A_BINS),
        _soft_bin(lab[..., 2].reshape(-1), -AB_RANGE, AB_RANGE, B_BINS),
    ]
    hist = np.zeros(COLOR_DIM, np.float64)
    for corner in range(8):
        index = np.zeros_like(weights, dtype=np.int64)
        w = weights.astype(np.float64)
        for axis, (low, high, frac) in enumerate(per_axis):
            take_high = (corner >> axis) & 1
            index = index * (L_BINS, A_BINS, B_BINS)[axis] + (high if take_high else low)
            w = w * (frac if take_high else 1.0 - frac)
        hist += np.bincount(index, weights=w, minlength=COLOR_DIM)
    return hist


def _texture_histograms(lightness: np.ndarray) -> np.ndarray:
    blocks = []
    level = lightness.astype(np.float32)
    for _ in range(SCALES):
        gx = cv2.Sobel(level, cv2.CV_32F, 1, 0, ksize=3) / 8.0
        gy = cv2.Sobel(level, cv2.CV_32F, 0, 1, ksize=3) / 8.0
        magnitude = np.hypot(gx, gy)
        angle = np.mod(np.arctan2(gy, gx), np.pi)
        side = level.shape[0] // CELLS
        for row in range(CELLS):
            for col in range(CELLS):
                cell = (slice(row * side, (row + 1) * side), slice(col * side, (col + 1) * side))
                blocks.append(_cell_histogram(magnitude[cell], angle[cell]))
        level = cv2.pyrDown(level)
    return np.concatenate(blocks) / np.sqrt(len(blocks))


def _cell_histogram(magnitude: np.ndarray, angle: np.ndarray) -> np.ndarray:
    magnitude = magnitude.reshape(-1).astype(np.float64)
    pos = angle.reshape(-1) / np.pi * ORIENTATION_BINS - 0.5
    low = np.floor(pos)
    frac = pos - low
    low = low.astype(np.int64) % ORIENTATION_BINS
    high = (low + 1) % ORIENTATION_BINS
    orientation = np.bincount(low, magnitude * (1 - frac), ORIENTATION_BINS)
    orientation += np.bincount(high, magnitude * frac, ORIENTATION_BINS)
    orientation += magnitude.size * STRENGTH_EDGES[0] / ORIENTATION_BINS  # flat cells: near uniform
    strength = np.bincount(np.digitize(magnitude, STRENGTH_EDGES), minlength=len(STRENGTH_EDGES) + 1)
    # both parts are unit vectors; the weights' squares sum to 1, so the cell is a unit vector
    return np.concatenate([
        np.sqrt(ORIENTATION_SHARE) * np.sqrt(_l1(orientation)),
        np.sqrt(1.0 - ORIENTATION_SHARE) * np.sqrt(_l1(strength.astype(np.float64))),
    ])
