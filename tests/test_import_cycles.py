"""No module of r1zero imports another that imports it back, directly or through others (DESIGN.md)."""

from pathlib import Path

from tests.import_graph import cycles, import_edges

PACKAGE = Path(__file__).resolve().parents[1] / "r1zero"


def test_no_import_cycles():
    found = cycles(import_edges(PACKAGE))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_finder_sees_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub.b import g\n")  # a function-level import counts
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.b import g\n")
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("import pkg.a\n")
    assert cycles(import_edges(pkg)) == [["pkg.a", "pkg.sub", "pkg.sub.b", "pkg.sub.c"]]
    (pkg / "sub" / "c.py").write_text("import json\n")
    assert cycles(import_edges(pkg)) == []


def test_the_design_direction_holds():
    """algo imports neither train nor rollout; rollout does not import train; budget never the trainers."""
    edges = import_edges(PACKAGE)
    rules = [("r1zero.algo", ("r1zero.train", "r1zero.rollout")), ("r1zero.rollout", ("r1zero.train",)),
             ("r1zero.budget", ("r1zero.train.pretrain", "r1zero.train.sft", "r1zero.train.rl"))]
    for source, banned in rules:
        for m, targets in edges.items():
            if m == source or m.startswith(source + "."):
                bad = [t for t in targets if any(t == b or t.startswith(b + ".") for b in banned)]
                assert not bad, f"{m} imports {bad}"
