"""chainer_ext.gpu_bundle: the offline bundle for GPU machines (needs PyPI, like make setup)."""
import os
import shutil
import subprocess
import sys

from chainer_ext.machine import gpu_bundle


def test_bundle_holds_what_a_gpu_machine_lacks_within_64_mib(tmp_path):
    out = tmp_path / 'bundle'
    size = gpu_bundle.build(str(out), '{}.{}'.format(*sys.version_info[:2]))
    assert size == gpu_bundle.folder_size(str(out)) <= 64 * 2 ** 20
    names = sorted(w.split('-')[0].lower() for w in os.listdir(out / 'wheels'))
    assert names == sorted(['akiba2017_chainer', 'chainer', 'filelock', 'mpi4py', 'packaging',
                            'pillow', 'protobuf', 'six', 'typing_extensions'])
    assert not any(n.startswith(('numba', 'llvmlite', 'cupy')) for n in names)
    subprocess.run(['bash', '-n', str(out / 'install.sh')], check=True)
    # Open MPI works from wherever the folder is copied to
    moved = tmp_path / 'elsewhere'
    shutil.move(str(out), str(moved))
    proc = subprocess.run([str(moved / 'openmpi' / 'bin' / 'mpiexec'), '--version'],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=60)
    assert proc.returncode == 0 and 'Open MPI' in proc.stdout, proc.stdout


def test_install_sh_skips_what_is_installed(tmp_path):
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    for name in ('numpy-1.0-py3-none-any.whl', 'no_such_dist_akiba-1.0-py3-none-any.whl'):
        (wheels / name).write_bytes(b'')
    (tmp_path / 'install.sh').write_text(gpu_bundle.INSTALL_SH.replace(
        '"$PYTHON" -m pip install', 'echo WOULD-INSTALL'))
    proc = subprocess.run(['bash', str(tmp_path / 'install.sh')], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, PYTHON=sys.executable))
    assert proc.returncode == 0, proc.stdout
    line = [x for x in proc.stdout.splitlines() if x.startswith('WOULD-INSTALL')]
    assert len(line) == 1 and 'no_such_dist_akiba' in line[0] and 'numpy' not in line[0]
    assert 'openmpi/bin' in (tmp_path / 'env.sh').read_text()
