"""The notebooks run in JupyterLab, as users meet them (issue 9 item 7).

One test starts `python -m jupyter lab` from this interpreter on a free localhost port (no token, no password,
every Jupyter config/settings/workspaces/runtime/data folder and the IPython profile in a temporary folder, so
the user's own settings are neither used nor touched). Its server root is a temporary copy of the notebooks it
runs, laid out as in `nbs/` and with their stored outputs stripped, so every output on the page comes from this
run and the committed notebooks are never opened, let alone saved. Headless Chromium, driven by Playwright,
opens each notebook at `/lab/tree/<path>`, waits for the kernel to be idle, clicks Run -> Run All Cells in the
menu bar, waits for the run to finish, and then fails on any error output (read from the live notebook model,
from the page and from the notebook as saved through File -> Save Notebook into the copy), on a cell that never
ran, a dead or restarting kernel, an open dialog, an uncaught JavaScript error in the page, or a timeout.

Before the real notebooks it runs a three-cell canary whose second cell raises: the test requires that the
canary's error is caught by every one of those checks and that the cell after it never runs, so a check that
has gone blind fails the test instead of passing it. Screenshots of every notebook after its run go to the
temporary folder (the test prints where; `pytest -rA` or `-s` shows it).

The model notebook is `nbs/models/11_deit.ipynb`: a complete model notebook (the paper, the distilled ViT, timm
parity, registration, `show_doc`) with no `#| slow` cell, and by far the cheapest full "Run All" of the model
notebooks. `jupyter nbconvert --execute` without IN_TEST, on the 2-core machine (CPU user time, then wall time
under load): 11_deit 19 s (41 s), 21_convnext 468 s (277 s), 16_t2t 602 s (375 s), 12_cvt 733 s (420 s); 20_volo
and 10_vit (slow claim checks) ran longer still. On a quiet machine its Run All takes 11-17 s in JupyterLab, the
landing notebook's 13-22 s, and the whole test about 75 s (about 4 min when other work saturates both cores).
The landing notebook is `nbs/index.ipynb`.

Skipped, with the reason, where Playwright, JupyterLab or `/usr/bin/chromium` is missing.
"""
from __future__ import annotations

import json, os, re, signal, socket, subprocess, sys, time, urllib.error, urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NBS = REPO/'nbs'
NOTEBOOKS = ['index.ipynb', 'models/11_deit.ipynb']   # paths relative to nbs/; the copy keeps this layout
CHROMIUM = Path('/usr/bin/chromium')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--disable-sync']
SERVER_START_S = 180    # the server answers /api/status
KERNEL_IDLE_S = 180     # the notebook's kernel has started and is idle
RUN_ALL_S = 600         # one notebook's Run All Cells (the model notebook takes well under a minute alone)
CANARY = 'vitlab_canary.ipynb'

sync_api = pytest.importorskip('playwright.sync_api', reason='playwright is not installed (it comes with the dev extras)')
pytest.importorskip('jupyterlab', reason='jupyterlab is not installed (it comes with the dev extras)')
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f'{CHROMIUM} is missing (Debian package `chromium`)')


# ---------------------------------------------------------------------------------------------------------------
# The server root: copies of the notebooks, outputs stripped

def _stripped(nb: dict) -> dict:
    "A copy of the notebook `nb` without outputs or execution counts."
    nb = json.loads(json.dumps(nb))
    for cell in nb['cells']:
        if cell['cell_type'] == 'code': cell['outputs'], cell['execution_count'] = [], None
    return nb

def _code_cell(src: str, id: str = 'vitlab-check') -> dict:
    return dict(cell_type='code', execution_count=None, id=id, metadata={}, outputs=[], source=src)

def _canary() -> dict:
    "Three cells: one that prints, one that raises, one that must never run."
    kernelspec = json.loads((NBS/NOTEBOOKS[0]).read_text())['metadata']['kernelspec']
    return dict(nbformat=4, nbformat_minor=5, metadata=dict(kernelspec=kernelspec),
                cells=[_code_cell("print('canary alive')", 'alive'), _code_cell("raise ValueError('canary error')", 'raise'),
                       _code_cell("print('this cell must not run')", 'unrun')])

def make_root(root: Path, notebooks=NOTEBOOKS) -> Path:
    """Copy `notebooks` (relative to `nbs/`) into `root`, same layout, outputs stripped, plus the canary.

    The notebooks read nothing relative to their own folder (datasets come through `vitlab.data.data_dir()`,
    which finds the clone's `data/` from the installed package), so the layout is kept only to match `nbs/`.
    """
    for rel in notebooks:
        dst = root/rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(json.dumps(_stripped(json.loads((NBS/rel).read_text())), indent=1))
    (root/CANARY).write_text(json.dumps(_canary(), indent=1))
    return root


