"""core/ must not depend on the chat layer or on MetaTrader5: only adapters touch the outside world.

Checked two ways: statically with `ast` (every import statement, also inside functions, plus
importlib/__import__ calls with a literal name), and at runtime (importing every core module in a
fresh interpreter must not load any forbidden package).
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
FORBIDDEN = {"bot", "telegram", "discord", "MetaTrader5"}

# The one sanctioned exception: MT5Broker.local() imports MetaTrader5 lazily *inside a function*, on
# Windows only, so core stays importable without it. A module-level import would still fail here.
LAZY_ALLOWED = {("core/brokers/mt5/broker.py", "MetaTrader5")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, module: str | None = None) -> list[tuple[str, int, bool]]:
    """(top-level package, line, is_module_level) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    pkg = (module or _module_name(path)).split(".")
    if path.name != "__init__.py":
        pkg = pkg[:-1]
    module_level = {id(n) for n in tree.body}
    for node in tree.body:  # imports under if/try at module level still run at import time
        if isinstance(node, (ast.If, ast.Try)):
            module_level |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        top = id(node) in module_level
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[0], node.lineno, top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                full = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                full = node.module or ""
            out.append((full.split(".")[0], node.lineno, top))
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                if isinstance(node.args[0].value, str):
                    out.append((node.args[0].value.split(".")[0], node.lineno, top))
    return out


def test_core_never_imports_chat_layers_or_metatrader():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10
    bad = []
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        for top_pkg, line, module_level in _imports(f):
            if top_pkg in FORBIDDEN:
                if not module_level and (rel, top_pkg) in LAZY_ALLOWED:
                    continue
                bad.append(f"{rel}:{line} imports {top_pkg}")
    assert not bad, "core/ must not import the chat layer or MetaTrader5:\n" + "\n".join(bad)


def test_the_checker_catches_each_form(tmp_path):
    """The static check must see every way of importing, or the test above proves nothing."""
    fake = tmp_path / "probe.py"
    samples = {
        "import telegram": "telegram",
        "from discord.ext import commands": "discord",
        "def f():\n    import MetaTrader5 as mt5": "MetaTrader5",
        "from bot.cli import main": "bot",
        "import importlib\nimportlib.import_module('telegram.ext')": "telegram",
        "try:\n    import discord\nexcept ImportError:\n    pass": "discord",
    }
    for src, pkg in samples.items():
        fake.write_text(src + "\n")
        assert pkg in {p for p, _, _ in _imports(fake, "core.brokers.probe")}, src
    fake.write_text("def f():\n    import MetaTrader5\n")
    assert _imports(fake, "core.brokers.probe") == [("MetaTrader5", 2, False)]
    fake.write_text("import MetaTrader5\n")
    assert _imports(fake, "core.brokers.probe") == [("MetaTrader5", 1, True)]
    # relative imports resolve inside core, so `from .. import x` is core, not bot
    fake.write_text("from ..data import candles\nfrom . import base\n")
    assert [p for p, _, _ in _imports(fake, "core.brokers.probe")] == ["core", "core"]


def test_importing_all_of_core_loads_no_forbidden_package():
    modules = sorted(_module_name(f) for f in CORE.rglob("*.py"))
    code = (
        "import importlib, json, sys\n"
        f"mods = {modules!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in {sorted(FORBIDDEN)!r})))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
