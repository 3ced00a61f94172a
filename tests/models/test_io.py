"""models.io: kinds, layouts, reading and writing frames, refusing what is not numeric."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from models import formats, io, metadata


def scene_stack(frames: int, size: int, seed: int = 0) -> np.ndarray:
    """A (T, H, W) uint16 stack: one static smooth scene plus per-frame noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    scene = 2000 + 1500 * np.sin(x / 5.0) * np.cos(y / 7.0)
    return np.clip(scene + rng.normal(0, 30, (frames, size, size)), 0, 4095).astype(np.uint16)


@pytest.mark.parametrize(("name", "kind"), [("a.png", "image"), ("a.TIF", "image"), ("a.tiff", "image"), ("a.jpeg", "image"),
                                            ("a.mp4", "video"), ("a.mkv", "video"), ("a.webm", "video")])
def test_detect_kind_by_extension(tmp_path, name, kind):
    assert io.detect_kind(tmp_path / name) == kind


def test_detect_kind_reads_npy_header(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((4, 5, 6), np.uint16))
    np.save(tmp_path / "i.npy", np.zeros((5, 6), np.float32))
    np.save(tmp_path / "v.npy", np.zeros(5))
    assert io.detect_kind(tmp_path / "s.npy") == "stack"
    assert io.detect_kind(tmp_path / "i.npy") == "image"
    with pytest.raises(ValueError, match="1-D array"):
        io.detect_kind(tmp_path / "v.npy")
    with pytest.raises(ValueError, match="unsupported"):
        io.detect_kind(tmp_path / "notes.txt")
    (tmp_path / "fake.npy").write_bytes(b"not numpy at all")
    with pytest.raises(ValueError, match="not a valid"):
        io.detect_kind(tmp_path / "fake.npy")


@pytest.mark.parametrize("stored", ["thw", "hwt"])
def test_read_stack_round_trip_both_layouts(tmp_path, stored):
    stack = scene_stack(20, 33)
    on_disk = stack if stored == "thw" else np.moveaxis(stack, 0, 2)
    np.save(tmp_path / "s.npy", on_disk)
    for layout in ("auto", stored):
        frames, info = io.read_stack(tmp_path / "s.npy", layout)
        assert frames.dtype == np.float32 and frames.shape == (20, 33, 33)
        np.testing.assert_array_equal(frames, stack.astype(np.float32))
        assert info == {"filename": "s.npy", "shape": list(on_disk.shape), "dtype": "uint16", "layout": stored}


def test_layout_by_shape():
    assert io.detect_layout(np.zeros((100, 271, 271))) == "thw"
    assert io.detect_layout(np.zeros((271, 271, 100))) == "hwt"


@pytest.mark.parametrize("shape_frames", [(48, 48, 48), (30, 40, 50)])
def test_layout_by_content_when_shape_is_ambiguous(shape_frames):
    t, h, w = shape_frames
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:h, 0:w]
    scene = 2000 + 1500 * np.sin(x / 3.0 + y / 4.0)
    stack = (scene + rng.normal(0, 50, (t, h, w))).astype(np.float32)
    assert io.detect_layout(stack) == "thw"
    assert io.detect_layout(np.moveaxis(stack, 0, 2)) == "hwt"


def test_read_stack_explicit_layout_overrides(tmp_path):
    np.save(tmp_path / "s.npy", scene_stack(10, 16))
    frames, info = io.read_stack(tmp_path / "s.npy", "hwt")
    assert frames.shape == (16, 10, 16) and info["layout"] == "hwt"


def test_a_stack_whose_frames_fit_only_one_way_is_read_that_way(tmp_path):
    """(20, 64, 6) holds six 20 x 64 frames: taken first, its frames would be 64 x 6, and registration
    failed on them with an OpenCV assertion. A layout that leaves frames under 8 px is refused by name."""
    np.save(tmp_path / "s.npy", np.random.default_rng(3).integers(0, 4095, (20, 64, 6)).astype(np.uint16))
    frames, info = io.read_stack(tmp_path / "s.npy")
    assert frames.shape == (6, 20, 64) and info["layout"] == "hwt"
    with pytest.raises(ValueError, match="smaller than 8x8"):
        io.read_stack(tmp_path / "s.npy", "thw")


