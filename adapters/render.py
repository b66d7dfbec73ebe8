"""One renderer interface for every surface: a surface implements each kind of answer once, and
``render`` is the one place that tells the kinds apart. Adding a kind of answer (a comparison,
a ranking) is one more method here, which mypy then asks every surface to implement."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

from core.answers import GpuListAnswer, HelpAnswer, ModelListAnswer

if TYPE_CHECKING:
    from core.answer import Answer
    from core.compare import CompareAnswer
    from core.errors import UserError
    from core.ranking import BestAnswer
    from core.report import Report

T_co = TypeVar("T_co", covariant=True)


class Renderer(Protocol[T_co]):
    """How one surface shows each kind of answer (T: its message type)."""

    def report(self, report: Report) -> T_co: ...

    def help(self, answer: HelpAnswer) -> T_co: ...

    def gpus(self, answer: GpuListAnswer) -> T_co: ...

    def models(self, answer: ModelListAnswer) -> T_co: ...

    def best(self, answer: BestAnswer) -> T_co: ...

    def compare(self, answer: CompareAnswer) -> T_co: ...

    def error(self, error: UserError) -> T_co: ...


def render(answer: Answer, renderer: Renderer[T_co]) -> T_co:
    # The light answers first, then the Report: `fits help` loads no Report, and an estimate
    # neither `best` nor `compare`.
    if isinstance(answer, HelpAnswer):
        return renderer.help(answer)
    if isinstance(answer, GpuListAnswer):
        return renderer.gpus(answer)
    if isinstance(answer, ModelListAnswer):
        return renderer.models(answer)
    from core.report import Report

    if isinstance(answer, Report):
        return renderer.report(answer)
    from core.compare import CompareAnswer
    from core.ranking import BestAnswer

    if isinstance(answer, BestAnswer):
        return renderer.best(answer)
    if isinstance(answer, CompareAnswer):
        return renderer.compare(answer)
    raise TypeError(f"no renderer for {type(answer).__name__}")
