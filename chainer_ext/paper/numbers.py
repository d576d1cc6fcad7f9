"""The figures Akiba, Suzuki and Fukuda (2017) report: one source of truth.

Table 1, the headline numbers of Section 4 (897.9 ± 3.3 s, 74.94 ± 0.09 %, 70 % /
80 % scaling efficiency) and the model and data sizes, copied from the paper;
nothing here is measured or modelled.  The report, the cost model and the job
templates read them from here.
"""

#: Paper title and arXiv id, for captions.
CITATION = ('Akiba, Suzuki & Fukuda (2017), "Extremely Large Minibatch SGD: '
            'Training ResNet-50 on ImageNet in 15 Minutes", arXiv:1711.04325')

#: ImageNet-1k (ILSVRC 2012), the data set of every Table 1 row.
IMAGENET_TRAIN = 1281167
IMAGENET_VAL = 50000
IMAGENET_CLASSES = 1000

#: ResNet-50 (fb.resnet.torch variant): trainable parameters, arrays and BN
#: channels (conv weights without bias, BN gamma/beta, fc W/b).
RESNET50_PARAMS = 25557032
RESNET50_PARAM_ARRAYS = 161
RESNET50_BN_CHANNELS = 26560

#: Headline numbers of Section 4 ("Experimental Results"), mean and sd of 5 runs.
HEADLINE = {
    'time_s': 897.9,            # 90 epochs including validation after each epoch
    'time_sd_s': 3.3,
    'top1_percent': 74.94,      # single-crop top-1 on the validation set
    'top1_sd_percent': 0.09,
    'epochs': 90,
    'workers': 1024,            # one MPI process per GPU
    'nodes': 128,
    'gpus_per_node': 8,
    'batch_per_worker': 32,
    'total_batch': 32768,       # written "32k" in the paper
    'eta_base': 12.8,           # 0.1 * 32768 / 256
    'efficiency_vs_1gpu': 0.70,
    'efficiency_vs_1node': 0.80,
    'runs': 5,
}

#: MN-1, the cluster of the paper (Section 3, "Hardware").
HARDWARE = {
    'name': 'MN-1 (Preferred Networks)',
    'nodes': 128,
    'cpus_per_node': '2x Intel Xeon E5-2667 (3.20 GHz, 8 cores)',
    'memory_per_node': '256 GB',
    'gpus_per_node': 8,
    'gpu': 'NVIDIA Tesla P100',
    'interconnect': 'Mellanox InfiniBand FDR',
}

#: Table 1 of the paper, every row, in order.  ``time_s`` is the table's time
#: converted to seconds (the table itself rounds: "15 min" is 897.9 s).
TABLE1 = [
    {'team': 'He et al.', 'hardware': 'Tesla P100 x 8', 'software': 'Caffe',
     'batch': 256, 'time': '29 h', 'time_s': 29 * 3600.0, 'top1': '75.3%',
     'top1_percent': 75.3},
    {'team': 'Goyal et al.', 'hardware': 'Tesla P100 x 256', 'software': 'Caffe2',
     'batch': 8192, 'time': '1 h', 'time_s': 3600.0, 'top1': '76.3%',
     'top1_percent': 76.3},
    {'team': 'Codreanu et al.', 'hardware': 'KNL 7250 x 720',
     'software': 'Intel Caffe', 'batch': 11520, 'time': '62 min',
     'time_s': 62 * 60.0, 'top1': '75.0%', 'top1_percent': 75.0},
    {'team': 'You et al.', 'hardware': 'Xeon 8160 x 1600',
     'software': 'Intel Caffe', 'batch': 16000, 'time': '31 min',
     'time_s': 31 * 60.0, 'top1': '75.3%', 'top1_percent': 75.3},
    {'team': 'this paper', 'hardware': 'Tesla P100 x 1024', 'software': 'Chainer',
     'batch': 32768, 'time': '15 min', 'time_s': 15 * 60.0, 'top1': '74.9%',
     'top1_percent': 74.9},
]

