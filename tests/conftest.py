"Shared pytest configuration: quiet dependency warnings, one torch thread budget, registries loaded."
import os, warnings

import pytest

os.environ.setdefault('IN_TEST', '1')
warnings.filterwarnings('ignore', message=r'.*torch\.jit\.script.*is deprecated', category=FutureWarning)

import torch  # noqa: E402
from vitlab.core import import_all  # noqa: E402
import_all()   # every registry complete (models, datasets, recipes, compressors, analyses)


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long-running tests, skipped unless run with `pytest -m slow`')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
