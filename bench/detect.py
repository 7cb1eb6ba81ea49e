"""Item-detector benchmark on generated multi-item scenes: recall at IoU 0.5 and latency.

Run from the repository root:  .venv/bin/python bench/detect.py [--scenes 100] [--items 3]

Each scene comes from vision.synthetic.make_scene(seed) with known item boxes. A ground-truth item
counts as found when any returned box overlaps it with IoU >= 0.5. Two references are measured in
the same run, on the same scenes: "whole image only" (what a search without detection would use)
and "single contour" (Otsu threshold of the grey image, largest outer contour, plus the whole
image), printed as ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from vision.detect import box_iou, detect  # noqa: E402
from vision.synthetic import list_background_photos, make_scene  # noqa: E402


def whole_image_only(image):
    return [(0, 0, image.width, image.height)]


def single_contour(image):
    grey = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2GRAY)
    _, binary = cv2.threshold(cv2.GaussianBlur(grey, (5, 5), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    boxes = [(0, 0, image.width, image.height)]
    for candidate in (binary, 255 - binary):  # the item may be the darker or the lighter side
        contours, _ = cv2.findContours(candidate, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        inner = [c for c in contours if cv2.contourArea(c) < 0.85 * grey.size]
        if inner:
            x, y, w, h = cv2.boundingRect(max(inner, key=cv2.contourArea))
            boxes.append((x, y, x + w, y + h))
    return boxes


def ours(image, max_items):
    return [item.box for item in detect(image, max_items=max_items)]


def evaluate(name, propose, scenes):
    found = total = proposals = 0
    latencies = []
    for scene in scenes:
        start = time.perf_counter()
        boxes = propose(scene.image)
        latencies.append((time.perf_counter() - start) * 1000)
        proposals += len(boxes)
        for item in scene.items:
            total += 1
            found += any(box_iou(item.box, box) >= 0.5 for box in boxes)
    latencies.sort()
    return {
        "name": name,
        "recall": found / max(total, 1),
        "found": found,
        "total": total,
        "boxes_per_image": proposals / max(len(scenes), 1),
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--items", type=int, default=3, help="items per scene")
    parser.add_argument("--max-items", type=int, default=8, help="detect(max_items=...), whole image included")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--photos", default="", help="directory of background photos (default: procedural)")
    args = parser.parse_args()

    photos = list_background_photos(args.photos) if args.photos else []
    cv2.setNumThreads(1)
    scenes = [
        make_scene(args.first_seed + i, n_items=args.items, background_paths=photos or None)
        for i in range(args.scenes)
    ]
    detect(scenes[0].image)  # warm-up
    results = [
        evaluate("detect()", lambda image: ours(image, args.max_items), scenes),
        evaluate("whole image only", whole_image_only, scenes),
        evaluate("single contour (Otsu) + whole", single_contour, scenes),
    ]
    backgrounds = "photos from " + args.photos if photos else "procedural backgrounds"
    print(f"{args.scenes} scenes x {args.items} items, 640x480, {backgrounds}; recall at IoU 0.5")
    print(f"{'method':32} {'recall':>7} {'found':>9} {'boxes/img':>9} {'p50 ms':>8} {'p95 ms':>8}")
    for r in results:
        print(f"{r['name']:32} {r['recall']:7.3f} {r['found']:>4}/{r['total']:<4} {r['boxes_per_image']:9.1f} "
              f"{r['p50_ms']:8.1f} {r['p95_ms']:8.1f}")
    mine = results[0]["recall"]
    for reference in results[1:]:
        if reference["recall"]:
            print(f"recall ratio detect() / {reference['name']}: {mine / reference['recall']:.2f}x")
        else:
            print(f"recall ratio detect() / {reference['name']}: undefined (the reference found no item)")


if __name__ == "__main__":
    main()
