"""Artwork files follow their creative: a deleted creative (one by one, or with its campaign) or a
replaced artwork leaves no file behind in storage. Deleted after the commit, so a rolled-back delete
keeps its file, by a worker, and again by beat's sweep while the storage does not answer."""

from __future__ import annotations

from django.db.models.signals import post_delete, pre_save
from django.dispatch import receiver

from shop.campaigns.models import AdCreative
from shop.core.services import files_delete_after_commit


@receiver(post_delete, sender=AdCreative, dispatch_uid="campaigns.creative_file_deleted")
def creative_deleted(sender, instance: AdCreative, **kwargs) -> None:
    if instance.image:
        files_delete_after_commit(names=[instance.image.name])  # artwork is in the default storage


@receiver(pre_save, sender=AdCreative, dispatch_uid="campaigns.creative_file_replaced")
def creative_artwork_replaced(sender, instance: AdCreative, **kwargs) -> None:
    update_fields = kwargs.get("update_fields")
    if instance.pk is None or kwargs.get("raw") or (update_fields is not None and "image" not in update_fields):
        return
    before = AdCreative.objects.filter(pk=instance.pk).values_list("image", flat=True).first()
    if before and before != instance.image.name:
        files_delete_after_commit(names=[before])
