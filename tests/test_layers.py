"""The floors of the code, checked by reading every import (ast, not a guess from names):
core <- members <- loyalty <- analytics <- campaigns <- config. No package imports one above it, and none of the
apps or core imports config (the project's settings and wiring sit on top of everything)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOORS = ["core", "members", "loyalty", "analytics", "campaigns", "config"]


def _imported_packages(path: Path, package: str):
    """(line, top-level package) of every import in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_parts = [package, *path.relative_to(ROOT / package).with_suffix("").parts]
    if module_parts[-1] == "__init__":
        module_parts = module_parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level + (1 if path.name == "__init__.py" else 0)]
                yield node.lineno, (base or [package])[0]
            elif node.module:
                yield node.lineno, node.module.split(".")[0]


def _violations():
    found = []
    for floor, package in enumerate(FLOORS):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, imported in _imported_packages(path, package):
                if imported in FLOORS and FLOORS.index(imported) > floor:
                    found.append(f"{path.relative_to(ROOT)}:{line} ({package}) imports {imported}")
    return found


def test_no_package_imports_a_higher_floor():
    assert _violations() == []


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """The checker itself: a lower package importing a higher one, directly or lazily inside a function, is found."""
    for package in FLOORS:
        (tmp_path / package).mkdir()
    (tmp_path / "core" / "bad.py").write_text("def f():\n    from members.models import Member\n")
    (tmp_path / "members" / "worse.py").write_text("import loyalty.services\n")
    (tmp_path / "loyalty" / "fine.py").write_text("from core.errors import DomainError\nfrom . import models\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert _violations() == [
        "core/bad.py:2 (core) imports members",
        "members/worse.py:1 (members) imports loyalty",
    ]
