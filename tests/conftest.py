"Shared pytest configuration: quiet dependency warnings, one torch thread budget, registries loaded."
import os, warnings

import pytest

os.environ.setdefault('IN_TEST', '1')
warnings.filterwarnings('ignore', message=r'.*torch\.jit\.script.*is deprecated', category=FutureWarning)

import torch  # noqa: E402
from vitlab.core import import_all, share_cores  # noqa: E402
import_all()   # every registry complete (models, datasets, recipes, compressors, analyses)

# pytest.ini runs the suite with pytest-xdist (`-n auto`): each worker takes its share of the cores (see
# vitlab.core.share_cores); a plain `pytest -n0` gets all of them.
share_cores(int(os.environ.get('PYTEST_XDIST_WORKER_COUNT') or 1))


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long-running tests, skipped unless run with `pytest -m slow`')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
