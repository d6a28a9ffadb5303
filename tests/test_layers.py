"""The house keeps one direction of imports: config, errors, models -> proxy, storage -> jobs ->
the Discord layer (ui, cogs, translator) -> app -> __main__. Read from the source, at run time
(imports under ``if TYPE_CHECKING:`` are for annotations only and do not count)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"
DISCORD_LAYER = ("bot.discord", "bot.__main__")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(BOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in BOT.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _bot_dependencies(module: str) -> set[str]:
    deps = set()
    for name in _imports(MODULES[module]):
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            deps.add(name)
    return deps


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def test_only_the_discord_layer_and_app_import_discord():
    importers = {
        module
        for module, path in MODULES.items()
        if any(name == "discord" or name.startswith("discord.") for name in _imports(path))
    }
    assert importers, "the scan found no discord import at all"
    assert {module for module in importers if not _in(module, DISCORD_LAYER)} == set()


def test_the_jobs_service_imports_nothing_from_the_discord_layer():
    jobs = [module for module in MODULES if _in(module, ("bot.jobs",))]
    assert jobs
    upward = {(module, dep) for module in jobs for dep in _bot_dependencies(module) if _in(dep, DISCORD_LAYER)}
    assert upward == set()


def test_no_import_cycle_among_bot_modules():
    graph = {module: _bot_dependencies(module) for module in MODULES}
    visiting, done, cycles = set(), set(), []

    def visit(module: str, path: list[str]) -> None:
        visiting.add(module)
        for dep in sorted(graph[module]):
            if dep in visiting:
                cycles.append(path[path.index(dep) :] + [dep] if dep in path else [module, dep])
            elif dep not in done:
                visit(dep, path + [dep])
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert cycles == []


def test_no_module_is_over_about_400_lines():
    """A module that grows past this is doing two jobs: split it along them."""
    long = {
        module: lines
        for module, path in MODULES.items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 420
    }
    assert long == {}


def test_the_bot_never_imports_the_sandbox():
    """The simulator and the double (bot/sandbox) are for the tests and ``mjbot demo``: the bot
    itself runs without them. Only the command line reaches the demo's command, whose module loads
    nothing of the sandbox until the demo runs (checked in a fresh interpreter)."""
    users = {
        (module, dep)
        for module in MODULES
        if not _in(module, ("bot.sandbox",))
        for dep in _bot_dependencies(module)
        if _in(dep, ("bot.sandbox",))
    }
    assert users <= {("bot.__main__", "bot.sandbox.demo"), ("bot.__main__", "bot.sandbox.demo.cli")}
    assert ("bot.__main__", "bot.sandbox.demo.cli") in users
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bot.__main__; print(sorted(m for m in sys.modules if m.startswith('bot.sandbox')))"],
        capture_output=True, text=True, check=True, cwd=BOT.parent,
    ).stdout.strip()  # fmt: skip
    assert loaded == "['bot.sandbox', 'bot.sandbox.demo', 'bot.sandbox.demo.cli']"
