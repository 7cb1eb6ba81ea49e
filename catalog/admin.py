from django import forms
from django.contrib import admin, messages
from django.contrib.postgres.aggregates import StringAgg
from django.db.models import Max, Min, Prefetch
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from catalog.models import Brand, Category, EmbeddingModel, Product, ProductImage, Variant
from catalog.search import hits_for, search_photo
from catalog.selectors import active_model_key, images_with_vector_state, index_counts, product_index_status
from catalog.services import (
    embedding_model_activate,
    embedding_model_drop,
    embedding_model_enable,
    product_images_mark_dirty,
)
from shop import vision_adapter
from shop.core.forms import clean_picture_upload


def thumbnail(image: ProductImage | None, height: int = 48) -> str:
    if image is None or not image.image:
        return "—"
    return format_html('<img src="{}" style="height:{}px;border-radius:4px" alt="">', image.image.url, height)


class ProductImageForm(forms.ModelForm):
    class Meta:
        model = ProductImage
        fields = ("image", "position", "is_primary")

    def clean_image(self):
        return clean_picture_upload(self.cleaned_data["image"])


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    form = ProductImageForm
    extra = 1
    fields = ("preview", "image", "position", "is_primary", "index_state", "index_error")
    readonly_fields = ("preview", "index_state", "index_error")

    @admin.display(description="preview")
    def preview(self, obj):
        return thumbnail(obj, 64)


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 1
    fields = ("sku", "options", "price", "currency", "stock")


class IndexStateFilter(admin.SimpleListFilter):
    title = "index status"
    parameter_name = "index"

    def lookups(self, request, model_admin):
        return [("pending", "pending"), ("failed", "failed"), ("indexed", "indexed")]

    def queryset(self, request, queryset):
        if self.value() in ("pending", "failed"):
            return queryset.filter(images__index_state=self.value()).distinct()
        if self.value() == "indexed":
            return queryset.exclude(images__index_state__in=["pending", "failed"]).filter(images__isnull=False)
        return queryset


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    change_list_template = "admin/catalog/product/change_list.html"
    list_display = ("picture", "title", "brand", "category", "price", "active", "index_status")
    list_display_links = ("picture", "title")
    list_filter = ("active", IndexStateFilter, "category", "brand")
    search_fields = ("title", "description", "variants__sku", "brand__name")
    list_select_related = ("brand", "category")
    inlines = (VariantInline, ProductImageInline)
    actions = ("reindex",)
    readonly_fields = ("index_status", "created_at", "updated_at")
    fields = ("title", "description", "brand", "category", "attributes", "active", "index_status")

    def get_queryset(self, request):
        # each picture with whether it has a current vector of the active key: the list's index status
        # column asks nothing more per product (it made a query per row)
        images = images_with_vector_state(model_key=getattr(self, "_active_key", None) or active_model_key())
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("images", queryset=images))
            .annotate(
                price_min=Min("variants__price"),
                price_max=Max("variants__price"),
                currencies=StringAgg("variants__currency", ", ", distinct=True, order_by="variants__currency"),
            )
        )

    @admin.display(description="")
    def picture(self, obj):
        images = list(obj.images.all())
        return thumbnail(images[0] if images else None)

    @admin.display(description="price", ordering="price_min")
    def price(self, obj):
        if obj.price_min is None:
            return "—"
        if ", " in obj.currencies:  # a lowest and highest across currencies would compare 9 USD with 900 JPY
            return f"in {obj.currencies}"
        amount = obj.price_min if obj.price_min == obj.price_max else f"{obj.price_min}–{obj.price_max}"
        return f"{amount} {obj.currencies}"

    @admin.display(description="index status")
    def index_status(self, obj):
        if obj.pk is None:
            return "—"
        status = product_index_status(product=obj, model_key=self._active_key)
        colour = {"indexed": "#2e7d32", "pending": "#ef6c00", "failed": "#c62828"}.get(status.state, "#666")
        return format_html(
            '<span style="color:{}" title="{}">{} ({}/{}, {})</span>',
            colour,
            status.error,
            status.state + (f": {status.error[:60]}" if status.error else ""),
            status.indexed,
            status.total,
            status.model_key,
        )

    def changelist_view(self, request, extra_context=None):
        self._active_key = active_model_key()
        extra_context = {**(extra_context or {}), "model_status": vision_adapter.model_status(self._active_key)}
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request, *args, **kwargs):
        self._active_key = active_model_key()
        return super().changeform_view(request, *args, **kwargs)

    @admin.action(description="Re-index the selected products' images")
    def reindex(self, request, queryset):
        count = product_images_mark_dirty(product_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} images queued for indexing.", messages.SUCCESS)

    def get_urls(self):
        extra = [
            path("try-a-photo/", self.admin_site.admin_view(self.try_a_photo_view), name="catalog_product_try_a_photo")
        ]
        return extra + super().get_urls()

    def try_a_photo_view(self, request):
        form = TryAPhotoForm(request.POST or None, request.FILES or None)
        context = {
            **self.admin_site.each_context(request),
            "title": "Try a photo",
            "opts": self.model._meta,
            "form": form,
            "model_status": vision_adapter.model_status(active_model_key()),
        }
        if request.method == "POST" and form.is_valid():
            items, key, _ = search_photo(picture=form.cleaned_data["picture"], k=form.cleaned_data["k"])
            found = [{"item": item, "hits": hits_for(item.matches)} for item in items]
            context.update({"found": found, "model_key": key, "searched": True})
        return TemplateResponse(request, "admin/catalog/product/try_a_photo.html", context)


