"""ResNet-50 and ResNet-18 with Goyal et al.'s settings, which the paper adopts (Section 4).

Stride 2 on the 3x3 convolution of a downsampling bottleneck ("v1.5"), the last
BN of every residual branch with gamma = 0, He initialisation with fan-out,
no convolution biases, N(0, 0.01^2) classifier, projection shortcuts only where
the shape changes, BN eps 1e-5.  :attr:`ResNet.min_insize` = 32 is the total
stride.  Sources of each choice: docs/DESIGN.md.
"""
import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import initializers

#: Batch-normalization epsilon of Caffe2/Torch (Chainer's default is 2e-5).
BN_EPS = 1e-5


def _conv(in_channels, out_channels, ksize, stride=1):
    return L.Convolution2D(in_channels, out_channels, ksize, stride,
                           pad=ksize // 2, nobias=True,
                           initialW=initializers.HeNormal(scale=1.0, fan_option='fan_out'))


def _bn(channels, zero_gamma=False):
    return L.BatchNormalization(
        channels, eps=BN_EPS,
        initial_gamma=initializers.Zero() if zero_gamma else
        initializers.One(),
        initial_beta=initializers.Zero())


def _classifier(in_channels, n_class):
    """The last layer of every network here: N(0, 0.01) weights and a zero bias."""
    return L.Linear(in_channels, n_class, initialW=initializers.Normal(0.01),
                    initial_bias=initializers.Zero())


class _Shortcut(chainer.Chain):
    """Projection shortcut: 1x1 convolution (with the block's stride) + BN."""

    def __init__(self, in_channels, out_channels, stride):
        super(_Shortcut, self).__init__()
        with self.init_scope():
            self.conv = _conv(in_channels, out_channels, 1, stride)
            self.bn = _bn(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))


class BottleneckBlock(chainer.Chain):
    """1x1 -> 3x3 (stride) -> 1x1 residual block with zero-gamma ``bn3``.

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Channels of the 1x1 reduction and the 3x3.
        out_channels (int): Output channels (4 x ``mid_channels``).
        stride (int): Stride of the 3x3 convolution (and of the shortcut).
    """

    def __init__(self, in_channels, mid_channels, out_channels, stride=1):
        super(BottleneckBlock, self).__init__()
        with self.init_scope():
            self.conv1 = _conv(in_channels, mid_channels, 1)
            self.bn1 = _bn(mid_channels)
            self.conv2 = _conv(mid_channels, mid_channels, 3, stride)
            self.bn2 = _bn(mid_channels)
            self.conv3 = _conv(mid_channels, out_channels, 1)
            self.bn3 = _bn(out_channels, zero_gamma=True)
            if stride != 1 or in_channels != out_channels:
                self.shortcut = _Shortcut(in_channels, out_channels, stride)
            else:
                self.shortcut = None

    @property
    def last_bn(self):
        """The batch normalization whose ``gamma`` starts at zero."""
        return self.bn3

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(h + s)


class BasicBlock(chainer.Chain):
    """3x3 (stride) -> 3x3 residual block with zero-gamma ``bn2``.

    ``mid_channels`` is accepted for a common signature and must equal
    ``out_channels``.
    """

    def __init__(self, in_channels, mid_channels, out_channels, stride=1):
        super(BasicBlock, self).__init__()
        if mid_channels != out_channels:
            raise ValueError('a basic block has mid_channels == out_channels')
        with self.init_scope():
            self.conv1 = _conv(in_channels, out_channels, 3, stride)
            self.bn1 = _bn(out_channels)
            self.conv2 = _conv(out_channels, out_channels, 3)
            self.bn2 = _bn(out_channels, zero_gamma=True)
            if stride != 1 or in_channels != out_channels:
                self.shortcut = _Shortcut(in_channels, out_channels, stride)
            else:
                self.shortcut = None

    @property
    def last_bn(self):
        """The batch normalization whose ``gamma`` starts at zero."""
        return self.bn2

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(h + s)


class Stage(chainer.ChainList):
    """``n_blocks`` blocks; the first one downsamples by ``stride``."""

    def __init__(self, block, n_blocks, in_channels, mid_channels,
                 out_channels, stride):
        blocks = [block(in_channels, mid_channels, out_channels, stride)]
        blocks += [block(out_channels, mid_channels, out_channels, 1)
                   for _ in range(n_blocks - 1)]
        super(Stage, self).__init__(*blocks)

    def forward(self, x):
        for block in self:
            x = block(x)
        return x


