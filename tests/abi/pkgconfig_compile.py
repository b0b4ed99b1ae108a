#!/usr/bin/env python3
"""pkgconfig_compile.py: install the build into a temporary DESTDIR and build
examples/hello.c, examples/hello.cpp and examples/load_c.c using nothing but
`pkg-config --cflags --libs barrage` against the installed barrage.pc, the
way a user of the installed library would. Then run each program with no
arguments and expect its usage error (exit 2), proving it links and loads the
installed libbarrage.so.0.

Relocation: the .pc says prefix=/usr/local (the build's prefix). pkgconf's
--define-prefix guesses the prefix from the .pc location by dropping
"pkgconfig" and one more directory, which is wrong for a Debian multiarch
libdir (lib/x86_64-linux-gnu/pkgconfig -> DESTDIR/usr/local/lib). So the
prefix is overridden explicitly with --define-variable=prefix=DESTDIR+prefix,
and the resulting -I/-L paths are asserted to point into DESTDIR.

Usage: pkgconfig_compile.py --meson MESON --build-root DIR --source-root DIR
                            --cc CC --cxx CXX [--keep]"""

import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile


def run(cmd, env=None, check=True):
    print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.stdout.strip():
        print(p.stdout.rstrip())
    if p.stderr.strip():
        print(p.stderr.rstrip())
    if check and p.returncode != 0:
        raise SystemExit(f"FAIL: command exited {p.returncode}")
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meson", required=True)
    ap.add_argument("--build-root", required=True)
    ap.add_argument("--source-root", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--cxx", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()

    if not shutil.which("pkg-config"):
        print("pkg-config not found")
        return 77

    tmp = tempfile.mkdtemp(prefix="barrage-pkgconfig-")
    try:
        destdir = os.path.join(tmp, "destdir")
        out = os.path.join(tmp, "bin")
        os.makedirs(out)
        run([a.meson, "install", "-C", a.build_root, "--destdir", destdir, "--no-rebuild", "--quiet"])

        pcs = glob.glob(os.path.join(destdir, "**", "pkgconfig", "barrage.pc"), recursive=True)
        if len(pcs) != 1:
            raise SystemExit(f"FAIL: expected one installed barrage.pc, found {pcs}")
        pcdir = os.path.dirname(pcs[0])
        headers = glob.glob(os.path.join(destdir, "**", "barrage.h"), recursive=True)
        if len(headers) != 1:
            raise SystemExit(f"FAIL: expected one installed barrage.h, found {headers}")

        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = pcdir
        env.pop("PKG_CONFIG_LIBDIR", None)
        env.pop("PKG_CONFIG_SYSROOT_DIR", None)
        found = run(["pkg-config", "--path", "barrage"], env=env).stdout.strip()
        if os.path.realpath(found) != os.path.realpath(pcs[0]):
            raise SystemExit(f"FAIL: pkg-config resolves barrage to {found}, not the installed {pcs[0]}")
        version = run(["pkg-config", "--modversion", "barrage"], env=env).stdout.strip()
        print(f"barrage.pc version {version}")

        prefix = run(["pkg-config", "--variable=prefix", "barrage"], env=env).stdout.strip()
        if not prefix.startswith("/"):
            raise SystemExit(f"FAIL: prefix in barrage.pc is not absolute: {prefix!r}")
        reloc = destdir + prefix
        flags = run(["pkg-config", f"--define-variable=prefix={reloc}", "--cflags", "--libs", "barrage"],
                    env=env).stdout.split()

        # Every -I and -L must point into DESTDIR, and must exist.
        incs = [f[2:] for f in flags if f.startswith("-I")]
        libdirs = [f[2:] for f in flags if f.startswith("-L")]
        if "-lbarrage" not in flags:
            raise SystemExit(f"FAIL: pkg-config flags lack -lbarrage: {flags}")
        for d in incs + libdirs:
            if not d.startswith(destdir) or not os.path.isdir(d):
                raise SystemExit(f"FAIL: pkg-config path {d} is not an existing directory under {destdir}")
        if not any(os.path.isfile(os.path.join(d, "barrage.h")) for d in incs):
            raise SystemExit(f"FAIL: no -I directory from pkg-config holds barrage.h: {incs}")
        if not any(os.path.exists(os.path.join(d, "libbarrage.so")) for d in libdirs):
            raise SystemExit(f"FAIL: no -L directory from pkg-config holds libbarrage.so: {libdirs}")

        # Show what --define-prefix would have done (informational; see above).
        dp = run(["pkg-config", "--define-prefix", "--cflags", "--libs", "barrage"], env=env, check=False)
        print(f"note: --define-prefix gives: {dp.stdout.strip()}")

        src = os.path.join(a.source_root, "examples")
        cwarn = ["-Wall", "-Wextra", "-Werror", "-pedantic"]
        builds = [
            ("hello", shlex.split(a.cc) + ["-std=c99"] + cwarn + [os.path.join(src, "hello.c")]),
            ("hello_cpp", shlex.split(a.cxx) + ["-std=c++17"] + cwarn + [os.path.join(src, "hello.cpp")]),
            ("load_c", shlex.split(a.cc) + ["-std=c99"] + cwarn + [os.path.join(src, "load_c.c")]),
        ]
        env_run = dict(os.environ)
        env_run["LD_LIBRARY_PATH"] = ":".join(libdirs)
        for name, cmd in builds:
            exe = os.path.join(out, name)
            # Only the flags from pkg-config: no -I into the source tree.
            run(cmd + ["-o", exe] + flags)

            # The program must load the installed libbarrage.so.0, not another one.
            ldd = run(["ldd", exe], env=env_run).stdout
            line = next((l for l in ldd.splitlines() if "libbarrage" in l), "")
            if "libbarrage.so.0" not in line or destdir not in line:
                raise SystemExit(f"FAIL: {name} does not resolve libbarrage.so.0 into {destdir}: {line!r}")

            p = run([exe], env=env_run, check=False)
            if p.returncode != 2 or "usage:" not in p.stderr:
                raise SystemExit(f"FAIL: {name} with no arguments exited {p.returncode} "
                                 f"(expected usage error 2 with 'usage:' on stderr)")
            print(f"ok: {name} built from pkg-config flags alone, exits 2 with usage")
        print("PASS")
        return 0
    finally:
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
