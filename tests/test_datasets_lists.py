"""List files (read/write) and the ILSVRC2012 list builder."""
import os
import pickle
import subprocess
import sys

import numpy
import pytest
from PIL import Image

from chainer_ext.datasets import count_classes
from chainer_ext.datasets import ImageList
from chainer_ext.datasets import ListFileError
from chainer_ext.datasets import read_image_list
from chainer_ext.datasets import write_image_list
from chainer_ext.datasets import make_lists


def _write(tmp_path, data, name='list.txt'):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


# --------------------------------------------------------------- read/write

def test_read_basic_spaces_tabs_crlf_and_blank_lines(tmp_path):
    path = _write(tmp_path, (
        'train/n01/a.JPEG 0\n'
        '\n'
        'train/n01/with space.JPEG\t1\r\n'
        '   \t \n'
        '  padded/path.jpg   \t 2  \n'
        'train/n02/b.JPEG 12'))  # no final newline
    pairs = read_image_list(path, root='/data')
    assert isinstance(pairs, ImageList) and isinstance(pairs, list)
    assert list(pairs) == [('train/n01/a.JPEG', 0),
                           ('train/n01/with space.JPEG', 1),
                           ('padded/path.jpg', 2),
                           ('train/n02/b.JPEG', 12)]
    assert pairs.lines == [1, 3, 5, 6]
    assert pairs.n_class == 13 == count_classes(pairs)
    assert pairs.full_path(1) == '/data/train/n01/with space.JPEG'
    assert pairs.where(2) == '{}:5'.format(path)
    copy = pickle.loads(pickle.dumps(pairs))
    assert copy == pairs and copy.lines == pairs.lines
    assert copy.source == path and copy.root == '/data'


@pytest.mark.parametrize('content,line,needle', [
    ('', None, 'no entries'),
    ('\n  \n\t\n', None, 'no entries'),
    ('a.jpg 0\nb.jpg\n', 2, 'missing label'),
    ('a.jpg 0\n\n7\n', 3, 'missing label'),
    ('a.jpg zero\n', 1, 'not a non-negative integer'),
    ('a.jpg 1.5\n', 1, 'not a non-negative integer'),
    ('a.jpg +3\n', 1, 'not a non-negative integer'),
    ('a.jpg \u0663\n', 1, 'not a non-negative integer'),  # Arabic-Indic 3
    ('a.jpg 0\nb.jpg -1\n', 2, 'negative'),
    ('a.jpg 99999999999\n', 1, 'int32'),
    ('a\0b.jpg 1\n', 1, 'NUL'),
])
def test_read_errors_name_file_and_line(tmp_path, content, line, needle):
    path = _write(tmp_path, content)
    with pytest.raises(ListFileError) as info:
        read_image_list(path)
    err = info.value
    assert err.path == path and err.line == line
    prefix = path + (':{}: '.format(line) if line else ': ')
    assert str(err).startswith(prefix)
    assert needle in str(err)
    assert pickle.loads(pickle.dumps(err)).line == line


def test_read_invalid_utf8_and_missing_file(tmp_path):
    path = _write(tmp_path, b'a.jpg 0\n\xff\xfe.jpg 1\n')
    with pytest.raises(ListFileError, match=r':2: not valid UTF-8'):
        read_image_list(path)
    missing = str(tmp_path / 'nope.txt')
    with pytest.raises(ListFileError, match='cannot read list file'):
        read_image_list(missing)


def test_write_round_trip_and_rejections(tmp_path):
    pairs = [('a b/c.JPEG', 3), ('d.png', numpy.int64(0))]
    path = str(tmp_path / 'out.txt')
    write_image_list(path, pairs)
    assert list(read_image_list(path)) == [('a b/c.JPEG', 3), ('d.png', 0)]
    for bad in [('x\ny', 0), (' lead', 0), ('', 0), ('ok', -1), ('ok', 'a')]:
        with pytest.raises(ValueError):
            write_image_list(path, [bad])
    assert os.listdir(str(tmp_path)) == ['out.txt']  # no temp files left


# ------------------------------------------------------------ make_lists

SYNSETS = ['n01440764', 'n01443537', 'n02102040']
# The devkit's ILSVRC2012_ID order differs from the sorted order.
ID_ORDER = ['n02102040', 'n01440764', 'n01443537']


