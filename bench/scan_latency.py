"""Upload-to-results latency of shop-the-look scans, end to end, with a running worker.

Run from the repository root:

    .venv/bin/python bench/scan_latency.py [--models tiny-test color-texture-v1 clip-vit-b-32]
        [--concurrency 1 4] [--scans 40] [--catalog 10000] [--broker redis|embedded]

It is a driver for a PRIVATE environment: every process it starts gets SHOP_VAR_DIR=
bench/out/scan-latency-var (its own embedded PostgreSQL + pgvector, media and, with
`--broker embedded`, the filesystem broker; `--broker redis` uses 127.0.0.1:6379 db 14), so the
developer's var/ is never touched. Steps:

1. `manage.py migrate`; the demo catalog once (`seed_demo --per-category ceil(catalog/18) --no-index`,
   about 1.5 pictures per product); before a model key is measured, it is enabled and its vectors
   made with `reindex --model KEY` only where vectors are missing (they are kept between runs).
   `--code head` runs a `git archive HEAD` snapshot, so edits made in the tree meanwhile do not
   reach the processes (the default runs the working tree).
2. Per model key and concurrency c: `models activate KEY`, the broker's queues purged, then one
   Celery worker (`-Q vision`, --concurrency 1 for c=1, else 2: the machine has 2 cores) and
   gunicorn (2 workers x 4 threads, a free loopback port) are started; /readyz is awaited; a
   shopper registers; warm-up scans load the model in every worker process; then --scans street
   photos (a catalog product's picture placed on a background, JPEG) are POSTed to
   /api/v1/scans/?wait=10 by c client threads, each polling GET /api/v1/scans/{id}/ until done.
3. The client measures upload-to-results wall time; `Scan.timings` (ms per stage, written by the
   worker) give the breakdown. "compute" is the sum of every worker stage except queue (decode,
   ad_match when present, detect, colors, embed, knn, database). "other" is what the worker's
   stages do not cover: upload, the web process's decode and re-encode, commit, publish, the
   ?wait poll (every 100 ms), the final timings write and the response.

Printed per model x concurrency: n, p50/p95 total, per-stage p50, compute p50, queue p50,
total/compute (p50 over p50), throughput, and the top-5 hit rate of each photo's source product
(among any item's first five products) as a sanity figure. JSON goes to bench/out/scan-latency.json.
The processes are stopped with SIGTERM at the end, then the private PostgreSQL.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import io
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after the project's code (CODE may be a snapshot, put first in main)

from bench.processes import free_port, start, stop, stop_all, wait_ready  # noqa: E402

OUT = ROOT / "bench" / "out"
CODE = ROOT  # where the project's processes run from: the working tree, or a snapshot (--code head)
VAR = OUT / "scan-latency-var"  # --var-dir changes it (a throw-away environment for a quick try)
LOGS = OUT / "scan-latency-logs"
PYTHON = sys.executable
REDIS_URL = "redis://127.0.0.1:6379/14"
DEMO_CATEGORIES = 18  # catalog.demo.CATEGORIES
STAGE_ORDER = ("queue", "decode", "ad_match", "detect", "colors", "embed", "knn", "database")
HIT_RANK = 5


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def private_env(broker: str, vision_threads: int | None = None) -> dict[str, str]:
    """The environment of every process this benchmark starts (and of the driver's own Django)."""
    env = dict(os.environ)
    env.update(
        SHOP_VAR_DIR=str(VAR),
        DATABASE_URL="",  # embedded PostgreSQL under SHOP_VAR_DIR, whatever a .env file says
        CELERY_BROKER_URL=REDIS_URL if broker == "redis" else "",
        EMBEDDED_BROKER_DIR=str(VAR / "broker"),
        AWS_STORAGE_BUCKET_NAME="",  # local media under SHOP_VAR_DIR
        DJANGO_SETTINGS_MODULE="shop.settings",
        DJANGO_DEBUG="false",
        VISION_ALLOW_RANDOM_WEIGHTS="true",
        HF_HUB_OFFLINE="1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        TQDM_MININTERVAL="15",  # progress bars in the log every 15 s, not 10 times a second
    )
    if vision_threads:
        env["VISION_THREADS"] = str(vision_threads)
    return env


def manage(env: dict, *args: str, log_name: str | None = None) -> float:
    """Run a manage.py command with the private env; its output goes to a log (and a tail here)."""
    started = time.perf_counter()
    path = LOGS / f"{log_name or args[0]}.log"
    with open(path, "ab") as out:
        out.write(f"\n$ manage.py {' '.join(args)}\n".encode())
        out.flush()
        proc = subprocess.run([PYTHON, "manage.py", *args], cwd=CODE, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        tail = path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"manage.py {' '.join(args)} failed (exit {proc.returncode}); log {path}:\n{tail}")
    return elapsed


def percentile(values, q: float) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.percentile(values, q)) if values else None


