"""The folders of core/ are layers, and imports run one way: from the domain at the bottom up to the
service and the composition root. This test reads every import of core/ and bot/ with `ast` (also the
ones inside functions, which run later but still couple the modules) and fails on:

- an import that goes up or sideways against the table below;
- any import cycle between modules;
- MetaTrader5, rpyc or pymt5linux imported anywhere but core/brokers/mt5/;
- core importing telegram, discord or bot.

`ops` (ErrorHandler, alerts, notifier, health) imports only domain, config and store, so every layer
above it may raise an alert through it; it sits beside data and brokers, not above trading.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> the core packages it may import (its own package always allowed)
BELOW = {
    "core.domain": set(),
    "core.config": {"core.domain"},
    "core.data": {"core.domain", "core.config"},
    "core.store": {"core.domain", "core.config"},
    "core.ops": {"core.domain", "core.config", "core.store"},
    "core.brokers": {"core.domain", "core.config", "core.data", "core.store"},
}
BELOW["core.analysis"] = set(BELOW) - {"core.analysis"}
BELOW["core.exits"] = set(BELOW) | {"core.analysis"}
BELOW["core.trading"] = set(BELOW) | {"core.exits"}
BELOW["core.backtest"] = set(BELOW) | {"core.trading"}
CORE_PACKAGES = set(BELOW)
BELOW["core.service"] = CORE_PACKAGES
BELOW["core.app"] = CORE_PACKAGES | {"core.service"}
BELOW["core.api"] = CORE_PACKAGES  # the front ends' offline tools (backtests, file analysis, metrics)
# the front ends: the facade, the composition root, their tools, and the models and config they show
BELOW["bot"] = {"core.service", "core.app", "core.api", "core.domain", "core.config"}

MT5_ONLY = {"MetaTrader5", "rpyc", "pymt5linux"}
NEVER_IN_CORE = {"telegram", "discord", "bot"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    files = [*ROOT.joinpath("core").rglob("*.py"), *ROOT.joinpath("bot").rglob("*.py")]
    return {module_name(p): p for p in files}


def imports_of(path: Path, mod: str) -> list[tuple[str, int]]:
    """Every imported module name (absolute), with its line; `from x import y` yields x.y and x."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*pkg[: len(pkg) - node.level + 1], *([node.module] if node.module else [])]) \
                if node.level else node.module or ""
            out.append((base, node.lineno))
            out += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return out


def layer_of(mod: str) -> str:
    if mod.startswith("bot"):
        return "bot"
    parts = mod.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else mod


def internal_edges() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for name, _ in imports_of(p, m):
            if name in mods and name != m:
                edges[m].add(name)
    return edges


def test_every_core_module_lives_in_a_known_layer():
    top = sorted(p.name for p in ROOT.joinpath("core").glob("*.py"))
    assert top == ["__init__.py", "api.py", "app.py", "service.py"], top
    unknown = [m for m in modules() if m.startswith("core.") and layer_of(m) not in BELOW]
    assert not unknown, f"modules outside the layer table: {unknown}"


def test_imports_run_one_way():
    bad = []
    for m, p in modules().items():
        own = layer_of(m)
        for name, line in imports_of(p, m):
            if not (name == "core" or name.startswith("core.")) or name == "core":
                continue
            target = layer_of(name)
            if target != own and target not in BELOW[own]:
                bad.append(f"{p.relative_to(ROOT)}:{line} ({own}) imports {name} ({target})")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(set(bad)))


def test_no_import_cycles():
    edges = internal_edges()
    # package __init__ files are namespaces here: an edge to a package is an edge to its __init__
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if seen.get(n) == 1:
                cycles.append([*stack[stack.index(n):], n])
            elif n not in seen:
                visit(n)
        stack.pop()
        seen[m] = 2

    for m in sorted(edges):
        if m not in seen:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_mt5_packages_only_in_the_mt5_adapter_and_core_never_imports_chat():
    bad = []
    for m, p in modules().items():
        for name, line in imports_of(p, m):
            top = name.split(".")[0]
            if top in MT5_ONLY and not m.startswith("core.brokers.mt5"):
                bad.append(f"{p.relative_to(ROOT)}:{line} imports {name}")
            if m.startswith("core") and top in NEVER_IN_CORE:
                bad.append(f"{p.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("source, expected", [
    ("from core.exits.monitor import Monitor\n", "core.exits"),
    ("from core.app import build_service\n", "core.app"),
])
def test_the_checker_sees_an_upward_import(tmp_path, source, expected):
    """The checker itself can fail: a domain module importing a higher layer is reported."""
    f = tmp_path / "fake.py"
    f.write_text(source)
    names = [n for n, _ in imports_of(f, "core.domain.fake")]
    assert any(layer_of(n) == expected for n in names)
    assert expected not in BELOW["core.domain"]
