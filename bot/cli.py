"""The `fits` command line: the same command language as the chat surfaces.

    fits "meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB"
    fits --json "Qwen/Qwen3-8B awq engine=vllm gpu=4090"
    fits --config ./config.json "my-model q4 gpu=12GB"
    fits help | fits gpus 4090 | fits models qwen3

Bundled models answer offline and without loading huggingface_hub; other org/name ids are read
from the Hub (HF_ENDPOINT, HF_TOKEN) unless HF_HUB_OFFLINE=1. FITS_CACHE_DIR keeps what was
fetched for later runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# A one-shot command has no use for pydantic's third-party plugins, and looking them up scans
# every installed package's metadata (about 25 ms of start-up). Set before pydantic loads.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from core.errors import UserError
from core.parser import parse_command

if TYPE_CHECKING:
    from adapters.hub.cache import ConfigCache
    from adapters.hub.settings import HubSettings

MAX_CONFIG_BYTES = 2_000_000
EXIT_USER_ERROR = 2

def _load_config(path: str) -> dict[str, Any]:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise UserError(f"{path} is larger than a config.json can be (2 MB).",
                            "Pass the model's config.json.")
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise UserError(f"There is no file {path}.", "Check the path to config.json.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} could not be read as JSON ({exc.__class__.__name__}).",
                        "Pass the model's config.json.") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a JSON object.", "Pass the model's config.json.")
    return data


def hub_settings() -> HubSettings:
    """The Hub settings from the environment, by the parser the service uses too."""
    from adapters.hub.settings import HubSettings

    return HubSettings.from_env()


def _hub() -> tuple[HubSettings, ConfigCache]:
    """Settings and cache for the Hub, from the environment."""
    from adapters.hub.cache import make_cache

    # huggingface_hub reads these when first imported: a CLI answer has no progress bars, and
    # its retry warnings would only repeat what the answer's note says.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")
    settings = hub_settings()
    return settings, make_cache(settings)


def run(text: str, *, as_json: bool, config: dict[str, Any] | None,
        plot: str | None = None) -> str:
    """The printed answer to one command (bot/dispatch.py answers it); with ``plot``, its
    pictures written to that .svg file too."""
    from adapters.terminal import render_terminal

    found = answer_for(text, config)
    if plot is not None:
        _plot(found, plot)
    return render_terminal(found, as_json)


def _plot(found: object, path: str) -> None:
    """The breakdown and memory-against-context pictures of an estimate, as one SVG file
    (the chart module loads only here, so the CLI's start-up does not grow)."""
    from core.report import Report

    if not path.lower().endswith(".svg"):
        raise UserError(f"--plot writes SVG, not {os.path.splitext(path)[1] or 'that'}.",
                        "Name the file with .svg, e.g. --plot answer.svg.")
    if not isinstance(found, Report):
        raise UserError("--plot draws an estimate's answer, not a list or a ranking.",
                        'Ask about one model, e.g. fits "llama-2-7b q4 gpu=24GB" --plot a.svg.')
    from adapters.charts import answer_svg
    from core.curve import report_curve

    with open(path, "w", encoding="utf-8") as out:
        out.write(answer_svg(found, report_curve(found)))


def answer_for(text: str, config: dict[str, Any] | None) -> Any:
    """The answer to one command: here when nothing needs the Hub, else through it."""
    from bot.dispatch import answer_here

    command = parse_command(text)
    found = answer_here(command, config)
    if found is None:  # the Hub is needed: only now load asyncio and the Hub client
        import asyncio

        from bot.dispatch import answer

        settings, cache = _hub()
        found = asyncio.run(answer(command, settings, cache, config))
    return found


def _arguments(argv: list[str]) -> tuple[bool, str | None, str | None, list[str]]:
    """--json, --config, --plot and the command's words. Without a flag every word is the
    command, and argparse (its import and set-up are about a quarter of `fits help`) is not
    needed."""
    if not any(word.startswith("-") for word in argv):
        return False, None, None, argv
    import argparse

    parser = argparse.ArgumentParser(
        prog="fits", description="Can my GPU run this LLM, and how?",
        epilog='Example: fits "meta-llama/Llama-2-7b q4 gpu=24GB"')
    parser.add_argument("--json", action="store_true", help="print the Report as JSON")
    parser.add_argument("--config", metavar="FILE", help="estimate a model from its config.json")
    parser.add_argument("--plot", metavar="FILE.svg", help="also write the answer's charts")
    parser.add_argument("command", nargs="*", help="the /fits command, e.g. 'llama-2-7b q4'")
    args = parser.parse_args(argv)
    return args.json, args.config, args.plot, args.command


def main(argv: list[str] | None = None) -> int:
    as_json, config_path, plot, words = _arguments(sys.argv[1:] if argv is None else argv)
    text = " ".join(words) or "help"
    try:
        config = _load_config(config_path) if config_path else None
        print(run(text, as_json=as_json, config=config, plot=plot))
    except BrokenPipeError:  # `fits ... | head`: the reader left; nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except UserError as err:
        from adapters.terminal import TerminalRenderer

        print(TerminalRenderer().error(err), file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
