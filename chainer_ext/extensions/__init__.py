"""Chainer ``Extension`` classes of the reproduction (schedules, BN statistics)."""
from chainer_ext.extensions.schedules import AlphaSGDSchedule  # NOQA
from chainer_ext.extensions.schedules import EpochSchedule  # NOQA
from chainer_ext.extensions.schedules import LearningRateSchedule  # NOQA
from chainer_ext.extensions.bn_stats_allreduce import BatchNormStatsAllreduce  # NOQA
