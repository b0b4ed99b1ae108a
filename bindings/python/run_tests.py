#!/usr/bin/env python3
"""Runs the Python binding's pytest suite in a venv it creates when missing
(the real openai/anthropic SDKs, httpx, pytest from PyPI).

usage: run_tests.py VENV_DIR [pytest args...]
       run_tests.py VENV_DIR --install-only   (scripts/dev's install step)"""
import os
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = ["pytest>=7", "pytest-asyncio>=0.23", "httpx>=0.25", "openai>=1.0",
                "anthropic>=0.30", "setuptools>=64", "wheel"]
MODULES = ["pytest", "pytest_asyncio", "httpx", "openai", "anthropic", "setuptools"]


def main():
    vdir = os.path.abspath(sys.argv[1])
    py = os.path.join(vdir, "bin", "python")
    if not os.path.exists(py):
        venv.EnvBuilder(with_pip=True).create(vdir)
    probe = subprocess.run([py, "-c", "import " + ", ".join(MODULES)], capture_output=True)
    if probe.returncode != 0:
        subprocess.check_call([py, "-m", "pip", "install", "-q", *REQUIREMENTS])
    if sys.argv[2:] == ["--install-only"]:
        return 0
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # conftest puts this checkout's package first
    os.chdir(HERE)
    return subprocess.call([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *sys.argv[2:]],
                           env=env)


if __name__ == "__main__":
    sys.exit(main())
