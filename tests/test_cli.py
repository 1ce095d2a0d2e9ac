"""The `vitlab` command end to end, in temporary folders: a tiny quickstart, bad experiment files, sweeps, skipping
finished runs, interruption (SIGINT and SIGKILL) and resumption with the same command, reports."""
import csv, html.parser, json, os, re, signal, subprocess, sys, time
from pathlib import Path

import pytest

VITLAB = [sys.executable, '-m', 'vitlab']
TINY = ['data.subset=400', 'recipe.batch_size=64', 'recipe.epochs=1', 'model.kwargs={embed_dim: 32, depth: 2, num_heads: 2}']
ENV = {**os.environ, 'PYTHONWARNINGS': 'ignore'}


def vitlab(*args, cwd, timeout=300, check=None):
    p = subprocess.run(VITLAB + list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)
    if check is not None: assert p.returncode == check, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def run_dirs(exp_dir: Path):
    return sorted(p for p in exp_dir.iterdir() if p.is_dir())


def test_quickstart_tiny_end_to_end(tmp_path):
    out = tmp_path / 'runs'
    p = vitlab('run', 'quickstart', *TINY, '--out', str(out), '--no-progress', cwd=tmp_path, check=0)
    runs = run_dirs(out / 'quickstart')
    assert len(runs) == 1
    run = runs[0]
    assert re.fullmatch(r'vit_mini_patch7_28-s0-[0-9a-f]{8}', run.name), run.name
    for f in ('config.yaml', 'env.json', 'run.json', 'metrics.csv', 'model.safetensors', 'results.json', 'report.html',
              'checkpoints/last.safetensors', 'checkpoints/best.safetensors'):
        assert (run / f).exists(), f
    res = json.loads((run / 'results.json').read_text())
    assert 0 <= res['test_accuracy'] <= 1 and res['model'] == 'vit_mini_patch7_28' and res['epochs'] == 1
    assert res['params'] > 0 and res['flops'] > 0 and res['throughput'] > 0 and res['latency_ms'] > 0
    assert 'test accuracy' in p.stdout
    rows = list(csv.DictReader(open(out / 'quickstart' / 'results.csv')))
    assert [(r['run_id'], r['stage']) for r in rows] == [(run.name, 'trained')]
    assert (out / 'quickstart' / 'report.html').exists()
    # the same command again: the finished run is recognised, not recomputed
    p = vitlab('run', 'quickstart', *TINY, '--out', str(out), '--no-progress', cwd=tmp_path, check=0)
    assert 'already finished' in p.stdout and len(run_dirs(out / 'quickstart')) == 1
    # --force runs it again in a new folder; nothing is overwritten
    before = (run / 'model.safetensors').read_bytes()
    vitlab('run', 'quickstart', *TINY, '--out', str(out), '--no-progress', '--force', cwd=tmp_path, check=0)
    assert [p.name for p in run_dirs(out / 'quickstart')] == [run.name, run.name + '-r2']
    assert (run / 'model.safetensors').read_bytes() == before
    assert len(list(csv.DictReader(open(out / 'quickstart' / 'results.csv')))) == 2


BAD = [
    ('model=vit_tset', "model: Unknown model 'vit_tset'. Did you mean 'vit_test'"),
    ('data.img_sise=28', "data.img_sise: unknown key; did you mean 'img_size'?"),
    ('recipe.epochs=many', 'recipe.epochs: Input should be a valid integer'),
    ('recipe.lr=-0.1', 'recipe.lr: Input should be greater than 0 (got -0.1)'),
    ('recipe.batch_size=0', 'recipe.batch_size: Input should be greater than or equal to 1'),
    ('data.dataset=fashion_mnst', "data.dataset: Unknown dataset 'fashion_mnst'. Did you mean"),
    ('recipe.optimizer=adamm', "recipe.optimizer: Unknown optimizer 'adamm'. Did you mean 'adam'"),
    ('recipe.name=baselien', "recipe.name: Unknown recipe 'baselien'. Did you mean 'baseline'"),
    ('compress=[{name: dynamic_int9}]', "compress[0].name: Unknown compressor 'dynamic_int9'. Did you mean 'dynamic_int8'"),
    ('analyze=[{name: confusion_matrx}]', "analyze[0].name: Unknown analysis 'confusion_matrx'. Did you mean 'confusion_matrix'"),
    ('compress=[{name: dynamic_int8, skip_haed: true}]', "compress[0].skip_haed: unknown key; did you mean 'skip_head'?"),
    ('model.kwargs={embed_dimm: 8}', "Did you mean 'embed_dim'"),
    ('seed=[1,1]', 'seed: seeds must not repeat'),
]