def _jpeg(path):
    Image.new('RGB', (8, 8), (10, 20, 30)).save(str(path), quality=90)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / 'ILSVRC2012'
    for k, syn in enumerate(SYNSETS):
        d = root / 'train' / syn
        d.mkdir(parents=True)
        for j in range(k + 1):
            _jpeg(d / '{}_{}.JPEG'.format(syn, j))
        (d / 'notes.txt').write_text('not an image')
    val = root / 'val'
    val.mkdir()
    # Image k+1 is of class VAL_CLASSES[k] (sorted index).
    val_classes = [2, 0, 1, 1, 0]
    for k in range(len(val_classes)):
        _jpeg(val / 'ILSVRC2012_val_{:08d}.JPEG'.format(k + 1))
    (root / 'train' / '.DS_Store').write_text('')
    return root, val_classes


def _read(out, name):
    return list(read_image_list(os.path.join(str(out), name)))


def _check_val(out, val_classes):
    assert _read(out, 'val.txt') == [
        ('val/ILSVRC2012_val_{:08d}.JPEG'.format(k + 1), c)
        for k, c in enumerate(val_classes)]


def test_train_list_sorted_synsets(tree, tmp_path):
    root, _ = tree
    out = tmp_path / 'lists'
    assert make_lists.main(['--root', str(root), '--train', 'train',
                            '--out', str(out)]) == 0
    assert (out / 'synsets.txt').read_text().split() == SYNSETS
    train = _read(out, 'train.txt')
    assert train == [('train/{}/{}_{}.JPEG'.format(s, s, j), k)
                     for k, s in enumerate(SYNSETS) for j in range(k + 1)]


def test_val_from_ground_truth_and_synset_order_text(tree, tmp_path):
    root, val_classes = tree
    gt = tmp_path / 'ILSVRC2012_validation_ground_truth.txt'
    # ILSVRC2012_ID (1-based, devkit order) of each validation image.
    gt.write_text(''.join('{}\n'.format(ID_ORDER.index(SYNSETS[c]) + 1)
                          for c in val_classes))
    order = tmp_path / 'synset_order.txt'
    order.write_text(''.join('{} some words\n'.format(s) for s in ID_ORDER))
    out = tmp_path / 'lists'
    assert make_lists.main([
        '--root', str(root), '--train', 'train', '--val', 'val',
        '--val-ground-truth', str(gt), '--synset-order', str(order),
        '--out', str(out)]) == 0
    _check_val(out, val_classes)


def test_val_from_devkit_meta_mat(tree, tmp_path):
    scipy_io = pytest.importorskip('scipy.io')
    root, val_classes = tree
    gt = tmp_path / 'gt.txt'
    gt.write_text(''.join('{}\n'.format(ID_ORDER.index(SYNSETS[c]) + 1)
                          for c in val_classes))
    # Leaves have IDs 1..3 in ID_ORDER; an inner node (ID 4) is ignored.
    dtype = [('ILSVRC2012_ID', 'O'), ('WNID', 'O'), ('num_children', 'O')]
    rows = [(k + 1, s, 0) for k, s in enumerate(ID_ORDER)]
    rows.append((4, 'n00001740', 3))
    synsets = numpy.array(rows, dtype=dtype)
    meta = tmp_path / 'meta.mat'
    scipy_io.savemat(str(meta), {'synsets': synsets})
    out = tmp_path / 'lists'
    assert make_lists.main([
        '--root', str(root), '--train', 'train', '--val', 'val',
        '--val-ground-truth', str(gt), '--synset-order', str(meta),
        '--out', str(out)]) == 0
    _check_val(out, val_classes)


def test_val_from_loc_csv_and_filename_synset_text(tree, tmp_path):
    root, val_classes = tree
    csv = tmp_path / 'LOC_val_solution.csv'
    csv.write_text('ImageId,PredictionString\n' + ''.join(
        'ILSVRC2012_val_{:08d},{} 1 2 3 4 {} 5 6 7 8\n'.format(
            k + 1, SYNSETS[c], SYNSETS[c])
        for k, c in reversed(list(enumerate(val_classes)))))
    text = tmp_path / 'val_labels.txt'
    text.write_text(''.join('ILSVRC2012_val_{:08d}.JPEG {}\n'.format(
        k + 1, SYNSETS[c]) for k, c in enumerate(val_classes)))
    caffe = tmp_path / 'caffe_val.txt'
    caffe.write_text(''.join('ILSVRC2012_val_{:08d}.JPEG {}\n'.format(
        k + 1, c) for k, c in enumerate(val_classes)))
    for labels in (csv, text, caffe):
        out = tmp_path / ('lists_' + labels.stem)
        assert make_lists.main([
            '--root', str(root), '--train', 'train', '--val', 'val',
            '--val-labels', str(labels), '--out', str(out)]) == 0
        _check_val(out, val_classes)


