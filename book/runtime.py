"""Where and how this process runs, decided once: device, bf16, profile and stored-run mode.

``Runtime.detect()`` reads the environment (``BOOK_PROFILE``, ``BOOK_BF16``,
``BOOK_STORED_RUN``, torchrun's variables) and the hardware once; everything after that
receives the ``Runtime`` as an argument instead of reading the environment again.
``chapter.banner()`` makes the one a chapter uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from . import distributed
from .profiles import Profile, get_profile

STORED_RUN = "BOOK_STORED_RUN"

# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which the CPU has no bf16 instructions to use.
_NO_BF16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


def default_device() -> torch.device:
    """This process's GPU under torchrun, else CUDA if present, then Apple's MPS, then the CPU."""
    own_gpu = distributed.local_device()
    if own_gpu is not None:
        return own_gpu
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast is the fast path on ``device``: on CUDA, and on CPUs whose
    bf16 instructions (avx512_bf16 or AMX) are present and not capped by
    ``ATEN_CPU_CAPABILITY``/``ONEDNN_MAX_CPU_ISA``. Measured in benchmarks/cpu_speed.py:
    1.42× the fp32 training speed on a 2-core AVX-512-bf16 EPYC."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in _NO_BF16_ISAS:
        return False
    capability = torch.backends.cpu.get_cpu_capability()
    has_bf16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return capability.startswith("AVX512") and has_bf16


def default_bf16(device: torch.device) -> bool:
    """``BOOK_BF16=1`` or ``0`` if set (bf16 rounds differently with each batch's makeup, so exact
    comparisons run in fp32), else :func:`native_bf16`."""
    chosen = os.environ.get("BOOK_BF16")
    if chosen not in (None, "", "0", "1"):
        raise ValueError(f"BOOK_BF16={chosen!r}: use 1 (bf16 autocast), 0 (fp32), or leave it unset (automatic)")
    return native_bf16(device) if not chosen else chosen == "1"


def stored_run() -> bool:
    """Whether this process runs a notebook whose outputs will be stored
    (``BOOK_STORED_RUN=1``, which ``python -m book.notebooks`` gives the kernel). Nobody
    watches such a run and the rendered book has no kernel, so: no widgets (no tqdm
    bars, a static feature explorer) and one final figure, not a live one."""
    return os.environ.get(STORED_RUN, "").strip() not in ("", "0")


@dataclass(frozen=True)
class Runtime:
    """What every number of a run depends on besides its code: the profile, the device
    and the precision."""

    profile: Profile
    device: torch.device
    bf16: bool
    stored: bool           # outputs go into a stored notebook: no widgets, no live plots
    cpu_capability: str    # the ISA PyTorch uses: AVX2, AVX512, …

    @classmethod
    def detect(cls, profile: str | None = None, device: torch.device | str | None = None) -> "Runtime":
        """The runtime of this process: ``profile`` or ``BOOK_PROFILE`` or the device's,
        and so on."""
        device = torch.device(device) if device is not None else default_device()
        return cls(get_profile(profile), device, default_bf16(device), stored_run(),
                   torch.backends.cpu.get_cpu_capability())

    @property
    def precision(self) -> str:
        return "bf16 autocast" if self.bf16 else "fp32"

    def describe(self) -> str:
        """"cpu (AVX2, fp32)": the device line of a chapter's banner."""
        isa = self.cpu_capability if self.device.type == "cpu" else torch.cuda.get_device_name(self.device)
        return f"{self.device} ({isa}, {self.precision})"

    def as_dict(self) -> dict:
        """The fields a stored run records, as JSON values."""
        return {"profile": self.profile.name, "device": str(self.device), "bf16": self.bf16,
                "cpu_capability": self.cpu_capability, "cpu_count": os.cpu_count()}
