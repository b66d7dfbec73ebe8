"""What a Hub record means for the answer: a ResolvedModel with its notes, or the UserError
sentence a user reads (not found, gated, a refused token, an unreadable config). Also the answer
when the Hub could not be asked or could not answer: the bundled snapshot, else the size in the
model's name, each with a note saying why.

Pure: records come in (core.hub_records), resolutions or UserErrors go out; adapters/hub does the
fetching and the caching.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import NoReturn, assert_never

from cachetools import LRUCache

from core import snapshot
from core.errors import ModelNotFound, UserError
from core.hub_protocol import HubSite
from core.hub_records import (
    GgufFile,
    HubBadConfig,
    HubBadToken,
    HubGated,
    HubNotFound,
    HubOk,
    HubRecord,
    HubTooLarge,
    Unread,
    UnreadPart,
)
from core.resolve import ResolvedModel, from_config, resolve_known, spec_for_size
from core.units import format_bytes, size_in_name

log = logging.getLogger("fits.hub")

_GGUF_ORDER = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q6_K", "Q8_0", "IQ4_XS", "Q5_K_S", "Q3_K_M")
OFFLINE_REASON = "was not asked: offline mode (HF_HUB_OFFLINE=1) is on"
OFFLINE_NOTE = "offline (HF_HUB_OFFLINE=1): Hub data from the local cache"

# Each part a fetch may fail to read: how its note names it, and what the answer does without it.
_UNREAD: dict[UnreadPart, tuple[str, str]] = {
    "quantize_config": ("the Hub's quantize_config.json",
                        "the weights are taken as unquantized (the config's dtype), not GPTQ"),
    "safetensors_headers": ("the safetensors headers",
                            "the parameter count is the architecture's, not the checkpoint's"),
    "gguf_sizes": ("the GGUF file sizes", "they are not compared with the estimate"),
    "base_config": ("the config of its base model {base}",
                    "the architecture is a Llama-style stand-in"),
}


@dataclass(frozen=True)
class HubResolution:
    """A resolved model plus what the Hub told about its files."""

    model: ResolvedModel
    gguf: tuple[GgufFile, ...] = ()

    def gguf_for(self, quant: str) -> GgufFile | None:
        return next((g for g in self.gguf if g.quant == quant.upper()), None)

    def default_gguf(self) -> GgufFile | None:
        for quant in _GGUF_ORDER:
            if (hit := self.gguf_for(quant)) is not None:
                return hit
        return self.gguf[0] if self.gguf else None


def resolve_record(repo_id: str, record: HubRecord, site: HubSite) -> HubResolution:
    """The answer a record gives: a HubResolution for HubOk, else the UserError that says why
    there is none."""
    match record:
        case HubOk():
            return _resolved_ok(repo_id, record)
        case HubNotFound():
            _not_found(repo_id, record, site)
        case HubGated():
            _gated(repo_id, record, site)
        case HubBadToken():
            raise UserError("The Hub refused the HF_TOKEN given (invalid credentials).",
                            "Check HF_TOKEN, or unset it: public models need no token.")
        case HubTooLarge():
            raise UserError(f"The Hub's {record.file} for {repo_id} is larger than a config can "
                            f"be ({record.limit / 1e6:g} MB); fits did not read it.",
                            "Ask about its base model, or give a size such as 7b.",
                            config_helps=True)
        case HubBadConfig():
            raise UserError(f"The Hub's config.json for {repo_id} is not a model config "
                            f"({record.why}).", "Ask about its base model, or give a size such "
                            "as 7b.", config_helps=True)
        case _:
            assert_never(record)


def _not_found(repo_id: str, record: HubNotFound, site: HubSite) -> NoReturn:
    suggestions = snapshot.suggest(repo_id)
    suggestions += [s for s in record.suggestions if s not in suggestions]
    suggestions = suggestions[:5]
    private = "" if site.has_token else " A private repo needs HF_TOKEN."
    hint = (f"Did you mean {', '.join(suggestions)}?{private}" if suggestions else
            f"Check the spelling.{private}")
    raise ModelNotFound(f"There is no model '{repo_id}' on the Hub (or it is private).", hint,
                        suggestions)


def _gated(repo_id: str, record: HubGated, site: HubSite) -> NoReturn:
    if record.with_token:
        raise UserError(f"{repo_id} is gated and the HF_TOKEN given has no access to it.",
                        f"Accept the licence at {site.page(repo_id)} with the account of that "
                        "token.")
    raise UserError(f"{repo_id} is gated on the Hub: reading its config needs a token.",
                    f"Set HF_TOKEN to a Hugging Face token and accept the licence at "
                    f"{site.page(repo_id)}.")


def why_no_config(record: HubRecord) -> str:
    """Why a record gives no config (for the note on a GGUF repo whose base it is)."""
    match record:
        case HubOk():
            return "the Hub has it, without a config.json"
        case HubNotFound():
            return "the Hub has no such model (or it is private)"
        case HubGated():
            return "it is gated on the Hub" + (
                " and the HF_TOKEN given has no access" if record.with_token else "")
        case HubBadToken():
            return "the Hub refused the HF_TOKEN given (invalid credentials)"
        case HubTooLarge():
            return f"its {record.file} is larger than {record.limit / 1e6:g} MB"
        case HubBadConfig():
            return f"its config.json is not a model config ({record.why})"
        case _:
            assert_never(record)


def unread_note(unread: Unread, base: str | None = None) -> str:
    """The note for a part that could not be read: what, why, and what the answer does
    without it. ``base`` names a GGUF repo's base model."""
    what, consequence = _UNREAD[unread.part]
    what = what.format(base=base or "(unnamed)")
    return f"{what} could not be read: {unread.reason}, so {consequence}"