@pytest.mark.parametrize("bad", [
    np.array([[1, None]], dtype=object),
    np.zeros((3, 4, 4), np.complex64),
    np.zeros((3, 4, 4), dtype=[("a", "u2"), ("b", "f4")]),
    np.zeros((3, 4, 4), bool),
    np.full((3, 4, 4), np.nan, np.float32),
])
def test_non_numeric_or_non_finite_npy_refused(tmp_path, bad):
    np.save(tmp_path / "bad.npy", bad, allow_pickle=True)
    reader = io.read_stack if bad.ndim == 3 else io.read_image
    with pytest.raises(ValueError):
        reader(tmp_path / "bad.npy")


def test_read_image_npy_keeps_units(tmp_path):
    frame = np.arange(12, dtype=np.uint16).reshape(3, 4) * 300
    np.save(tmp_path / "f.npy", frame)
    image, info = io.read_image(tmp_path / "f.npy")
    np.testing.assert_array_equal(image, frame.astype(np.float32))
    assert info == {"filename": "f.npy", "shape": [3, 4], "dtype": "uint16", "layout": None, "bits": 16, "channels": 1}


def test_read_png_gray_16bit_and_rgba(tmp_path):
    gray16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    image, info = io.read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(image, gray16.astype(np.float32))
    assert image.shape == (8, 8)

    rgba = np.random.default_rng(0).integers(0, 256, (8, 9, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    image, info = io.read_image(tmp_path / "c.png")
    assert image.shape == (8, 9, 4) and info["dtype"] == "uint8" and info["channels"] == 4
    np.testing.assert_array_equal(image, rgba.astype(np.float32))


def test_read_tiff_gray_and_rgb(tmp_path):
    gray = np.random.default_rng(0).integers(0, 65536, (10, 12), dtype=np.uint16)
    rgb = np.random.default_rng(1).integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "g.tif", gray)
    tifffile.imwrite(tmp_path / "c.tiff", rgb, photometric="rgb")
    np.testing.assert_array_equal(io.read_image(tmp_path / "g.tif")[0], gray.astype(np.float32))
    np.testing.assert_array_equal(io.read_image(tmp_path / "c.tiff")[0], rgb.astype(np.float32))


@pytest.mark.parametrize(("compression", "code"), [("lzw", 5), ("deflate", 8), ("packbits", 32773)])
def test_read_compressed_tiff_as_cameras_and_opencv_write_it(tmp_path, compression, code):
    """OpenCV writes LZW by default, scanners and raw converters Deflate or PackBits: each reads back exact."""
    import cv2

    gray = np.random.default_rng(0).integers(0, 65536, (10, 12), dtype=np.uint16)
    rgb = np.random.default_rng(1).integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    for name, image in (("g.tif", gray), ("c.tif", rgb[..., ::-1])):  # OpenCV writes BGR
        assert cv2.imwrite(str(tmp_path / name), image, [cv2.IMWRITE_TIFF_COMPRESSION, code])
        assert tifffile.TiffFile(tmp_path / name).pages[0].compression == code
    np.testing.assert_array_equal(io.read_image(tmp_path / "g.tif")[0], gray.astype(np.float32))
    np.testing.assert_array_equal(io.read_image(tmp_path / "c.tif")[0], rgb.astype(np.float32))


def test_read_jpeg_gray_and_colour(tmp_path):
    smooth = np.tile(np.linspace(20, 230, 32, dtype=np.uint8), (24, 1))
    Image.fromarray(smooth).save(tmp_path / "g.jpg", quality=95)
    Image.fromarray(np.stack([smooth] * 3, axis=2)).save(tmp_path / "c.jpg", quality=95)
    gray, _ = io.read_image(tmp_path / "g.jpg")
    colour, _ = io.read_image(tmp_path / "c.jpg")
    assert gray.shape == (24, 32) and colour.shape == (24, 32, 3)
    assert np.abs(gray - smooth).max() < 8 and np.abs(colour[..., 1] - smooth).max() < 8


def test_write_npy_and_tiff(tmp_path):
    frame = np.array([[-5.0, 10.4], [10.6, 70000.0]], np.float32)
    io.write_frame(tmp_path / "o.npy", frame, {"dtype": "uint16"})
    io.write_frame(tmp_path / "o.tif", frame, {"dtype": "uint16"})
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), frame)
    written = tifffile.imread(tmp_path / "o.tif")
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written, [[0, 10], [11, 65535]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.npy", "o.tif"]  # no temp files left


def test_write_png_preview(tmp_path):
    eight_bit = np.array([[-3.0, 100.2], [254.6, 300.0]], np.float32)
    io.write_frame(tmp_path / "a.png", eight_bit, {"dtype": "uint8"})
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), [[0, 100], [255, 255]])

    raw = np.linspace(100, 3000, 100 * 100, dtype=np.float32).reshape(100, 100)
    io.write_frame(tmp_path / "b.png", raw, {"dtype": "uint16"}, kind="stack")
    preview = np.asarray(Image.open(tmp_path / "b.png"))
    assert preview.dtype == np.uint8 and preview.min() == 0 and preview.max() == 255
    assert 120 < preview[50, 50] < 135  # the middle value lands mid-range


