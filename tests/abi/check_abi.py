#!/usr/bin/env python3
"""check_abi.py: the exported symbols of libbarrage must be exactly the ones
the linker version script (capi/barrage.map) names, each bound to its map
node, behind the SONAME libbarrage.so.0; and every function the public header
declares BRG_EXTERN must be in the map (and the other way round).

Usage: check_abi.py --lib LIBBARRAGE.so --map barrage.map --header barrage.h
                    [--soname libbarrage.so.0] [--self-test]

--self-test additionally feeds the checks deliberately broken inputs (a map
missing a symbol, an extra header declaration, a wrong version node) and
fails unless every one of them is caught, so this test can be trusted to fail.
Standard library only; uses readelf from binutils."""

import argparse
import difflib
import re
import subprocess
import sys


def strip_c_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_map(text):
    """Returns ({symbol: node}, [nodes in order], [problems])."""
    text = strip_c_comments(text)
    text = re.sub(r"#[^\n]*", " ", text)
    problems = []
    symbols = {}
    nodes = []
    # NODE { body } [parent] ;
    for m in re.finditer(r"([A-Za-z_][\w.]*)\s*\{(.*?)\}\s*([A-Za-z_][\w.]*)?\s*;", text, re.S):
        node, body = m.group(1), m.group(2)
        nodes.append(node)
        section = None
        for tok in re.finditer(r"(global|local)\s*:|([^;:\s]+)\s*;", body):
            if tok.group(1):
                section = tok.group(1)
                continue
            name = tok.group(2)
            if section == "global":
                if re.search(r"[*?\[]", name):
                    problems.append(f"map node {node}: wildcard '{name}' in global: cannot be checked; list names")
                elif name in symbols:
                    problems.append(f"map: {name} listed twice ({symbols[name]} and {node})")
                else:
                    symbols[name] = node
            elif section is None:
                problems.append(f"map node {node}: '{name}' outside global:/local:")
    if not nodes:
        problems.append("map: no version node found")
    return symbols, nodes, problems


def parse_header(text):
    """Returns (set of BRG_EXTERN function names, [prototypes lacking BRG_EXTERN])."""
    text = strip_c_comments(text)
    # Drop preprocessor directives, including continued lines (the
    # BRG_STATUS_MAP X-macro and the BRG_EXTERN definition itself).
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    text = text.replace('extern "C" {', " ")
    exported = set()
    missing = []
    for stmt in re.split(r"[;{}]", text):
        stmt = " ".join(stmt.split())
        m = re.search(r"\b(brg_\w+)\s*\([^()]*\)$", stmt)
        if not m or stmt.startswith("typedef"):
            continue
        if re.search(r"\bBRG_EXTERN\b", stmt):
            exported.add(m.group(1))
        else:
            missing.append(stmt)
    return exported, missing


def readelf(args, lib):
    out = subprocess.run(["readelf", "-W"] + args + [lib], check=True,
                         capture_output=True, text=True)
    return out.stdout


def parse_dynsyms(dynsym_text):
    """Returns ({name: version or None}, {version-definition symbol names})."""
    exported = {}
    verdef_syms = set()
    for line in dynsym_text.splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(f) < 8 or not f[0].endswith(":") or not f[0][:-1].isdigit():
            continue
        typ, bind, vis, ndx, name = f[3], f[4], f[5], f[6], f[7]
        if ndx == "UND" or bind not in ("GLOBAL", "WEAK", "UNIQUE", "GNU_UNIQUE"):
            continue
        if vis in ("HIDDEN", "INTERNAL"):
            continue
        if "@" in name:
            base, _, ver = name.partition("@")
            ver = ver.lstrip("@")
        else:
            base, ver = name, None
        if ndx == "ABS" and typ == "OBJECT" and ver is None:
            # The linker emits one absolute symbol per version definition.
            verdef_syms.add(base)
            continue
        exported[base] = ver
    return exported, verdef_syms


def soname_of(dynamic_text):
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", dynamic_text)
    return m.group(1) if m else None


def diff(label_a, a, label_b, b):
    return "".join(difflib.unified_diff(
        [s + "\n" for s in sorted(a)], [s + "\n" for s in sorted(b)],
        fromfile=label_a, tofile=label_b, lineterm="\n"))


