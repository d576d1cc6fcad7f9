"""Networks of the reproduction (see :mod:`models.resnet`).

``archs`` maps the training script's ``--arch`` names to classes taking
``n_class``; every class has ``min_insize`` and ``forward(x) -> logits``.
"""
import chainer_ext  # NOQA: compatibility stand-ins before chainer loads
from models.resnet import BasicBlock  # NOQA
from models.resnet import BottleneckBlock  # NOQA
from models.resnet import CifarResNet  # NOQA
from models.resnet import ResNet  # NOQA
from models.resnet import ResNet18  # NOQA
from models.resnet import ResNet50  # NOQA

archs = {
    'resnet50': ResNet50,
    'resnet18': ResNet18,
}
