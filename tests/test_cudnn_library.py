"""chainer_ext.machine.cudnn_library on a stand-in library tree: libraries with cuDNN 8's names,
sonames and dependencies, built here with the C compiler, laid out as the NVIDIA wheels
lay theirs out in site-packages.  Each case runs in a fresh interpreter (a loaded library
stays loaded), with no LD_LIBRARY_PATH."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = shutil.which('cc') or shutil.which('gcc')
pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith('linux'), reason='ELF shared libraries'),
    pytest.mark.skipif(CC is None, reason='no C compiler to build the stand-in libraries'),
]

# cuDNN 8's libraries with what each one links against, and what it does
SUB = 'int {name}_ready(void) {{ return 1; }}\n'
CUDNN = textwrap.dedent('''
    #include <dlfcn.h>
    #include <stddef.h>
    size_t cudnnGetVersion(void) { return VERSION; }
    /* cuDNN opens its sub-libraries by name when a routine first needs them */
    int cudnn_open_cnn_infer(void) { return dlopen("libcudnn_cnn_infer.so.8", RTLD_NOW) != 0; }
''')
CONSUMER = textwrap.dedent('''
    #include <stddef.h>
    size_t cudnnGetVersion(void);
    int cudnn_open_cnn_infer(void);
    size_t version(void) { return cudnnGetVersion(); }
    int open_cnn_infer(void) { return cudnn_open_cnn_infer(); }
''')
LIBS = [  # (folder under the site dir, library, the libraries it is linked against)
    ('nvidia/cublas/lib', 'libcublasLt.so.12', []),
    ('nvidia/cudnn/lib', 'libcudnn_ops_infer.so.8', ['nvidia/cublas/lib/libcublasLt.so.12']),
    ('nvidia/cudnn/lib', 'libcudnn_ops_train.so.8', ['nvidia/cudnn/lib/libcudnn_ops_infer.so.8']),
    ('nvidia/cudnn/lib', 'libcudnn_cnn_infer.so.8', ['nvidia/cudnn/lib/libcudnn_ops_infer.so.8']),
    ('nvidia/cudnn/lib', 'libcudnn_cnn_train.so.8', ['nvidia/cudnn/lib/libcudnn_cnn_infer.so.8',
                                                     'nvidia/cudnn/lib/libcudnn_ops_train.so.8']),
    ('nvidia/cudnn/lib', 'libcudnn_adv_infer.so.8', ['nvidia/cudnn/lib/libcudnn_ops_infer.so.8']),
    ('nvidia/cudnn/lib', 'libcudnn_adv_train.so.8', ['nvidia/cudnn/lib/libcudnn_adv_infer.so.8',
                                                     'nvidia/cudnn/lib/libcudnn_ops_train.so.8']),
]


def _build(out, source, soname, needed=(), version=None):
    c = out + '.c'
    with open(c, 'w') as f:
        f.write(source.replace('VERSION', str(version or 0)))
    subprocess.run([CC, '-shared', '-fPIC', '-o', out, c, '-Wl,-soname,' + soname,
                    '-Wl,--no-as-needed']
                   + list(needed) + ['-ldl'], check=True)
    os.remove(c)


def build_tree(site, version=8907, with_cublas=True):
    """The wheels' libraries under ``site`` and, in ``site/consumer``, a library linked
    against libcudnn.so.8 as CuPy's cuDNN module is."""
    for folder, name, needed in LIBS:
        os.makedirs(os.path.join(site, folder), exist_ok=True)
        _build(os.path.join(site, folder, name), SUB.format(name=name.split('.')[0]), name,
               [os.path.join(site, n) for n in needed])
    _build(os.path.join(site, 'nvidia/cudnn/lib/libcudnn.so.8'), CUDNN, 'libcudnn.so.8',
           [os.path.join(site, 'nvidia/cudnn/lib/libcudnn_ops_infer.so.8')], version)
    os.makedirs(os.path.join(site, 'consumer'))
    _build(os.path.join(site, 'consumer', 'libconsumer.so'), CONSUMER, 'libconsumer.so',
           [os.path.join(site, 'nvidia/cudnn/lib/libcudnn.so.8')])
    if not with_cublas:
        shutil.rmtree(os.path.join(site, 'nvidia', 'cublas'))
    return site


