from shop.settings.env import env

# A registry key from vision/registry.py, or "auto": clip-vit-b-32 when its weights are on this
# machine, otherwise the weights-free colour-and-texture embedder.
VISION_MODEL = env.str("VISION_MODEL", default="auto")
VISION_WEIGHTS_PATH = env.str("VISION_WEIGHTS_PATH", default="") or None
# Development only: build open_clip models with random weights when no weights can be had.
VISION_ALLOW_RANDOM_WEIGHTS = env.bool("VISION_ALLOW_RANDOM_WEIGHTS", default=False)
VISION_DEVICE = env.str("VISION_DEVICE", default="") or None
VISION_THREADS = env.int("VISION_THREADS", default=0) or None
