"""The package's shape: stage folders in the order data flows, each importing only the ones
below it, so that a reader sees the flow in the tree and no stage reaches back up."""

from __future__ import annotations

import ast
from pathlib import Path

import archiver

PACKAGE = Path(archiver.__file__).parent
# Bottom to top. `archiver/errors.py` and `archiver/__init__.py` sit beneath every stage.
STAGES = ["read", "store", "evidence", "capture", "check", "exchange", "cli"]
MAX_LINES = 400


def _stage_of(module: str) -> int:
    """Rank of a dotted module name: -1 for the package's shared root modules."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in STAGES:
        return STAGES.index(parts[1])
    if parts[1:] == ["__main__"]:
        return len(STAGES)
    return -1


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, dotted module) of every archiver import in `source`, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base[:len(base) - node.level + is_package]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from archiver.evidence import merkle` names a module too
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names
                      if (PACKAGE.parent / Path(*f"{target}.{alias.name}".split("."))).with_suffix(".py").exists()]
    return [(line, name) for line, name in found if name == "archiver" or name.startswith("archiver.")]


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_rule_sees_every_stage_and_every_module():
    stages_on_disk = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert stages_on_disk == set(STAGES)
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "errors.py"}, "a module belongs in a stage folder"


def test_no_stage_imports_one_above_it():
    upward = []
    for path in _sources():
        rank = _stage_of(_module_name(path))
        for line, name in _imports(_module_name(path), path.read_text(), path.name == "__init__.py"):
            if _stage_of(name) > rank:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert upward == []


def test_the_rule_catches_an_upward_import():
    """The check itself must see an upward import, lazy or relative, or it proves nothing."""
    source = "def f():\n    from archiver.check import verify\n\nfrom ..exchange import bundle\n"
    found = sorted(_imports("archiver.read.seeds", source))
    assert found == [(2, "archiver.check"), (2, "archiver.check.verify"),
                     (4, "archiver.exchange"), (4, "archiver.exchange.bundle")]
    assert all(_stage_of(name) > _stage_of("archiver.read.seeds") for _, name in found)


def test_no_module_is_over_about_400_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in _sources()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