def test_write_unknown_extension_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot write"):
        io.write_frame(tmp_path / "o.bmp", np.zeros((2, 2), np.float32), {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_a_gray_png_of_under_8_bits_says_so_and_comes_back_8_bit(tmp_path, bits):
    """Line art and scanned pages come as 1-bit PNGs: the job said 8 bits; the result, gray levels, is 8-bit."""
    from PIL import Image

    levels = np.random.default_rng(bits).integers(0, 2**bits, (12, 10)).astype(np.uint8)
    if bits == 1:
        Image.fromarray(levels.astype(bool)).save(tmp_path / "art.png")
    else:
        Image.fromarray(levels).save(tmp_path / "art.png", bits=bits)
    assert formats.png_gray_bits((tmp_path / "art.png").read_bytes()[:26]) == bits
    image, info = io.read_image(tmp_path / "art.png")
    assert (info["dtype"], info["bits"], info["channels"]) == ("uint8", bits, 1)
    np.testing.assert_array_equal(image, levels * (255 // (2**bits - 1)))
    io.write_frame(tmp_path / "out.png", image, info)
    again, again_info = io.read_image(tmp_path / "out.png")
    assert again_info["bits"] == 8 and np.array_equal(again, image)


def test_sixteen_bit_colour_png_round_trip_keeps_every_bit(tmp_path):
    import cv2

    rgb16 = np.random.default_rng(2).integers(0, 65536, (12, 10, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    image, info = io.read_image(tmp_path / "c16.png")
    assert (info["dtype"], info["bits"], info["channels"]) == ("uint16", 16, 3)
    np.testing.assert_array_equal(image, rgb16.astype(np.float32))
    io.write_frame(tmp_path / "out.png", image, info)
    again, again_info = io.read_image(tmp_path / "out.png")
    assert again_info["dtype"] == "uint16"
    np.testing.assert_array_equal(again, image)


def test_colour_npy_is_an_image_unless_told_stack(tmp_path):
    np.save(tmp_path / "rgb.npy", np.zeros((16, 20, 3), np.uint8))
    np.save(tmp_path / "rgba.npy", np.zeros((16, 20, 4), np.uint8))
    np.save(tmp_path / "stack.npy", np.zeros((16, 20, 5), np.uint16))
    assert io.detect_kind(tmp_path / "rgb.npy") == "image"
    assert io.detect_kind(tmp_path / "rgba.npy") == "image"
    assert io.detect_kind(tmp_path / "rgb.npy", "stack") == "stack"
    assert io.detect_kind(tmp_path / "stack.npy") == "stack"
    with pytest.raises(ValueError, match="not an image"):
        io.detect_kind(tmp_path / "stack.npy", "image")
    image, info = io.read_image(tmp_path / "rgb.npy")
    assert image.shape == (16, 20, 3) and info["channels"] == 3


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_eight_bit_formats_write_colour_and_scale_sixteen_bits(tmp_path, suffix):
    ramp = np.tile(np.linspace(0, 65535, 32, dtype=np.float32), (24, 1))
    rgb = np.stack([ramp, ramp[::-1], np.full_like(ramp, 32768)], axis=2)
    io.write_frame(tmp_path / f"o{suffix}", rgb, {"dtype": "uint16"})
    back, info = io.read_image(tmp_path / f"o{suffix}")
    assert info["dtype"] == "uint8" and back.shape == (24, 32, 3)
    assert np.abs(back - rgb / 257).max() < 10  # lossy at quality 95 (swapped channels would be ~250 off)


@pytest.mark.parametrize("channels", [3, 4])
def test_a_lossless_webp_comes_back_lossless_and_a_lossy_one_lossy(tmp_path, channels):
    import cv2

    noise = np.random.default_rng(2).integers(0, 256, (24, 32, channels), dtype=np.uint8)  # lossy coding cannot keep it
    for name, quality in (("lossless.webp", 101), ("lossy.webp", 80)):
        assert cv2.imwrite(str(tmp_path / name), noise, [cv2.IMWRITE_WEBP_QUALITY, quality])
        image, info = io.read_image(tmp_path / name)
        io.write_frame(tmp_path / f"out-{name}", image, info)
        back, back_info = io.read_image(tmp_path / f"out-{name}")
        assert info["lossless"] == back_info["lossless"] == (quality > 100)
        assert np.array_equal(back, image) == (quality > 100)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_pixels_are_turned_upright_as_pillow_turns_them(tmp_path, orientation):
    from PIL import ImageOps

    stored = np.random.default_rng(orientation).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "p.png", exif=exif.tobytes())
    read, info = io.read_image(tmp_path / "p.png")
    assert np.array_equal(read, np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "p.png"))))
    assert info.get("orientation", 1) == orientation


@pytest.mark.parametrize(("fmt", "dtype", "channels", "lossless"), [
    ("png", "uint8", 3, False), ("png", "uint16", 3, False), ("png", "uint8", 4, False), ("jpg", "uint8", 3, False), ("tiff", "uint16", 3, False),
    ("webp", "uint8", 3, False), ("webp", "uint8", 4, False), ("webp", "uint8", 3, True), ("webp", "uint8", 4, True)])
def test_the_colour_profile_is_embedded_in_every_image_format(tmp_path, fmt, dtype, channels, lossless):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes() + bytes(70_000)  # over one JPEG segment
    top = 65535 if dtype == "uint16" else 255
    frame = np.random.default_rng(0).integers(0, top, (24, 40, channels)).astype(np.float32)
    io.write_frame(tmp_path / f"o.{fmt}", frame, {"dtype": dtype, "lossless": lossless}, tags=metadata.Tags(profile=profile))
    with Image.open(tmp_path / f"o.{fmt}") as image:
        image.load()
        assert image.info.get("icc_profile") == profile and image.size == (40, 24)
    back, info = io.read_image(tmp_path / f"o.{fmt}")
    assert back.shape == frame.shape[:2] + (3 if fmt == "jpg" else channels,) and info["dtype"] == ("uint16" if fmt in ("png", "tiff") and dtype == "uint16" else "uint8")
    assert io.picture_tags(tmp_path / f"o.{fmt}").profile == profile


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "heic", "avif"])
def test_the_camera_record_comes_back_in_the_result(tmp_path, fmt):
    """A photo's EXIF record (camera, capture time, exposure, location) is copied into the result, with
    the result's own pixel size and no orientation (its pixels are upright); before, every result lost
    it. A maker's note too large for one JPEG segment is left out, the rest kept."""
    from PIL import ExifTags
    from PIL.TiffImagePlugin import IFDRational

    exif = Image.Exif()
    exif.update({ExifTags.Base.Make: "Canon", ExifTags.Base.Model: "EOS R5", ExifTags.Base.Orientation: 6})
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: "2026:06:01 12:00:00", ExifTags.Base.ExposureTime: IFDRational(1, 250),
                               ExifTags.Base.ExifImageWidth: 40, ExifTags.Base.ExifImageHeight: 24, ExifTags.Base.MakerNote: bytes(70_000)}
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0)}
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(tmp_path / "in.png", exif=exif)
    image, info = io.read_image(tmp_path / "in.png")
    assert info["exif"] and image.shape == (40, 24, 3)
    enlarged = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
    io.write_frame(tmp_path / f"out.{fmt}", enlarged, info, tags=io.picture_tags(tmp_path / "in.png"))
    with Image.open(tmp_path / f"out.{fmt}") as out:
        record = out.getexif()
        details, place = record.get_ifd(ExifTags.IFD.Exif), record.get_ifd(ExifTags.IFD.GPSInfo)
    assert (record.get(ExifTags.Base.Make), record.get(ExifTags.Base.Model), ExifTags.Base.Orientation in record) == ("Canon", "EOS R5", False)
    assert (details[ExifTags.Base.DateTimeOriginal], details[ExifTags.Base.ExposureTime], ExifTags.Base.MakerNote in details) == (
        "2026:06:01 12:00:00", 1 / 250, False)
    assert (details[ExifTags.Base.ExifImageWidth], details[ExifTags.Base.ExifImageHeight]) == (48, 80)
    assert place[ExifTags.GPS.GPSLatitude] == (52.0, 31.0, 12.0)


