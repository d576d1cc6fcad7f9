"""The input pipeline's errors: bad data, named by file (and list line).

Every problem found in the inputs is a :class:`DatasetError` whose message starts
with the file at fault; the exceptions pickle with their fields, since Chainer's
``MultiprocessIterator`` sends a worker's exception back by pickling it.
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
