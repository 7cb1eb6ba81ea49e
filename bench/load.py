"""Sustained load: the highest scan rate and read rate whose p95 stays under target with 0 % errors.

Run from the repository root:

    .venv/bin/python bench/load.py [--step-seconds 60] [--sustain-seconds 600]
        [--scan-rates 0.5 1 2 4] [--read-rates 10 25 50 100] [--only scans|reads] [--per-category 3]

A driver for a PRIVATE environment (like bench/faults.py): every process it starts gets
SHOP_VAR_DIR=bench/out/load-var (its own embedded PostgreSQL + pgvector and media, wiped at the
start) and its own redis-server on a free loopback port; traffic goes only to 127.0.0.1.

1. `migrate`, `seed_demo --per-category N --no-marketing` (vectors made inline with the
   weights-free VISION_MODEL=color-texture-v1), scan throttles off (THROTTLE_SCANS_PER_SHOPPER= and
   THROTTLE_SCANS_PER_IP= empty, and registrations: THROTTLE_REGISTRATIONS_PER_IP=).
2. gunicorn shop.wsgi (--workers 2 --threads 4 --keep-alive 75, like `make run`) and one Celery worker
   (-Q vision --concurrency 1) as subprocesses; /readyz awaited; shoppers register through the API;
   warm-up scans.
3. Search, open loop: arrivals at a fixed rate per step (a scheduler thread submits each request at
   its planned time to a large thread pool; latency counts from the PLANNED time, so a client or
   server backlog shows up as latency rather than as a lower offered rate).
   (a) scans/s: POST /api/v1/scans/?wait=10 (multipart street photo), then GET /api/v1/scans/{id}/
       every --poll s until done; upload-to-results latency; target p95 <= 3 s.
   (b) reads/s: GET scan detail 40 %, scan list 20 %, product similar 30 %, /healthz 10 %;
       target p95 <= 200 ms.
   A step passes when p95 <= target and there are no errors (non-2xx, exception, timeout, failed
   scan). The search stops at the first failing step; the best rate is the last passing one.
4. Sustain: each best rate held for --sustain-seconds; p50/p95/errors over the whole period.

Prints a table; JSON to bench/out/load.json. Every process started here, and the private
PostgreSQL, is stopped at the end (also on Ctrl-C, SIGTERM or an exception).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import children, free_port, port_open, start, stop_all, wait_for, wait_ready  # noqa: E402

OUT = ROOT / "bench" / "out"
VAR = OUT / "load-var"
LOGS = OUT / "load-logs"
PYTHON = sys.executable
SCAN_TARGET_S = 3.0
READ_TARGET_S = 0.200
READ_MIX = (("scan_detail", 0.4), ("scan_list", 0.2), ("similar", 0.3), ("healthz", 0.1))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


REDIS_PORT = free_port()
ENV = {
    **os.environ,
    "SHOP_VAR_DIR": str(VAR),
    "DATABASE_URL": "",  # the embedded PostgreSQL under SHOP_VAR_DIR, whatever a .env says
    "CELERY_BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
    "AWS_STORAGE_BUCKET_NAME": "",  # local media under SHOP_VAR_DIR
    "VISION_MODEL": "color-texture-v1",  # weights-free
    "THROTTLE_SCANS_PER_SHOPPER": "",
    "THROTTLE_SCANS_PER_IP": "",
    "THROTTLE_REGISTRATIONS_PER_IP": "",
    "DJANGO_SETTINGS_MODULE": "shop.settings",
    "DJANGO_DEBUG": "false",
    "HF_HUB_OFFLINE": "1",
    "LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",
}
os.environ.update(ENV)


# --- the client --------------------------------------------------------------------------------

_local = threading.local()


def session(token: str | None) -> requests.Session:
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    if token not in sessions:
        s = requests.Session()
        if token:
            s.headers["Authorization"] = f"Token {token}"
        sessions[token] = s
    return sessions[token]


def one_scan(base: str, token: str, jpeg: bytes, planned: float, poll: float, give_up: float) -> dict:
    s = session(token)
    try:
        r = s.post(f"{base}/api/v1/scans/?wait=10", files={"photo": ("photo.jpg", jpeg, "image/jpeg")}, timeout=60)
        if r.status_code not in (200, 202):
            return {"ok": False, "error": f"POST {r.status_code}: {r.text[:200]}", "latency": time.monotonic() - planned}
        body = r.json()
        in_post = body["status"] in ("done", "failed")
        while body["status"] not in ("done", "failed"):
            if time.monotonic() - planned > give_up:
                return {"ok": False, "error": f"not done after {give_up:.0f} s", "latency": time.monotonic() - planned, "id": body["id"]}
            time.sleep(poll)
            g = s.get(f"{base}/api/v1/scans/{body['id']}/", timeout=30)
            if g.status_code != 200:
                return {"ok": False, "error": f"GET {g.status_code}: {g.text[:200]}", "latency": time.monotonic() - planned}
            body = g.json()
        latency = time.monotonic() - planned
        if body["status"] != "done":
            return {"ok": False, "error": f"scan failed: {body.get('failure_reason')}", "latency": latency}
        return {"ok": True, "latency": latency, "in_post": in_post, "id": body["id"]}
    except (requests.RequestException, ValueError, KeyError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}", "latency": time.monotonic() - planned}


def one_read(base: str, what: str, token: str, target, planned: float) -> dict:
    url = {
        "scan_detail": f"{base}/api/v1/scans/{target}/",
        "scan_list": f"{base}/api/v1/scans/",
        "similar": f"{base}/api/v1/products/{target}/similar/",
        "healthz": f"{base}/healthz",
    }[what]
    try:
        r = session(None if what == "healthz" else token).get(url, timeout=10)
        latency = time.monotonic() - planned
        if r.status_code != 200:
            return {"ok": False, "what": what, "error": f"{what} {r.status_code}: {r.text[:200]}", "latency": latency}
        return {"ok": True, "what": what, "latency": latency}
    except requests.RequestException as exc:
        return {"ok": False, "what": what, "error": f"{what} {type(exc).__name__}: {str(exc)[:200]}",
                "latency": time.monotonic() - planned}  # fmt: skip


def open_loop(rate: float, seconds: float, make_call, max_workers: int) -> tuple[list[dict], float]:
    """Submit make_call(i, planned_time) at `rate` per second for `seconds`; wait for all answers."""
    n = max(1, int(round(rate * seconds)))
    futures = []
    lag = 0.0
    with concurrent.futures.ThreadPoolExecutor(max_workers) as pool:
        t0 = time.monotonic() + 0.05
        for i in range(n):
            planned = t0 + i / rate
            delay = planned - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                lag = max(lag, -delay)
            futures.append(pool.submit(make_call, i, planned))
        results = [f.result() for f in futures]
    return results, lag


def summarize(results: list[dict], rate: float, seconds: float, target: float, wall: float, lag: float) -> dict:
    lat = [r["latency"] for r in results if r["ok"]]
    errors = [r for r in results if not r["ok"]]
    pct = (lambda q: round(float(np.percentile(lat, q)) * 1000, 1)) if lat else (lambda q: None)
    p95 = pct(95)
    samples: dict[str, int] = {}
    for e in errors:
        samples[e["error"][:120]] = samples.get(e["error"][:120], 0) + 1
    row = {
        "rate": rate,
        "seconds": seconds,
        "requests": len(results),
        "ok": len(lat),
        "errors": len(errors),
        "error_pct": round(100 * len(errors) / len(results), 2) if results else 0.0,
        "p50_ms": pct(50),
        "p95_ms": p95,
        "p99_ms": pct(99),
        "max_ms": round(max(lat) * 1000, 1) if lat else None,
        "wall_s": round(wall, 1),
        "scheduler_lag_ms": round(lag * 1000, 1),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "error_samples": dict(sorted(samples.items(), key=lambda kv: -kv[1])[:5]),
    }
    row["passed"] = bool(p95 is not None and p95 <= target * 1000 and not errors)
    if any("in_post" in r for r in results):
        ok = [r for r in results if r["ok"]]
        row["done_within_post_pct"] = round(100 * sum(r["in_post"] for r in ok) / len(ok), 1) if ok else None
    if any("what" in r for r in results):
        per = {}
        for what, _ in READ_MIX:
            sub = [r["latency"] for r in results if r.get("what") == what and r["ok"]]
            per[what] = {"n": sum(1 for r in results if r.get("what") == what),
                         "p95_ms": round(float(np.percentile(sub, 95)) * 1000, 1) if sub else None}  # fmt: skip
        row["per_endpoint"] = per
    return row


def print_row(kind: str, row: dict, unit: str) -> None:
    print(f"  {kind:<8} {row['rate']:>6g} {unit:<8} n={row['requests']:<5} ok={row['ok']:<5} "
          f"err={row['errors']:<4} p50={row['p50_ms']!s:>8} ms  p95={row['p95_ms']!s:>8} ms  "
          f"max={row['max_ms']!s:>8} ms  lag={row['scheduler_lag_ms']:>6} ms  load={row['loadavg_1m_after']:<5} "
          f"{'PASS' if row['passed'] else 'FAIL'}", flush=True)  # fmt: skip
    for err, count in row["error_samples"].items():
        print(f"           {count} x {err}", flush=True)


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step-seconds", type=float, default=60)
    parser.add_argument("--sustain-seconds", type=float, default=600)
    parser.add_argument("--scan-rates", type=float, nargs="+", default=[0.5, 1, 2, 4])
    parser.add_argument("--read-rates", type=float, nargs="+", default=[10, 25, 50, 100])
    parser.add_argument("--only", choices=["scans", "reads"], default=None)
    parser.add_argument("--per-category", type=int, default=3, help="seed_demo catalog size (18 categories)")
    parser.add_argument("--shoppers", type=int, default=8)
    parser.add_argument("--photos", type=int, default=40, help="distinct street photos cycled through")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between GETs of an unfinished scan")
    parser.add_argument("--scan-give-up", type=float, default=60, help="a scan not done after this many s is an error")
    args = parser.parse_args()

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    begun = time.monotonic()
    if VAR.exists():
        shutil.rmtree(VAR)
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()

    report: dict = {
        "config": {k: v for k, v in vars(args).items()},
        "server": {"gunicorn": "--workers 2 --threads 4 --keep-alive 75", "celery": "-Q vision --concurrency 1",
                   "vision_model": ENV["VISION_MODEL"], "throttles": "off"},  # fmt: skip
        "targets": {"scan_p95_ms": SCAN_TARGET_S * 1000, "read_p95_ms": READ_TARGET_S * 1000},
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
    }
    redis = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    children.append(redis)
    django_ready = False
    interrupted = False
    try:
        wait_for(lambda: port_open(REDIS_PORT), 20, "redis")
        import django

        django.setup()
        django_ready = True
        from django.core.management import call_command

        from catalog.models import Product
        from shop import vision_adapter
        from vision.synthetic import place_on_background

        t = time.monotonic()
        call_command("migrate", verbosity=0)
        call_command("seed_demo", per_category=args.per_category, no_marketing=True, verbosity=0)
        products = list(Product.objects.filter(active=True, images__isnull=False).distinct().order_by("id"))
        report["catalog"] = {"products": len(products), "setup_s": round(time.monotonic() - t, 1)}
        log(f"catalog: {len(products)} products seeded in {report['catalog']['setup_s']} s")

        photos = []
        for n in range(args.photos):
            product = products[n % len(products)]
            with product.images.first().image.open("rb") as f:
                shot = vision_adapter.decode(f.read()).image
            out = io.BytesIO()
            place_on_background(shot, seed=1000 + n).image.save(out, "JPEG", quality=88)
            photos.append(out.getvalue())
        report["catalog"]["photo_kb_median"] = round(float(np.median([len(p) for p in photos])) / 1024, 1)
        from django.db import connections

        connections.close_all()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        worker = start([PYTHON, "-m", "celery", "-A", "shop", "worker", "-Q", "vision", "--concurrency", "1",
                        "-n", "loadbench@%h", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                        "--without-heartbeat"], cwd=ROOT, env=ENV, log_path=LOGS / "worker.log")  # fmt: skip
        web = start([PYTHON, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{port}",
                     "--workers", "2", "--threads", "4", "--timeout", "120", "--keep-alive", "75"], cwd=ROOT, env=ENV, log_path=LOGS / "web.log")  # fmt: skip
        ready = wait_ready(base, [worker, web])
        report["readyz"] = ready
        tokens = []
        for _ in range(args.shoppers):
            r = requests.post(f"{base}/api/v1/shoppers/", json={"platform": "android"}, timeout=30)
            r.raise_for_status()
            tokens.append(r.json()["token"])
        warm = [one_scan(base, tokens[i % len(tokens)], photos[i], time.monotonic(), args.poll, 120) for i in range(4)]
        if not all(w["ok"] for w in warm):
            raise RuntimeError(f"warm-up scans failed: {[w.get('error') for w in warm]}")
        log(f"gunicorn on {base}, worker up; warm-up scans {[round(w['latency'], 2) for w in warm]} s")
        scan_ids: dict[str, list[int]] = {tok: [] for tok in tokens}
        for i, w in enumerate(warm):
            scan_ids[tokens[i % len(tokens)]].append(w["id"])

        from shop.scans.models import Scan

        def drain(timeout: float = 120) -> None:
            """Let scans left over from a failing step finish, so the next phase starts idle."""
            try:
                wait_for(lambda: not Scan.objects.filter(status__in=["pending", "processing"]).exists(), timeout, "drain", 0.5)
            except TimeoutError:
                log("drain: scans still unfinished; purging the vision queue")
                subprocess.run([PYTHON, "-m", "celery", "-A", "shop", "purge", "-f", "-Q", "vision"], cwd=ROOT,
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # fmt: skip
            connections.close_all()

        def scan_call(i: int, planned: float) -> dict:
            tok = tokens[i % len(tokens)]
            result = one_scan(base, tok, photos[i % len(photos)], planned, args.poll, args.scan_give_up)
            if result["ok"]:
                scan_ids[tok].append(result["id"])
            return result

        def make_read_call(seed: int):
            rng = random.Random(seed)
            names = [w for w, _ in READ_MIX]
            weights = [p for _, p in READ_MIX]
            product_ids = [p.id for p in products]

            def read_call(i: int, planned: float) -> dict:
                what = rng.choices(names, weights)[0]
                tok = tokens[i % len(tokens)]
                target = None
                if what == "scan_detail":
                    target = rng.choice(scan_ids[tok] or [x for ids in scan_ids.values() for x in ids])
                    tok = next(t for t, ids in scan_ids.items() if target in ids)
                elif what == "similar":
                    target = rng.choice(product_ids)
                return one_read(base, what, tok, target, planned)

            return read_call

        phases = [("scans", args.scan_rates, SCAN_TARGET_S, "scans/s"), ("reads", args.read_rates, READ_TARGET_S, "reads/s")]
        for kind, rates, target, unit in phases:
            if args.only and args.only != kind:
                continue
            print(f"\n{kind}: open-loop steps of {args.step_seconds:g} s, target p95 <= {target * 1000:g} ms, 0 errors",
                  flush=True)  # fmt: skip
            rows, best = [], None
            for step, rate in enumerate(rates):
                call = scan_call if kind == "scans" else make_read_call(step)
                t = time.monotonic()
                results, lag = open_loop(rate, args.step_seconds, call, 64 if kind == "scans" else 256)
                row = summarize(results, rate, args.step_seconds, target, time.monotonic() - t, lag)
                rows.append(row)
                print_row(kind, row, unit)
                if kind == "scans":
                    drain()
                if not row["passed"]:
                    break
                best = rate
            sustained = None
            if best is not None and args.sustain_seconds > 0:
                log(f"{kind}: holding {best:g} {unit} for {args.sustain_seconds:g} s")
                call = scan_call if kind == "scans" else make_read_call(99)
                t = time.monotonic()
                results, lag = open_loop(best, args.sustain_seconds, call, 64 if kind == "scans" else 256)
                sustained = summarize(results, best, args.sustain_seconds, target, time.monotonic() - t, lag)
                print_row("sustain", sustained, unit)
                if kind == "scans":
                    drain()
            report[kind] = {"steps": rows, "best_rate": best, "sustained": sustained}
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc}); stopping everything")
    finally:
        stop_all()
        if django_ready:
            from django.conf import settings
            from django.db import connections

            from shop import embedded_db

            connections.close_all()
            embedded_db.stop(settings.EMBEDDED_PGDATA)
        report["runtime_s"] = round(time.monotonic() - begun, 1)
        report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "load.json").write_text(json.dumps(report, indent=2, default=str))

    print("\nsummary (2-core machine shared with other work; client, server, worker and database on the same CPUs)")
    print(f"{'phase':<7} {'rate':>6} {'n':>5} {'err':>4} {'p50 ms':>9} {'p95 ms':>9}  result")
    for kind in ("scans", "reads"):
        if kind not in report:
            continue
        for row in report[kind]["steps"]:
            print(f"{kind:<7} {row['rate']:>6g} {row['requests']:>5} {row['errors']:>4} {row['p50_ms']!s:>9} "
                  f"{row['p95_ms']!s:>9}  {'pass' if row['passed'] else 'FAIL'}")  # fmt: skip
        s = report[kind]["sustained"]
        print(f"{kind}: best {report[kind]['best_rate']} /s"
              + (f"; sustained {s['seconds']:g} s: n={s['requests']} err={s['errors']} p50={s['p50_ms']} ms "
                 f"p95={s['p95_ms']} ms {'pass' if s['passed'] else 'FAIL'}" if s else ""))  # fmt: skip
    print(f"runtime {report['runtime_s']} s; JSON in {OUT / 'load.json'}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