# --- a readable repo ----------------------------------------------------------------------------

# Specs built from cached records, per commit: a cached resolve does not rebuild the spec.
_RESOLVED: LRUCache[tuple[object, ...], HubResolution] = LRUCache(maxsize=256)


def _resolved_ok(repo_id: str, record: HubOk) -> HubResolution:
    if record.sha is None:
        return _resolve_ok(repo_id, record)
    key = (repo_id.lower(), record.id, record.sha, record.config_repo, record.params_total,
           record.params_from, len(record.gguf), record.unread)
    found = _RESOLVED.get(key)
    if found is None:
        found = _RESOLVED[key] = _resolve_ok(repo_id, record)
    return found


def _resolve_ok(repo_id: str, record: HubOk) -> HubResolution:
    notes = _listing_notes(repo_id, record)
    if record.config is None:
        return HubResolution(_model_without_config(record, notes), record.gguf)
    model = from_config(record.id, record.config, "hub", tuple(notes))
    total = record.params_total
    if total is not None and total > 0:
        model = replace(model, notes=(*model.notes, _count_note(record, total, model)),
                        hub_params=total)
    unread = tuple(unread_note(u, record.base_model) for u in record.unread)
    if unread:
        model = replace(model, notes=(*model.notes, *unread))
    return HubResolution(model, record.gguf)


def _listing_notes(repo_id: str, record: HubOk) -> list[str]:
    """What the answer says about the repo itself: its real id, its GGUF files, where its
    architecture came from, custom code it ships."""
    notes: list[str] = []
    if record.id.lower() != repo_id.lower():
        notes.append(f"'{repo_id}' is {record.id} on the Hub")
    if record.gguf:
        sizes = ", ".join(f"{g.quant} {format_bytes(g.size_bytes)}" if g.size_bytes else g.quant
                          for g in record.gguf[:8])
        more = f" and {len(record.gguf) - 8} more" if len(record.gguf) > 8 else ""
        notes.append(f"GGUF repo with {sizes}{more}")
    if record.config is not None:
        if record.config_repo and record.config_repo.lower() != record.id.lower():
            notes.append(f"architecture from its base model {record.config_repo}")
        if "auto_map" in record.config:
            notes.append("its architecture ships as custom code (auto_map); fits reads "
                         "config.json as data and runs none of it")
    return notes


