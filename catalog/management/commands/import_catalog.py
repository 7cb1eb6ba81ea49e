import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.fetch import FetchPolicy
from catalog.importing import catalog_import, read_rows


class Command(BaseCommand):
    help = "Import products, variants and pictures from a CSV or JSON file; bad rows are reported, not fatal."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=("csv", "json"), help="default: the file's extension")
        parser.add_argument("--images-dir", type=Path, help="where relative picture paths point (default: the file's folder)")
        parser.add_argument("--report", type=Path, help="write the row-by-row report as JSON here")

    def handle(self, *args, file: Path, format=None, images_dir=None, report=None, **options):
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        try:
            rows = list(read_rows(file, format))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        policy = FetchPolicy(
            timeout=settings.IMPORT_URL_TIMEOUT,
            max_bytes=settings.UPLOAD_MAX_BYTES,
            schemes=settings.IMPORT_URL_SCHEMES,
            allow_private=settings.IMPORT_URL_ALLOW_PRIVATE,
        )
        with tqdm(total=len(rows), desc="importing", unit="row", disable=options["verbosity"] == 0) as progress:
            result = catalog_import(rows=rows, base_dir=images_dir or file.parent, policy=policy, progress=progress)
        for error in result.errors:
            self.stderr.write(f"row {error['row']}: {error['field'] or 'row'}: {error['error']}")
        self.stdout.write(
            f"{result.imported_rows}/{result.rows} rows imported: {result.products_created} products created, "
            f"{result.products_updated} updated, {result.variants} variants, {result.images} pictures; "
            f"{len(result.errors)} rows rejected. Pictures are indexed by the vision worker."
        )
        if report:
            report.write_text(json.dumps(result.__dict__, indent=2))
