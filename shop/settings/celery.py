"""Celery settings. The queues themselves are declared in shop/celery.py."""

from shop.celery import Queues
from shop.settings.env import BASE_DIR, VAR_DIR, env

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
BROKER_EMBEDDED = not CELERY_BROKER_URL
EMBEDDED_BROKER_DIR = BASE_DIR / env.str("EMBEDDED_BROKER_DIR", default=str(VAR_DIR / "broker"))

if BROKER_EMBEDDED:
    # kombu's filesystem transport: a real broker that needs no server, for one machine.
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(EMBEDDED_BROKER_DIR / "messages"),
        "data_folder_out": str(EMBEDDED_BROKER_DIR / "messages"),
        "control_folder": str(EMBEDDED_BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in ("messages", "control"):
        (EMBEDDED_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Redis only: a message taken by a worker that died is delivered again after this many seconds;
    # it must exceed the longest task (VISION_TASK_TIME_LIMIT). RabbitMQ redelivers at once.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600)}

CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Results live in the database rows that tasks write; nothing reads Celery results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

VISION_TASK_SOFT_TIME_LIMIT = env.int("VISION_TASK_SOFT_TIME_LIMIT", default=120)
VISION_TASK_TIME_LIMIT = env.int("VISION_TASK_TIME_LIMIT", default=150)
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=30)
# How often a vision worker writes its creative index as a snapshot when creatives changed (0: never;
# `manage.py build_creative_index` still does): fresh workers load the newest instead of building it.
CREATIVE_INDEX_SNAPSHOT_SECONDS = env.int("CREATIVE_INDEX_SNAPSHOT_SECONDS", default=600)

CELERY_BEAT_SCHEDULE = {
    # A heartbeat per queue: /readyz and admin show which workers answer on which queue.
    **{
        f"worker-heartbeat-{queue}": {
            "task": "shop.core.tasks.worker_heartbeat",
            "schedule": WORKER_HEARTBEAT_SECONDS,
            "args": (queue,),
            "options": {"queue": queue, "expires": WORKER_HEARTBEAT_SECONDS},
        }
        for queue in Queues.ALL
    },
    "purge-scan-photos": {"task": "shop.scans.tasks.purge_scan_photos", "schedule": 3600.0},
    "requeue-stale-scans": {"task": "shop.scans.tasks.requeue_stale_scans", "schedule": 60.0},
    # files an erasure or a deleted creative left to delete (the storage down or slow then)
    "delete-pending-files": {"task": "shop.core.tasks.delete_pending_files", "schedule": 600.0,
                             "options": {"expires": 600}},
    "purge-idempotency-records": {"task": "shop.core.tasks.purge_idempotency_records", "schedule": 3600.0},
    # checkouts that stopped between writing the order and recording the payment
    "reconcile-pending-orders": {"task": "shop.carts.tasks.reconcile_pending_orders", "schedule": 60.0,
                                 "options": {"expires": 60}},
    # images left pending when their indexing message was lost (the broker down at the save, restarted)
    "index-dirty-images": {"task": "catalog.tasks.index_dirty_images", "schedule": 600.0, "options": {"expires": 600}},
    # back-fills of an enabled key whose message was lost or whose worker died
    "resume-backfills": {"task": "catalog.tasks.resume_backfills", "schedule": 600.0, "options": {"expires": 600}},
    # creatives' near-duplicate checks that a vision worker never answered (the message lost)
    "recheck-creative-duplicates": {"task": "shop.campaigns.tasks.recheck_creative_duplicates", "schedule": 600.0,
                                    "options": {"expires": 600}},
}
if CREATIVE_INDEX_SNAPSHOT_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["snapshot-creative-index"] = {
        "task": "shop.campaigns.tasks.snapshot_creative_index",
        "schedule": float(CREATIVE_INDEX_SNAPSHOT_SECONDS),
        "options": {"expires": CREATIVE_INDEX_SNAPSHOT_SECONDS},
    }