def _model_without_config(record: HubOk, notes: list[str]) -> ResolvedModel:
    """A repo without a config (a GGUF repo whose base gave none): a Llama-style model of its
    exact parameter count, else a sentence saying what is missing."""
    base_unread = next((u for u in record.unread if u.part == "base_config"), None)
    total = record.params_total
    if total is None or total <= 0:
        if base_unread is not None and record.base_model:
            raise UserError(f"{record.id} on the Hub has no config.json, and the config of its "
                            f"base model {record.base_model} could not be read: "
                            f"{base_unread.reason}.", "Try again later, or give its base "
                            "model's id.", config_helps=True)
        raise UserError(f"{record.id} on the Hub has no config.json and names no base model.",
                        "Give its base model's id.", config_helps=True)
    spec = spec_for_size(total / 1e9)
    notes.append(f"{record.id} has no config.json fits could read: estimated as a Llama-style "
                 f"model of its exact {total:,} parameters")
    notes += [unread_note(u, record.base_model) for u in record.unread]
    return ResolvedModel(record.id, "hub", spec, (*notes, *spec.notes), exact_params=False,
                         hub_params=total, recipe=("size", total / 1e9))


def _count_note(record: HubOk, total: int, model: ResolvedModel) -> str:
    by_dtype = record.params or {}
    dtypes = ", ".join(f"{k} {v:,}" for k, v in sorted(by_dtype.items()))
    source = record.params_from or "safetensors metadata"
    note = (f"exact parameter count from the Hub's {source}: {total:,}"
            + (f" ({dtypes})" if dtypes and len(by_dtype) > 1 else ""))
    arch = model.spec.params
    if abs(arch - total) > 0.005 * total:
        note += (f"; the architecture gives {arch:,} (the checkpoint stores packed quantized "
                 "weights or extra tensors)" if model.quantization else
                 f"; the architecture gives {arch:,}")
    return note


# --- without the Hub ----------------------------------------------------------------------------


def fallback(repo_id: str, reason: str) -> HubResolution:
    """The Hub could not answer (``reason`` completes "the Hub ..."): the bundled snapshot, else
    the size in the name, else a sentence saying what happened."""
    log.info("hub fallback for %s: %s", repo_id, reason)
    try:
        model = resolve_known(repo_id)  # not resolve_offline: its size-in-name note is offline's
    except ModelNotFound as err:
        billions = size_in_name(repo_id)
        if billions is None:
            did = f" Did you mean {', '.join(err.suggestions)}?" if err.suggestions else ""
            raise ModelNotFound(
                f"The Hub {reason}, and the bundled snapshot does not have {repo_id}.",
                f"Try again later, or give a size such as 7b.{did}", err.suggestions,
                config_helps=True) from None
        spec = spec_for_size(billions)
        note = f"the Hub {reason}: estimated from the size in the name, {billions:g}B"
        return HubResolution(ResolvedModel(repo_id, "size", spec, (note, *spec.notes),
                                           exact_params=False, recipe=("size", billions)))
    note = f"the Hub {reason}: answered from the bundled snapshot"
    return HubResolution(replace(model, notes=(note, *model.notes)))


def from_offline_cache(found: HubResolution) -> HubResolution:
    """A cached Hub answer given while offline, saying so first."""
    return replace(found, model=replace(found.model, notes=(OFFLINE_NOTE, *found.model.notes)))


def not_found_offline(err: ModelNotFound) -> ModelNotFound:
    """The snapshot's 'not found', told that the Hub was not asked and why."""
    did = f"Did you mean {', '.join(err.suggestions)}? " if err.suggestions else ""
    hint = f"{did}The Hub was not asked: offline mode (HF_HUB_OFFLINE=1) is on; unset it."
    return ModelNotFound(err.message, hint, err.suggestions, config_helps=True)
