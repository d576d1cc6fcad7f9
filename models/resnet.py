"""ResNet-50 and ResNet-18 as trained by Goyal et al. (2017) and Akiba et al.

Akiba, Suzuki and Fukuda (2017) train ResNet-50 "with the same settings" as
Goyal et al. (2017), "Accurate, Large Minibatch SGD: Training ImageNet in
1 Hour".  Those settings fix the details that differ between ResNet
implementations:

* **Stride on the 3x3 convolution.**  A downsampling bottleneck block puts
  stride 2 on its 3x3 convolution, not on the first 1x1 (the variant of
  fb.resnet.torch, often called "ResNet v1.5"; Chainer's
  ``ResNetLayers(downsample_fb=True)``).  Basic blocks (ResNet-18) put it on
  their first 3x3.
* **Zero-initialised last BN.**  The scale ``gamma`` of the *last* batch
  normalization of each residual branch starts at 0, so every block starts
  as the identity -- Goyal et al. found this eases large-minibatch training.
  All other ``gamma`` are 1, all ``beta`` 0.
* **He initialisation** (He et al. 2015, "Delving deep into rectifiers"):
  convolution weights ~ N(0, 2 / fan_out) with fan_out = k x k x out_channels
  (``chainer.initializers.HeNormal(fan_option='fan_out')``), as in the two
  code bases the paper inherits its settings from: Caffe2's ``MSRAFill`` used
  by Goyal et al. and fb.resnet.torch (``n = kW * kH * nOutputPlane``). It
  differs from the fan-in form only for channel-changing convolutions.  Convolutions have
  no bias (batch normalization follows each).  The final fully connected
  layer is drawn from N(0, 0.01^2) with zero bias (Goyal et al.).
* **Projection shortcuts** (1x1 convolution + BN) only where the shape
  changes; identity elsewhere.
* Batch normalization with ``eps`` = 1e-5 (Caffe2 and Torch) and Chainer's
  default ``decay`` 0.9; the paper's "BN without moving averages" is applied
  to these links by the training script.

Global average pooling before the classifier makes the networks accept any
input side; :attr:`ResNet.min_insize` = 32 is the *total stride* (conv1 2 x
max-pool 2 x three downsampling stages 2 = 32): from 32 pixels up every
stride-2 layer halves a map of at least 2x2 pixels and the last stage sees a
map of at least 1x1 computed from image content.  Smaller inputs still run
(padding keeps every map at >= 1x1) but the deep layers then mostly see
padding, so the training script refuses them.

Parameter counts for 1000 classes: ResNet-50 25,557,032 and ResNet-18
11,689,512, the standard (torchvision) counts.
"""
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
            self.fc = L.Linear(in_ch, n_class,
                               initialW=initializers.Normal(0.01),
                               initial_bias=initializers.Zero())

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