# ---------------------------------------------------------------------------------------------------------------
# The JupyterLab server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def _lab_env(home: Path) -> dict:
    "The server's (and so the kernel's) environment: isolated Jupyter folders, the user's view of the notebooks."
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('PYTEST_', 'JUPYTER', 'IPYTHON')) and k != 'IN_TEST'}
    dirs = dict(JUPYTER_CONFIG_DIR='config', JUPYTER_DATA_DIR='data', JUPYTER_RUNTIME_DIR='runtime',
                JUPYTERLAB_SETTINGS_DIR='lab-settings', JUPYTERLAB_WORKSPACES_DIR='lab-workspaces', IPYTHONDIR='ipython')
    for var, sub in dirs.items():
        (home/sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home/sub)
    # No update checks or news from the (offline) server: settings in the temporary settings folder.
    notif = home/'lab-settings'/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings'
    notif.parent.mkdir(parents=True, exist_ok=True)
    notif.write_text(json.dumps(dict(checkForUpdates=False, fetchNews='false')))
    env['JUPYTER_PLATFORM_DIRS'] = '1'
    env['PATH'] = os.pathsep.join([str(Path(sys.executable).parent), env.get('PATH', os.defpath)])
    # The kernel runs as a user runs it (no IN_TEST), but takes only this test worker's share of the cores.
    try:
        import torch
        env.setdefault('OMP_NUM_THREADS', str(torch.get_num_threads()))
    except ImportError: pass
    return env

def _children(pid: int) -> list[int]:
    "Every descendant of `pid` (Linux /proc; empty elsewhere)."
    kids, out = {}, []
    for p in Path('/proc').glob('[0-9]*'):
        try: ppid = int((p/'stat').read_text().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError): continue
        kids.setdefault(ppid, []).append(int(p.name))
    todo = list(kids.get(pid, []))
    while todo:
        c = todo.pop(); out.append(c); todo += kids.get(c, [])
    return out

def _cmdline(pid: int) -> list[str]:
    try: return (Path('/proc')/str(pid)/'cmdline').read_bytes().decode(errors='replace').split('\0')[:-1]
    except OSError: return []

class Lab:
    "A JupyterLab server in its own process group, on localhost, serving `root`."
    def __init__(self, root: Path, home: Path):
        self.root, self.home, self.port = root, home, _free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.log_path = home/'jupyterlab.log'
        self.kernel_pids: set[int] = set()
        cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ServerApp.ip=127.0.0.1',
               f'--ServerApp.port={self.port}', '--ServerApp.port_retries=0', '--IdentityProvider.token=',
               '--ServerApp.password=', '--ServerApp.allow_root=True', f'--ServerApp.root_dir={root}', '--ServerApp.terminals_enabled=False',
               '--LabApp.expose_app_in_browser=True']
        self._log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(cmd, cwd=root, env=_lab_env(home), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, n=25) -> str:
        try: return '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-n:])
        except OSError: return ''

    def wait_ready(self, timeout=SERVER_START_S):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f'JupyterLab exited with code {self.proc.returncode} before it was ready:\n{self.log_tail()}')
            try:
                with urllib.request.urlopen(f'{self.url}/api/status', timeout=5) as r:
                    if r.status == 200: return
            except (urllib.error.URLError, OSError): pass
            try: self.proc.wait(0.25)   # not a sleep: returns early when the server dies
            except subprocess.TimeoutExpired: pass
        raise TimeoutError(f'JupyterLab did not answer {self.url}/api/status within {timeout} s:\n{self.log_tail()}')

    def kernel_processes(self) -> dict[int, list[str]]:
        "The ipykernel processes this server started, by pid (remembered, so `stop` ends them too)."
        cmds = {pid: _cmdline(pid) for pid in _children(self.proc.pid)}
        found = {pid: cmd for pid, cmd in cmds.items() if any('ipykernel' in a for a in cmd)}
        self.kernel_pids |= set(found)
        return found

    def stop(self):
        "Stop the server's process group (it shuts its kernels down), then end any kernel left behind."
        self.kernel_processes()
        if self.proc.poll() is None:
            try: os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError: pass
            try: self.proc.wait(20)
            except subprocess.TimeoutExpired:
                try: os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError: pass
                self.proc.wait(10)
        for pid in self.kernel_pids:   # kernels run in sessions of their own, outside the server's group
            try: os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError): pass
        self._log.close()


