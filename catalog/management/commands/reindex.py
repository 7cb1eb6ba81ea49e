from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.indexing import index_images
from catalog.models import EmbeddingModel, ProductImage
from catalog.selectors import active_model_key, images_missing_embeddings
from catalog.services import embedding_model_enable, embedding_model_ensure_default


class Command(BaseCommand):
    help = "Embed catalog pictures in this process, with a progress bar (default: those missing a vector)."

    def add_arguments(self, parser):
        parser.add_argument("--model", help="registry key (default: the active one); enabled first if needed")
        parser.add_argument("--all", action="store_true", help="re-embed every picture, not only missing ones")
        parser.add_argument("--batch-size", type=int, default=settings.INDEX_BATCH_SIZE)

    def handle(self, *args, model=None, all=False, batch_size=16, **options):
        embedding_model_ensure_default()
        key = model or active_model_key()
        if not EmbeddingModel.objects.filter(key=key).exists():
            try:
                embedding_model_enable(key=key)
            except KeyError as exc:
                raise CommandError(str(exc)) from exc
        # --all replaces each vector in place: search keeps finding every product meanwhile, and a run cut
        # short leaves the old vectors, not pictures marked indexed without one
        images = ProductImage.objects.all() if all else images_missing_embeddings(model_key=key)
        ids = list(images.order_by("id").values_list("id", flat=True))
        is_active = key == active_model_key()
        totals = {"embedded": 0, "failed": 0}
        with tqdm(total=len(ids), desc=f"embedding ({key})", unit="img", disable=options["verbosity"] == 0) as bar:
            for start in range(0, len(ids), batch_size):
                batch = ids[start : start + batch_size]
                result = index_images(image_ids=batch, model_keys=[key], mark_state=is_active, force=all)
                if key in result.unavailable:  # every batch would say the same: the pictures stay as they are
                    raise CommandError(f"{key} cannot be used in this process, the pictures left stay pending: "
                                       f"{result.unavailable[key]}")
                totals["embedded"] += result.embedded
                totals["failed"] += len(result.failed)
                bar.update(len(batch))
        pending = ProductImage.objects.filter(index_state=ProductImage.IndexState.PENDING).count()
        self.stdout.write(
            f"{key}: {totals['embedded']} pictures embedded, {totals['failed']} failed"
            + (f"; {pending} still pending for other keys" if pending and not is_active else "")
        )
