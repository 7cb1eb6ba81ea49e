import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from vision.decode import (
    CorruptImage,
    DecodeLimits,
    EmptyImage,
    ExtremeAspectRatio,
    ImageRejected,
    TooManyBytes,
    TooManyPixels,
    UnsupportedFormat,
    decode_image,
    encode_clean_jpeg,
)

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 200, 0)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def pixel(decoded, x, y):
    return tuple(int(v) for v in np.asarray(decoded.image)[y, x])


def close_to(actual, expected, tolerance=12):
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


@pytest.mark.parametrize("fmt, options", [("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"lossless": True})])
def test_accepts_allowlisted_formats_as_rgb(encode, fmt, options):
    decoded = decode_image(encode(Image.new("RGB", (64, 48), RED), fmt, **options))

    assert decoded.format == fmt
    assert decoded.image.mode == "RGB"
    assert (decoded.width, decoded.height) == (64, 48) == decoded.image.size
    assert (decoded.source_width, decoded.source_height) == (64, 48)
    assert not decoded.animated and not decoded.orientation_applied
    assert close_to(pixel(decoded, 10, 10), RED)


def test_heic_round_trip_is_accepted(encode):
    image = Image.new("RGB", (64, 48), BLUE)
    image.paste(RED, (0, 0, 32, 48))
    data = encode(image, "HEIF", quality=95)
    assert data[4:8] == b"ftyp"

    decoded = decode_image(data)

    assert decoded.format == "HEIF"
    assert decoded.image.size == (64, 48)
    assert close_to(pixel(decoded, 8, 24), RED, 30)
    assert close_to(pixel(decoded, 56, 24), BLUE, 30)


def test_empty_upload():
    with pytest.raises(EmptyImage) as caught:
        decode_image(b"")
    assert caught.value.code == "empty_image"


def test_truncated_jpeg_is_corrupt(encode):
    noise = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG")

    with pytest.raises(CorruptImage) as caught:
        decode_image(data[: len(data) // 2])
    assert caught.value.code == "corrupt_image"


def test_truncated_png_is_corrupt(encode):
    noise = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")

    with pytest.raises(CorruptImage):
        decode_image(data[: len(data) // 2])


def test_garbage_behind_a_jpeg_signature_is_corrupt():
    with pytest.raises(CorruptImage):
        decode_image(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)


def _zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("photo.jpg", b"not really")
    return out.getvalue()


def _encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), RED).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', id="svg"),
        pytest.param(_encoded("GIF"), id="gif"),
        pytest.param(_encoded("PDF"), id="pdf"),
        pytest.param(_encoded("BMP"), id="bmp"),
        pytest.param(_encoded("TIFF"), id="tiff"),
        pytest.param(b"just some text, named photo.jpg", id="text"),
        pytest.param(_zip_bytes(), id="zip"),
    ],
)
def test_other_formats_are_unsupported(data):
    with pytest.raises(UnsupportedFormat) as caught:
        decode_image(data)
    assert caught.value.code == "unsupported_format"


def test_byte_limit_is_checked_before_anything_else():
    garbage = b"x" * 2048  # would be unsupported, but the size is checked first

    with pytest.raises(TooManyBytes) as caught:
        decode_image(garbage, limits=DecodeLimits(max_bytes=1024))
    assert caught.value.code == "too_many_bytes"


def test_pixel_limit_comes_from_the_header_before_decoding():
    data = png_header_only(8000, 8000)  # 64 megapixels claimed in 57 bytes
    assert len(data) < 100

    with pytest.raises(TooManyPixels) as caught:
        decode_image(data)
    assert caught.value.code == "too_many_pixels"


def test_decompression_bomb_is_too_many_pixels():
    with pytest.raises(TooManyPixels):
        decode_image(png_header_only(100_000, 100_000), limits=DecodeLimits(max_pixels=10**12))


def test_pixel_limit_is_configurable(encode):
    with pytest.raises(TooManyPixels):
        decode_image(encode(Image.new("RGB", (100, 100)), "PNG"), limits=DecodeLimits(max_pixels=5000))


def test_extreme_aspect_ratio(encode):
    with pytest.raises(ExtremeAspectRatio) as caught:
        decode_image(encode(Image.new("RGB", (2100, 100)), "PNG"))
    assert caught.value.code == "extreme_aspect_ratio"


def test_every_rejection_has_its_own_stable_code():
    classes = [EmptyImage, CorruptImage, UnsupportedFormat, TooManyBytes, TooManyPixels, ExtremeAspectRatio]
    codes = [cls.code for cls in classes]

    assert all(issubclass(cls, ImageRejected) for cls in classes)
    assert len(set(codes)) == len(codes)
    assert all(str(cls()) for cls in classes)  # a human message by default


def test_cmyk_jpeg_becomes_rgb(encode):
    decoded = decode_image(encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95))

    assert decoded.image.mode == "RGB"
    assert close_to(pixel(decoded, 16, 16), RED, 20)


def test_16_bit_png_is_scaled_to_8_bits(encode):
    ramp = np.tile(np.array([0, 32768, 65535], np.uint16).repeat(8), (8, 1))
    image = Image.fromarray(ramp)
    assert image.mode.startswith("I;16")

    decoded = decode_image(encode(image, "PNG"))

    assert decoded.image.mode == "RGB"
    assert pixel(decoded, 2, 2) == (0, 0, 0)
    assert close_to(pixel(decoded, 10, 2), (128, 128, 128), 1)
    assert pixel(decoded, 20, 2) == (255, 255, 255)


def test_palette_png_becomes_rgb(encode):
    image = Image.new("P", (20, 20), 1)
    image.putpalette([*RED, *BLUE] + [0] * 762)

    decoded = decode_image(encode(image, "PNG"))

    assert decoded.image.mode == "RGB"
    assert pixel(decoded, 5, 5) == BLUE


def test_transparency_is_composited_onto_white(encode):
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 10, 20))
    image.paste((0, 0, 255, 128), (10, 0, 20, 20))

    decoded = decode_image(encode(image, "PNG"))

    assert decoded.image.mode == "RGB"
    assert pixel(decoded, 5, 5) == RED
    assert close_to(pixel(decoded, 15, 5), (127, 127, 255), 2)  # half-transparent blue on white


