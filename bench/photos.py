"""Synthetic photo-like images for the input-pipeline benchmark (and its tests).

Decoding cost depends on JPEG entropy, so a flat or purely random image
would mislead an input-pipeline benchmark: flat images decode too fast,
white noise too slowly.  :func:`photo_like` mixes what photographs contain:
smooth colour gradients, a few sharp-edged shapes, a mild blur and sensor
noise.  At 500x375 and quality 90 its files are about 100 kB, close to
ImageNet training JPEGs (mean ~110 kB).
"""
import os

import numpy
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFilter


def photo_like(rng, width=500, height=375, noise=20.):
    """An RGB ``PIL.Image`` of ``width x height`` drawn from ``rng``
    (a ``numpy.random.Generator``)."""
    y, x = numpy.mgrid[0:height, 0:width].astype(numpy.float32)
    scale = 500. / max(width, height)
    x *= scale
    y *= scale
    img = numpy.empty((height, width, 3), numpy.float32)
    for c in range(3):
        a, b, p = rng.uniform(-1, 1, 3)
        img[..., c] = (128 + 60 * numpy.sin(a * x / 60 + b * y / 45 + 6 * p)
                       + 40 * numpy.cos((x * b - y * a) / 90))
    im = Image.fromarray(numpy.clip(img, 0, 255).astype(numpy.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x0 = int(rng.integers(0, width))
        y0 = int(rng.integers(0, height))
        x1 = x0 + int(rng.integers(10, max(11, width * 2 // 5)))
        y1 = y0 + int(rng.integers(10, max(11, height * 2 // 5)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=colour)
    im = im.filter(ImageFilter.GaussianBlur(1.0))
    arr = numpy.asarray(im).astype(numpy.float32)
    arr += rng.normal(0, noise, arr.shape).astype(numpy.float32)
    return Image.fromarray(numpy.clip(arr, 0, 255).astype(numpy.uint8))


def write_photos(folder, n, width=500, height=375, quality=90, seed=0,
                 prefix='photo'):
    """Write ``n`` photo-like JPEGs into ``folder``; returns their names."""
    rng = numpy.random.default_rng(seed)
    names = []
    for k in range(n):
        name = '{}_{:04d}.JPEG'.format(prefix, k)
        photo_like(rng, width, height).save(os.path.join(folder, name),
                                            quality=quality)
        names.append(name)
    return names