@pytest.mark.parametrize("fmt", ["TIFF", "PNG", "WEBP"])
def test_an_image_file_with_several_pictures_is_refused_not_cut_to_its_first(tmp_path, fmt):
    frames = [Image.fromarray(np.full((24, 40), 60 * i, np.uint8)) for i in range(3)]
    path = tmp_path / f"loop.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match="3 pages" if fmt == "TIFF" else "animation of 3 frames"):
        io.read_image(path)
    frames[0].save(path, format=fmt)
    assert io.read_image(path)[0].shape[:2] == (24, 40)  # one picture is read


@pytest.mark.parametrize("mode", ["P", "1", "white-is-zero"])
def test_palette_and_white_is_zero_tiffs_are_read_as_they_look(tmp_path, mode):
    """Palette TIFFs were read as their indices and white-is-zero ones (scanned documents) inverted."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    path = tmp_path / "scan.tif"
    if mode == "white-is-zero":
        tifffile.imwrite(path, rgb[..., 0], photometric="miniswhite")
        expected = 255 - rgb[..., 0]
    else:
        image = Image.fromarray(rgb).convert(mode)
        image.save(path)
        expected = np.asarray(image.convert("RGB" if mode == "P" else "L"))
    read, _ = io.read_image(path)
    assert np.array_equal(read, expected)


@pytest.mark.parametrize(("name", "mode", "says"), [("print.tif", "CMYK", "CMYK TIFF"), ("print.tif", "YCbCr", "YCBCR TIFF"),
                                             ("print.tif", "LAB", "CIELAB TIFF"), ("print.jpg", "CMYK", "CMYK image")])
def test_other_colour_models_are_refused_not_taken_for_rgb(tmp_path, name, mode, says):
    Image.fromarray(np.zeros((24, 40, 3), np.uint8)).convert(mode).save(tmp_path / name)
    with pytest.raises(ValueError, match=says):
        io.read_image(tmp_path / name)


def test_a_profile_for_other_samples_is_not_embedded(tmp_path):
    """A gray result gets no RGB profile (nor a colour one a gray profile): a viewer would misread it."""
    from PIL import ImageCms

    rgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tags = metadata.Tags(profile=rgb_profile)
    io.write_frame(tmp_path / "gray.png", np.full((24, 40), 90, np.float32), {"dtype": "uint8"}, tags=tags)
    io.write_frame(tmp_path / "rgb.png", np.full((24, 40, 3), 90, np.float32), {"dtype": "uint8"}, tags=tags)
    assert io.picture_tags(tmp_path / "gray.png").profile is None and io.picture_tags(tmp_path / "rgb.png").profile == rgb_profile


@pytest.mark.parametrize(("name", "channels", "deep"), [("phone.heic", 3, False), ("hdr.heic", 3, True), ("gray.heif", 1, False),
                                                       ("sticker.heic", 4, False), ("photo.avif", 3, False)])
def test_heic_and_avif_photos_come_back_as_they_were_sent(tmp_path, name, channels, deep):
    """Phones' HEIC (8 and 10 bits, gray, alpha) and AVIF: read with depth, channels and colour profile,
    written back in their own format with them (lossy, as the formats are)."""
    import pillow_heif
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes() if channels > 1 else None
    y, x = np.mgrid[0:48, 0:64]
    smooth = 0.5 + 0.35 * np.sin(x / 9.0) * np.cos(y / 13.0)
    planes = [smooth, smooth[::-1], smooth[:, ::-1], np.full_like(smooth, 0.8)][:channels]
    top = 65535 if deep else 255
    pixels = np.rint(np.stack(planes, axis=2)[..., :channels].squeeze() * top).astype(np.uint16 if deep else np.uint8)
    if name.endswith(".avif"):
        Image.fromarray(pixels).save(tmp_path / name, quality=95, icc_profile=profile)
    else:
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels] + (";16" if deep else "")
        pillow_heif.from_bytes(mode=mode, size=(64, 48), data=pixels.tobytes()).save(tmp_path / name, quality=95, icc_profile=profile)
    image, info = io.read_image(tmp_path / name)
    assert (info["dtype"], info["channels"], info.get("colour_profile")) == ("uint16" if deep else "uint8", channels, "sRGB built-in" if profile else None)
    out = tmp_path / f"out.{name.rsplit('.', 1)[1]}"
    io.write_frame(out, image, info, tags=io.picture_tags(tmp_path / name))
    back, back_info = io.read_image(out)
    assert (back_info["dtype"], back.shape, io.picture_tags(out).profile) == (info["dtype"], image.shape, profile)
    assert np.abs(back - image).mean() < 0.02 * top


@pytest.mark.parametrize(("bits", "channels"), [(8, 1), (8, 4), (10, 3), (12, 3), (10, 1), (10, 4)])
def test_an_avif_is_read_at_its_own_depth(tmp_path, bits, channels):
    """A 10- or 12-bit AVIF (HDR photos, screenshots of HDR video) was cut to 8 bits by Pillow: it is
    read at its depth, as 16-bit values the way HEIC's are, and a PNG result keeps 16 bits."""
    import imagecodecs

    from models.formats import avif_bit_depth

    y, x = np.mgrid[0:48, 0:64]
    ramp = (x * 64 + y) / (64 * 64)  # more distinct levels than 8 bits hold
    levels = np.rint(np.dstack([ramp, ramp[::-1], ramp[:, ::-1], np.full_like(ramp, 0.7)])[..., :channels].squeeze() * (2**bits - 1))
    stored = levels.astype(np.uint16 if bits > 8 else np.uint8)
    data = imagecodecs.avif_encode(stored, level=100, bitspersample=bits)  # lossless
    (tmp_path / "hdr.avif").write_bytes(data)
    assert avif_bit_depth(data) == bits
    image, info = io.read_image(tmp_path / "hdr.avif")
    assert (info["dtype"], info["channels"]) == ("uint16" if bits > 8 else "uint8", channels)
    step = 2 ** (16 - bits) if bits > 8 else 1  # one stored level, in the values read
    assert np.abs(image - stored.astype(np.float32) * step).max() <= step
    io.write_frame(tmp_path / "out.png", image, info)
    back, back_info = io.read_image(tmp_path / "out.png")
    assert back_info["dtype"] == info["dtype"] and np.array_equal(back, image)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif", ".heic", ".avif"])
