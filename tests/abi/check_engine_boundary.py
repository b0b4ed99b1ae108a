#!/usr/bin/env python3
"""The engine keeps to its side of the C ABI: no file under engine/ names a
brg_* struct (brg_request, brg_result, brg_stats, brg_batch_options) outside
comments; only capi/ converts between them and the engine's own types. The
status codes (BRG_E_*) are shared on purpose and not checked.

--self-test first checks that the scanner finds a use and ignores a comment."""
import argparse
import pathlib
import re
import sys

STRUCTS = re.compile(r"\bbrg_(request|result|stats|batch_options|header)\b")


def strip_comments(text):
    # Block comments, then line comments; string literals are kept (none of
    # the engine's mention a struct name).
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def violations(path, text):
    out = []
    for n, line in enumerate(strip_comments(text).splitlines(), 1):
        if STRUCTS.search(line):
            out.append(f"{path}:{n}: {line.strip()}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True)
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        assert violations("t", "void f(const brg_request* r);"), "a use must be found"
        assert not violations("t", "// turns a brg_result into\n/* brg_stats */ int x;"), "comments are fine"
    bad = []
    files = sorted(p for p in pathlib.Path(a.engine).rglob("*") if p.suffix in (".cpp", ".hpp", ".h"))
    for p in files:
        bad += violations(p, p.read_text())
    if bad:
        print("engine/ must not use the C ABI structs (convert in capi/):", *bad, sep="\n  ")
        return 1
    print(f"{len(files)} engine files, none uses a brg_* struct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