def git_state() -> dict:
    def out(*cmd):
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = out("git", "status", "--porcelain")
    return {
        "head": out("git", "rev-parse", "--short", "HEAD"),
        "dirty_files": len(dirty.splitlines()),
        "worktree_diff_sha256": hashlib.sha256(out("git", "diff").encode()).hexdigest()[:12],
    }


# --- the catalog and its vectors ---------------------------------------------------------------


def build_catalog(env: dict, wanted: int) -> dict:
    from catalog.models import Product, ProductImage

    have = Product.objects.count()
    seeded_s = None
    if have < wanted:
        per_category = math.ceil(wanted / DEMO_CATEGORIES)
        log(f"catalog: {have} products, building {per_category * DEMO_CATEGORIES} with seed_demo "
            f"--per-category {per_category} (progress in {LOGS / 'seed_demo.log'})")
        seeded_s = manage(env, "seed_demo", "--per-category", str(per_category), "--no-index")
    products, images = Product.objects.count(), ProductImage.objects.count()
    log(f"catalog: {products} products, {images} pictures" + (f", built in {seeded_s:.0f} s" if seeded_s else " (kept)"))
    if products < wanted:
        raise RuntimeError(f"the catalog has {products} products, fewer than --catalog {wanted}")
    return {"products": products, "images": images, "seed_seconds": seeded_s}


def ensure_vectors(env: dict, key: str) -> dict:
    from catalog.models import EmbeddingModel, ImageEmbedding, ProductImage

    if not EmbeddingModel.objects.filter(key=key).exists():
        manage(env, "models", "enable", key, log_name="models")
    images = ProductImage.objects.count()
    have = ImageEmbedding.objects.filter(model_key=key).count()
    info = {"images": images, "vectors_before": have, "reindex_seconds": None, "images_per_second": None}
    if have < images:
        log(f"{key}: {have}/{images} vectors; embedding the rest (progress in {LOGS / f'reindex-{key}.log'})")
        seconds = manage(env, "reindex", "--model", key, log_name=f"reindex-{key}")
        done = ImageEmbedding.objects.filter(model_key=key).count()
        info.update(reindex_seconds=round(seconds, 1), images_per_second=round((done - have) / seconds, 1))
        log(f"{key}: {done} vectors after {seconds:.0f} s ({info['images_per_second']} img/s)")
    else:
        log(f"{key}: {have}/{images} vectors (kept)")
    info["vectors"] = ImageEmbedding.objects.filter(model_key=key).count()
    return info


