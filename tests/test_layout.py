"""The layout keeps its promises: imports only go down the documented layers, every
sub-package is packaged, and no file leans on something outside the repository."""

import ast
import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "simulator"


def documented_layers():
    """The layer names, top to bottom, from the block in docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- layers:[^>]*-->\s*```\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md lost its layers block"
    return block.group(1).split()


def subpackages():
    return sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def imported_subpackages(path):
    """(line, sub-package) of every import of another part of sgdsim in `path`; None for
    the top package itself (``from .. import __version__``)."""
    here = path.relative_to(PACKAGE).parts[:-1]          # e.g. ("network",)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names
                       if alias.name.split(".")[0] == "simulator"]
            targets = [t[1:] for t in targets]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if (node.module or "").split(".")[0] != "simulator":
                    continue
                base = node.module.split(".")[1:]
            else:
                anchor = list(here[:len(here) - (node.level - 1)]) if node.level > 1 else list(here)
                base = anchor + (node.module.split(".") if node.module else [])
            if not base and node.module is None and node.level == 1 and here:
                base = list(here)                         # from . import sibling
            targets = [base]
        for parts in targets:
            found.append((node.lineno, parts[0] if parts else None))
    return found


def test_the_documented_layers_are_the_subpackages():
    assert sorted(documented_layers()) == subpackages()


def test_imports_only_go_down_the_layers():
    layers = documented_layers()
    rank = {name: len(layers) - i for i, name in enumerate(layers)}   # utils lowest
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) == 1:                               # __init__.py, __main__.py: the top
            continue
        source = parts[0]
        for line, target in imported_subpackages(path):
            if target is None or target == source:
                continue
            if target not in rank or rank[target] > rank[source]:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {source} imports {target}")
    assert not upward, "imports that go up the layers:\n" + "\n".join(upward)


def test_the_import_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The check above can fail: a cluster module importing the network is caught."""
    fake = tmp_path / "simulator" / "cluster"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from ..network.flows import Network\nfrom . import stats\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "simulator")
    assert imported_subpackages(fake / "bad.py") == [(1, "network"), (2, "cluster")]


def test_setup_cfg_packages_every_subpackage_and_the_shipped_folders():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = config["options"]["packages"].split()
    shipped = ["simulator.topologies", "simulator.scenarios", "simulator.schemas"]
    assert sorted(listed) == sorted(["simulator", *(f"simulator.{p}" for p in subpackages()),
                                     *shipped])
    mapped = dict(line.split(" = ") for line in
                  config["options"]["package_dir"].strip().splitlines())
    assert mapped == {name: name.split(".")[1] for name in shipped}


# --------------------------------------------------------------------------- standing alone
_FORBIDDEN = ("DESIGN" + ".md", "../" + "shared", "seed/" + "local-sgd", "/work/" + "main")
_RELATIVE = re.compile(r"(?<![\w./])((?:\.\./)+[\w\-.]+(?:/[\w\-.]+)*)")


def repository_files():
    """The files of the repository: tracked by git, or (in an sdist) every file."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                                check=True).stdout.decode().split("\0")
        return [ROOT / name for name in listed if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".pytest_cache"}
        found = []
        for folder, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
            found += [Path(folder) / name for name in files]
        return found


def outside_references(path, text):
    """Lines of `text` (the file `path`) that name something outside the repository."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for word in _FORBIDDEN:
            if word in line:
                problems.append(f"{path}:{number}: names {word!r}")
        for ref in _RELATIVE.findall(line):
            target = os.path.normpath(os.path.join(os.path.dirname(path), ref))
            if os.path.relpath(target, ROOT).startswith(os.pardir):
                problems.append(f"{path}:{number}: {ref} leaves the repository")
    return problems


def test_no_file_refers_to_a_path_outside_the_repository():
    problems = []
    for path in repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue                                      # binary or unreadable: not prose
        problems += outside_references(path, text)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("line, bad", [
    ("see " + "../" * 2 + "elsewhere/notes.md", True),
    ("# yaml-language-server: $schema=../schemas/topology.schema.json", False),
    ("the rules of " + "DESIGN" + ".md", True),
    ("topology: seed_8x2", False),
])
def test_the_outside_check_can_fail(line, bad):
    assert bool(outside_references(ROOT / "topologies" / "x.yaml", line)) == bad
