"""Write ``train.txt``/``val.txt``/``synsets.txt`` from the ILSVRC2012 folder layout.

    python -m chainer_ext.datasets.make_lists --root /data/ILSVRC2012 \
        --train train --val val --val-labels LOC_val_solution.csv --out lists

Classes are the sorted training folder names (Caffe's and Chainer's order).
Validation labels come from class sub-folders, ``--val-labels`` (text or Kaggle's
CSV) or the devkit's ``--val-ground-truth`` with ``--synset-order``; every
validation image must get a known class.  Every input path is relative to
``--root`` unless absolute; ``--out`` is relative to the current folder.  The lists
are written together or not at all.  Accepted inputs in detail: docs/DESIGN.md.
"""
import argparse
import csv
import os
import re
import sys

from chainer_ext.job import atomic_files
from chainer_ext.datasets.image_list import format_image_list

IMAGE_EXTENSIONS = ('.jpeg', '.jpg', '.png')
_VAL_NUMBER = re.compile(r'ILSVRC2012_val_(\d+)$')


class ListBuildError(Exception):
    """The inputs cannot produce consistent lists (message says why)."""


def _is_image_name(name):
    return (not name.startswith('.')
            and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS)


def _entries(folder):
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        raise ListBuildError('cannot read folder {}: {}'.format(
            folder, e.strerror or e))


def scan_class_folders(folder):
    """``({class_name: [image paths]}, n_skipped)`` of a class-per-folder tree."""
    classes = {}
    skipped = 0
    for entry in _entries(folder):
        if entry.name.startswith('.'):
            continue
        if not entry.is_dir():
            skipped += 1
            continue
        files = []
        for item in _entries(entry.path):
            if item.is_file() and _is_image_name(item.name):
                files.append(item.path)
            else:
                skipped += 1
        classes[entry.name] = files
    if not classes:
        raise ListBuildError('{} has no class folders'.format(folder))
    empty = sorted(name for name, files in classes.items() if not files)
    if empty:
        raise ListBuildError('{}: class folder(s) without images: {}{} (an unfinished '
                             'copy?); fill or remove them'.format(
                                 folder, ', '.join(empty[:5]),
                                 ' and {} more'.format(len(empty) - 5) if len(empty) > 5
                                 else ''))
    return classes, skipped