def check(map_text, header_text, dynsym_text, dynamic_text, want_soname):
    """Returns a list of problems (empty = pass) and prints a short report."""
    problems = []
    map_syms, nodes, p = parse_map(map_text)
    problems += p
    header_syms, header_missing = parse_header(header_text)
    exported, verdefs = parse_dynsyms(dynsym_text)

    # (a) exported symbols == map globals, both directions.
    if set(exported) != set(map_syms):
        problems.append("exported symbols differ from the map's global: names\n" +
                        diff("capi/barrage.map (global:)", map_syms, "libbarrage.so (exported)", exported))

    # (b) SONAME and version nodes.
    soname = soname_of(dynamic_text)
    if soname != want_soname:
        problems.append(f"SONAME is {soname!r}, expected {want_soname!r}")
    for name, ver in sorted(exported.items()):
        if ver is None:
            problems.append(f"{name} is exported without a symbol version")
        elif ver not in nodes:
            problems.append(f"{name}@{ver}: version {ver} is not a node of the map ({', '.join(nodes)})")
        elif name in map_syms and map_syms[name] != ver:
            problems.append(f"{name}@{ver}: the map puts it in {map_syms[name]}")
    for node in nodes:
        if node not in verdefs:
            problems.append(f"map node {node} is not defined in the library (readelf shows {sorted(verdefs)})")
    stray = verdefs - set(nodes)
    if stray:
        problems.append(f"library defines version nodes not in the map: {sorted(stray)}")

    # (c) header BRG_EXTERN functions == map globals.
    if not header_syms:
        problems.append("no BRG_EXTERN function found in the header (parser broken?)")
    if header_syms != set(map_syms):
        problems.append("BRG_EXTERN functions in barrage.h differ from the map's global: names\n" +
                        diff("capi/barrage.h (BRG_EXTERN)", header_syms, "capi/barrage.map (global:)", map_syms))
    for stmt in header_missing:
        problems.append(f"barrage.h declares a function without BRG_EXTERN: {stmt}")

    return problems, {"map": len(map_syms), "nodes": nodes, "exported": len(exported),
                      "header": len(header_syms), "soname": soname}


def self_test(map_text, header_text, dynsym_text, dynamic_text, soname):
    """Each mutation must make check() report at least one problem."""
    some = sorted(parse_map(map_text)[0])[0]
    mutations = {
        "map lacks a symbol the library exports":
            (re.sub(r"\b%s;" % re.escape(some), "", map_text, count=1), header_text, dynsym_text, dynamic_text),
        "map names a symbol the library does not export":
            (map_text.replace("global:", "global:\n    brg_not_exported;", 1), header_text, dynsym_text, dynamic_text),
        "library exports a symbol the map does not name":
            (map_text, header_text,
             dynsym_text + "\n   999: 0000000000001000    10 FUNC    GLOBAL DEFAULT   13 _ZN7barrage6Engine4pollEi\n",
             dynamic_text),
        "exported symbol in a version node the map lacks":
            (map_text, header_text,
             dynsym_text.replace(f"{some}@@{_node_of(map_text, some)}", f"{some}@@BARRAGE_9.9", 1),
             dynamic_text),
        "header declares a BRG_EXTERN function missing from the map":
            (map_text, header_text.replace("#endif /* BARRAGE_H */",
                                           "BRG_EXTERN int brg_new_thing(void);\n#endif /* BARRAGE_H */"),
             dynsym_text, dynamic_text),
        "header declares a function without BRG_EXTERN":
            (map_text, header_text.replace("#endif /* BARRAGE_H */",
                                           "int brg_forgot_extern(int x);\n#endif /* BARRAGE_H */"),
             dynsym_text, dynamic_text),
        "wrong SONAME":
            (map_text, header_text, dynsym_text, dynamic_text.replace(soname, "libbarrage.so.1")),
    }
    failures = 0
    for what, args in mutations.items():
        problems, _ = check(*args, soname)
        if problems:
            print(f"self-test ok: caught '{what}': {problems[0].splitlines()[0]}")
        else:
            print(f"SELF-TEST FAILED: '{what}' was not detected")
            failures += 1
    return failures


def _node_of(map_text, name):
    return parse_map(map_text)[0].get(name, "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--map", required=True)
    ap.add_argument("--header", required=True)
    ap.add_argument("--soname", default="libbarrage.so.0")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()

    with open(a.map) as f:
        map_text = f.read()
    with open(a.header) as f:
        header_text = f.read()
    dynsym_text = readelf(["--dyn-syms"], a.lib)
    dynamic_text = readelf(["-d"], a.lib)

    problems, info = check(map_text, header_text, dynsym_text, dynamic_text, a.soname)
    print(f"library: {a.lib}")
    print(f"soname={info['soname']} map_globals={info['map']} nodes={','.join(info['nodes'])} "
          f"exported={info['exported']} header_brg_extern={info['header']}")
    for p in problems:
        print("FAIL: " + p)
    rc = 1 if problems else 0

    if a.self_test:
        if check_failures := self_test(map_text, header_text, dynsym_text, dynamic_text, a.soname):
            print(f"FAIL: {check_failures} self-test mutation(s) went undetected")
            rc = 1
    if rc == 0:
        print("PASS")
    return rc


if __name__ == "__main__":
    sys.exit(main())
