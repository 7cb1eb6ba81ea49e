"""Artwork files follow their creative: a deleted creative (one by one, or with its campaign) or a
replaced artwork leaves no file behind in storage. Deleted after the commit, so a rolled-back delete
keeps its file."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_delete, pre_save
from django.dispatch import receiver

from shop.campaigns.models import AdCreative

logger = logging.getLogger(__name__)


def _delete_after_commit(storage, name: str) -> None:
    def delete() -> None:
        try:
            storage.delete(name)
        except Exception:  # the storage busy or refusing: a file left, never a failed request
            logger.warning("artwork file not deleted", extra={"name": name}, exc_info=True)

    transaction.on_commit(delete)


@receiver(post_delete, sender=AdCreative, dispatch_uid="campaigns.creative_file_deleted")
def creative_deleted(sender, instance: AdCreative, **kwargs) -> None:
    if instance.image:
        _delete_after_commit(instance.image.storage, instance.image.name)


@receiver(pre_save, sender=AdCreative, dispatch_uid="campaigns.creative_file_replaced")
def creative_artwork_replaced(sender, instance: AdCreative, **kwargs) -> None:
    update_fields = kwargs.get("update_fields")
    if instance.pk is None or kwargs.get("raw") or (update_fields is not None and "image" not in update_fields):
        return
    before = AdCreative.objects.filter(pk=instance.pk).values_list("image", flat=True).first()
    if before and before != instance.image.name:
        _delete_after_commit(instance.image.storage, before)