# ---------------------------------------------------------------------------------------------------------------
# Driving a notebook through the web UI

# The notebook panel for `path`, through the app object that `--LabApp.expose_app_in_browser` puts on `window`.
_PANEL = """const app = window.jupyterapp;
const panel = app && app.shell ? [...app.shell.widgets('main')].find(w => w.context && w.context.path === path) : undefined;"""

_STATE_JS = '(path) => {' + _PANEL + r"""
  if (!panel || !panel.context.isReady) return {ready: false};
  const session = panel.sessionContext.session, kernel = session ? session.kernel : null;
  const cells = [];
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    const outputs = [];
    for (let j = 0; j < cell.model.outputs.length; j++) {
      const o = cell.model.outputs.get(j).toJSON();
      outputs.push(o.output_type === 'error'
        ? {type: 'error', ename: o.ename, evalue: o.evalue, traceback: (o.traceback || []).join('\n')}
        : {type: o.output_type});
    }
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    cells.push({index, count: cell.model.executionCount, prompt: prompt ? prompt.textContent.trim() : '',
                source: cell.model.sharedModel.getSource(), outputs});
  });
  // Tracebacks as the page shows them: JupyterLab renders error outputs as stderr-typed text.
  const shown = [];
  panel.content.widgets.forEach((cell, index) => {
    cell.node.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').forEach(n => {
      if (/Traceback \(most recent call last\)|^[A-Za-z_][\w.]*(Error|Exception): /m.test(n.textContent))
        shown.push({index, text: n.textContent.slice(0, 400)});
    });
  });
  return {ready: true, cells, shown_errors: shown, dirty: panel.context.model.dirty,
          kernel: kernel ? {name: kernel.name, id: kernel.id, status: kernel.status, connection: kernel.connectionStatus} : null,
          dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText.slice(0, 400))};
}"""

_BAD_KERNEL = ('dead', 'restarting', 'autorestarting', 'terminating')

# True once the kernel is idle (or something went wrong that waiting will not fix).
_KERNEL_IDLE_JS = '(path) => {' + _PANEL + """
  if (document.querySelector('.jp-Dialog')) return true;
  const k = panel && panel.context.isReady && panel.sessionContext.session ? panel.sessionContext.session.kernel : null;
  return !!k && (k.status === 'idle' || %s.includes(k.status));
}""" % json.dumps(list(_BAD_KERNEL))

# True once Run All has finished: kernel idle, no `[*]` prompt, and every code cell ran or one has an error output
# (the kernel then aborts the cells queued after it). Also true on a bad kernel state or an open dialog.
_RUN_DONE_JS = '(path) => {' + _PANEL + """
  if (document.querySelector('.jp-Dialog')) return true;
  if (!panel || !panel.sessionContext.session || !panel.sessionContext.session.kernel) return false;
  const k = panel.sessionContext.session.kernel;
  if (%s.includes(k.status)) return true;
  if (k.status !== 'idle') return false;
  let all = true, error = false, busy = false;
  panel.content.widgets.forEach(cell => {
    if (cell.model.type !== 'code') return;
    if (cell.model.executionCount === null) all = false;
    for (let j = 0; j < cell.model.outputs.length; j++) if (cell.model.outputs.get(j).type === 'error') error = true;
    const p = cell.node.querySelector('.jp-InputPrompt');
    if (p && p.textContent.includes('*')) busy = true;
  });
  return !busy && (all || error);
}""" % json.dumps(list(_BAD_KERNEL))

# True once Run All has visibly started: a cell is queued (`[*]`) or has run.
_STARTED_JS = '(path) => {' + _PANEL + """
  if (!panel) return false;
  let started = false;
  panel.content.widgets.forEach(cell => {
    if (cell.model.type !== 'code') return;
    const p = cell.node.querySelector('.jp-InputPrompt');
    if (cell.model.executionCount !== null || (p && p.textContent.includes('*'))) started = true;
  });
  return started;
}"""

_SAVED_JS = '(path) => {' + _PANEL + ' return !!panel && !panel.context.model.dirty; }'
_SHUTDOWN_JS = '(path) => {' + _PANEL + ' return panel ? panel.sessionContext.shutdown() : null; }'


