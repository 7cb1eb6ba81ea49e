import pytest

from shop.campaigns import recognition


@pytest.fixture(autouse=True)
def _fresh_index():
    """Each test starts and ends with no creative index loaded in this process."""
    recognition.reset()
    yield
    recognition.reset()
