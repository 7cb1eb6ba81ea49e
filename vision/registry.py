"""The model registry: registry keys, where weights come from, and cached loading.

A registry key (`clip-vit-b-32`, ...) names everything a stored vector depends on: the open_clip
architecture, the pretrained tag whose preprocessing it uses and the vector dimension. Changing
the key is a planned re-index.

Weights for an open_clip model are looked for, in order:

1. `weights_path` (the project passes the `VISION_WEIGHTS_PATH` setting): a checkpoint file
   (`.safetensors`, `.bin`, `.pt`, `.pth`; a state dict, possibly under "state_dict") or a
   directory holding one (e.g. `open_clip_model.safetensors`). A path that is given but missing or
   that does not fit the architecture raises `WeightsUnavailable` -- it never falls through.
2. The Hugging Face hub cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`,
   read when called), for the spec's `hf_hub_id`. Only files already in the cache are used: loading
   never touches the network, so it behaves the same with and without `HF_HUB_OFFLINE=1`. Fill
   the cache ahead of time with `prefetch_weights(key)` (which honours `HF_HUB_OFFLINE`).

When neither has the weights, `load_embedder` raises `WeightsUnavailable` saying how to provide
them, unless `allow_random_weights=True` (the project's `VISION_ALLOW_RANDOM_WEIGHTS`): then the
model is built with random weights from a fixed seed, `pretrained=False`, and a WARNING is
logged. `tiny-test` is random by design (unless a checkpoint is given) and `color-texture-v1`
has no weights at all.

Torch and open_clip are imported only when a model is loaded: `get_spec`, `weights_available`
and `model_status` are cheap enough for a readiness probe.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from vision.embedders import DEFAULT_BATCH_SIZE, Embedder, OpenClipEmbedder

logger = logging.getLogger(__name__)

RANDOM_WEIGHTS_SEED = 0
WEIGHTS_PATH_ENV = "VISION_WEIGHTS_PATH"
ALLOW_RANDOM_WEIGHTS_ENV = "VISION_ALLOW_RANDOM_WEIGHTS"
HUB_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
TINY_TEST_ARCHITECTURE = "vision-tiny-test"
_TINY_TEST_CONFIG = Path(__file__).with_name("model_configs") / f"{TINY_TEST_ARCHITECTURE}.json"


@dataclass(frozen=True)
class ModelSpec:
    key: str
    family: str  # 'open_clip' | 'handcrafted'
    architecture: str  # open_clip model config name, or a description for handcrafted
    pretrained_tag: str | None  # open_clip pretrained tag: its preprocessing is used
    hf_hub_id: str | None  # Hugging Face repo holding the weights
    dim: int
    image_size: int
    description: str
    supports_text: bool


REGISTRY: MappingProxyType[str, ModelSpec] = MappingProxyType(
    {
        spec.key: spec
        for spec in (
            ModelSpec(
                key="clip-vit-b-32",
                family="open_clip",
                architecture="ViT-B-32",
                pretrained_tag="laion2b_s34b_b79k",
                hf_hub_id="laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
                dim=512,
                image_size=224,
                description="OpenCLIP ViT-B/32 trained on LAION-2B; the default balance of speed and quality.",
                supports_text=True,
            ),
            ModelSpec(
                key="clip-vit-b-16",
                family="open_clip",
                architecture="ViT-B-16",
                pretrained_tag="laion2b_s34b_b88k",
                hf_hub_id="laion/CLIP-ViT-B-16-laion2B-s34B-b88K",
                dim=512,
                image_size=224,
                description="OpenCLIP ViT-B/16 trained on LAION-2B; finer detail, about 4x the compute of B/32.",
                supports_text=True,
            ),
            ModelSpec(
                key="mobileclip2-s0",
                family="open_clip",
                architecture="MobileCLIP2-S0",
                pretrained_tag="dfndr2b",
                hf_hub_id="timm/MobileCLIP2-S0-OpenCLIP",
                dim=512,
                image_size=256,
                description="Apple MobileCLIP2-S0 (FastViT image tower, re-parameterised for inference); fast on CPU.",
                supports_text=True,
            ),
            ModelSpec(
                key="tiny-test",
                family="open_clip",
                architecture=TINY_TEST_ARCHITECTURE,
                pretrained_tag=None,
                hf_hub_id=None,
                dim=64,
                image_size=64,
                description="Tiny ViT + text tower with random weights (fixed seed), for tests. Not semantic.",
                supports_text=True,
            ),
            ModelSpec(
                key="color-texture-v1",
                family="handcrafted",
                architecture="lab-histogram+gradient-orientation",
                pretrained_tag=None,
                hf_hub_id=None,
                dim=512,
                image_size=128,
                description="Weights-free colour (CIE Lab) and texture (gradient orientation) histograms.",
                supports_text=False,
            ),
        )
    }
)


class UnknownModel(KeyError):
    def __init__(self, key: str):
        self.key = key
        self.message = f"Unknown model key {key!r}; valid keys: {', '.join(sorted(REGISTRY))}."
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class WeightsUnavailable(RuntimeError):
    """The model's weights are neither at the configured path nor in the hub cache."""


