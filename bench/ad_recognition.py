"""Ad-creative recognition benchmark: accuracy, false accepts and scan latency of vision.creatives.

What it measures (figures, not pass/fail; see the README's "Ad scans" section):

* data (vision.adgen, seeded): ``--creatives`` ad creatives over ``--templates`` retailer templates
  (creative i is seed i // T of template i % T), ``--queries`` phone photos of them (creative q % N,
  photo seed q), and ``--negatives`` photos showing no registered creative: half are pages of the
  same templates with other content (``make_unregistered_page``), half magazine pages with no
  template (``make_plain_page``). Photo conditions: ``--difficulty`` (default ``hard``: each
  condition drawn uniformly over the whole operating range: tilt up to 45 degrees, any in-plane
  rotation, apparent size 0.3-1 of the frame, up to 40 % hidden, blur, glare, noise, JPEG 50-90);
* on the N-creative index: top-1 accuracy, wrong-creative rate and "no answer" rate, false
  accepts (templated and plain apart), corner error of the returned homography, accuracy by
  recognisability rating (stars, from ``rate_recognisability``) and by the page's size in the
  photo; creatives verified per scan;
* the reference, in the same run: exhaustive verification of every creative (no shortlist) on a
  subset, as an accuracy comparison and a latency ratio;
* scan latency (feature extraction + match, one scan at a time, one thread) p50/p95 with N
  creatives and with ``--filler`` creatives in all (and what a fresh worker does instead of building
  the large index: a snapshot written and loaded, against the build's time): cheap filler creatives from 50 more templates
  at 300x400 pixels (features at most 400 each) fill the index up to that size; accuracy and false
  accepts are measured at that size too;
* process layouts of a worker at that size under full load: one or two processes, OpenCV and FAISS
  on one or two threads each (``vision.threads``), p50/p95 per scan and scans per second;
* the memory of two pool processes sharing that snapshot's index, loaded before the fork, against
  each reading it (``bench/index_sharing.py``, on the snapshot and 20 photos left in the cache).

Generated features (with each photo's grey image, losslessly, for the matcher's look in place), photos
for the latency runs and the built large index are cached under
``bench/out/ad_recognition/`` (keyed by the sizes and a hash of vision/adgen.py and
vision/creatives.py), so a second run only measures. Generation runs in ``--workers`` processes.

Usage::

    .venv/bin/python bench/ad_recognition.py            # 200 creatives, 1000 + 500 photos, 10,000 in the index
    .venv/bin/python bench/ad_recognition.py --small    # 40 creatives, 200 + 100 photos, 1,000 in the index
    .venv/bin/python bench/ad_recognition.py --photo-set 2 --filler 0   # photos never used for tuning
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one scan, one thread
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NamedTuple  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from vision import adgen  # noqa: E402
from vision.creative_snapshots import read_snapshot, write_snapshot  # noqa: E402
from vision.memory import retain_freed_memory  # noqa: E402
from vision.threads import use_threads  # noqa: E402
from vision.creatives import (  # noqa: E402
    CreativeFeatures,
    CreativeIndex,
    MatcherConfig,
    extract_features,
    extract_photo_features,
    rate_recognisability,
)

OUT = ROOT / "bench" / "out" / "ad_recognition"
FILLER_TEMPLATES = 50
FILLER_SIZE = (300, 400)
FILLER_MAX_FEATURES = 400


def _data_key() -> str:
    """Generated data depends on the generators and the feature extraction settings only."""
    from vision import creatives

    digest = hashlib.sha1()
    for name in ("vision/adgen.py", "vision/synthetic.py"):
        digest.update((ROOT / name).read_bytes())
    digest.update(repr((creatives.FEATURES_VERSION, creatives.CREATIVE_MAX_SIDE, creatives.CREATIVE_MAX_FEATURES,
                        creatives.PHOTO_MAX_SIDE, creatives.PHOTO_MAX_FEATURES, creatives.SIFT_CONTRAST,
                        creatives.PHOTO_SIFT_CONTRAST)).encode())
    return digest.hexdigest()[:10]


def _index_key() -> str:
    """A built index also depends on the matcher's code."""
    return hashlib.sha1((ROOT / "vision/creatives.py").read_bytes()).hexdigest()[:10]


