"""Import edges among a package's modules and the cycles they form (r1zero-independent, stdlib only).

An import at any level counts (a function-level import still runs when that function does), and
importing a.b.c also runs a and a.b's `__init__`, so it counts as importing those packages too,
except a module's own parent packages (a child importing its parent's re-exports is normal).
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under `package_dir` (a package's own name included)."""
    mods = {}
    for f in sorted(package_dir.rglob("*.py")):
        parts = f.relative_to(package_dir.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def imported_names(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute dotted names an import statement may refer to (a module, or a name inside one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [prefix] + [f"{prefix}.{a.name}" for a in node.names]


def import_edges(package_dir: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (directly, or through their parent packages)."""
    mods = module_files(package_dir)
    top = package_dir.name
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in imported_names(m, f.name == "__init__.py", node):
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if not target or target == m or not (target == top or target.startswith(top + ".")):
                    continue
                if m.startswith(target + "."):
                    continue  # a child importing its own parent package
                edges[m].add(target)
                parent = target.rpartition(".")[0]
                while parent and parent != top:
                    if parent in mods and not m.startswith(parent + "."):
                        edges[m].add(parent)
                    parent = parent.rpartition(".")[0]
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found
