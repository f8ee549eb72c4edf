"""Image dataset readers on real data (sklearn digits) in every format of decision 0005."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from selfsup_trainer.vision import preprocess, sample_data
from selfsup_trainer.vision.data import channel_stats, read_images, split_heldout


@pytest.fixture(scope="module")
def digits():
    images, labels = sample_data.digits()
    return images[:120], labels[:120]


def edge_pixels(png: bytes, size: int, channels: int) -> np.ndarray:
    """What the Worker computes before mean/std: decode, channels, resize -> [C, S, S]."""
    x = preprocess.resize_aa(preprocess.to_channels(preprocess.decode_image(png), channels), size)
    return x.transpose(2, 0, 1).astype(np.float32)


def test_png_zip_with_class_folders_matches_the_edge_pixels(tmp_path, digits):
    images, labels = digits
    path = sample_data.write_png_zip(tmp_path / "d.zip", images, labels, extra=3)
    data = read_images(path, image_size=16)
    assert data.images.shape == (120, 1, 16, 16) and data.images.dtype == torch.float32
    assert data.labels == [str(v) for v in labels]
    assert data.stats["ignored"] == 3 and data.stats["classes"] == 10
    assert data.stats["min_size"] == [8, 8] and data.lengths.tolist() == [1] * 120
    for i in (0, 57, 119):
        png = sample_data.png_bytes(images[i])
        # Bit-identical: cached weights, same einsums as preprocess.resize_aa.
        assert np.array_equal(data.images[i].numpy(), edge_pixels(png, 16, 1))


def test_idx_files_plain_gzip_and_in_archives(tmp_path, digits):
    images, labels = digits
    raw = sample_data.idx_bytes(images)
    (tmp_path / "d.idx").write_bytes(raw)
    (tmp_path / "d.idx.gz").write_bytes(gzip.compress(raw))
    plain = read_images(tmp_path / "d.idx", image_size=12)
    assert plain.labels is None and plain.images.shape == (120, 1, 12, 12)
    assert torch.equal(read_images(tmp_path / "d.idx.gz", image_size=12).images, plain.images)
    for i in (0, 119):  # the batched IDX resize is bit-identical to the per-image edge filter
        expected = preprocess.resize_aa(images[i][:, :, None].astype(np.float64), 12)
        assert np.array_equal(plain.images[i, 0].numpy(), expected[:, :, 0].astype(np.float32))
    with zipfile.ZipFile(tmp_path / "pair.zip", "w") as zf:
        zf.writestr("train-images-idx3-ubyte.gz", gzip.compress(raw))
        zf.writestr("train-labels-idx1-ubyte", sample_data.idx_bytes(labels))
        zf.writestr("__MACOSX/._train-images-idx3-ubyte.gz", b"junk")
    paired = read_images(tmp_path / "pair.zip", image_size=12, channels=3)
    assert paired.labels == [str(v) for v in labels] and paired.stats["ignored"] == 1
    assert torch.equal(paired.images[:, 2:3], plain.images)  # grey replicated to RGB


def test_tar_gz_mixed_grey_and_colour_becomes_rgb(tmp_path, digits):
    images, _ = digits
    colour = np.stack([images[0], images[1], images[2]], axis=-1)  # a real RGB image
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, image in (("a/grey.png", images[3]), ("b/colour.PNG", colour)):
            data = sample_data.png_bytes(image)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    path = tmp_path / "mixed.tar.gz"
    path.write_bytes(buffer.getvalue())
    data = read_images(path, image_size=8)
    assert data.channels == 3 and data.labels == ["a", "b"]
    assert data.stats["grey"] == 1 and data.stats["colour"] == 1
    assert torch.equal(data.images[0, 0], data.images[0, 1])
    grey = read_images(path, image_size=8, channels=1)  # colour -> luma, as the edge does
    expected = edge_pixels(sample_data.png_bytes(colour), 8, 1)
    assert np.array_equal(grey.images[1].numpy(), expected)


def test_errors_name_the_member_and_the_fix(tmp_path, digits):
    images, labels = digits
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("3/ok.png", sample_data.png_bytes(images[0]))
        zf.writestr("3/broken.png", b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match=r"member '3/broken.png'.*fix or remove"):
        read_images(tmp_path / "bad.zip", 8)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"not a zip, tar, tar\.gz or IDX"):
        read_images(tmp_path / "notes.txt", 8)
    with zipfile.ZipFile(tmp_path / "pair.zip", "w") as zf:
        zf.writestr("x-idx3-ubyte", sample_data.idx_bytes(images))
        zf.writestr("y-idx1-ubyte", sample_data.idx_bytes(labels[:7]))
    with pytest.raises(ValueError, match="has 7 labels but 'x-idx3-ubyte' has 120 images"):
        read_images(tmp_path / "pair.zip", 8)
    (tmp_path / "cut.idx").write_bytes(sample_data.idx_bytes(images)[:-5])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_images(tmp_path / "cut.idx", 8)
    with pytest.raises(ValueError, match="no such file"):
        read_images(tmp_path / "missing.zip", 8)
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("readme.md", "no images")
    with pytest.raises(ValueError, match="no PNG/JPEG members"):
        read_images(tmp_path / "empty.zip", 8)


def test_channel_stats_and_heldout_split():
    images = torch.rand(10, 3, 4, 4) * 255
    mean, std = channel_stats(images)
    x = images.double().numpy() / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(std, x.std(axis=(0, 2, 3)), atol=1e-6)
    train, held = split_heldout(1000, 0.02, 256, seed=0)
    assert len(held) == 20 and len(train) == 980 and not set(train) & set(held)
    again, _ = split_heldout(1000, 0.02, 256, seed=0)
    assert np.array_equal(train, again)
    assert len(split_heldout(1000, 0.001, 256, 0)[1]) == 12  # parity gates need 12
    with pytest.raises(ValueError, match="has 20 images; at least 24"):
        split_heldout(20, 0.02, 256, 0)
