"""The model battery: every registered model, tested without writing new test code.

Mirrors timm's model tests: forward at the native size and at small grey/colour sizes without NaN, backward reaching
every parameter, eval determinism, head and feature shapes, `reset_classifier`, a safetensors state-dict round trip,
`torch.export`, observable attention, and numerical parity with the reference implementation wherever the registry
entry names one.
"""
import tempfile

import pytest
import torch
from safetensors.torch import load_file, save_file

from vitlab.core import MODELS, Paper
from vitlab.layers import ObservableAttention, capture_attention
from vitlab.models import ParityNotSupported, count_params, create_model, list_models, parity_check

def _n_params(name):
    with torch.device('meta'): return count_params(create_model(name, img_size=32, num_classes=10))

ALL = list_models()
SIZES = {n: _n_params(n) for n in ALL}
# Models over 30M parameters take seconds just to initialise on 2 CPU cores. In the default run they get the metadata
# checks and parity at their native size (which runs their forward pass); the rest of their battery is `-m slow`.
BIG = [n for n in ALL if SIZES[n] > 30e6]
NOT_BIG = [n for n in ALL if n not in BIG]
SMALL = [n for n in ALL if SIZES[n] < 3e6]   # cheap enough for every extra check
PARITY = [n for n in ALL if MODELS.get(n).parity]
big_slow = lambda names: [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in names]


def _x(model, b=2):
    return torch.randn(b, *model.default_cfg['input_size'])


def test_registry_not_empty():
    assert len(ALL) >= 10 and 'vit_test' in ALL and 'deit_test' in ALL


@pytest.mark.parametrize('name', ALL)
def test_default_cfg_and_paper(name):
    e = MODELS.get(name)
    assert isinstance(e.paper, Paper) and e.paper.arxiv, f"{name} must carry its paper"
    with torch.device('meta'): m = create_model(name)
    cfg = m.default_cfg
    for k in ('architecture', 'num_classes', 'input_size', 'mean', 'std', 'paper', 'first_conv', 'classifier'):
        assert k in cfg, f"{name}.default_cfg lacks {k}"
    assert cfg['architecture'] == name and len(cfg['mean']) == cfg['input_size'][0] == len(cfg['std'])


@pytest.mark.parametrize('name', NOT_BIG)   # BIG models run forward at native size in test_parity_native
def test_forward_native(name):
    m = create_model(name).eval()
    with torch.no_grad(): y = m(_x(m))
    assert y.shape == (2, m.default_cfg['num_classes']) and torch.isfinite(y).all()


@pytest.mark.parametrize('name', big_slow(ALL))
@pytest.mark.parametrize('chans,size', [(1, 28), (3, 32)])
def test_forward_small_inputs(name, chans, size):
    m = create_model(name, in_chans=chans, img_size=size, num_classes=7).eval()
    with torch.no_grad(): y = m(torch.randn(2, chans, size, size))
    assert y.shape == (2, 7) and torch.isfinite(y).all()
    assert m.default_cfg['input_size'] == (chans, size, size)


@pytest.mark.parametrize('name', big_slow(ALL))
def test_backward_reaches_every_parameter(name):
    m = create_model(name, img_size=32, num_classes=5).train()
    y = m(torch.randn(2, m.default_cfg['input_size'][0], 32, 32))
    (sum(t.sum() for t in y) if isinstance(y, tuple) else y.sum()).backward()
    no_grad = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


@pytest.mark.parametrize('name', SMALL)
def test_eval_deterministic_and_heads(name):
    m = create_model(name).eval()
    x = _x(m)
    with torch.no_grad():
        a, b = m(x), m(x)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        feats = m.forward_features(x)
        assert feats.shape[0] == 2 and feats.shape[-1] == m.num_features
        pre = m.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, m.num_features)
        m.reset_classifier(3)
        assert m(x).shape == (2, 3)
        m.reset_classifier(0)
        assert m(x).shape == (2, m.num_features)


@pytest.mark.parametrize('name', SMALL)
def test_safetensors_roundtrip(name):
    m = create_model(name).eval()
    torch.manual_seed(1)
    fresh = create_model(name).eval()
    x = _x(m)
    with tempfile.TemporaryDirectory() as d:
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f'{d}/m.safetensors')
        fresh.load_state_dict(load_file(f'{d}/m.safetensors'))
    with torch.no_grad(): torch.testing.assert_close(fresh(x), m(x))