_CASE = textwrap.dedent('''
    import ctypes, json, os, sys
    sys.path.insert(0, {repo!r})
    site = {site!r}
    result = {{}}
    if {preload!r}:
        from chainer_ext.machine import cudnn_library
        result['loaded'] = cudnn_library.preload(path=[site])
    try:
        lib = ctypes.CDLL(os.path.join(site, 'consumer', 'libconsumer.so'))
        lib.version.restype = ctypes.c_size_t
        result.update(version=lib.version(), opened=lib.open_cnn_infer())
    except OSError as e:
        result['error'] = str(e)
    print(json.dumps(result))
''')


def _run(code, env):
    proc = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != 'LD_LIBRARY_PATH'}
    env.update(extra)
    return env


def _case(site, preload, **env):
    return _run(_CASE.format(repo=REPO, site=str(site), preload=preload), _clean_env(**env))


def test_the_loader_alone_does_not_find_the_wheel(tmp_path):
    """What CuPy 13 meets: its cuDNN module cannot load."""
    site = build_tree(str(tmp_path / 'site'))
    result = _case(site, preload=False)
    assert 'libcudnn.so.8: cannot open shared object file' in result['error']


def test_preloaded_wheel_serves_the_cudnn_module(tmp_path):
    site = build_tree(str(tmp_path / 'site'))
    result = _case(site, preload=True)
    assert result.get('error') is None, result
    assert result['version'] == 8907 and result['opened'] == 1
    assert result['loaded'] == {
        'source': 'wheel', 'path': os.path.join(site, 'nvidia/cudnn/lib/libcudnn.so.8'),
        'version': '8.9.7', 'error': None}


def test_a_cudnn_the_loader_finds_itself_is_kept(tmp_path):
    site = build_tree(str(tmp_path / 'site'))
    system = build_tree(str(tmp_path / 'system'), version=8600)
    result = _case(site, preload=True,
                   LD_LIBRARY_PATH=os.path.join(system, 'nvidia/cudnn/lib') + ':'
                   + os.path.join(system, 'nvidia/cublas/lib'))
    assert result['loaded']['source'] == 'system' and result['loaded']['version'] == '8.6.0'
    assert result['version'] == 8600


def test_a_missing_dependency_is_named_and_nothing_raises(tmp_path):
    site = build_tree(str(tmp_path / 'site'), with_cublas=False)
    result = _case(site, preload=True)
    assert result['loaded']['source'] is None
    assert 'libcublasLt.so.12' in result['loaded']['error']
    assert 'libcudnn' in result['error']


def test_no_wheel_names_the_fix(tmp_path):
    result = _case(str(tmp_path), preload=True)
    assert result['loaded']['source'] is None
    assert 'nvidia-cudnn-cu12==8.9.7.29' in result['loaded']['error']


# A stand-in for CuPy's cuDNN module: importing it loads the library linked against
# libcudnn.so.8, as importing cupy_backends.cuda.libs.cudnn does.
_CUPY_BACKENDS = {
    'cupy_backends/__init__.py': '',
    'cupy_backends/cuda/__init__.py': '',
    'cupy_backends/cuda/libs/__init__.py': '',
    'cupy_backends/cuda/libs/cudnn.py': textwrap.dedent('''
        import ctypes, os
        _lib = ctypes.CDLL(os.path.join(os.path.dirname(__file__), '..', '..', '..',
                                        'consumer', 'libconsumer.so'))
        _lib.version.restype = ctypes.c_size_t
        getVersion = _lib.version
    '''),
}


def test_the_startup_hook_preloads_before_the_cudnn_module_imports(tmp_path):
    site = build_tree(str(tmp_path / 'site'))
    for name, text in _CUPY_BACKENDS.items():
        os.makedirs(os.path.dirname(os.path.join(site, name)), exist_ok=True)
        with open(os.path.join(site, name), 'w') as f:
            f.write(text)
    code = textwrap.dedent('''
        import json, sys
        sys.path[:0] = [{repo!r}, {site!r}]
        import chainer_ext  # adds the hook; the installed .pth does the same at start
        from cupy_backends.cuda.libs import cudnn
        from chainer_ext.machine import cudnn_library
        print(json.dumps({{'version': cudnn.getVersion(), 'loaded': cudnn_library.loaded}}))
    ''').format(repo=REPO, site=site)
    result = _run(code, _clean_env())
    assert result['version'] == 8907 and result['loaded']['source'] == 'wheel'
