"""Fast, strict Pillow decoding of one crop of one image file (paper, Section 4 input).

The crop box is chosen from the header before decoding, JPEGs decode at a reduced
scale when the crop allows, and one bicubic ``Image.resize(box=...)`` crops and
scales.  Any failure to produce pixels raises
:class:`~chainer_ext.datasets.errors.ImageLoadError` naming the file; the result is
always RGB; 16-bit grey images are scaled to 8 bits (Pillow's RGB conversion would
clip them to white).  Details: docs/DESIGN.md.
"""
import os

import numpy
from PIL import Image
from PIL import ImageFile

from chainer_ext.datasets.errors import ImageLoadError

#: Formats Pillow may use to open a listed file (ImageNet has JPEG and PNG).
ALLOWED_FORMATS = ('JPEG', 'PNG', 'BMP', 'GIF', 'TIFF', 'WEBP', 'PPM')
#: Bicubic resampling, as fb.resnet.torch's crop and scale (Goyal et al.).
RESAMPLE = Image.Resampling.BICUBIC
#: Pillow may first shrink by an integer factor when the remaining
#: down-scaling is at least this large (no effect below 2 x this factor).
REDUCING_GAP = 3.0
#: JPEG DCT scaling factors libjpeg offers through ``Image.draft``.
DRAFT_SCALES = (8, 4, 2)


def draft_scale(box, size):
    """Largest JPEG reduction (8, 4, 2 or 1) keeping ``box`` >= ``size``."""
    box_w = box[2] - box[0]
    box_h = box[3] - box[1]
    for s in DRAFT_SCALES:
        if box_w >= s * size[0] and box_h >= s * size[1]:
            return s
    return 1


def load_crop(path, choose_box, size, flip=False, draft=True, where=None):
    """Decode the crop ``choose_box(width, height)`` of ``path``, resized.

    Args:
        path (str): Image file.
        choose_box (callable): ``(width, height) -> (left, top, right,
            bottom)`` in original pixel coordinates; called once, with the
            size read from the file header, before any pixel is decoded.
        size (tuple of int): ``(width, height)`` of the result.
        flip (bool): Mirror the result left-right.
        draft (bool): Use JPEG reduced-scale decoding when the crop allows.
        where (str): ``LIST:LINE`` prefix for error messages.

    Returns:
        numpy.ndarray: ``uint8`` array of shape ``(height, width, 3)``, RGB.

    Raises:
        ImageLoadError: the file cannot give the requested pixels.
    """
    _refuse_truncated_loading()
    img = open_image(path, where)
    with img:
        try:
            width, height = img.size
        except Exception as e:  # pragma: no cover - header already parsed
            raise _error(path, e, where)
        if width < 1 or height < 1:
            raise ImageLoadError(path, 'image has no pixels ({}x{})'.format(
                width, height), where)
        box = choose_box(width, height)
        try:
            scale = 1.
            if draft and img.format == 'JPEG':
                s = draft_scale(box, size)
                if s > 1:
                    scale = _draft(img, s)
            img.load()
            img = to_8bit(img, path, where)
            if img.mode not in ('RGB', 'L'):
                img = img.convert('RGB')
            if scale != 1.:
                box = tuple(c / scale for c in box)
            out = img.resize(size, RESAMPLE, box=box, reducing_gap=REDUCING_GAP)
            if out.mode != 'RGB':
                out = out.convert('RGB')
            if flip:
                out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            return numpy.asarray(out)
        except ImageLoadError:
            raise
        except Exception as e:
            raise _error(path, e, where)


def verify_image(path, where=None):
    """Decode all of ``path`` (JPEG at 1/8 scale: every byte of the entropy
    coded data is still read, so truncation is still detected) and convert
    it to RGB.  Returns ``(width, height)``; raises :class:`ImageLoadError`.
    """
    _refuse_truncated_loading()
    img = open_image(path, where)
    with img:
        try:
            width, height = img.size
            if width < 1 or height < 1:
                raise ImageLoadError(path, 'image has no pixels ({}x{})'.format(
                    width, height), where)
            if img.format == 'JPEG':
                _draft(img, 8)
            img.load()
            to_8bit(img, path, where).convert('RGB')
        except ImageLoadError:
            raise
        except Exception as e:
            raise _error(path, e, where)
    return width, height


#: Pillow modes of 16-bit (and 32-bit integer) grey images.
WIDE_GREY_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I')


def to_8bit(img, path, where=None):
    """``img`` itself, or its 16-bit grey pixels scaled to an 8-bit ``L`` image
    (0..65535 -> 0..255, rounded); a floating-point image is refused by name."""
    if img.mode == 'F':
        raise ImageLoadError(path, 'floating-point pixels (mode F) are not supported; '
                             'convert the image to 8-bit', where)
    if img.mode not in WIDE_GREY_MODES:
        return img
    wide = numpy.clip(numpy.asarray(img, dtype=numpy.int64), 0, 65535)
    return Image.fromarray(((wide * 255 + 32767) // 65535).astype(numpy.uint8), 'L')


def open_image(path, where=None):
    """``Image.open`` restricted to :data:`ALLOWED_FORMATS`, errors wrapped."""
    try:
        return Image.open(path, formats=ALLOWED_FORMATS)
    except FileNotFoundError:
        raise ImageLoadError(path, 'file does not exist', where) from None
    except IsADirectoryError:
        raise ImageLoadError(path, 'is a directory, not an image file',
                             where) from None
    except PermissionError:
        raise ImageLoadError(path, 'permission denied', where) from None
    except Exception as e:
        try:
            empty = os.path.getsize(path) == 0
        except OSError:
            empty = False
        if empty:
            raise ImageLoadError(path, 'file is empty', where) from None
        raise _error(path, e, where)


def _draft(img, s):
    """Ask libjpeg for 1/s-scale decoding; returns the scale obtained."""
    width, height = img.size
    result = img.draft(img.mode, (max(1, width // s), max(1, height // s)))
    if not result:
        return 1.
    _, reduced = result
    return width / reduced[2]


def _error(path, exc, where):
    if isinstance(exc, Image.DecompressionBombError):
        reason = 'too many pixels (Pillow decompression-bomb limit): {}'.format(
            exc)
    elif isinstance(exc, Image.UnidentifiedImageError):
        reason = 'not an image file in a supported format ({})'.format(
            ', '.join(ALLOWED_FORMATS))
    else:
        reason = 'cannot decode ({}: {})'.format(type(exc).__name__, exc)
    err = ImageLoadError(path, reason, where)
    err.__cause__ = exc
    return err


def _refuse_truncated_loading():
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            'PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: Pillow would return '
            'truncated images padded with grey instead of an error. Set it '
            'back to False.')
