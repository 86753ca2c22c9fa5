"""The core knows nothing of chat platforms: bot/ never imports an adapter or a chat SDK."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = ("discord", "slack_bolt", "slack_sdk", "adapters")
BOT = Path(__file__).resolve().parents[1] / "bot"


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
