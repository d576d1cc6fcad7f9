"""The package's layout, as a newcomer reads it: chainer_ext/ keeps at its top only the
package's face, the start-up import hook and the commands a user runs by name, each a thin
command over its package; every other module sits in a package named for its role; no
module imports, at load time, one that imports it back; module docstrings stay short."""
import ast
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, 'chainer_ext')
#: The commands README, jobs/ and the Makefile run as ``python -m chainer_ext.NAME``.
COMMANDS = ('evaluate', 'report', 'cost_model', 'launch', 'gpu_check', 'gpu_bundle')
TOP = {'__init__', 'startup'} | set(COMMANDS)
MAX_TOP_FILES = 10
MAX_DOCSTRING_LINES = 15


def _modules(root=PACKAGE, prefix='chainer_ext'):
    """``{dotted name: path}`` of every module of the package, packages by their __init__."""
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        rel = os.path.relpath(folder, root)
        parts = [prefix] + ([] if rel == '.' else rel.split(os.sep))
        for f in files:
            if f.endswith('.py'):
                name = parts if f == '__init__.py' else parts + [f[:-3]]
                found['.'.join(name)] = os.path.join(folder, f)
    return found


def _load_time_imports(path, name, modules):
    """The package's modules that ``path`` imports when it loads: statements at module level
    (under ``if``/``try`` too), not inside functions.  ``from P import n`` counts as
    importing ``P.n`` where that is a module, else ``P``."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith('__init__.py')
    out = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    here = name.split('.') if is_package else name.split('.')[:-1]
                    here = here[:len(here) - node.level + 1]
                    base = '.'.join(here + ([base] if base else []))
                for a in node.names:
                    sub = base + '.' + a.name
                    out.add(sub if sub in modules else base)
            for field in ('body', 'orelse', 'finalbody', 'handlers'):
                visit(getattr(node, field, []) or [])
    visit(tree.body)
    return sorted(m for m in out if m in modules and m != name)


def _cycle(graph):
    """One import cycle of ``graph`` as a list of names, or None."""
    state, stack = {}, []

    def walk(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            found = walk(node)
            if found:
                return found
    return None


def test_the_top_level_holds_the_face_the_hook_and_the_commands_only():
    files = sorted(f for f in os.listdir(PACKAGE) if f.endswith('.py'))
    assert len(files) <= MAX_TOP_FILES, files
    assert sorted(f[:-3] for f in files) == sorted(TOP)


@pytest.mark.parametrize('command', COMMANDS)
def test_a_command_is_thin(command):
    """A command defines nothing: it imports its package's ``main`` and runs it."""
    path = os.path.join(PACKAGE, command + '.py')
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    defined = [n.name for n in ast.walk(tree)
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert defined == [], '{}: defines {}'.format(path, defined)
    [body] = [n.module for n in tree.body if isinstance(n, ast.ImportFrom)
              and [a.name for a in n.names] == ['main']]
    assert body.startswith('chainer_ext.') and body.count('.') >= 2, body


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _load_time_imports(path, name, modules) for name, path in modules.items()}
    assert _cycle(graph) is None


def test_a_cycle_is_found(tmp_path):
    pkg = tmp_path / 'pkg'
    (pkg / 'sub').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'sub' / '__init__.py').write_text('')
    (pkg / 'a.py').write_text('from pkg.sub import b\n')
    (pkg / 'sub' / 'b.py').write_text('import os\nif __name__ == "__main__":\n'
                                      '    from pkg import a\n')
    modules = _modules(str(pkg), 'pkg')
    graph = {name: _load_time_imports(path, name, modules) for name, path in modules.items()}
    assert _cycle(graph) == ['pkg.a', 'pkg.sub.b', 'pkg.a']


def test_module_docstrings_are_short():
    long = []
    for name, path in sorted(_modules().items()):
        with open(path, encoding='utf-8') as f:
            doc = ast.get_docstring(ast.parse(f.read(), path), clean=False)
        if doc is None or len(doc.strip('\n').split('\n')) > MAX_DOCSTRING_LINES:
            long.append('{}: {} lines'.format(name, doc and len(doc.strip('\n').split('\n'))))
    assert long == []


def test_the_cost_model_command_loads_its_modules_once():
    """``python -m chainer_ext.cost_model`` runs the package's text module; no module of the
    cost model is loaded a second time as ``__main__``."""
    code = ('import runpy, sys; sys.argv = ["cost_model", "--help"]\n'
            'try:\n    runpy.run_module("chainer_ext.cost_model", run_name="__main__")\n'
            'except SystemExit:\n    pass\n'
            'print(sorted(m for m in sys.modules if "cost_model" in m))')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == str(sorted([
        'chainer_ext.paper.cost_model', 'chainer_ext.paper.cost_model.constants',
        'chainer_ext.paper.cost_model.model', 'chainer_ext.paper.cost_model.pcie_derating',
        'chainer_ext.paper.cost_model.text']))
