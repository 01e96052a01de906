"""Fashion-MNIST and Imagenette as uint8 tensors that live on the training device.

Each data set is decoded once. Batches are drawn by indexing that tensor, and resizing,
augmenting and normalising happen batched on the device, so the training loop never touches
PIL or a worker process. `DeviceLoader` iterates like a `torch.utils.data.DataLoader`.

Where data is looked for, in order:
1. a read-only mirror named by ``BOOK_DATA_DIR`` (``FashionMNIST/raw/*-ubyte.gz``,
   ``imagenette2*/{train,val}/<wnid>/*.JPEG``);
2. the writable cache ``BOOK_CACHE_DIR`` (default: ``data/`` at the repository root);
3. torchvision's own download, when there is a network (``BOOK_DOWNLOAD=0`` forbids it).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision.datasets.utils import check_integrity, extract_archive
from torchvision.transforms.v2 import functional as TF

from . import distributed

REPO_ROOT = Path(__file__).resolve().parents[1]

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
# Per-channel statistics of the training split, used to normalise batches on the device.
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

LAYOUT_HELP = """Expected layout under BOOK_DATA_DIR (read-only is fine):
  FashionMNIST/raw/train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
                   t10k-images-idx3-ubyte.gz,  t10k-labels-idx1-ubyte.gz
  imagenette2-224/{train,val}/<wnid>/*.JPEG   (any imagenette2* folder in ImageFolder layout)
Fix: export BOOK_DATA_DIR=/path/to/data (on our machines: BOOK_DATA_DIR=../shared/data),
or connect to the internet once so torchvision can download into BOOK_CACHE_DIR."""


class DataNotFoundError(FileNotFoundError):
    """No mirror, no cache and no network: the message names BOOK_DATA_DIR and the layout."""


def _download_allowed(what: str) -> None:
    if os.environ.get("BOOK_DOWNLOAD", "1") == "0":
        raise DataNotFoundError(
            f"{what} was not found, and BOOK_DOWNLOAD=0 forbids downloading it.\n"
            f"Looked in BOOK_DATA_DIR={os.environ.get('BOOK_DATA_DIR', '(unset)')} and {cache_dir()}.\n{LAYOUT_HELP}")


def data_dir() -> Path | None:
    """The read-only mirror named by ``BOOK_DATA_DIR``, or None."""
    value = os.environ.get("BOOK_DATA_DIR")
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise DataNotFoundError(f"BOOK_DATA_DIR={value} is not a folder.\n{LAYOUT_HELP}")
    return path


def cache_dir() -> Path:
    """The writable cache, ``BOOK_CACHE_DIR`` or ``data/`` at the repository root."""
    path = Path(os.environ.get("BOOK_CACHE_DIR") or REPO_ROOT / "data").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class ImageSet:
    """Images as a uint8 tensor (N, C, H, W), integer labels (N,) and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def per_class(self, count: int | None) -> "ImageSet":
        """The first ``count`` images of every class (all of them for None): a balanced subset."""
        if count is None:
            return self
        keep = torch.cat([torch.nonzero(self.labels == c).flatten()[:count] for c in range(len(self.classes))])
        keep = keep.sort().values
        return ImageSet(self.images[keep], self.labels[keep], self.classes)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=len(self.classes)).tolist()


# --------------------------------------------------------------------------- Fashion-MNIST

def _fashion_mnist_root() -> Path:
    """A torchvision root whose FashionMNIST/raw holds the verified, unpacked idx files."""
    resources = torchvision.datasets.FashionMNIST.resources
    cache = cache_dir()
    raw = cache / "FashionMNIST" / "raw"
    unpacked = [raw / Path(url).name.removesuffix(".gz") for url, _ in resources]
    if all(p.exists() for p in unpacked):
        return cache

    mirror = data_dir()
    if mirror is not None and (mirror / "FashionMNIST" / "raw").is_dir():
        raw.mkdir(parents=True, exist_ok=True)
        for url, md5 in resources:
            packed = mirror / "FashionMNIST" / "raw" / Path(url).name
            if not packed.exists():
                raise DataNotFoundError(f"{packed} is missing.\n{LAYOUT_HELP}")
            if not check_integrity(str(packed), md5):
                raise DataNotFoundError(
                    f"{packed} does not have torchvision's md5 {md5}: the file is damaged. "
                    "Copy it again from the original source.")
            # The mirror is read-only, so unpack into the cache (as torchvision itself would),
            # through a temporary name so that an interrupted unpack never looks complete.
            (raw / ".partial").mkdir(exist_ok=True)
            partial = Path(extract_archive(str(packed), str(raw / ".partial")))
            partial.replace(raw / partial.name)
        return cache

    _download_allowed("Fashion-MNIST")
    try:
        torchvision.datasets.FashionMNIST(str(cache), train=True, download=True)
        torchvision.datasets.FashionMNIST(str(cache), train=False, download=True)
    except Exception as error:  # torchvision raises URLError, RuntimeError or OSError offline
        raise DataNotFoundError(
            f"Fashion-MNIST was not found and could not be downloaded ({type(error).__name__}: {error}).\n"
            f"Looked in BOOK_DATA_DIR={os.environ.get('BOOK_DATA_DIR', '(unset)')} and {cache}.\n{LAYOUT_HELP}"
        ) from error
    return cache


@lru_cache(maxsize=None)
def _fashion_mnist(split: str) -> ImageSet:
    dataset = torchvision.datasets.FashionMNIST(str(_fashion_mnist_root()), train=(split == "train"))
    return ImageSet(dataset.data.unsqueeze(1).contiguous(), dataset.targets.clone(), list(FASHION_MNIST_CLASSES))


def fashion_mnist(split: str = "train") -> ImageSet:
    """Fashion-MNIST (Xiao et al., 2017): 60,000 train and 10,000 test images, 1×28×28,
    10 classes."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    return _fashion_mnist(split)


# --------------------------------------------------------------------------- Imagenette

IMAGENETTE_CLASSES = {wnid: names[0] for wnid, names in torchvision.datasets.Imagenette._WNID_TO_CLASS.items()}


def _imagenette_folder(split: str) -> Path:
    """The ImageFolder root of one split: the mirror's, else the cache's, else a download."""
    mirror = data_dir()
    candidates = sorted(mirror.glob("imagenette2*")) if mirror else []
    candidates += sorted(cache_dir().glob("imagenette2*"))
    for folder in candidates:
        if (folder / split).is_dir():
            return folder / split
    _download_allowed("Imagenette")
    try:
        torchvision.datasets.Imagenette(str(cache_dir()), split=split, size="320px", download=True)
    except Exception as error:
        raise DataNotFoundError(
            f"Imagenette was not found and could not be downloaded ({type(error).__name__}: {error}).\n{LAYOUT_HELP}"
        ) from error
    return _imagenette_folder(split)


def _decode(path: str, resolution: int) -> torch.Tensor:
    """One JPEG as uint8 (3, resolution, resolution): shorter side resized, then centre-cropped.

    Decoded with PIL, torchvision's default loader, once at load time (never in the
    training loop)."""
    with Image.open(path) as image:
        pixels = TF.pil_to_tensor(image.convert("RGB"))
    return TF.center_crop(TF.resize(pixels, resolution, antialias=True), [resolution, resolution])


def progress(items, desc: str, quiet: bool = False):
    """``items`` with a progress bar, unless ``quiet`` or in a stored run (the book has
    no kernel for a widget)."""
    from tqdm.auto import tqdm

    from .runtime import stored_run

    return tqdm(items, desc=desc, disable=quiet or stored_run())


def _decode_folder(folder: Path, resolution: int, per_class: int | None = None) -> ImageSet:
    """Every image of an ImageFolder split, or the first ``per_class`` of each class, as
    one uint8 tensor."""

    listing = torchvision.datasets.ImageFolder(str(folder))
    samples = listing.samples
    if per_class is not None:  # the first files of each class, in ImageFolder's sorted order
        samples = [sample for c in range(len(listing.classes))
                   for sample in [item for item in samples if item[1] == c][:per_class]]
    images = torch.empty(len(samples), 3, resolution, resolution, dtype=torch.uint8)
    for i, (path, _) in enumerate(progress(samples, f"decoding {folder.parent.name}/{folder.name}",
                                           quiet=per_class is not None)):
        images[i] = _decode(path, resolution)
    labels = torch.tensor([label for _, label in samples])
    return ImageSet(images, labels, [IMAGENETTE_CLASSES.get(c, c) for c in listing.classes])


@lru_cache(maxsize=None)
def _imagenette(split: str, resolution: int) -> ImageSet:
    folder = _imagenette_folder(split)
    cached = cache_dir() / f"{folder.parent.name}_{split}_{resolution}px.pt"
    if cached.exists():
        saved = torch.load(cached)
        return ImageSet(saved["images"], saved["labels"], saved["classes"])
    data = _decode_folder(folder, resolution)
    partial = cached.with_suffix(".tmp")
    torch.save({"images": data.images, "labels": data.labels, "classes": data.classes}, partial)
    partial.replace(cached)  # a run stopped half-way never leaves a truncated cache behind
    return data


def imagenette_samples(per_class: int = 6, resolution: int = 96, split: str = "val") -> ImageSet:
    """A few images of every Imagenette class, decoded directly: for pictures, not training."""
    return _decode_folder(_imagenette_folder(split), resolution, per_class)


def imagenette(split: str = "train", resolution: int = 64, per_class: int | None = None) -> ImageSet:
    """Imagenette v2: 10 easy ImageNet classes (9,469 train, 3,925 val), decoded once at
    ``resolution`` and cached as a tensor file. With ``per_class``, only that many
    images of each class are decoded."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    if per_class is not None:
        return imagenette_samples(per_class, int(resolution), split)
    return _imagenette(split, int(resolution))


def clear_cache() -> None:
    """Forget decoded data sets (in memory) and remove unpacked files from the cache folder."""
    _fashion_mnist.cache_clear()
    _imagenette.cache_clear()
    shutil.rmtree(cache_dir() / "FashionMNIST", ignore_errors=True)


# --------------------------------------------------------------------------- batched augmentation

def random_translate(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding (the CIFAR/ResNet recipe, He et al. 2016 §4.2),
    per image, batched."""
    n, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=generator.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=generator.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, :, None]  # (n, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, :]  # (n, 1, w)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def random_resized_crop(images: torch.Tensor, size: int, generator: torch.Generator,
                        scale: tuple[float, float] = (0.25, 1.0)) -> torch.Tensor:
    """Inception-style crop (Szegedy et al. 2015 §6): a random area and aspect, resized;
    batched via grid_sample."""
    n = images.shape[0]
    dev = generator.device
    area = torch.empty(n, device=dev).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(n, device=dev).uniform_(math.log(3 / 4), math.log(4 / 3), generator=generator)
    ratio = log_ratio.exp()
    sx, sy = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
    cx = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * (1 - sx)
    cy = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * (1 - sy)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, sy, cy
    grid = F.affine_grid(theta.to(images.device), [n, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", align_corners=False)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Horizontal flip of a random half of the batch."""
    flip = torch.rand(images.shape[0], device=generator.device, generator=generator) < 0.5
    return torch.where(flip.to(images.device)[:, None, None, None], images.flip(-1), images)


# --------------------------------------------------------------------------- the loader

class DeviceLoader:
    """Iterate over an ImageSet in batches of float tensors, like a DataLoader, without workers.

    The uint8 images move to ``device`` once; each batch is drawn by indexing, then
    resized to ``resolution``, augmented (``augment``: "none", "translate" or "crop",
    plus flips) and normalised there. Under torchrun, ``batch_size`` is the global
    batch: every process draws the same order and keeps its rank's share of each batch
    (``book.distributed``).
    """

    def __init__(self, data: ImageSet, batch_size: int = 128, *, shuffle: bool = False,
                 resolution: int | None = None, augment: str = "none", mean=None, std=None,
                 device: torch.device | str | None = None, seed: int = 0, drop_last: bool = False,
                 channels_last: bool = False):
        if augment not in ("none", "translate", "crop"):
            raise ValueError(f"augment must be 'none', 'translate' or 'crop', not {augment!r}")
        self.device = torch.device(device or "cpu")
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.classes = data.classes
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.resolution = resolution or data.images.shape[-1]
        self.augment = augment
        channels = data.images.shape[1]
        default_mean, default_std = (FASHION_MNIST_MEAN, FASHION_MNIST_STD) if channels == 1 else (IMAGENET_MEAN, IMAGENET_STD)
        self.mean = torch.tensor(mean or default_mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std or default_std, device=self.device).view(1, -1, 1, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # Under torchrun, two generators: the order is the same in every process, the
        # augmentations differ per rank. In one process, one generator drives both, as
        # it always has (same batches as before).
        self.order_generator = torch.Generator(self.device).manual_seed(seed)
        self.generator = (torch.Generator(self.device).manual_seed(seed + 104729 * (distributed.rank() + 1))
                          if distributed.world_size() > 1 else self.order_generator)

    def __len__(self) -> int:
        n = len(self.labels)
        if self.drop_last:
            return n // self.batch_size
        last = n % self.batch_size
        dropped = 0 < last < distributed.world_size()  # too small to share out under torchrun (see __iter__)
        return math.ceil(n / self.batch_size) - dropped

    @property
    def dataset_size(self) -> int:
        return len(self.labels)

    def state_dict(self) -> dict:
        """The shuffling and augmentation state, so that a resumed run draws the same batches."""
        return {"order": self.order_generator.get_state(), "augment": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if "generator" in state:  # a checkpoint from before the two generators: one drove both
            state = {"order": state["generator"], "augment": state["generator"]}
        self.order_generator.set_state(state["order"])
        self.generator.set_state(state["augment"])

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) → normalised float at ``self.resolution``, augmented if asked."""
        x = images.float().div_(255)
        if self.augment == "crop":
            x = random_resized_crop(x, self.resolution, self.generator)
        elif x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear",
                              antialias=self.resolution < x.shape[-1], align_corners=False)
        if self.augment == "translate":
            x = random_translate(x, max(1, self.resolution // 14), self.generator)
        if self.augment != "none":
            x = random_flip(x, self.generator)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=self.memory_format)

    def __iter__(self):
        n = len(self.labels)
        order = (torch.randperm(n, generator=self.order_generator, device=self.device) if self.shuffle
                 else torch.arange(n, device=self.device))
        rank, world = distributed.rank(), distributed.world_size()
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                break
            if world > 1:
                if len(index) < world:  # a last batch too small to give every process an image
                    break
                index = index.tensor_split(world)[rank]  # this process's contiguous share
            yield self.transform(self.images[index]), self.labels[index]
