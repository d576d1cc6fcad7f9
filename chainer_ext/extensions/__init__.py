"""Chainer ``Extension`` classes of the reproduction (schedules, BN statistics)."""
from chainer_ext.extensions.bn_stats_allreduce import BatchNormStatsAllreduce
from chainer_ext.extensions.epoch_schedule import EpochSchedule
