"""The documentation site: the course sidebar lists every notebook, every public function and class has its show_doc
entry, and the Quarto-free build (`vitlab.docs.build_site`) gives a site whose links and anchors resolve and whose
every page loads in headless Chromium without an error, with its plotly figures drawn.

The site is built once per test session into `_site/` (with pytest-xdist, the first worker to need it builds it
and the others wait for it and reuse it)."""
import html, importlib, inspect, json, os, re, shutil, threading, uuid, zlib
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import tempfile

import pytest

from vitlab.docs import PLOTLY_JS, PLOTLY_LOADER, SITE_LIBS, _docs_lock, _front_matter, _scan, build_site, doc_notebooks, sidebar_problems, site_problems

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / '_site'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--disable-sync']
_RUN_ID = os.environ.get('PYTEST_XDIST_TESTRUNUID') or uuid.uuid4().hex   # the same in every worker of one run


@contextmanager
def _lock(name):
    try: import fcntl
    except ImportError: yield; return
    path = Path(tempfile.gettempdir()) / f'vitlab-{name}-{zlib.crc32(str(ROOT).encode()):08x}.lock'
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try: yield
        finally: fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope='session')
def site():
    "The site, built once for this test run."
    stamp = SITE / SITE_LIBS / 'test-run'
    with _lock('test-site'):
        if not (stamp.exists() and stamp.read_text() == _RUN_ID):
            build_site(ROOT, SITE)
            stamp.write_text(_RUN_ID)
    return SITE


def _pages(site):
    "notebook (relative to nbs/) -> page (relative to the site), as the build recorded it."
    return json.loads((site / SITE_LIBS / 'pages.json').read_text())


# --- item 1: one site configuration, the course sidebar, show_doc for the public API ------------------------------

def test_quarto_config_is_the_top_level_one():
    link = ROOT / 'nbs' / '_quarto.yml'
    assert link.is_symlink() and link.resolve() == (ROOT / '_quarto.yml').resolve(), \
        'nbs/_quarto.yml must be a symlink to the top-level _quarto.yml (one site configuration)'
    assert re.search(r'^custom_sidebar\s*=\s*True\s*$', (ROOT / 'settings.ini').read_text(), re.M), \
        'custom_sidebar = True keeps nbdev from replacing the committed course sidebar'
    assert re.search(r'metadata-files:.*sidebar\.yml', (ROOT / '_quarto.yml').read_text())


def test_quarto_build_ships_plotly_js_once_and_offline():
    "Quarto's site gets plotly.js from _proc/ (a resource), not from a CDN; nbdev's processing runs PlotlySnippets."
    import yaml
    cfg = yaml.safe_load((ROOT / '_quarto.yml').read_text(encoding='utf-8'))
    assert PLOTLY_JS in cfg['project'].get('resources', []), cfg['project']
    assert not re.search(r'https?://[^\s"]*plotly', (ROOT / '_quarto.yml').read_text(encoding='utf-8'))
    assert re.search(r'^procs\s*=\s*vitlab\.docs:PlotlySnippets\s*$', (ROOT / 'settings.ini').read_text(), re.M)


def test_sidebar_lists_every_notebook_in_course_order():
    probs = sidebar_problems(ROOT)
    assert not probs, 'nbs/sidebar.yml:\n' + '\n'.join(probs)


def _show_doc_names(nb_path):
    "Names with a show_doc entry in a processed notebook (the headings of show_doc's Markdown output)."
    names = set()
    for c in json.loads(nb_path.read_text(encoding='utf-8'))['cells']:
        if c['cell_type'] != 'code' or 'show_doc(' not in ''.join(c['source']): continue
        for o in c.get('outputs', []):
            md = ''.join(o.get('data', {}).get('text/markdown', ''))
            names |= set(re.findall(r'^#{2,4}\s+([\w.]+)\s*$', md, re.M))
    return names


