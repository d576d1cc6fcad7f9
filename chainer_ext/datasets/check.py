"""``--check-dataset``: find every broken line and file before training.

A 90-epoch run that dies in epoch 37 on one truncated JPEG wastes the run;
:func:`check_dataset` reads a list file and decodes every listed image once,
collecting *all* problems as ``"LIST:LINE: reason"`` strings instead of
stopping at the first.  The work splits over MPI ranks: rank ``r`` of ``s``
checks the lines whose 1-based number ``L`` has ``(L - 1) % s == r`` (every
rank parses the whole, cheap, list file so that duplicates are found across
ranks; whole-file problems are reported by rank 0 only), so gathering the
lists of all ranks gives each problem exactly once.

Problems found:

* list syntax (see :mod:`~chainer_ext.datasets.image_list`): missing label,
  non-integer or negative label, undecodable text, empty file;
* label outside ``[0, n_class)`` when ``n_class`` is given;
* duplicate lines, and the same image listed again with a different label
  (reported at the later line, naming the earlier one);
* image missing, empty, not an image, truncated or undecodable
  (:func:`~chainer_ext.datasets.decode.verify_image`).
"""
import os

from chainer_ext.datasets.decode import verify_image
from chainer_ext.datasets.errors import ImageLoadError
from chainer_ext.datasets.errors import format_location
from chainer_ext.datasets.image_list import scan_image_list


def check_dataset(list_path, root='.', n_class=None, rank=0, size=1):
    """Check this rank's share of a list file and of the images it names.

    Args:
        list_path (str): The list file.
        root (str): Directory the listed paths are relative to.
        n_class (int or None): Labels must lie in ``[0, n_class)``; ``None``
            checks only that they are non-negative integers.
        rank (int), size (int): Check lines ``L`` with
            ``(L - 1) % size == rank``.

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
    found = []
    for line, reason in syntax:
        if (rank == 0) if line is None else mine(line):
            found.append((line or 0, reason))

    first_seen = {}
    for line, rel, label in entries:
        earlier = first_seen.get(rel)
        if earlier is None:
            first_seen[rel] = (line, label)
        if not mine(line):
            continue
        if earlier is not None:
            if earlier[1] == label:
                found.append((line, 'duplicate of line {}'.format(earlier[0])))
            else:
                found.append((line, 'image {!r} already listed at line {} '
                                    'with label {} (here {})'.format(
                                        rel, earlier[0], earlier[1], label)))
            continue
        if n_class is not None and label >= n_class:
            found.append((line, 'label {} out of range [0, {})'.format(
                label, n_class)))
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
