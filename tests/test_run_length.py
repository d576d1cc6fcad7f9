"""Where a run ends: ``--max-iterations`` is a total and never extends ``--epoch``; a resume
that would train nothing, or past what was asked, is refused at start."""
import json
import os
import sys
import types

import pytest

from chainer_ext.job import training_log as report
from chainer_ext.job.run_length import NothingToTrain
from chainer_ext.job.run_length import RunLength
from chainer_ext.job.run_length import check_resume


def trainer_at(iteration, epoch_detail):
    return types.SimpleNamespace(updater=types.SimpleNamespace(
        iteration=iteration, epoch_detail=epoch_detail))


def test_max_iterations_is_a_total_not_a_multiple():
    """Chainer's IntervalTrigger would fire at 20 after a resume at 12 (the next multiple
    of 10); the run must stop at 12 already, as soon as the counter reaches the total."""
    length = RunLength(epochs=2, max_iterations=10, iterations_per_epoch=6)
    assert not length(trainer_at(9, 1.5))
    assert length(trainer_at(10, 10 / 6.0))
    assert length(trainer_at(12, 2.0))


def test_a_total_past_its_multiple_stops_before_the_last_epoch():
    """5 epochs of 6 iterations, --max-iterations 10, resumed past it: at iteration 12
    (epoch_detail 2.0, far from the 5 epochs) the total is exceeded, 12 is no multiple
    of 10, and the run stops there."""
    length = RunLength(epochs=5, max_iterations=10, iterations_per_epoch=6)
    assert length(trainer_at(12, 2.0))
    assert length(trainer_at(11, 11 / 6.0))
    assert not length(trainer_at(9, 1.5))


def test_the_last_epoch_ends_the_run_even_with_more_max_iterations():
    length = RunLength(epochs=2, max_iterations=100, iterations_per_epoch=6)
    assert not length(trainer_at(11, 11 / 6.0))
    assert length(trainer_at(12, 2.0))
    assert not length.stops_early()
    assert length.get_training_length() == (2, 'epoch')


def test_training_length_and_the_start_line():
    length = RunLength(epochs=2, max_iterations=8, iterations_per_epoch=719 / 32.0)
    assert length.epochs_end() == 45  # ceil(2 * 719 / 32): the demo's two epochs
    assert length.stops_early() and length.get_training_length() == (8, 'iteration')
    assert length.describe() == ('stopping at iteration 8 (--max-iterations counts from the '
                                 'start of the run, a resumed one included); --epoch 2 '
                                 'would end it at iteration 45')


def test_resume_at_the_end_of_the_run_trains_nothing(tmp_path):
    manifest = {'iteration': 45, 'epoch': 2, 'epoch_detail': 2.0}
    model = str(tmp_path / 'model.npz')
    with pytest.raises(NothingToTrain) as e:
        check_resume('R/snapshots/epoch-2', manifest, 2, 10, model)
    assert e.value.line == (
        'R/snapshots/epoch-2 is the end of this run (epoch 2 of --epoch 2, iteration 45): '
        'nothing left to train; {} holds its weights (--max-iterations counts from the '
        'start of the run)'.format(model))


def test_resume_at_the_end_of_a_run_without_its_model_finishes_it():
    """Stopped after its last epoch's snapshot but before model.npz was written (a signal
    during the last validation): the job is to finish the run, not to call it done."""
    manifest = {'iteration': 45, 'epoch': 2, 'epoch_detail': 2.0}
    assert check_resume('R/snapshots/epoch-2', manifest, 2, 10, None) is True
    assert check_resume('R/snapshots/iter-30', {'iteration': 30, 'epoch_detail': 1.33},
                        2, 0, None) is False


def test_a_max_iterations_stop_mid_epoch_is_where_its_snapshot_goes():
    length = RunLength(epochs=2, max_iterations=8, iterations_per_epoch=6)
    assert [i for i in range(1, 13) if length.ends_early(trainer_at(i, i / 6.0))] == [8, 9, 10,
                                                                                     11]
    assert not length.ends_early(trainer_at(12, 2.0))          # the last epoch's end
    assert not RunLength(2, 0, 6).ends_early(trainer_at(8, 8 / 6.0))


def test_max_iterations_at_or_below_the_snapshot_is_refused():
    manifest = {'iteration': 30, 'epoch': 1, 'epoch_detail': 1.33}
    with pytest.raises(ValueError) as e:
        check_resume('R/snapshots/iter-30', manifest, 2, 30)
    assert str(e.value) == (
        '--max-iterations 30 is a total, counted from the start of the run, and '
        'R/snapshots/iter-30 is at iteration 30 already: give more than 30 (e.g. '
        '--max-iterations 60 for 30 more)')
    check_resume('R/snapshots/iter-30', manifest, 2, 31)  # one more: fine
    check_resume('R/snapshots/iter-30', manifest, 2, 0)   # no limit: fine


