"""Repository invariants: the README is generated and current, CI runs the README's command, notebooks follow the
template rules the docs build depends on, every claimed check exists, and the docs pages can be prepared."""
import ast, json, re, shutil, subprocess, sys
from pathlib import Path

import pytest

from vitlab.core import MODELS, catalogue_coverage, coverage, get_registry, module_notebook, paper_catalogue, REGISTRIES, status_line
from vitlab.docs import process_docs, render_readme

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb') if '_proc' not in p.parts and not p.name.startswith('_'))


def _cells(nb):
    return json.loads(nb.read_text(encoding='utf-8'))['cells']


def test_readme_is_generated_from_index():
    assert (ROOT / 'README.md').read_text(encoding='utf-8') == render_readme(ROOT), \
        'README.md differs from nbs/index.ipynb: run `vitlab readme` (after re-running the index notebook)'


def test_readme_opens_with_the_two_commands():
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    block = re.search(r'```bash\n(.*?)```', text, re.S).group(1)
    cmds = [l for l in block.splitlines() if l and not l.startswith('#')]
    assert len(cmds) == 2, cmds
    assert cmds[0].endswith('vitlab run quickstart') and 'nbdev_test' in cmds[1] and 'pytest' in cmds[1]
    ci = (ROOT / '.ci' / 'run').read_text()
    assert "grep -m1 -A1 '^# 2\\. ' README.md" in ci and 'eval "$cmd"' in ci


def test_readme_status_line_is_current():
    assert status_line() in (ROOT / 'README.md').read_text(encoding='utf-8'), \
        're-run nbs/index.ipynb and `vitlab readme`: the registries changed since the README was generated'


def test_coverage_has_one_row_per_registered_method():
    df = coverage()
    assert len(df) == sum(len(r) for r in REGISTRIES.values())
    assert set(df.name[df.registry == 'model']) == set(MODELS)


@pytest.mark.parametrize('nb', NBS, ids=lambda p: str(p.relative_to(ROOT / 'nbs')))
def test_notebook_template_rules(nb):
    "Imports never share a cell with other code (the docs build runs such cells out of context), and outputs are stored."
    cells = _cells(nb)
    assert cells[0]['cell_type'] == 'markdown' and cells[0]['source'][0].startswith('# '), 'must open with an H1 title'
    assert any(l.startswith('> ') for l in cells[0]['source']), 'the title cell needs a `> ` one-line summary'
    for c in cells:
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        if re.search(r'^#\|\s*(export|exports|exporti|default_exp)', src, re.M): continue
        body = '\n'.join(l for l in src.splitlines() if not l.strip().startswith('#|'))
        try: tree = ast.parse(body)
        except SyntaxError: continue
        has = lambda types: any(isinstance(n, types) for n in ast.walk(tree))
        assert not (has((ast.Import, ast.ImportFrom)) and has((ast.Expr, ast.Assign))), f'imports mixed with code:\n{src}'
    code = [c for c in cells if c['cell_type'] == 'code' and c['source']]
    assert any(c.get('outputs') for c in code), f'{nb.name} has no stored outputs: execute it before committing'


NB_MAX_BYTES, OUTPUT_MAX_BYTES = 1_000_000, 400_000
_PLOTLY = 'application/vnd.plotly.v1+json'


@pytest.mark.parametrize('nb', NBS, ids=lambda p: str(p.relative_to(ROOT / 'nbs')))
def test_stored_outputs_are_curated(nb):
    """Stored outputs stay small and reviewable: a notebook under 1 MB, an output under 400 KB, each plotly figure
    stored once (its JSON; the docs build makes the HTML), no library inlined and nothing fetched from the network."""
    size = nb.stat().st_size
    assert size <= NB_MAX_BYTES, f'{nb.name} is {size:,} bytes (limit {NB_MAX_BYTES:,}): its stored outputs need curating'
    bad = []
    for i, c in enumerate(_cells(nb)):
        for o in c.get('outputs', []):
            data = o.get('data', {})
            n = len(json.dumps(o))
            if n > OUTPUT_MAX_BYTES: bad.append(f'cell {i}: an output of {n:,} bytes')
            if _PLOTLY in data and 'text/html' in data: bad.append(f'cell {i}: a plotly figure stored twice (JSON and HTML)')
            h = data.get('text/html', '')
            h = ''.join(h) if isinstance(h, list) else h
            if 'plotly.js v' in h or 'window.PlotlyConfig' in h: bad.append(f'cell {i}: plotly.js inlined in an output')
            if re.search(r'<script[^>]*\bsrc="(?:https?:)?//', h): bad.append(f'cell {i}: an output fetches a script')
    assert not bad, f'{nb.name}:\n' + '\n'.join(bad)


