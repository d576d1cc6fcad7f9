"""Geometry and pixel arithmetic of Goyal et al.'s ImageNet augmentation.

Akiba et al. (2017) train "with the same settings" as Goyal et al. (2017),
who use the scale and aspect-ratio augmentation of Szegedy et al. (2015,
"Going deeper with convolutions") as implemented in fb.resnet.torch: a random
crop covering 8-100 % of the image area with aspect ratio in [3/4, 4/3],
resized to 224x224, a random horizontal flip, and per-channel mean/std
normalisation.  Validation uses the shorter side resized to 256 and a single
224x224 centre crop.

This module only *chooses boxes* and *converts pixels*; decoding and
resampling live in :mod:`chainer_ext.datasets.decode`.  Boxes are
``(left, top, right, bottom)`` in the pixel coordinates of the original image
(Pillow's convention: the box covers ``[left, right) x [top, bottom)``).

Normalisation scale: pixels are 8-bit, 0-255, and :data:`IMAGENET_MEAN` /
:data:`IMAGENET_STD` are the usual ImageNet RGB statistics (0.485, 0.456,
0.406) / (0.229, 0.224, 0.225) multiplied by 255, so ``(pixel - mean) / std``
equals the 0-1-scale formula of fb.resnet.torch and torchvision exactly.
"""
import math

import numpy

#: Per-channel RGB mean of ImageNet on the 0-255 scale (0.485, 0.456, 0.406).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
#: Per-channel RGB standard deviation on the 0-255 scale (0.229, 0.224, 0.225).
IMAGENET_STD = (58.395, 57.12, 57.375)

#: Smallest crop area fraction of Szegedy et al. / Goyal et al.
DEFAULT_MIN_AREA = 0.08
#: Aspect-ratio (width / height) range of the random crop.
DEFAULT_RATIO = (3. / 4., 4. / 3.)
#: Random draws before falling back to the centre crop (fb.resnet.torch).
CROP_ATTEMPTS = 10
#: Validation resizes the shorter side to ``insize * 256 / 224``.
VAL_RESIZE_RATIO = 256. / 224.


def random_resized_crop_box(width, height, rng, min_area=DEFAULT_MIN_AREA,
                            ratio=DEFAULT_RATIO, attempts=CROP_ATTEMPTS):
    """Random scale and aspect-ratio crop box ("RandomResizedCrop").

    Draws the crop area uniformly in ``[min_area, 1]`` of the image area and
    the aspect ratio log-uniformly in ``ratio``; a draw that does not fit in
    the image is retried up to ``attempts`` times, after which the largest
    centred crop whose aspect ratio is within ``ratio`` is used.

    Args:
        width (int), height (int): Size of the image.
        rng (numpy.random.Generator): Source of randomness.
        min_area (float): Smallest area fraction, in ``(0, 1]``.
        ratio (tuple of float): Aspect-ratio range (width / height).
        attempts (int): Number of draws before the fallback.

    Returns:
        tuple of int: ``(left, top, right, bottom)``, within the image, with
        positive width and height.
    """
    if not 0 < min_area <= 1:
        raise ValueError('min_area must be in (0, 1], got {}'.format(min_area))
    area = float(width * height)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(attempts):
        target = area * rng.uniform(min_area, 1.0)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    return _fallback_box(width, height, ratio)


def _fallback_box(width, height, ratio):
    in_ratio = float(width) / float(height)
    if in_ratio < ratio[0]:
        w = width
        h = int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        h = height
        w = int(round(h * ratio[1]))
    else:
        w, h = width, height
    w = min(max(w, 1), width)
    h = min(max(h, 1), height)
    left = (width - w) // 2
    top = (height - h) // 2
    return left, top, left + w, top + h


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
