"""The layering rules, checked on what Python really imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = ("discord", "slack_bolt", "slack_sdk", "aiohttp", "gidgethub",
                      "huggingface_hub")


def test_cli_estimate_imports_no_platform_library() -> None:
    code = (
        "import sys; from bot.cli import main; "
        "main(['meta-llama/Llama-2-7b q4 gpu=24GB']); "
        f"print([m for m in {PLATFORM_LIBRARIES!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_cli_estimate_loads_only_what_an_estimate_needs() -> None:
    """Start-up cost: pydantic (JSON from outside only), `best`, `compare` and Ollama's library
    stay unloaded for an estimate with an org-qualified name, in text and in JSON; argparse
    too when no flag is given."""
    for flags, unused in (([], ("argparse",)), (["--json"], ())):
        code = (
            "import sys; from bot.cli import main; "
            f"main([*{flags!r}, 'meta-llama/Llama-2-7b q4 gpu=24GB']); "
            "print([m for m in ('pydantic', 'core.best', 'core.ranking', 'core.compare', "
            f"'core.ollama', 'core.config_check', 'core.hub_protocol', *{unused!r}) "
            "if m in sys.modules])"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip().splitlines()[-1] == "[]", flags


def test_core_imports_nothing_from_adapters_or_bot() -> None:
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in ("adapters", "bot", "discord", "slack_bolt", "gidgethub"), (
                    f"{path.relative_to(ROOT)} imports {name}")


# core is sans-I/O: no network, threads, sockets or event loop. (typing.Protocol interfaces with
# ``async def`` methods need no import of asyncio, so they stay allowed.)
IO_MODULES = ("huggingface_hub", "httpx", "httpx2", "requests", "aiohttp", "redis", "discord",
              "slack_bolt", "slack_sdk", "gidgethub", "threading", "socket", "urllib.request",
              "asyncio")


def _imported_modules(tree: ast.AST) -> list[str]:
    """Every module an import names, at module level or inside functions: ``from a import b``
    names a and a.b (b may be a module)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _is_io(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in IO_MODULES)


def test_core_imports_no_io_library() -> None:
    offenders = [f"{path.relative_to(ROOT)} imports {name}"
                 for path in sorted((ROOT / "core").rglob("*.py"))
                 for name in _imported_modules(ast.parse(path.read_text())) if _is_io(name)]
    assert offenders == []


def test_the_io_check_sees_every_kind_of_import() -> None:
    code = ("import asyncio\nfrom urllib import request\nfrom urllib.parse import urlsplit\n"
            "def f():\n    import huggingface_hub.errors\n    from threading import Thread\n")
    found = [n for n in _imported_modules(ast.parse(code)) if _is_io(n)]
    assert found == ["asyncio", "urllib.request", "huggingface_hub.errors", "threading",
                     "threading.Thread"]


def _catches_everything(node: ast.expr | None) -> bool:
    names = [node] if not isinstance(node, ast.Tuple) else list(node.elts)
    return any(isinstance(n, ast.Name) and n.id in ("Exception", "BaseException") for n in names)


def _says_something(body: list[ast.stmt]) -> bool:
    """A handler that logs, notes, re-raises or hands the error on does something with it."""
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Raise | ast.Call):
                return True
            if isinstance(node, ast.Assign | ast.Return) and any(
                    isinstance(n, ast.Name) and n.id in ("exc", "err", "error")
                    for n in ast.walk(node)):
                return True
    return False


def test_no_error_is_swallowed_without_a_word() -> None:
    """No ``suppress(Exception)``, and no ``except Exception`` that only passes: every error
    caught wholesale is logged, noted for the user, or handed on."""
    for top in ("core", "adapters", "bot", "bench"):
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "suppress":
                    assert not any(_catches_everything(a) for a in node.args), where
                if isinstance(node, ast.ExceptHandler) and _catches_everything(node.type):
                    assert _says_something(node.body), where


def _import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports, anywhere in it (lazy imports count:
    a circle through a function-level import is still a circle)."""
    modules: dict[str, Path] = {}
    for top in ("core", "adapters", "bot", "bench"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {m for a in node.names if (m := known(a.name))}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                deps |= {m for a in node.names
                         if (m := known(f"{node.module}.{a.name}") or known(node.module))}
        graph[name] = deps - {name}
    return graph


def test_the_import_graph_has_no_circle() -> None:
    graph = _import_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import circle: " + " -> ".join(
                [*path[path.index(module):], module]))
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_layers_import_only_downwards() -> None:
    """bench -> bot -> adapters -> core: no arrow back up."""
    rank = {"core": 0, "adapters": 1, "bot": 2, "bench": 3}
    for module, deps in _import_graph().items():
        for dep in deps:
            assert rank[dep.split(".")[0]] <= rank[module.split(".")[0]], f"{module} imports {dep}"
