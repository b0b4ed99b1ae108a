#!/usr/bin/env python3
"""Fails when a batch/ source includes something other than barrage.h, its
own batch/ headers, the standard library and third-party headers.

The batch runner is a client of the C ABI: an engine header would tie it to
the engine's insides again (it used to include core/engine.hpp). A meson
test runs this over batch/; --self-test shows the check catches what it must.

    check_includes.py SOURCE_ROOT      check SOURCE_ROOT/batch
    check_includes.py --self-test      check the checker on made-up sources
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]*)[>"]', re.M)
SOURCE_SUFFIXES = (".hpp", ".cpp", ".h", ".c")


def project_dirs(root):
    """First path parts that would reach into the project: its top-level
    folders and engine/'s folders (the engine's own include root)."""
    names = set()
    for base in (root, os.path.join(root, "engine")):
        if os.path.isdir(base):
            names.update(n for n in os.listdir(base)
                         if os.path.isdir(os.path.join(base, n)) and not n.startswith("."))
    names.discard("batch")
    return names


def violations(root):
    """(file, line number, include, reason) for every include that is not allowed."""
    batch = os.path.join(root, "batch")
    forbidden = project_dirs(root)
    found = []
    for dirpath, _, files in os.walk(batch):
        for name in sorted(files):
            if not name.endswith(SOURCE_SUFFIXES):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for m in INCLUDE.finditer(text):
                kind, target = m.group(1), m.group(2).strip()
                line = text.count("\n", 0, m.start()) + 1
                first = target.replace("\\", "/").split("/")[0]
                if kind == '"':
                    own = target.startswith("batch/") and os.path.isfile(os.path.join(root, target))
                    if target != "barrage.h" and not own:
                        found.append((path, line, target, 'quoted includes may name only "barrage.h" '
                                      'or an existing "batch/..." header'))
                elif first in forbidden or first == "engine" or ".." in target.split("/"):
                    found.append((path, line, target, "reaches into the project's own folders"))
    return found


def check(root):
    found = violations(root)
    for path, line, target, why in found:
        print(f"{os.path.relpath(path, root)}:{line}: #include {target}: {why}", file=sys.stderr)
    if not os.path.isdir(os.path.join(root, "batch")):
        print(f"{root}/batch does not exist", file=sys.stderr)
        return 1
    return 1 if found else 0


def self_test():
    """Builds a small tree with one allowed and several forbidden includes."""
    with tempfile.TemporaryDirectory() as root:
        for d in ("batch", "capi", "engine/core", "engine/http"):
            os.makedirs(os.path.join(root, d))
        files = {
            "batch/ok.hpp": '#pragma once\n#include <string>\n#include <simdjson.h>\n'
                            '#include "barrage.h"\n#include "batch/ok.hpp"\n',
            "batch/bad.cpp": '#include "core/engine.hpp"\n  #  include <http/url.hpp>\n'
                             '#include "engine/core/result.hpp"\n#include "batch/missing.hpp"\n'
                             '#include <engine/loop/clock.hpp>\n#include "../engine/flow/x.hpp"\n',
        }
        for rel, text in files.items():
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        got = sorted((os.path.basename(p), line) for p, line, _, _ in violations(root))
        want = [("bad.cpp", n) for n in range(1, 7)]
        if got != want:
            print(f"self-test: flagged {got}, want {want}", file=sys.stderr)
            return 1
        os.remove(os.path.join(root, "batch/bad.cpp"))
        if violations(root):
            print("self-test: a clean tree was flagged", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(self_test() if sys.argv[1] == "--self-test" else check(sys.argv[1]))
