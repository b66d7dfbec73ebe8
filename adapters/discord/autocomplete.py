"""Suggestions while an option is typed: models (bundled snapshot and Hub search), GPUs (the
catalogue) and context lengths.

Discord gives an autocomplete answer 3 seconds in all and it cannot be deferred, so the Hub part
of a model search gets ``MODEL_WAIT_S``; past that the bundled matches answer and the search goes
on in the background to fill the cache for the next keystroke.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re

from adapters.discord.options import CTX_SUGGESTIONS, FITS, GPUS
from core import snapshot
from core.answer import AnswerService
from core.gpus import Gpu, all_gpus, resolve_gpu, search_gpus
from core.units import format_bytes

log = logging.getLogger("fits.discord")

MAX_CHOICES = 25  # Discord's limit; discord.py does not trim
CHOICE_MAX = 100  # a choice's name and value are 1-100 characters
MODEL_WAIT_S = 1.5
# What an empty gpu box offers: the cards people ask about most, as the catalogue names them.
POPULAR_GPUS = ("4090", "3090", "5090", "4060 ti 16gb", "3060", "4080", "a100-80g", "h100",
                "l4", "rtx a6000", "m2-max-64gb", "7900xtx", "mi300x")
_COUNT = re.compile(r"(\d{1,4})\s*[x×*]\s*(.*)", re.IGNORECASE)

Choice = dict[str, str]  # {"name": shown, "value": sent}


async def suggest(service: AnswerService, command: str, option: str, current: str,
                  ) -> list[Choice]:
    """The choices for the focused ``option`` of ``command``, at most 25; never raises."""
    try:
        if command == FITS and option == "model":
            return await model_choices(service, current)
        if (command == FITS and option == "gpu") or (command == GPUS and option == "query"):
            return gpu_choices(current)
        if command == FITS and option == "ctx":
            return ctx_choices(current)
    except Exception:  # an empty list is a fine answer; a missing one shows an error in Discord
        log.exception("autocomplete failed", extra={"fields": {"command": command,
                                                              "option": option}})
    return []


async def model_choices(service: AnswerService, current: str) -> list[Choice]:
    query = current.strip()[:100]
    search = asyncio.ensure_future(service.search_models(query, MAX_CHOICES))
    done, _ = await asyncio.wait({search}, timeout=MODEL_WAIT_S)
    ids: list[str] | None = None
    if done and not search.cancelled() and search.exception() is None:
        ids = search.result()
    else:
        search.add_done_callback(_retrieve)
        ids = snapshot.search(query, MAX_CHOICES)
    return [_choice(i, i) for i in ids if 0 < len(i) <= CHOICE_MAX][:MAX_CHOICES]


def gpu_choices(current: str) -> list[Choice]:
    """Catalogue names matching what is typed; a count typed first (2x3090) is kept in front."""
    text = current.strip()[:64]
    count = _COUNT.fullmatch(text)
    prefix, query = (f"{int(count[1])}x ", count[2].strip()) if count else ("", text)
    gpus = _gpus_for(query) if query else list(_popular())
    choices = [_choice(f"{prefix}{g.name} ({format_bytes(g.memory_bytes)})", f"{prefix}{g.name}")
               for g in gpus]
    if text and text.lower() not in {c["value"].lower() for c in choices}:
        # What is typed stays an answer (24GB, m3 max 36gb): the resolver may know it.
        choices.insert(0, _choice(f"{text} (as typed)", text))
    return choices[:MAX_CHOICES]


def ctx_choices(current: str) -> list[Choice]:
    text = current.strip().lower().replace(",", "").replace("_", "")
    choices = [_choice(name, value) for name, value in CTX_SUGGESTIONS
               if not text or value.startswith(text) or name.replace(",", "").startswith(text)]
    if text and text not in {c["value"] for c in choices}:
        choices.insert(0, _choice(current.strip(), current.strip()))
    return choices[:MAX_CHOICES]


def _gpus_for(query: str) -> list[Gpu]:
    found = search_gpus(query, MAX_CHOICES)
    if query.isdigit():  # a model number being typed (409 -> 4090), not only a memory size
        found += [g for g in all_gpus() if query in g.name and g not in found]
    return found[:MAX_CHOICES]


@functools.cache
def _popular() -> tuple[Gpu, ...]:
    return tuple(resolve_gpu(name).gpu for name in POPULAR_GPUS)


def _choice(name: str, value: str) -> Choice:
    name = name if len(name) <= CHOICE_MAX else name[: CHOICE_MAX - 1] + "…"
    return {"name": name, "value": value[:CHOICE_MAX]}


def _retrieve(task: asyncio.Future[list[str]]) -> None:
    """Mark a background search's failure as seen (asyncio warns about unretrieved ones)."""
    if not task.cancelled() and task.exception() is not None:
        log.info("model search failed after autocomplete answered: %s",
                 type(task.exception()).__name__)
