"""A real Celery worker process, on Redis and on the embedded broker, writes rows the test sees."""

import pytest
from kombu import Connection

from shop.celery import Queues
from shop.core.models import WorkerHeartbeat
from shop.core.tasks import worker_heartbeat
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/15"


def _publish_and_wait(connection: Connection, proc) -> WorkerHeartbeat:
    worker_heartbeat.apply_async(args=[Queues.DEFAULT], queue=Queues.DEFAULT, connection=connection)

    def row_written():
        if proc.poll() is not None:
            raise AssertionError("worker exited:\n" + proc.log_path.read_text())
        return WorkerHeartbeat.objects.filter(queue=Queues.DEFAULT).first()

    try:
        return wait_until(row_written, timeout=90, message="the worker to write its heartbeat row")
    except AssertionError:
        print(proc.log_path.read_text())
        raise


def test_worker_on_redis_broker_runs_a_task_that_writes_a_row(worker_process):
    try:
        with Connection(REDIS_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception:
        pytest.fail("Redis must answer on 127.0.0.1:6379 (.ci/run starts it)")
    with worker_process({"CELERY_BROKER_URL": REDIS_URL, "VISION_THREADS": "1"}) as proc, \
            Connection(REDIS_URL) as conn:
        heartbeat = _publish_and_wait(conn, proc)
    assert heartbeat.hostname.startswith("test-")
    # a worker of the default queue leaves OpenCV and FAISS alone (a vision worker logs their threads)
    assert "vision threads of this worker process" not in proc.log_path.read_text()


def test_worker_on_embedded_broker_runs_a_task_that_writes_a_row(worker_process, tmp_path):
    broker_dir = tmp_path / "broker"
    for folder in ("messages", "control"):
        (broker_dir / folder).mkdir(parents=True)
    options = {
        "data_folder_in": str(broker_dir / "messages"),
        "data_folder_out": str(broker_dir / "messages"),
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }
    env = {"CELERY_BROKER_URL": "", "EMBEDDED_BROKER_DIR": str(broker_dir)}
    with worker_process(env) as proc, Connection("filesystem://", transport_options=options) as conn:
        heartbeat = _publish_and_wait(conn, proc)
    assert heartbeat.hostname.startswith("test-")
