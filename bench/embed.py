"""Embedding throughput per registry model, from JPEG bytes to unit vectors.

Run from the repository root:  .venv/bin/python bench/embed.py [--models clip-vit-b-32 ...] [--repeats 3]

For each model and batch size the same JPEG photos (640x480 synthetic scenes, ~60 KB) go through
vision.decode.decode_image, the model's preprocessing and the model, timed separately. Figures are
medians over --repeats runs after a warm-up batch. open_clip models whose weights are not on this
machine are built with random weights (same architecture, same compute) and marked "random".
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vision.decode import decode_image  # noqa: E402
from vision.registry import REGISTRY, load_embedder  # noqa: E402
from vision.synthetic import make_scene  # noqa: E402


def jpeg_photos(count: int) -> list[bytes]:
    photos = []
    for seed in range(count):
        out = io.BytesIO()
        make_scene(seed).image.save(out, format="JPEG", quality=90)
        photos.append(out.getvalue())
    return photos


def run_once(embedder, photos: list[bytes], batch_size: int) -> dict:
    decode_s = preprocess_s = model_s = 0.0
    for start in range(0, len(photos), batch_size):
        batch = photos[start : start + batch_size]
        t0 = time.perf_counter()
        images = [decode_image(data).image for data in batch]
        t1 = time.perf_counter()
        if hasattr(embedder, "preprocess_images"):
            pixels = embedder.preprocess_images(images)
            t2 = time.perf_counter()
            embedder.embed_preprocessed(pixels)
        else:  # the weights-free embedder has no separate preprocessing step
            t2 = t1
            embedder.embed_images(images)
        t3 = time.perf_counter()
        decode_s += t1 - t0
        preprocess_s += t2 - t1
        model_s += t3 - t2
    return {"decode": decode_s, "preprocess": preprocess_s, "model": model_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(REGISTRY))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--images", type=int, default=16, help="photos per timed run (rounded up to the batch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    photos = jpeg_photos(max(args.images, max(args.batch_sizes)))
    print(f"{len(photos)} JPEG photos 640x480, mean {statistics.mean(map(len, photos)) / 1024:.0f} KB; "
          f"median of {args.repeats} runs per row")
    header = (f"{'model':18} {'weights':10} {'device':6} {'batch':>5} {'img/s':>7} {'ms/img':>7} "
              f"{'decode':>7} {'prep':>7} {'model':>7} {'outside model':>13}")
    print(header)
    for key in args.models:
        embedder = load_embedder(key, allow_random_weights=True, device=args.device, threads=args.threads)
        if REGISTRY[key].family == "handcrafted":
            weights = "none"
        else:
            weights = "pretrained" if embedder.pretrained else "random"
        for batch_size in args.batch_sizes:
            count = max(args.images, batch_size)
            count = -(-count // batch_size) * batch_size
            work = (photos * (count // len(photos) + 1))[:count]
            run_once(embedder, work[:batch_size], batch_size)  # warm-up
            runs = [run_once(embedder, work, batch_size) for _ in range(args.repeats)]
            totals = [sum(run.values()) for run in runs]
            median_run = runs[totals.index(statistics.median_low(totals))]
            total = sum(median_run.values())
            per_image = {phase: seconds / count * 1000 for phase, seconds in median_run.items()}
            outside = (median_run["decode"] + median_run["preprocess"]) / total
            print(f"{key:18} {weights:10} {embedder.device:6} {batch_size:5d} {count / total:7.1f} "
                  f"{total / count * 1000:7.1f} {per_image['decode']:7.1f} {per_image['preprocess']:7.1f} "
                  f"{per_image['model']:7.1f} {outside:13.0%}")


if __name__ == "__main__":
    main()
