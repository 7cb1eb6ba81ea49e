import time
from contextlib import contextmanager


class StageTimer:
    """Milliseconds per named stage of a pipeline (kept on scans, printed by benchmarks)."""

    def __init__(self):
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            self.timings[name] = round(self.timings.get(name, 0.0) + elapsed, 2)
