"""From a parsed command to a Report: snapshot (or uploaded config or size), GPU catalogue,
estimate. ``estimate_command`` is the offline path. For models the snapshot does not have,
adapters/hub resolves the model on the Hub and uses ``hub_job`` and ``with_hub_details`` here;
the types every surface renders (Answer, Caller, AnswerService) live here too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from core.answers import GpuListAnswer, HelpAnswer, ModelListAnswer
from core.calibration import FITTED, Calibration
from core.engines.details import HubExtras
from core.estimate import build_report
from core.gpus import GpuSelection, resolve_gpu
from core.parser import EstimateCommand
from core.report import Report
from core.request import EstimateRequest
from core.resolve import ResolvedModel, from_config, resolve_offline
from core.units import format_bytes

if TYPE_CHECKING:
    from core.compare import CompareAnswer
    from core.hub_resolve import HubResolution
    from core.ranking import BestAnswer


@dataclass(frozen=True)
class ReportJob:
    """What build_report needs, resolved and checked: the part of an answer that is pure CPU
    work, which the service may hand to a worker process (it pickles small: the model travels
    as its recipe, see ResolvedModel.__reduce__)."""

    request: EstimateRequest
    model: ResolvedModel
    gpu: GpuSelection
    notes: tuple[str, ...] = ()
    calibration: Calibration = FITTED

    def run(self, deadline: float | None = None) -> Report:
        return build_report(self.request, self.model, self.gpu, self.notes, deadline,
                            self.calibration)


# How a caller computes a job's report: the service's runner does it off the event loop.
RunJob = Callable[[ReportJob], Awaitable[Report]]


def offline_job(command: EstimateCommand, config: dict[str, Any] | None = None) -> ReportJob:
    request = command.request
    if config is not None:
        model = from_config(request.model, config, "config")
    else:
        model = resolve_offline(request.model)
    return ReportJob(request, model, resolve_gpu(request.gpu), command.notes)


def estimate_command(command: EstimateCommand, config: dict[str, Any] | None = None) -> Report:
    return offline_job(command, config).run()


def hub_job(command: EstimateCommand, found: HubResolution) -> ReportJob:
    """The job for a model the Hub (or its fallback) resolved. A GGUF repo asked without a
    quantization is answered for one of its own files."""
    request = command.request
    notes = command.notes
    if (found.gguf and request.quant is None and request.mode == "infer"
            and request.engine in (None, "llama.cpp", "ollama")):
        pick = found.default_gguf()
        if pick is not None:
            request = request.updated(quant=pick.quant)
            notes = (*notes, f"a GGUF repo and no quantization given: its {pick.quant} file")
    return ReportJob(request, found.model, resolve_gpu(request.gpu), notes)


def with_hub_details(report: Report, found: HubResolution) -> Report:
    """``report`` with what the Hub told beyond the model: its exact parameter count, and for a
    GGUF repo the files of the chosen quantization, their bytes and how they compare with the
    estimate's weights."""
    extra: list[str] = []
    files: tuple[str, ...] | None = None
    file_bytes: int | None = None
    chosen = found.gguf_for(report.model.weight_format) if found.gguf else None
    if chosen is not None and chosen.size_bytes:
        files, file_bytes = tuple(chosen.files), chosen.size_bytes
        total = report.engine_details.weights_total_bytes
        extra.append(f"the repo's {chosen.quant} file is {format_bytes(chosen.size_bytes)} on the "
                     f"Hub; the estimate's weights total {format_bytes(total)}")
    if found.model.hub_params is None and files is None:
        return report
    hub = HubExtras(hub_params=found.model.hub_params, gguf_files=files, gguf_file_bytes=file_bytes)
    return replace(report, engine_details=replace(report.engine_details, hub=hub),
                   assumptions=[*report.assumptions, *extra])


# --- what a surface gets back -------------------------------------------------------------------
# The answering service lives in bot/ (it holds the rate limiter and the Hub cache); adapters see
# only these types and the AnswerService protocol, so they import core alone.


# A string: best and compare load their modules only when asked (the CLI's start-up).
Answer: TypeAlias = \
    "Report | HelpAnswer | GpuListAnswer | ModelListAnswer | BestAnswer | CompareAnswer"


@dataclass(frozen=True)
class Caller:
    """Who asked, as rate-limit keys from the narrowest to the widest: e.g.
    ("discord:user:1", "discord:guild:2"). Every key must have a token left."""

    keys: Sequence[str]


class AnswerService(Protocol):
    """What a surface adapter is given to answer with (bot.answerer.Answerer implements it)."""

    async def answer(self, text: str, caller: Caller | None = None,
                     config: dict[str, Any] | None = None) -> Answer:
        """The answer to one command; raises core.errors.UserError (RateLimited too)."""
        ...

    async def search_models(self, query: str, limit: int = 25) -> list[str]:
        """Model ids for autocomplete: bundled first, then the Hub (cached, bounded)."""
        ...

    def picture_url(self, answer: Answer) -> str | None:
        """Where the answer's chart is served (PUBLIC_URL set), for chats that show images by
        URL; None without one."""
        ...