class TryAPhotoForm(forms.Form):
    photo = forms.FileField(help_text="A JPEG, PNG, WebP or HEIC photo; the same search as the app's scans.")
    k = forms.IntegerField(min_value=1, max_value=50, initial=12, label="results")

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("photo")
        if upload:
            try:
                cleaned["picture"] = vision_adapter.decode(upload.read()).image
            except vision_adapter.ImageRejected as exc:
                raise forms.ValidationError(f"Not a usable picture: {exc}") from exc
        return cleaned


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("__str__", "slug", "parent")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    list_select_related = ("parent",)


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ("sku", "product", "options", "price", "currency", "stock")
    list_filter = ("currency",)
    search_fields = ("sku", "product__title")
    list_select_related = ("product",)


class EnableModelForm(forms.ModelForm):
    key = forms.ChoiceField(choices=())

    class Meta:
        model = EmbeddingModel
        fields = ("key",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key"].choices = [
            (key, f"{key} — {spec.description}") for key, spec in vision_adapter.REGISTRY.items()
        ]


@admin.register(EmbeddingModel)
class EmbeddingModelAdmin(admin.ModelAdmin):
    """Enabled model keys: enable one (its vectors back-fill in the background), switch, drop."""

    form = EnableModelForm
    list_display = ("key", "is_active", "dim", "vectors", "status", "index_name", "enabled_at")
    actions = ("activate", "drop")

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="vectors / images")
    def vectors(self, obj):
        counts = index_counts(model_key=obj.key)
        return f"{counts['embedded']} / {counts['images']}"

    @admin.display(description="model status")
    def status(self, obj):
        status = vision_adapter.model_status(obj.key)
        if status.get("error"):
            return format_html('<span style="color:#c62828">{}</span>', status["error"])
        label = "pretrained" if status.get("pretrained") else "NOT pretrained"
        return f"{label}; weights: {status.get('weights_source')}"

    def save_model(self, request, obj, form, change):
        model = embedding_model_enable(key=form.cleaned_data["key"])
        obj.pk = model.pk

    @admin.action(description="Make the selected model the one search uses")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model.", messages.ERROR)
            return
        model = embedding_model_activate(key=queryset.get().key)
        self.message_user(request, f"Search now uses {model.key}.", messages.SUCCESS)

    @admin.action(description="Drop the selected models' vectors and indexes")
    def drop(self, request, queryset):
        for model in queryset:
            try:
                deleted = embedding_model_drop(key=model.key)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{model.key}: {deleted} vectors dropped.", messages.SUCCESS)
        return redirect(reverse("admin:catalog_embeddingmodel_changelist"))