class ResNet(chainer.Chain):
    """ImageNet ResNet: 7x7/2 conv, 3x3/2 max-pool, four stages, GAP, FC.

    Args:
        block (type): :class:`BottleneckBlock` or :class:`BasicBlock`.
        n_blocks (sequence of 4 ints): Blocks per stage (``res2``..``res5``).
        expansion (int): Output/mid channel ratio (4 bottleneck, 1 basic).
        n_class (int): Number of classes.

    ``forward(x)`` maps ``float32`` images ``(N, 3, H, W)`` with
    ``H, W >= min_insize`` to logits ``(N, n_class)``; wrap the model in
    ``chainer.links.Classifier`` for the loss and accuracy.
    """

    #: Product of all strides: conv1, max-pool, res3, res4, res5.
    total_stride = 32
    #: Smallest input side for which the last stage sees image content.
    min_insize = 32

    def __init__(self, block, n_blocks, expansion, n_class=1000):
        super(ResNet, self).__init__()
        if n_class < 1:
            raise ValueError('n_class must be positive, got {}'.format(n_class))
        widths = (64, 128, 256, 512)
        self.n_class = n_class
        with self.init_scope():
            self.conv1 = _conv(3, 64, 7, 2)
            self.bn1 = _bn(64)
            in_ch = 64
            for k, (n, mid) in enumerate(zip(n_blocks, widths)):
                out_ch = mid * expansion
                stage = Stage(block, n, in_ch, mid, out_ch, 1 if k == 0 else 2)
                setattr(self, 'res{}'.format(k + 2), stage)
                in_ch = out_ch
            self.fc = _classifier(in_ch, n_class)

    @property
    def stages(self):
        return [self.res2, self.res3, self.res4, self.res5]

    def blocks(self):
        """All residual blocks, in order."""
        return [b for stage in self.stages for b in stage]

    def features(self, x):
        """Feature map after ``res5`` (before global average pooling)."""
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.max_pooling_2d(h, 3, stride=2, pad=1, cover_all=False)
        for stage in self.stages:
            h = stage(h)
        return h

    def forward(self, x):
        h = self.features(x)
        h = F.mean(h, axis=(2, 3))
        return self.fc(h)


class ResNet50(ResNet):
    """ResNet-50 (bottleneck blocks 3-4-6-3, stride on the 3x3)."""

    def __init__(self, n_class=1000):
        super(ResNet50, self).__init__(BottleneckBlock, (3, 4, 6, 3), 4,
                                       n_class)


class ResNet18(ResNet):
    """ResNet-18 (basic blocks 2-2-2-2)."""

    def __init__(self, n_class=1000):
        super(ResNet18, self).__init__(BasicBlock, (2, 2, 2, 2), 1, n_class)


class _SmallResNet(chainer.Chain):
    """The sweeps' networks: a stem ``conv1``/``bn1``, stages ``res2``, ``res3``, ...,
    global average pooling and the classifier ``fc``."""

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        for k in range(self.n_stages):
            h = getattr(self, 'res{}'.format(k + 2))(h)
        return self.fc(F.mean(h, axis=(2, 3)))


class CifarResNet(_SmallResNet):
    """He et al.'s small-image ResNet (6n + 2 layers, 2016, Section 4.2) for the batch-size sweep.

    3x3 convolution to ``widths[0]`` channels, three stages of ``n`` basic blocks
    (stride 1, 2, 2), global average pooling, linear classifier; the blocks, BN and
    initialisation are those of :class:`ResNet`.
    """

    #: Product of the stage strides.
    total_stride = 4
    #: Smallest input side for which the last stage sees a 2x2 map.
    min_insize = 8

    def __init__(self, n=1, n_class=10, widths=(16, 32, 64), in_channels=3):
        super(CifarResNet, self).__init__()
        if n < 1 or n_class < 1:
            raise ValueError('n and n_class must be positive, got n={}, n_class={}'.format(
                n, n_class))
        with self.init_scope():
            self.conv1 = _conv(in_channels, widths[0], 3)
            self.bn1 = _bn(widths[0])
            in_ch = widths[0]
            for k, width in enumerate(widths):
                stage = Stage(BasicBlock, n, in_ch, width, width, 1 if k == 0 else 2)
                setattr(self, 'res{}'.format(k + 2), stage)
                in_ch = width
            self.fc = _classifier(in_ch, n_class)
        self.n_stages = len(widths)


class MiniResNet(_SmallResNet):
    """ResNet-50's design in miniature, for the batch-size sweep on Fashion-MNIST.

    A strided 3x3 stem (ResNet-50's 7x7/2 convolution and max-pool, for 28x28 images),
    one :class:`BottleneckBlock` per stage (stride 1, 2, 2 on the 3x3, projection
    shortcuts where the shape changes, zero-gamma last BN), global average pooling and
    the classifier of :class:`ResNet`.  Stage ``k`` has ``widths[k]`` mid channels and
    ``4 * widths[k]`` out channels, as in ResNet-50.
    """

    #: Product of the strides: the stem and the last two stages.
    total_stride = 8
    #: Smallest input side for which the last stage sees a 2x2 map.
    min_insize = 16

    def __init__(self, n_class=10, widths=(8, 16, 32), stem_channels=16, in_channels=1):
        super(MiniResNet, self).__init__()
        if n_class < 1:
            raise ValueError('n_class must be positive, got {}'.format(n_class))
        with self.init_scope():
            self.conv1 = _conv(in_channels, stem_channels, 3, 2)
            self.bn1 = _bn(stem_channels)
            in_ch = stem_channels
            for k, mid in enumerate(widths):
                stage = Stage(BottleneckBlock, 1, in_ch, mid, 4 * mid, 1 if k == 0 else 2)
                setattr(self, 'res{}'.format(k + 2), stage)
                in_ch = 4 * mid
            self.fc = _classifier(in_ch, n_class)
        self.n_stages = len(widths)
