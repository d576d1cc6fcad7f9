"""List files of Chainer's and Caffe's ImageNet examples: ``relative/path label`` per line.

UTF-8 (a leading byte-order mark is ignored); the label is the text after the last run of
spaces/tabs (so paths may hold spaces), a non-negative integer below 2**31; blank lines are
skipped but counted; an empty list is an error.  Every problem raises
:class:`~chainer_ext.datasets.errors.ListFileError` naming the file and line.
The full rules: docs/DESIGN.md.
"""
import codecs
import hashlib
import os

from chainer_ext.job import atomic_files
from chainer_ext.datasets.errors import ListFileError

#: Labels become int32 arrays; larger values cannot be represented.
MAX_LABEL = 2 ** 31 - 1


class ImageList(list):
    """A list of ``(relative_path, label)`` pairs read from a list file.

    It is a plain ``list`` of tuples (so it pickles, broadcasts over MPI and
    can be passed anywhere pairs are expected) with a few facts attached.

    Attributes:
        source (str or None): The list file the pairs came from.
        root (str): Directory the relative paths are relative to.
        lines (list of int): 1-based line number of every entry in
            ``source`` (same length as the list).
    """

    def __init__(self, pairs=(), source=None, root='.', lines=None):
        super(ImageList, self).__init__(pairs)
        self.source = source
        self.root = root
        self.lines = list(lines) if lines is not None else list(
            range(1, len(self) + 1))

    @property
    def n_class(self):
        """Number of classes, ``1 + max(label)`` (labels are 0-based)."""
        return count_classes(self)

    def full_path(self, i):
        """Path of the ``i``-th image, joined to :attr:`root`."""
        return os.path.join(self.root, self[i][0])

    def subset(self, indices):
        """The entries ``indices``, keeping :attr:`source`, :attr:`root` and line numbers."""
        indices = [int(i) for i in indices]
        return ImageList([self[i] for i in indices], source=self.source, root=self.root,
                         lines=[self.lines[i] for i in indices])

    def identity(self):
        """What a resumed run must agree with: ``{'path', 'length', 'sha256'}``, the
        hash over the ``path label`` entries (not the file's bytes or blank lines)."""
        digest = hashlib.sha256()
        for rel, label in self:
            digest.update('{}\t{}\n'.format(rel, int(label)).encode('utf-8'))
        return {'path': os.path.abspath(self.source) if self.source else None,
                'length': len(self), 'sha256': digest.hexdigest()}

    def where(self, i):
        """``"LIST:LINE"`` of the ``i``-th entry (for error messages)."""
        if self.source is None:
            return 'entry {}'.format(i)
        return '{}:{}'.format(self.source, self.lines[i])


def count_classes(pairs):
    """``1 + max(label)`` over ``pairs``; raises ``ValueError`` when empty."""
    labels = [label for _, label in pairs]
    if not labels:
        raise ValueError('cannot count the classes of an empty list')
    return 1 + max(labels)


def parse_line(text):
    """Split one list-file line into ``(path, label)``.

    Returns ``None`` for a blank line.  Raises ``ValueError`` with the reason
    (without the location) when the line is malformed.
    """
    stripped = text.rstrip(' \t\r')
    if not stripped.strip(' \t'):
        return None
    cut = max(stripped.rfind(' '), stripped.rfind('\t'))
    if cut < 0:
        raise ValueError(
            "expected 'PATH LABEL' but found a single field {!r} "
            "(missing label?)".format(_clip(stripped)))
    path = stripped[:cut].strip(' \t')
    label_text = stripped[cut + 1:]
    if not path:
        raise ValueError("expected 'PATH LABEL' but found only {!r} "
                         '(missing path?)'.format(_clip(label_text)))
    if '\0' in path:
        raise ValueError('path {!r} contains a NUL character'.format(
            _clip(path)))
    if not (label_text.isascii() and label_text.isdigit()):
        if (label_text[:1] == '-' and label_text[1:].isascii()
                and label_text[1:].isdigit()):
            raise ValueError('label {} is negative (labels are 0-based class '
                             'indices)'.format(label_text))
        raise ValueError('label {!r} is not a non-negative integer'.format(
            _clip(label_text)))
    label = int(label_text)
    if label > MAX_LABEL:
        raise ValueError('label {} does not fit in int32'.format(
            _clip(label_text)))
    return path, label


def scan_image_list(path):
    """Read a list file, collecting every problem instead of stopping.

    Returns:
        tuple: ``(entries, problems)``; ``entries`` is a list of
        ``(line, relative_path, label)``, ``problems`` a list of
        ``(line, reason)`` where ``line`` is ``None`` for whole-file problems
        (unreadable, no entries).
    """
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        return [], [(None, 'cannot read list file: {}'.format(
            e.strerror or e))]
    entries = []
    problems = []
    for lineno, text in _decoded_lines(data, problems):
        try:
            parsed = parse_line(text)
        except ValueError as e:
            problems.append((lineno, str(e)))
            continue
        if parsed is not None:
            entries.append((lineno, parsed[0], parsed[1]))
    if not entries and not problems:
        problems.append((None, 'no entries (the list file is empty or only '
                               'has blank lines)'))
    return entries, problems


def read_image_list(path, root='.'):
    """Read a list file into an :class:`ImageList` of ``(path, label)``.

    Args:
        path (str): The list file.
        root (str): Directory the listed paths are relative to.

    Raises:
        ListFileError: on the first problem, naming ``path`` and the line.
    """
    entries, problems = scan_image_list(path)
    if problems:
        line, reason = problems[0]
        raise ListFileError(path, line, reason)
    return ImageList([(p, label) for _, p, label in entries], source=path,
                     root=root, lines=[line for line, _, _ in entries])


def write_image_list(path, pairs):
    """Write ``pairs`` as a list file, atomically (temp file + rename).

    Raises ``ValueError`` for a pair the format cannot represent (a path
    with a newline, NUL or surrounding spaces/tabs, or a bad label).
    """
    atomic_files.write_text(path, format_image_list(pairs))


def format_image_list(pairs):
    """The text of a list file holding ``pairs`` (``ValueError`` as :func:`write_image_list`)."""
    out = []
    for k, (rel, label) in enumerate(pairs):
        if (not rel or rel != rel.strip(' \t') or '\n' in rel or '\r' in rel
                or '\0' in rel):
            raise ValueError('entry {}: path {!r} cannot be written to a list '
                             'file'.format(k, rel))
        if not isinstance(label, int) and not hasattr(label, '__index__'):
            raise ValueError('entry {}: label {!r} is not an integer'.format(
                k, label))
        label = int(label)
        if not 0 <= label <= MAX_LABEL:
            raise ValueError('entry {}: label {} out of range'.format(k, label))
        out.append('{} {}\n'.format(rel, label))
    return ''.join(out)


def _decoded_lines(data, problems):
    """``(lineno, text)`` for each line; undecodable lines become problems."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        text = None
    if text is not None:
        for lineno, line in enumerate(text.split('\n'), 1):
            yield lineno, line
        return
    for lineno, raw in enumerate(data.split(b'\n'), 1):
        try:
            yield lineno, raw.decode('utf-8')
        except UnicodeDecodeError as e:
            problems.append((lineno, 'not valid UTF-8 ({})'.format(e.reason)))


def _clip(text, n=80):
    return text if len(text) <= n else text[:n] + '...'