def test_exif_orientation_is_applied(encode):
    image = Image.new("RGB", (40, 20), BLUE)
    image.paste(RED, (0, 0, 10, 10))  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"

    decoded = decode_image(encode(image, "JPEG", quality=95, exif=exif.tobytes()))

    assert decoded.orientation_applied
    assert (decoded.source_width, decoded.source_height) == (40, 20)
    assert (decoded.width, decoded.height) == (20, 40)
    assert close_to(pixel(decoded, 15, 4), RED, 30)  # the marker is now top-right
    assert close_to(pixel(decoded, 4, 4), BLUE, 30)


def test_animated_images_use_the_first_frame(encode):
    frames = [Image.new("RGB", (24, 24), color) for color in (RED, GREEN, BLUE)]
    for fmt, options in (("WEBP", {"lossless": True}), ("PNG", {})):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **options)

        decoded = decode_image(data)

        assert decoded.animated, fmt
        assert pixel(decoded, 12, 12) == RED, fmt


def test_large_jpeg_is_decoded_at_reduced_size(encode):
    data = encode(Image.new("RGB", (4000, 1000), GREEN), "JPEG")

    decoded = decode_image(data, limits=DecodeLimits(max_side_after_draft=1000))

    assert (decoded.source_width, decoded.source_height) == (4000, 1000)
    assert max(decoded.width, decoded.height) == 1000
    assert decoded.image.size == (decoded.width, decoded.height)