def _relative(path, root):
    rel = os.path.relpath(path, root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise ListBuildError('{} is not under --root {}'.format(path, root))
    return rel.replace(os.sep, '/')


def make_train_list(root, train_dir, synsets=None):
    """Pairs of the class-per-folder tree ``train_dir`` and the class order.

    Returns ``(pairs, synsets, n_skipped)``; with ``synsets`` given, folders
    must be among them, otherwise the sorted folder names are the classes.
    ``n_skipped`` counts entries that are not image files.
    """
    classes, skipped = scan_class_folders(train_dir)
    if synsets is None:
        synsets = sorted(classes)
    index = {name: k for k, name in enumerate(synsets)}
    unknown = sorted(set(classes) - set(index))
    if unknown:
        raise ListBuildError('{}: class folder(s) not in the synset list: {}'
                             .format(train_dir, ', '.join(unknown[:5])))
    pairs = []
    for name in synsets:
        for path in classes.get(name, ()):
            pairs.append((_relative(path, root), index[name]))
    if not pairs:
        raise ListBuildError('{}: no image files'.format(train_dir))
    return pairs, list(synsets), skipped


def read_synsets(path):
    """Class names, one per non-blank line (first word of each line)."""
    names = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            words = line.split()
            if words:
                names.append(words[0])
    if not names:
        raise ListBuildError('{}: no synsets'.format(path))
    if len(set(names)) != len(names):
        raise ListBuildError('{}: repeated synset names'.format(path))
    return names


def read_val_labels(path, synsets):
    """``{file stem: class index}`` from a ``name synset`` text file, a
    ``name index`` text file or Kaggle's ``LOC_val_solution.csv``."""
    index = {name: k for k, name in enumerate(synsets)}
    with open(path, encoding='utf-8') as f:
        head = f.readline()
        f.seek(0)
        if head.replace(' ', '').startswith('ImageId,PredictionString'):
            rows = [(row[0], row[1].split()[0] if row[1].split() else '')
                    for row in csv.reader(f) if len(row) >= 2][1:]
            numbered = [(k + 2, a, b) for k, (a, b) in enumerate(rows)]
        else:
            numbered = []
            for k, line in enumerate(f, 1):
                words = line.split()
                if not words:
                    continue
                if len(words) != 2:
                    raise ListBuildError(
                        '{}:{}: expected "FILE SYNSET", got {!r}'.format(
                            path, k, line.strip()))
                numbered.append((k, words[0], words[1]))
    labels = {}
    for k, name, cls in numbered:
        stem = os.path.splitext(os.path.basename(name))[0]
        if cls in index:
            label = index[cls]
        elif cls.isascii() and cls.isdigit() and int(cls) < len(synsets):
            label = int(cls)
        else:
            raise ListBuildError('{}:{}: unknown class {!r}'.format(
                path, k, cls))
        if stem in labels and labels[stem] != label:
            raise ListBuildError('{}:{}: {} labelled twice, differently'
                                 .format(path, k, stem))
        labels[stem] = label
    if not labels:
        raise ListBuildError('{}: no labels'.format(path))
    return labels


def read_ground_truth(path):
    """1-based ``ILSVRC2012_ID`` per validation image, in image order."""
    ids = []
    with open(path, encoding='utf-8') as f:
        for k, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            if not text.isdigit() or int(text) < 1:
                raise ListBuildError('{}:{}: expected a positive ILSVRC2012_ID, '
                                     'got {!r}'.format(path, k, text))
            ids.append(int(text))
    if not ids:
        raise ListBuildError('{}: no labels'.format(path))
    return ids


def read_synset_order(path):
    """Synset of each ``ILSVRC2012_ID`` (index ``id - 1``) from the devkit's
    ``meta.mat`` or from a text file (one synset per line, in ID order)."""
    if path.lower().endswith('.mat'):
        try:
            from scipy.io import loadmat
        except ImportError:
            raise ListBuildError('reading {} needs SciPy; give a text file '
                                 'with one synset per line instead'.format(path))
        try:
            meta = loadmat(path, squeeze_me=True, struct_as_record=False)
            records = meta['synsets']
        except Exception as e:
            raise ListBuildError('{}: not a devkit meta.mat ({})'.format(path, e))
        by_id = {}
        for rec in records:
            if int(getattr(rec, 'num_children', 0)) == 0:
                by_id[int(rec.ILSVRC2012_ID)] = str(rec.WNID)
        if sorted(by_id) != list(range(1, len(by_id) + 1)):
            raise ListBuildError('{}: leaf ILSVRC2012_IDs are not 1..{}'.format(
                path, len(by_id)))
        return [by_id[k] for k in range(1, len(by_id) + 1)]
    return read_synsets(path)


def make_val_list(root, val_dir, synsets, val_labels=None, ground_truth=None,
                  synset_order=None):
    """``(pairs, n_skipped)`` of the validation images (see the module
    docstring for the three ways of labelling them)."""
    index = {name: k for k, name in enumerate(synsets)}
    entries = _entries(val_dir)
    subdirs = [e for e in entries if e.is_dir() and not e.name.startswith('.')]
    if subdirs and not (val_labels or ground_truth):
        pairs, _, skipped = make_train_list(root, val_dir, synsets)
        return pairs, skipped
    if val_labels and ground_truth:
        raise ListBuildError('give --val-labels or --val-ground-truth, not both')
    files = [e for e in entries if e.is_file() and _is_image_name(e.name)]
    skipped = len(entries) - len(files)
    if not files:
        raise ListBuildError('{}: no image files'.format(val_dir))
    if val_labels:
        labels = read_val_labels(val_labels, synsets)

        def label_of(stem):
            return labels.get(stem)
        source = val_labels
    elif ground_truth:
        if not synset_order:
            raise ListBuildError('--val-ground-truth needs --synset-order '
                                 '(meta.mat or a synset-per-ID text file)')
        ids = read_ground_truth(ground_truth)
        order = read_synset_order(synset_order)
        missing = sorted(set(order) - set(index))
        if missing:
            raise ListBuildError('{}: synset(s) not among the classes: {}'
                                 .format(synset_order, ', '.join(missing[:5])))

        def label_of(stem):
            m = _VAL_NUMBER.search(stem)
            if not m or not 1 <= int(m.group(1)) <= len(ids):
                return None
            ilsvrc_id = ids[int(m.group(1)) - 1]
            if ilsvrc_id > len(order):
                raise ListBuildError('{}: ILSVRC2012_ID {} has no synset in {}'
                                     .format(ground_truth, ilsvrc_id,
                                             synset_order))
            return index[order[ilsvrc_id - 1]]
        source = ground_truth
    else:
        raise ListBuildError('{} has no class folders: give --val-labels or '
                             '--val-ground-truth'.format(val_dir))
    pairs = []
    unlabelled = []
    for e in files:
        label = label_of(os.path.splitext(e.name)[0])
        if label is None:
            unlabelled.append(e.name)
        else:
            pairs.append((_relative(e.path, root), label))
    if unlabelled:
        raise ListBuildError('{} validation image(s) have no label in {} '
                             '(first: {})'.format(len(unlabelled), source,
                                                  unlabelled[0]))
    return pairs, skipped


#: Flags naming an input file or folder (relative to --root unless absolute), and
#: whether each is a folder.
INPUTS = (('--train', True), ('--val', True), ('--val-labels', False),
          ('--val-ground-truth', False), ('--synset-order', False), ('--synsets', False))


def build_parser():
    p = argparse.ArgumentParser(
        prog='python -m chainer_ext.datasets.make_lists',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--root', required=True,
                   help='directory the paths in the lists, and every input path below, '
                   'are relative to')
    p.add_argument('--train', help='class-per-folder training images')
    p.add_argument('--val', help='validation images: a flat folder or '
                   'class sub-folders')
    p.add_argument('--val-labels', help='"FILE SYNSET" text or '
                   'LOC_val_solution.csv')
    p.add_argument('--val-ground-truth',
                   help='devkit ILSVRC2012_validation_ground_truth.txt')
    p.add_argument('--synset-order', help='synset of each ILSVRC2012_ID: '
                   'devkit meta.mat or one synset per line')
    p.add_argument('--synsets', help='class order (one synset per line); '
                   'default: sorted training folder names')
    p.add_argument('--out', required=True, help='output folder for train.txt, '
                   'val.txt and synsets.txt (relative to the current folder)')
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ListBuildError, ValueError) as e:
        print('make_lists: error: {}'.format(e), file=sys.stderr)
    except OSError as e:
        print('make_lists: error: {}: {}'.format(e.filename or '', e.strerror or e),
              file=sys.stderr)
    return 2


