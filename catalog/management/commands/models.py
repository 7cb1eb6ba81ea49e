from django.core.management.base import BaseCommand, CommandError

from catalog.models import EmbeddingModel
from catalog.selectors import active_model_key, index_counts
from catalog.services import embedding_model_activate, embedding_model_drop, embedding_model_enable
from shop import vision_adapter


class Command(BaseCommand):
    help = (
        "Embedding models of the catalog: `models list`, `models enable KEY` (index + background "
        "back-fill), `models activate KEY` (search switches to it), `models drop KEY` (vectors and index)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("list", "enable", "activate", "drop"))
        parser.add_argument("key", nargs="?")

    def handle(self, *args, action: str, key: str | None = None, **options):
        if action != "list" and not key:
            raise CommandError(f"`models {action}` needs a registry key")
        try:
            if action == "enable":
                embedding_model_enable(key=key)
                self.stdout.write(f"{key} enabled; its vectors are being back-filled by the vision worker.")
            elif action == "activate":
                embedding_model_activate(key=key)
                self.stdout.write(f"search now uses {key}")
            elif action == "drop":
                self.stdout.write(f"{key}: {embedding_model_drop(key=key)} vectors dropped")
        except EmbeddingModel.DoesNotExist as exc:
            raise CommandError(f"{key} is not enabled: run `models enable {key}` first") from exc
        except (KeyError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        active = active_model_key()
        for model in EmbeddingModel.objects.all():
            counts = index_counts(model_key=model.key)
            status = vision_adapter.model_status(model.key)
            self.stdout.write(
                f"{'*' if model.key == active else ' '} {model.key:<20} dim {model.dim:<4} "
                f"vectors {counts['embedded']}/{counts['images']}  pretrained: {status.get('pretrained')}"
            )
