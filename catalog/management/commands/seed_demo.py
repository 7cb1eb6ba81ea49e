import numpy as np
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.text import slugify
from tqdm import tqdm

from catalog.demo import demo_products, draw_product, jpeg_bytes
from catalog.models import Brand, Category, Product, ProductImage, Variant
from shop.campaigns.demo import seed_marketing_history
from shop.campaigns.models import Campaign


class Command(BaseCommand):
    help = (
        "Build the demo catalog from pictures drawn offline (18 categories, 324 products), index it, and "
        "add 60 days of campaigns, creatives, spend, scans, carts and orders."
    )

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the catalog has products")
        parser.add_argument("--per-category", type=int, default=18)
        parser.add_argument("--no-index", action="store_true", help="leave indexing to the worker")
        parser.add_argument("--no-marketing", action="store_true", help="no campaigns, scans and orders history")

    def handle(self, *args, if_empty=False, per_category=18, no_index=False, no_marketing=False, **options):
        quiet = options["verbosity"] == 0
        if if_empty and Product.objects.exists():
            self.stdout.write("The catalog has products; demo data not loaded.")
            return
        products = demo_products(per_category=per_category)
        rng = np.random.default_rng(11)
        with transaction.atomic():
            for index, spec in enumerate(tqdm(products, desc="demo catalog", unit="product", disable=quiet)):
                department = self._category(spec.department, None)
                category = self._category(spec.category, department)
                brand, _ = Brand.objects.get_or_create(name=spec.brand, defaults={"slug": slugify(spec.brand)})
                product, created = Product.objects.get_or_create(
                    handle=spec.handle,
                    defaults={
                        "title": spec.title,
                        "description": f"{spec.title} in {' or '.join(l.color for l in spec.looks)}.",
                        "brand": brand,
                        "category": category,
                        "attributes": {"pattern": spec.looks[0].pattern, "demo": True},
                    },
                )
                if not created:
                    continue
                for position, look in enumerate(spec.looks):
                    image = ProductImage(product=product, position=position, is_primary=position == 0)
                    picture = draw_product(look, seed=index * 10 + position)
                    image.image.save(f"{spec.handle}-{look.color}.jpg", ContentFile(jpeg_bytes(picture)), save=False)
                    image.save()
                    for size in spec.sizes:
                        Variant.objects.create(
                            product=product,
                            sku=f"{spec.handle}-{look.color}-{size}".upper(),
                            options={"color": look.color, "size": size},
                            price=f"{spec.base_price:.2f}",
                            currency="EUR",
                            stock=int(rng.choice([0, 1, 3, 8, 20])),
                        )
        self.stdout.write(f"Demo catalog: {Product.objects.count()} products, {Category.objects.count()} categories.")
        if not no_index:
            call_command("reindex", verbosity=options["verbosity"])
        if not no_marketing and not Campaign.objects.exists():
            with tqdm(total=60, desc="marketing history", unit="day", disable=quiet) as bar:
                counts = seed_marketing_history(days=60, progress=bar)
            self.stdout.write(
                f"Marketing demo: {Campaign.objects.count()} campaigns, {counts['ad_scans']} ad scans, "
                f"{counts['look_scans']} shop-the-look scans, {counts['orders']} orders over 60 days."
            )

    @staticmethod
    def _category(name: str, parent: Category | None) -> Category:
        slug = slugify(f"{parent.slug}-{name}" if parent else name)
        category, _ = Category.objects.get_or_create(parent=parent, name=name, defaults={"slug": slug})
        return category
