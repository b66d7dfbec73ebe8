"""Plain-text rendering of a Report, for the terminal (and any surface without rich formatting)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.engines.details import LlamaCppDetails, RamBytes, TrainingDetails, VllmDetails, VramBytes
from core.report import Report

if TYPE_CHECKING:  # the CLI renders an estimate without loading `best` or `compare`
    from core.compare import CompareAnswer
    from core.ranking import BestAnswer
from core.units import format_bytes, format_tokens

BAR_WIDTH = 24
VERDICT_WORDS = {"fits": "YES", "tight": "YES, but tight", "split": "YES, split", "no": "NO"}


def verdict_sentence(report: Report) -> str:
    """One line: the answer, what it is about, and the numbers behind it (or the engine's reason
    when it is not about the numbers)."""
    gpu = report.gpu
    where = f"{gpu.count} x {gpu.name}" if gpu.count > 1 else gpu.name
    what = report.model.weight_format
    if report.request.get("mode") == "train":
        what = f"{report.request.get('train')} fine-tuning"
    engine = "transformers" if report.engine == "hf" else report.engine
    about = f"{report.model.id} ({what}) on {where} with {engine}"
    need, have = format_bytes(report.total_bytes), format_bytes(gpu.usable_bytes)
    per = " per GPU" if gpu.count > 1 else ""
    if report.verdict == "split":
        return f"YES, split: {split_words(report)}: {about}: needs {need} of {have}{per} on the GPU."
    head = f"{VERDICT_WORDS[report.verdict]}: {about}"
    if report.fits:
        return f"{head}: needs {need} of {have}{per}."
    if report.reason:
        return f"{head}: {report.reason}" + ("" if report.reason.endswith(".") else ".")
    return f"{head}: needs {need}{per}, but only {have} is usable.{split_clause(report)}"


def split_words(report: Report) -> str:
    """'45 of 80 layers on the GPU, about 3.1 tokens/s' for a split answer."""
    llama = report.engine_details.engine
    assert isinstance(llama, LlamaCppDetails)
    speed = report.speed.decode_tokens_per_s
    pace = f", about {speed:.3g} tokens/s" if speed else ""
    ram = format_bytes(llama.placement.ram_bytes.total)
    return f"{llama.placement.layers_on_gpu} of {llama.n_layers} layers on the GPU{pace}, {ram} in RAM"


def split_clause(report: Report) -> str:
    """llama.cpp/Ollama with -ngl given: the split that runs when the layers asked for do not
    fit in VRAM."""
    llama = report.engine_details.engine
    if (not isinstance(llama, LlamaCppDetails) or llama.placement.cpu_only
            or (llama.ram is not None and not llama.ram.ram_fits)):
        return ""
    ngl, n_layers = llama.placement.layers_on_gpu, llama.n_layers
    if not 0 < ngl < n_layers:
        return ""
    ram = format_bytes(llama.placement.ram_bytes.total)
    speed = report.speed.decode_tokens_per_s
    pace = f" at about {speed:.3g} tokens/s" if speed else ""
    return f" It runs split: {ngl} of {n_layers} layers on the GPU, {ram} in RAM{pace}."


def bar(part: int, whole: int, width: int = BAR_WIDTH) -> str:
    filled = round(width * min(1.0, part / whole)) if whole > 0 else 0
    return "#" * filled + "." * (width - filled)


def breakdown_rows(report: Report) -> list[tuple[str, int]]:
    b = report.breakdown
    rows = [("weights", b.weights), ("kv cache", b.kv_cache), ("activations", b.activations),
            ("gradients", b.gradients), ("optimizer", b.optimizer), ("overhead", b.overhead)]
    training = report.request.get("mode") == "train"
    keep = ("weights",) if training else ("weights", "kv cache")
    return [(name, value) for name, value in rows if value or name in keep]


def limits_line(report: Report) -> str:
    parts = []
    if report.max_context:
        parts.append(f"longest context that fits: {format_tokens(report.max_context)}")
    if report.max_batch:
        parts.append(f"largest batch at this ctx: {report.max_batch}")
    if report.best_quant:
        parts.append(f"best quant that fits: {report.best_quant}")
    return "; ".join(parts) or "nothing fits on this GPU, even at the shortest context"


def speed_line(report: Report) -> str | None:
    s = report.speed
    if s.step_seconds is not None:
        return (f"about {s.step_seconds:g} s per step, {s.train_tokens_per_s:g} tokens/s "
                "(compute-bound)")
    if s.decode_tokens_per_s is None:
        return None
    line = (f"about {s.decode_tokens_per_s:g} tokens/s decoding{together_words(report)} "
            f"({s.bound}-bound)")
    prompt = prompt_words(report)
    if prompt:
        line += f"{'; ' if s.aggregate_decode_tokens_per_s else ', '}prompt of {prompt}"
    return line + (f"; {s.parallelism}" if s.parallelism else "")


def rate_words(tokens_per_s: float) -> str:
    return f"{tokens_per_s:,.0f}" if tokens_per_s >= 100 else f"{tokens_per_s:g}"


def together_words(report: Report) -> str:
    """With a batch, what follows each request's decode speed: " per request, 1,720 tokens/s
    for all 32 together"; nothing for one sequence."""
    together = report.speed.aggregate_decode_tokens_per_s
    if together is None:
        return ""
    return (f" per request, {rate_words(together)} tokens/s for all "
            f"{report.request.get('batch')} together")


