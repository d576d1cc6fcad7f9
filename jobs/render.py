#!/usr/bin/env python3
"""Render the batch-job templates of ``jobs/templates/`` for a given size.

Scheduler directives (``#SBATCH --nodes=``, ``#PBS -l select=``) cannot read
shell variables, so the number of nodes has to be written into the directives
and into the script's variables alike.  This renderer does both from one
``--nodes`` (and optionally ``--gpus-per-node``)::

    python jobs/render.py slurm-gpu --nodes 16 > job.sh       # 16 x 8 GPUs
    python jobs/render.py pbs-gpu --nodes 4 -o job.pbs
    python jobs/render.py slurm-cpu --nodes 8 --cpus-per-node 64
    python jobs/render.py --regenerate    # rewrite the checked-in scripts
    python jobs/render.py --check         # fail if they are out of date

Templates use ``{{NAME}}`` placeholders; every placeholder must be filled.
The GPU scripts' walltime defaults to the cost model's 90-epoch time on
MN-1-like nodes (:mod:`chainer_ext.cost_model`) x 2 + 15 min, capped at 24 h
(the job resumes with ``--resume auto`` when resubmitted).
"""
import argparse
import importlib
import math
import os
import re
import shlex
import sys

JOBS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(JOBS_DIR)
TEMPLATES = os.path.join(JOBS_DIR, 'templates')

KINDS = {
    # kind: (template, default nodes, ranks per node, cores per node, gpu)
    'slurm-gpu': ('slurm_gpu.sh.in', 128, 8, 16, True),
    'pbs-gpu': ('pbs_gpu.sh.in', 128, 8, 16, True),
    'slurm-cpu': ('slurm_cpu.sh.in', 4, 1, 32, False),
    'pbs-cpu': ('pbs_cpu.sh.in', 4, 1, 32, False),
}

#: The checked-in, directly submittable scripts: kind -> file name in jobs/.
CHECKED_IN = {kind: '{}_{}nodes.sh'.format(kind.replace('-', '_'), KINDS[kind][1])
              for kind in KINDS}

_WALLTIME = re.compile(r'^\d{1,3}:[0-5]\d:[0-5]\d$')

#: Seconds before the time limit at which the ranks are told to stop: enough to
#: finish an iteration (or a validation) and write a snapshot.
STOP_SECONDS = 600
#: How each scheduler tells the script to stop, and how the script requeues itself.
PREEMPTION = {
    'slurm': dict(
        STOP_NOTE='Slurm sends SIGUSR1 to this script STOP_SECONDS s before the time '
                  'limit\n# (#SBATCH --signal=B:USR1@STOP_SECONDS).',
        STOP_TIMER='',
        REQUEUE='scontrol requeue "${SLURM_JOB_ID:?}"  # same job id; needs #SBATCH --requeue'),
    'pbs': dict(
        STOP_NOTE='PBS has no early signal: a timer here sends SIGUSR1 STOP_SECONDS s '
                  'before the walltime\n# (PBS itself sends SIGTERM at the walltime, or '
                  "on qdel, then SIGKILL after the queue's\n# kill_delay: a SIGTERM is "
                  'forwarded too, but may leave too little time to snapshot).',
        STOP_TIMER='    ( sleep {{STOP_AFTER}} && kill -USR1 $$ ) >/dev/null 2>&1 &  # at walltime '
                   '- STOP_SECONDS s\n    local timer=$!\n    trap \'kill "$timer" 2>/dev/null '
                   '|| true\' RETURN',
        REQUEUE='qsub "$JOB_SCRIPT"  # a new job; "qrerun" would need operator rights'),
}


