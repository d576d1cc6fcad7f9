"""Where a training run ends: at the end of epoch ``--epoch``, or earlier at ``--max-iterations``.

``--max-iterations N`` is a total: the run stops once its iteration counter, which
a resumed run continues from its snapshot, reaches N, and leaves a snapshot there
(:meth:`RunLength.ends_early`) for a later resume to continue from.  It never extends
a run past ``--epoch``, whose end every schedule is compressed to (Appendix A).
Resuming the snapshot at the end of the run trains nothing: :func:`check_resume`
says so before any model is built, or, when its ``model.npz`` was never written,
has the job finish it.
"""
import math


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

    def ends_early(self, trainer):
        """True at the iteration where --max-iterations ends the run before its last epoch
        has ended (a trigger: the run's snapshot there)."""
        updater = trainer.updater
        return bool(self.max_iterations and updater.iteration >= self.max_iterations
                    and updater.epoch_detail < self.epochs)

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


def check_resume(path, manifest, epochs, max_iterations, model=None):
    """Refuse a resume that would train nothing, or past what was asked.

    When the snapshot ``path`` (its ``manifest``) ends the run (its last epoch): raises
    :class:`NothingToTrain` if ``model`` (a ``model.npz`` holding the snapshot's weights,
    or None) is given, else returns True: the run ended before writing its model, and
    the job only finishes it.  Otherwise returns False, or raises ``ValueError`` with one
    line when ``--max-iterations`` is at or below the snapshot's iteration.
    """
    iteration = int(manifest['iteration'])
    done = float(manifest.get('epoch_detail', manifest.get('epoch', 0)))
    if done >= epochs:
        if model is None:
            return True
        raise NothingToTrain(
            '{} is the end of this run (epoch {} of --epoch {}, iteration {}): nothing left '
            'to train; {} holds its weights{}'.format(
                path, int(done), epochs, iteration, model,
                ' (--max-iterations counts from the start of the run)'
                if max_iterations else ''))
    if max_iterations and max_iterations <= iteration:
        raise ValueError(
            '--max-iterations {} is a total, counted from the start of the run, and {} is '
            'at iteration {} already: give more than {} (e.g. --max-iterations {} for {} '
            'more)'.format(max_iterations, path, iteration, iteration,
                           iteration + max_iterations, max_iterations))
    return False