def prompt_words(report: Report) -> str | None:
    """One prompt's time and, with a batch, all of theirs: "8,192 tokens in 0.3 s (9.5 s for
    all 32)"."""
    s = report.speed
    if s.prefill_seconds is None:
        return None
    prompt = report.request.get("prompt") or report.request.get("ctx")
    words = f"{format_tokens(int(str(prompt)))} tokens in {s.prefill_seconds:g} s"
    if s.batch_prefill_seconds is not None:
        words += f" ({s.batch_prefill_seconds:g} s for all {report.request.get('batch')})"
    return words


def _parts(side: VramBytes | RamBytes, runtime: str = "CUDA") -> str:
    """The non-zero parts of one side of a llama.cpp placement, in words."""
    parts = [("weights", side.weights)]
    if isinstance(side, RamBytes):
        parts.append(("token embedding", side.token_embd))
    parts += [("KV cache", side.kv_cache), ("compute buffer", side.compute_buffer)]
    if isinstance(side, VramBytes):
        parts.append((f"{runtime} context", side.overhead))
    return ", ".join(f"{label} {format_bytes(size)}" for label, size in parts if size)


def suggestions_title(report: Report) -> str:
    """What the list of changes is for: making it fit, or more room when it already does."""
    if report.verdict == "split":
        return "To run it wholly on the GPU"
    return "To make it fit" if report.verdict == "no" else "For more room"


def kv_pool_phrase(report: Report) -> str | None:
    """vLLM's KV pool in words: the tokens it logs and how many requests of this ctx fit."""
    vllm = report.engine_details.engine
    if not isinstance(vllm, VllmDetails):
        return None
    tokens = format_tokens(vllm.kv_cache_tokens)
    concurrency = vllm.max_concurrency
    if vllm.kv_groups > 1:
        # The logged count is per layer group; sliding-window groups hold only their window.
        return (f"holds {tokens} tokens per layer group; sliding-window layers keep only their "
                f"window, so {concurrency} requests of this ctx fit")
    return f"holds {tokens} tokens (max concurrency at this ctx: {concurrency})"


def engine_lines(report: Report) -> list[str]:
    """What the engine does with the memory: vLLM's KV pool, a training offload's CPU RAM,
    llama.cpp's VRAM/RAM placement (lines of placement_lines indented as in the terminal)."""
    lines = []
    kv_pool = kv_pool_phrase(report)
    if kv_pool:
        lines.append(f"KV cache {kv_pool}")
    lines += [f"{label}: {value}" for label, value in ram_facts(report)]
    return lines + placement_lines(report)


def ram_facts(report: Report) -> list[tuple[str, str]]:
    """Training's CPU RAM: what offload=cpu moves there (states, gradients, parameters) and the
    offloaded activations (Unsloth's checkpointing), next to the GPU peak the breakdown shows."""
    training = report.engine_details.engine
    if not isinstance(training, TrainingDetails):
        return []
    out = []
    if training.cpu_ram_bytes:
        out.append(("CPU RAM for the offload", f"{format_bytes(training.cpu_ram_bytes)} in all"))
    if training.activation_ram_bytes:
        out.append(("CPU RAM for offloaded activations",
                    f"{format_bytes(training.activation_ram_bytes)} in all, while the GPU peaks "
                    f"at {format_bytes(report.total_bytes)}"))
    return out


