#!/usr/bin/env python3
"""abi_layout must describe every field of every public struct in barrage.h,
every option row and every status: the bindings trust its output, so a field
added to the header but not to abi_layout.c would go unchecked."""
import argparse
import json
import re
import subprocess
import sys

STRUCTS = {
    "brg_header": (r"typedef struct brg_header \{", r"\} brg_header;"),
    "brg_request": (r"typedef struct brg_request \{", r"\} brg_request;"),
    "brg_result": (r"typedef struct brg_result \{", r"\} brg_result;"),
    "brg_stats": (r"\nstruct brg_stats \{", r"\n\};"),
    "brg_batch_options": (r"typedef struct brg_batch_options \{", r"\} brg_batch_options;"),
    "brg_batch_progress": (r"typedef struct brg_batch_progress \{", r"\} brg_batch_progress;"),
}


def header_fields(header: str, start: str, end: str) -> list:
    m = re.search(start, header)
    body = header[m.end():]
    body = body[: re.search(end, body).start()]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = []
    for decl in body.split(";"):
        decl = decl.strip()
        if not decl:
            continue
        # "uint64_t a, b, c" or "const char *name" or "char x[4]"
        first, *rest = [d.strip() for d in decl.split(",")]
        names.append(re.sub(r"\[.*\]", "", first).split()[-1].lstrip("*"))
        names += [re.sub(r"\[.*\]", "", r).lstrip("*") for r in rest]
    return names


def check(header: str, options: str, layout: dict) -> list:
    errors = []
    for name, (start, end) in STRUCTS.items():
        want = header_fields(header, start, end)
        got = layout["structs"].get(name, {}).get("fields", {})
        if list(got) != want:
            errors.append(f"{name}: header fields {want}\n  abi_layout fields {list(got)}")
        size = layout["structs"].get(name, {}).get("size", 0)
        offsets = sorted((f["offset"], f["size"]) for f in got.values())
        if offsets and offsets[-1][0] + offsets[-1][1] > size:
            errors.append(f"{name}: last field ends past the struct size")
    opts = {int(n): name for n, name in re.findall(r"^\s*X\((\d+), (\w+),", options, re.M)}
    got_opts = {o["number"]: name for name, o in layout["options"].items()}
    if opts != got_opts:
        errors.append(f"options differ: table {opts} vs abi_layout {got_opts}")
    statuses = set("E_" + n for n in re.findall(r"^\s*X\((\w+), -?\d+,", header, re.M))
    if not statuses or statuses - set(layout["status"]):
        errors.append(f"statuses missing from abi_layout: {sorted(statuses - set(layout['status']))}")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layout", required=True, help="the abi_layout executable")
    ap.add_argument("--header", required=True)
    ap.add_argument("--options", required=True, help="barrage_options.h")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    header = open(a.header).read()
    options = open(a.options).read()
    layout = json.loads(subprocess.run([a.layout], check=True, capture_output=True, text=True).stdout)
    errors = check(header, options, layout)
    if a.self_test:
        # The check must notice a field the layout program leaves out.
        broken = json.loads(json.dumps(layout))
        broken["structs"]["brg_stats"]["fields"].pop("cache_hits")
        if not check(header, options, broken):
            errors.append("self-test: a missing brg_stats field went unnoticed")
        broken = json.loads(json.dumps(layout))
        broken["options"].pop("PROXY")
        if not check(header, options, broken):
            errors.append("self-test: a missing option went unnoticed")
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
