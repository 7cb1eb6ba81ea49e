from django.core.management.base import BaseCommand
from tqdm import tqdm

from shop.campaigns.models import AdCreative
from shop.campaigns.selectors import creatives_with_outdated_features
from shop.campaigns.services import ad_creatives_features_refresh


class Command(BaseCommand):
    help = ("Extract creatives' features again from their artwork, with a progress bar (default: those stored "
            "by an older features format, which lack the keypoint frames that the look in place needs).")

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="every creative with an artwork, not only outdated ones")

    def handle(self, *args, all=False, **options):
        if all:
            ids = list(AdCreative.objects.exclude(image="").order_by("id").values_list("id", flat=True))
        else:
            ids = creatives_with_outdated_features()
        with tqdm(total=len(ids), desc="creative features", unit="creative", disable=options["verbosity"] == 0) as bar:
            done, failed = ad_creatives_features_refresh(
                creatives=AdCreative.objects.filter(id__in=ids).order_by("id").iterator(chunk_size=50),
                progress=lambda: bar.update(1))
        self.stdout.write(f"{done} creatives' features extracted again, {len(failed)} failed"
                          + (": " + "; ".join(failed) if failed else ""))