def _menu(page, menu: str, item: str):
    "Click `menu` in the menu bar, then its entry `item`, as a user does."
    label = lambda cls, text: page.locator(cls, has=page.locator(cls + 'Label', has_text=re.compile(f'^{re.escape(text)}$')))
    label('.lm-MenuBar-item', menu).click()
    label('.lm-Menu-item', item).click()


def _snippet(src: str, n=100) -> str:
    s = ' '.join(src.split())
    return s if len(s) <= n else s[:n] + '...'


def run_in_lab(browser, lab: Lab, path: str, shots: Path) -> dict:
    """Open `path` in JupyterLab, Run All Cells from the menu, save the copy; return what went wrong.

    The result has `problems` (messages; empty means the notebook ran cleanly), `errors` (error outputs in the
    live model), `shown` (tracebacks rendered on the page), `saved_errors` (error outputs in the saved copy),
    `unrun` (code cells without an execution count), `kernel` (name, id, status), `kernel_cmd` (the kernel
    process's command line), `seconds` (Run All Cells to finished), `screenshot`, and the page's uncaught
    `js_errors` (a problem) and `console_errors` (reported, not failed on).
    """
    page = browser.new_page(viewport=dict(width=1400, height=1000))
    js_errors, console_errors, problems = [], [], []
    page.on('pageerror', lambda e: js_errors.append(str(e)))
    page.on('console', lambda m: console_errors.append(m.text[:300]) if m.type == 'error' else None)
    res = dict(path=path, problems=problems, errors=[], shown=[], saved_errors=[], unrun=[], js_errors=js_errors,
               console_errors=console_errors,
               kernel=None, kernel_cmd=None, seconds=None, screenshot=str(shots/(path.replace('/', '__') + '.png')))
    try:
        page.goto(f'{lab.url}/lab/tree/{path}?reset', wait_until='domcontentloaded')
        try: page.wait_for_function(_KERNEL_IDLE_JS, arg=path, timeout=KERNEL_IDLE_S*1000, polling=250)
        except sync_api.TimeoutError:
            st = page.evaluate(_STATE_JS, path)
            problems.append(f'{path}: the kernel was not idle within {KERNEL_IDLE_S} s of opening the notebook '
                            f'(notebook open: {st["ready"]}, kernel: {st.get("kernel")}, dialogs: {st.get("dialogs")})')
            return res
        st = page.evaluate(_STATE_JS, path)
        res['kernel'] = st['kernel']
        res['kernel_cmd'] = next((cmd for cmd in lab.kernel_processes().values()
                                  if st['kernel'] and any(st['kernel']['id'] in a for a in cmd)), None)
        if st['dialogs']: problems.append(f'{path}: a dialog is open after opening the notebook: {st["dialogs"]}')
        if st['kernel']['status'] != 'idle': problems.append(f'{path}: kernel {st["kernel"]["status"]} after opening')
        if problems: return res

        t0 = time.monotonic()
        _menu(page, 'Run', 'Run All Cells')
        try: page.wait_for_function(_STARTED_JS, arg=path, timeout=60_000, polling=100)
        except sync_api.TimeoutError:
            problems.append(f'{path}: Run -> Run All Cells started no cell within 60 s')
            return res
        try: page.wait_for_function(_RUN_DONE_JS, arg=path, timeout=RUN_ALL_S*1000, polling=500)
        except sync_api.TimeoutError:
            st = page.evaluate(_STATE_JS, path)
            pending = [c for c in st['cells'] if c['count'] is None or '*' in c['prompt']]
            where = f'cell {pending[0]["index"]} ({_snippet(pending[0]["source"])!r})' if pending else 'no pending cell'
            problems.append(f'{path}: Run All Cells did not finish within {RUN_ALL_S} s; waiting on {where}; '
                            f'kernel {st["kernel"]}')
            return res
        res['seconds'] = round(time.monotonic() - t0, 1)

        st = page.evaluate(_STATE_JS, path)
        res['kernel'] = st['kernel']
        if st['dialogs']: problems.append(f'{path}: a dialog is open after Run All Cells: {st["dialogs"]}')
        kernel_ok = bool(st['kernel']) and st['kernel']['status'] not in _BAD_KERNEL
        if not kernel_ok: problems.append(f'{path}: the kernel died or is restarting: {st["kernel"]}')
        for c in st['cells']:
            for o in c['outputs']:
                if o['type'] == 'error':
                    res['errors'].append(dict(index=c['index'], ename=o['ename'], evalue=o['evalue']))
                    problems.append(f'{path}: cell {c["index"]} ({_snippet(c["source"])!r}) raised '
                                    f'{o["ename"]}: {o["evalue"]}')
            if c['count'] is None: res['unrun'].append(c['index'])
        res['shown'] = st['shown_errors']
        for s in st['shown_errors']:
            if not any(e['index'] == s['index'] for e in res['errors']):
                problems.append(f'{path}: cell {s["index"]} shows a traceback: {s["text"][:200]!r}')
        if res['unrun'] and not res['errors']:
            problems.append(f'{path}: code cells {res["unrun"]} did not run')
        if st['dialogs'] or not kernel_ok: return res   # a modal dialog blocks the menus

        # Save (into the temporary copy) through the File menu, and check the notebook as written to disk.
        _menu(page, 'File', 'Save Notebook')
        try: page.wait_for_function(_SAVED_JS, arg=path, timeout=60_000, polling=250)
        except sync_api.TimeoutError: problems.append(f'{path}: File -> Save Notebook did not save within 60 s')
        else:
            saved = json.loads((lab.root/path).read_text())
            for i, cell in enumerate(saved['cells']):
                for o in cell.get('outputs', []):
                    if o['output_type'] == 'error': res['saved_errors'].append(dict(index=i, ename=o['ename'], evalue=o['evalue']))
            for e in res['saved_errors']:
                if not any(x['index'] == e['index'] for x in res['errors']):
                    problems.append(f'{path}: the saved copy has an error output in cell {e["index"]}: {e["ename"]}: {e["evalue"]}')
        return res
    finally:
        if js_errors: problems.append(f'{path}: uncaught JavaScript errors in the page: {js_errors}')
        try: page.screenshot(path=res['screenshot'])
        except sync_api.Error: res['screenshot'] = None
        try: page.evaluate(_SHUTDOWN_JS, path)   # free the kernel's memory before the next notebook
        except sync_api.Error: pass
        page.close()