@pytest.mark.parametrize('override,expect', BAD)
def test_bad_experiment_fails_without_traceback_or_folder(tmp_path, override, expect):
    p = vitlab('run', 'quickstart', override, '--out', str(tmp_path / 'runs'), cwd=tmp_path, check=2)
    assert expect in p.stderr, p.stderr
    assert 'Traceback' not in p.stderr
    assert not (tmp_path / 'runs').exists(), 'a failed validation must not leave a run folder'


def test_schema_errors_do_not_import_torch(tmp_path):
    "The schema check runs before PyTorch is imported, so a misspelt name is reported in well under a second."
    vitlab('list', 'models', cwd=tmp_path, check=0)   # make sure the catalogue cache exists
    code = ("import sys; from vitlab.cli import main; code = main(['run', 'quickstart', 'model=vit_tset']); "
            "print('torch' in sys.modules, code)")
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, env=ENV)
    assert p.stdout.split() == ['False', '2'], (p.stdout, p.stderr)


def test_bad_yaml_file(tmp_path):
    f = tmp_path / 'bad.yaml'
    f.write_text('name: x\nmodel: {name: vit_test\n')   # unbalanced brace
    p = vitlab('run', str(f), cwd=tmp_path, check=2)
    assert 'could not parse' in p.stderr and 'Traceback' not in p.stderr
    f.write_text('name: x\nmodel: {name: vit_test}\nrecipe: {epochs: 2, lr: 0.001, lerning_rate: 3}\n')
    p = vitlab('run', str(f), cwd=tmp_path, check=2)
    assert "recipe.lerning_rate: unknown key" in p.stderr


def test_sweep_runs_the_grid_and_dry_run_lists_it(tmp_path):
    out = tmp_path / 'runs'
    args = ['run', 'quickstart', *TINY, 'model=vit_test', 'model.kwargs={patch_size: 7}', '--out', str(out), '--no-progress',
            '--sweep', 'recipe.lr=0.001,0.003', '--sweep', 'seed=0,1']
    p = vitlab(*args, '--dry-run', cwd=tmp_path, check=0)
    assert '# 4 runs in' in p.stdout and not out.exists()
    vitlab(*args, cwd=tmp_path, check=0)
    runs = run_dirs(out / 'quickstart')
    assert len(runs) == 4
    rows = list(csv.DictReader(open(out / 'quickstart' / 'results.csv')))
    assert sorted((r['recipe.lr'], r['seed']) for r in rows) == [('0.001', '0'), ('0.001', '1'), ('0.003', '0'), ('0.003', '1')]


def _default_sigint():
    # A test runner started in the background (as CI may be) inherits SIGINT *ignored*, and Python then installs no
    # KeyboardInterrupt handler in the child. Ctrl-C in a terminal is what this test imitates: restore the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args, cwd):
    return subprocess.Popen(VITLAB + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=_default_sigint)


def _wait_for_epochs(exp_dir: Path, proc, n: int, timeout=240):
    "Wait until some run in `exp_dir` has checkpointed `n` epochs."
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        for m in exp_dir.glob('*/metrics.csv'):
            if len(m.read_text().splitlines()) - 1 >= n and (m.parent / 'checkpoints' / 'last.safetensors').exists():
                return m.parent
        time.sleep(0.05)
    raise AssertionError(f"no run reached {n} epochs; {proc.communicate()}")