def test_every_public_function_and_class_has_show_doc(site):
    "Every function and class in a module's `__all__` has a show_doc entry on its page, at the anchor nbdev's doclinks use."
    from vitlab._modidx import d
    proc = ROOT / '_proc'
    shown = {}       # page -> names with show_doc output
    with _docs_lock(ROOT):                  # another worker may be preparing _proc/ (tests/test_repo.py)
        for nb in proc.rglob('*.ipynb'):
            rel = nb.relative_to(proc)
            fm = _front_matter(json.loads(nb.read_text(encoding='utf-8'))['cells'])
            shown[(rel.parent / fm.get('output-file', rel.stem + '.html')).as_posix()] = _show_doc_names(nb)
    missing, checked, ids = [], 0, {}
    for mod, syms in d['syms'].items():
        m = importlib.import_module(mod)
        for name in getattr(m, '__all__', []):
            obj = getattr(m, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, '__module__', None) != mod: continue
            checked += 1
            if f'{mod}.{name}' not in syms: missing.append(f'{mod}.{name}: not in vitlab/_modidx.py'); continue
            page, _, anchor = syms[f'{mod}.{name}'][0].partition('#')
            if name not in shown.get(page, ()): missing.append(f'{mod}.{name}: no show_doc output on {page}'); continue
            if page not in ids: ids[page] = _scan(site / page).ids if (site / page).exists() else set()
            if anchor not in ids[page]: missing.append(f'{mod}.{name}: no #{anchor} on the built {page}')
    assert checked > 300, checked
    assert not missing, f'{len(missing)} of {checked} public names:\n' + '\n'.join(missing)


def test_doclinks_of_names_defined_twice_point_at_the_page_itself(site):
    """nbdev links a backticked bare name that several modules define (`checkpoint_filter_fn`, `parity_reference`)
    to one of them, whichever page the reader is on; such a link is right only on the page that defines it."""
    from collections import defaultdict
    from vitlab._modidx import d
    base = d['settings']['doc_host'].rstrip('/') + '/' + d['settings']['doc_baseurl'].strip('/') + '/'
    pages_of, full_names = defaultdict(set), defaultdict(list)
    for mod, syms in d['syms'].items():
        for full, (url, _) in syms.items():
            pages_of[full[len(mod) + 1:]].add(url.partition('#')[0]); full_names[full[len(mod) + 1:]].append(full)
    link = re.compile(r'\[`([\w.]+?)(?:\(\))?`\]\(' + re.escape(base) + r'([^)#]*)')
    probs, proc = [], ROOT / '_proc'
    with _docs_lock(ROOT):
        for nb in sorted(proc.rglob('*.ipynb')):
            rel = nb.relative_to(proc)
            cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
            page = (rel.parent / _front_matter(cells).get('output-file', rel.stem + '.html')).as_posix()
            for c in cells:
                if c['cell_type'] != 'markdown': continue
                for name, target in link.findall(''.join(c['source'])):
                    if len(pages_of.get(name, ())) > 1 and target != page:
                        probs.append(f'nbs/{rel.as_posix()}: `{name}` links to {target}, but {len(full_names[name])} modules '
                                     f'define it: write the qualified name, one of `' + '`, `'.join(sorted(full_names[name])) + '`')
    assert not probs, f'{len(probs)} ambiguous cross-references:\n' + '\n'.join(sorted(set(probs)))


# --- item 2: the built site ---------------------------------------------------------------------------------------

def test_every_notebook_has_a_page_with_title_and_summary(site):
    pages = _pages(site)
    assert sorted(pages) == doc_notebooks(ROOT)
    bad = []
    for nb, page in pages.items():
        text = (site / page).read_text(encoding='utf-8')
        title = re.search(r'<h1 class="title">(.*?)</h1>', text)
        desc = re.search(r'<p class="description">(.*?)</p>', text)
        if not (title and title.group(1).strip() and desc and desc.group(1).strip()): bad.append(f'{page} ({nb})')
        if 'class="vl-sidebar"' not in text or 'class="vl-navbar"' not in text: bad.append(f'{page}: no sidebar or navbar')
        if '<title>' + html.escape(title.group(1) if title else '?') not in text: bad.append(f'{page}: no <title>')
    assert not bad, 'pages without a title, a one-line summary or the site frame:\n' + '\n'.join(bad)
    cvt = (site / pages['models/12_cvt.ipynb']).read_text(encoding='utf-8')
    assert '<a aria-current="page" class="active" href="cvt.html">CvT</a>' in cvt, 'the sidebar marks the current page'


def test_site_links_and_anchors_resolve(site):
    "The link checker: every local href/src names a file of the site and every #anchor an id on its page."
    probs = site_problems(site)
    assert not probs, f'{len(probs)} broken internal links:\n' + '\n'.join(probs)


