"""Crop geometry, flips, normalisation, draft decoding and colour modes."""
import io
import math

import numpy
import pytest
from PIL import Image
from PIL import JpegImagePlugin

from chainer_ext.datasets import decode
from chainer_ext.datasets import transforms
from photos import photo_like

SIZE = (224, 224)


def _full(w, h):
    return 0, 0, w, h


# ---------------------------------------------------------------- crop boxes

@pytest.mark.parametrize('width,height,min_area', [
    (500, 375, 0.08), (375, 500, 0.08), (300, 300, 0.5), (1000, 200, 0.08)])
def test_random_sized_crop_ranges(width, height, min_area):
    rng = numpy.random.default_rng(0)
    areas, logs = [], []
    for _ in range(3000):
        left, top, right, bottom = transforms.random_sized_crop_box(
            width, height, rng, min_area=min_area)
        assert all(isinstance(v, int) for v in (left, top, right, bottom))
        assert 0 <= left < right <= width
        assert 0 <= top < bottom <= height
        w, h = right - left, bottom - top
        # Rounding w and h moves area and aspect by at most half a pixel.
        slack = (1 + 0.5 / w) * (1 + 0.5 / h)
        area = w * h / float(width * height)
        assert min_area / slack <= area <= 1.0
        aspect = w / float(h)
        assert 3. / 4. / slack <= aspect <= 4. / 3. * slack
        areas.append(area)
        logs.append(math.log(aspect))
    # The ranges are actually explored (not stuck on the fallback).
    assert min(areas) < min_area + 0.05
    assert max(areas) > 0.9 if width * 3 <= height * 4 + 1 else True
    assert min(logs) < math.log(0.8) and max(logs) > math.log(1.25)


def test_random_sized_crop_aspect_is_fb_resnet_torchs():
    # fb.resnet.torch: aspect r ~ U(3/4, 4/3), then w and h swapped with probability
    # 1/2, so w/h is r or 1/r half the time each:
    # CDF(x) = 1/2 (x - 3/4) / (7/12) + 1/2 (4/3 - 1/x) / (7/12) on [3/4, 4/3].
    # Boxes of area <= 70 % always fit a square image, so for them the attempt
    # that returned is an unconditioned draw.
    rng = numpy.random.default_rng(1)
    ratios = []
    while len(ratios) < 20000:
        l, t, r, b = transforms.random_sized_crop_box(2000, 2000, rng, min_area=0.08)
        if (r - l) * (b - t) <= 0.7 * 2000 * 2000:
            ratios.append((r - l) / float(b - t))
    ratios = numpy.sort(ratios)
    lo, hi = 0.75, 4. / 3.
    cdf = 0.5 * (ratios - lo) / (hi - lo) + 0.5 * (hi - 1 / ratios) / (hi - lo)
    empirical = numpy.arange(1, len(ratios) + 1) / float(len(ratios))
    assert numpy.abs(cdf - empirical).max() < 1.63 / math.sqrt(len(ratios))  # KS, 1 %
    # the swap: as many portrait as landscape boxes (without it, 57 % would be landscape)
    assert abs((ratios > 1).mean() - 0.5) < 0.015


def test_random_sized_crop_fallback_is_scale_then_center_crop():
    # No crop of >= 50 % area with aspect <= 4/3 fits in 1000x10: the centred
    # square of the shorter side, which Scale(insize) + CenterCrop(insize) keeps.
    rng = numpy.random.default_rng(0)
    assert transforms.random_sized_crop_box(1000, 10, rng, min_area=0.5) == (495, 0, 505, 10)
    assert transforms.random_sized_crop_box(10, 1000, rng, min_area=0.5) == (0, 495, 10, 505)
    # A tiny image still gives a valid box.
    assert transforms.random_sized_crop_box(1, 1, rng) == (0, 0, 1, 1)


def test_random_sized_crop_rejects_bad_min_area():
    rng = numpy.random.default_rng(0)
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError):
            transforms.random_sized_crop_box(10, 10, rng, min_area=bad)