RESUME_ARGS = ['run', 'quickstart', 'data.subset=500', 'data.augment=true', 'recipe.batch_size=50', 'recipe.epochs=16',
               'model=vit_test', 'model.kwargs={patch_size: 7, drop_path_rate: 0.1}', '--no-progress']


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGKILL])
def test_killed_run_resumes_with_the_same_command_and_same_result(tmp_path, sig):
    "Kill a run after its second epoch, start the same command again: it continues and ends as an uninterrupted run."
    ref = tmp_path / 'ref'
    vitlab(*RESUME_ARGS, '--out', str(ref), cwd=tmp_path, check=0)
    ref_run = run_dirs(ref / 'quickstart')[0]
    out = tmp_path / 'runs'
    proc = _start(RESUME_ARGS + ['--out', str(out)], tmp_path)
    run = _wait_for_epochs(out / 'quickstart', proc, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and 'run the same command again' in err, err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not (run / 'results.json').exists()
    p = vitlab(*RESUME_ARGS, '--out', str(out), cwd=tmp_path, check=0)
    assert 'resuming' in p.stdout
    assert run_dirs(out / 'quickstart') == [run], 'resuming must not create another run folder'
    strip = lambda f: [r.rsplit(',', 1)[0] for r in f.read_text().splitlines()]   # drop the wall-clock column
    assert strip(run / 'metrics.csv') == strip(ref_run / 'metrics.csv')
    res, ref_res = (json.loads((d / 'results.json').read_text()) for d in (run, ref_run))
    assert res['resumed'] is True
    assert (res['test_accuracy'], res['test_loss']) == (ref_res['test_accuracy'], ref_res['test_loss'])
    assert json.loads((run / 'run.json').read_text())['resumptions'] == 1


def test_resume_flag_on_a_run_folder(tmp_path):
    out = tmp_path / 'runs'
    proc = _start(RESUME_ARGS + ['--out', str(out)], tmp_path)
    run = _wait_for_epochs(out / 'quickstart', proc, 1)
    proc.send_signal(signal.SIGKILL); proc.communicate(timeout=60)
    vitlab('run', '--resume', str(run), '--no-progress', cwd=tmp_path, check=0)
    rows = list(csv.DictReader(open(run / 'metrics.csv')))
    assert [int(r['epoch']) for r in rows] == list(range(16))
    p = vitlab('run', '--resume', str(tmp_path), cwd=tmp_path, check=2)
    assert 'is not a run folder' in p.stderr


class _Strict(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.stack, self.scripts = [], []
    def handle_starttag(self, tag, attrs):
        if tag not in ('meta', 'br', 'hr', 'img', 'input', 'link', 'col', 'wbr'): self.stack.append(tag)
        if tag == 'script': self.scripts.append(dict(attrs))
    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def test_report_command(tmp_path):
    out = tmp_path / 'runs'
    vitlab('run', 'quickstart', *TINY, 'model=vit_test', 'model.kwargs={patch_size: 7}', 'analyze=[{name: confusion_matrix}]',
           'compress=[{name: dynamic_int8}]', '--out', str(out), '--no-progress', cwd=tmp_path, check=0)
    target = tmp_path / 'all.html'
    p = vitlab('report', str(out), '--out', str(target), cwd=tmp_path, check=0)
    assert str(target) in p.stdout
    page = target.read_text()
    parser = _Strict(); parser.feed(page); parser.close()
    assert not parser.stack
    assert not [s for s in parser.scripts if 'src' in s], 'the report must not load scripts from anywhere'
    # curves, accuracy vs params / FLOPs / throughput, and the confusion matrix: one plotly figure each
    assert page.count('Plotly.newPlot(') == 5, page.count('Plotly.newPlot(')
    assert 'confusion_matrix' in page and 'dynamic_int8' in page
    p = vitlab('report', str(tmp_path / 'nothing'), cwd=tmp_path, check=2)
    assert 'nothing' in p.stderr


def test_list_commands(tmp_path):
    p = vitlab('list', 'models', 'vit_mini*', cwd=tmp_path, check=0)
    assert 'vit_mini_patch7_28' in p.stdout and 'An Image is Worth 16x16 Words' in p.stdout
    p = vitlab('list', 'datasets', cwd=tmp_path, check=0)
    assert 'fashion_mnist_subset' in p.stdout
    p = vitlab('list', 'experiments', cwd=tmp_path, check=0)
    assert 'quickstart' in p.stdout and 'architectures' in p.stdout
    p = vitlab('list', 'compressors', cwd=tmp_path, check=0)
    assert 'dynamic_int8' in p.stdout and 'skip_head' in p.stdout
    p = vitlab('list', 'recipes', cwd=tmp_path, check=0)
    assert 'baseline' in p.stdout
    p = vitlab('coverage', cwd=tmp_path, check=0)
    assert 'Status:' in p.stdout
    p = vitlab('list', 'modles', cwd=tmp_path, check=2)
    assert 'invalid choice' in p.stderr


def _shipped():
    from vitlab.config import list_experiments
    return list_experiments()


@pytest.mark.parametrize('name', _shipped())
def test_every_shipped_experiment_validates_and_expands(name):
    "A shipped experiment file that no longer validates (a renamed model, recipe or option) fails here, not for a user."
    from vitlab.config import expand, load_experiment
    from vitlab.models import list_models
    runs = expand(load_experiment(name))
    assert runs and all(r.model.name in list_models() for r in runs)


def test_the_record_experiment_keeps_its_limits():
    "fmnist_record is the leaderboard's record attempt: at most 0.5M parameters, the full dataset, no test-set subset."
    from vitlab.config import load_experiment
    from vitlab.models import count_params, create_model
    cfg = load_experiment('fmnist_record')
    spec = cfg.model[0]
    assert count_params(create_model(spec.name, **spec.kwargs)) <= 500_000
    assert cfg.data.dataset == 'fashion_mnist' and cfg.data.subset is None and cfg.data.img_size is None
    assert cfg.recipe.time_budget is None and cfg.recipe.epochs >= 1   # a fixed schedule, so reruns are comparable


@pytest.mark.slow
def test_a_compiled_run_trains_and_saves_a_plain_model(tmp_path):
    "`recipe.compile=true` trains through torch.compile (inductor: a C++ compiler, about a minute) in its own run folder."
    from safetensors.torch import load_file
    from vitlab.models import create_model
    out = tmp_path / 'runs'
    vitlab('run', 'quickstart', *TINY, 'recipe.compile=true', '--out', str(out), '--no-progress', cwd=tmp_path,
           check=0, timeout=900)
    vitlab('run', 'quickstart', *TINY, '--out', str(out), '--no-progress', cwd=tmp_path, check=0)
    runs = run_dirs(out / 'quickstart')
    assert len(runs) == 2   # compiling is a run of its own, not a finished one
    by_compile = {('compile: true' in (r / 'config.yaml').read_text()): r for r in runs}
    assert set(by_compile) == {True, False}
    res = {k: json.loads((r / 'results.json').read_text()) for k, r in by_compile.items()}
    assert res[True]['status'] == 'complete' and res[True]['throughput'] > 0 and res[True]['flops'] == res[False]['flops']
    # the same initialisation and batches: compiled training ends close to eager training
    assert abs(res[True]['test_accuracy'] - res[False]['test_accuracy']) <= 0.05, (res[True], res[False])
    m = create_model('vit_mini_patch7_28', num_classes=10, in_chans=1, img_size=28, embed_dim=32, depth=2, num_heads=2)
    m.load_state_dict(load_file(by_compile[True] / 'model.safetensors'))   # plain parameter names
