#!/usr/bin/env python3
"""Writes a C++ header holding a text file as a string constant:
embed_text.py INPUT OUTPUT NAME (the build embeds shared_quota.lua this way)."""
import sys

src, out, name = sys.argv[1:4]
text = open(src, encoding="utf-8").read()
delim = "embed"
assert ")" + delim + '"' not in text
with open(out, "w", encoding="utf-8") as f:
    f.write("// Generated from %s by embed_text.py; do not edit.\n#pragma once\n\n" % src.split("/")[-1])
    f.write("namespace barrage {\ninline constexpr char %s[] = R\"%s(%s)%s\";\n}  // namespace barrage\n"
            % (name, delim, text, delim))
