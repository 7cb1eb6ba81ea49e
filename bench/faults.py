"""Faults with real processes: a vision worker killed mid-scan, a broker restart during a batch of
scans, a database restart, and S3 unreachable.

Runs in a private environment (its own SHOP_VAR_DIR with its own embedded PostgreSQL, and its own
Redis on a free loopback port), so it touches nothing else on the machine:

    .venv/bin/python bench/faults.py [--kills 20] [--batch 20]

Prints what happened and exits non-zero when a scan was lost, finished twice or left duplicate rows.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import free_port, port_open, wait_for  # noqa: E402

OUT = ROOT / "bench" / "out"
VAR = OUT / "faults-var"


REDIS_PORT = free_port()
ENV = {
    **os.environ,
    "SHOP_VAR_DIR": str(VAR),
    "CELERY_BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
    # A model slow enough on this CPU that a kill lands in the middle of a scan.
    "VISION_MODEL": "clip-vit-b-32",
    "VISION_ALLOW_RANDOM_WEIGHTS": "true",
    "DJANGO_SETTINGS_MODULE": "shop.settings",
    "PYTHONUNBUFFERED": "1",
    "LOG_LEVEL": "WARNING",
}
ENV.pop("DATABASE_URL", None)
os.environ.update(ENV)


def start_redis() -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    wait_for(lambda: port_open(REDIS_PORT), 20, "redis", 0.05)
    return proc


def start_worker(log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "shop", "worker", "-Q", "vision,default", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError:
        return 0, {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()
    if VAR.exists():
        shutil.rmtree(VAR)
    OUT.mkdir(parents=True, exist_ok=True)
    redis = start_redis()
    log = open(OUT / "faults-worker.log", "wb")
    import django

    django.setup()
    from django.core.management import call_command

    from catalog.models import Product
    from shop import embedded_db, vision_adapter
    from shop.scans.models import Scan, ScanItem, ScanMatch
    from shop.scans.services import scan_create
    from shop.shoppers.services import shopper_register
    from vision.synthetic import place_on_background

    results: dict = {}
    worker = web = None
    try:
        call_command("migrate", verbosity=0)
        call_command("seed_demo", per_category=2, no_marketing=True, verbosity=0)
        shopper, token = shopper_register(platform="ios")
        products = list(Product.objects.all())

        def photo(n: int):
            product = products[n % len(products)]
            with product.images.first().image.open("rb") as f:
                shot = vision_adapter.decode(f.read()).image
            out = io.BytesIO()
            place_on_background(shot, seed=n).image.save(out, "JPEG", quality=85)
            return vision_adapter.decode(out.getvalue())

        def consistent(scan_id) -> bool:
            items = list(ScanItem.objects.filter(scan_id=scan_id).values_list("position", flat=True))
            ranks = list(ScanMatch.objects.filter(item__scan_id=scan_id).values_list("item_id", "rank"))
            return len(items) == len(set(items)) and len(ranks) == len(set(ranks)) and items == list(range(len(items)))

        # 1. kill -9 the pool process in the middle of a scan, again and again.
        worker = start_worker(log)
        import psutil

        mid_scan = completed = broken = 0
        for n in range(args.kills):
            scan = scan_create(shopper=shopper, decoded=photo(n))
            wait_for(lambda: Scan.objects.filter(id=scan.id, status="processing").exists() or
                     Scan.objects.filter(id=scan.id, status="done").exists(), 120, "the scan to start", 0.05)  # fmt: skip
            children = psutil.Process(worker.pid).children()
            if Scan.objects.get(id=scan.id).status == "processing" and children:
                os.kill(children[0].pid, signal.SIGKILL)
                mid_scan += 1
            final = wait_for(lambda: Scan.objects.filter(id=scan.id, status__in=["done", "failed"]).first(), 180, "the scan to finish", 0.05)
            completed += final.status == "done"
            broken += not consistent(scan.id)
            print(f"kill {n + 1}/{args.kills}: status {final.status}, attempts {final.attempts}, consistent {consistent(scan.id)}")
        results["worker_kill"] = {"kills": args.kills, "landed_mid_scan": mid_scan, "done": completed, "inconsistent": broken}

        # 2. restart the broker (no persistence: queued messages are lost) during a batch.
        batch = [scan_create(shopper=shopper, decoded=photo(100 + n)).id for n in range(args.batch)]
        time.sleep(1.0)
        redis.send_signal(signal.SIGTERM)
        redis.wait()
        redis = start_redis()
        lost_at_restart = Scan.objects.filter(id__in=batch).exclude(status="done").count()
        from django.test import override_settings

        from shop.scans.tasks import requeue_stale_scans

        with override_settings(SCAN_REQUEUE_AFTER_SECONDS=0):
            time.sleep(2)
            requeued = requeue_stale_scans.apply().get()  # what beat runs every minute
        wait_for(lambda: not Scan.objects.filter(id__in=batch).exclude(status__in=["done", "failed"]).exists(), 600, "the batch", 0.05)
        results["broker_restart"] = {
            "batch": len(batch),
            "unfinished_at_restart": lost_at_restart,
            "requeued": requeued,
            "done": Scan.objects.filter(id__in=batch, status="done").count(),
            "inconsistent": sum(not consistent(s) for s in batch),
        }
        print("broker restart:", results["broker_restart"])

        # 3. restart the database under a running web server.
        port = free_port()
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                "--workers", "1", "--threads", "2"], cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, 120, "readyz", 0.05)
        from django.conf import settings
        from django.db import connections

        connections.close_all()
        embedded_db.stop(settings.EMBEDDED_PGDATA)
        down_ready, down_body = get(f"{base}/readyz")
        down_api, api_body = get(f"{base}/api/v1/scans/", token)
        started = time.monotonic()
        embedded_db.ensure_running(settings.EMBEDDED_PGDATA)
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, 60, "readyz after the restart", 0.05)
        results["database_restart"] = {
            "readyz_while_down": down_ready,
            "readyz_code": down_body.get("code"),
            "api_while_down": down_api,
            "api_code": api_body.get("code"),
            "recovered_after_s": round(time.monotonic() - started, 2),
            "api_after": get(f"{base}/api/v1/scans/", token)[0],
        }
        print("database restart:", results["database_restart"])
    finally:
        for proc in (web, worker):
            if proc is not None:
                stop(proc)
        redis.send_signal(signal.SIGTERM)
        redis.wait()
        from django.conf import settings

        embedded_db.stop(settings.EMBEDDED_PGDATA)
        log.close()
    (OUT / "faults.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    ok = (
        results["worker_kill"]["done"] == args.kills
        and results["worker_kill"]["inconsistent"] == 0
        and results["broker_restart"]["done"] == args.batch
        and results["broker_restart"]["inconsistent"] == 0
        and results["database_restart"]["readyz_while_down"] == 503
        and results["database_restart"]["api_while_down"] == 503
        and results["database_restart"]["api_after"] == 200
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