def _jpeg_with_gps_and_xmp(encode) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0132] = "2024:05:01 10:00:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 22.0, 12.5)
    gps[3] = "E"
    gps[4] = (4.0, 53.0, 30.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    return encode(Image.new("RGB", (32, 32), RED), "JPEG", exif=exif.tobytes(), xmp=xmp, comment=b"secret note")


def test_clean_copy_has_no_metadata(encode):
    data = _jpeg_with_gps_and_xmp(encode)
    with Image.open(io.BytesIO(data)) as original:  # the fixture really carries GPS data
        assert original.getexif().get_ifd(0x8825)

    decoded = decode_image(data)
    clean = encode_clean_jpeg(decoded.image)

    assert decoded.had_metadata
    assert not decoded.image.info.get("exif")
    with Image.open(io.BytesIO(clean)) as stored:
        assert stored.format == "JPEG"
        assert not stored.getexif()
        assert not stored.getexif().get_ifd(0x8825)
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(stored.info)
    assert b"Exif\x00\x00" not in clean and b"PhoneMaker" not in clean
    assert b"adobe:ns:meta" not in clean and b"secret note" not in clean
    assert decode_image(clean).had_metadata is False


def test_clean_copy_keeps_the_picture(encode):
    image = Image.new("RGB", (40, 30), BLUE)
    image.paste(RED, (0, 0, 20, 30))

    stored = decode_image(encode_clean_jpeg(image, quality=95))

    assert stored.image.size == (40, 30)
    assert close_to(pixel(stored, 5, 15), RED, 20) and close_to(pixel(stored, 35, 15), BLUE, 20)


def test_a_phone_jpeg_with_extra_mpf_images_is_decoded_as_jpeg():
    """Cameras append depth maps / HDR gain maps in an MPF index; Pillow calls that MPO."""
    import io

    from PIL import Image

    from vision.decode import decode_image

    first, second = Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (64, 48), (30, 30, 200))
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second])
    decoded = decode_image(out.getvalue())
    assert decoded.format == "JPEG" and decoded.image.size == (64, 48)
    assert decoded.image.getpixel((32, 24))[0] > 150  # the primary (red) image


def test_a_png_with_one_transparent_colour_lands_on_white_as_alpha_does():
    """PNG's tRNS chunk makes one grey or RGB value transparent: only palette images honoured it, so a
    transparent black background came out black."""
    import io

    from PIL import Image

    for mode, key, fill in (("RGB", (0, 0, 0), (0, 0, 0)), ("L", 0, 0)):
        picture = Image.new(mode, (40, 30), fill)
        picture.paste(Image.new(mode, (10, 10), (200, 30, 30) if mode == "RGB" else 120), (15, 10))
        out = io.BytesIO()
        picture.save(out, "PNG", transparency=key)
        decoded = decode_image(out.getvalue()).image
        assert decoded.getpixel((0, 0)) == (255, 255, 255), mode
        assert decoded.getpixel((20, 15)) != (255, 255, 255), mode


def test_a_dark_16_bit_grey_image_stays_dark():
    """A 16-bit image whose brightest pixel is 200 of 65535 was scaled as 8-bit: a near-black photo
    came out 78 % grey."""
    import io

    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.full((20, 20), 200, np.uint16)).save(out, "PNG")
    assert max(decode_image(out.getvalue()).image.getpixel((5, 5))) <= 2


def swapped_primaries_profile() -> bytes:
    """An ICC v2 RGB profile whose red primary is sRGB's green and whose green is sRGB's red (a
    profile as far from sRGB as a test can make it): pure red pixels tagged with it are green."""
    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + s15(x) + s15(y) + s15(z)

    text = b"swapped primaries\x00"
    tags = [
        (b"desc", b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)),
        (b"cprt", b"text" + bytes(4) + b"test\x00"),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.3851, 0.7169, 0.0971)),  # sRGB's green, adapted to D50
        (b"gXYZ", xyz(0.4361, 0.2225, 0.0139)),  # sRGB's red
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        *[(tag, b"curv" + bytes(4) + struct.pack(">IH", 1, round(2.2 * 256)) + bytes(2))
          for tag in (b"rTRC", b"gTRC", b"bTRC")],
    ]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = 128 + 4 + len(table) + len(data)
    header = (struct.pack(">I", size) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + bytes(12)
              + b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(4 + 16 + 28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_colour_profile_is_applied_with_or_without_alpha(mode):
    """A PNG tagged with its colour profile is converted to sRGB; one with an alpha channel too
    (its profile was ignored: a product shot in a wide-gamut space came out in the wrong colours)."""
    image = Image.new(mode, (40, 30), RED + (255,) * (mode == "RGBA"))
    if mode == "RGBA":
        image.putpixel((0, 0), (255, 0, 0, 0))  # a transparent corner: onto white
    buffer = io.BytesIO()
    image.save(buffer, "PNG", icc_profile=swapped_primaries_profile())

    decoded = decode_image(buffer.getvalue())

    red, green, blue = pixel(decoded, 20, 15)
    assert green > 200 and red < 60 and blue < 60
    if mode == "RGBA":
        assert min(pixel(decoded, 0, 0)) > 240
