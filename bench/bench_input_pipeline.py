#!/usr/bin/env python
"""Decoded + augmented images per second per core.

Compares, in one process (= one core), on photo-like JPEGs of ImageNet size
(500x375, quality 90, ~100 kB each; see :mod:`photos`):

* **ours**: :class:`chainer_ext.datasets.ImageNetDataset` -- crop box chosen
  from the header, JPEG draft decoding when the crop allows it, one
  ``resize(box=...)`` to 224x224 (scale and aspect-ratio augmentation), flip,
  mean/std normalisation to float32 CHW;
* **stock**: Chainer's ``LabeledImageDataset`` under the ``PreprocessedDataset``
  of Chainer's ImageNet example (``examples/imagenet/train_imagenet.py``,
  reproduced below): the whole image decoded to float32, a random 224x224
  crop, a random flip, per-pixel mean subtraction and scaling.  It does no
  resizing at all (the example expects images pre-resized to 256x256), so it
  is a lower bound on the cost of any scale augmentation.

Rounds alternate which pipeline runs first; the median over rounds is
reported.  ``validation`` compares the centre-crop paths the same way.

What to expect: Pillow (libjpeg-turbo) spends most of a JPEG decode in
Huffman decoding, which reduced-scale (draft) decoding cannot skip, so draft
pays off only on large images; a 500x375 random crop is never >= 448 px, so
it is decoded at full scale.  There the two pipelines cost about the same
per image (ours additionally resamples the crop, which the stock path
cannot do), and the 2x goal is met only for large images
(~2x at 2048x1536).  The ``--sizes`` option shows the trend.

    python bench/bench_input_pipeline.py --json result.json
"""
import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import numpy

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer

from chainer_ext.datasets import ImageNetDataset
from photos import write_photos
from _markdown import failed_section, Goal, met

#: Goal 3: at least this multiple of the stock pipeline's images/s per core (first size).
GOAL_RATIO = 2.0


class PreprocessedDataset(chainer.dataset.DatasetMixin):
    """Chainer v7 ``examples/imagenet/train_imagenet.py``, verbatim logic."""

    def __init__(self, path, root, mean, crop_size, random=True):
        self.base = chainer.datasets.LabeledImageDataset(path, root)
        self.mean = mean.astype(chainer.get_dtype())
        self.crop_size = crop_size
        self.random = random

    def __len__(self):
        return len(self.base)

    def get_example(self, i):
        crop_size = self.crop_size

        image, label = self.base[i]
        _, h, w = image.shape

        if self.random:
            # Randomly crop a region and flip the image
            top = random.randint(0, h - crop_size - 1)
            left = random.randint(0, w - crop_size - 1)
            if random.randint(0, 1):
                image = image[:, :, ::-1]
        else:
            # Crop the center
            top = (h - crop_size) // 2
            left = (w - crop_size) // 2
        bottom = top + crop_size
        right = left + crop_size

        image = image[:, top:bottom, left:right]
        image -= self.mean[:, top:bottom, left:right]
        image *= (1.0 / 255.0)  # Scale to [0, 1]
        return image, label


def _time_pass(dataset, n):
    start = time.perf_counter()
    for i in range(n):
        dataset[i]
    return time.perf_counter() - start


def _mean_image(list_path, root):
    # As the example's compute_mean.py: the average float image.
    base = chainer.datasets.LabeledImageDataset(list_path, root)
    total = None
    for i in range(len(base)):
        image, _ = base[i]
        total = image.astype(numpy.float64) if total is None else total + image
    return (total / len(base)).astype(numpy.float32)


def run(n_images=64, width=500, height=375, quality=90, insize=224,
        rounds=7, seed=0, workdir=None):
    """Benchmark one image size; returns a dict of images/s and ratios."""
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix='bench-input-')
    try:
        names = write_photos(workdir, n_images, width, height, quality, seed)
        list_path = os.path.join(workdir, 'list.txt')
        with open(list_path, 'w') as f:
            f.writelines('{} {}\n'.format(name, k % 10)
                         for k, name in enumerate(names))
        kb = numpy.mean([os.path.getsize(os.path.join(workdir, n))
                         for n in names]) / 1e3
        mean = _mean_image(list_path, workdir)
        random.seed(seed)
        pipelines = {
            'train': {
                'ours': ImageNetDataset(list_path, workdir, insize,
                                        train=True, seed=seed),
                'stock': PreprocessedDataset(list_path, workdir, mean,
                                             insize, random=True)},
            'validation': {
                'ours': ImageNetDataset(list_path, workdir, insize,
                                        train=False),
                'stock': PreprocessedDataset(list_path, workdir, mean,
                                             insize, random=False)},
        }
        result = {'n_images': n_images, 'width': width, 'height': height,
                  'quality': quality, 'insize': insize, 'rounds': rounds,
                  'mean_file_kB': round(float(kb), 1)}
        for phase, pair in pipelines.items():
            for ds in pair.values():  # warm-up: page cache, lazy imports
                _time_pass(ds, n_images)
            times = {'ours': [], 'stock': []}
            for r in range(rounds):
                order = ('ours', 'stock') if r % 2 == 0 else ('stock', 'ours')
                for name in order:
                    times[name].append(_time_pass(pair[name], n_images))
            ips = {name: n_images / statistics.median(ts)
                   for name, ts in times.items()}
            result[phase] = {
                'ours_images_per_s': round(ips['ours'], 1),
                'stock_images_per_s': round(ips['stock'], 1),
                'ratio': round(ips['ours'] / ips['stock'], 3),
                'ours_ms_per_image': round(1e3 / ips['ours'], 3),
                'stock_ms_per_image': round(1e3 / ips['stock'], 3),
            }
        return result
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------
# In bench/run_all.py: settings, what it records, and this benchmark's section
# ---------------------------------------------------------------------------

