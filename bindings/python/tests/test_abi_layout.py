"""The ctypes mirrors, option table and status codes against the header, as
printed by tests/abi/abi_layout (BARRAGE_ABI_LAYOUT, contract 2)."""
import ctypes
import json
import os
import subprocess

import pytest

from barrage import _lib, errors
from barrage.client import OPTIONS

MIRRORS = {"brg_header": _lib.BrgHeader, "brg_request": _lib.BrgRequest,
           "brg_result": _lib.BrgResult, "brg_stats": _lib.BrgStats,
           "brg_batch_options": _lib.BrgBatchOptions,
           "brg_batch_progress": _lib.BrgBatchProgress}
# Header options this binding deliberately does not take as Client keywords: none.
NOT_EXPOSED = set()
KINDS = {"int": "INT", "bool": "BOOL", "backend": "BACKEND", "http_version": "INT",
         "str": "STR", "list": "STR"}


@pytest.fixture(scope="module")
def layout():
    exe = os.environ.get("BARRAGE_ABI_LAYOUT")
    if not exe:
        pytest.skip("BARRAGE_ABI_LAYOUT not set (meson test sets it)")
    return json.loads(subprocess.run([exe], capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("name", sorted(MIRRORS))
def test_struct_mirror(layout, name):
    want = layout["structs"][name]
    cls = MIRRORS[name]
    assert ctypes.sizeof(cls) == want["size"], name
    assert ctypes.alignment(cls) == want["align"], name
    got = {f: (getattr(cls, f).offset, getattr(cls, f).size) for f, _ in cls._fields_}
    assert got == {f: (v["offset"], v["size"]) for f, v in want["fields"].items()}, name


def test_options(layout):
    header = {v["name"]: (v["number"], v["kind"]) for v in layout["options"].values()}
    for name, (number, kind) in header.items():
        if name in NOT_EXPOSED:
            continue
        assert name in OPTIONS, f"option {name} ({number}) is not exposed"
        assert OPTIONS[name][0] == number, name
        assert KINDS[OPTIONS[name][1]] == kind, name
    assert set(OPTIONS) <= set(header), set(OPTIONS) - set(header)


def test_status_codes(layout):
    want = {k: v for k, v in layout["status"].items() if k != "E_OK"}
    assert errors.STATUS_CODES == want
    for name, code in want.items():
        if code:
            assert errors.error_for(code).name == "BRG_" + name
