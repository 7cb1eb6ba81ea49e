"""Pure-Python vision core: safe decoding, model registry, embedders, item detection, colours.

No Django imports here or below: the Django side configures this package only through function
arguments (see the adapter module on the Django side). Modules:

- vision.decode      decode_image / encode_clean_jpeg and the typed ImageRejected errors
- vision.registry    registry keys, weight lookup (checkpoint path, hub cache), load_embedder, model_status
- vision.embedders   the Embedder protocol and the open_clip embedder
- vision.handcrafted the weights-free colour/texture embedder (color-texture-v1)
- vision.detect      weights-free item detection with optional zero-shot labels
- vision.colors      dominant colours named from a fixed palette
- vision.synthetic   deterministic multi-item scenes with known boxes (tests, benchmarks)

Submodules are imported explicitly (`from vision.decode import decode_image`) so that importing one
does not pull in torch.
"""
