"""Chainer ``Extension`` classes of the reproduction (schedules, BN statistics)."""
