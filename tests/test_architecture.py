"""The core knows nothing of chat platforms: bot/ never imports an adapter or a chat SDK."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = ("discord", "slack_bolt", "slack_sdk", "adapters")
ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "bot"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ):
            # A dynamic import of a forbidden name is still an import.
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
    return names


def test_bot_imports_no_adapter_or_chat_sdk() -> None:
    offenders = []
    files = sorted(BOT.rglob("*.py"))
    assert len(files) > 10, "the core should be found"
    for path in files:
        for name in imported_modules(path):
            if name.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(BOT.parent)} imports {name}")
    assert offenders == []


def test_the_scan_would_catch_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import discord\nfrom adapters.console import ConsoleAdapter\n"
                   "import importlib\nimportlib.import_module('slack_bolt')\n")
    assert {"discord", "adapters.console", "slack_bolt"} <= imported_modules(bad)


# -- no import cycles inside bot/ --------------------------------------------------------

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(BOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """The bot modules ``path`` imports when it runs (at the top or inside a
    function: a deferred import is still a cycle, only a later one), leaving
    out ``if TYPE_CHECKING:`` blocks, which never run. Importing ``a.b.c``
    runs ``a/__init__`` and ``a/b/__init__`` first, so those packages count
    too: bot.plan -> bot.storage.records loaded bot/storage/__init__, whose
    backends imported bot.holds, which imported bot.plan half-loaded."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    with_packages = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 2)}
    return {m for m in with_packages if m in modules}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def bot_import_graph() -> dict[str, set[str]]:
    files = sorted(BOT.rglob("*.py"))
    modules = {_module_name(p) for p in files}
    # A package's own __init__ is loaded first by any of its submodules: not an edge worth a cycle.
    return {_module_name(p): {m for m in runtime_imports(p, modules)
                              if not _module_name(p).startswith(m + ".") and m != _module_name(p)}
            for p in files}


def test_bot_has_no_import_cycles() -> None:
    assert import_cycles(bot_import_graph()) == []


def test_the_cycle_check_would_catch_one() -> None:
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_type_checking_imports_are_not_runtime_edges(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.x import y\n"
                 "def f():\n    from bot.z import w\n")
    assert runtime_imports(f, {"bot.x", "bot.z"}) == {"bot.z"}


def test_importing_a_submodule_is_an_edge_to_its_packages_too(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from bot.storage.records import QueuedEvent\n")
    assert runtime_imports(f, {"bot", "bot.storage", "bot.storage.records"}) == {
        "bot", "bot.storage", "bot.storage.records"}
    assert import_cycles({"bot.plan": {"bot.storage", "bot.storage.records"}, "bot.storage": {"bot.holds"},
                          "bot.holds": {"bot.plan"}, "bot.storage.records": set()}) == [
        ["bot.holds", "bot.plan", "bot.storage"]]


# -- every module imports on its own ----------------------------------------------------

# Run as ``python -c`` with {"preload": [...], "modules": [...]} on stdin.
# An import cycle only breaks the module imported FIRST: in one interpreter
# (pytest's, whose conftest loads bot.storage early) every later import
# finds the loop already closed and passes. So each module gets its own
# process that has loaded none of ours: a child forked from this fresh
# interpreter, which first imports only the third-party and standard
# modules ours name (they import nothing of ours) so that each child pays
# for our modules alone -- ~100 fresh interpreters would take ~15 s here.
FRESH_IMPORTS = """
import importlib, json, os, sys, traceback
wanted = json.load(sys.stdin)
ours = tuple(wanted["ours"])
for name in wanted["preload"]:
    try:
        importlib.import_module(name)
    except Exception:
        pass  # an optional SDK: the module needing it fails on its own below
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ours)
assert not loaded, f"preloading loaded our modules: {loaded}"
sys.stdout.flush()
running, failed = {}, []
def reap():
    pid, status = os.wait()
    if status:
        failed.append(running[pid])
    del running[pid]
for module in wanted["modules"]:
    if len(running) >= (os.cpu_count() or 1):
        reap()
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            print(f"--- import {module}:", traceback.format_exc(), file=sys.stderr, flush=True)
            os._exit(1)
        os._exit(0)
    running[pid] = module
while running:
    reap()
print(json.dumps(sorted(failed)))
"""


def _modules(root: Path, packages: tuple[str, ...]) -> list[str]:
    return sorted(".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
                  for package in packages for p in (root / package).rglob("*.py"))


def fresh_import_failures(root: Path, packages: tuple[str, ...]) -> tuple[list[str], str]:
    """The modules of ``packages`` (folders under ``root``) that fail to
    import each in an interpreter that loaded none of them, and the
    tracebacks."""
    preload: set[str] = set()
    for package in packages:
        for path in (root / package).rglob("*.py"):
            preload |= {m for m in imported_modules(path) if m.split(".")[0] not in packages}
    wanted = {"ours": packages, "preload": sorted(preload), "modules": _modules(root, packages)}
    done = subprocess.run([sys.executable, "-c", FRESH_IMPORTS], input=json.dumps(wanted), cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="forks a child per module")
def test_every_module_of_bot_and_adapters_imports_on_its_own() -> None:
    failed, tracebacks = fresh_import_failures(ROOT, ("bot", "adapters"))
    assert len(_modules(ROOT, ("bot",))) > 10, "the core should be found"
    assert failed == [], tracebacks


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="forks a child per module")
def test_the_fresh_import_check_would_catch_a_cycle_through_a_package_init(tmp_path: Path) -> None:
    # The shape of the bug it guards: a imports pkg.records; pkg/__init__
    # imports pkg.backend, which imports a (half-loaded). pkg.records alone is fine.
    (tmp_path / "cyc" / "pkg").mkdir(parents=True)
    (tmp_path / "cyc" / "__init__.py").write_text("")
    (tmp_path / "cyc" / "a.py").write_text("from cyc.pkg.records import R\nA = 1\n")
    (tmp_path / "cyc" / "pkg" / "__init__.py").write_text("from cyc.pkg.backend import B\n")
    (tmp_path / "cyc" / "pkg" / "records.py").write_text("R = 1\n")
    (tmp_path / "cyc" / "pkg" / "backend.py").write_text("from cyc.a import A\nB = A\n")
    failed, tracebacks = fresh_import_failures(tmp_path, ("cyc",))
    assert failed == ["cyc.a"] and "partially initialized" in tracebacks