def test_random_sized_crop_is_reproducible():
    a = [transforms.random_sized_crop_box(
        640, 480, numpy.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]


@pytest.mark.parametrize('width,height,insize', [
    (500, 375, 224), (375, 500, 224), (256, 256, 224), (64, 48, 32)])
def test_center_crop_box_geometry(width, height, insize):
    left, top, right, bottom = transforms.center_crop_box(width, height,
                                                          insize)
    short = round(insize * 256 / 224.)
    scale = short / float(min(width, height))
    assert (right - left) * scale == pytest.approx(insize)
    assert (bottom - top) * scale == pytest.approx(insize)
    assert (left + right) / 2. == pytest.approx(width / 2.)
    assert (top + bottom) / 2. == pytest.approx(height / 2.)
    assert left >= 0 and top >= 0 and right <= width and bottom <= height


def test_validation_crop_matches_resize_then_centre_crop(tmp_path):
    """One ``resize(box=...)`` == fb.resnet.torch's Scale(256) + CenterCrop(224)."""
    rng = numpy.random.default_rng(3)
    img = photo_like(rng, 500, 375, noise=0)  # smooth: shifts show clearly
    path = str(tmp_path / 'a.png')
    img.save(path)
    got = decode.load_crop(
        path, lambda w, h: transforms.center_crop_box(w, h, 224), SIZE)
    # Reference: shorter side to 256 (long side rounded), then crop 224.
    ref = img.resize((round(500 * 256 / 375.), 256), Image.BICUBIC)
    left = (ref.width - 224) // 2
    top = (ref.height - 224) // 2
    ref = numpy.asarray(ref.crop((left, top, left + 224, top + 224)))
    diff = numpy.abs(got.astype(int) - ref.astype(int))
    # Equal up to the sub-pixel shift of the reference's rounded offset
    # (58 instead of 58.67 px); a 2 px shift would give a mean of ~1.5.
    assert diff.mean() < 1.0
    assert got.shape == ref.shape


# ------------------------------------------------------------ normalisation

def test_normalizer_matches_independent_computation():
    rng = numpy.random.default_rng(0)
    hwc = rng.integers(0, 256, (17, 23, 3)).astype(numpy.uint8)
    out = transforms.normalizer()(hwc)
    assert out.dtype == numpy.float32 and out.shape == (3, 17, 23)
    assert out.flags.c_contiguous
    mean = numpy.array([0.485, 0.456, 0.406])
    std = numpy.array([0.229, 0.224, 0.225])
    ref = ((hwc / 255.0 - mean) / std).transpose(2, 0, 1)
    numpy.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_normalizer_custom_values_and_errors():
    hwc = numpy.full((2, 2, 3), 10, numpy.uint8)
    out = transforms.normalizer(mean=(0, 5, 10), std=(1, 5, 2))(hwc)
    assert out[:, 0, 0].tolist() == [10., 1., 0.]
    with pytest.raises(ValueError):
        transforms.normalizer(std=(1, 0, 1))
    with pytest.raises(ValueError):
        transforms.normalizer()(numpy.zeros((2, 2), numpy.uint8))
    with pytest.raises(ValueError):
        transforms.normalizer()(numpy.zeros((2, 2, 3), numpy.float32))


# ----------------------------------------------------------- decode + crop

def _asymmetric(width=320, height=240):
    """Red left third, a vertical gradient, a blue block top right."""
    arr = numpy.zeros((height, width, 3), numpy.uint8)
    arr[:, : width // 3, 0] = 255
    arr[:, :, 1] = numpy.linspace(0, 255, height)[:, None]
    arr[: height // 4, -width // 4:, 2] = 255
    return Image.fromarray(arr)


def test_output_shape_dtype_and_flip(tmp_path):
    path = str(tmp_path / 'asym.png')
    _asymmetric().save(path)
    plain = decode.load_crop(path, _full, (64, 48))
    flipped = decode.load_crop(path, _full, (64, 48), flip=True)
    assert plain.shape == (48, 64, 3) and plain.dtype == numpy.uint8
    numpy.testing.assert_array_equal(flipped, plain[:, ::-1])
    # The flip really mirrors: red moves from the left to the right.
    assert plain[:, :10, 0].mean() > 250 and plain[:, -10:, 0].mean() < 5
    assert flipped[:, -10:, 0].mean() > 250
    # The vertical gradient is untouched.
    numpy.testing.assert_array_equal(flipped[:, :, 1], plain[:, ::-1, 1])


def test_crop_box_selects_the_region(tmp_path):
    path = str(tmp_path / 'asym.png')
    _asymmetric(300, 200).save(path)
    # The left third is pure red, whatever the resampling.
    red = decode.load_crop(path, lambda w, h: (10, 50, 90, 150), (32, 32))
    assert (red[..., 0] == 255).all() and (red[..., 2] == 0).all()
    blue = decode.load_crop(path, lambda w, h: (240, 5, 290, 45), (16, 16))
    assert (blue[..., 2] == 255).all() and (blue[..., 0] == 0).all()


def _jpeg_with_marker(path, width=2000, height=1500):
    """Photo-like JPEG with a bright square centred at (1300, 500)."""
    rng = numpy.random.default_rng(5)
    img = photo_like(rng, width, height, noise=4)
    arr = numpy.asarray(img).copy() // 2
    arr[450:550, 1250:1350] = 255
    Image.fromarray(arr).save(path, quality=92)


def _centroid(hwc):
    mask = (hwc.min(axis=2) > 200).astype(float)
    ys, xs = numpy.nonzero(mask)
    return xs.mean(), ys.mean()


def test_draft_scale_choice():
    assert decode.draft_scale((0, 0, 2000, 1500), SIZE) == 4
    assert decode.draft_scale((0, 0, 1792, 1792), SIZE) == 8
    assert decode.draft_scale((0, 0, 448, 448), SIZE) == 2
    assert decode.draft_scale((0, 0, 447, 2000), SIZE) == 1
    assert decode.draft_scale((0.5, 0, 448.4, 448), SIZE) == 1


def test_draft_mode_is_used_and_keeps_geometry(tmp_path, monkeypatch):
    path = str(tmp_path / 'big.JPEG')
    _jpeg_with_marker(path)
    calls = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original(self, mode, size)
        calls.append((size, result))
        return result
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, 'draft', spy)

    box = (1000, 200, 1900, 1100)  # 900 px: 1/4 scale keeps >= 224

    def choose(w, h):
        return box
    fast = decode.load_crop(path, choose, SIZE)
    assert len(calls) == 1
    mode, reduced = calls[0][1]
    assert reduced[2] == pytest.approx(2000 / 4.)  # decoded at 1/4 scale
    full = decode.load_crop(path, choose, SIZE, draft=False)
    assert len(calls) == 1  # draft=False decodes at full size
    # Same picture: the marker at the same place, small pixel differences.
    cx, cy = _centroid(full)
    fx, fy = _centroid(fast)
    expected = ((1300 - 1000) * 224 / 900., (500 - 200) * 224 / 900.)
    assert abs(cx - expected[0]) < 1 and abs(cy - expected[1]) < 1
    assert abs(fx - cx) < 0.75 and abs(fy - cy) < 0.75
    diff = numpy.abs(fast.astype(int) - full.astype(int))
    assert diff.mean() < 3


def test_small_crop_is_decoded_at_full_scale(tmp_path, monkeypatch):
    path = str(tmp_path / 'big.JPEG')
    _jpeg_with_marker(path)
    calls = []
    original = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(
        JpegImagePlugin.JpegImageFile, 'draft',
        lambda self, mode, size: calls.append(size) or original(
            self, mode, size))
    decode.load_crop(path, lambda w, h: (1200, 400, 1500, 700), SIZE)
    assert calls == []  # a 300 px crop cannot be reduced for 224 px


def _encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_grayscale_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / 'gray.JPEG'
    gray = Image.fromarray(numpy.tile(
        numpy.linspace(0, 255, 120).astype(numpy.uint8), (90, 1)))
    path.write_bytes(_encode(gray, 'JPEG', quality=95))
    assert Image.open(str(path)).mode == 'L'
    out = decode.load_crop(str(path), _full, (60, 45))
    assert out.shape == (45, 60, 3)
    numpy.testing.assert_array_equal(out[..., 0], out[..., 1])
    numpy.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert out[:, :5].mean() < 20 and out[:, -5:].mean() > 235


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / 'cmyk.JPEG'
    rgb = numpy.zeros((40, 40, 3), numpy.uint8)
    rgb[:, :20] = (200, 30, 30)
    rgb[:, 20:] = (20, 60, 220)
    cmyk = Image.fromarray(rgb).convert('CMYK')
    path.write_bytes(_encode(cmyk, 'JPEG', quality=98))
    assert Image.open(str(path)).mode == 'CMYK'
    out = decode.load_crop(str(path), _full, (40, 40))
    ref = numpy.asarray(Image.open(str(path)).convert('RGB'))
    assert out.shape == (40, 40, 3)
    assert numpy.abs(out.astype(int) - ref.astype(int))[:, 2:-2].max() <= 3
    assert out[:, 5, 0] .mean() > 150 and out[:, 35, 2].mean() > 150


def test_png_named_jpeg_becomes_rgb(tmp_path):
    # ImageNet has a PNG file named n02105855_2933.JPEG.
    path = tmp_path / 'n02105855_2933.JPEG'
    img = _asymmetric(64, 48)
    path.write_bytes(_encode(img, 'PNG'))
    out = decode.load_crop(str(path), _full, (64, 48))
    numpy.testing.assert_array_equal(out, numpy.asarray(img))


@pytest.mark.parametrize('mode', ['P', 'RGBA', 'LA', '1', 'I;16'])
def test_other_png_modes_become_rgb(tmp_path, mode):
    path = str(tmp_path / 'x.png')
    base = _asymmetric(40, 30)
    if mode == 'I;16':
        img = Image.fromarray(
            (numpy.asarray(base.convert('L')).astype(numpy.uint16) * 257))
    else:
        img = base.convert(mode)
    img.save(path)
    out = decode.load_crop(path, _full, (20, 15))
    assert out.shape == (15, 20, 3) and out.dtype == numpy.uint8


def test_truncated_images_setting_is_refused(tmp_path, monkeypatch):
    from PIL import ImageFile
    path = str(tmp_path / 'a.png')
    _asymmetric(8, 8).save(path)
    monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', True)
    with pytest.raises(RuntimeError, match='LOAD_TRUNCATED_IMAGES'):
        decode.load_crop(path, _full, (8, 8))