@pytest.mark.parametrize('name', [n for n in SMALL if n.endswith('_test')])
def test_torch_export(name):
    m = create_model(name).eval()
    x = _x(m)
    ep = torch.export.export(m, (x,))
    with torch.no_grad(): torch.testing.assert_close(ep.module()(x), m(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('name', SMALL)
def test_attention_is_observable(name):
    m = create_model(name).eval()
    if not any(isinstance(mod, ObservableAttention) for mod in m.modules()):
        pytest.skip(f'{name} has no attention')
    x = _x(m)
    with torch.no_grad():
        y = m(x)
        with capture_attention(m) as maps: y_obs = m(x)
    torch.testing.assert_close(y_obs, y, atol=1e-5, rtol=1e-4)   # observing does not change the function
    for name_, ms in maps.items():
        assert len(ms) == 1
        torch.testing.assert_close(ms[0].sum(-1), torch.ones_like(ms[0].sum(-1)), atol=1e-5, rtol=0)


def _parity(name, **kwargs):
    try: r = parity_check(name, **kwargs)
    except ParityNotSupported as e: pytest.skip(f'{name}: the reference cannot be built here: {e}')
    assert r['ok'], r


@pytest.mark.parametrize('name', PARITY)
def test_parity_native(name):
    _parity(name)


@pytest.mark.parametrize('name', big_slow(PARITY))
def test_parity_small_grey(name):
    _parity(name, img_size=28, in_chans=1, num_classes=10)


ONEDNN_PATH = ['vit_mini_patch4_28', 'deit_mini_distilled_patch4_28', 'swin_mini_patch2_window7_28',
               'convnext_mini_patch2_28', 'pvt_v2_mini_s2_28']


@pytest.mark.parametrize('name', ONEDNN_PATH)
def test_parity_on_the_onednn_path(name, monkeypatch):
    """With the work threshold lowered to 1, every eligible linear layer of the model takes oneDNN's kernel (at batch
    2, and below the default thresholds, none does): the logits and the input gradient still match the reference's."""
    import vitlab.layers as L
    from vitlab.models import build_reference_pair, output_logits
    if not L.onednn_linear_enabled(): pytest.skip('the oneDNN linear path is off or unavailable in this PyTorch')
    calls, orig = [], L._onednn_lp
    monkeypatch.setattr(L, '_onednn_lp', lambda *a: calls.append(a[0].shape) or orig(*a))
    with L.onednn_linear(True, min_macs=1):
        _parity(name, batch_size=32)
        assert calls, f'{name}: no layer took the oneDNN path'
        try: ours, ref = build_reference_pair(name)
        except ParityNotSupported as e: pytest.skip(f'{name}: the reference cannot be built here: {e}')
        x = torch.randn(32, *ours.default_cfg['input_size'], generator=torch.Generator().manual_seed(1))
        w = torch.randn(32, ours.num_classes, generator=torch.Generator().manual_seed(2))
        grads = []
        for m in (ours, ref):
            xi = x.clone().requires_grad_()
            (output_logits(m(xi)) * w).sum().backward()
            grads.append(xi.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-3)


def test_parity_check_detects_a_difference(monkeypatch):
    "A negative control: if our forward differs from the reference, parity_check must say so."
    import vitlab.models.vit as vit
    orig = vit.VisionTransformer.forward_head
    monkeypatch.setattr(vit.VisionTransformer, 'forward_head', lambda self, x, pre_logits=False: orig(self, x * 1.001, pre_logits))
    assert not parity_check('vit_test')['ok']


def test_parity_with_several_references_skips_only_the_unbuildable_one():
    "swin_test declares timm and HF; at 28x28 HF cannot run its padded, shifted 7x7 grid: only timm is compared, HF is named."
    r = parity_check('swin_test', img_size=28, in_chans=1, num_classes=10)
    assert r['ok'], r
    assert [p['reference'].split(':')[0] for p in r['per_reference']] == ['timm']
    assert list(r['skipped']) == ['hf:SwinForImageClassification'] and 'pads' in r['skipped']['hf:SwinForImageClassification']


def test_parity_raises_when_no_reference_can_be_built(monkeypatch):
    import vitlab.models.swin as swin
    def _never(model, name, kind): raise ParityNotSupported(f'{kind} refuses')
    monkeypatch.setattr(swin, 'parity_reference', _never)
    with pytest.raises(ParityNotSupported, match='timm refuses.*hf refuses'): parity_check('swin_test')


@pytest.mark.parametrize('name', [n for n in SMALL if n.endswith('_test')])
def test_dynamic_int8_quantization_runs(name):
    "The shipped experiments quantize every model: no forward may reach into a linear layer's `.weight` (a method once quantized)."
    from vitlab.compress import DynamicInt8
    comp = DynamicInt8()
    m = create_model(name).eval()
    if comp.applies_to(m): pytest.skip(comp.applies_to(m))
    x = _x(m)
    with torch.no_grad():
        y = m(x)
        yq = comp.compress(m, None)(x)
    assert yq.shape == y.shape and torch.isfinite(yq).all()
    assert (yq - y).abs().max() < 0.1 * y.abs().max() + 1e-3, (yq - y).abs().max()


@pytest.mark.parametrize('name', [n for n in SMALL if n.endswith('_test')])
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    "ONNX export (the dynamo exporter) and inference in ONNX Runtime give our logits."
    ort = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    m = create_model(name).eval()
    x = _x(m)
    torch.onnx.export(m, (x,), str(tmp_path / 'm.onnx'), dynamo=True)
    sess = ort.InferenceSession(str(tmp_path / 'm.onnx'), providers=['CPUExecutionProvider'])
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad(): torch.testing.assert_close(torch.from_numpy(y), m(x), atol=1e-4, rtol=1e-4)
