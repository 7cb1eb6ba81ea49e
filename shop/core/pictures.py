"""Names of stored pictures (creatives' artwork, product images)."""

from pathlib import PurePath

# The suffix a stored picture gets, by the format its content decodes as.
FORMAT_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "HEIF": ".heic"}
PICTURE_SUFFIXES = frozenset(FORMAT_SUFFIXES.values()) | {".jpeg", ".heif"}


def picture_suffix(filename: str) -> str:
    """The suffix of a stored picture's server-generated name: the file's own when it is a picture
    suffix, else `.jpg`. The storage serves a file by its suffix, so an uploader's `.html` or `.svg`
    must never become one (a JPEG can carry markup in a comment)."""
    suffix = PurePath(filename).suffix.lower()
    return suffix if suffix in PICTURE_SUFFIXES else ".jpg"
