"""Child processes and waiting, shared by the benchmark drivers that start a private environment
(bench/load.py, bench/scan_latency.py, bench/faults.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

# Every process `start` launched and `stop` has not stopped yet, oldest first.
children: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns something true, and return that; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


def start(cmd: list[str], *, cwd: Path, env: dict, log_path: Path) -> subprocess.Popen:
    """`cmd` in its own process group, output appended to `log_path`; remembered in `children`."""
    out = open(log_path, "ab")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    children.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process group, SIGKILL after `timeout` s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    if proc in children:
        children.remove(proc)


def stop_all() -> None:
    """Stop every remembered child, newest first (the web server and workers before what they use)."""
    for proc in list(reversed(children)):
        stop(proc)


def wait_ready(base: str, procs: list[subprocess.Popen], timeout: float = 180) -> dict:
    """Poll `base`/readyz until it answers 200 (its JSON), failing early when one of `procs` exits."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[2:5]} exited with {proc.returncode} before /readyz answered")
        try:
            response = requests.get(f"{base}/readyz", timeout=5)
            last = response.status_code, response.text[:500]
            if response.status_code == 200:
                return response.json()
        except requests.RequestException as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise RuntimeError(f"/readyz not ready after {timeout} s: {last}")