def _notebook_of(module_name):
    return ROOT / 'nbs' / module_notebook(module_name)


@pytest.mark.parametrize('name', [e.name for r in REGISTRIES.values() for e in r.entries() if e.claim])
def test_claimed_claim_checks_exist(name):
    e = next(r.get(name) for r in REGISTRIES.values() if name in r)
    nb = _notebook_of(e.module)
    md = [''.join(c['source']) for c in _cells(nb) if c['cell_type'] == 'markdown']
    assert any(s.lstrip().startswith('## Claim check') for s in md), f'{nb} declares a claim check but has none'


_ENTRIES = [e for r in REGISTRIES.values() for e in r.entries()]


@pytest.mark.parametrize('module', sorted({e.module for e in _ENTRIES}))
def test_method_notebooks_cite_their_paper(module):
    papers = {e.paper for e in _ENTRIES if e.module == module and e.paper}
    text = _notebook_of(module).read_text(encoding='utf-8')
    for p in papers:
        assert p.arxiv in text and str(p.year) in text and p.title.split(':')[0] in text, f'{module} must cite {p.title}'


def test_nbdev_export_leaves_no_diff():
    if shutil.which('git') is None or not (ROOT / '.git').exists(): pytest.skip('not a git checkout')
    if subprocess.run(['git', 'diff', '--quiet', '--', 'nbs', 'vitlab'], cwd=ROOT).returncode != 0:
        pytest.skip('the working tree has uncommitted changes in nbs/ or vitlab/; this check runs on clean checkouts (CI)')
    subprocess.run([str(Path(sys.executable).parent / 'nbdev_export')], cwd=ROOT, check=True)
    diff = subprocess.run(['git', 'status', '--porcelain', '--', 'vitlab'], cwd=ROOT, capture_output=True, text=True).stdout
    assert diff == '', f'nbdev_export changed generated code; export and commit it:\n{diff}'


def test_docs_pages_can_be_prepared():
    "The nbdev_proc_nbs step of the docs build (imports, exports and show_doc cells executed; processors applied)."
    proc = process_docs(ROOT)
    for nb in NBS:
        assert (proc / nb.relative_to(ROOT / 'nbs')).exists(), nb
    assert (proc / '_quarto.yml').exists() and (proc / 'sidebar.yml').exists()


def test_registered_paper_numbers_match_the_catalogue():
    "A method's paper number must point at its paper in vitlab/papers.csv (the coverage page joins the two by number)."
    cat = paper_catalogue().set_index('number')
    wrong = [(e.name, e.paper.number, e.paper.title, cat.title[e.paper.number]) for r in REGISTRIES.values()
             for e in r.entries() if e.paper and e.paper.number is not None
             if e.paper.title.split(':')[0].lower() != cat.title[e.paper.number].split(':')[0].lower()]
    assert not wrong, wrong


def test_coverage_page_lists_every_catalogue_paper_with_its_notebook():
    cc = catalogue_coverage()
    assert len(cc) == len(paper_catalogue().query("`class` != 'OUT'"))
    started = cc[cc.status != 'not started']
    assert len(started) and all(started.notebooks != ''), started[started.notebooks == '']
    for nbs in started.notebooks:
        for nb in nbs.split(', '): assert (ROOT / 'nbs' / nb).exists(), nb
