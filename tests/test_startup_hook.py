"""The start-up hook an install adds (zz_chainer_ext_startup.pth, chainer_ext.startup):
``import chainer`` first works in this environment, for the Makefile's editable install, a
PEP 660 editable wheel and a normal ``pip install .``."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile

import numpy
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PTH = 'zz_chainer_ext_startup.pth'
NUMPY2 = int(numpy.__version__.split('.')[0]) >= 2

# A user's script: chainer first, then what reads np.sctypes (as_strided, at import and
# in backward); reports whether the stand-ins came from the hook.
_USER_SCRIPT = textwrap.dedent('''
    import json, sys
    {prelude}
    import chainer
    import chainer.functions as F
    import numpy
    x = chainer.Variable(numpy.arange(6, dtype=numpy.float32))
    y = F.as_strided(x, (2, 2), (2, 1))
    y.grad = numpy.ones((2, 2), numpy.float32)
    y.backward()
    import chainer_ext
    print(json.dumps({{'grad': x.grad.tolist(), 'chainer_ext': chainer_ext.__file__,
                      'installed': chainer_ext.machine.compat.installed}}))
''')


def _run_user_script(prelude='', flags=(), cwd=None):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable] + list(flags) + [
        '-c', _USER_SCRIPT.format(prelude=prelude)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, timeout=180, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _copy_of_the_checkout(tmp_path):
    dest = str(tmp_path / 'checkout')
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
        '.git', '.venv*', 'build', 'dist', '*.egg-info', 'result*', '__pycache__',
        '.pytest_cache', '.hypothesis', '.cache'))
    return dest


def test_import_chainer_first_in_this_environment(tmp_path):
    """This environment (the Makefile's editable install): a script outside the checkout."""
    site = sysconfig.get_paths()['purelib']
    assert os.path.isfile(os.path.join(site, PTH)), 'run make setup: {} lacks {}'.format(
        site, PTH)
    report = _run_user_script(cwd=str(tmp_path))
    package = os.path.dirname(os.path.realpath(report['chainer_ext']))
    assert package == os.path.join(os.path.realpath(REPO), 'chainer_ext'), (
        'this environment imports {}, not the checkout under test: run make setup in {}'
        .format(package, REPO))
    assert report['grad'] == [1, 1, 1, 1, 0, 0]
    assert ('numpy.sctypes' in report['installed']) == NUMPY2


def test_without_the_hook_chainer_first_fails_on_numpy2(tmp_path):
    """What the hook prevents: the same script with site-packages read but no .pth run."""
    if not NUMPY2:
        pytest.skip('NumPy 1 has np.sctypes: Chainer imports without stand-ins')
    site = sysconfig.get_paths()['purelib']
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, '-S', '-c', 'import sys; sys.path.append({!r}); '
                           'import chainer'.format(site)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=180, env=env,
                          cwd=str(tmp_path))
    assert proc.returncode != 0 and 'sctypes' in proc.stderr


def test_a_normal_install_carries_the_hook(tmp_path):
    """``pip install .`` (into a folder, read as a site folder by a fresh interpreter
    that sees the checkout nowhere)."""
    target = str(tmp_path / 'site')
    source = _copy_of_the_checkout(tmp_path)  # pip builds in the tree: not in this one
    proc = subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                           '--no-build-isolation', '--target', target, source],
                          timeout=600, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(os.path.join(target, PTH)) as f:
        assert 'chainer_ext.startup' in f.read()
    site = sysconfig.get_paths()['purelib']
    # -S: no site-packages .pth run (not this environment's hook, nor its editable path)
    prelude = ('import site; sys.path.append({!r}); site.addsitedir({!r})'
               .format(site, target))
    report = _run_user_script(prelude, flags=['-S'], cwd=str(tmp_path))
    assert report['chainer_ext'].startswith(target)
    assert report['grad'] == [1, 1, 1, 1, 0, 0]
    assert ('numpy.sctypes' in report['installed']) == NUMPY2


def test_a_pep660_editable_wheel_carries_the_hook(tmp_path):
    """``pip install -e .`` by a pip that builds editable wheels (PEP 660)."""
    code = ('from setuptools import build_meta; import sys; '
            'print(build_meta.build_editable(sys.argv[1]))')
    source = _copy_of_the_checkout(tmp_path)
    proc = subprocess.run([sys.executable, '-c', code, str(tmp_path)], cwd=source,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = os.path.join(str(tmp_path), proc.stdout.strip().splitlines()[-1])
    names = zipfile.ZipFile(wheel).namelist()
    assert PTH in names, names
    # it sorts after the wheel's own path entry, which makes chainer_ext importable
    assert all(n < PTH for n in names if n.endswith('.pth') and n != PTH), names
