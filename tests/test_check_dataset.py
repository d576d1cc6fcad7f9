"""check_dataset: every defect found once, named by list line; rank split."""
import io
import os

import pytest
from PIL import Image

from chainer_ext.datasets import check_dataset
from chainer_ext.datasets import merge_problems


def _jpeg_bytes(size=(40, 30)):
    buf = io.BytesIO()
    Image.new('RGB', size, (90, 120, 150)).save(buf, 'JPEG', quality=90)
    return buf.getvalue()


@pytest.fixture
def broken(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    good = _jpeg_bytes()
    (root / 'good.JPEG').write_bytes(good)
    (root / 'good2.JPEG').write_bytes(good)
    (root / 'empty.JPEG').write_bytes(b'')
    (root / 'truncated.JPEG').write_bytes(good[:len(good) * 2 // 3])
    (root / 'text.JPEG').write_bytes(b'this is not an image\n' * 20)
    (root / 'png.JPEG').write_bytes(_png())
    lines = [
        'good.JPEG 0',            # 1
        'missing.JPEG 1',         # 2 missing file
        'empty.JPEG 1',           # 3 empty file
        'truncated.JPEG 2',       # 4 truncated JPEG
        'text.JPEG 2',            # 5 not an image
        'good2.JPEG 7',           # 6 label out of range (n_class=5)
        'good2.JPEG x',           # 7 non-integer label
        'good.JPEG 0',            # 8 duplicate of line 1
        '',                       # 9 blank: fine
        'good.JPEG 3',            # 10 same image, other label
        'png.JPEG 4',             # 11 PNG named .JPEG: fine
        'good2.JPEG -2',          # 12 negative label
    ]
    path = tmp_path / 'list.txt'
    path.write_text('\n'.join(lines) + '\n')
    return str(path), str(root)


def _png():
    buf = io.BytesIO()
    Image.new('L', (10, 10), 128).save(buf, 'PNG')
    return buf.getvalue()


EXPECTED = {
    2: 'does not exist',
    3: 'file is empty',
    4: 'truncated',
    5: 'not an image file',
    6: 'label 7 out of range [0, 5)',
    7: "label 'x' is not a non-negative integer",
    8: 'duplicate of line 1',
    10: 'already listed at line 1 with label 0',
    12: 'negative',
}


def _line(problem, list_path):
    assert problem.startswith(list_path + ':')
    return int(problem[len(list_path) + 1:].split(':', 1)[0])


def test_every_defect_reported_once(broken):
    list_path, root = broken
    problems = check_dataset(list_path, root, n_class=5)
    by_line = {_line(p, list_path): p for p in problems}
    assert len(by_line) == len(problems)
    assert sorted(by_line) == sorted(EXPECTED)
    for line, needle in EXPECTED.items():
        assert needle in by_line[line], by_line[line]
    # Image problems name the image file too.
    assert os.path.join(root, 'truncated.JPEG') in by_line[4]
    assert [_line(p, list_path) for p in problems] == sorted(EXPECTED)


def test_without_n_class_only_range_check_is_skipped(broken):
    list_path, root = broken
    lines = {_line(p, list_path) for p in check_dataset(list_path, root)}
    assert lines == set(EXPECTED) - {6}


@pytest.mark.parametrize('size', [2, 3, 5])
def test_ranks_partition_the_lines(broken, size):
    list_path, root = broken
    everything = check_dataset(list_path, root, n_class=5)
    parts = [check_dataset(list_path, root, n_class=5, rank=r, size=size)
             for r in range(size)]
    for r, part in enumerate(parts):
        assert all((_line(p, list_path) - 1) % size == r for p in part)
    assert merge_problems(parts) == everything


def test_whole_file_problems_reported_by_rank_zero(tmp_path):
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n\n')
    assert check_dataset(str(empty), size=2, rank=1) == []
    [problem] = check_dataset(str(empty), size=2, rank=0)
    assert problem.startswith(str(empty) + ': ') and 'no entries' in problem
    missing = str(tmp_path / 'missing.txt')
    [problem] = check_dataset(missing)
    assert problem.startswith(missing + ': cannot read list file')


def test_clean_list_has_no_problems(broken, tmp_path):
    _, root = broken
    path = tmp_path / 'clean.txt'
    path.write_text('good.JPEG 0\ngood2.JPEG 1\npng.JPEG 1\n')
    assert check_dataset(str(path), root, n_class=2) == []


def test_bad_arguments(broken):
    list_path, root = broken
    with pytest.raises(ValueError):
        check_dataset(list_path, root, rank=2, size=2)
    with pytest.raises(ValueError):
        check_dataset(list_path, root, n_class=0)