def test_plotly_js_is_shipped_once(site):
    lib = site / SITE_LIBS / 'plotly.min.js'
    assert lib.stat().st_size > 1_000_000
    head = lib.read_text(encoding='utf-8')[:2000]
    with_figs, bad = 0, []
    for page in site.rglob('*.html'):
        text = page.read_text(encoding='utf-8')
        rel = page.relative_to(site).as_posix()
        srcs = re.findall(r'<script[^>]*\bsrc="([^"]+)"', text)
        bad += [f'{rel}: fetches {s}' for s in srcs if re.match(r'^(?:https?:)?//', s)]
        if head in text: bad.append(f'{rel}: inlines plotly.js')
        if re.search(r'<div[^>]*class="plotly-graph-div"', text):
            with_figs += 1
            if '../' * rel.count('/') + f'{SITE_LIBS}/plotly.min.js' not in srcs: bad.append(f'{rel}: has a figure but no plotly.js')
    assert with_figs >= 20, with_figs
    assert not bad, '\n'.join(bad)


def _figure_html(nb_path) -> list[str]:
    "The text/html of every stored figure of a processed notebook."
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    return [''.join(h) if isinstance(h, list) else h for c in nb['cells'] if c['cell_type'] == 'code'
            for o in c.get('outputs', []) for h in [o.get('data', {}).get('text/html', '')] if 'Plotly.newPlot' in h]


def test_processed_figures_are_snippets_with_one_loader_per_page(site):
    "In _proc/ (what Quarto renders) no figure is left as JSON, each is a snippet, and a page's first one loads plotly.js."
    proc = ROOT / '_proc'
    assert (proc / PLOTLY_JS).stat().st_size > 1_000_000
    with_figs, bad = 0, []
    for nb in sorted(proc.rglob('*.ipynb')):
        rel = nb.relative_to(proc).as_posix()
        if '.ipynb_checkpoints' in rel: continue
        text = nb.read_text(encoding='utf-8')
        if '"application/vnd.plotly.v1+json"' in text: bad.append(f'{rel}: a figure left as plotly JSON')
        figs = _figure_html(nb)
        if not figs: continue
        with_figs += 1
        if not figs[0].startswith(PLOTLY_LOADER): bad.append(f'{rel}: the first figure does not load plotly.js')
        if sum(PLOTLY_LOADER in f for f in figs) != 1: bad.append(f'{rel}: {sum(PLOTLY_LOADER in f for f in figs)} loaders')
        if any(re.search(r'<script[^>]*\bsrc="https?:', f) for f in figs): bad.append(f'{rel}: a figure fetches a script')
    assert with_figs >= 20, with_figs
    assert not bad, '\n'.join(bad)


