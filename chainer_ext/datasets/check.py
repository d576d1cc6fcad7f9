"""Find every broken line and image of a list file (``--check-dataset``).

Problems come back as ``"LIST:LINE: reason"`` strings, all of them rather than
the first; the work splits over MPI ranks by line number.  The list-level part
(:func:`list_problems`) is also the cheap check every training run does at start.
"""
import os

from chainer_ext.datasets.decode import verify_image
from chainer_ext.datasets.errors import ImageLoadError
from chainer_ext.datasets.errors import format_location
from chainer_ext.datasets.image_list import scan_image_list


def _entry_problems(entries, n_class=None, mine=None):
    """``(line, reason)`` for duplicates, relabelled images and labels >= ``n_class``.

    ``entries`` are ``(line, relative_path, label)``; only lines with
    ``mine(line)`` are reported, but duplicates are found across all lines.
    """
    first_seen = {}
    for line, rel, label in entries:
        earlier = first_seen.setdefault(rel, (line, label))
        if mine is not None and not mine(line):
            continue
        if earlier[0] != line:
            if earlier[1] == label:
                yield line, 'duplicate of line {}'.format(earlier[0])
            else:
                yield line, 'image {!r} already listed at line {} with label {} (here {})'.format(
                    rel, earlier[0], earlier[1], label)
        elif n_class is not None and label >= n_class:
            yield line, 'label {} out of range [0, {})'.format(label, n_class)


def list_problems(image_list, n_class=None):
    """Problems of a parsed :class:`~chainer_ext.datasets.ImageList` itself
    (duplicates, labels outside ``[0, n_class)``), one ``"LIST:LINE: reason"`` each."""
    entries = [(image_list.lines[i], rel, label) for i, (rel, label) in enumerate(image_list)]
    return [format_location(image_list.source, line, reason)
            for line, reason in _entry_problems(entries, n_class)]


def check_dataset(list_path, root='.', n_class=None, rank=0, size=1):
    """Check this rank's share of a list file and of the images it names.

    Args:
        list_path (str): The list file.
        root (str): Directory the listed paths are relative to.
        n_class (int or None): Labels must lie in ``[0, n_class)``; ``None``
            checks only that they are non-negative integers.
        rank (int), size (int): Check lines ``L`` with
            ``(L - 1) % size == rank``; whole-file problems on rank 0.

    Returns:
        list of str: ``"LIST:LINE: reason"`` (``"LIST: reason"`` for whole
        file problems), sorted by line.
    """
    if size < 1 or not 0 <= rank < size:
        raise ValueError('need 0 <= rank < size, got rank={} size={}'.format(
            rank, size))
    if n_class is not None and n_class < 1:
        raise ValueError('n_class must be positive, got {}'.format(n_class))

    def mine(line):
        return (line - 1) % size == rank

    entries, syntax = scan_image_list(list_path)
    found = [(line or 0, reason) for line, reason in syntax
             if ((rank == 0) if line is None else mine(line))]
    found += _entry_problems(entries, n_class, mine)
    seen = set()
    for line, rel, _ in entries:
        duplicate = rel in seen
        seen.add(rel)
        if duplicate or not mine(line):
            continue
        path = os.path.join(root, rel)
        try:
            verify_image(path)
        except ImageLoadError as e:
            found.append((line, '{}: {}'.format(path, e.reason)))
    found.sort(key=lambda item: item[0])
    return [format_location(list_path, line or None, reason)
            for line, reason in found]


def merge_problems(per_rank):
    """Merge the lists gathered from all ranks, ordered by file and line."""
    def key(problem):
        head, _, _ = problem.partition(': ')
        path, _, line = head.rpartition(':')
        if path and line.isdigit():
            return path, int(line), problem
        return head, 0, problem
    return sorted((p for part in per_rank for p in part), key=key)
