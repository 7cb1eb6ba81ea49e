from pathlib import PurePath

from django import forms
from django.conf import settings

from shop import vision_adapter
from shop.core.pictures import FORMAT_SUFFIXES


def clean_picture_upload(upload):
    """A form field's new upload, accepted only when the vision decoder accepts it (by content,
    never by extension), and renamed to the suffix of the format it decodes as; a stored file (no
    content type) passes as it is."""
    if not upload or not hasattr(upload, "content_type"):
        return upload
    if upload.size > settings.UPLOAD_MAX_BYTES:  # before reading it into memory
        raise forms.ValidationError(f"Not a usable picture: the file is {upload.size} bytes; "
                                    f"the limit is {settings.UPLOAD_MAX_BYTES} bytes.")
    try:
        decoded = vision_adapter.decode(upload.read())
    except vision_adapter.ImageRejected as exc:
        raise forms.ValidationError(f"Not a usable picture: {exc}") from exc
    finally:
        upload.seek(0)
    upload.name = PurePath(upload.name or "picture").stem + FORMAT_SUFFIXES[decoded.format]
    return upload
