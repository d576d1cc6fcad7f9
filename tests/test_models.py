"""ResNet-50/18 of Goyal et al. and the sweep's miniature: shapes, zero-gamma, strides, init."""
import numpy
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L

from models import archs
from models import BasicBlock, BottleneckBlock, MiniResNet, ResNet18, ResNet50


@pytest.fixture(scope='module')
def resnet50():
    return ResNet50()


@pytest.fixture(scope='module')
def resnet18():
    return ResNet18()


def _n_params(model):
    return sum(p.size for p in model.params())


def test_archs_registry():
    assert archs == {'resnet50': ResNet50, 'resnet18': ResNet18}
    for cls in archs.values():
        assert cls.min_insize == 32
        assert cls.total_stride == 32


def test_parameter_counts(resnet50, resnet18):
    # The standard (torchvision) counts of ResNet-50 v1.5 and ResNet-18.
    assert _n_params(resnet50) == 25557032
    assert _n_params(resnet18) == 11689512


def test_parameter_count_follows_n_class():
    model = ResNet18(n_class=10)
    assert _n_params(model) == 11689512 - 990 * 512 - 990
    assert model.fc.W.shape == (10, 512)


@pytest.mark.parametrize('arch,size', [
    ('resnet50', 32), ('resnet50', 64), ('resnet50', 75),
    ('resnet18', 32), ('resnet18', 48), ('resnet18', 224)])
def test_output_shape(arch, size, resnet50, resnet18):
    model = resnet50 if arch == 'resnet50' else resnet18
    x = numpy.random.RandomState(0).randn(2, 3, size, size).astype('f')
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        y = model(x)
    assert y.shape == (2, 1000)
    assert y.dtype == numpy.float32
    assert numpy.isfinite(y.array).all()


@pytest.mark.parametrize('size,final', [(32, 1), (64, 2), (224, 7)])
def test_total_stride_is_32(resnet18, size, final):
    x = numpy.zeros((1, 3, size, size), 'f')
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        h = resnet18.features(x)
    assert h.shape[2:] == (final, final)
    assert size // resnet18.total_stride == final


def test_classifier_reports_loss_and_accuracy():
    model = L.Classifier(ResNet18(n_class=5))
    x = numpy.random.RandomState(1).randn(4, 3, 32, 32).astype('f')
    t = numpy.array([0, 1, 2, 3], numpy.int32)
    reporter = chainer.Reporter()
    reporter.add_observer('main', model)
    observation = {}
    with reporter.scope(observation):
        loss = model(x, t)
    loss.backward()
    assert set(observation) == {'main/loss', 'main/accuracy'}
    assert model.predictor.conv1.W.grad is not None


@pytest.mark.parametrize('arch', ['resnet50', 'resnet18'])
def test_zero_gamma_only_on_last_bn_of_each_block(arch, resnet50, resnet18):
    model = resnet50 if arch == 'resnet50' else resnet18
    blocks = model.blocks()
    assert len(blocks) == (16 if arch == 'resnet50' else 8)
    last = set()
    for block in blocks:
        assert isinstance(block, BottleneckBlock if arch == 'resnet50'
                          else BasicBlock)
        last.add(id(block.last_bn))
        assert (block.last_bn.gamma.array == 0).all()
        assert (block.last_bn.beta.array == 0).all()
    n_bn = 0
    for name, link in model.namedlinks():
        if isinstance(link, L.BatchNormalization):
            n_bn += 1
            if id(link) not in last:
                assert (link.gamma.array == 1).all(), name
                assert (link.beta.array == 0).all(), name
    # 1 stem BN, 3 (or 2) per block, 1 per projection shortcut (4 stages).
    per_block = 3 if arch == 'resnet50' else 2
    n_proj = 4 if arch == 'resnet50' else 3
    assert n_bn == 1 + per_block * len(blocks) + n_proj


def test_last_bn_is_the_last_of_the_residual_branch(resnet50, resnet18):
    assert resnet50.res3[0].last_bn is resnet50.res3[0].bn3
    assert resnet18.res3[0].last_bn is resnet18.res3[0].bn2
    # The projection shortcut's BN is not zero-initialised.
    assert (resnet50.res3[0].shortcut.bn.gamma.array == 1).all()