def _log(path, iterations):
    with open(path, 'w') as f:
        json.dump([{'epoch': i // 6, 'iteration': i, 'validation/main/accuracy': 0.5}
                   for i in iterations], f)


def test_final_summary_of_a_stop_before_the_first_epoch(tmp_path):
    out = str(tmp_path)
    length = RunLength(epochs=1, max_iterations=2, iterations_per_epoch=6)
    assert report.final_summary(out, 2, 2 / 6.0, 3.04, length).splitlines() == [
        'train_imagenet.py: stopped at iteration 2 by --max-iterations (epoch 0.33 of 1) '
        'after 3.0 s of training, before the first epoch ended',
        '  validation top-1: n/a (validation runs at the end of each epoch)',
        '  results in {}: config.json, model.npz (python -m chainer_ext.report needs the log '
        'of at least one epoch)'.format(out)]


def test_restore_log_sets_the_later_results_aside(tmp_path):
    """The log of a resumed snapshot replaces one that went further; that log, the model
    and the plots of the abandoned iterations are kept as .superseded-*."""
    out = str(tmp_path)
    _log(os.path.join(out, 'log'), [6, 12, 18])
    for name in ('model.npz', 'loss.png'):
        (tmp_path / name).write_bytes(name.encode())
    restored = [{'epoch': 1, 'iteration': 6, 'validation/main/accuracy': 0.5}]
    log_report = types.SimpleNamespace(log=restored)
    trainer = types.SimpleNamespace(get_extension=lambda name: {'LogReport': log_report}[name])
    assert report.restore_log(trainer, out) == ['log', 'model.npz', 'loss.png']
    with open(os.path.join(out, 'log')) as f:
        assert json.load(f) == restored
    with open(os.path.join(out, '.superseded-log')) as f:
        assert [e['iteration'] for e in json.load(f)] == [6, 12, 18]
    assert (tmp_path / '.superseded-model.npz').read_bytes() == b'model.npz'
    assert not (tmp_path / 'model.npz').exists() and not (tmp_path / 'loss.png').exists()
    assert report.restore_log(trainer, out) == []  # the same log: nothing to do


def _validated_log(path, entries):
    """A log of ``(epoch, iteration, top-1 or None)`` entries, and a config.json beside it."""
    with open(os.path.join(path, 'log'), 'w') as f:
        json.dump([dict({'epoch': e, 'iteration': i, 'main/loss': 1.0},
                        **({} if a is None else {'validation/main/accuracy': a}))
                   for e, i, a in entries], f)
    with open(os.path.join(path, 'config.json'), 'w') as f:
        json.dump({'args': {'epoch': 2}}, f)


def test_final_summary_of_one_epoch_names_its_interpreter(tmp_path):
    """One epoch, one iteration (singular); the next command runs with the interpreter that
    ran the job, whose environment has the report's packages (the ``python`` on PATH may
    not)."""
    out = str(tmp_path)
    _validated_log(out, [(1, 1, 0.5)])
    lines = report.final_summary(out, 1, 1.0, 3.04, RunLength(epochs=1),
                                 python='/opt/my env/bin/python').splitlines()
    assert lines == [
        'train_imagenet.py: finished 1 epoch (1 iteration) in 3.0 s of training, validation '
        'included',
        '  validation top-1: final 50.00% (epoch 1), best 50.00% (epoch 1)',
        '  results in {}: log, config.json, model.npz, snapshots/ and plots'.format(out),
        "  next: '/opt/my env/bin/python' -m chainer_ext.report {}".format(out)]
    assert sys.executable in report.final_summary(out, 1, 1.0, 3.04, RunLength(epochs=1))


def test_final_summary_quotes_no_validation_of_other_weights(tmp_path):
    """A run resumed from epoch 1 with --no-validation: the log's last figure (epoch 1) was
    measured on other weights than the final ones (iteration 12), and is not called final."""
    out = str(tmp_path)
    _validated_log(out, [(1, 6, 0.75), (2, 12, None)])
    lines = report.final_summary(out, 12, 2.0, 3.04, RunLength(epochs=2),
                                 validated=False).splitlines()
    assert lines[:2] == [
        'train_imagenet.py: finished 2 epochs (12 iterations) in 3.0 s of training',
        '  validation top-1: not measured on the final weights (iteration 12: '
        '--no-validation); last measured 75.00% at epoch 1 (iteration 6), best 75.00% '
        '(epoch 1)']
    _validated_log(out, [(1, 6, None)])
    assert report.final_summary(out, 6, 1.0, 3.04, RunLength(epochs=1),
                                validated=False).splitlines()[1] == \
        '  validation top-1: n/a (--no-validation)'


def test_final_summary_of_a_stop_mid_epoch_says_its_weights_were_not_validated(tmp_path):
    out = str(tmp_path)
    _validated_log(out, [(1, 6, 0.5)])
    lines = report.final_summary(out, 8, 8 / 6.0, 3.04, RunLength(2, 8, 6)).splitlines()
    assert lines[:2] == [
        'train_imagenet.py: stopped at iteration 8 by --max-iterations (epoch 1.33 of 2) after '
        '3.0 s of training, validation included',
        '  validation top-1: not measured on the final weights (iteration 8: validation runs '
        'at the end of each epoch); last measured 50.00% at epoch 1 (iteration 6), best 50.00% '
        '(epoch 1)']