def resolve_inputs(args):
    """Each input flag's path under --root (unless absolute), checked to exist; the
    first that does not raises ListBuildError naming the flag and both paths."""
    if not os.path.isdir(args.root):
        raise ListBuildError('--root {}: no such folder'.format(args.root))
    for flag, folder in INPUTS:
        attr = flag[2:].replace('-', '_')
        given = getattr(args, attr)
        if not given:
            continue
        path = given if os.path.isabs(given) else os.path.join(args.root, given)
        if not (os.path.isdir(path) if folder else os.path.isfile(path)):
            raise ListBuildError('{} {}: no such {} ({}; input paths are relative to '
                                 '--root unless absolute)'.format(
                                     flag, given, 'folder' if folder else 'file', path))
        setattr(args, attr, path)


def _run(args):
    if not args.train and not args.val:
        raise ListBuildError('nothing to do: give --train and/or --val')
    if args.val and not args.train and not args.synsets:
        raise ListBuildError('--val without --train needs --synsets')
    root = args.root
    resolve_inputs(args)
    synsets = read_synsets(args.synsets) if args.synsets else None
    texts, counts = {}, []
    if args.train:
        pairs, synsets, skipped = make_train_list(root, args.train, synsets)
        texts['train.txt'] = format_image_list(pairs)
        counts.append(('train.txt', len(pairs), skipped))
    if args.val:
        pairs, skipped = make_val_list(
            root, args.val, synsets, val_labels=args.val_labels,
            ground_truth=args.val_ground_truth,
            synset_order=args.synset_order)
        texts['val.txt'] = format_image_list(pairs)
        counts.append(('val.txt', len(pairs), skipped))
    texts['synsets.txt'] = ''.join(name + '\n' for name in synsets)
    os.makedirs(args.out, exist_ok=True)
    atomic_files.write_texts({os.path.join(args.out, name): text for name, text in texts.items()})
    for name, n, skipped in counts:
        print('{}: {} images{}'.format(
            os.path.join(args.out, name), n,
            ', {} non-image entries skipped'.format(skipped) if skipped else ''))
    print('{}: {} classes'.format(os.path.join(args.out, 'synsets.txt'),
                                  len(synsets)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
