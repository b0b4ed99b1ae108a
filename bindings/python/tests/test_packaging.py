"""pip install of bindings/python into a fresh venv, then one call against the
mock from a directory outside the source tree, with the bundled library."""
import os
import subprocess
import sys
import textwrap
import venv

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)

SCRIPT = textwrap.dedent("""
    import asyncio, os, sys
    import barrage
    from barrage.testing import MockServer
    here = os.path.dirname(os.path.abspath(barrage.__file__))
    assert barrage.library_path == os.path.join(here, "_libs", "libbarrage.so.0"), barrage.library_path
    assert "site-packages" in here, here

    async def main():
        with MockServer() as m:
            async with barrage.Client(base_url=m.url, ca_file=m.ca_file) as c:
                r = await c.call("/v1/chat/completions",
                                 {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
                assert r.status_code == 200, r
                assert r.json()["object"] == "chat.completion"
                import importlib.metadata as md
                assert md.version("barrage") == barrage.__version__, (md.version("barrage"), barrage.__version__)
                print("OK", barrage.__version__)
    asyncio.run(main())
""")


def test_pip_install_fresh_venv(tmp_path):
    if not os.environ.get("BARRAGE_MOCKSERVER"):
        pytest.skip("BARRAGE_MOCKSERVER not set")
    vdir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(vdir)
    py = str(vdir / "bin" / "python")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    lib = env.pop("BARRAGE_LIBRARY", None)
    # BARRAGE_PACKAGING_FULL=1 compiles libbarrage with Meson inside pip (minutes);
    # otherwise the wheel bundles the library the test run already built.
    if lib and not os.environ.get("BARRAGE_PACKAGING_FULL"):
        env["BARRAGE_WHEEL_LIBRARY"] = lib
    out = subprocess.run([py, "-m", "pip", "install", "-q", PKG], env=env, cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    run = subprocess.run([py, "-c", SCRIPT], env=env, cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("OK "), run.stdout