# --- item 3: every page in a real browser -------------------------------------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@contextmanager
def _serve(folder):
    "The site over HTTP on a free port of 127.0.0.1, as a host would serve it."
    server = ThreadingHTTPServer(('127.0.0.1', 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try: yield f'http://127.0.0.1:{server.server_address[1]}/'
    finally:
        server.shutdown(); server.server_close()


_FIGURE_AREAS = """() => Array.from(document.querySelectorAll('.plotly-graph-div'), d => {
    const s = d.querySelector('.main-svg'); if (!s) return 0;
    const r = s.getBoundingClientRect(); return r.width * r.height; })"""
_IDS_AND_LINKS = """() => [Array.from(document.querySelectorAll('[id]'), e => e.id)
                          .concat(Array.from(document.querySelectorAll('a[name]'), e => e.name)),
                     Array.from(document.querySelectorAll('a[href]'), a => a.href)]"""


def _browser():
    "playwright's sync API and Debian's chromium, or a skip saying what is missing."
    sync_api = pytest.importorskip('playwright.sync_api', reason='the browser test needs the playwright package (a dev requirement)')
    chromium = shutil.which('chromium') or ('/usr/bin/chromium' if Path('/usr/bin/chromium').exists() else None)
    if chromium is None: pytest.skip('the browser test needs Debian\'s chromium (apt-get install chromium); .ci/run installs it')
    return sync_api, chromium


def test_every_page_in_chromium(site):
    "Open every page: no console error, page error or failed request; figures drawn; maths typeset; links resolve."
    sync_api, chromium = _browser()
    pages = sorted(_pages(site).values())
    shots = site / '_screenshots'
    shots.mkdir(exist_ok=True)
    errors, ids, links, figures, maths = [], {}, {}, 0, 0
    with _serve(site) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={'width': 1400, 'height': 900})
        current = ['']
        page.on('console', lambda m: m.type == 'error' and errors.append(f'{current[0]}: console error: {m.text}'))
        page.on('pageerror', lambda e: errors.append(f'{current[0]}: page error: {e}'))
        page.on('requestfailed', lambda r: errors.append(f'{current[0]}: request failed: {r.url} ({r.failure})'))
        page.on('response', lambda r: r.status >= 400 and errors.append(f'{current[0]}: HTTP {r.status}: {r.url}'))
        for rel in pages:
            current[0] = rel
            page.goto(base + rel, wait_until='load')
            n = page.locator('.plotly-graph-div').count()
            if n:
                try: page.wait_for_function(f'() => ({_FIGURE_AREAS})().every(a => a > 0)', timeout=20_000)
                except sync_api.TimeoutError: pass
                areas = page.evaluate(_FIGURE_AREAS)
                drawn = sum(a > 0 for a in areas)
                figures += drawn
                if drawn < n: errors.append(f'{rel}: {n - drawn} of {n} plotly figures not drawn')
            if page.evaluate('() => !!(window.MathJax && window.MathJax.startup)'):
                page.evaluate('() => MathJax.startup.promise')
                bad = page.locator('mjx-merror').count()
                maths += page.locator('mjx-container').count()
                if bad: errors.append(f'{rel}: {bad} formulas MathJax cannot typeset, e.g. '
                                      f"{page.locator('mjx-merror').first.get_attribute('data-mjx-error')}")
            ids[rel], links[rel] = page.evaluate(_IDS_AND_LINKS)
            if rel in ('index.html', 'models/cvt.html'):
                page.screenshot(path=str(shots / (rel.replace('/', '_').replace('.html', '.png'))))
        browser.close()
    for rel, hrefs in links.items():       # internal links, as the browser resolved them
        for href in hrefs:
            if not href.startswith(base): continue
            path, _, frag = href[len(base):].partition('#')
            path = path.split('?')[0] or 'index.html'
            if path.endswith('/'): path += 'index.html'
            if not (site / path).is_file(): errors.append(f'{rel}: broken link {href}')
            elif frag and path.endswith('.html'):
                if path not in ids: ids[path] = _scan(site / path).ids
                if frag not in ids[path]: errors.append(f'{rel}: broken link {href} (no #{frag})')
    assert not errors, f'{len(errors)} problems in {len(pages)} pages:\n' + '\n'.join(errors[:200])
    assert figures >= 50 and maths >= 100, (figures, maths)
    assert (shots / 'index.png').stat().st_size > 10_000 and (shots / 'models_cvt.png').stat().st_size > 10_000


def test_a_page_laid_out_as_quarto_writes_it_draws_its_figures(site, tmp_path):
    """Quarto is not installed here, so this is the part of its site that is ours: a page one folder deep, with the
    `quarto:offset` tag Quarto writes into each page and plotly.js at the site root (the `resources` entry), holding
    the processed figures of a real notebook. The loader must fetch plotly.js from the root and every figure draw."""
    sync_api, chromium = _browser()
    proc = ROOT / '_proc'
    figs = _figure_html(proc / 'analysis' / '02_gradcam.ipynb')
    assert len(figs) >= 3, len(figs)
    shutil.copy2(proc / PLOTLY_JS, tmp_path / PLOTLY_JS)
    (tmp_path / 'analysis').mkdir()
    (tmp_path / 'analysis' / 'gradcam.html').write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="quarto:offset" content="../"><title>t</title>'
        '<link rel="icon" href="data:,"></head>'
        '<body>' + ''.join(f'<div class="cell-output-display">{f}</div>' for f in figs) + '</body></html>', encoding='utf-8')
    errors, fetched = [], []
    with _serve(tmp_path) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={'width': 1400, 'height': 900})
        page.on('console', lambda m: m.type == 'error' and errors.append(f'console error: {m.text}'))
        page.on('pageerror', lambda e: errors.append(f'page error: {e}'))
        page.on('requestfailed', lambda r: errors.append(f'request failed: {r.url}'))
        page.on('response', lambda r: (fetched.append(r.url[len(base):]), r.status >= 400 and errors.append(f'HTTP {r.status}: {r.url}')))
        page.goto(base + 'analysis/gradcam.html', wait_until='load')
        page.wait_for_function(f'() => ({_FIGURE_AREAS})().every(a => a > 0)', timeout=30_000)
        areas = page.evaluate(_FIGURE_AREAS)
        browser.close()
    assert not errors, errors
    assert fetched.count(PLOTLY_JS) == 1, fetched
    assert len(areas) == len(figs) and all(a > 0 for a in areas), areas
