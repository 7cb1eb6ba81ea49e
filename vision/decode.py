"""Safe decoding of untrusted image uploads.

`decode_image` is the only way uploaded bytes become pixels. It checks, in this order:

1. the byte count (`TooManyBytes`, before anything else is looked at; empty input is `EmptyImage`);
2. the format, by content only: the leading magic bytes must be JPEG, PNG, WebP or HEIC/HEIF and
   Pillow must identify the same format (`UnsupportedFormat`); file names and Content-Type are
   never consulted;
3. the dimensions from the header, before any pixel is decoded (`TooManyPixels`,
   `ExtremeAspectRatio`); Pillow's own decompression-bomb guard is mapped to `TooManyPixels`;
4. the pixels themselves, fully loaded so truncated or corrupt data raises `CorruptImage`
   (this module never sets `ImageFile.LOAD_TRUNCATED_IMAGES`; nobody in the process should).

The result is always an RGB image in sRGB: EXIF orientation is applied, CMYK and ICC-tagged
images are converted to sRGB, 16-bit images are scaled to 8 bits, palette images are expanded and
transparency is composited onto white. Large JPEGs are decoded at reduced size via the DCT draft
mode and every image is capped at `max_side_after_draft` on its long side.

Animated images (animated WebP, APNG) and HEIF files holding several images are accepted: the
first frame (for HEIF, the primary image) is used and `DecodedImage.animated` is True. The pixel
limit applies to that one frame.

`encode_clean_jpeg` produces the copy to store: a fresh JPEG with no EXIF, GPS, XMP, comments or
ICC profile (pixels are already sRGB, the JPEG default).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps
from pillow_heif import register_heif_opener

register_heif_opener()

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_EXIF_ORIENTATION = 0x0112
_METADATA_INFO_KEYS = ("xmp", "XML:com.adobe.xmp", "photoshop", "iptc", "comment")
# What Pillow's parsers raise on malformed input; all of it means "corrupt", never a server error.
_DECODER_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error, zlib.error,
)


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds applied before and during decoding.

    `max_aspect_ratio` 20.0 admits panoramas and long screenshots (a 1080x20000 phone capture is
    18.5) while rejecting the 1-pixel-high strips used to defeat per-side limits.
    """

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_aspect_ratio: float = 20.0
    max_side_after_draft: int = 4096


@dataclass
class DecodedImage:
    image: Image.Image  # mode RGB, sRGB, orientation applied
    format: str  # one of ALLOWED_FORMATS
    width: int  # of `image`: after orientation, draft and the long-side cap
    height: int
    source_width: int  # as stored in the file header, before orientation
    source_height: int
    animated: bool  # more than one frame/image in the file; the first is used
    orientation_applied: bool  # an EXIF orientation other than "normal" was applied
    had_metadata: bool  # the upload carried EXIF, XMP, IPTC or comments


class ImageRejected(Exception):
    """Base of every decode rejection; `code` is stable and safe to return to clients."""

    code = "image_rejected"
    default_message = "The image was rejected."

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)


class EmptyImage(ImageRejected):
    code = "empty_image"
    default_message = "The upload is empty."


class CorruptImage(ImageRejected):
    code = "corrupt_image"
    default_message = "The image data is truncated or corrupt."


class UnsupportedFormat(ImageRejected):
    code = "unsupported_format"
    default_message = "Only JPEG, PNG, WebP and HEIC/HEIF images are accepted."


class TooManyBytes(ImageRejected):
    code = "too_many_bytes"
    default_message = "The image file is too large."


class TooManyPixels(ImageRejected):
    code = "too_many_pixels"
    default_message = "The image has too many pixels."


class ExtremeAspectRatio(ImageRejected):
    code = "extreme_aspect_ratio"
    default_message = "The image is too long and thin."