def get_spec(key: str) -> ModelSpec:
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownModel(key) from None


def hub_cache_dir() -> str:
    """The Hugging Face hub cache directory, from the environment at call time."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return os.path.expanduser(explicit)
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return os.path.join(os.path.expanduser(hf_home), "hub")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def weights_available(key: str, *, weights_path: str | None = None) -> bool:
    """Whether `load_embedder(key, weights_path=...)` would find what it needs without random weights.

    Looks at the local path and the hub cache's files only: no network, no model construction.
    True for `tiny-test` (random by design) and the weights-free embedder.
    """
    spec = get_spec(key)
    try:
        source, _ = _locate_weights(spec, weights_path)
    except WeightsUnavailable:
        return False
    return source != "none"


def model_status(key: str, *, weights_path: str | None = None, allow_random_weights: bool = False) -> dict:
    """What loading `key` gives or would give, without loading anything heavy.

    `pretrained` is None until the model is loaded in this process. `weights_source` is where the
    weights come (or would come) from: 'checkpoint', 'hub-cache', 'random', 'none (weights-free)',
    or 'unavailable' when loading would raise `WeightsUnavailable`. `ready` is False exactly then.
    """
    spec = get_spec(key)
    status = {
        "key": spec.key,
        "family": spec.family,
        "architecture": spec.architecture,
        "dim": spec.dim,
        "supports_text": spec.supports_text,
        "pretrained": None,
        "weights_source": "unavailable",
        "loaded": False,
        "device": None,
        "ready": False,
        "message": "",
    }
    with _LOCK:
        failed = _FAILED_LOADS.get((spec.key, _normalise_path(weights_path)))
    if failed:  # the file is there, but it did not load: not ready, whatever its presence says
        status["message"] = failed
        return status
    loaded = _loaded_embedder(key, weights_path)
    if loaded is not None:
        status.update(
            pretrained=loaded.pretrained,
            weights_source=loaded.weights_source,
            loaded=True,
            device=loaded.device,
            ready=True,
            message=_provenance_message(spec, loaded.weights_source),
        )
        return status
    try:
        source, _ = _locate_weights(spec, weights_path)
    except WeightsUnavailable as exc:
        status["message"] = str(exc)
        return status
    if source == "none":
        if allow_random_weights:
            source = "random"
        else:
            status["message"] = _missing_weights_message(spec, weights_path)
            return status
    status.update(weights_source=source, ready=True, message=_provenance_message(spec, source))
    if spec.family == "handcrafted":
        status.update(pretrained=False, device="cpu")
    return status


def load_embedder(
    key: str,
    *,
    weights_path: str | None = None,
    allow_random_weights: bool = False,
    device: str | None = None,
    threads: int | None = None,
) -> Embedder:
    """The embedder for `key`, built once per process and options (thread-safe, lazy)."""
    spec = get_spec(key)
    if spec.family == "handcrafted":
        from vision.handcrafted import ColorTextureEmbedder

        return ColorTextureEmbedder()

    import torch

    if threads:
        torch.set_num_threads(threads)
    resolved_device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cache_key = (key, _normalise_path(weights_path), bool(allow_random_weights), resolved_device)
    with _LOCK:
        embedder = _EMBEDDERS.get(cache_key)
    if embedder is not None:
        return embedder
    # Building takes seconds (a checkpoint read, a ViT built): under its own lock, so that one build
    # runs at a time while model_status (/readyz, admin) reads the cache without waiting for it.
    with _BUILD_LOCK:
        with _LOCK:
            embedder = _EMBEDDERS.get(cache_key)
        if embedder is None:
            embedder = _build_open_clip(spec, weights_path, allow_random_weights, resolved_device)
            with _LOCK:
                _EMBEDDERS[cache_key] = embedder
        return embedder


def prefetch_weights(key: str) -> str:
    """Download the spec's weights into the hub cache (for image builds); returns the file path.

    The only function here that uses the network. Raises `WeightsUnavailable` when `HF_HUB_OFFLINE`
    is set and the file is not cached yet.
    """
    spec = get_spec(key)
    if not spec.hf_hub_id:
        raise WeightsUnavailable(f"{key} has no hub weights to fetch.")
    cached = _hub_cached_file(spec.hf_hub_id)
    if cached:
        return cached
    if hub_offline():
        raise WeightsUnavailable(
            f"HF_HUB_OFFLINE is set and {spec.hf_hub_id} is not in the hub cache {hub_cache_dir()}."
        )
    from huggingface_hub import hf_hub_download

    errors = []
    for filename in HUB_WEIGHT_FILES:
        try:
            return hf_hub_download(spec.hf_hub_id, filename, cache_dir=hub_cache_dir())
        except Exception as exc:  # the hub client raises many types; report them all below
            errors.append(f"{filename}: {exc}")
    raise WeightsUnavailable(f"Could not download {spec.hf_hub_id}: {'; '.join(errors)}")


def clear_loaded_models() -> None:
    """Forget every cached embedder and failed load (tests, or a worker switching models)."""
    with _LOCK:
        _EMBEDDERS.clear()
        _FAILED_LOADS.clear()


_LOCK = threading.Lock()  # the two dicts below; held for a lookup or an insert, never for a build
_BUILD_LOCK = threading.Lock()  # one model build at a time in a process
_EMBEDDERS: dict[tuple, Embedder] = {}
# (key, weights path) -> why its checkpoint would not load, in this process: /readyz and admin say so
# instead of "ready" because the file exists (each scan tried the load again and failed "internal error")
_FAILED_LOADS: dict[tuple, str] = {}


def _loaded_embedder(key: str, weights_path: str | None) -> Embedder | None:
    path = _normalise_path(weights_path)
    with _LOCK:
        for (loaded_key, loaded_path, _, _), embedder in _EMBEDDERS.items():
            if loaded_key == key and loaded_path == path:
                return embedder
    return None


def _normalise_path(path: str | os.PathLike | None) -> str | None:
    return os.path.abspath(os.path.expanduser(os.fspath(path))) if path else None


def _locate_weights(spec: ModelSpec, weights_path: str | None) -> tuple[str, str | None]:
    """('checkpoint'|'hub-cache'|'random'|'none (weights-free)'|'none', file) without loading anything."""
    if spec.family == "handcrafted":
        return "none (weights-free)", None
    if weights_path:
        return "checkpoint", _checkpoint_file(spec, weights_path)
    if spec.hf_hub_id:
        cached = _hub_cached_file(spec.hf_hub_id)
        if cached:
            return "hub-cache", cached
    if spec.key == "tiny-test":
        return "random", None
    return "none", None


def _checkpoint_file(spec: ModelSpec, weights_path: str) -> str:
    path = Path(_normalise_path(weights_path))
    if path.is_file():
        return str(path)
    if path.is_dir():
        preferred = HUB_WEIGHT_FILES + ("open_clip_pytorch_model.safetensors", "model.safetensors", "pytorch_model.bin")
        for name in preferred:
            if (path / name).is_file():
                return str(path / name)
        found = sorted(p for p in path.iterdir() if p.suffix in CHECKPOINT_SUFFIXES and p.is_file())
        if len(found) == 1:
            return str(found[0])
        raise WeightsUnavailable(
            f"{WEIGHTS_PATH_ENV}={weights_path} is a directory with "
            f"{'no' if not found else 'several'} checkpoint files for {spec.key}; "
            f"point it at one file ({', '.join(CHECKPOINT_SUFFIXES)})."
        )
    raise WeightsUnavailable(f"{WEIGHTS_PATH_ENV}={weights_path} does not exist (model {spec.key}).")


def _hub_cached_file(repo_id: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in HUB_WEIGHT_FILES:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir())
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _missing_weights_message(spec: ModelSpec, weights_path: str | None) -> str:
    return (
        f"No weights for model {spec.key!r} ({spec.architecture}, pretrained tag {spec.pretrained_tag}). "
        f"Provide them in one of these ways: "
        f"(1) set {WEIGHTS_PATH_ENV} to a local open_clip checkpoint file or a directory holding "
        f"{HUB_WEIGHT_FILES[0]}; "
        f"(2) pre-download the Hugging Face repo {spec.hf_hub_id} into the hub cache {hub_cache_dir()} "
        f"(e.g. `huggingface-cli download {spec.hf_hub_id} {HUB_WEIGHT_FILES[0]}` or "
        f"`python -c \"from vision.registry import prefetch_weights; prefetch_weights('{spec.key}')\"` "
        f"on a machine with internet, then copy the cache); "
        f"(3) for development only, set {ALLOW_RANDOM_WEIGHTS_ENV}=true to run with random weights "
        f"(results will not be meaningful)."
    )


def _provenance_message(spec: ModelSpec, source: str) -> str:
    if source == "random":
        why = "by design" if spec.key == "tiny-test" else f"because {ALLOW_RANDOM_WEIGHTS_ENV} is on"
        return f"{spec.key} runs with RANDOM weights ({why}); its vectors carry no meaning."
    if source == "none (weights-free)":
        return f"{spec.key} is weights-free (colour and texture only; no text search)."
    return f"{spec.key} uses pretrained weights from the {source}."


def _register_tiny_test_architecture() -> None:
    import open_clip

    if TINY_TEST_ARCHITECTURE not in open_clip.list_models():
        open_clip.add_model_config(_TINY_TEST_CONFIG)


def _build_open_clip(spec: ModelSpec, weights_path: str | None, allow_random: bool, device: str) -> OpenClipEmbedder:
    import open_clip
    import torch
    from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict

    _register_tiny_test_architecture()
    source, checkpoint = _locate_weights(spec, weights_path)
    if source == "none":
        if not allow_random:
            raise WeightsUnavailable(_missing_weights_message(spec, weights_path))
        source = "random"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        import pickle

        from safetensors import SafetensorError

        try:
            model = open_clip.create_model(spec.architecture, pretrained=checkpoint, weights_only=True)
        except (RuntimeError, OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError,
                SafetensorError) as exc:  # a corrupt or foreign file: named, and remembered (model_status)
            message = (f"The checkpoint {checkpoint} ({source}) could not be loaded into {spec.architecture} "
                       f"for model {spec.key}: {type(exc).__name__}: {exc}")
            with _LOCK:
                _FAILED_LOADS[(spec.key, _normalise_path(weights_path))] = message
            raise WeightsUnavailable(message) from exc
    if source == "random":
        log = logger.info if spec.key == "tiny-test" else logger.warning
        log("%s", _provenance_message(spec, source))
    else:
        logger.info("Loaded %s weights for %s from %s", source, spec.key, checkpoint)
    model.eval()
    if "timm_model_name" in (open_clip.get_model_config(spec.architecture) or {}).get("vision_cfg", {}):
        from timm.utils import reparameterize_model

        model = reparameterize_model(model, inplace=True)  # fuse MobileOne/FastViT branches; same outputs
    model.to(device)

    preprocess_cfg = merge_preprocess_dict(PreprocessCfg(), model.visual.preprocess_cfg)
    if spec.pretrained_tag:
        preprocess_cfg = merge_preprocess_dict(
            preprocess_cfg, open_clip.get_pretrained_cfg(spec.architecture, spec.pretrained_tag)
        )
    preprocess_cfg["size"] = model.visual.preprocess_cfg["size"]
    return OpenClipEmbedder(
        key=spec.key,
        model=model,
        preprocess=image_transform_v2(PreprocessCfg(**preprocess_cfg), is_train=False),
        tokenizer=open_clip.get_tokenizer(spec.architecture),
        dim=spec.dim,
        pretrained=source in ("checkpoint", "hub-cache"),
        weights_source=source,
        device=device,
        batch_size=DEFAULT_BATCH_SIZE,
    )
