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