def _hms(seconds):
    s = int(seconds)
    return '{:02d}:{:02d}:{:02d}'.format(s // 3600, s % 3600 // 60, s % 60)


def _project_module(name):
    """``chainer_ext.<name>`` of this checkout (the renderer runs without installing it)."""
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    return importlib.import_module('chainer_ext.' + name)


def modelled_walltime(ranks, batchsize, max_hours=24.0):
    """(walltime string, note) from the cost model of the paper's machine."""
    cost_model = _project_module('paper.cost_model.model')
    t = cost_model.predict(cost_model.paper_machine(), ranks, batchsize, 90)['t_total']
    want = 2 * t + 15 * 60
    want = math.ceil(want / 900.0) * 900          # whole quarter hours
    cap = max_hours * 3600
    note = 'cost model: 90 epochs in {:.0f} min on P100/FDR nodes, x2 + 15 min'.format(t / 60)
    if want > cap:
        want = cap
        note += ', capped at {:g} h: resubmit to continue'.format(max_hours)
    return _hms(want), note


def check_size(nodes, ranks_per_node, batchsize, cpus_per_task, loaderjob, walltime):
    """Warnings about a size that runs badly; ValueError for one that cannot run."""
    paper = _project_module('paper.numbers')
    ranks = nodes * ranks_per_node
    total = ranks * batchsize
    if total > paper.IMAGENET_TRAIN:
        raise ValueError(
            '{} nodes x {} ranks x {} images = {:,} images per iteration, more than '
            "ImageNet's {:,} training images: no rank would get one batch per epoch "
            '(at most {:,} nodes at this size)'.format(
                nodes, ranks_per_node, batchsize, total, paper.IMAGENET_TRAIN,
                paper.IMAGENET_TRAIN // (ranks_per_node * batchsize)))
    hours, minutes, secs = (int(x) for x in walltime.split(':'))
    if 3600 * hours + 60 * minutes + secs <= STOP_SECONDS:
        raise ValueError('walltime {} is not longer than the {} s before the limit at which '
                         'the job is told to stop: it would stop as soon as it starts'
                         .format(walltime, STOP_SECONDS))
    warnings = []
    largest = paper.HEADLINE['total_batch']
    if total > largest:
        warnings.append('total batch {:,} is larger than the paper\'s {:,} (the largest the '
                        'recipe was shown to train)'.format(total, largest))
    if loaderjob > cpus_per_task:
        warnings.append('{} loader processes per rank but {} core(s) per rank: the loaders '
                        'and the rank compete for the cores (use --loaderjob {} or more '
                        '--cpus-per-node)'.format(loaderjob, cpus_per_task,
                                                   max(1, cpus_per_task - 1)))
    return warnings


def _command(kind, nodes, gpus_per_node, batchsize, cpus_per_node, walltime, job_name,
             loaderjob, directives, script_name):
    """The arguments of ``python jobs/render.py`` that render this script: every option
    given (the batch size when not 32, ``-o`` when not job.sh), shell-quoted."""
    words = [kind, '--nodes', nodes]
    for flag, value in (('--gpus-per-node', gpus_per_node),
                        ('--batchsize', None if int(batchsize) == 32 else batchsize),
                        ('--cpus-per-node', cpus_per_node), ('--loaderjob', loaderjob),
                        ('--walltime', walltime), ('--job-name', job_name)):
        if value is not None:
            words += [flag, value]
    for d in directives:
        words += ['--directive', d]
    if script_name not in (None, 'job.sh'):
        words += ['-o', script_name]
    return ' '.join(shlex.quote(str(w)) for w in words)


def render(kind, nodes=None, gpus_per_node=None, batchsize=32, cpus_per_node=None,
           walltime=None, job_name=None, loaderjob=None, directives=(),
           script_name=None, on_warning=None):
    """Return the text of a job script; raises ValueError on sizes that cannot run
    and calls ``on_warning(line)`` for each that runs badly."""
    if kind not in KINDS:
        raise ValueError('unknown kind {!r}; choose from {}'.format(kind, sorted(KINDS)))
    template, d_nodes, d_gpn, d_cpus, gpu = KINDS[kind]
    argv = _command(kind, d_nodes if nodes is None else nodes, gpus_per_node, batchsize,
                    cpus_per_node, walltime, job_name, loaderjob, directives, script_name)
    nodes = d_nodes if nodes is None else int(nodes)
    gpn = d_gpn if gpus_per_node is None else int(gpus_per_node)
    cpus = d_cpus if cpus_per_node is None else int(cpus_per_node)
    batchsize = int(batchsize)
    if nodes < 1 or gpn < 1 or batchsize < 1:
        raise ValueError('nodes, ranks per node and batch size must be >= 1')
    if cpus < gpn:
        raise ValueError('cpus per node ({}) < ranks per node ({})'.format(cpus, gpn))
    ranks = nodes * gpn
    cpus_per_task = cpus // gpn
    if loaderjob is None:
        loaderjob = cpus_per_task if gpu else max(1, min(4, cpus_per_task // 4))
    if int(loaderjob) < 0:
        raise ValueError('loader processes must be >= 0, got {}'.format(loaderjob))
    if walltime is None:
        if gpu:
            walltime, note = modelled_walltime(ranks, batchsize)
        else:
            walltime, note = '24:00:00', 'resubmit to continue'
    else:
        note = 'set with --walltime'
    if not _WALLTIME.match(walltime):
        raise ValueError('walltime must be HH:MM:SS, got {!r}'.format(walltime))
    for line in check_size(nodes, gpn, batchsize, cpus_per_task, int(loaderjob), walltime):
        if on_warning is not None:
            on_warning(line)
    if job_name is None:
        job_name = ('resnet50-{}x{}'.format(nodes, gpn) if gpu
                    else 'akiba-cpu-{}x{}'.format(nodes, gpn))
    for d in directives:
        if not d.startswith('#SBATCH' if kind.startswith('slurm') else '#PBS'):
            raise ValueError('directive {!r} does not suit {}'.format(d, kind))
    if script_name is None:
        script_name = 'job.sh'
    hours, minutes, secs = (int(x) for x in walltime.split(':'))
    stop_after = max(60, 3600 * hours + 60 * minutes + secs - STOP_SECONDS)
    values = {
        'STOP_SECONDS': STOP_SECONDS, 'STOP_AFTER': stop_after,
        'GENERATED': ('Generated by "python jobs/render.py {}" from '
                      'jobs/templates/{}; edit the template, then re-render.'
                      .format(argv, template)),
        'SCRIPT_NAME': script_name,
        'NODES': nodes, 'GPUS_PER_NODE': gpn, 'RANKS': ranks,
        'BATCHSIZE': batchsize, 'TOTAL_BATCH': ranks * batchsize,
        'CPUS_PER_NODE': cpus, 'CPUS_PER_TASK': cpus_per_task,
        'LOADERJOB': int(loaderjob), 'WALLTIME': walltime, 'WALLTIME_NOTE': note,
        'JOB_NAME': job_name, 'KIND': kind,
    }
    with open(os.path.join(TEMPLATES, template)) as f:
        text = f.read()
    with open(os.path.join(TEMPLATES, 'run_and_requeue.sh.part')) as f:
        snippet = f.read()
    for key, value in PREEMPTION[kind.split('-')[0]].items():
        value = value.replace('STOP_SECONDS', str(STOP_SECONDS))
        snippet = snippet.replace('{{%s}}%s' % (key, '' if value else '\n'), value)
    text = text.replace('{{RUN_AND_REQUEUE}}\n', snippet)
    with open(os.path.join(TEMPLATES, 'check_inputs.sh.part')) as f:
        text = text.replace('{{CHECK_INPUTS}}\n', f.read())
    extra = ''.join(d + '\n' for d in directives)
    text = text.replace('{{EXTRA_DIRECTIVES}}\n', extra)

    def fill(m):
        key = m.group(1)
        if key not in values:
            raise ValueError('template {} has unknown placeholder {{{{{}}}}}'
                             .format(template, key))
        return str(values[key])
    text = re.sub(r'\{\{([A-Z_]+)\}\}', fill, text)
    if '{{' in text:
        raise ValueError('unfilled placeholder left in {}'.format(template))
    return text


def checked_in_texts():
    """kind -> (path, text) of the scripts committed in jobs/."""
    out = {}
    for kind, name in CHECKED_IN.items():
        out[kind] = (os.path.join(JOBS_DIR, name),
                     render(kind, script_name='jobs/' + name))
    return out


def main(argv=None):
    flag_types = _project_module('job.flag_types')
    ap = flag_types.OneLineParser(  # an error is its one line, without the usage block
        prog='python jobs/render.py', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='kinds: ' + ', '.join(
            '{} (default {} nodes x {} ranks)'.format(k, v[1], v[2])
            for k, v in KINDS.items()))
    ap.add_argument('kind', nargs='?', choices=sorted(KINDS))
    ap.add_argument('--nodes', type=flag_types.positive_int,
                    help='number of nodes (the one size knob)')
    ap.add_argument('--gpus-per-node', '--ranks-per-node', dest='gpus_per_node',
                    type=flag_types.positive_int, help='MPI ranks (GPUs) per node')
    ap.add_argument('--batchsize', type=flag_types.positive_int, default=32,
                    help='images per rank (32)')
    ap.add_argument('--cpus-per-node', type=flag_types.positive_int, help='cores per node')
    ap.add_argument('--loaderjob', type=flag_types.nonnegative_int,
                    help='loader processes per rank')
    ap.add_argument('--walltime', help='HH:MM:SS (default: modelled, see above)')
    ap.add_argument('--job-name')
    ap.add_argument('--directive', action='append', default=[],
                    help='extra scheduler line, e.g. "#SBATCH --partition=gpu"')
    ap.add_argument('-o', '--output', help='write here (executable) instead of stdout')
    ap.add_argument('--regenerate', action='store_true',
                    help='rewrite the checked-in scripts: ' + ', '.join(CHECKED_IN.values()))
    ap.add_argument('--check', action='store_true',
                    help='exit 1 if a checked-in script differs from its template')
    args = ap.parse_args(argv)

    if args.regenerate or args.check:
        stale = []
        for kind, (path, text) in checked_in_texts().items():
            current = open(path).read() if os.path.exists(path) else None
            if current != text:
                stale.append(path)
                if args.regenerate:
                    with open(path, 'w') as f:
                        f.write(text)
                    os.chmod(path, 0o755)
        if args.check and stale:
            print('out of date (run python jobs/render.py --regenerate): '
                  + ' '.join(stale), file=sys.stderr)
            return 1
        for p in stale if args.regenerate else []:
            print('wrote ' + p, file=sys.stderr)
        return 0
    if not args.kind:
        ap.error('give a kind ({}) or --regenerate/--check'.format(', '.join(sorted(KINDS))))
    try:
        text = render(args.kind, args.nodes, args.gpus_per_node, args.batchsize,
                      args.cpus_per_node, args.walltime, args.job_name,
                      args.loaderjob, args.directive,
                      script_name=args.output or 'job.sh',
                      on_warning=lambda line: print('warning: ' + line, file=sys.stderr))
    except ValueError as e:
        ap.error(str(e))
    if args.output:
        with open(args.output, 'w') as f:
            f.write(text)
        os.chmod(args.output, 0o755)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
