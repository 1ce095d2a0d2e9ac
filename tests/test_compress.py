"""The compressor battery: every registered compressor, on a briefly trained test model, without per-method test code.

A compressor declares what the battery needs as class attributes (`test_model`, `test_options`, `tolerance`,
`reduces`); see "What the battery checks" in `nbs/compress/00_compress.ipynb`.
"""
import copy

import pytest
import torch

from vitlab.compress import compress_and_evaluate, count_weights, evaluate, model_size_mb
from vitlab.core import COMPRESSORS, seed_everything
from vitlab.data import get_dataloaders
from vitlab.models import count_flops, create_model, list_models

COMPRESSOR_NAMES = COMPRESSORS.list()
FAMILY_TEST_MODELS = list_models('*_test')
TRAIN_EPOCHS = 5
_trained: dict = {}


def _cls(name): return COMPRESSORS.get(name).fn


def _make(name): return COMPRESSORS.create(name, **_cls(name).test_options)


@pytest.fixture(scope='module')
def dls():
    seed_everything(0)
    return get_dataloaders('fashion_mnist_subset', img_size=32, in_chans=3, bs=64, augment=False,
                           subset={'train': 3000, 'test': 256}, seed=0)


def trained(model_name: str, dls) -> torch.nn.Module:
    "`model_name` trained for a few seconds on the subset (once per session), in eval mode on the CPU."
    if model_name not in _trained:
        from vitlab.train import vit_learner
        seed_everything(0)
        learn = vit_learner(dls, model_name, lr=3e-3, progress=False)
        with learn.no_logging(): learn.fit_one_cycle(TRAIN_EPOCHS, 3e-3)
        _trained[model_name] = learn.model.cpu().eval()
    return _trained[model_name]


def _batch(dls):
    x, y = next(iter(dls.valid))
    return x.as_subclass(torch.Tensor).cpu(), y.as_subclass(torch.Tensor).cpu()


def _logits(model, x, device):
    with torch.no_grad(): return model.eval()(x.to(device)).float().cpu()


def test_battery_has_compressors():
    assert 'dynamic_int8' in COMPRESSOR_NAMES


@pytest.mark.parametrize('name', COMPRESSOR_NAMES)
def test_compressor_on_trained_model(name, dls):
    comp = _make(name)
    model = trained(type(comp).test_model, dls)
    reason = comp.applies_to(model)
    assert reason is None, f"{name} does not apply to its own test model {type(comp).test_model}: {reason}"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    base = evaluate(model, dls.valid)
    assert base['test_accuracy'] > 0.4, f"the battery's {type(comp).test_model} did not learn: {base}"
    cm, res = compress_and_evaluate(comp, model, dls)
    # the original is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), f"{name} modified its input model"
    # the logits stay within the method's promised bound, or (None) the model still classifies well above chance
    x, _ = _batch(dls)
    device = comp.device or 'cpu'
    a, b = _logits(model, x, 'cpu'), _logits(cm, x, device)
    assert b.shape == a.shape, f"{name}: logits {tuple(b.shape)} instead of {tuple(a.shape)}"
    assert torch.isfinite(b).all(), f"{name}: non-finite logits"
    rel = ((a - b).norm() / a.norm()).item()
    if comp.tolerance is not None:
        assert rel <= comp.tolerance, f"{name}: relative logit error {rel:.4f} above its tolerance {comp.tolerance}"
    else:
        assert res['test_accuracy'] > 0.3, f"{name}: accuracy {res['test_accuracy']:.3f} after compression"
    # what the method says it shrinks really shrinks
    if 'params' in comp.reduces:
        assert count_weights(cm) < count_weights(model), f"{name}: {count_weights(cm)} weights, not fewer"
    if 'size' in comp.reduces:
        assert model_size_mb(cm) < model_size_mb(model), f"{name}: {model_size_mb(cm):.3f} MB, not smaller"
    if 'flops' in comp.reduces:
        size = tuple(x.shape[1:])
        f0, f1 = count_flops(model, size), count_flops(cm, size)
        assert f1 is not None and f1 < f0, f"{name}: {f1} FLOPs, not fewer than {f0}"
    assert res['speedup'] == comp.speedup
    # a compressed model can go through another method: it survives a deep copy and computes the same
    cm2 = copy.deepcopy(cm)
    torch.testing.assert_close(_logits(cm2, x, device), b)


@pytest.mark.parametrize('family', FAMILY_TEST_MODELS)
@pytest.mark.parametrize('name', COMPRESSOR_NAMES)
def test_compressor_on_every_family(name, family, dls):
    "Either the method says why it does not apply, or it compresses the family's test model into a working model."
    comp = _make(name)
    seed_everything(0)
    model = create_model(family, num_classes=10, in_chans=3, img_size=32).eval()
    reason = comp.applies_to(model)
    if reason is not None:
        assert isinstance(reason, str) and reason, f"{name}.applies_to({family}) must be None or a reason"
        with pytest.raises(ValueError, match='does not apply'): comp(model, dls)
        pytest.skip(f"{name} on {family}: {reason}")
    cm = comp(model, dls)
    x, _ = _batch(dls)
    out = _logits(cm, x[:4], comp.device or 'cpu')
    assert out.shape == (4, 10) and torch.isfinite(out).all(), f"{name} on {family}: logits {tuple(out.shape)}"
