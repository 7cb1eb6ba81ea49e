"""Embedders turn images (and, for CLIP models, text) into L2-normalised float32 vectors.

Every embedder satisfies the `Embedder` protocol. Instances come from
`vision.registry.load_embedder`, which decides where the weights come from; this module only
runs models. Torch is imported lazily so the weights-free embedder works in processes that never
load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

DEFAULT_BATCH_SIZE = 32


class TextNotSupported(Exception):
    """The embedder has no text tower (for example the weights-free colour/texture embedder)."""


@runtime_checkable
class Embedder(Protocol):
    key: str  # registry key the vectors belong to
    dim: int
    pretrained: bool  # False: random or no learned weights; results carry no semantics
    weights_source: str  # 'checkpoint' | 'hub-cache' | 'random' | 'none (weights-free)'
    device: str
    supports_text: bool

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """float32 [n, dim], each row of unit L2 norm."""
        ...

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, dim], each row of unit L2 norm; raises TextNotSupported without a text tower."""
        ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class OpenClipEmbedder:
    """An open_clip model in eval mode with its image transform and tokenizer."""

    supports_text = True

    def __init__(
        self,
        *,
        key: str,
        model: "torch.nn.Module",
        preprocess: Callable[[Image.Image], "torch.Tensor"],
        tokenizer: Callable[[Sequence[str]], "torch.Tensor"],
        dim: int,
        pretrained: bool,
        weights_source: str,
        device: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ):
        self.key = key
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.dim = dim
        self.pretrained = pretrained
        self.weights_source = weights_source
        self.device = device
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return (
            f"OpenClipEmbedder(key={self.key!r}, dim={self.dim}, pretrained={self.pretrained}, "
            f"weights_source={self.weights_source!r}, device={self.device!r})"
        )

    def preprocess_images(self, images: Sequence[Image.Image]) -> "torch.Tensor":
        """Resize, crop and normalise on the CPU: float32 [n, 3, H, W]. Exposed for benchmarks."""
        import torch

        return torch.stack([self.preprocess(_rgb(image)) for image in images])

    def embed_preprocessed(self, pixels: "torch.Tensor") -> np.ndarray:
        """Run the image tower on an already preprocessed batch (split into `batch_size` chunks)."""
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, pixels.shape[0], self.batch_size):
                chunk = pixels[start : start + self.batch_size].to(self.device)
                out.append(self.model.encode_image(chunk).float().cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        parts = [
            self.embed_preprocessed(self.preprocess_images(images[start : start + self.batch_size]))
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = list(texts)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(texts[start : start + self.batch_size]).to(self.device)
                out.append(self.model.encode_text(tokens).float().cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")

