"""Chainer ``Extension`` classes of the reproduction, as ``chainermn.extensions`` holds ChainerMN's.

BN statistics averaged over the workers, the epoch schedules, the stop on a signal, the
multi-node evaluator and the multi-node snapshot.
"""
from chainer_ext.extensions.bn_stats_allreduce import BatchNormStatsAllreduce
from chainer_ext.extensions.epoch_schedule import EpochSchedule
from chainer_ext.extensions.multi_node_evaluator import MultiNodeEvaluator
from chainer_ext.extensions.multi_node_snapshot import MultiNodeSnapshot
from chainer_ext.extensions.stop_on_signal import Preempted
from chainer_ext.extensions.stop_on_signal import StopOnSignal
