"""Every program and test file outside ``chainer_ext/`` imports ``chainer_ext`` before
Chainer, ChainerMN or CuPy, so that its compatibility stand-ins are in place in a checkout
used without installing it (:mod:`chainer_ext.startup`).  A sorter of imports would move
``import chainer`` first; this test says so, naming the file and line."""
import ast
import os
import subprocess

from conftest import REPO_ROOT

LATER = ('chainer', 'chainermn', 'cupy')


def _top(name):
    return (name or '').split('.')[0]


def _first_import_problem(path):
    """The line importing Chainer (or ChainerMN, CuPy) at module level before any
    ``chainer_ext`` import, or None."""
    with open(os.path.join(REPO_ROOT, path), encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [_top(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [_top(node.module)]
        else:
            continue
        if 'chainer_ext' in names:
            return None
        if any(n in LATER for n in names):
            return '{}:{}: imports {} before chainer_ext'.format(path, node.lineno, names[0])
    return None


def test_chainer_ext_is_imported_before_chainer():
    files = subprocess.run(['git', 'ls-files', '*.py'], cwd=REPO_ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    assert files, 'no tracked Python files found'
    problems = [_first_import_problem(p) for p in files if not p.startswith('chainer_ext/')]
    assert [p for p in problems if p] == []


def test_a_sorted_import_block_is_caught(tmp_path, monkeypatch):
    (tmp_path / 'sorted.py').write_text('import chainer\nimport chainer_ext\n')
    monkeypatch.setattr('test_first_import.REPO_ROOT', str(tmp_path))
    assert _first_import_problem('sorted.py') == 'sorted.py:1: imports chainer before chainer_ext'
