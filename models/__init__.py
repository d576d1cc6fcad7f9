"""Networks of the reproduction (see :mod:`models.resnet`).

``archs`` maps the training script's ``--arch`` names to classes taking
``n_class``; every class has ``min_insize`` and ``forward(x) -> logits``.
"""
import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
from models.resnet import BasicBlock
from models.resnet import BottleneckBlock
from models.resnet import CifarResNet
from models.resnet import MiniResNet
from models.resnet import ResNet
from models.resnet import ResNet18
from models.resnet import ResNet50

archs = {
    'resnet50': ResNet50,
    'resnet18': ResNet18,
}
