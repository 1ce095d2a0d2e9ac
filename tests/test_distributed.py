"""The same `vitlab run` under torchrun: 2 CPU processes (gloo) train a tiny experiment with DistributedDataParallel
through fastai, rank 0 alone writes, and the metrics match a single-process run of the same experiment."""
import csv, json, os, subprocess, sys
from pathlib import Path

from vitlab.distributed import free_port

ARGS = ['run', 'quickstart', 'data.subset=512', 'data.augment=false', 'recipe.batch_size=64', 'recipe.epochs=2',
        'model=vit_test', 'model.kwargs={patch_size: 7}', '--no-progress']
ENV = {**os.environ, 'PYTHONWARNINGS': 'ignore', 'OMP_NUM_THREADS': '1'}


def _only_run(out: Path) -> Path:
    runs = [p for p in (out / 'quickstart').iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_two_process_gloo_run_matches_single_process(tmp_path):
    single, ddp = tmp_path / 'single', tmp_path / 'ddp'
    p = subprocess.run([sys.executable, '-m', 'vitlab', *ARGS, '--out', str(single)], capture_output=True, text=True,
                       env=ENV, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    launch = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
              '-m', 'vitlab', *ARGS, '--out', str(ddp)]
    p = subprocess.run(launch, capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    a, b = _only_run(single), _only_run(ddp)
    assert a.name == b.name, 'the run id does not depend on how many processes train it'
    ra, rb = (json.loads((d / 'results.json').read_text()) for d in (a, b))
    assert json.loads((b / 'run.json').read_text())['world_size'] == 2
    # same global batches, so only floating-point summation order differs
    assert abs(ra['test_loss'] - rb['test_loss']) < 1e-3, (ra['test_loss'], rb['test_loss'])
    assert abs(ra['test_accuracy'] - rb['test_accuracy']) <= 2e-3, (ra['test_accuracy'], rb['test_accuracy'])
    ma, mb = (list(csv.DictReader(open(d / 'metrics.csv'))) for d in (a, b))
    assert len(ma) == len(mb) == 2
    for x, y in zip(ma, mb):
        assert abs(float(x['train_loss']) - float(y['train_loss'])) < 1e-3
    # rank 0 alone wrote: one results row, one checkpoint set
    rows = list(csv.DictReader(open(ddp / 'quickstart' / 'results.csv')))
    assert len(rows) == 1
    keys = __import__('safetensors').safe_open(str(b / 'checkpoints' / 'last.safetensors'), 'pt').keys()
    assert not any(k.startswith('model.module.') for k in keys), 'checkpoints must not carry the DDP wrapper prefix'
