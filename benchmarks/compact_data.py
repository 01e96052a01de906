"""A compact copy of the book's data that fits the GPU machine's 64 MiB transfer, and its unpacking there.

The GPU machine cannot reach ``../shared/data``; only the working tree and a few carried folders travel,
64 MiB in all. So ``pack`` writes ``.gpu-data/`` (git-ignored) from the read-only mirror:

- Fashion-MNIST's four idx files, re-compressed with xz (25 MiB instead of gzip's 30), with their
  SHA-256 so that ``unpack`` can prove them intact;
- Imagenette (all 13,394 images) centre-cropped to 128×128, which is exactly what ``book.data`` decodes
  at 128 px, re-encoded as WebP at quality 60 (about 30 MiB) and put in one .tar.gz.

``unpack`` (standard library only) writes the idx files into a ``book.data`` cache and extracts the
images into an ImageFolder tree, so that ``BOOK_DATA_DIR``/``BOOK_CACHE_DIR`` find both.

    python benchmarks/compact_data.py pack                  # here, once: writes .gpu-data/
    python3 benchmarks/compact_data.py unpack .gpu-data     # there (gpu_check.py --data does this itself)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import sys
import tarfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FASHION_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
SIDE, QUALITY = 128, 60
TRANSFER_LIMIT = 64 * 2**20  # what the device tool carries: working tree plus carried folders


def _encode(job: tuple[str, int, int]) -> bytes:
    """One image: shorter side resized to ``side`` (bicubic, antialiased), centre-cropped, WebP bytes."""
    from PIL import Image
    path, side, quality = job
    with Image.open(path) as image:
        image = image.convert("RGB")
        width, height = image.size
        scale = side / min(width, height)
        image = image.resize((max(side, round(width * scale)), max(side, round(height * scale))), Image.BICUBIC)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        buffer = io.BytesIO()
        image.save(buffer, "WEBP", quality=quality, method=6)
    return buffer.getvalue()


def pack(mirror: Path, out: Path, per_class: int | None = None, workers: int | None = None,
         xz_preset: int = 9 | lzma.PRESET_EXTREME) -> dict:
    """Write the compact copy of ``mirror`` into ``out``; ``per_class`` keeps only that many images per class
    (tests use that, and a fast ``xz_preset``)."""
    raw = mirror / "FashionMNIST" / "raw"
    folders = sorted(mirror.glob("imagenette2*"))
    if not raw.is_dir() or not folders:
        sys.exit(f"error: {mirror} lacks FashionMNIST/raw or an imagenette2* folder; set BOOK_DATA_DIR "
                 "(on our machines: BOOK_DATA_DIR=../shared/data)")
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"fashion_mnist": {}, "imagenette": {"side": SIDE, "format": "webp", "quality": QUALITY}}

    (out / "FashionMNIST").mkdir(exist_ok=True)
    for name in FASHION_FILES:
        content = gzip.decompress((raw / f"{name}.gz").read_bytes())
        (out / "FashionMNIST" / f"{name}.xz").write_bytes(lzma.compress(content, preset=xz_preset))
        manifest["fashion_mnist"][name] = hashlib.sha256(content).hexdigest()

    source = folders[0]
    tree = f"imagenette2-{SIDE}"
    entries: list[tuple[str, Path]] = []
    for split in ("train", "val"):
        for class_dir in sorted((source / split).iterdir()):
            files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
            for path in files[:per_class]:
                entries.append((f"{tree}/{split}/{class_dir.name}/{path.stem}.webp", path))
    archive = out / f"{tree}.tar.gz"  # gzip squeezes out tar's 512-byte padding: 10 MiB over 13,394 files
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool, tarfile.open(archive, "w:gz") as tar:
        encoded = pool.map(_encode, [(str(path), SIDE, QUALITY) for _, path in entries], chunksize=64)
        for (member, _), payload in zip(entries, encoded):
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(payload), 0, 0o644
            tar.addfile(info, io.BytesIO(payload))
    manifest["imagenette"].update(source=source.name, tar=archive.name, images=len(entries),
                                  splits={s: sum(m.split("/")[1] == s for m, _ in entries) for s in ("train", "val")})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out}: {len(entries):,} Imagenette images at {SIDE} px, Fashion-MNIST; {size / 2**20:.1f} MiB")
    if size > TRANSFER_LIMIT - 8 * 2**20:
        print(f"warning: {size / 2**20:.1f} MiB leaves under 8 MiB of the 64 MiB transfer for the working tree")
    return manifest


def unpack(compact: Path, into: Path = REPO_ROOT / "data" / "unpacked") -> tuple[Path, Path]:
    """Unpack ``compact`` into ``into`` (idempotent); return (data dir, cache dir) for BOOK_DATA_DIR and
    BOOK_CACHE_DIR. ``into`` lies outside ``compact``, so that the compact copy stays small enough to carry."""
    manifest_path = compact / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{compact} is not a compact copy (no manifest.json); "
                                "make one with: python benchmarks/compact_data.py pack")
    manifest = json.loads(manifest_path.read_text())
    root = into
    if (root / "manifest.json").exists() and (root / "manifest.json").read_text() == manifest_path.read_text():
        return root / "data", root / "cache"  # this very copy is unpacked already
    if root.exists() and any(root.iterdir()) and not (root / "cache").is_dir():
        raise FileExistsError(f"{root} holds files that are not an unpacked copy; choose an empty folder")
    shutil.rmtree(root, ignore_errors=True)  # another copy's files, or a half-finished unpack
    cache_raw = root / "cache" / "FashionMNIST" / "raw"
    cache_raw.mkdir(parents=True)
    for name, digest in manifest["fashion_mnist"].items():
        content = lzma.decompress((compact / "FashionMNIST" / f"{name}.xz").read_bytes())
        if hashlib.sha256(content).hexdigest() != digest:
            raise ValueError(f"{name}.xz does not unpack to the bytes it was made from: copy .gpu-data again")
        (cache_raw / name).write_bytes(content)
    with tarfile.open(compact / manifest["imagenette"]["tar"]) as tar:
        tar.extractall(root / "data", filter="data")
    (root / "manifest.json").write_text(manifest_path.read_text())  # last: marks the unpack complete
    return root / "data", root / "cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    make = verbs.add_parser("pack", help="write the compact copy from BOOK_DATA_DIR")
    make.add_argument("--mirror", type=Path, default=os.environ.get("BOOK_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")
    make.add_argument("--out", type=Path, default=REPO_ROOT / ".gpu-data")
    make.add_argument("--per-class", type=int, help="only this many images per class and split (for tests)")
    make.add_argument("--fast", action="store_true", help="quick xz compression, 5 MiB larger (for tests)")
    expand = verbs.add_parser("unpack", help="unpack a compact copy where it is to be used")
    expand.add_argument("compact", type=Path)
    expand.add_argument("--into", type=Path, default=REPO_ROOT / "data" / "unpacked")
    args = parser.parse_args()
    if args.verb == "pack":
        pack(Path(args.mirror), args.out, args.per_class, xz_preset=0 if args.fast else 9 | lzma.PRESET_EXTREME)
    else:
        data_dir, cache = unpack(args.compact, args.into)
        print(f"export BOOK_DATA_DIR={data_dir} BOOK_CACHE_DIR={cache}")


if __name__ == "__main__":
    main()