def street_photos(count: int, size: tuple[int, int], seed: int = 2024) -> list[dict]:
    """JPEG street photos, each of a random catalog product's first picture on a background."""
    from catalog.models import Product
    from shop import vision_adapter
    from vision.synthetic import list_background_photos, place_on_background

    ids = sorted(Product.objects.filter(active=True, images__isnull=False).values_list("id", flat=True).distinct())
    rng = np.random.default_rng(seed)
    chosen = [int(i) for i in rng.choice(ids, size=count, replace=False)]
    backgrounds = list_background_photos() or None
    products = Product.objects.in_bulk(chosen)
    photos = []
    for n, product in enumerate(products[pid] for pid in chosen):
        with product.images.first().image.open("rb") as f:
            shot = vision_adapter.decode(f.read()).image
        scene = place_on_background(shot, seed=seed + n, size=size, background_paths=backgrounds)
        out = io.BytesIO()
        scene.image.save(out, "JPEG", quality=88)
        photos.append({"product_id": product.id, "jpeg": out.getvalue()})
    return photos


# --- the web server and worker ----------------------------------------------------------------


def purge_queues(env: dict) -> None:
    """Drop messages left by earlier steps (`models enable` queues a back-fill, seeding an indexing run)."""
    subprocess.run(
        [PYTHON, "-m", "celery", "-A", "shop", "purge", "-f", "-Q", "vision,default,reports"],
        cwd=CODE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )  # fmt: skip


# --- the client -------------------------------------------------------------------------------


def one_scan(base: str, token: str, photo: dict, kind: str, poll_s: float) -> dict:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    data = {"kind": kind} if kind else {}
    started = time.perf_counter()
    response = session.post(
        f"{base}/api/v1/scans/?wait=10", files={"photo": ("photo.jpg", photo["jpeg"], "image/jpeg")}, data=data, timeout=60
    )
    answered_post = time.perf_counter()
    if response.status_code not in (200, 202):
        return {"ok": False, "error": f"POST {response.status_code}: {response.text[:300]}"}
    body = response.json()
    polls = 0
    while body["status"] not in ("done", "failed"):
        if time.perf_counter() - started > 180:
            return {"ok": False, "error": f"scan {body['id']} not done after 180 s", "id": body["id"]}
        time.sleep(poll_s)
        polls += 1
        body = session.get(f"{base}/api/v1/scans/{body['id']}/", timeout=30).json()
    finished = time.perf_counter()
    return {
        "ok": body["status"] == "done",
        "id": body["id"],
        "status": body["status"],
        "error": body.get("failure_reason") or None,
        "total_ms": (finished - started) * 1000,
        "post_ms": (answered_post - started) * 1000,
        "done_in_post": polls == 0,
        "polls": polls,
        "timings_at_result": body.get("timings") or {},
        "body": body,
    }


def top_hit(body: dict, product_id: int) -> bool:
    return any(
        p.get("id") == product_id for item in body.get("items") or [] for p in (item.get("products") or [])[:HIT_RANK]
    )


