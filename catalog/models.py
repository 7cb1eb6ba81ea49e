import hashlib
import uuid

from django.core.validators import MinValueValidator
from django.db import models
from pgvector.django import VectorField

from shop.core.pictures import picture_suffix
from shop.core.validators import no_null_characters_in_json


class Category(models.Model):
    """A node of the category tree (Women > Shoes > Sneakers)."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=120, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["slug"]
        constraints = [models.UniqueConstraint(fields=["parent", "name"], name="uniq_category_name_in_parent")]

    def __str__(self) -> str:
        names, node = [], self
        while node is not None:
            names.append(node.name)
            node = node.parent
        return " > ".join(reversed(names))


class Brand(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=120, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    handle = models.SlugField(
        max_length=100, unique=True, null=True, blank=True, allow_unicode=True,
        help_text="Stable key used by bulk imports (letters of any script).",
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.PROTECT, related_name="products")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    attributes = models.JSONField(default=dict, blank=True, validators=[no_null_characters_in_json],
                                  help_text='Free attributes, e.g. {"material": "wool"}.')
    active = models.BooleanField(default=True, help_text="Inactive products are never returned by search.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["category", "active"])]

    def __str__(self) -> str:
        return self.title


class Variant(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField(max_length=64, unique=True)
    options = models.JSONField(default=dict, blank=True, validators=[no_null_characters_in_json],
                               help_text='e.g. {"size": "M", "color": "red"}')
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default="EUR")
    stock = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["product_id", "sku"]
        constraints = [models.CheckConstraint(condition=models.Q(price__gte=0), name="variant_price_not_negative")]
        indexes = [models.Index(fields=["product", "price"])]

    def __str__(self) -> str:
        return self.sku


def file_sha256(field_file) -> str:
    digest = hashlib.sha256()
    field_file.open("rb")
    try:
        field_file.seek(0)
        for chunk in field_file.chunks():
            digest.update(chunk)
        field_file.seek(0)
    finally:
        if field_file._committed:
            field_file.close()
    return digest.hexdigest()


def product_image_upload_to(instance: "ProductImage", filename: str) -> str:
    # A server-generated name: the merchandiser's file name never reaches the storage key.
    return f"products/{uuid.uuid4().hex}{picture_suffix(filename)}"


class ProductImage(models.Model):
    """A product picture. Saving a new file marks it dirty; a vision task embeds it."""

    class IndexState(models.TextChoices):
        PENDING = "pending", "pending"
        INDEXED = "indexed", "indexed"
        FAILED = "failed", "failed"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    image = models.FileField(upload_to=product_image_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64, editable=False, db_index=True)
    # the URL an import fetched it from: a re-import does not fetch it again
    source = models.CharField(max_length=2000, blank=True, editable=False)
    position = models.PositiveSmallIntegerField(default=0)
    is_primary = models.BooleanField(default=False)
    index_state = models.CharField(max_length=10, choices=IndexState.choices, default=IndexState.PENDING, editable=False)
    index_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product_id", "-is_primary", "position", "id"]
        indexes = [
            models.Index(
                fields=["id"], name="catalog_image_pending", condition=models.Q(index_state="pending")
            ),
        ]

    def __str__(self) -> str:
        return f"image {self.pk} of {self.product_id}"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stored_name = self.image.name

    def save(self, *args, **kwargs):
        # Every path that stores a new file (admin inline, import, shell) marks the image dirty,
        # and the indexing task is queued once the transaction commits.
        new_content = not self.image._committed or self.image.name != self._stored_name or not self.sha256
        if new_content:
            self.sha256 = file_sha256(self.image)
            self.index_state = self.IndexState.PENDING
            self.index_error = ""
        super().save(*args, **kwargs)
        self._stored_name = self.image.name
        if new_content:
            from catalog.tasks import enqueue_indexing

            enqueue_indexing()


class EmbeddingModel(models.Model):
    """A registry key enabled for the catalog: its vectors are kept and it has its own HNSW index.

    The active key is the one search uses. When no row is active, the VISION_MODEL setting decides.
    """

    key = models.CharField(max_length=64, unique=True)
    dim = models.PositiveIntegerField()
    is_active = models.BooleanField(default=False)
    index_name = models.CharField(max_length=63, blank=True)
    enabled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_active", "key"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_model")
        ]

    def __str__(self) -> str:
        return self.key + (" (active)" if self.is_active else "")


class ImageEmbedding(models.Model):
    """One vector per image and model key. `vector` without a fixed dimension: each model key has
    a partial HNSW index on `(embedding::vector(D))`, so keys of different sizes share the table."""

    image = models.ForeignKey(ProductImage, on_delete=models.CASCADE, related_name="embeddings")
    model_key = models.CharField(max_length=64)
    embedding = VectorField()
    sha256 = models.CharField(max_length=64, help_text="The image content this vector was made from.")
    pretrained = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "model_key"], name="uniq_embedding_image_model")]
        indexes = [models.Index(fields=["model_key", "image"])]

    def __str__(self) -> str:
        return f"{self.model_key} vector of image {self.image_id}"
