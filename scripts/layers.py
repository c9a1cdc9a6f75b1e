#!/usr/bin/env python3
"""Checks the floors of src/ (README, "Architecture"): no two files import
each other, directly or round a circle, and the protocol floors (http/,
h2/, tls/) import nothing from os/, master/ or worker/. Prints what breaks
the rule and exits 1; silent and 0 when the tree keeps it.

    scripts/layers.py [SRC]      # default: src

Imports are read as text: `crate::a::b` paths (with `{...}` groups) and
`super::` paths, outside `#[cfg(test)] mod tests { ... }` blocks at the
end of a file. A child module naming its parent (`super::Thing`) is not
an edge: that is how Rust splits one module into files.
"""
import os
import re
import sys

PROTOCOL = ("http", "h2", "tls")
FORBIDDEN = ("os", "master", "worker")


def modules(root):
    mods = {}
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, root)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                continue
            mods["::".join(rel)] = path
    return mods


def graph(mods):
    def resolve(path):
        parts = path.split("::")
        for n in range(len(parts), 0, -1):
            m = "::".join(parts[:n])
            if m in mods:
                return m
        return None

    g = {m: set() for m in mods}
    for m, path in mods.items():
        src = open(path).read()
        src = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", src, flags=re.S)
        for mm in re.finditer(r"crate::((?:[a-z_0-9]+::)*[a-z_0-9]+)(::\{([^}]*)\})?", src):
            targets = [mm.group(1)]
            for item in (mm.group(3) or "").split(","):
                item = item.strip().split(" ")[0]
                if item and item != "self":
                    targets.append(mm.group(1) + "::" + item.split("::")[0])
            for t in targets:
                r = resolve(t)
                if r and r != m and not m.startswith(r + "::"):
                    g[m].add(r)
        parent = m.rsplit("::", 1)[0] if "::" in m else None
        for mm in re.finditer(r"\bsuper::\{?([a-z_0-9]+)", src):
            if parent is None:
                continue
            r = resolve(parent + "::" + mm.group(1)) or parent
            if r != m and not m.startswith(r + "::"):
                g[m].add(r)
    return g


def cycles(g):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    g = graph(modules(root))
    bad = []
    for comp in cycles(g):
        edges = "; ".join(f"{a} -> {' '.join(sorted(x for x in g[a] if x in comp))}" for a in comp)
        bad.append(f"import circle: {edges}")
    for m, deps in sorted(g.items()):
        if m.split("::")[0] in PROTOCOL:
            for d in sorted(deps):
                if d.split("::")[0] in FORBIDDEN:
                    bad.append(f"{m} imports {d}: the protocol floors import nothing from os/, master/, worker/")
    for line in bad:
        print(line)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
