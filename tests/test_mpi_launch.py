import pytest

from chainer_ext.job.mpiexec import mpiexec_command


def test_command_shape():
    cmd = mpiexec_command(3, ['python', 'x.py'], mca={'btl': 'tcp,self'})
    assert cmd[1:3] == ['-n', '3']
    assert cmd[-2:] == ['python', 'x.py']
    i = cmd.index('--mca')
    assert cmd[i + 1:i + 3] == ['btl', 'tcp,self']


def test_rejects_zero_ranks():
    with pytest.raises(ValueError, match='0'):
        mpiexec_command(0, ['true'])


@pytest.mark.parametrize('n', [2, 3])
def test_real_multiprocess_allreduce(mpirun, n):
    mpirun(n, 'smoke_allreduce.py', timeout=120)
