import time

from django.core.files.storage import storages
from django.core.management.base import BaseCommand
from tqdm import tqdm

from shop.campaigns import recognition


class Command(BaseCommand):
    help = ("Bring the creative index up to date (from the newest snapshot, or from every creative's features) "
            "with a progress bar, and write it as a snapshot that fresh workers load in seconds. Run it at deploy "
            "and after importing many creatives: a worker would otherwise build the index inside its first scans.")

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true",
                            help="build from the creatives' features, ignoring existing snapshots")

    def handle(self, *args, rebuild=False, **options):
        started = time.perf_counter()
        recognition.reset()
        with tqdm(desc="creative index", unit="creative", disable=options["verbosity"] == 0) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            name = recognition.save_snapshot(progress=progress, force=True, rebuild=rebuild)
        size = storages[recognition.SNAPSHOT_STORAGE].size(name)
        self.stdout.write(f"creative index snapshot {name} written: {recognition.indexed_creatives()} creatives, "
                          f"{size / 2**20:.1f} MiB, in {time.perf_counter() - started:.1f} s")
