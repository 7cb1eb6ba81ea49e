"""`make run`'s supervisor on a fresh data directory: ready, then Ctrl-C leaves nothing running."""

import http.client
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import time

import psutil
import pytest

from tests.conftest import REPO_ROOT, free_port, wait_until

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except (urllib.error.URLError, ConnectionError):
        return 0, {}


def _processes_using(path: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            environ = proc.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if path in cmdline or environ.get("SHOP_VAR_DIR") == path:
            found.append(proc)
    return found


def _assert_idle_connection_is_kept(port: int) -> None:
    """A client that keeps its connection open between requests (the mobile app, a proxy) can reuse
    it after a pause: the server does not close idle connections after 2 s, which under load reset
    requests sent just as the server closed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        first.read()
        assert first.status == 200 and not first.will_close
        local_port = connection.sock.getsockname()[1]
        time.sleep(4)
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        second.read()
        assert second.status == 200
        assert connection.sock.getsockname()[1] == local_port, "the idle connection was not kept"
    finally:
        connection.close()


def test_rundev_becomes_ready_and_ctrl_c_stops_everything(tmp_path):
    var_dir = tmp_path / "var"
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME")
    }
    env.update({"SHOP_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", "LOG_FORMAT": "text"})
    log_path = tmp_path / "rundev.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "rundev", "--bind", f"127.0.0.1:{port}", "--no-demo"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            status, body = wait_until(
                lambda: (lambda r: r if r[0] == 200 else None)(_get(f"http://127.0.0.1:{port}/readyz")),
                timeout=180,
                interval=1,
                message="/readyz to answer 200",
            )
        except AssertionError:
            proc.kill()
            print(log_path.read_text())
            raise
        assert body["checks"]["database"]["embedded"] is True
        assert (var_dir / "pgdata" / "PG_VERSION").exists()
        output = log_path.read_text()
        assert "user `admin`, password `" in output
        assert (var_dir / "admin-password.txt").read_text().strip() in output

        try:
            _assert_idle_connection_is_kept(port)
            # two worker processes share the cores instead of each running torch on all of them
            workers = [proc for proc in _processes_using(str(var_dir)) if "celery" in " ".join(proc.cmdline())]
            assert workers
            expected = str(max(1, (os.cpu_count() or 1) // 2))  # --worker-concurrency 2, VISION_THREADS unset
            if os.environ.get("VISION_THREADS", "0") != "0":
                expected = os.environ["VISION_THREADS"]
            assert {proc.environ().get("VISION_THREADS") for proc in workers} == {expected}
        except Exception:
            proc.send_signal(signal.SIGINT)  # the supervisor stops its children and PostgreSQL
            proc.wait(timeout=60)
            raise

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log_path.read_text()

    leftovers = wait_until(
        lambda: not _processes_using(str(var_dir)), timeout=15, message="every child process to exit"
    )
    assert leftovers
    output = log_path.read_text()
    assert "Embedded PostgreSQL stopped." in output
    assert "Traceback" not in output and "Exception ignored" not in output


def _rundev(tmp_path, port: int, log):
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME")}
    env.update({"SHOP_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1", "LOG_FORMAT": "text"})
    return subprocess.Popen([sys.executable, "manage.py", "rundev", "--bind", f"127.0.0.1:{port}", "--no-demo"],
                            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_rundev_on_a_port_in_use_fails_and_leaves_nothing_running(tmp_path):
    """It said "running", gunicorn gave up on the port, and `make run` ended with status 0."""
    import socket

    var_dir = str(tmp_path / "var")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with open(tmp_path / "rundev.log", "wb") as log:
            proc = _rundev(tmp_path, port, log)
            assert proc.wait(timeout=120) == 1
    output = (tmp_path / "rundev.log").read_text()
    assert f"127.0.0.1:{port} is in use" in output and "is running on" not in output
    assert "Embedded PostgreSQL stopped." in output
    assert wait_until(lambda: not _processes_using(var_dir), timeout=15, message="nothing left running")


def test_rundev_stops_everything_when_its_terminal_closes_even_while_migrating(tmp_path):
    """Only SIGINT and SIGTERM were handled, and only once the servers ran: a closed terminal (SIGHUP)
    left gunicorn on the port, the worker and beat, and PostgreSQL; a Ctrl-C during a first start's
    migrations left PostgreSQL running."""
    var_dir = str(tmp_path / "var")
    with open(tmp_path / "migrating.log", "wb") as log:
        proc = _rundev(tmp_path, free_port(), log)
        wait_until(lambda: "Applying" in (tmp_path / "migrating.log").read_text(), timeout=120, interval=0.2,
                   message="the migrations to start")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    assert "Embedded PostgreSQL stopped." in (tmp_path / "migrating.log").read_text()
    assert wait_until(lambda: not _processes_using(var_dir), timeout=15, message="nothing left running")

    port = free_port()
    with open(tmp_path / "rundev.log", "wb") as log:
        proc = _rundev(tmp_path, port, log)
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=180, interval=1,
                   message="the web server to answer")
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=60) == 0, (tmp_path / "rundev.log").read_text()
    # PostgreSQL among them (its output went nowhere after the hang-up: the terminal is gone)
    assert wait_until(lambda: not _processes_using(var_dir), timeout=15, message="nothing left running")


def test_rundev_on_a_port_in_use_leaves_the_other_runs_database_running(tmp_path):
    """The second `make run` of one checkout stopped the PostgreSQL that the first was serving from."""
    import socket

    pgdata = tmp_path / "var" / "pgdata"

    def embedded(call: str) -> bool:  # in a process of its own, as the first run's would be
        code = f"from pathlib import Path; from shop import embedded_db as e; {call}"
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip() == "True"

    embedded(f"e.ensure_running(Path({str(pgdata)!r}))")  # the first run's
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with open(tmp_path / "rundev.log", "wb") as log:
                proc = _rundev(tmp_path, taken.getsockname()[1], log)
                assert proc.wait(timeout=120) == 1
        assert "is in use" in (tmp_path / "rundev.log").read_text()
        assert embedded(f"print(e._is_running(Path({str(pgdata)!r})))")
    finally:
        embedded(f"e.stop(Path({str(pgdata)!r}))")