def test_val_class_subfolders_and_given_synsets(tree, tmp_path):
    root, _ = tree
    val = root / 'val_sorted'
    (val / SYNSETS[1]).mkdir(parents=True)
    _jpeg(val / SYNSETS[1] / 'x.JPEG')
    synsets = tmp_path / 'synsets.txt'
    synsets.write_text('\n'.join(SYNSETS) + '\n')
    out = tmp_path / 'lists'
    assert make_lists.main(['--root', str(root), '--val', 'val_sorted',
                            '--synsets', str(synsets), '--out', str(out)]) == 0
    assert _read(out, 'val.txt') == [
        ('val_sorted/{}/x.JPEG'.format(SYNSETS[1]), 1)]
    assert not (out / 'train.txt').exists()


def test_make_lists_errors(tree, tmp_path, capsys):
    root, val_classes = tree
    out = str(tmp_path / 'lists')
    base = ['--root', str(root), '--out', out]
    # An unlabelled validation image.
    labels = tmp_path / 'few.txt'
    labels.write_text('ILSVRC2012_val_00000001.JPEG {}\n'.format(SYNSETS[2]))
    assert make_lists.main(base + ['--train', 'train', '--val', 'val',
                                   '--val-labels', str(labels)]) == 2
    assert 'have no label' in capsys.readouterr().err
    # An unknown synset.
    labels.write_text('ILSVRC2012_val_00000001.JPEG n99999999\n')
    assert make_lists.main(base + ['--train', 'train', '--val', 'val',
                                   '--val-labels', str(labels)]) == 2
    assert 'unknown class' in capsys.readouterr().err
    # A flat validation folder without labels; --val alone without synsets.
    assert make_lists.main(base + ['--train', 'train', '--val', 'val']) == 2
    assert make_lists.main(base + ['--val', 'val']) == 2
    assert 'needs --synsets' in capsys.readouterr().err
    # Ground truth without the synset order.
    gt = tmp_path / 'gt.txt'
    gt.write_text('1\n')
    assert make_lists.main(base + ['--train', 'train', '--val', 'val',
                                   '--val-ground-truth', str(gt)]) == 2
    assert '--synset-order' in capsys.readouterr().err


def test_make_lists_help_runs_as_module():
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.datasets.make_lists', '--help'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
        universal_newlines=True)
    assert proc.returncode == 0
    assert '--val-ground-truth' in proc.stdout and '--root' in proc.stdout


def test_readme_command_reads_every_input_under_root(tree, tmp_path, monkeypatch):
    """README's command (--val-labels LOC_val_solution.csv beside train/ and val/) used to
    look for the CSV in the current folder and crash after writing train.txt."""
    root, val_classes = tree
    (root / 'LOC_val_solution.csv').write_text('ImageId,PredictionString\n' + ''.join(
        'ILSVRC2012_val_{:08d},{} 1 2 3 4\n'.format(k + 1, SYNSETS[c])
        for k, c in enumerate(val_classes)))
    monkeypatch.chdir(tmp_path)
    assert make_lists.main(['--root', str(root), '--train', 'train', '--val', 'val',
                            '--val-labels', 'LOC_val_solution.csv', '--out', 'lists']) == 0
    _check_val(tmp_path / 'lists', val_classes)


def test_a_missing_input_is_one_line_and_writes_nothing(tree, tmp_path, capsys):
    root, _ = tree
    out = tmp_path / 'lists'
    assert make_lists.main(['--root', str(root), '--train', 'train', '--val', 'val',
                            '--val-labels', 'LOC_val_solution.csv', '--out', str(out)]) == 2
    assert capsys.readouterr().err == (
        'make_lists: error: --val-labels LOC_val_solution.csv: no such file ({}; input '
        'paths are relative to --root unless absolute)\n'.format(
            root / 'LOC_val_solution.csv'))
    assert not out.exists()


def test_a_bad_validation_set_writes_no_training_list_either(tree, tmp_path, capsys):
    root, _ = tree
    labels = tmp_path / 'few.txt'
    labels.write_text('ILSVRC2012_val_00000001.JPEG {}\n'.format(SYNSETS[2]))
    out = tmp_path / 'lists'
    assert make_lists.main(['--root', str(root), '--train', 'train', '--val', 'val',
                            '--val-labels', str(labels), '--out', str(out)]) == 2
    assert 'have no label' in capsys.readouterr().err
    assert not out.exists() or os.listdir(str(out)) == []


def test_an_empty_class_folder_is_refused(tree, tmp_path, capsys):
    root, _ = tree
    (root / 'train' / 'n09999999').mkdir()
    out = tmp_path / 'lists'
    assert make_lists.main(['--root', str(root), '--train', 'train', '--out', str(out)]) == 2
    assert capsys.readouterr().err == (
        'make_lists: error: {}: class folder(s) without images: n09999999 (an unfinished '
        'copy?); fill or remove them\n'.format(root / 'train'))
    assert not out.exists()
