"""Files that are there whole or not at all: written beside their place, then renamed.

A file is written under a temporary name in its own folder and moved into place with
``os.replace``, which is atomic on POSIX: a reader, a crash or a full disk never leaves
half a file under the real name.  On an error the temporary file is removed.
:func:`replacing` is the one way the project does it; the others are shorthands.
"""
import contextlib
import json
import os


def _temporary(path, suffix=''):
    return '{}.tmp-{}{}'.format(path, os.getpid(), suffix)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


@contextlib.contextmanager
def replacing(path, suffix=''):
    """The name of a temporary file beside ``path`` to write; when the block ends without
    an error it replaces ``path``, otherwise it is removed.

    ``suffix`` ends the temporary name, for writers that append an extension to a
    name without it (``numpy.savez``: ``'.npz'``).
    """
    tmp = _temporary(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_text(path, text):
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path``."""
    write_texts({path: text})


def write_texts(texts):
    """Write each ``{path: text}`` (UTF-8): every file or, on an error, none.

    All are written under temporary names first, then renamed into place.
    """
    tmps = {}
    try:
        for path, text in texts.items():
            tmps[path] = _temporary(path)
            with open(tmps[path], 'w', encoding='utf-8', newline='\n') as f:
                f.write(text)
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in tmps.values():
            _remove(tmp)
        raise


def write_json(path, obj, end='', **dump):
    """Write ``obj`` as JSON to ``path``, then ``end``; ``dump`` are :func:`json.dump`'s
    options."""
    with replacing(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(obj, f, **dump)
            f.write(end)
