"""The recipe battery: every registered recipe and optimizer, on one fixed batch, without per-recipe test code.

A recipe declares what the battery needs as class attributes (`test_model`, `test_options`, `composable`); see the
`Recipe` contract in `nbs/03_train.ipynb` and the harness in `nbs/recipes/00_recipes.ipynb`.
"""
import tempfile
from pathlib import Path

import pytest
import torch

from vitlab.core import OPTIMIZERS, RECIPES, seed_everything
from vitlab.models import create_model
from vitlab.recipes import clean_loss, fixed_batch_dls, recipe_steps
from vitlab.train import ComposedRecipe, create_recipe, load_checkpoint, recipe_learner, save_checkpoint

RECIPE_NAMES = RECIPES.list()
OPTIMIZER_NAMES = OPTIMIZERS.list()
STEPS = 12       # steps of a recipe on the fixed batch
OPT_STEPS = 16   # steps of an optimizer (SGD with momentum needs more to settle)


def _cls(name): return RECIPES.get(name).fn


def _make(name: str, **extra):
    "The recipe `name` (or 'a+b') with the battery's settings of each part."
    parts = name.split('+')
    opts = {p: {**_cls(p).test_options, **extra.get(p, {})} for p in parts}
    if len(parts) == 1: return create_recipe(name, **opts[name])
    return create_recipe(name, **{p: o for p, o in opts.items() if o})


def _assert_delivers_the_named_model(name, learn):
    "What the recipe saves loads into the model the experiment names: the same parameter and buffer names and shapes."
    recipe = learn.recipe
    final = recipe.final_model(learn)
    want = {k: tuple(v.shape) for k, v in create_model(recipe.test_model, **recipe.model_kwargs()).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in final.state_dict().items()}
    assert got == want, f"{name}: the delivered model differs from {recipe.test_model}: " \
                        f"extra {sorted(set(got) - set(want))[:5]}, missing {sorted(set(want) - set(got))[:5]}"


@pytest.mark.parametrize('name', RECIPE_NAMES)
def test_recipe_lowers_the_loss_on_a_fixed_batch(name):
    r = recipe_steps(_make(name), steps=STEPS)
    assert r['after'] < 0.9 * r['before'], f"{name}: clean loss {r['before']:.4f} -> {r['after']:.4f} in {STEPS} steps"
    _assert_delivers_the_named_model(name, r['learn'])


@pytest.mark.parametrize('name', OPTIMIZER_NAMES)
def test_optimizer_lowers_the_loss_on_a_fixed_batch(name):
    lr = OPTIMIZERS.get(name).meta.get('test_lr', 3e-3)
    r = recipe_steps('baseline', steps=OPT_STEPS, optimizer=name, lr=lr)
    assert r['after'] < 0.9 * r['before'], f"{name}: clean loss {r['before']:.4f} -> {r['after']:.4f} in {OPT_STEPS} steps"


def _params(m): return {k: v.detach().clone() for k, v in m.state_dict().items()}


@pytest.mark.parametrize('name', RECIPE_NAMES)
def test_recipe_resumes_exactly_from_a_checkpoint(name):
    "Two steps, a checkpoint, one more step; a fresh learner loading the checkpoint takes the same third step."
    dls = fixed_batch_dls()
    seed_everything(0)
    recipe = _make(name)
    a = recipe_learner(dls, recipe.test_model, recipe, lr=1e-3, progress=False)
    a.fit(2, 1e-3)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / 'last.safetensors'
        save_checkpoint(a, path, epoch=1)
        a.fit(1, 1e-3)
        seed_everything(1)   # a different start: everything must come from the checkpoint
        recipe_b = _make(name)
        b = recipe_learner(fixed_batch_dls(), recipe_b.test_model, recipe_b, lr=1e-3, progress=False)
        b.create_opt()
        load_checkpoint(b, path)
        b.fit(1, 1e-3)
    pa, pb = _params(recipe.final_model(a)), _params(recipe_b.final_model(b))
    assert pa.keys() == pb.keys()
    for k in pa:
        torch.testing.assert_close(pb[k], pa[k], rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}: {k}: {m}")


COMPOSABLE = [n for n in RECIPE_NAMES if n not in ('deit', 'baseline') and _cls(n).composable]


@pytest.mark.parametrize('name', COMPOSABLE)
def test_recipe_composes_with_the_deit_bundle(name):
    if 'deit' not in RECIPES: pytest.skip('the deit recipe is not registered')
    recipe = _make(f'deit+{name}')
    assert isinstance(recipe, ComposedRecipe)
    r = recipe_steps(recipe, steps=2 * STEPS)   # two recipes' regularisation stacked: give it twice the steps
    assert r['after'] < 0.9 * r['before'], f"deit+{name}: clean loss {r['before']:.4f} -> {r['after']:.4f} in {2 * STEPS} steps"
    _assert_delivers_the_named_model(f'deit+{name}', r['learn'])


