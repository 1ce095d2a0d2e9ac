"""The `vitlab` command end to end, in temporary folders: a tiny quickstart, bad experiment files, interruption and resume."""
import csv, json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

VITLAB = [sys.executable, '-c', 'import sys; from vitlab.cli import main; sys.exit(main())']
TINY = ['data.subset=400', 'data.batch_size=64', 'train.epochs=1', 'model.kwargs={embed_dim: 32, depth: 2, num_heads: 2}']


def vitlab(*args, cwd, timeout=300, check=None):
    p = subprocess.run(VITLAB + list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    if check is not None: assert p.returncode == check, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def test_quickstart_tiny_end_to_end(tmp_path):
    p = vitlab('run', 'quickstart', *TINY, '--out', str(tmp_path / 'runs'), '--no-progress', cwd=tmp_path, check=0)
    runs = list((tmp_path / 'runs' / 'quickstart').iterdir())
    assert len(runs) == 1
    run = runs[0]
    for f in ('config.yaml', 'env.json', 'metrics.csv', 'model.safetensors', 'results.json', 'report.html',
              'checkpoints/last.safetensors', 'checkpoints/best.safetensors'):
        assert (run / f).exists(), f
    res = json.loads((run / 'results.json').read_text())
    assert 0 <= res['test_accuracy'] <= 1 and res['model'] == 'vit_mini_patch7_28' and res['epochs'] == 1
    assert 'test accuracy' in p.stdout
    html = (run / 'report.html').read_text()
    assert 'Plotly.newPlot' in html and 'quickstart' in html
    # a second run never overwrites the first
    vitlab('run', 'quickstart', *TINY, '--out', str(tmp_path / 'runs'), '--no-progress', cwd=tmp_path, check=0)
    assert len(list((tmp_path / 'runs' / 'quickstart').iterdir())) == 2


@pytest.mark.parametrize('override,expect', [
    ('model.name=vit_tset', "model.name: Unknown model 'vit_tset'. Did you mean 'vit_test'"),
    ('data.img_sise=28', "data.img_sise: unknown key; did you mean 'img_size'?"),
    ('train.epochs=many', 'train.epochs:'),
    ('train.lr=-0.1', 'train.lr:'),
    ('data.dataset=fashion_mnst', "data.dataset: Unknown dataset 'fashion_mnst'. Did you mean"),
    ('train.optimizer=adamm', "train.optimizer: Unknown optimizer 'adamm'. Did you mean 'adam'"),
])
def test_bad_experiment_fails_fast_without_traceback(tmp_path, override, expect):
    p = vitlab('run', 'quickstart', override, '--out', str(tmp_path / 'runs'), cwd=tmp_path, check=2)
    assert expect in p.stderr, p.stderr
    assert 'Traceback' not in p.stderr
    assert not (tmp_path / 'runs').exists(), 'a failed validation must not leave a run folder'


def test_bad_yaml_file(tmp_path):
    f = tmp_path / 'bad.yaml'
    f.write_text('name: x\nmodel: {name: vit_test\n')   # unbalanced brace
    p = vitlab('run', str(f), cwd=tmp_path, check=2)
    assert 'could not parse' in p.stderr and 'Traceback' not in p.stderr
    f.write_text('name: x\nmodel: {name: vit_test}\ntrain: {epochs: 2, lr: 0.001, lerning_rate: 3}\n')
    p = vitlab('run', str(f), cwd=tmp_path, check=2)
    assert "train.lerning_rate: unknown key" in p.stderr


def test_interrupted_run_resumes(tmp_path):
    "Start a run, interrupt it (Ctrl-C) after its first checkpoint, then `--resume`: the run finishes in the same folder."
    out = tmp_path / 'runs'
    args = ['run', 'quickstart', 'data.subset=300', 'data.batch_size=50', 'train.epochs=12',
            'model.name=vit_test', 'model.kwargs={patch_size: 7}', '--out', str(out), '--no-progress']
    proc = subprocess.Popen(VITLAB + args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    deadline = time.time() + 240
    last = None
    while time.time() < deadline and proc.poll() is None:
        found = list(out.glob('quickstart/*/checkpoints/last.safetensors'))
        if found: last = found[0]; break
        time.sleep(0.05)
    assert last is not None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert 'resume with' in err
    run = last.parent.parent
    assert not (run / 'results.json').exists()
    done_before = len(list(csv.DictReader(open(run / 'metrics.csv'))))
    assert 1 <= done_before < 12
    vitlab('run', '--resume', str(run), '--no-progress', cwd=tmp_path, check=0)
    rows = list(csv.DictReader(open(run / 'metrics.csv')))
    assert [int(r['epoch']) for r in rows] == list(range(12)), [r['epoch'] for r in rows]
    assert json.loads((run / 'results.json').read_text())['resumed'] is True
    assert len(list(out.glob('quickstart/*'))) == 1, 'resuming must not create another run folder'


def test_list_commands(tmp_path):
    p = vitlab('list', 'models', 'vit_mini*', cwd=tmp_path, check=0)
    assert 'vit_mini_patch7_28' in p.stdout and 'An Image is Worth 16x16 Words' in p.stdout
    p = vitlab('list', 'datasets', cwd=tmp_path, check=0)
    assert 'fashion_mnist_subset' in p.stdout
    p = vitlab('list', 'experiments', cwd=tmp_path, check=0)
    assert p.stdout.startswith('quickstart')
    p = vitlab('coverage', cwd=tmp_path, check=0)
    assert 'Status:' in p.stdout
    p = vitlab('list', 'modles', cwd=tmp_path, check=2)
    assert 'invalid choice' in p.stderr
