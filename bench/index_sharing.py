"""Memory of a vision worker's pool processes: the creative index loaded once before the pool forks
(what `celery worker -Q vision` does, shop.campaigns.recognition.load_before_fork) against each
process reading the snapshot itself (the reference), measured in the same run.

Each mode runs in a fresh interpreter: a parent forks `--processes` children (as Celery's prefork
pool does), each child scans `--scans` photos (SIFT and match), then all report
/proc/self/smaps_rollup while every process of the family is still alive: PSS (a shared page
counted as a share of it in each process), private pages (Private_Clean + Private_Dirty: what a
process holds alone) and RSS. The family's PSS is the memory the pod's limit sees. Both modes must
give the same answers.

Usage::

    .venv/bin/python bench/index_sharing.py [--snapshot PATH] [--photos PATH] [--processes 2] [--scans 20]

By default it reads the snapshot of the large index and the photos that `bench/ad_recognition.py`
leaves in `bench/out/ad_recognition/` (run that first; its figures then include this comparison).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import pickle
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / "out" / "ad_recognition"
KEY = b"bench" * 8  # the key bench/ad_recognition.py signs its snapshot with
FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty")


def memory() -> dict[str, float]:
    """This process's smaps_rollup, MiB."""
    values = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in FIELDS:
            values[name] = int(rest.split()[0]) / 1024
    return {"rss": values["Rss"], "pss": values["Pss"], "private": values["Private_Clean"] + values["Private_Dirty"]}


def read_index(path: Path):
    from vision.creative_snapshots import read_snapshot

    with path.open("rb") as source:
        index, _ = read_snapshot(source, KEY)
    return index


def child(index, snapshot: Path, photos: list[bytes], threads: int | None, report, release) -> None:
    from PIL import Image

    from vision.creatives import extract_photo_features
    from vision.memory import after_fork

    begin = time.perf_counter()
    if index is None:
        index = read_index(snapshot)
    else:
        after_fork(threads)  # as shop.campaigns.recognition.after_fork
    loaded = time.perf_counter() - begin
    answers = []
    for data in photos:
        match = index.match(extract_photo_features(Image.open(io.BytesIO(data)).convert("RGB")))
        answers.append(None if match is None else match.creative_id)
    report.send({"memory": memory(), "answers": answers, "load_s": loaded})
    release.recv()  # stay alive until the parent has measured itself beside its children


def run(mode: str, snapshot: Path, photos: list[bytes], processes: int) -> dict:
    from vision.memory import loading_to_share_after_fork

    threads, index, begin = None, None, time.perf_counter()
    if mode == "shared":  # as shop.campaigns.recognition.load_before_fork
        with loading_to_share_after_fork() as threads:
            index = read_index(snapshot)
    parent_load = time.perf_counter() - begin
    context = multiprocessing.get_context("fork")
    pipes = [context.Pipe() for _ in range(processes)]
    releases = [context.Pipe() for _ in range(processes)]
    children = [context.Process(target=child, args=(index, snapshot, photos, threads, pipes[n][1], releases[n][1]))
                for n in range(processes)]
    for process in children:
        process.start()
    reports = [pipes[n][0].recv() for n in range(processes)]
    parent = memory()
    for n in range(processes):
        releases[n][0].send(True)
    for process in children:
        process.join()
    return {"mode": mode, "parent": parent, "parent_load_s": parent_load, "children": reports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=None, help="default: the newest in bench/out/ad_recognition")
    parser.add_argument("--photos", type=Path, default=CACHE / "sharing-photos.pkl")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--scans", type=int, default=20)
    parser.add_argument("--mode", choices=("each", "shared"), help=argparse.SUPPRESS)  # one mode, in this process
    args = parser.parse_args()
    snapshot = args.snapshot or max(CACHE.glob("*.snapshot"), key=lambda p: p.stat().st_mtime, default=None)
    if snapshot is None or not args.photos.exists():
        sys.exit("no snapshot or photos: run bench/ad_recognition.py first, or give --snapshot and --photos")
    if args.mode:
        photos = pickle.loads(args.photos.read_bytes())[: args.scans]
        print(json.dumps(run(args.mode, snapshot, photos, args.processes)))
        return
    print(f"snapshot {snapshot.name} ({snapshot.stat().st_size / 2**20:.0f} MiB), {args.processes} processes, "
          f"{args.scans} scans each")
    results = {}
    for mode in ("each", "shared"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--snapshot", str(snapshot), "--photos",
                              str(args.photos), "--processes", str(args.processes), "--scans", str(args.scans)],
                             check=True, capture_output=True, text=True).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    print(f"{'mode':8s} {'family PSS':>11s} {'parent PSS':>11s} {'child PSS':>10s} {'child private':>14s} "
          f"{'child RSS':>10s} {'load s':>7s}")
    for mode, result in results.items():
        kids = result["children"]
        family = result["parent"]["pss"] + sum(k["memory"]["pss"] for k in kids)
        result["family_pss"] = family
        print(f"{mode:8s} {family:9.0f} MiB {result['parent']['pss']:7.0f} MiB "
              f"{max(k['memory']['pss'] for k in kids):6.0f} MiB {max(k['memory']['private'] for k in kids):10.0f} MiB "
              f"{max(k['memory']['rss'] for k in kids):6.0f} MiB "
              f"{max(result['parent_load_s'], *(k['load_s'] for k in kids)):7.1f}")
    same = all(a["answers"] == b["answers"] for a, b in zip(results["each"]["children"], results["shared"]["children"]))
    ratio = results["shared"]["family_pss"] / results["each"]["family_pss"]
    print(f"shared / each, family PSS: {ratio:.2f}; same answers in both modes: {same}")
    if not same:
        sys.exit("the modes answered differently")
    (CACHE.parent / "index_sharing.json").write_text(json.dumps({**results, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