def test_the_battery_covers_every_recipe_and_optimizer():
    assert 'baseline' in RECIPE_NAMES and {'adamw', 'sgd'} <= set(OPTIMIZER_NAMES)
    for n in RECIPE_NAMES:
        cls = _cls(n)
        assert isinstance(cls.test_options, dict) and isinstance(cls.test_model, str), n
        cls.Options(**cls.test_options)   # the battery's settings are valid settings


def test_composed_recipe_settings_are_shared_out_by_name():
    with pytest.raises(ValueError, match='names'):
        create_recipe('baseline+baseline')
    with pytest.raises(KeyError, match='Did you mean'):
        create_recipe('baselin')


@pytest.mark.parametrize('name', OPTIMIZER_NAMES)
def test_optimizer_resumes_exactly_from_a_checkpoint(name):
    "The optimizer's state survives a checkpoint: the step after loading equals the step without interruption."
    lr = OPTIMIZERS.get(name).meta.get('test_lr', 3e-3)
    seed_everything(0)
    a = recipe_learner(fixed_batch_dls(), 'vit_test', 'baseline', lr=lr, opt_func=name, progress=False)
    a.fit(2, lr)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / 'last.safetensors'
        save_checkpoint(a, path, epoch=1)
        a.fit(1, lr)
        seed_everything(1)
        b = recipe_learner(fixed_batch_dls(), 'vit_test', 'baseline', lr=lr, opt_func=name, progress=False)
        b.create_opt()
        load_checkpoint(b, path)
        b.fit(1, lr)
    pa, pb = _params(a.model), _params(b.model)
    for k in pa:
        torch.testing.assert_close(pb[k], pa[k], rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}: {k}: {m}")


# ---- recipes in experiment files -------------------------------------------------------------------------------
from vitlab.config import ConfigError, validate_config  # noqa: E402


def _exp(recipe: dict) -> dict:
    return {'name': 't', 'model': 'vit_test', 'recipe': recipe}


@pytest.mark.skipif('deit' not in RECIPES, reason='the deit recipe is not registered')
def test_experiment_file_composes_recipes_and_shares_out_settings():
    cfg = validate_config(_exp({'name': 'deit+distill', 'mixup': 0.5, 'teacher': 'convnext_test', 'teacher_epochs': 1}))
    assert cfg.recipe.name == 'deit+distill' and cfg.recipe.schedule == 'cosine'   # deit's defaults apply
    with pytest.raises(ConfigError, match="Did you mean 'mixup'"):
        validate_config(_exp({'name': 'deit+distill', 'mixupp': 0.5, 'teacher': 'convnext_test', 'teacher_epochs': 1}))
    with pytest.raises(ConfigError, match='recipe.distill.teacher'):
        validate_config(_exp({'name': 'deit+distill'}))            # a required setting of one part
    with pytest.raises(ConfigError, match="Unknown recipe 'dieT'"):
        validate_config(_exp({'name': 'dieT+distill'}))


@pytest.mark.skipif('deit' not in RECIPES, reason='the deit recipe is not registered')
def test_a_run_with_the_deit_recipe_saves_the_ema_weights(tmp_path):
    "End to end through the experiment runner: the saved model is the recipe's final model (the EMA)."
    from safetensors.torch import load_file
    from vitlab.config import load_experiment
    from vitlab.experiment import run_experiment
    cfg = load_experiment('quickstart', ['data.subset=200', 'recipe.batch_size=50', 'recipe.epochs=1', 'recipe.name=deit',
                                         'recipe.repeats=1', 'model.kwargs={embed_dim: 32, depth: 2, num_heads: 2}'])
    res = run_experiment(cfg, root=tmp_path, progress=False, log=lambda *a: None)
    run_dir = res.runs[0].run_dir
    saved = load_file(str(run_dir / 'model.safetensors'))
    ckpt = load_file(str(run_dir / 'checkpoints' / 'last.safetensors'))
    ema = {k[len('cb.EMA.ema.'):]: v for k, v in ckpt.items() if k.startswith('cb.EMA.ema.')}
    assert ema and set(ema) == set(saved)
    for k in saved: torch.testing.assert_close(saved[k], ema[k])
    assert any(not torch.equal(saved[k], ckpt[f'model.{k}']) for k in saved)   # the EMA, not the raw weights


def test_the_shipped_recipes_experiment_gives_each_recipe_its_own_defaults():
    "A sweep over recipe.name: DeiT's points get its cosine schedule, the others the schema's; the file's lr holds for all."
    from vitlab.config import expand, load_experiment
    runs = expand(load_experiment('recipes'))
    by_name = {r.recipe.name: r.recipe for r in runs}
    assert set(by_name) >= {'baseline', 'deit', 'deit+ewa'} and len(runs) == len(by_name)
    assert (by_name['deit'].schedule, by_name['deit'].warmup) == ('cosine', 0.05)
    assert (by_name['deit+ewa'].schedule, by_name['baseline'].schedule) == ('cosine', 'one_cycle')
    assert {r.recipe.lr for r in runs} == {0.002} and {r.recipe.epochs for r in runs} == {10}
    for r in runs: create_recipe(r.recipe.name, **r.recipe.options)   # every point builds
