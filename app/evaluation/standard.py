"""Standard image coding with Pillow: the reference thumbnail, JPEG, WebP, AVIF and JPEG XL round trips.

The reference thumbnail is the one definition of "a faithful x4 downscale" in an evaluation:
the bicubic+JPEG baseline codes it, and every thumbnail PSNR is measured against it. It is
Pillow's antialiased bicubic after padding the photo to a multiple of 4 by edge replication, so
thumbnail pixel i covers photo pixels 4i..4i+3 exactly as in the HyperThumbnail geometry; it
then matches the encoder's own base (``app.codec.nets.encoder.downscale_bicubic``) to within one grey
level (about 58 dB).
"""

import io

import numpy as np
from PIL import Image

from app.codec.files.marker import SCALE

# Optimized Huffman tables everywhere, as HyperThumbnails have: only the pixels should differ.
THUMBNAIL_JPEG_OPTIONS = {
    "subsampling": 0,
    "optimize": True,
}  # 4:4:4, like a HyperThumbnail
FULL_JPEG_OPTIONS = {"optimize": True}  # Pillow's default 4:2:0
AVIF_SPEED = 6
WEBP_METHOD = 4
JXL_EFFORT = 7  # libjxl's default
# What websites ship beside a full-resolution file: a plain 4:4:4 JPEG thumbnail at this quality.
SITE_THUMBNAIL_QUALITY = 80


def reference_thumbnail(rgb: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """Antialiased bicubic x``scale`` downscale to ceil(W/scale) x ceil(H/scale)."""
    height, width = rgb.shape[:2]
    padded = np.pad(rgb, ((0, -height % scale), (0, -width % scale), (0, 0)), mode="edge")
    size = (padded.shape[1] // scale, padded.shape[0] // scale)
    return np.asarray(Image.fromarray(padded).resize(size, Image.BICUBIC))


def upscale_bicubic(thumbnail: np.ndarray, size: tuple[int, int], scale: int = SCALE) -> np.ndarray:
    """Bicubic x``scale`` upscale, cropped at the top-left to ``size`` (width, height)."""
    height, width = thumbnail.shape[:2]
    big = Image.fromarray(thumbnail).resize((width * scale, height * scale), Image.BICUBIC)
    return np.asarray(big)[: size[1], : size[0]]


def _encode(rgb: np.ndarray, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, image_format, **options)
    return buffer.getvalue()


def encode_thumbnail_jpeg(thumbnail: np.ndarray, quality: int) -> bytes:
    """A standard 4:4:4 JPEG thumbnail with libjpeg's tables scaled to ``quality``."""
    return _encode(thumbnail, "JPEG", quality=quality, **THUMBNAIL_JPEG_OPTIONS)


def encode_full_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    return _encode(rgb, "JPEG", quality=quality, **FULL_JPEG_OPTIONS)


def encode_full_webp(rgb: np.ndarray, quality: int) -> bytes:
    return _encode(rgb, "WEBP", quality=quality, method=WEBP_METHOD)


def can_write_avif() -> bool:
    from PIL import features

    return bool(features.check("avif"))


def encode_full_avif(rgb: np.ndarray, quality: int) -> bytes:
    """AVIF at Pillow's default 4:2:0; speed 6 is libaom's usual trade (2 s for 4 MP here)."""
    return _encode(rgb, "AVIF", quality=quality, speed=AVIF_SPEED)


def can_write_jxl() -> bool:
    """JPEG XL through the maintained Pillow plugin (``pip install pillow-jxl-plugin``, the
    ``eval`` extra); Pillow itself has no JPEG XL codec."""
    try:
        import pillow_jxl  # noqa: F401 -- registers the JXL format with Pillow
    except ImportError:
        return False
    return True


def encode_full_jxl(rgb: np.ndarray, quality: int) -> bytes:
    return _encode(rgb, "JXL", quality=quality, effort=JXL_EFFORT)


def decode_rgb(data: bytes) -> np.ndarray:
    """Decode any image bytes to uint8 RGB, as a browser would show them."""
    with Image.open(io.BytesIO(data)) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)


def decode_jpeg_planes(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 4:4:4 JPEG's raw YCbCr samples (no colour conversion) and its two tables, natural order.

    This is what ``app.codec.files.reader.read_thumbnail`` gives the decoder for a HyperThumbnail,
    done here for a plain JPEG that has no marker.
    """
    with Image.open(io.BytesIO(data)) as im:
        tables = im.quantization
        if sorted(tables) != [0, 1] or any((h, v) != (1, 1) for _, h, v, _ in im.layer):
            raise ValueError("expected a 4:4:4 JPEG with one luma and one chroma table")
        luma, chroma = (np.asarray(tables[i], dtype=np.int32) for i in (0, 1))
        im.draft("YCbCr", im.size)
        im.load()
        if im.mode != "YCbCr":
            raise ValueError(f"JPEG decoded as {im.mode}, not YCbCr")
        return np.array(im, dtype=np.uint8), luma, chroma