def placement_lines(report: Report) -> list[str]:
    """llama.cpp/Ollama: what sits in VRAM and what in RAM, and whether RAM suffices."""
    llama = report.engine_details.engine
    if not isinstance(llama, LlamaCppDetails):
        return []
    placement = llama.placement
    vram, ram = placement.vram_bytes, placement.ram_bytes
    n_layers, ngl = llama.n_layers, placement.layers_on_gpu
    if placement.cpu_only:
        head = "Placement: everything in system RAM (CPU only)"
    elif ngl == n_layers:
        head = f"Placement: all {n_layers} layers and the output layer on the GPU"
    else:
        chosen = "as asked" if report.request.get("ngl") is not None else "as llama.cpp would fit it"
        head = (f"Placement ({chosen}): {ngl} of {n_layers} layers on the GPU (-ngl {ngl}), "
                "the rest in RAM")
    lines = [head]
    if vram.total:
        lines.append(f"  VRAM {format_bytes(vram.total):>10}  {_parts(vram, report.gpu.runtime)}")
    lines.append(f"  RAM  {format_bytes(ram.total):>10}  {_parts(ram)}")
    check = llama.ram
    if check is not None:
        need = format_bytes(check.ram_needed_bytes)
        have = format_bytes(check.ram_available_bytes)
        total = format_bytes(check.ram_total_bytes)
        reserve = format_bytes(check.ram_reserve_bytes)
        verdict = "enough" if check.ram_fits else "NOT enough"
        pool = " (unified memory: GPU and CPU share it)" if check.unified_memory else ""
        lines.append(f"RAM: needs {need} of {have} usable ({total} less {reserve} for the OS)"
                     f"{pool}: {verdict}")
    return lines


def render_text(report: Report) -> str:
    usable = report.gpu.usable_bytes
    lines = [verdict_sentence(report), ""]
    for name, value in breakdown_rows(report):
        lines.append(f"  {name:<12} {format_bytes(value):>10}  {bar(value, usable)}")
    lines.append(f"  {'total':<12} {format_bytes(report.total_bytes):>10}  "
                 f"{bar(report.total_bytes, usable)}  of {format_bytes(usable)}")
    lines += ["", limits_line(report)]
    if speed := speed_line(report):
        lines.append(speed)
    lines += engine_lines(report)
    if report.run is not None:
        lines += ["", "Run it:", *(f"  {line}" for line in report.run.command.splitlines()),
                  *(f"  # {note}" for note in report.run.notes)]
    if report.suggestions:
        lines += ["", f"{suggestions_title(report)}:"]
        lines += [f"  {s.change:<24} {format_bytes(s.total_bytes):>10}  ({s.why})"
                  for s in report.suggestions]
    if report.warnings:
        lines += ["", *(f"warning: {w}" for w in report.warnings)]
    lines += ["", "Assumptions:", *(f"  - {a}" for a in report.assumptions)]
    return "\n".join(lines)


# --- the ranking and the comparison, as rows every surface lays out its own way -------------------


def best_rows(answer: BestAnswer) -> list[list[str]]:
    """Header, then one row per pick: rank, model, format and engine, memory, speed, why."""
    out = [["#", "model", "format", "needs", "tok/s", "why"]]
    for n, e in enumerate(answer.entries, 1):
        speed = f"{e.decode_tokens_per_s:.3g}" if e.decode_tokens_per_s else "-"
        out.append([str(n), e.id, f"{e.quant} ({e.engine})", format_bytes(e.total_bytes), speed,
                    e.reason])
    return out


def best_title(answer: BestAnswer) -> str:
    if not answer.entries:
        return (f"No bundled model fits {answer.gpu} for {answer.use} with these settings "
                f"({answer.considered} looked at).")
    return (f"Best models for {answer.use} on {answer.gpu}: {len(answer.entries)} of the "
            f"{answer.fitting} that fit ({answer.considered} looked at)")


def text_table(rows: list[list[str]], wrap_last: bool = False) -> list[str]:
    """Columns padded to their widest cell; the last column left free when ``wrap_last``."""
    cols = len(rows[0])
    widths = [max(len(r[i]) for r in rows) for i in range(cols - (1 if wrap_last else 0))]
    lines = []
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(len(widths))]
        if wrap_last:
            cells.append(r[-1])
        lines.append("  ".join(cells).rstrip())
    return lines


def render_best(answer: BestAnswer) -> str:
    lines = [best_title(answer)]
    if answer.entries:
        lines += ["", *text_table(best_rows(answer), wrap_last=True), "",
                  "Check one: fits \"<command>\", e.g. fits "
                  f"\"{answer.entries[0].command}\""]
    lines += ["", *(f"  - {n}" for n in answer.notes)]
    return "\n".join(lines)


def render_compare(answer: CompareAnswer) -> str:
    lines = [f"Comparison: {len(answer.rows)} setup(s) on {len(answer.columns)} GPU(s)", "",
             *text_table(answer.table())]
    errors = [c for c in answer.cells if c.error]
    if errors:
        lines += ["", *(f"  - {c.row} on {c.column}: {c.error}" for c in errors)]
    return "\n".join(lines)
