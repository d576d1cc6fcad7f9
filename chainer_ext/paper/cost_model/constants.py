"""The constants of the cost model of the paper's machine (MN-1), each with its source.

The one place they live.  None is tuned to reproduce the paper's 897.9 s: the point of
:mod:`chainer_ext.paper.cost_model.model` is to see what the published hardware figures predict, and
where they fall short.  ``python -m chainer_ext.cost_model --paper`` prints them as a table.
"""
from chainer_ext.paper import numbers as paper

#: Every constant used to model MN-1, with its source.
PAPER_CONSTANTS = {
    'images_per_s': {
        'value': 195.0,
        'unit': 'images/s per GPU (forward + backward, fp32, batch 32)',
        'source': ('TensorFlow official benchmarks (tensorflow.org/performance/'
                   'benchmarks, 2017, TF 1.x tf_cnn_benchmarks): ResNet-50 on one '
                   'Tesla P100 of an NVIDIA DGX-1, batch 32 per GPU, synthetic '
                   'data: 195 images/s (219 at batch 64; 193 with real data). '
                   'Chosen because it is a published single-P100 figure at '
                   'exactly the paper\'s per-worker batch of 32; scaled to MN-1\'s '
                   'P100s for PCIe by pcie_fp32_ratio.  A slower '
                   'framework (Chainer 3 was not faster than TF) lengthens the '
                   'modelled time and, since communication then weighs less, '
                   'raises the modelled efficiency; see the sensitivity table.'),
    },
    'pcie_fp32_ratio': {
        'value': 9.3 / 10.6,
        'unit': 'FP32 peak of the P100 for PCIe / that of the P100 SXM2',
        'source': ('NVIDIA Tesla P100 datasheet: 9.3 TFLOPS FP32 for PCIe (250 W, boost '
                   '~1300 MHz) against 10.6 for SXM2 (300 W, 1480 MHz), the same GP100 '
                   'chip: the ratio is the clock.  MN-1\'s GPUs are the PCIe model: '
                   'PFN\'s blog "MN-1: a GPU cluster behind 15-min ImageNet" '
                   '(tech.preferred.jp, 2017-11-30) gives 4.7 TFLOPS double precision '
                   'per GPU, the PCIe figure (SXM2: 5.3).  images_per_s was measured on '
                   'SXM2 P100s (DGX-1), so the model multiplies it by this ratio, as if '
                   'training were bound by the SM clock; its memory-bound layers are '
                   'not, so the true slowdown lies between this and none (see the '
                   'sensitivity table).'),
    },
    'images_per_s_low': {
        'value': 90 * paper.IMAGENET_TRAIN / (29 * 3600.0) / 8,
        'unit': 'images/s per GPU (end to end)',
        'source': ('Table 1, He et al. row: 90 epochs in 29 h on 8 Tesla P100 '
                   '(Caffe) = 138 images/s per GPU including data loading and '
                   'intra-node communication.  Used only as a sensitivity case.'),
    },
    'forward_fraction': {
        'value': 1.0 / 3.0,
        'unit': 'forward time / (forward + backward) time',
        'source': ('Rule of thumb: the backward pass costs about twice the '
                   'forward pass (two convolutions per layer: data and weight '
                   'gradients).'),
    },
    'gradient_bytes': {
        'value': 2 * paper.RESNET50_PARAMS,
        'unit': 'bytes per all-reduce',
        'source': ('25,557,032 ResNet-50 parameters (He et al. 2016; models/resnet.py) '
                   'x 2 bytes: the paper all-reduces float16 gradients.'),
    },
    'bn_stat_bytes': {
        'value': 2 * 4 * paper.RESNET50_BN_CHANNELS,
        'unit': 'bytes per validation',
        'source': ('mean and variance (float32) of the 26,560 BN channels of '
                   'ResNet-50, all-reduced once before each validation.'),
    },
    'inter_bandwidth': {
        'value': 6.8e9,
        'unit': 'bytes/s per network adapter',
        'source': ('InfiniBand FDR 4x (Mellanox ConnectX-3/Connect-IB): 4 lanes x '
                   '14.0625 Gbit/s = 56.25 Gbit/s signalling, 64b/66b encoding '
                   '-> 54.5 Gbit/s = 6.8 GB/s of data per direction.'),
    },
    'inter_latency': {
        'value': 6.6e-6,
        'unit': 's per step of a ring that spans nodes',
        'source': ('NCCL\'s own latency model, src/graph/tuning.cc of NCCL 2.5.6 '
                   '(github.com/NVIDIA/nccl; the first release that publishes one, '
                   'NCCL 2.0.5\'s source is not public): hwLat[NET][Ring][Simple] = '
                   '6.6 us, charged to every one of the 2(n-1) steps of a ring '
                   'all-reduce across nodes (latency = baseLat + nsteps * hwLat).  '
                   'Simple is the protocol NCCL uses for large messages such as the '
                   '51 MB gradient.  The FDR adapter\'s own MPI ping-pong latency '
                   '(~0.7 us, Mellanox) is a small part of it; the rest is NCCL\'s '
                   'per-step software path.  NCCL 2.7-2.9 put 9.6 us on the '
                   'node-crossing steps and multiply a large multi-node ring '
                   'all-reduce\'s latency by 1.9 (see inter_latency_nccl27).'),
    },
    'ring_base_latency': {
        'value': 8.4e-6,
        'unit': 's per ring all-reduce',
        'source': ('NCCL 2.5.6 src/graph/tuning.cc: baseLat[Ring][Simple] = 8.4 us, '
                   'added once per collective.'),
    },
    'inter_latency_nccl27': {
        'value': 9.6e-6,
        'unit': 's per node-crossing ring step (sensitivity only)',
        'source': ('NCCL 2.7.3-2.9 src/graph/tuning.cc: hwLat[NET][Ring][Simple] = '
                   '9.6 us on the 2(N-1) steps that cross nodes, hwLat[PCI] on the '
                   'others, and the latency x ring_plateau_nccl27 for an all-reduce '
                   'over several nodes of at least n/16 * 64 KiB ("Plateau effect of '
                   'ring").  A later model of a later NCCL: a sensitivity case.'),
    },
    'ring_plateau_nccl27': {
        'value': 1.9,
        'unit': 'latency factor (sensitivity only)',
        'source': 'NCCL 2.7.3-2.9 src/graph/tuning.cc, ncclTopoGetAlgoTime: lat *= 1.9.',
    },
    'nics_per_node': {
        'value': 1,
        'unit': 'InfiniBand FDR adapters carrying the ring, per node',
        'source': ('MN-1 nodes have two FDR links (56 Gbit/s x 2; PFN\'s MN-1 blog, see '
                   'pcie_fp32_ratio).  A ring sends through one network device (NCCL '
                   'gives each ring its adapter: getDev(ring->id) in src/transport/'
                   'net.cu of NCCL 2.3.5, the first open NCCL 2); how many rings NCCL '
                   '2.0.5 ran on MN-1 is not published.  One adapter here; two (then '
                   'PCIe-bound) in the sensitivity table.'),
    },
    'intra_bandwidth': {
        'value': 12.0e9,
        'unit': 'bytes/s between GPUs of one node',
        'source': ('PCIe gen3 x16: 15.75 GB/s theoretical, about 12 GB/s achieved by '
                   'cudaMemcpy peer/host copies (NVIDIA bandwidthTest); NCCL 2.5.6 '
                   'src/graph/topo.h uses the same PCI_WIDTH 12.  MN-1\'s P100s are '
                   'the PCIe model (see pcie_fp32_ratio), with no NVLink.'),
    },
    'qpi_bandwidth': {
        'value': 8.0e9,
        'unit': 'bytes/s between the two sockets (sensitivity only)',
        'source': ('NCCL 2.5.6 src/graph/topo.h: QPI_WIDTH 8 (GB/s) for Intel CPUs '
                   'before Skylake, as MN-1\'s Xeon E5-2667 (Section 3); NCCL 2.7 '
                   'and later use 6.  Applies if a node\'s ring crosses between the '
                   'sockets, i.e. if its 8 GPUs hang off both; MN-1\'s PCIe layout '
                   'is not published, so this is a sensitivity case.'),
    },
    'intra_latency': {
        'value': 5.7e-6,
        'unit': 's per step of a ring within one node',
        'source': ('NCCL 2.5.6 src/graph/tuning.cc: hwLat[PCI][Ring][Simple] = 5.7 us '
                   '(GPUs linked by PCIe, no NVLink, as MN-1\'s P100s for PCIe; see '
                   'pcie_fp32_ratio).'),
    },
    'hbm_bandwidth': {
        'value': 732e9,
        'unit': 'bytes/s',
        'source': ('NVIDIA Tesla P100 datasheet: 732 GB/s HBM2 (16 GB models, SXM2 and '
                   'PCIe; the 12 GB PCIe model has 549 GB/s, and MN-1\'s memory size is '
                   'not published).'),
    },
    'optimizer_bytes_per_param': {
        'value': 28 + 12,
        'unit': 'bytes of device memory traffic per parameter per iteration',
        'source': ('Hybrid update (paper, Appendix A.1) in float32: reads g, theta, '
                   'Delta, m (16 B), writes theta, Delta, m (12 B) = 28 B; '
                   'float16 pack (read 4, write 2) and unpack (read 2, write 4) '
                   'of the gradients = 12 B.'),
    },
    'per_array_overhead': {
        'value': 20e-6,
        'unit': 's per parameter array per iteration',
        'source': ('Assumed: Chainer calls the update rule of each of the 161 '
                   'parameter arrays from Python and launches CuPy kernels; '
                   'of the order of 10-30 us per array.'),
    },
}


def constant(name):
    """The value of :data:`PAPER_CONSTANTS` ``[name]``."""
    return PAPER_CONSTANTS[name]['value']
