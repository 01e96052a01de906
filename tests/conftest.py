import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """An empty mirror and cache, with the in-memory data sets forgotten before and after."""
    from book import data

    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    mirror.mkdir()
    monkeypatch.setenv("BOOK_DATA_DIR", str(mirror))
    monkeypatch.setenv("BOOK_CACHE_DIR", str(cache))
    data.clear_cache()
    yield mirror, cache
    data.clear_cache()


_REAL_DATA_DIR = os.environ.get("BOOK_DATA_DIR")  # read before any test changes it


def real_data_dir() -> Path:
    value = _REAL_DATA_DIR
    if not value:
        pytest.fail("BOOK_DATA_DIR is not set: point it at the real data (on our machines ../shared/data)")
    return Path(value)
