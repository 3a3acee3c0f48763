import pytest


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Decoded-dataset caches go to the test's tmp dir, never the user's ~/.cache."""
    monkeypatch.setenv("SQUEEZELAB_CACHE", str(tmp_path / "user-cache"))
