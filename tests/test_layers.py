"""The package tree shows the pipeline: imports flow one way, and nothing but the CLI imports training."""
from __future__ import annotations

import ast

from helpers import REPO

# Each package, and the packages it may import (the ones below it).
LAYERS = ["core", "counting", "video", "pose", "skeleton", "model", "outputs", "pipeline", "engines", "api",
          "training", "cli"]


def package_imports() -> dict[str, set[tuple[str, str]]]:
    """{package: {(imported package, file)}} over every module of actionpipe, lazy imports included."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in (REPO / "actionpipe").rglob("*.py"):
        parts = path.relative_to(REPO / "actionpipe").parts
        package = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.startswith("actionpipe.") and name.split(".")[1] != package:
                    found.setdefault(package, set()).add((name.split(".")[1], str(path.relative_to(REPO))))
    return found


def test_no_relative_imports_across_packages():
    relative = [str(p.relative_to(REPO)) for p in (REPO / "actionpipe").rglob("*.py")
                if any(isinstance(n, ast.ImportFrom) and n.level > 1 for n in ast.walk(ast.parse(p.read_text())))]
    assert relative == []


def test_imports_flow_down_the_pipeline():
    upward = [(package, target, where) for package, targets in package_imports().items() if package in LAYERS
              for target, where in targets if target in LAYERS and LAYERS.index(target) > LAYERS.index(package)]
    assert upward == []


def test_only_the_cli_imports_training():
    users = {package for package, targets in package_imports().items() for target, _ in targets
             if target == "training"}
    assert users <= {"cli"}


def test_each_package_says_what_it_holds():
    for init in (REPO / "actionpipe").glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.splitlines()) <= 3, init