def test_stride_on_the_3x3_convolution(resnet50, resnet18):
    for k, stage in enumerate(resnet50.stages):
        first = stage[0]
        expected = 1 if k == 0 else 2
        assert first.conv1.ksize in (1, (1, 1))
        assert first.conv1.stride == (1, 1)
        assert first.conv2.stride == (expected, expected)
        assert first.conv3.stride == (1, 1)
        assert first.shortcut is not None  # channels change in every stage
        assert first.shortcut.conv.stride == (expected, expected)
        for block in list(stage)[1:]:
            assert block.conv2.stride == (1, 1)
            assert block.shortcut is None
    for k, stage in enumerate(resnet18.stages):
        first = stage[0]
        expected = 1 if k == 0 else 2
        assert first.conv1.stride == (expected, expected)
        assert first.conv2.stride == (1, 1)
        assert (first.shortcut is None) == (k == 0)


def test_convolutions_have_no_bias_and_he_variance(resnet50):
    convs = [(name, link) for name, link in resnet50.namedlinks()
             if isinstance(link, L.Convolution2D)]
    assert len(convs) == 53  # 1 stem + 16 blocks x 3 + 4 projections
    for name, conv in convs:
        assert conv.b is None, name
        W = conv.W.array
        fan_out = W.shape[0] * W.shape[2] * W.shape[3]  # Caffe2 MSRAFill, fb.resnet.torch
        if W.size >= 16384:
            ratio = W.var() / (2. / fan_out)
            assert 0.9 < ratio < 1.1, (name, ratio)
            assert abs(W.mean()) < 4 * numpy.sqrt(2. / fan_out / W.size)


def test_fc_initialisation(resnet50):
    W = resnet50.fc.W.array
    assert abs(W.std() - 0.01) < 0.0005
    assert (resnet50.fc.b.array == 0).all()


def test_bn_settings(resnet18):
    for _, link in resnet18.namedlinks():
        if isinstance(link, L.BatchNormalization):
            assert link.eps == pytest.approx(1e-5)


def test_invalid_n_class():
    with pytest.raises(ValueError):
        ResNet18(n_class=0)


def test_mini_resnet_is_resnet50s_design_in_miniature():
    """Strided stem, one bottleneck block per stage with the stride on the 3x3, out = 4 x
    mid channels, zero-gamma last BN, projection shortcuts, no BN decay (the sweep's
    add_weight_decay decays conv and linear W only)."""
    from chainer_ext.optimizer_hooks import add_weight_decay
    numpy.random.seed(0)
    net = MiniResNet(n_class=10, widths=(8, 16, 32), stem_channels=16, in_channels=1)
    assert net.conv1.stride == (2, 2) and net.conv1.W.shape == (16, 1, 3, 3)
    in_ch = 16
    for k, mid in enumerate((8, 16, 32)):
        (block,) = getattr(net, 'res{}'.format(k + 2))
        assert isinstance(block, BottleneckBlock)
        stride = 1 if k == 0 else 2
        assert block.conv2.stride == (stride, stride) and block.conv1.stride == (1, 1)
        assert block.conv1.W.shape == (mid, in_ch, 1, 1)
        assert block.conv3.W.shape == (4 * mid, mid, 1, 1)
        assert (block.last_bn.gamma.array == 0).all()
        assert block.shortcut.conv.stride == (stride, stride)
        in_ch = 4 * mid
    x = numpy.zeros((2, 1, 28, 28), numpy.float32)
    with chainer.using_config('train', False):
        assert net(x).shape == (2, 10)
    # One update with zero gradients moves only what weight decay reaches.
    model = L.Classifier(net)
    optimizer = chainer.optimizers.SGD(lr=1.0)
    optimizer.setup(model)
    assert add_weight_decay(model, rate=0.5) == 1 + 4 * 3 + 1   # stem, 4 per block, fc W
    before = {name: p.array.copy() for name, p in model.namedparams()}
    for p in model.params():
        p.grad = numpy.zeros_like(p.array)
    optimizer.update()
    for name, p in model.namedparams():
        is_weight = name.endswith('/W')   # convolutions and the classifier
        numpy.testing.assert_allclose(p.array, before[name] * (0.5 if is_weight else 1.0),
                                      err_msg=name)