def _single_thread() -> None:
    use_threads(1)
    retain_freed_memory()  # as the Celery workers do (shop/celery.py)


# --- data generation (in worker processes) ---------------------------------------------------------


def _creative_id(index: int, templates: int) -> str:
    return f"t{index % templates}/c{index // templates}"


def _make_creative(args):
    index, templates = args
    template = adgen.make_template(index % templates)
    creative = adgen.make_creative(template, index // templates)
    return index, extract_features(creative.image).to_bytes(), creative.detail


def _photos_of_creative(args):
    """All query photos of one creative: (query number, features, true homography, page scale, jpeg)."""
    index, templates, query_numbers, difficulty, keep_jpeg = args
    template = adgen.make_template(index % templates)
    image = adgen.make_creative(template, index // templates).image
    out = []
    for q in query_numbers:
        photo, homography = adgen.photograph(image, q, difficulty=difficulty)
        features = extract_photo_features(photo)
        out.append((q, features.to_bytes(), homography, _apparent_scale(homography, image.size,
                    photo.size), adgen.visible_fraction(homography, image.size, photo.size),
                    _jpeg(photo) if q in keep_jpeg else None, _png(features.grey)))
    return out


def _negative_photo(args):
    number, templates, difficulty, keep = args
    if number % 2 == 0:
        kind = "templated"
        page = adgen.make_unregistered_page(adgen.make_template((number // 2) % templates), number // 2)
    else:
        kind = "plain"
        page = adgen.make_plain_page(number // 2)
    photo, _ = adgen.photograph(page, 1_000_000 + number, difficulty=difficulty)
    features = extract_photo_features(photo)
    return number, kind, features.to_bytes(), _jpeg(photo) if keep else None, _png(features.grey)


def _make_filler(index: int):
    template = adgen.make_template(1000 + index % FILLER_TEMPLATES, size=FILLER_SIZE)
    image = adgen.make_creative(template, index // FILLER_TEMPLATES).image
    return index, extract_features(image, max_side=max(FILLER_SIZE), max_features=FILLER_MAX_FEATURES).to_bytes()


def _apparent_scale(homography, page_size, photo_size) -> float:
    quad = adgen.project(homography, adgen.page_corners(page_size)).astype(np.float32)
    fill = min(photo_size[0] / page_size[0], photo_size[1] / page_size[1]) ** 2 * page_size[0] * page_size[1]
    return float(np.sqrt(abs(cv2.contourArea(quad)) / fill))


def _jpeg(photo: Image.Image) -> bytes:
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _png(grey: np.ndarray) -> bytes:
    """The photo's grey image as the matcher saw it, losslessly (its look in place reads it)."""
    return cv2.imencode(".png", grey, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()


def _photo_features(data: bytes, png: bytes) -> CreativeFeatures:
    features = CreativeFeatures.from_bytes(data)
    features.grey = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    return features


def _run_pool(function, jobs, workers: int, desc: str):
    results = []
    if workers <= 1:
        _single_thread()
        for job in tqdm(jobs, desc=desc, unit="job"):
            results.append(function(job))
        return results
    with multiprocessing.get_context("fork").Pool(workers, initializer=_single_thread) as pool:
        for result in tqdm(pool.imap_unordered(function, jobs, chunksize=4), total=len(jobs), desc=desc, unit="job"):
            results.append(result)
    return results


def _cached(path: Path, build):
    if path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return value


# --- evaluation ------------------------------------------------------------------------------------


def _percentiles(values) -> tuple[float, float]:
    if not len(values):
        return float("nan"), float("nan")
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def evaluate(index: CreativeIndex, queries, negatives, creatives_size, desc: str) -> dict:
    """Match precomputed photo features; accuracy, false accepts, corner errors, match times."""
    outcomes, corner_errors, match_ms, verified = [], [], [], []
    for q in tqdm(queries, desc=desc, unit="photo"):
        start = time.perf_counter()
        report = index.explain(q["features"])
        match_ms.append((time.perf_counter() - start) * 1000)
        verified.append(len(report.candidates))
        match = report.match
        if match is None:
            outcomes.append("none")
        elif match.creative_id == q["truth"]:
            outcomes.append("right")
            corners = adgen.page_corners(creatives_size)
            error = np.abs(adgen.project(match.homography, corners) - adgen.project(q["homography"], corners)).max()
            corner_errors.append(float(error))
        else:
            outcomes.append("wrong")
    accepted = defaultdict(list)
    for n in tqdm(negatives, desc=desc + " (no ad)", unit="photo"):
        start = time.perf_counter()
        report = index.explain(n["features"])
        match_ms.append((time.perf_counter() - start) * 1000)
        verified.append(len(report.candidates))
        accepted[n["kind"]].append(report.match is not None)
    return {"outcomes": outcomes, "corner_errors": corner_errors, "match_ms": match_ms, "verified": verified,
            "accepted": {kind: values for kind, values in accepted.items()}}


class Scans(NamedTuple):
    total: list[float]  # ms per scan
    extraction: list[float]  # ... of which feature extraction
    began: float  # wall clock (time.time()) at the first timed scan's start and at the last one's end
    ended: float


def scan_latency(index: CreativeIndex, images: list[Image.Image], desc: str | None) -> Scans:
    """Full scans one at a time, after a warm-up scan of the first photo (`desc` None: no progress bar)."""
    total, extraction = [], []
    index.match(images[0])  # warm-up (its pages, its threads)
    began = time.time()
    for image in tqdm(images, desc=desc, unit="scan", disable=desc is None):
        start = time.perf_counter()
        features = extract_photo_features(image)
        middle = time.perf_counter()
        index.match(features)
        end = time.perf_counter()
        total.append((end - start) * 1000)
        extraction.append((middle - start) * 1000)
    return Scans(total, extraction, began, time.time())


LAYOUTS = ((1, 1), (1, 2), (2, 1), (2, 2))  # (worker processes, OpenCV and FAISS threads each)
_LAYOUT_STATE: dict = {}  # what the forked layout processes read (the index and photos, shared copy-on-write)


def _layout_scans(job) -> Scans:
    """In a forked process: `threads` for OpenCV and FAISS, then every `step`-th photo from `first`."""
    threads, first, step = job
    use_threads(threads)
    return scan_latency(_LAYOUT_STATE["index"], _LAYOUT_STATE["images"][first::step], None)


def process_layouts(index: CreativeIndex, images: list[Image.Image]) -> dict:
    """Full scans (features and match) in each layout of a 2-core worker: one or two processes, each
    giving OpenCV and FAISS one or two threads, every process scanning its share of the photos at
    once (the worker under full load). Per layout: p50/p95 ms per scan and scans per second over the
    time all processes took. (1, 2) is what one scan at a time gets from both cores; (2, 2) is a
    worker that leaves the libraries' defaults (one thread per core in each process)."""
    _LAYOUT_STATE.update(index=index, images=images)
    figures = {}
    try:
        for processes, threads in LAYOUTS:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                parts = pool.map(_layout_scans, [(threads, first, processes) for first in range(processes)])
            times = [t for part in parts for t in part.total]
            wall = max(part.ended for part in parts) - min(part.began for part in parts)
            p50, p95 = _percentiles(times)
            figures[f"{processes}x{threads}"] = {"p50": p50, "p95": p95, "scans_per_s": len(times) / wall}
            print(f"{processes} process(es) x {threads} thread(s): p50 {p50:4.0f} ms  p95 {p95:4.0f} ms  "
                  f"{len(times) / wall:.2f} scans/s", flush=True)
    finally:
        _LAYOUT_STATE.clear()
    return figures


def snapshot_round_trip(index: CreativeIndex, build_s: float, path: Path) -> dict:
    """What a fresh worker does instead of building: a snapshot written and read back (a local file,
    kept at `path` for bench/index_sharing.py)."""
    key = b"bench" * 8
    with path.open("w+b") as spool:
        begin = time.perf_counter()
        size = write_snapshot(index, {"loaded": {}}, key, spool)
        written = time.perf_counter() - begin
        spool.seek(0)
        begin = time.perf_counter()
        loaded, _ = read_snapshot(spool, key)
        read = time.perf_counter() - begin
    assert len(loaded) == len(index)
    print(f"snapshot of that index: {size / 2**20:.0f} MiB, written in {written:.1f} s, loaded in {read:.1f} s "
          f"(building it: {build_s:.0f} s, {build_s / read:.0f}x as long as loading)")
    return {"bytes": size, "write_s": written, "read_s": read, "build_to_read": build_s / read}


def _rate(values: list[bool]) -> str:
    return f"{np.mean(values) * 100:6.2f} %  ({sum(values)}/{len(values)})" if values else "   n/a"


def print_accuracy(title: str, result: dict, queries, stars: dict) -> dict:
    outcomes = result["outcomes"]
    right = [o == "right" for o in outcomes]
    wrong = [o == "wrong" for o in outcomes]
    none = [o == "none" for o in outcomes]
    templated = result["accepted"].get("templated", [])
    plain = result["accepted"].get("plain", [])
    p50, p95 = _percentiles(result["match_ms"])
    e50, e95 = _percentiles(result["corner_errors"])
    print(f"\n== {title}")
    print(f"top-1 accuracy          {_rate(right)}")
    print(f"wrong creative          {_rate(wrong)}")
    print(f"no answer               {_rate(none)}")
    print(f"false accepts templated {_rate(templated)}")
    print(f"false accepts plain     {_rate(plain)}")
    print(f"false accepts all       {_rate(templated + plain)}")
    print(f"corner error (px, right answers)  p50 {e50:.1f}  p95 {e95:.1f}")
    print(f"match time (features given) ms    p50 {p50:.1f}  p95 {p95:.1f}")
    print(f"creatives verified per scan       mean {np.mean(result['verified']):.2f}  max {max(result['verified'])}")
    by_stars = defaultdict(list)
    for q, outcome in zip(queries, outcomes):
        by_stars[stars[q["truth"]]].append(outcome)
    print("by rating   photos   top-1      wrong    none")
    for star in sorted(by_stars):
        values = by_stars[star]
        shares = [np.mean([v == kind for v in values]) * 100 for kind in ("right", "wrong", "none")]
        print(f"  {star} stars  {len(values):6d}  {shares[0]:6.2f} %  {shares[1]:6.2f} %  {shares[2]:6.2f} %")
    rated = [o for q, o in zip(queries, outcomes) if stars[q["truth"]] >= 3]
    summary = {
        "top1": float(np.mean(right)), "wrong": float(np.mean(wrong)), "none": float(np.mean(none)),
        "false_accept_templated": float(np.mean(templated)) if templated else None,
        "false_accept_plain": float(np.mean(plain)) if plain else None,
        "top1_rated_3_plus": float(np.mean([o == "right" for o in rated])) if rated else None,
        "photos_rated_3_plus": len(rated),
        "match_ms_p50": p50, "match_ms_p95": p95, "corner_error_p50": e50, "corner_error_p95": e95,
        "verified_mean": float(np.mean(result["verified"])), "verified_max": int(max(result["verified"])),
    }
    if rated:
        print(f"rated 3+: top-1 {summary['top1_rated_3_plus'] * 100:.2f} % over {len(rated)} photos")
    parts = []
    for lo, hi in [(0.3, 0.45), (0.45, 0.6), (0.6, 0.8), (0.8, 1.01)]:
        inside = [o == "right" for q, o in zip(queries, outcomes) if lo <= q["scale"] < hi]
        parts.append(f"{lo:.2f}-{min(hi, 1):.2f}: {np.mean(inside) * 100:.1f} % of {len(inside)}" if inside else "")
    print("by page size in the photo (apparent scale): " + "  ".join(parts))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creatives", type=int, default=200)
    parser.add_argument("--templates", type=int, default=5)
    parser.add_argument("--queries", type=int, default=1000, help="photos of registered creatives")
    parser.add_argument("--negatives", type=int, default=500, help="photos of no registered creative")
    parser.add_argument("--filler", type=int, default=10_000, help="creatives in the large index (0: skip)")
    parser.add_argument("--latency", type=int, default=200, help="full scans timed per index size")
    parser.add_argument("--reference", type=int, default=40,
                        help="photos of creatives for the exhaustive reference (and half as many of none)")
    parser.add_argument("--difficulty", default="hard", choices=adgen.DIFFICULTIES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="40 creatives, 200 + 100 photos, 1,000 in the index")
    parser.add_argument("--photo-set", type=int, default=0,
                        help="0: the photos the matcher was tuned on; 1, 2, ...: as many others, never used for tuning")
    args = parser.parse_args()
    if args.small:
        args.creatives, args.templates, args.queries, args.negatives = 40, 4, 200, 100
        args.filler, args.latency, args.reference = 1000, 60, 20
    _single_thread()
    started = time.perf_counter()
    cache = OUT / f"{_data_key()}-{args.difficulty}-t{args.templates}"
    print(f"ad recognition benchmark: {args.creatives} creatives / {args.templates} templates, {args.queries} photos "
          f"of them, {args.negatives} photos of no registered creative ({args.difficulty}), index of {args.filler}; "
          f"cache {cache.relative_to(ROOT)}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; one thread per scan")

    # creatives
    generated = _cached(cache / f"creatives-{args.creatives}.pkl", lambda: sorted(_run_pool(
        _make_creative, [(i, args.templates) for i in range(args.creatives)], args.workers, "creatives")))
    creatives = {_creative_id(i, args.templates): CreativeFeatures.from_bytes(data) for i, data, _ in generated}
    details = {_creative_id(i, args.templates): detail for i, _, detail in generated}
    ratings = {cid: rate_recognisability(features) for cid, features in creatives.items()}
    stars = {cid: rating.stars for cid, rating in ratings.items()}
    creative_size = next(iter(creatives.values())).image_size
    print("ratings (stars: creatives): " + ", ".join(f"{s}: {n}" for s, n in sorted(Counter(stars.values()).items()))
          + "; detail levels: " + ", ".join(f"{d}: {n}" for d, n in sorted(Counter(details.values()).items())))

    # photos: set K holds query photos K x queries ... and no-ad photos K x negatives ...
    first_query, first_negative = args.photo_set * args.queries, args.photo_set * args.negatives
    suffix = f"-set{args.photo_set}" if args.photo_set else ""
    latency_positives = set(range(first_query, first_query + min(args.latency, args.queries)))
    latency_negatives = set(range(first_negative, first_negative + min(args.latency // 2, args.negatives)))
    per_creative = defaultdict(list)
    for q in range(first_query, first_query + args.queries):
        per_creative[q % args.creatives].append(q)
    photo_jobs = [(i, args.templates, numbers, args.difficulty, latency_positives)
                  for i, numbers in per_creative.items()]
    photo_rows = _cached(cache / f"queries-{args.creatives}-{args.queries}-{args.latency}{suffix}.pkl", lambda: sorted(
        (row for rows in _run_pool(_photos_of_creative, photo_jobs, args.workers, "query photos") for row in rows),
        key=lambda row: row[0]))
    queries = [{"truth": _creative_id(q % args.creatives, args.templates), "features": _photo_features(f, png),
                "homography": h, "scale": scale, "visible": visible} for q, f, h, scale, visible, _, png in photo_rows]
    negative_rows = _cached(cache / f"negatives-{args.negatives}-{args.latency}{suffix}.pkl", lambda: sorted(_run_pool(
        _negative_photo, [(n, args.templates, args.difficulty, n in latency_negatives)
                          for n in range(first_negative, first_negative + args.negatives)], args.workers, "no-ad photos")))
    negatives = [{"kind": kind, "features": _photo_features(f, png)} for _, kind, f, _, png in negative_rows]
    latency_photos = [row[5] for row in photo_rows if row[5] is not None] + [row[3] for row in negative_rows
                                                                             if row[3] is not None]

    n_filler = max(0, args.filler - len(creatives))
    filler_rows = _cached(cache / f"filler-{n_filler}.pkl", lambda: sorted(_run_pool(
        _make_filler, list(range(n_filler)), args.workers, "filler creatives"))) if n_filler else []
    print(f"data ready after {time.perf_counter() - started:.0f} s")

    # the N-creative index
    index = CreativeIndex()
    start = time.perf_counter()
    for cid, features in creatives.items():
        index.add(cid, features)
    index.refresh()
    build_small = time.perf_counter() - start
    distinctive = [index.distinctive_fraction(cid) for cid in creatives]
    print(f"index of {len(index)} built in {build_small:.1f} s; distinctive share of features p10/p50/p90: "
          + "/".join(f"{v:.2f}" for v in np.percentile(distinctive, [10, 50, 90])))
    result = evaluate(index, queries, negatives, creative_size, f"match ({len(index)})")
    figures = {"args": vars(args), "build_s": build_small}
    figures["small_index"] = print_accuracy(f"{len(index)} creatives, shortlist top {index.config.top_n}", result,
                                            queries, stars)

    # the reference: every creative verified, on a subset
    ref_queries = queries[: args.reference]
    ref_negatives = negatives[: args.reference // 2]
    shortlist_sub = evaluate(index, ref_queries, ref_negatives, creative_size, "shortlist (subset)")
    index.config = replace(index.config, top_n=None)
    reference = evaluate(index, ref_queries, ref_negatives, creative_size, "exhaustive (subset)")
    index.config = MatcherConfig()
    print(f"\n== reference on {len(ref_queries)} + {len(ref_negatives)} photos: shortlist vs every creative verified")
    for name, res in (("shortlist", shortlist_sub), ("exhaustive", reference)):
        accepted = [a for values in res["accepted"].values() for a in values]
        p50, p95 = _percentiles(res["match_ms"])
        right = np.mean([o == "right" for o in res["outcomes"]]) * 100
        wrong = np.mean([o == "wrong" for o in res["outcomes"]]) * 100
        print(f"{name:10s} top-1 {right:6.2f} %  wrong {wrong:5.2f} %  false accepts {np.mean(accepted) * 100:5.2f} %"
              f"  match ms p50 {p50:7.1f} p95 {p95:7.1f}  verified/scan {np.mean(res['verified']):.1f}")
    ratio = np.median(reference["match_ms"]) / np.median(shortlist_sub["match_ms"])
    print(f"latency ratio exhaustive / shortlist (p50): {ratio:.1f}x")
    figures["reference_ratio_p50"] = float(ratio)

    # scan latency at N
    latency_images = [Image.open(io.BytesIO(data)).convert("RGB") for data in latency_photos]  # decoded once
    total, extraction, _, _ = scan_latency(index, latency_images, f"scans ({len(index)})")
    p50, p95 = _percentiles(total)
    e50, e95 = _percentiles(extraction)
    print(f"\n== full scan latency with {len(index)} creatives, {len(total)} scans: p50 {p50:.0f} ms  p95 {p95:.0f} ms "
          f"(feature extraction p50 {e50:.0f} ms  p95 {e95:.0f} ms)")
    figures["scan_small"] = {"p50": p50, "p95": p95, "extract_p50": e50, "extract_p95": e95}

    # the large index
    if args.filler > len(creatives):
        def build_large():
            large = CreativeIndex()
            for cid, features in creatives.items():
                large.add(cid, features)
            for i, data in filler_rows:
                large.add(f"filler/{i}", CreativeFeatures.from_bytes(data))
            begin = time.perf_counter()
            with tqdm(total=len(creatives) + len(filler_rows), desc="large index", unit="creative") as bar:
                large.refresh(lambda done, total: bar.update(done - bar.n))
            return large, time.perf_counter() - begin

        large, build_large_s = _cached(cache / f"index-{args.creatives}-{args.filler}-{_index_key()}.pkl", build_large)
        large.config = MatcherConfig()  # the matcher's thresholds of this code, not those pickled with the index
        print(f"\nindex of {len(large)} creatives ({sum(len(e.features) for e in large._entries.values())} features) "
              f"built in {build_large_s:.0f} s (cached after the first run)")
        snapshot = OUT / f"large-{args.creatives}-{args.filler}-{_index_key()}.snapshot"
        for stale in OUT.glob(f"large-{args.creatives}-{args.filler}-*.snapshot"):  # of older code, these sizes
            if stale != snapshot:
                stale.unlink()
        figures["snapshot"] = snapshot_round_trip(large, build_large_s, snapshot)
        (OUT / "sharing-photos.pkl").write_bytes(pickle.dumps(latency_photos[:20]))
        result_large = evaluate(large, queries, negatives, creative_size, f"match ({len(large)})")
        figures["large_index"] = print_accuracy(f"{len(large)} creatives, shortlist top {large.config.top_n}",
                                                result_large, queries, stars)
        total, extraction, _, _ = scan_latency(large, latency_images, f"scans ({len(large)})")
        p50, p95 = _percentiles(total)
        e50, e95 = _percentiles(extraction)
        print(f"\n== full scan latency with {len(large)} creatives, {len(total)} scans: p50 {p50:.0f} ms  "
              f"p95 {p95:.0f} ms (feature extraction p50 {e50:.0f} ms  p95 {e95:.0f} ms)")
        figures["scan_large"] = {"p50": p50, "p95": p95, "extract_p50": e50, "extract_p95": e95,
                                 "build_s": build_large_s}
        print(f"\n== process layouts of a {os.cpu_count()}-core worker at {len(large)} creatives, all processes "
              "scanning at once (vision.threads; VISION_THREADS)")
        figures["layouts"] = process_layouts(large, latency_images)
        print("\n== memory of two pool processes: the index loaded before the fork, or by each (bench/index_sharing.py)")
        sharing = subprocess.run([sys.executable, str(ROOT / "bench" / "index_sharing.py"), "--snapshot", str(snapshot)],
                                 capture_output=True, text=True)
        print(sharing.stdout + sharing.stderr, end="")
        figures["index_sharing"] = json.loads((OUT.parent / "index_sharing.json").read_text()) \
            if sharing.returncode == 0 else {"failed": sharing.stderr[-2000:]}
    elapsed = time.perf_counter() - started
    print(f"\ntotal {elapsed:.0f} s")
    figures["elapsed_s"] = elapsed
    OUT.mkdir(parents=True, exist_ok=True)
    name = "ad_recognition-small.json" if args.small else f"ad_recognition-{args.creatives}-{args.filler}.json"
    if args.photo_set:
        name = name.replace(".json", f"-set{args.photo_set}.json")
    (OUT / name).write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