#: run_all's settings: the goals', and the smoke test's (``--quick``).
RUN_ALL_SETTINGS = {
    'full': dict(sizes=('500x375', '1024x768', '2048x1536'), n_images=64,
                 rounds=7),
    'quick': dict(sizes=('500x375',), n_images=4, rounds=1),
}
#: Said in BENCHMARKS.md when the goal is missed.
LIMIT_NOTE = (
    'Known limit (see bench/bench_input_pipeline.py): Pillow/libjpeg-turbo spends most '
    'of a JPEG decode in Huffman decoding, which reduced-scale (draft) decoding cannot '
    'skip; draft mode applies only when the crop is >= 2x the output (448 px for 224), '
    'and a random crop of a 500x375 image never is, so it is decoded at full scale and '
    'both pipelines cost about the same per image (ours also resamples the crop, which '
    "the stock path cannot do). The 2x goal is reached only for large images (see the "
    'larger sizes).')


def collect(cfg):
    """What run_all records with ``cfg``: each image size, the first size's training
    path against the goal."""
    results = []
    for size in cfg['sizes']:
        width, height = (int(v) for v in size.lower().split('x'))
        results.append(run(cfg['n_images'], width, height, rounds=cfg['rounds']))
    headline = results[0]['train']['ratio']
    return {'benchmark': 'input_pipeline', 'goal_ratio': GOAL_RATIO, 'headline_ratio': headline,
            'goal_met': headline >= GOAL_RATIO, 'results': results}


def section(res, results):
    """This benchmark's part of BENCHMARKS.md: ``(markdown lines, goals)``."""
    title = '## Goal 3 — input pipeline (`bench/bench_input_pipeline.py`)'
    if 'error' in res:
        return failed_section(title, 'bench_input_pipeline', res, Goal(
            '3', 'input pipeline images/s per core vs stock', 'failed',
            '>= {:g}x'.format(GOAL_RATIO), None))
    goals = []
    out = [title, '']
    out += ['Decoded + augmented images/s in one process (= one core): ours = '
            '`ImageNetDataset` (crop from header, draft decoding when possible, one '
            'resize to 224, flip, normalise); stock = Chainer\'s `LabeledImageDataset` + '
            'the ImageNet example\'s `PreprocessedDataset` (random 224 crop, no resize). '
            'Photo-like JPEGs, quality 90; median of rounds.', '',
            '| image size | file kB | phase | ours img/s | stock img/s | ours / stock |',
            '|---|---|---|---|---|---|']
    for r in res['results']:
        for phase in ('train', 'validation'):
            p = r[phase]
            out.append('| {}x{} | {} | {} | {:.1f} | {:.1f} | {:.2f}x |'.format(
                r['width'], r['height'], r['mean_file_kB'], phase, p['ours_images_per_s'],
                p['stock_images_per_s'], p['ratio']))
    head = res['results'][0]
    out += ['', 'Goal: >= {}x the stock images/s per core at {}x{} (training path): '
            '{:.2f}x — {}.'.format(res['goal_ratio'], head['width'], head['height'],
                                   res['headline_ratio'], met(res['goal_met'])), '']
    if not res['goal_met']:
        out += [LIMIT_NOTE, '']
    goals.append(Goal('3', 'input pipeline images/s per core, {}x{} train'.format(
        head['width'], head['height']), '{:.2f}x'.format(res['headline_ratio']),
        '>= {:g}x'.format(GOAL_RATIO), res['goal_met']))
    return out, goals


def main(argv=None):
    from chainer_ext.machine import blas as blas_setup
    blas_setup.ensure_kernel()  # the CPU's own BLAS kernel, as train_imagenet.py uses
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', nargs='+',
                   default=['500x375', '1024x768', '2048x1536'],
                   help='WIDTHxHEIGHT of the generated JPEGs (first = headline)')
    p.add_argument('--n-images', type=int, default=64)
    p.add_argument('--rounds', type=int, default=7)
    p.add_argument('--insize', type=int, default=224)
    p.add_argument('--quality', type=int, default=90)
    p.add_argument('--json', help='write the results to this file')
    args = p.parse_args(argv)
    results = []
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split('x'))
        res = run(args.n_images, width, height, args.quality, args.insize,
                  args.rounds)
        results.append(res)
        print('{}x{} JPEG q{} (~{} kB), {} images, median of {} rounds, '
              '1 process:'.format(width, height, args.quality,
                                  res['mean_file_kB'], args.n_images,
                                  args.rounds))
        for phase in ('train', 'validation'):
            r = res[phase]
            print('  {:<10} ours {:7.1f} img/s  stock {:7.1f} img/s  '
                  'ratio {:.2f}x'.format(phase, r['ours_images_per_s'],
                                         r['stock_images_per_s'], r['ratio']))
    headline = results[0]['train']['ratio']
    out = {'benchmark': 'input_pipeline', 'goal_ratio': 2.0,
           'headline_ratio': headline, 'goal_met': headline >= 2.0,
           'results': results}
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == '__main__':
    main(sys.argv[1:])
