"Registry behaviour that needs real IPython shells: run in a subprocess so the shells do not leak into other tests."
import subprocess, sys, textwrap

# Two notebooks run one after the other in one process, as nbdev_test's workers do: the first redefines a packaged
# model and registers a scratch one; the second must see only the package's entries again.
SCRIPT = textwrap.dedent('''
    from execnb.shell import CaptureShell
    first = CaptureShell()
    first.run("""
    from vitlab.models import create_model
    from vitlab.core import register_model, list_models
    import vitlab.models.vit as pkg
    class VisionTransformer(pkg.VisionTransformer): pass
    @register_model
    def vit_test(**kw): return VisionTransformer(img_size=28, patch_size=7, in_chans=1, embed_dim=16, depth=1, num_heads=2)
    @register_model
    def scratch_model(**kw): return None
    ok_first = type(create_model('vit_test')) is VisionTransformer and 'scratch_model' in list_models()
    """)
    assert first.user_ns['ok_first'], first.exc
    second = CaptureShell()
    second.run("""
    from vitlab.models import create_model
    from vitlab.models.vit import VisionTransformer
    from vitlab.core import list_models
    ok_second = type(create_model('vit_test')) is VisionTransformer and 'scratch_model' not in list_models()
    """)
    assert second.user_ns['ok_second'], second.exc
    print('OK')
''')

def test_notebook_registrations_do_not_leak_into_the_next_notebook():
    r = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith('OK'), r.stdout[-2000:] + r.stderr[-4000:]
