"""Wheel build: compiles libbarrage with Meson from the repository root this
file sits in (bindings/python/../..) and bundles it as barrage/_libs/.

Why setuptools and not meson-python: meson-python builds the Meson project
whose root holds pyproject.toml, and a Meson project cannot reach sources
above its root (subdir/subproject stay inside it). Keeping the one Meson
project at the repository root and driving it from here builds exactly the
library the C and C++ suites test.

Environment:
  BARRAGE_SOURCE_DIR        the repository root (when building from a copy)
  BARRAGE_WHEEL_BUILDDIR    Meson build dir to (re)use (default: ROOT/build/wheel)
  BARRAGE_WHEEL_LIBRARY     bundle this already built libbarrage.so.0 instead
                            of compiling (the test suite uses it to stay fast)
"""
import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SONAME = "libbarrage.so.0"


def _root():
    root = os.environ.get("BARRAGE_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
    if not os.path.exists(os.path.join(root, "capi", "barrage.h")):
        sys.exit(f"barrage sources not found at {root} (set BARRAGE_SOURCE_DIR to the checkout)")
    return root


def _meson():
    exe = shutil.which("meson")
    return [exe] if exe else [sys.executable, "-m", "mesonbuild.mesonmain"]


def build_library():
    prebuilt = os.environ.get("BARRAGE_WHEEL_LIBRARY")
    if prebuilt:
        return prebuilt
    root = _root()
    bdir = os.environ.get("BARRAGE_WHEEL_BUILDDIR") or os.path.join(root, "build", "wheel")
    if not os.path.exists(os.path.join(bdir, "build.ninja")):
        subprocess.check_call(_meson() + ["setup", bdir, root, "--buildtype=release",
                                          "-Dtests=false", "-Dbench=false"])
    # Only the library: the CLI, mock server and examples are not in the wheel.
    targets = subprocess.check_output(["ninja", "-C", bdir, "-t", "targets", "all"], text=True)
    lib = next(name for name in (t.split(":")[0] for t in targets.splitlines())
               if re.fullmatch(r"capi/libbarrage\.so\.\d+\.\d+\.\d+", name))
    subprocess.check_call(["ninja", "-C", bdir, lib])
    return os.path.join(bdir, lib)


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "barrage", "_libs")
        os.makedirs(dest, exist_ok=True)
        for old in glob.glob(os.path.join(dest, "libbarrage.so*")):
            os.remove(old)
        shutil.copy2(build_library(), os.path.join(dest, SONAME))


def project_version():
    """The version of the Meson project, so the wheel and libbarrage agree."""
    with open(os.path.join(_root(), "meson.build"), encoding="utf-8") as f:
        m = re.search(r"project\([^)]*?version:\s*'([^']+)'", f.read(), re.S)
    if not m:
        sys.exit("no version: in the root meson.build project()")
    return m.group(1)


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform."""
    def has_ext_modules(self):
        return True


setup(version=project_version(), cmdclass={"build_py": BuildWithLibrary},
      distclass=BinaryDistribution)
