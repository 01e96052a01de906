"""book.data: the real Fashion-MNIST from BOOK_DATA_DIR, clear errors, and the on-device loader."""

import gzip
import shutil
import urllib.error

import pytest
import torch

from book import data
from conftest import real_data_dir


def test_real_fashion_mnist_has_all_images_and_balanced_classes():
    train, test = data.fashion_mnist("train"), data.fashion_mnist("test")
    assert train.images.shape == (60_000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10_000, 1, 28, 28)
    assert train.class_counts() == [6_000] * 10
    assert test.class_counts() == [1_000] * 10
    # Real images, not blanks: Fashion-MNIST's training mean is 0.2860 (the normalisation constant we use).
    assert abs(train.images.float().mean().item() / 255 - data.FASHION_MNIST_MEAN[0]) < 1e-3


def test_missing_data_error_names_the_variable_and_layout(isolated_data, monkeypatch):
    monkeypatch.setenv("BOOK_DOWNLOAD", "0")
    with pytest.raises(data.DataNotFoundError) as error:
        data.fashion_mnist("train")
    message = str(error.value)
    assert "BOOK_DATA_DIR" in message and "FashionMNIST/raw/train-images-idx3-ubyte.gz" in message


def test_missing_data_and_failed_download_mechanics(isolated_data, monkeypatch):
    """Mechanics only: the network is simulated as unreachable, as in a classroom without internet."""
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", unreachable)
    with pytest.raises(data.DataNotFoundError, match="BOOK_DATA_DIR"):
        data.fashion_mnist("test")


def test_missing_mirror_folder_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("BOOK_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(data.DataNotFoundError, match="nowhere is not a folder"):
        data.data_dir()


def test_damaged_file_fails_md5_check(isolated_data):
    mirror, _ = isolated_data
    raw = mirror / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (real_data_dir() / "FashionMNIST" / "raw").glob("*.gz"):
        shutil.copy(path, raw / path.name)
    labels = raw / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[100] = (content[100] + 1) % 10  # one wrong label
    labels.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(data.DataNotFoundError, match="md5"):
        data.fashion_mnist("test")


def test_per_class_subset_is_balanced():
    subset = data.fashion_mnist("train").per_class(30)
    assert len(subset) == 300 and subset.class_counts() == [30] * 10


def test_loader_covers_every_image_once_per_epoch_and_normalises():
    subset = data.fashion_mnist("test").per_class(50)
    loader = data.DeviceLoader(subset, 64, shuffle=True, seed=1)
    assert len(loader) == 8
    labels = torch.cat([y for _, y in loader])
    assert sorted(labels.tolist()) == sorted(subset.labels.tolist())
    x = torch.cat([x for x, _ in loader])
    assert abs(x.mean().item()) < 0.15 and abs(x.std().item() - 1) < 0.15


def test_loader_resizes_and_augments_on_the_batch():
    subset = data.fashion_mnist("test").per_class(10)
    plain = data.DeviceLoader(subset, 100, resolution=64)
    augmented = data.DeviceLoader(subset, 100, resolution=64, augment="translate", seed=3)
    x_plain, _ = next(iter(plain))
    x_aug, _ = next(iter(augmented))
    assert x_plain.shape == x_aug.shape == (100, 1, 64, 64)
    assert not torch.equal(x_plain, x_aug)
    again = data.DeviceLoader(subset, 100, resolution=64, augment="translate", seed=3)
    assert torch.equal(next(iter(again))[0], x_aug)  # seeded: the same batch twice


def test_random_translate_moves_images_without_changing_content():
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 3, 4] = 1.0
    moved = data.random_translate(image.repeat(64, 1, 1, 1), 2, torch.Generator().manual_seed(0))
    assert torch.all(moved.sum(dim=(1, 2, 3)) == 1)  # a shift by ≤ 2 keeps the one bright pixel
    assert len({tuple(torch.nonzero(m[0])[0].tolist()) for m in moved}) > 5


def test_random_resized_crop_shape_synthetic():
    """Mechanics on synthetic images: the crop returns the asked size."""
    x = torch.rand(5, 3, 40, 40)
    assert data.random_resized_crop(x, 24, torch.Generator().manual_seed(0)).shape == (5, 3, 24, 24)


def test_imagenette_reads_real_mirror_layout():
    folder = data._imagenette_folder("val")
    assert folder.is_dir() and len(list(folder.iterdir())) == 10


def test_imagenette_is_decoded_once_and_cached_as_a_tensor(isolated_data):
    """A small mirror made of real Imagenette files (2 per class): decoded, cached, read back."""
    mirror, cache = isolated_data
    source = real_data_dir() / "imagenette2-224" / "val"
    for wnid in sorted(p.name for p in source.iterdir()):
        target = mirror / "imagenette2-224" / "val" / wnid
        target.mkdir(parents=True)
        for jpeg in sorted((source / wnid).iterdir())[:2]:
            shutil.copy(jpeg, target / jpeg.name)
    first = data.imagenette("val", resolution=40)
    assert first.images.shape == (20, 3, 40, 40) and first.class_counts() == [2] * 10
    assert (cache / "imagenette2-224_val_40px.pt").exists()
    data._imagenette.cache_clear()
    second = data.imagenette("val", resolution=40)  # from the tensor file this time
    assert torch.equal(first.images, second.images) and first.classes[0] == "tench"