@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x01" * 40])
def test_an_empty_or_broken_image_is_a_clear_error(tmp_path, suffix, content):
    """restora run and the worker say the file is unreadable; before, an empty PNG raised OpenCV's
    assertion and a broken HEIC Pillow's UnidentifiedImageError."""
    (tmp_path / f"broken{suffix}").write_bytes(content)
    with pytest.raises(ValueError, match="broken"):
        io.read_image(tmp_path / f"broken{suffix}")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_gray_and_alpha_picture_comes_back_gray_and_alpha(tmp_path, dtype):
    """A gray + alpha PNG (logos, masks) is read as RGBA with equal channels (as OpenCV reads it) and
    said to have 2 channels; PNG and TIFF results are gray + alpha again, at its depth (they came
    back RGBA), WebP (colour only) RGBA."""
    import imagecodecs

    top = np.iinfo(dtype).max
    pixels = np.dstack([np.random.default_rng(5).integers(0, top, (24, 40)), np.full((24, 40), top // 3)]).astype(dtype)
    (tmp_path / "logo.png").write_bytes(imagecodecs.png_encode(pixels))
    image, info = io.read_image(tmp_path / "logo.png")
    assert info["channels"] == 2 and image.shape == (24, 40, 4)
    for fmt in ("png", "tiff", "webp"):
        io.write_frame(tmp_path / f"out.{fmt}", image, info)
    assert (tmp_path / "out.png").read_bytes()[25] == 4  # PNG colour type: gray + alpha
    assert np.array_equal(imagecodecs.png_decode((tmp_path / "out.png").read_bytes()), pixels)
    assert np.array_equal(tifffile.imread(tmp_path / "out.tiff"), pixels)
    assert io.read_image(tmp_path / "out.webp")[0].shape == (24, 40, 4)
