"""The Celery app and the one place where the queues are declared.

Workers are started per queue in production (`celery -A shop worker -Q vision`), so that model
work scales on its own machines; `make run` starts one worker that consumes all of them.
"""

import logging
import os
from functools import partial

from celery import Celery, shared_task
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_init, worker_process_init
from kombu import Queue

from shop import vision_adapter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")


class Queues:
    VISION = "vision"  # model work: decoding, detection, embedding, matching
    DEFAULT = "default"  # short bookkeeping tasks
    REPORTS = "reports"  # report generation and periodic clean-up

    ALL = (VISION, DEFAULT, REPORTS)


app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = tuple(Queue(name, routing_key=name) for name in Queues.ALL)
app.conf.task_default_queue = Queues.DEFAULT
app.conf.task_default_routing_key = Queues.DEFAULT


def route_to_task_queue(name, args, kwargs, options, task=None, **_):
    """Send each task to the queue its decorator below named."""
    queue = getattr(task, "shop_queue", Queues.DEFAULT)
    return {"queue": queue, "routing_key": queue}


app.conf.task_routes = (route_to_task_queue,)
app.autodiscover_tasks()


def vision_task(*args, **options):
    """`shared_task` for the vision queue.

    A message on it is acknowledged only after the task finished, and requeued when the worker
    process dies (OOM, kill -9), so a crash never loses a scan; tasks on it must be idempotent.
    """
    from django.conf import settings

    defaults = {
        "shop_queue": Queues.VISION,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "soft_time_limit": settings.VISION_TASK_SOFT_TIME_LIMIT,
        "time_limit": settings.VISION_TASK_TIME_LIMIT,
    }
    return shared_task(*args, **{**defaults, **options})


@worker_init.connect
def _retain_freed_memory(**_):
    """Before the pool forks: vision tasks reuse freed pages instead of faulting in fresh ones
    for every photo (see vision.memory)."""
    vision_adapter.retain_freed_memory()


@worker_init.connect
def _load_the_creative_index_before_forking(sender=None, **_):
    """A worker consuming the vision queue loads the creative index once, in its parent process:
    the pool's processes share it (see shop.campaigns.recognition.load_before_fork). A failure here
    (database or storage down) leaves it to each process's first scan, as without this step."""
    queues = sender.app.amqp.queues if sender is not None else {}
    if Queues.VISION not in set(getattr(queues, "consume_from", None) or queues):
        return
    import logging
    import time

    from django.db import connections

    from shop.campaigns import recognition

    logger, started = logging.getLogger("shop.campaigns.recognition"), time.perf_counter()
    try:
        creatives = recognition.load_before_fork()
    except Exception:
        logger.exception("creative index not loaded before the pool forked; each process loads it at its first scan")
        recognition.reset()
    else:
        logger.info("creative index loaded before the pool forked", extra={
            "creatives": creatives, "seconds": round(time.perf_counter() - started, 2)})
    finally:
        connections.close_all()  # the forked processes open their own


@worker_process_init.connect
def _vision_threads_after_fork(**_):
    """In each pool process of a vision worker: `VISION_THREADS` (when set) for OpenCV and FAISS as
    for torch, one process per core and one thread each, so that the processes' SIFT passes and index
    searches do not oversubscribe the cores (see vision.threads); else FAISS's threads back after the
    parent's index loading. A worker of the other queues imports neither library."""
    import logging

    from django.conf import settings

    from shop.campaigns.recognition import after_fork

    if not after_fork(settings.VISION_THREADS):
        return
    logging.getLogger("shop.vision").info("vision threads of this worker process", extra={
        "vision_threads": settings.VISION_THREADS, **vision_adapter.threads_in_use()})


default_task = partial(shared_task, shop_queue=Queues.DEFAULT)
reports_task = partial(shared_task, shop_queue=Queues.REPORTS)


def send_or_leave_to_sweep(task, *args, what: str, sweep: str) -> None:
    """Send `task` (after a commit). A broker that does not take the message (down, restarting) costs
    the caller nothing: the work stays marked undone in the database, this is logged, and the periodic
    `sweep` task does it later (before, the request answered 500 after its data was committed)."""
    try:
        task.delay(*args)
    except Exception:
        logging.getLogger(__name__).exception(
            f"{what} not queued: the broker did not take it; {sweep} will send it", extra={"task": task.name})


@before_task_publish.connect
def _propagate_request_id(headers=None, **_):
    from shop.core.logging import current_request_id

    request_id = current_request_id()
    if headers is not None and request_id:
        headers.setdefault("request_id", request_id)


@task_prerun.connect
def _bind_request_id(task=None, **_):
    from shop.core.logging import bind_request_id

    bind_request_id(getattr(task.request, "request_id", None) if task else None)


@task_postrun.connect
def _unbind_request_id(**_):
    from shop.core.logging import bind_request_id

    bind_request_id(None)