def sniff_format(data: bytes) -> str | None:
    """The allowlisted format the leading bytes announce, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def decode_image(data: bytes, *, limits: DecodeLimits = DecodeLimits()) -> DecodedImage:
    """Decode untrusted bytes into a bounded RGB image, or raise an `ImageRejected` subclass."""
    size = len(data)
    if size > limits.max_bytes:
        raise TooManyBytes(f"The image is {size} bytes; the limit is {limits.max_bytes} bytes.")
    if size == 0:
        raise EmptyImage()
    data = bytes(data)
    sniffed = sniff_format(data)
    if sniffed is None:
        raise UnsupportedFormat()

    try:
        img = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(str(exc)) from exc
    except Image.UnidentifiedImageError as exc:
        raise CorruptImage(f"The data looks like {sniffed} but cannot be read.") from exc
    except _DECODER_ERRORS as exc:
        raise CorruptImage(f"The {sniffed} data cannot be read: {exc}") from exc
    # Phone cameras write JPEGs with an MPF index of extra images (depth maps, HDR gain maps);
    # Pillow calls them MPO. The primary image is a plain JPEG, and that is what is decoded.
    opened = "JPEG" if img.format == "MPO" else img.format
    if opened != sniffed:
        raise UnsupportedFormat(f"The data identifies as {img.format}, not {sniffed}.")

    with img:
        source_width, source_height = img.size
        _check_dimensions(source_width, source_height, limits)
        if opened == "JPEG":
            _request_draft(img, limits.max_side_after_draft)
        try:
            img.load()
            animated = getattr(img, "n_frames", 1) > 1
            exif = img.getexif()
            orientation = exif.get(_EXIF_ORIENTATION, 1)
            had_metadata = bool(exif) or bool(getattr(img, "text", None))
            had_metadata = had_metadata or any(img.info.get(key) for key in _METADATA_INFO_KEYS)
            # in place: a transposed copy of a 40 Mpx picture that needs none held 160 MB for nothing
            ImageOps.exif_transpose(img, in_place=True)
            rgb = _to_srgb(img)
            if max(rgb.size) > limits.max_side_after_draft:
                rgb = _shrunk(rgb, limits.max_side_after_draft)
            elif rgb is img:
                rgb = img.copy()  # leaving the `with` block destroys img's pixels
        except Image.DecompressionBombError as exc:
            raise TooManyPixels(str(exc)) from exc
        except _DECODER_ERRORS as exc:
            raise CorruptImage(f"The {sniffed} data is truncated or corrupt: {exc}") from exc
        fmt = opened

    orientation_applied = orientation in range(2, 9)
    rgb = _without_info(rgb)
    return DecodedImage(
        image=rgb,
        format=fmt,
        width=rgb.width,
        height=rgb.height,
        source_width=source_width,
        source_height=source_height,
        animated=animated,
        orientation_applied=orientation_applied,
        had_metadata=had_metadata,
    )


def encode_clean_jpeg(image: Image.Image, *, quality: int = 90) -> bytes:
    """A freshly encoded sRGB JPEG carrying no EXIF, GPS, XMP, comment or ICC profile."""
    clean = _without_info(image if image.mode == "RGB" else image.convert("RGB"))
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def _check_dimensions(width: int, height: int, limits: DecodeLimits) -> None:
    if width <= 0 or height <= 0:
        raise CorruptImage(f"The header claims a {width}x{height} image.")
    if width * height > limits.max_pixels:
        raise TooManyPixels(
            f"The image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}."
        )
    ratio = max(width, height) / min(width, height)
    if ratio > limits.max_aspect_ratio:
        raise ExtremeAspectRatio(
            f"The image is {width}x{height} (aspect ratio {ratio:.1f}); the limit is {limits.max_aspect_ratio:g}."
        )


def _request_draft(img: Image.Image, max_side: int) -> None:
    """Ask libjpeg for a 1/2, 1/4 or 1/8 scale decode whose long side is still >= max_side."""
    long_side = max(img.size)
    if long_side <= max_side:
        return
    scale = max_side / long_side
    target = (max(1, int(img.width * scale)), max(1, int(img.height * scale)))
    img.draft("RGB", target)


def _to_srgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_depth_to_rgb(img)
    if mode in ("P", "L", "RGB") and "transparency" in img.info:
        # a palette entry, or one grey or RGB value (PNG's tRNS), is transparent: onto white as alpha is
        img = img.convert("RGBA")
    elif mode == "P":
        img = img.convert("RGB")
    elif mode in ("1", "L", "LA", "PA", "La", "RGBa") or mode not in ("RGB", "RGBA", "CMYK"):
        img = img.convert("RGBA" if ("A" in mode or "a" in mode) else "RGB")
    icc = img.info.get("icc_profile")
    if img.mode == "RGBA":  # onto white, blended in place: an RGBA background and composite cost 320 MB at 40 Mpx
        flat = Image.new("RGB", img.size, (255, 255, 255))  # white in the image's own profile, then converted
        flat.paste(img, mask=img.getchannel("A"))
        img = flat
    if icc and img.mode in ("RGB", "CMYK"):
        converted = _icc_to_srgb(img, icc)
        if converted is not None:
            return converted
    return img.convert("RGB") if img.mode != "RGB" else img


def _shrunk(img: Image.Image, max_side: int) -> Image.Image:
    """A new image of `img` reduced to `max_side` on its long side (as `thumbnail` would size it)."""
    width, height = img.size
    factor = max_side / max(width, height)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


_ROWS_AT_ONCE = 256  # high-depth rows scaled per step: the float copy stays small at 40 Mpx


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grey images as 8-bit RGB, scaled a band of rows at a time: a float64
    copy of the whole image cost ~24 bytes a pixel (1 GB for a 40 Mpx PNG of 90 KB)."""
    values = np.asarray(img)
    peak = float(values.max(initial=0))
    # a 16-bit image is on the 16-bit scale however dark (200 is near black, not 78 % grey); a 32-bit
    # one ("I") may hold 8-bit values, told by its peak
    top = 65535.0 if img.mode.startswith("I;16") or (img.mode == "I" and peak > 255) else 255.0
    if img.mode == "F":
        top = max(peak, 1.0) if peak > 1.0 else 1.0
    grey = np.empty(values.shape, np.uint8)
    for row in range(0, len(values), _ROWS_AT_ONCE):
        band = values[row:row + _ROWS_AT_ONCE].astype(np.float32)
        grey[row:row + _ROWS_AT_ONCE] = np.clip(np.rint(band * np.float32(255.0 / top)), 0, 255)
    del values
    return Image.fromarray(grey).convert("RGB")


def _icc_to_srgb(img: Image.Image, icc: bytes) -> Image.Image | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(img, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # an unusable profile: fall back to Pillow's plain conversion


def _without_info(image: Image.Image) -> Image.Image:
    """The same pixels in a new image object that carries no info dict (no EXIF/XMP/ICC/comment)."""
    return Image.frombytes("RGB", image.size, image.tobytes())
