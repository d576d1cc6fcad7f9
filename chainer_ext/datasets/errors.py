"""The input pipeline's own errors: bad data, named by file (and line).

A training run over 1.28 million files meets every kind of broken input
sooner or later; a bare ``OSError: cannot identify image file <_io.BytesIO>``
raised from a loader worker does not say which file or which list line to
fix.  Every problem the pipeline detects in its *inputs* is raised as a
:class:`DatasetError`, whose message starts with the file (and the line of the
list file) at fault.

The exceptions pickle with all their fields, because Chainer's
``MultiprocessIterator`` sends an exception raised in a worker back to the
training process by pickling it.
"""


class DatasetError(ValueError):
    """Base class: something is wrong with the data, not with the code."""


class ListFileError(DatasetError):
    """A list file (``relative/path label`` per line) cannot be used.

    Attributes:
        path (str): The list file.
        line (int or None): 1-based line number, or ``None`` when the problem
            concerns the whole file (unreadable, no entries).
        reason (str): What is wrong.
    """

    def __init__(self, path, line, reason):
        self.path = path
        self.line = line
        self.reason = reason
        super(ListFileError, self).__init__(format_location(path, line, reason))

    def __reduce__(self):
        return type(self), (self.path, self.line, self.reason)


class ImageLoadError(DatasetError):
    """An image file is missing, empty, truncated or cannot be decoded.

    Attributes:
        path (str): The image file.
        reason (str): What is wrong.
        where (str or None): ``LIST:LINE`` of the list entry that named the
            image, when known; it prefixes the message.
    """

    def __init__(self, path, reason, where=None):
        self.path = path
        self.reason = reason
        self.where = where
        message = '{}: {}'.format(path, reason)
        if where:
            message = '{}: {}'.format(where, message)
        super(ImageLoadError, self).__init__(message)

    def __reduce__(self):
        return type(self), (self.path, self.reason, self.where)


def format_location(path, line, reason):
    """``"FILE:LINE: reason"`` (or ``"FILE: reason"`` without a line)."""
    if line is None:
        return '{}: {}'.format(path, reason)
    return '{}:{}: {}'.format(path, line, reason)
