"""Generate the hostile-upload corpus: `tests/corpus/files/*` and `tests/corpus/manifest.json`.

Run from the repository root:  .venv/bin/python tests/corpus/make_corpus.py

Offline and deterministic (fixed seeds, fixed ZIP timestamps; Pillow, pillow-heif, numpy, zipfile
and hand-written bytes only). Decompression bombs are small on disk by construction: their headers
claim huge sizes over a few bytes of data. Every entry of the manifest names the file, says what it
is, the filename and Content-Type a client sends it with (deliberately wrong for some), and the
expected answer of `POST /api/v1/scans/`: `{"outcome": "accept"}` (202) or
`{"outcome": "reject", "status": 4xx, "code": "<problem code>"}`. Expectations are written here by
hand from DESIGN.md section 6 and `vision/decode.py`; the tests check the service against them.
`worker` marks the accepted hostile-but-valid files whose scan the tests also run to the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from pillow_heif import register_heif_opener

register_heif_opener()

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
MANIFEST = HERE / "manifest.json"
ZIP_DATE = (2020, 1, 1, 0, 0, 0)

ACCEPT = {"outcome": "accept"}


def reject(status: int, code: str) -> dict:
    return {"outcome": "reject", "status": status, "code": code}


TOO_MANY_PIXELS = reject(413, "too_many_pixels")
UNSUPPORTED = reject(415, "unsupported_format")
CORRUPT = reject(422, "corrupt_image")
EMPTY = reject(422, "empty_image")
EXTREME_ASPECT = reject(422, "extreme_aspect_ratio")


# --- building blocks ----------------------------------------------------------------------------


def photo(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    """A small deterministic picture: a gradient with a few coloured blocks and some noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None, None]
    pixels = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                             np.full((height, width, 1), 128.0)], axis=2)  # fmt: skip
    pixels[height // 4 : height // 2, width // 4 : width // 2] = (220, 30, 40)
    pixels += rng.normal(0, 6, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def raw_png(width: int, height: int, bit_depth: int, color_type: int, scanlines: bytes, *, level: int = 9) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(scanlines, level)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def header_only_png(width: int, height: int) -> bytes:
    """An RGB PNG whose IHDR claims width x height over an IDAT of 64 zero bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def rebuild_png(chunks: list[tuple[bytes, bytes]], *, bad_crc_on: bytes | None = None) -> bytes:
    out = PNG_SIGNATURE
    for kind, body in chunks:
        crc = (zlib.crc32(kind + body) ^ 0xDEADBEEF) & 0xFFFFFFFF if kind == bad_crc_on else None
        out += png_chunk(kind, body, crc)
    return out


def jpeg_with_sof_size(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its SOFn frame header claiming width x height."""
    pos = 2
    while pos < len(data):
        assert data[pos] == 0xFF, "JPEG marker expected"
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in (0xC0, 0xC1, 0xC2):
            patched = bytearray(data)
            struct.pack_into(">HH", patched, pos + 5, height, width)
            return bytes(patched)
        pos += 2 + length
    raise AssertionError("no SOF marker")


def riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind, (size,) = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"WEBP"
    for kind, payload in chunks:
        body += kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def vp8x(flags: int, width: int, height: int) -> bytes:
    return bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")


def webp_with_canvas(data: bytes, width: int, height: int) -> bytes:
    """The same extended-format WebP with its VP8X canvas claiming width x height."""
    chunks = riff_chunks(data)
    assert chunks[0][0] == b"VP8X"
    flags = chunks[0][1][0]
    return riff([(b"VP8X", vp8x(flags, width, height))] + chunks[1:])


def still_webp_with_vp8x_canvas(width: int, height: int) -> bytes:
    """A plain lossy WebP (one VP8 chunk) wrapped in a VP8X header claiming another canvas size."""
    chunks = riff_chunks(encode(photo(32, 32, seed=5), "WEBP", quality=80))
    assert chunks[0][0] == b"VP8 "
    return riff([(b"VP8X", vp8x(0, width, height))] + chunks)


def vp8_frame_size_bomb(width: int, height: int) -> bytes:
    """A simple-format lossy WebP whose VP8 key-frame header claims width x height (14 bits each)."""
    chunks = riff_chunks(encode(photo(32, 32, seed=6), "WEBP", quality=80))
    kind, frame = chunks[0]
    assert kind == b"VP8 " and frame[3:6] == b"\x9d\x01\x2a"
    frame = frame[:6] + struct.pack("<HH", width & 0x3FFF, height & 0x3FFF) + frame[10:]
    return riff([(kind, frame)] + chunks[1:])


def deterministic_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return out.getvalue()


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Model X"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0), 5: 0, 6: 35.0}
    return exif


# --- the corpus ---------------------------------------------------------------------------------


def entries() -> list[dict]:
    base = photo()
    jpeg = encode(base, "JPEG", quality=85)
    png = encode(base, "PNG")
    webp = encode(base, "WEBP", quality=80)
    heic = encode(base, "HEIF", quality=80)
    frames = [photo(48, 48, seed=s) for s in (1, 2, 3)]
    animated_webp = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0, quality=70)
    rgb16_rows = (np.asarray(base, dtype=np.uint16) * 257).astype(">u2")  # big-endian 16-bit samples
    rng = np.random.default_rng(42)
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()

    def e(name, data, expected, description, *, filename=None, content_type=None, worker=False):
        return {
            "name": name,
            "data": data,
            "expected": expected,
            "description": description,
            "filename": filename or name,
            "content_type": content_type or "application/octet-stream",
            "worker": worker,
        }

    huge_exif = Image.Exif()
    huge_exif[0x010F] = "PhoneMaker"
    huge_exif[0x9286] = b"ASCII\x00\x00\x00" + b"A" * 60_000  # UserComment (in the EXIF IFD)
    huge_exif_jpeg = encode(base, "JPEG", quality=85, exif=huge_exif.tobytes())
    assert 60_000 < len(huge_exif_jpeg) - len(jpeg) < 65_533

    rotated = Image.Exif()
    rotated[0x0112] = 6  # rotate 90 degrees clockwise when shown

    png_ok_chunks = png_chunks(png)
    zero_width_png = rebuild_png([(b"IHDR", struct.pack(">IIBBBBB", 0, 64, 8, 2, 0, 0, 0))] + png_ok_chunks[1:])

    heic_two = io.BytesIO()
    Image.new("RGB", (64, 48), (0, 0, 200)).save(heic_two, "HEIF", save_all=True, append_images=[base], quality=70)

    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0

    ztxt_bomb = png_chunks(png)
    ztxt_bomb.insert(1, (b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 64 * 1024 * 1024, 9)))

    svg = (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b'<script type="text/javascript">fetch("/api/v1/cart/").then(r=>r.text()).then(alert)</script>'
        b'<rect width="100" height="100" fill="red" onload="alert(1)"/></svg>\n'
    )
    html = b"<!doctype html><html><body><img src=x onerror=alert(document.cookie)></body></html>\n"
    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HHI", 2, 0x3E, 1) + b"\x00" * 40
    pdf = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    gif_js = b"GIF89a/*\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00*/=1;alert(document.domain);//" + b"\x00;"

    return [
        # Plain valid images, also as a baseline for the endpoints.
        e("ok.jpg", jpeg, ACCEPT, "a plain baseline JPEG", content_type="image/jpeg"),
        e("ok.png", png, ACCEPT, "a plain baseline PNG", content_type="image/png"),
        e("ok.webp", webp, ACCEPT, "a plain lossy WebP", content_type="image/webp"),
        e("ok.heic", heic, ACCEPT, "a HEIC photo (pillow-heif, x265)", content_type="image/heic"),
        # Decompression bombs: headers that claim far more pixels than the bytes behind them.
        e("bomb_png_ihdr_65535x65535.png", header_only_png(65535, 65535),
          TOO_MANY_PIXELS, "PNG whose IHDR claims 65535x65535 RGB (12.8 GB of pixels) over a 10-byte IDAT",
          content_type="image/png"),  # fmt: skip
        e("bomb_png_7000x7000_zeros.png", raw_png(7000, 7000, 8, 0, b"\x00" * (7001 * 7000)), TOO_MANY_PIXELS,
          "a real zlib bomb: 7000x7000 grey (49 MB raw, 49 Mpx > 40 Mpx limit) compressed to ~48 KB",
          content_type="image/png"),  # fmt: skip
        e("bomb_png_1bit_60000x60000.png", raw_png(60000, 60000, 1, 0, b"\x00" * 64), TOO_MANY_PIXELS,
          "1-bit PNG claiming 60000x60000 (3.6 Gpx) over a tiny IDAT", content_type="image/png"),
        e("bomb_png_6300x6300_zeros_legal.png", raw_png(6300, 6300, 8, 0, b"\x00" * (6301 * 6300)), ACCEPT,
          "a legal-size zlib bomb: 6300x6300 grey (39.7 Mpx, just under the 40 Mpx limit) in ~38 KB; valid, "
          "so accepted, but it costs the web process seconds of CPU and ~200 MB to decode and re-encode",
          content_type="image/png"),  # fmt: skip
        e("bomb_jpeg_sof_65500x65500.jpg", jpeg_with_sof_size(jpeg, 65500, 65500), TOO_MANY_PIXELS,
          "JPEG whose SOF0 frame header claims 65500x65500 (4.3 Gpx)", content_type="image/jpeg"),
        e("bomb_jpeg_sof_8000x6000.jpg", jpeg_with_sof_size(jpeg, 8000, 6000), TOO_MANY_PIXELS,
          "JPEG whose SOF0 claims 8000x6000 (48 Mpx: over the 40 Mpx limit, under Pillow's own bomb guard)",
          content_type="image/jpeg"),  # fmt: skip
        e("bomb_webp_vp8x_canvas_16384x16384.webp", webp_with_canvas(animated_webp, 16384, 16384), TOO_MANY_PIXELS,
          "animated WebP with 48x48 frames on a VP8X canvas of 16384x16384 (268 Mpx), valid per spec",
          content_type="image/webp"),  # fmt: skip
        e("bomb_webp_still_vp8x_16384x16384.webp", still_webp_with_vp8x_canvas(16384, 16384), TOO_MANY_PIXELS,
          "still WebP: a 32x32 VP8 bitstream under a VP8X canvas claiming 16384x16384 (libwebp reports the canvas)",
          content_type="image/webp"),  # fmt: skip
        e("bomb_webp_vp8_frame_16383x16383.webp", vp8_frame_size_bomb(16383, 16383), TOO_MANY_PIXELS,
          "simple-format WebP whose VP8 key-frame header claims 16383x16383 (268 Mpx)", content_type="image/webp"),
        # Truncated and corrupt data behind a valid magic number.
        e("truncated_half.jpg", jpeg[: len(jpeg) // 2], CORRUPT, "the first half of a baseline JPEG",
          content_type="image/jpeg"),
        e("truncated_header.jpg", jpeg[:200], CORRUPT, "a JPEG cut inside its headers (200 bytes)",
          content_type="image/jpeg"),
        e("truncated_half.png", png[: len(png) // 2], CORRUPT, "the first half of a PNG", content_type="image/png"),
        e("truncated_half.webp", webp[: len(webp) // 2], CORRUPT, "the first half of a WebP",
          content_type="image/webp"),
        e("truncated_half.heic", heic[: len(heic) // 2], CORRUPT, "the first half of a HEIC",
          content_type="image/heic"),
        e("corrupt_jpeg_magic_then_noise.jpg", b"\xff\xd8\xff\xe0" + noise, CORRUPT,
          "the JPEG magic number followed by 4 KB of random bytes", content_type="image/jpeg"),
        e("corrupt_png_magic_then_noise.png", PNG_SIGNATURE + noise, CORRUPT,
          "the PNG signature followed by 4 KB of random bytes", content_type="image/png"),
        e("corrupt_heif_brand_then_noise.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + noise,
          CORRUPT, "a HEIC ftyp box followed by random bytes", content_type="image/heic"),
        e("corrupt_png_bad_ihdr_crc.png", rebuild_png(png_ok_chunks, bad_crc_on=b"IHDR"), CORRUPT,
          "a PNG whose IHDR chunk has a wrong CRC", content_type="image/png"),
        e("png_bad_idat_crc.png", rebuild_png(png_ok_chunks, bad_crc_on=b"IDAT"), ACCEPT,
          "a PNG whose IDAT chunk has a wrong CRC: Pillow (like browsers) does not check IDAT CRCs, and the "
          "pixel data itself inflates cleanly, so the picture is usable and is re-encoded",
          content_type="image/png"),  # fmt: skip
        e("corrupt_png_zero_width.png", zero_width_png, CORRUPT, "a PNG whose IHDR claims a width of 0",
          content_type="image/png"),
        e("jpeg_soi_eoi_only.jpg", b"\xff\xd8\xff\xd9", CORRUPT, "a JPEG that is only SOI then EOI (4 bytes)",
          content_type="image/jpeg"),
        e("zero_bytes.jpg", b"", EMPTY, "an empty upload", content_type="image/jpeg"),
        e("random_noise.bin", noise, UNSUPPORTED, "4 KB of random bytes", content_type="image/jpeg"),
        # Wrong names and Content-Types: the content decides.
        e("png_named_jpg_sent_as_gif.jpg", png, ACCEPT, "a PNG named .jpg and sent as image/gif (content decides)",
          content_type="image/gif"),
        e("webp_named_txt.txt", webp, ACCEPT, "a WebP named .txt and sent as text/plain",
          content_type="text/plain"),
        e("svg_named_jpg.jpg", svg, UNSUPPORTED, "an SVG with a script, named .jpg and sent as image/jpeg",
          content_type="image/jpeg"),
        e("gif_named_png.png", encode(base.convert("P"), "GIF"), UNSUPPORTED,
          "a GIF named .png and sent as image/png", content_type="image/png"),
        e("html_named_png.png", html, UNSUPPORTED, "HTML with an onerror handler, named .png",
          content_type="image/png"),
        # Polyglots.
        e("polyglot_jpeg_zip.jpg", jpeg + deterministic_zip({"payload.js": b"alert(1)\n", "x.sh": b"#!/bin/sh\nid\n"}),
          ACCEPT, "a valid JPEG with a ZIP archive appended after EOI: the JPEG decodes and only its "
          "re-encoded pixels are stored, so the archive is dropped", content_type="image/jpeg"),  # fmt: skip
        e("polyglot_gif_js.gif", gif_js, UNSUPPORTED, "a GIF89a header that is also valid JavaScript",
          content_type="image/gif"),
        e("polyglot_png_html.png", png + html, ACCEPT,
          "a valid PNG with HTML appended after IEND: decodes as the PNG, the stored copy is a fresh JPEG",
          content_type="image/png"),  # fmt: skip
        # Other formats, allowlisted by content or not.
        e("script.svg", svg, UNSUPPORTED, "an SVG with a script element", content_type="image/svg+xml"),
        e("animated.gif", encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
          UNSUPPORTED, "a 3-frame animated GIF (GIF is not allowlisted)", content_type="image/gif"),  # fmt: skip
        e("animated.webp", animated_webp, ACCEPT, "a 3-frame animated WebP (first frame used)",
          content_type="image/webp", worker=True),
        e("animated.png", encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100),
          ACCEPT, "a 3-frame APNG (first frame used)", content_type="image/png"),  # fmt: skip
        e("two_images.heic", heic_two.getvalue(), ACCEPT, "a HEIF holding two images (primary used)",
          content_type="image/heic"),
        e("cmyk.jpg", encode(base.convert("CMYK"), "JPEG", quality=85),
          ACCEPT, "a CMYK JPEG (Adobe APP14)", content_type="image/jpeg", worker=True),  # fmt: skip
        e("grey16.png", encode(Image.fromarray(np.arange(96 * 64, dtype=np.uint16).reshape(64, 96) * 10), "PNG"),
          ACCEPT, "a 16-bit greyscale PNG", content_type="image/png", worker=True),  # fmt: skip
        e("rgb16.png", raw_png(96, 64, 16, 2, b"".join(b"\x00" + row.tobytes() for row in rgb16_rows)),
          ACCEPT, "a 16-bit-per-channel RGB PNG", content_type="image/png"),  # fmt: skip
        e("palette_transparent.png", encode(palette, "PNG"), ACCEPT, "a palette PNG with a transparent index",
          content_type="image/png"),
        e("rgba_lossless.webp", encode(base.convert("RGBA"), "WEBP", lossless=True), ACCEPT,
          "a lossless WebP with alpha", content_type="image/webp"),
        e("grey.jpg", encode(base.convert("L"), "JPEG"), ACCEPT, "a greyscale JPEG", content_type="image/jpeg"),
        e("progressive.jpg", encode(base, "JPEG", progressive=True, quality=85), ACCEPT, "a progressive JPEG",
          content_type="image/jpeg"),
        e("one_by_one.png", encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), ACCEPT,
          "a 1x1 PNG: tiny but valid (aspect 1, no minimum size in decode)", content_type="image/png", worker=True),
        e("strip_30000x1.png", encode(Image.new("L", (30000, 1), 128), "PNG"), EXTREME_ASPECT,
          "a 30000x1 strip: 30 kpx is under the pixel limit, aspect 30000 is over 20", content_type="image/png"),
        e("strip_1x65500.jpg", jpeg_with_sof_size(encode(Image.new("RGB", (8, 8)), "JPEG"), 1, 65500), EXTREME_ASPECT,
          "a JPEG whose SOF claims 1x65500", content_type="image/jpeg"),  # fmt: skip
        e("aspect_20_exactly.png", encode(Image.new("RGB", (2000, 100), (10, 120, 10)), "PNG"), ACCEPT,
          "2000x100: aspect ratio exactly 20, the limit itself is allowed", content_type="image/png"),
        e("aspect_20_and_a_bit.png", encode(Image.new("RGB", (2001, 100), (10, 120, 10)), "PNG"), EXTREME_ASPECT,
          "2001x100: just over the aspect limit", content_type="image/png"),
        e("huge_exif.jpg", huge_exif_jpeg, ACCEPT, "a JPEG carrying a ~60 KB EXIF block (UserComment)",
          content_type="image/jpeg", worker=True),
        e("gps.jpg", encode(base, "JPEG", quality=85, exif=gps_exif().tobytes()), ACCEPT,
          "a JPEG with EXIF GPS coordinates, maker and model (the stored copy must have none)",
          content_type="image/jpeg"),  # fmt: skip
        e("exif_rotated.jpg", encode(base, "JPEG", quality=85, exif=rotated.tobytes()), ACCEPT,
          "a 96x64 JPEG with EXIF orientation 6 (stored upright as 64x96)", content_type="image/jpeg"),
        e("mpo_two_frames.jpg", encode(base, "MPO", save_all=True, append_images=[frames[0]]), ACCEPT,
          "an MPO (a JPEG with a second image, as phone cameras write for depth): it is a JPEG by content",
          content_type="image/jpeg"),  # fmt: skip
        e("png_ztxt_bomb.png", rebuild_png(ztxt_bomb), CORRUPT,
          "a PNG with a zTXt chunk inflating to 64 MiB: Pillow stops at MAX_TEXT_CHUNK (1 MiB) and refuses the file",
          content_type="image/png"),  # fmt: skip
        e("avif_brand.avif", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + noise[:256], UNSUPPORTED,
          "an ISO-BMFF file with the AVIF brand (not allowlisted)", content_type="image/avif"),
        e("image.bmp", encode(base, "BMP"), UNSUPPORTED, "a BMP", content_type="image/bmp"),
        e("image.tiff", encode(base, "TIFF"), UNSUPPORTED, "a TIFF", content_type="image/tiff"),
        e("tiff_named_jpg.jpg", encode(base, "TIFF"), UNSUPPORTED, "a TIFF named .jpg, sent as image/jpeg",
          content_type="image/jpeg"),
        e("document.pdf", pdf, UNSUPPORTED, "a PDF with an OpenAction script", content_type="application/pdf"),
        e("page.html", html, UNSUPPORTED, "an HTML page", content_type="text/html"),
        e("notes.txt", b"hello, this is not a photo\n" * 10, UNSUPPORTED, "plain text", content_type="text/plain"),
        e("elf_header.jpg", elf, UNSUPPORTED, "an ELF executable header named .jpg", content_type="image/jpeg"),
        e("archive.zip", deterministic_zip({"photo.jpg": jpeg}), UNSUPPORTED, "a ZIP archive holding a JPEG",
          content_type="application/zip"),
    ]


def main() -> int:
    FILES.mkdir(parents=True, exist_ok=True)
    items = entries()
    names = [item["name"] for item in items]
    assert len(names) == len(set(names)), "duplicate corpus names"
    for stale in FILES.iterdir():
        if stale.name not in names:
            stale.unlink()
    manifest = []
    for item in items:
        data = item.pop("data")
        (FILES / item["name"]).write_bytes(data)
        manifest.append({**item, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(entry["size"] for entry in manifest)
    print(f"{len(manifest)} files, {total} bytes in {FILES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
