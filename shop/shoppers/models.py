import uuid

from django.conf import settings
from django.db import models


class Shopper(models.Model):
    """An anonymous device that registered for a token. It owns its scans, carts and orders."""

    class Platform(models.TextChoices):
        IOS = "ios", "iOS"
        ANDROID = "android", "Android"
        WEB = "web", "Web"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The auth user behind the device's API token; it has no password and cannot log in to admin.
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shopper")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    app_version = models.CharField(max_length=32, blank=True)
    locale = models.CharField(max_length=16, blank=True)
    region = models.CharField(max_length=8, blank=True, help_text="country or region code, for trend reports")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"shopper {self.id} ({self.platform})"