# ---------------------------------------------------------------------------------------------------------------
# The test

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp('jupyterlab')
    server = Lab(make_root(home/'root'), home)
    try:
        server.wait_ready()
        yield server
    finally: server.stop()


@pytest.fixture(scope='module')
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try: yield b
        finally: b.close()


def _check_kernel(res: dict):
    "The kernel JupyterLab launched is the `python3` kernelspec, run by this interpreter (checked in /proc)."
    k, cmd = res['kernel'], res['kernel_cmd']
    assert k and k['name'] == 'python3', f'{res["path"]}: expected the python3 kernel, got {k}'
    if not Path('/proc').is_dir(): return
    assert cmd, f'{res["path"]}: found no ipykernel process for kernel {k["id"]} among the server\'s children'
    exe, mine = Path(cmd[0]), Path(sys.executable)   # e.g. .venv/bin/python3 for .venv/bin/python: same venv
    assert exe.parent.resolve() == mine.parent.resolve() and os.path.samefile(exe, mine) and 'ipykernel_launcher' in cmd, \
        f'{res["path"]}: the kernel runs {cmd}, not this interpreter ({sys.executable}) -m ipykernel_launcher'


def test_notebooks_run_in_jupyterlab(lab, browser):
    shots = lab.home/'screenshots'
    shots.mkdir(exist_ok=True)
    print(f'\nJupyterLab {lab.url}, root {lab.root}, log {lab.log_path}, screenshots {shots}')

    # The canary proves the checks see an error: its raising cell must be caught everywhere, the next never run.
    canary = run_in_lab(browser, lab, CANARY, shots)
    _check_kernel(canary)
    caught = ([e['index'] for e in canary['errors']], [e['index'] for e in canary['saved_errors']],
              [s['index'] for s in canary['shown']], canary['unrun'])
    assert caught == ([1], [1], [1], [2]) and canary['errors'][0]['ename'] == 'ValueError', \
        f'the checks did not catch the canary notebook\'s error as expected: {canary}\nserver log:\n{lab.log_tail()}'

    problems = []
    for path in NOTEBOOKS:
        res = run_in_lab(browser, lab, path, shots)
        print(f'{path}: Run All Cells {res["seconds"]} s, kernel {res["kernel"]} ({res["kernel_cmd"]}), '
              f'screenshot {res["screenshot"]}, console errors {res["console_errors"]}')
        if not res['problems']: _check_kernel(res)
        problems += res['problems']
    assert not problems, '\n'.join(problems) + f'\nscreenshots: {shots}\nserver log ({lab.log_path}):\n{lab.log_tail()}'