def run_setting(env: dict, key: str, concurrency: int, photos: list[dict], warmup: list[dict], args) -> dict:
    worker_concurrency = 1 if concurrency == 1 else min(concurrency, args.max_worker_concurrency)
    manage(env, "models", "activate", key, log_name="models")
    purge_queues(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tag = f"{key}-c{concurrency}"
    worker = start(
        [
            PYTHON, "-m", "celery", "-A", "shop", "worker", "-Q", "vision",
            "--concurrency", str(worker_concurrency), "-n", f"scanbench-{tag}@%h",
            "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        cwd=CODE, env=env, log_path=LOGS / f"worker-{tag}.log",
    )  # fmt: skip
    web = start(
        [
            PYTHON, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--threads", "4", "--timeout", "120", "--keep-alive", "75",
        ],
        cwd=CODE, env=env, log_path=LOGS / f"web-{tag}.log",
    )  # fmt: skip
    try:
        ready = wait_ready(base, [worker, web])
        registered = requests.post(f"{base}/api/v1/shoppers/", json={"platform": "android"}, timeout=30)
        registered.raise_for_status()
        token = registered.json()["token"]

        # Warm-up: every worker process loads the model and the web processes their code paths.
        with concurrent.futures.ThreadPoolExecutor(max(concurrency, worker_concurrency)) as pool:
            warm = list(pool.map(lambda p: one_scan(base, token, p, args.kind, args.poll), warmup))
        if not all(w["ok"] for w in warm):
            raise RuntimeError(f"warm-up scans failed: {[w.get('error') for w in warm if not w['ok']]}")

        load_before = os.getloadavg()
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(lambda p: one_scan(base, token, p, args.kind, args.poll), photos))
        wall = time.perf_counter() - started
        load_after = os.getloadavg()

        # The final timings: the worker writes them after marking the scan done (see the report).
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        time.sleep(0.5)
        for result in results:
            if result.get("id"):
                result["timings"] = session.get(f"{base}/api/v1/scans/{result['id']}/", timeout=30).json().get("timings") or {}
    finally:
        stop(web)
        stop(worker)

    scans = []
    for photo, result in zip(photos, results, strict=True):
        body = result.pop("body", None) or {}
        scans.append({**result, "product_id": photo["product_id"], "hit_top5": top_hit(body, photo["product_id"]),
                      "items": len(body.get("items") or []), "model": body.get("model")})  # fmt: skip
    return summarise(key, concurrency, worker_concurrency, scans, wall, load_before, load_after, ready)


def summarise(key, concurrency, worker_concurrency, scans, wall, load_before, load_after, ready) -> dict:
    done = [s for s in scans if s["ok"]]
    seen = {name for s in done for name in s.get("timings", {})}
    stages = [n for n in STAGE_ORDER if n in seen] + sorted(seen - set(STAGE_ORDER))
    compute = [sum(v for k, v in s["timings"].items() if k != "queue") for s in done if s.get("timings")]
    totals = [s["total_ms"] for s in done]
    for s in done:
        t = s.get("timings") or {}
        s["other_ms"] = s["total_ms"] - sum(t.values()) if t else None
    p50_total, p50_compute = percentile(totals, 50), percentile(compute, 50)
    return {
        "model": key,
        "concurrency": concurrency,
        "worker_concurrency": worker_concurrency,
        "n": len(scans),
        "done": len(done),
        "failed": [s.get("error") for s in scans if not s["ok"]],
        "pretrained": (done[0].get("model") or {}).get("pretrained") if done else None,
        "total_ms": {"p50": p50_total, "p95": percentile(totals, 95), "mean": statistics.fmean(totals) if totals else None},
        "stage_p50_ms": {name: percentile([s["timings"].get(name) for s in done if s.get("timings")], 50) for name in stages},
        "stage_p95_ms": {name: percentile([s["timings"].get(name) for s in done if s.get("timings")], 95) for name in stages},
        "compute_ms": {"p50": p50_compute, "p95": percentile(compute, 95)},
        "other_ms_p50": percentile([s["other_ms"] for s in done], 50),
        "total_over_compute_p50": p50_total / p50_compute if p50_total and p50_compute else None,
        "total_over_compute_median_per_scan": percentile(
            [s["total_ms"] / sum(v for k, v in s["timings"].items() if k != "queue") for s in done if s.get("timings")], 50
        ),
        "throughput_scans_per_s": len(done) / wall if wall else None,
        "wall_s": wall,
        "hit_top5": sum(s["hit_top5"] for s in done) / len(done) if done else None,
        "items_per_scan_mean": statistics.fmean(s["items"] for s in done) if done else None,
        "done_within_post": sum(s["done_in_post"] for s in done),
        "timings_missing_at_result": sum(1 for s in done if not s["timings_at_result"]),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "readyz_model": (ready.get("checks") or {}).get("model"),
        "scans": scans,
    }


# --- report -----------------------------------------------------------------------------------


def fmt(value, digits=0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: list[dict]) -> None:
    stages = [s for s in STAGE_ORDER if any(s in r["stage_p50_ms"] for r in rows)]
    extra = sorted({s for r in rows for s in r["stage_p50_ms"]} - set(stages))
    stages += extra
    header = (f"{'model':17} {'w':>5} {'c':>2} {'n':>3} {'p50':>6} {'p95':>6} "
              + " ".join(f"{s[:8]:>8}" for s in stages)
              + f" {'compute':>7} {'other':>6} {'tot/cmp':>7} {'scans/s':>7} {'top5':>5}")  # fmt: skip
    print("\nUpload-to-results, ms (p50 unless marked; stages from Scan.timings):")
    print(header)
    for r in rows:
        weights = "none" if r["model"] == "color-texture-v1" else ("pre" if r["pretrained"] else "rand")
        print(
            f"{r['model']:17} {weights:>5} {r['concurrency']:>2} {r['done']:>3} {fmt(r['total_ms']['p50']):>6} "
            f"{fmt(r['total_ms']['p95']):>6} "
            + " ".join(f"{fmt(r['stage_p50_ms'].get(s), 1):>8}" for s in stages)
            + f" {fmt(r['compute_ms']['p50']):>7} {fmt(r['other_ms_p50']):>6} {fmt(r['total_over_compute_p50'], 2):>7}"
            f" {fmt(r['throughput_scans_per_s'], 2):>7} {fmt(r['hit_top5'] * 100 if r['hit_top5'] is not None else None):>4}%"
        )
    by_model: dict[str, dict[int, dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["concurrency"]] = r
    ratios = []
    for key, settings in by_model.items():
        if len(settings) > 1:
            low, high = min(settings), max(settings)
            a, b = settings[low], settings[high]
            if a["total_ms"]["p50"] and b["total_ms"]["p50"] and a["throughput_scans_per_s"]:
                ratios.append(
                    f"  {key}: c={high} vs c={low}: p50 x{b['total_ms']['p50'] / a['total_ms']['p50']:.2f}, "
                    f"throughput x{b['throughput_scans_per_s'] / a['throughput_scans_per_s']:.2f}"
                )
    if ratios:
        print("Concurrency ratios (same model):")
        print("\n".join(ratios))
    notes = [r for r in rows if r["failed"] or r["timings_missing_at_result"]]
    for r in notes:
        print(f"  {r['model']} c={r['concurrency']}: {len(r['failed'])} failed {r['failed'][:3]}; "
              f"{r['timings_missing_at_result']} results arrived before their timings were written")


# --- main -------------------------------------------------------------------------------------


def stop_database(env: dict) -> None:
    from django.db import connections

    connections.close_all()
    code = "from pathlib import Path; from shop import embedded_db; embedded_db.stop(Path(%r))" % str(VAR / "pgdata")
    subprocess.run([PYTHON, "-c", code], cwd=CODE, env=env, check=False, stderr=subprocess.DEVNULL)
    log("private PostgreSQL stopped")


def snapshot_head() -> Path:
    """`git archive HEAD` under bench/out: the committed code, unaffected by edits during the run."""
    target = OUT / "scan-latency-src"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def main() -> None:
    global VAR, LOGS, CODE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny-test", "color-texture-v1", "clip-vit-b-32"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--scans", type=int, default=40, help="measured scans per model and concurrency")
    parser.add_argument("--warmup", type=int, default=4, help="unmeasured scans first (at least 2 per worker process)")
    parser.add_argument("--catalog", type=int, default=10000, help="at least this many products")
    parser.add_argument("--broker", choices=("redis", "embedded"), default="redis")
    parser.add_argument("--kind", default="", help="scan kind sent (auto, look, ad); empty: the API's default")
    parser.add_argument("--photo-size", default="640x480", help="street photo size, WxH")
    parser.add_argument("--poll", type=float, default=0.05, help="client poll interval (s) after ?wait=10 returns")
    parser.add_argument("--max-worker-concurrency", type=int, default=2, help="worker processes for c>1 (2 cores)")
    parser.add_argument("--vision-threads", type=int, default=None, help="VISION_THREADS for the worker (default: torch's)")
    parser.add_argument("--json", default=str(OUT / "scan-latency.json"))
    parser.add_argument(
        "--code", choices=("worktree", "head"), default="worktree",
        help="run the working tree, or a snapshot of HEAD (other people's edits during the run do not reach it)",
    )  # fmt: skip
    parser.add_argument("--var-dir", default=str(VAR), help="the private SHOP_VAR_DIR (kept: catalog and vectors)")
    args = parser.parse_args()
    VAR = Path(args.var_dir).resolve()
    LOGS = VAR.parent / (VAR.name + "-logs") if VAR != (OUT / "scan-latency-var") else LOGS
    size = tuple(int(v) for v in args.photo_size.lower().split("x"))

    run_started = time.perf_counter()
    LOGS.mkdir(parents=True, exist_ok=True)
    env = private_env(args.broker, args.vision_threads)
    # The driver's own Django (counts, sample photos) must see the private environment too,
    # set before anything imports Django settings.
    os.environ.update({k: env[k] for k in env})
    if args.code == "head":
        CODE = snapshot_head()
        log(f"running the project's code from a snapshot of HEAD: {CODE}")
    sys.path.insert(0, str(CODE))

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    log(f"private environment {VAR} (broker: {'redis ' + REDIS_URL if args.broker == 'redis' else 'embedded filesystem'})")
    report: dict = {
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": os.getloadavg(),
                    "shared": "2 cores shared with other work (tests, other benchmarks) during the run"},  # fmt: skip
        "git": git_state(),
        "code": args.code,
        "broker": REDIS_URL if args.broker == "redis" else "filesystem:// (kombu, polling_interval 1 s default)",
    }
    rows: list[dict] = []
    try:
        report["migrate_seconds"] = round(manage(env, "migrate", "--no-input", "-v", "1"), 1)
        import django

        django.setup()
        report["catalog"] = build_catalog(env, args.catalog)
        report["indexing"] = {}
        workers_max = max(1 if c == 1 else min(c, args.max_worker_concurrency) for c in args.concurrency)
        warm_count = max(args.warmup, 2 * workers_max)
        t0 = time.perf_counter()
        all_photos = street_photos(args.scans + warm_count, size)
        photos, warmup = all_photos[: args.scans], all_photos[args.scans :]
        log(f"{len(all_photos)} street photos {size[0]}x{size[1]}, mean "
            f"{statistics.fmean(len(p['jpeg']) for p in photos) / 1024:.0f} KB, made in {time.perf_counter() - t0:.1f} s")
        from django.db import connections

        connections.close_all()  # the driver stays out of the database while measuring

        for key in args.models:
            report["indexing"][key] = ensure_vectors(env, key)  # opens a connection; closed again below
            connections.close_all()
            for concurrency in args.concurrency:
                log(f"measuring {key} at concurrency {concurrency} ({args.scans} scans)")
                row = run_setting(env, key, concurrency, photos, warmup, args)
                rows.append(row)
                log(f"  p50 {fmt(row['total_ms']['p50'])} ms, p95 {fmt(row['total_ms']['p95'])} ms, "
                    f"compute p50 {fmt(row['compute_ms']['p50'])} ms, {fmt(row['throughput_scans_per_s'], 2)} scans/s, "
                    f"top-5 hits {fmt((row['hit_top5'] or 0) * 100)} %, load {row['loadavg_after'][0]:.1f}")
                report["results"] = rows
                Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    finally:
        stop_all()
        stop_database(env)
        report["runtime_seconds"] = round(time.perf_counter() - run_started, 1)
        report["machine"]["loadavg_end"] = os.getloadavg()
        report["results"] = rows
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))

    print_table(rows)
    print(f"\nCatalog: {report['catalog']['products']} products, {report['catalog']['images']} pictures. "
          f"Broker: {report['broker']}. Load average at start {report['machine']['loadavg_start'][0]:.1f}, "
          f"end {report['machine']['loadavg_end'][0]:.1f} on {os.cpu_count()} cores (shared machine: compare ratios).")
    print(f"Runtime {report['runtime_seconds'] / 60:.1f} min. JSON: {args.json}")


if __name__ == "__main__":
    main()
