"""Where a training run ends: at the end of epoch ``--epoch``, or earlier at ``--max-iterations``.

``--max-iterations N`` is a total: the run stops once its iteration counter, which
a resumed run continues from its snapshot, reaches N.  It never extends a run past
``--epoch``, whose end every schedule is compressed to (Appendix A).  Resuming a
snapshot at or past the end trains nothing: :func:`check_resume` says so before
any model is built.
"""
import math
import os


class RunLength(object):
    """Stop trigger of the trainer (see the module doc).

    Args:
        epochs (int): ``--epoch``.
        max_iterations (int): ``--max-iterations`` (0: none).
        iterations_per_epoch (float): this rank's shard over its batch size,
            for the progress bar's length.
    """

    def __init__(self, epochs, max_iterations=0, iterations_per_epoch=None):
        self.epochs = int(epochs)
        self.max_iterations = int(max_iterations or 0)
        self.iterations_per_epoch = iterations_per_epoch

    def __call__(self, trainer):
        updater = trainer.updater
        return updater.epoch_detail >= self.epochs or bool(
            self.max_iterations and updater.iteration >= self.max_iterations)

    def epochs_end(self):
        """The iteration at which epoch ``epochs`` ends (None if unknown)."""
        if self.iterations_per_epoch is None:
            return None
        return int(math.ceil(self.epochs * self.iterations_per_epoch - 1e-9))

    def stops_early(self):
        """True when --max-iterations ends the run before its last epoch does."""
        end = self.epochs_end()
        return bool(self.max_iterations) and (end is None or self.max_iterations < end)

    def get_training_length(self):
        """``(length, unit)``, as Chainer's ProgressBar asks of its stop trigger."""
        if self.stops_early():
            return self.max_iterations, 'iteration'
        return self.epochs, 'epoch'

    def describe(self):
        """The line rank 0 prints at start when --max-iterations ends the run early."""
        end = self.epochs_end()
        return ('stopping at iteration {} (--max-iterations counts from the start of the '
                'run, a resumed one included){}'.format(
                    self.max_iterations, '' if end is None else
                    '; --epoch {} would end it at iteration {}'.format(self.epochs, end)))


class NothingToTrain(Exception):
    """The snapshot to resume from is the end of the run; ``line`` says so."""

    def __init__(self, line):
        super(NothingToTrain, self).__init__(line)
        self.line = line


def check_resume(path, manifest, epochs, max_iterations, out):
    """Refuse a resume that would train nothing, or past what was asked.

    Raises :class:`NothingToTrain` when the snapshot ``path`` (its ``manifest``)
    ends the run (its last epoch), and ``ValueError`` with one line when
    ``--max-iterations`` is at or below the snapshot's iteration.
    """
    iteration = int(manifest['iteration'])
    done = float(manifest.get('epoch_detail', manifest.get('epoch', 0)))
    if done >= epochs:
        raise NothingToTrain(
            '{} is the end of this run (epoch {} of --epoch {}, iteration {}): nothing left '
            'to train; {}{}'.format(
                path, int(done), epochs, iteration, _weights(out),
                ' (--max-iterations counts from the start of the run)'
                if max_iterations else ''))
    if max_iterations and max_iterations <= iteration:
        raise ValueError(
            '--max-iterations {} is a total, counted from the start of the run, and {} is '
            'at iteration {} already: give more than {} (e.g. --max-iterations {} for {} '
            'more)'.format(max_iterations, path, iteration, iteration,
                           iteration + max_iterations, max_iterations))


def _weights(out):
    model = os.path.join(out, 'model.npz')
    if os.path.exists(model):
        return '{} holds its weights'.format(model)
    return 'the snapshot holds its weights'
