#!/usr/bin/env python3
"""Fails when a public header outside crypto/ and protocol/ reaches a Botan header.

Follows the project's own `#include "..."` lines (paths relative to the repository root)
recursively from every header under the checked folders and reports each chain that ends in
`#include <botan/...>`. Usage: check-botan-boundary.py [REPO_ROOT]
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
CHECKED = ["common", "config", "storage", "net", "actors", "control", "agent", "apps"]
QUOTED = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
BOTAN = re.compile(r'^\s*#\s*include\s+<botan/([^>]+)>', re.M)

cache = {}


def botan_chain(path, seen):
    """The include chain from `path` to a Botan header, or None."""
    if path in cache:
        return cache[path]
    if path in seen:
        return None
    seen.add(path)
    try:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None  # not a project file (a system header in quotes): nothing to follow
    m = BOTAN.search(text)
    result = [path, "<botan/" + m.group(1) + ">"] if m else None
    if result is None:
        for inc in QUOTED.findall(text):
            sub = botan_chain(inc, seen)
            if sub:
                result = [path] + sub
                break
    cache[path] = result
    return result


failures = []
for folder in CHECKED:
    for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
        for name in sorted(files):
            if not name.endswith((".hpp", ".h")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), ROOT)
            chain = botan_chain(rel, set())
            if chain:
                failures.append(" -> ".join(chain))

if failures:
    print("Botan headers are reachable from headers outside crypto/ and protocol/:")
    for f in failures:
        print("  " + f)
    sys.exit(1)
print("no header outside crypto/ and protocol/ reaches a Botan header")
