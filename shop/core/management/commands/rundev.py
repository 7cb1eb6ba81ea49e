"""`make run`: one command that runs the whole backend on this machine.

It migrates, loads the demo catalog on first start, creates a local superuser once, then supervises
a real Celery worker (all queues, with beat) and gunicorn on 127.0.0.1:8000. Ctrl-C, SIGTERM or
SIGHUP (the terminal closed), at any moment (a first start's migrations included), stops the children,
then the embedded PostgreSQL, so nothing is left running; the children also get SIGTERM if this
supervisor is killed outright. A port already in use, or a child that exits on its own, ends the
command with an error (exit status 1), everything stopped.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from shop import embedded_db, vision_adapter
from shop.celery import Queues

ADMIN_USERNAME = "admin"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In a child, before it runs: SIGTERM when the supervisor dies (killed with -9, say), so that no
    server is left holding the port and no beat sending (Linux; elsewhere a no-op)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (AttributeError, OSError):
        pass


def _port_free(bind: str) -> bool:
    host, _, port = bind.rpartition(":")
    with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]") or "0.0.0.0", int(port)))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Run the API, admin and a Celery worker locally (the `make run` entry point)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--worker-concurrency", type=int, default=2)
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo data on first start.")

    def handle(self, *args, **options):
        self._supervising = self._stopping = False

        def request_stop(signum, frame):
            self._stopping = True
            if signum == signal.SIGHUP:  # the terminal is gone: writing to it would fail (EIO) mid-stop
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
            if not self._supervising:  # migrating, loading the demo: stop there
                raise KeyboardInterrupt

        for signum in STOP_SIGNALS:
            signal.signal(signum, request_stop)
        children: dict[str, subprocess.Popen] = {}
        if not _port_free(options["bind"]):
            # another `make run` may be using this database: stopped only if this command started it
            self._stop(children, database=bool(embedded_db._server and embedded_db._server.started_here))
            raise CommandError(f"{options['bind']} is in use (another `make run`?): stop it, or pass --bind.")
        try:
            self._run(options, children)
        except KeyboardInterrupt:
            self.stdout.write("Interrupted.")
        finally:
            self._stop(children)

    def _run(self, options, children: dict[str, subprocess.Popen]) -> None:
        call_command("migrate", interactive=False, verbosity=1)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not options["no_demo"] and "seed_demo" in get_commands():
            call_command("seed_demo", if_empty=True)
        password_note = self._ensure_local_superuser()
        model = vision_adapter.model_status()
        self.stdout.write(
            f"Vision model: {model.get('key')} (pretrained: {model.get('pretrained')}, "
            f"weights: {model.get('weights_source')})" + (f" — {model['error']}" if model.get("error") else "")
        )

        self._supervising = True  # from here a stop signal only asks: no child is left half-started
        self._start_children(options, children)
        self.stdout.write(self.style.SUCCESS(f"Shop-the-look is running on http://{options['bind']}/"))
        self.stdout.write(f"  API docs: http://{options['bind']}/api/docs/   readiness: http://{options['bind']}/readyz")
        self.stdout.write(f"  Admin:    http://{options['bind']}/admin/   {password_note}")
        self.stdout.write("  Press Ctrl-C to stop everything.")
        self._supervise(children)

    def _ensure_local_superuser(self) -> str:
        """Create the local `admin` once; its password is kept in var/ (local development only)."""
        password_file = Path(settings.VAR_DIR) / "admin-password.txt"
        users = get_user_model().objects
        if not users.filter(username=ADMIN_USERNAME).exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser(ADMIN_USERNAME, email="", password=password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        if password_file.exists():
            return f"user `{ADMIN_USERNAME}`, password `{password_file.read_text().strip()}` (from {password_file})"
        return f"user `{ADMIN_USERNAME}` (password set earlier; `manage.py changepassword {ADMIN_USERNAME}` resets it)"

    def _start_children(self, options, children: dict[str, subprocess.Popen]) -> None:
        python = sys.executable
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings", "PYTHONUNBUFFERED": "1"}
        if not settings.VISION_THREADS:
            # Each worker process would otherwise run torch, OpenCV and FAISS with one thread per core:
            # N processes oversubscribe the CPU (bench/scan_latency.py: CLIP throughput fell from 2.0
            # to 1.5 scans/s with 2 processes, one thread each gave 3.2; bench/ad_recognition.py: ad
            # scans 9 % slower).
            env["VISION_THREADS"] = str(max(1, (os.cpu_count() or 1) // options["worker_concurrency"]))
        worker = [
            python, "-m", "celery", "-A", "shop", "worker", "--beat",
            "-Q", ",".join(Queues.ALL),
            "--concurrency", str(options["worker_concurrency"]),
            "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
            "--loglevel", settings.LOG_LEVEL,
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        web = [
            python, "-m", "gunicorn", "shop.wsgi:application",
            "--bind", options["bind"],
            "--workers", str(options["web_workers"]),
            "--threads", "4",
            "--timeout", "60",
            # gunicorn's 2 s default closes idle connections that clients are about to reuse
            # (connection resets under load, bench/load.py); 75 s outlives clients and proxies.
            "--keep-alive", "75",
        ]  # fmt: skip
        # Own process groups: the terminal's Ctrl-C reaches only this supervisor, which stops
        # the children in order (a second SIGINT would make Celery abandon running tasks).
        for name, cmd in (("worker", worker), ("web", web)):
            children[name] = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent)

    def _supervise(self, children: dict[str, subprocess.Popen]) -> None:
        while not self._stopping:
            exited = [name for name, proc in children.items() if proc.poll() is not None]
            if exited:
                raise CommandError(f"{', '.join(exited)} exited on its own (its log is above); everything stopped.")
            time.sleep(0.5)

    def _stop(self, children: dict[str, subprocess.Popen], *, database: bool = True) -> None:
        for signum in STOP_SIGNALS:  # a second Ctrl-C does not cut the stopping short
            signal.signal(signum, signal.SIG_IGN)
        if children:
            self.stdout.write("Stopping web server and worker...")
            for proc in children.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            for proc in children.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if settings.DATABASE_EMBEDDED and database:
            from django.db import connections

            connections.close_all()
            embedded_db.stop(settings.EMBEDDED_PGDATA)
            self.stdout.write("Embedded PostgreSQL stopped.")
        self.stdout.write(self.style.SUCCESS("Stopped."))
