"""The analysis battery: every registered analysis, on the test model of every family, without per-method test code.

An analysis declares what the battery needs as class attributes (`test_options`, and `applies_to`); see
"What the battery checks" in `nbs/analysis/00_analysis.ipynb`.
"""
import json
import math

import pytest
import torch

from vitlab.analysis import AnalysisResult
from vitlab.core import ANALYSES, seed_everything
from vitlab.data import get_dataloaders
from vitlab.layers import ObservableAttention
from vitlab.models import create_model, list_models

ANALYSIS_NAMES = ANALYSES.list()
FAMILY_TEST_MODELS = list_models('*_test')


@pytest.fixture(scope='module')
def dls():
    seed_everything(0)
    return get_dataloaders('fashion_mnist_subset', img_size=32, in_chans=3, bs=32, augment=False,
                           subset={'train': 256, 'test': 64}, seed=0)


def _hooks(model):
    "Every forward hook, pre-hook, backward hook and attention observer registered on `model`'s modules."
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        if isinstance(m, ObservableAttention): n += len(m._attn_observers)
    return n


def test_battery_has_analyses():
    assert 'confusion_matrix' in ANALYSIS_NAMES


@pytest.mark.parametrize('family', FAMILY_TEST_MODELS)
@pytest.mark.parametrize('name', ANALYSIS_NAMES)
def test_analysis_on_every_family(name, family, dls, tmp_path):
    "Either the analysis says why it does not apply, or it runs, returns a usable result and leaves the model as it was."
    cls = ANALYSES.get(name).fn
    an = ANALYSES.create(name, **cls.test_options)
    seed_everything(0)
    model = create_model(family, num_classes=10, in_chans=3, img_size=32)
    model.train()                                    # a mode the analysis must give back
    reason = an.applies_to(model)
    if reason is not None:
        assert isinstance(reason, str) and reason, f"{name}.applies_to({family}) must be None or a reason"
        with pytest.raises(ValueError, match='does not apply'): an(model, dls)
        pytest.skip(f"{name} on {family}: {reason}")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    hooks = _hooks(model)
    res = an(model, dls)
    assert isinstance(res, AnalysisResult)
    assert res.figures or res.metrics or res.tables, f"{name} on {family}: an empty result"
    bad = {k: v for k, v in res.metrics.items() if not math.isfinite(v)}
    assert not bad, f"{name} on {family}: non-finite metrics {bad}"
    for k, fig in res.figures.items(): json.loads(fig.to_json())
    # the model is left as it was found
    after = model.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert not changed, f"{name} changed {family}'s state: {changed[:5]}"
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags, f"{name} changed requires_grad flags"
    assert model.training, f"{name} did not restore the training mode"
    assert _hooks(model) == hooks, f"{name} left hooks or attention observers on {family}"
    assert all(p.grad is None for p in model.parameters()), f"{name} left gradients in {family}'s parameters"
    # the result goes into a run folder, once
    files = res.save(tmp_path, name)
    assert len(files) == len(res.figures) + len(res.tables)
    if files:
        with pytest.raises(FileExistsError): res.save(tmp_path, name)
