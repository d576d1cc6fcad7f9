"""Crop boxes and pixel normalisation of Goyal et al.'s ImageNet augmentation (paper, Section 4).

The paper trains "with the same settings" as Goyal et al., who use fb.resnet.torch's
scale and aspect-ratio augmentation: :func:`random_sized_crop_box` (its
``RandomSizedCrop``) for training, the shorter side resized to 256/224 of the input
and a centre crop (:func:`center_crop_box`) for validation, and per-channel mean/std
normalisation.  Boxes are ``(left, top, right, bottom)`` in original pixels; decoding
and resampling live in :mod:`chainer_ext.datasets.decode`.
"""
import math

import numpy

#: Per-channel RGB mean of ImageNet on the 0-255 scale (0.485, 0.456, 0.406).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
#: Per-channel RGB standard deviation on the 0-255 scale (0.229, 0.224, 0.225).
IMAGENET_STD = (58.395, 57.12, 57.375)

#: Smallest crop area fraction of Szegedy et al. / Goyal et al.
DEFAULT_MIN_AREA = 0.08
#: Aspect-ratio range of the random crop (fb.resnet.torch).
DEFAULT_RATIO = (3. / 4., 4. / 3.)
#: Random draws before falling back to Scale + CenterCrop (fb.resnet.torch).
CROP_ATTEMPTS = 10
#: Validation resizes the shorter side to ``insize * 256 / 224``.
VAL_RESIZE_RATIO = 256. / 224.


def random_sized_crop_box(width, height, rng, min_area=DEFAULT_MIN_AREA,
                          ratio=DEFAULT_RATIO, attempts=CROP_ATTEMPTS):
    """fb.resnet.torch's ``RandomSizedCrop`` box (the augmentation of Goyal et al.).

    Each attempt draws the area uniformly in ``[min_area, 1]`` of the image and
    the aspect ratio uniformly in ``ratio``, swaps width and height with
    probability 1/2, and keeps the box if it fits (position uniform).  After
    ``attempts`` misses: ``Scale`` then ``CenterCrop``, i.e. the centred square of
    side ``min(width, height)``.  Returns integer ``(left, top, right, bottom)``.
    """
    if not 0 < min_area <= 1:
        raise ValueError('min_area must be in (0, 1], got {}'.format(min_area))
    for _ in range(attempts):
        target = width * height * rng.uniform(min_area, 1.0)
        aspect = rng.uniform(ratio[0], ratio[1])
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if rng.uniform() < 0.5:
            w, h = h, w
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def center_crop_box(width, height, insize, resize_ratio=VAL_RESIZE_RATIO):
    """Validation box: shorter side resized to ``round(insize * 256/224)``,
    then the centre ``insize x insize`` crop, expressed in original pixels.

    Resizing by ``f = round(insize * resize_ratio) / min(width, height)`` and
    cropping ``insize`` pixels is the same as resizing the box of side
    ``insize / f`` centred on the image, which is what is returned (as
    floats, so that one ``Image.resize(box=...)`` call does both steps).
    """
    short = round(insize * resize_ratio)
    side = insize * min(width, height) / float(short)
    left = (width - side) / 2.
    top = (height - side) / 2.
    return left, top, left + side, top + side


def normalizer(mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Returns ``f(uint8 HWC RGB) -> float32 CHW`` computing ``(x-mean)/std``.

    ``mean`` and ``std`` are per-channel, on the 0-255 scale of the pixels.
    The subtraction writes the transposed (CHW) float32 result directly, so
    the conversion, the transposition and the subtraction are one pass over
    the pixels; the scaling is a second, in-place, pass.
    """
    mean = numpy.asarray(mean, dtype=numpy.float32).reshape(3, 1, 1)
    std = numpy.asarray(std, dtype=numpy.float32).reshape(3, 1, 1)
    if mean.size != 3 or std.size != 3:
        raise ValueError('mean and std need 3 values (R, G, B)')
    if not numpy.all(std > 0):
        raise ValueError('std must be positive, got {}'.format(std.ravel()))
    inv_std = (1. / std).astype(numpy.float32)

    def normalize(hwc):
        hwc = numpy.asarray(hwc)
        if hwc.dtype != numpy.uint8 or hwc.ndim != 3 or hwc.shape[2] != 3:
            raise ValueError('expected a uint8 HxWx3 array, got {} {}'.format(
                hwc.dtype, hwc.shape))
        out = numpy.empty((3,) + hwc.shape[:2], dtype=numpy.float32)
        numpy.subtract(hwc.transpose(2, 0, 1), mean, out=out,
                       dtype=numpy.float32)
        out *= inv_std
        return out

    return normalize
