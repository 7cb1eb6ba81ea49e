import logging
import time

from django.core.management.base import BaseCommand, CommandError

from shop.campaigns import recognition

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = ("Wait until the creative index snapshot of this code is in storage (the deploy's build_creative_index "
            "writes it), so that a fresh vision worker loads it in seconds instead of building the index inside its "
            "first scans. Returns at once when a snapshot of this code exists or no creative is to be recognised. "
            "Run before a vision worker starts (the Kubernetes init container).")

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=900,
                            help="seconds to wait at most (default 900); then warn and exit 0, or 1 with --strict")
        parser.add_argument("--interval", type=float, default=10, help="seconds between looks (default 10)")
        parser.add_argument("--strict", action="store_true",
                            help="exit 1 when no snapshot came in time, instead of letting the worker build the index")

    def handle(self, *args, timeout: float, interval: float, strict: bool, **options):
        if timeout < 0 or interval <= 0:
            raise CommandError("--timeout must be 0 or more and --interval more than 0")
        started = time.monotonic()
        deadline, waited_notice = started + timeout, False
        while True:
            try:
                ready = recognition.snapshot_ready()
            except Exception as exc:  # storage or database not answering yet: look again until the deadline
                logger.warning("creative index snapshots could not be looked at",
                               extra={"error": f"{type(exc).__name__}: {exc}"})
                ready = None
            if ready is not None:
                self.stdout.write(f"creative index ready: {ready} (waited {time.monotonic() - started:.0f} s)")
                return
            now = time.monotonic()
            if now >= deadline:
                message = (f"no creative index snapshot of this code after {timeout:g} s: is the deploy's "
                           f"build_creative_index running or failed? This worker will build the index inside its "
                           f"first scans")
                if strict:
                    raise CommandError(message)
                self.stderr.write(message)
                return
            if not waited_notice and options["verbosity"] > 0:
                self.stdout.write("waiting for the creative index snapshot of this code (build_creative_index)")
                waited_notice = True
            time.sleep(min(interval, deadline - now))
