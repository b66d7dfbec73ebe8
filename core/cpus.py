"""CPU catalogue and the host a request runs on: the CPU, how much RAM, how fast it is read.

What users type after cpu= (7950x, i9-13900k, m2-max, epyc-9654) resolves against
data/cpus.json: cores, clocks, SIMD width and FMA pipes (for FLOPS), memory channels and the
fastest memory each supports (for bandwidth), with a source per row. Apple Silicon and other
unified-memory chips carry their own bandwidth, the same figure as the GPU catalogue's.

Pure and fast: the table is read once, lookups are dict hits; ``resolve_host`` is memoized on its
(hashable) inputs so the solvers can call it freely.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.engines.details import HostInfo, LlamaCppDetails, RamCheck
from core.errors import UserError
from core.gpus import Gpu, GpuSelection

if TYPE_CHECKING:
    from core.request import EstimateRequest

GIB = 1 << 30
_DATA = Path(__file__).parent / "data" / "cpus.json"
_STOP = frozenset({"amd", "intel", "apple", "processor", "cpu", "tm", "r", "with", "radeon",
                   "graphics", "mac", "macbook", "studio", "mini", "imac"})
_MEM = re.compile(r"\d+(?:\.\d+)?(?:g|gb|gib)")

# Without ram= the answer assumes this much RAM, and says so.
DEFAULT_RAM_BYTES = 32 * GIB
# RAM left for the OS and other programs: an eighth, at least 2 GiB, at most 8 GiB.
RESERVE_FRACTION = 1 / 8
RESERVE_MIN_BYTES = 2 * GIB
RESERVE_MAX_BYTES = 8 * GIB
# Without cpu= (and no unified-memory GPU that names its chip): a typical current desktop.
DEFAULT_CHANNELS = 2
DEFAULT_MTS = 5600
DEFAULT_MEMORY = "DDR5"
DEFAULT_CORES = 8
DEFAULT_CLOCK_GHZ = 4.0
DEFAULT_FLOPS_PER_CYCLE = 32  # AVX2: two 256-bit FMA pipes, 8 FP32 lanes x 2 FLOPs each
BYTES_PER_CHANNEL_TRANSFER = 8  # a 64-bit channel moves 8 bytes per transfer


@dataclass(frozen=True, slots=True)
class Cpu:
    """One CPU model (one socket)."""

    name: str
    vendor: str
    segment: str
    cores: int
    threads: int
    performance_cores: int | None  # hybrid chips: the big cores llama.cpp runs best on
    base_clock_ghz: float
    boost_clock_ghz: float
    simd: tuple[str, ...]  # avx2, avx512, amx, neon
    simd_width_bits: int  # the datapath width FMAs execute at (Zen 4: 256 even for AVX-512)
    fma_units: int  # FMA pipes per core
    memory_channels: int | None  # 64-bit channel equivalents; None where bandwidth is given
    memory: tuple[tuple[str, int], ...]  # (type, max MT/s), the first is assumed
    bandwidth_gbs: float | None  # unified-memory SoCs: the vendor's figure
    unified_memory: bool
    source: str
    notes: str

    @property
    def compute_cores(self) -> int:
        return self.performance_cores or self.cores

    @property
    def flops_per_cycle(self) -> int:
        """FP32 FLOPs one core can issue per cycle: lanes x 2 (multiply-add) x FMA pipes."""
        return self.simd_width_bits // 32 * 2 * self.fma_units

    @property
    def peak_flops(self) -> float:
        return self.compute_cores * self.base_clock_ghz * 1e9 * self.flops_per_cycle


@dataclass(frozen=True, slots=True)
class _Catalog:
    """The CPU table with its lookup indexes, built once."""

    cpus: tuple[Cpu, ...]
    exact: dict[str, int]  # joined alias tokens -> index
    prefix: dict[tuple[str, ...], tuple[int, ...]]  # leading alias tokens -> indexes
    model_numbers: dict[str, tuple[int, ...]]  # a lone model number (7950x) -> indexes


def _tokens(text: str) -> tuple[str, ...]:
    """Lowercase words without vendor noise or memory sizes: 'Intel(R) Core i9-13900K' ->
    ('core', 'i9', '13900k')."""
    words = re.findall(r"\d+\.\d+|[a-z0-9+]+", text.lower())
    return tuple(w for w in words if w not in _STOP and not _MEM.fullmatch(w))


def _cpu(e: dict[str, Any]) -> Cpu:
    return Cpu(
        name=e["name"], vendor=e["vendor"], segment=e["segment"], cores=int(e["cores"]),
        threads=int(e["threads"]), performance_cores=e.get("performance_cores"),
        base_clock_ghz=float(e["base_clock_ghz"]), boost_clock_ghz=float(e["boost_clock_ghz"]),
        simd=tuple(e["simd"]), simd_width_bits=int(e["simd_width_bits"]),
        fma_units=int(e["fma_units"]), memory_channels=e.get("memory_channels"),
        memory=tuple((m["type"], int(m["max_mts"])) for m in e["memory"]),
        bandwidth_gbs=None if e.get("bandwidth_gbs") is None else float(e["bandwidth_gbs"]),
        unified_memory=bool(e["unified_memory"]), source=e["source"], notes=e.get("notes", ""),
    )


@functools.cache
def _catalog() -> _Catalog:
    entries: list[dict[str, Any]] = json.loads(_DATA.read_text(encoding="utf-8"))
    exact: dict[str, int] = {}
    prefix: dict[tuple[str, ...], set[int]] = {}
    numbers: dict[str, set[int]] = {}
    for i, e in enumerate(entries):
        for alias in (e["name"], *e["aliases"]):
            toks = _tokens(alias)
            exact.setdefault("".join(toks), i)
            for n in range(1, len(toks)):
                prefix.setdefault(toks[:n], set()).add(i)
            for tok in toks:
                if any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok) and len(tok) > 3:
                    numbers.setdefault(tok, set()).add(i)
    return _Catalog(tuple(_cpu(e) for e in entries), exact,
                    {k: tuple(sorted(v)) for k, v in prefix.items()},
                    {k: tuple(sorted(v)) for k, v in numbers.items()})


def all_cpus() -> list[Cpu]:
    return list(_catalog().cpus)


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _unknown(text: str) -> UserError:
    cat = _catalog()
    close = difflib.get_close_matches("".join(_tokens(text)), list(cat.exact), n=12, cutoff=0.6)
    names = list(dict.fromkeys(cat.cpus[cat.exact[k]].name for k in close))[:3]
    hint = f"Did you mean {_or_list(names)}? If not, g" if names else "G"
    hint += ("ive the memory bandwidth instead, e.g. membw=90 (GB/s), or the RAM speed, "
             "e.g. ram=64GB@6000.")
    return UserError(f'Unknown CPU "{text[:60]}".', hint)


@functools.cache
def resolve_cpu(text: str) -> Cpu:
    """A CPU from what users type: 7950x, Ryzen 9 7950X, i9-13900k, m2-max, EPYC 9654."""
    raw = text.strip()
    if not raw:
        raise UserError("No CPU was given.", "Name one, e.g. cpu=7950x or cpu=i9-13900k.")
    if len(raw) > 100:
        raise UserError("That CPU name is too long.", "Name one CPU, e.g. cpu=7950x.")
    cat = _catalog()
    toks = _tokens(raw)
    if not toks:
        raise _unknown(raw)
    if (i := cat.exact.get("".join(toks))) is not None:
        return cat.cpus[i]
    hits = cat.prefix.get(toks, ())
    if len(hits) == 1:
        return cat.cpus[hits[0]]
    if hits:
        names = [cat.cpus[i].name for i in hits]
        raise UserError(f'"{raw[:60]}" matches several CPUs: {_or_list(names)}.',
                        "Name the variant, e.g. cpu=m3-max-16-core.")
    # A full name around a model number we know: "13th Gen Intel(R) Core(TM) i9-13900K".
    found = {i for tok in toks for i in cat.model_numbers.get(tok, ())}
    if len(found) == 1:
        return cat.cpus[found.pop()]
    raise _unknown(raw)


def search_cpus(query: str, limit: int = 10) -> list[Cpu]:
    """CPUs whose name or alias contains the query (all when it is empty)."""
    cat = _catalog()
    q = "".join(_tokens(query))
    if not q:
        return list(cat.cpus[:limit])
    order = dict.fromkeys(i for key, i in cat.exact.items() if q in key)
    return [cat.cpus[i] for i in list(order)[:limit]]


def chip_of_gpu(gpu_name: str) -> Cpu | None:
    """The CPU side of a unified-memory GPU entry ('Apple M2 Max 64GB' -> Apple M2 Max)."""
    i = _catalog().exact.get("".join(_tokens(gpu_name)))
    return _catalog().cpus[i] if i is not None else None


# ---------------------------------------------------------------- the host: RAM and bandwidth


@dataclass(frozen=True, slots=True)
class Host:
    """The CPU side of a request: RAM, its bandwidth and the CPU's FLOPS, each with its note."""

    cpu: Cpu | None
    ram_bytes: int
    reserve_bytes: int  # left for the OS and other programs
    ram_note: str
    bandwidth_gbs: float
    bandwidth_note: str
    flops: float  # peak FP32 FLOP/s of the cores llama.cpp runs on
    flops_note: str
    unified: bool  # RAM and GPU memory are one pool (Apple Silicon, Strix Halo, Jetson)

    @property
    def usable_ram_bytes(self) -> int:
        return self.ram_bytes - self.reserve_bytes

    @property
    def label(self) -> str:
        cpu = self.cpu.name if self.cpu else "CPU"
        return f"{cpu}, {self.ram_bytes / GIB:g} GB RAM"


def reserve_bytes(ram: int) -> int:
    return int(min(max(ram * RESERVE_FRACTION, RESERVE_MIN_BYTES), RESERVE_MAX_BYTES))


def _gb(n: int) -> str:
    return f"{n / GIB:.1f}".removesuffix(".0")


def _bandwidth(cpu: Cpu | None, ram_speed: int | None, membw: float | None) -> tuple[float, str]:
    if membw is not None:
        return membw, f"RAM bandwidth {membw:g} GB/s as given (membw=)"
    if cpu is not None and cpu.bandwidth_gbs is not None:
        note = f"{cpu.name}: {cpu.bandwidth_gbs:g} GB/s of unified memory bandwidth (vendor figure)"
        if ram_speed is not None:
            note += "; the memory speed in ram= does not change a soldered SoC's bandwidth"
        return cpu.bandwidth_gbs, note
    channels = (cpu.memory_channels if cpu else None) or DEFAULT_CHANNELS
    kind, rated = cpu.memory[0] if cpu else (DEFAULT_MEMORY, DEFAULT_MTS)
    mts = ram_speed or rated
    gbs = channels * mts * BYTES_PER_CHANNEL_TRANSFER / 1000
    if ram_speed is not None:
        speed = f"{mts} MT/s as given (ram=...@{mts})"
    elif cpu is not None:
        speed = f"{kind}-{mts}, the {cpu.name}'s rated maximum (ram=<size>@<MT/s> if yours differs)"
    else:
        speed = f"{kind}-{mts} assumed (no cpu=; give cpu=, ram=<size>@<MT/s> or membw=)"
    where = f"{channels} channels" if cpu else f"{channels} channels assumed"
    return gbs, f"RAM bandwidth {gbs:g} GB/s = {where} x {speed} x 8 bytes"


def _flops(cpu: Cpu | None) -> tuple[float, str]:
    if cpu is None:
        flops = DEFAULT_CORES * DEFAULT_CLOCK_GHZ * 1e9 * DEFAULT_FLOPS_PER_CYCLE
        return flops, (f"CPU compute {flops / 1e12:.2f} TFLOPS FP32 assumed: {DEFAULT_CORES} cores x "
                       f"{DEFAULT_CLOCK_GHZ:g} GHz x {DEFAULT_FLOPS_PER_CYCLE} FLOPs/cycle (AVX2)")
    which = (f"{cpu.compute_cores} performance cores" if cpu.performance_cores
             else f"{cpu.cores} cores")
    simd = "NEON" if "neon" in cpu.simd else ("AVX-512" if "avx512" in cpu.simd else "AVX2")
    return cpu.peak_flops, (
        f"CPU compute {cpu.peak_flops / 1e12:.2f} TFLOPS FP32 = {which} x {cpu.base_clock_ghz:g} GHz "
        f"(base) x {cpu.flops_per_cycle} FLOPs/cycle ({simd}, {cpu.simd_width_bits}-bit x "
        f"{cpu.fma_units} FMA)")


@functools.cache
def resolve_host(cpu: str | None, ram: int | None, ram_speed: int | None, membw: float | None,
                 gpu_name: str, gpu_memory_bytes: int, gpu_unified: bool) -> Host:
    """The host of a request. A unified-memory GPU is its own host: its RAM is the GPU's memory
    and, without cpu=, its chip's CPU is the one in the table (Apple M2 Max for an M2 Max GPU)."""
    chip = resolve_cpu(cpu) if cpu else (chip_of_gpu(gpu_name) if gpu_unified else None)
    unified = gpu_unified or bool(chip and chip.unified_memory)
    if gpu_unified:
        size = gpu_memory_bytes
        ram_note = (f"unified memory: the {_gb(size)} GB the GPU uses are also the system RAM"
                    + ("; ram= is ignored" if ram is not None and ram != size else ""))
    elif ram is not None:
        size, ram_note = ram, f"{_gb(ram)} GB of RAM as given"
    else:
        size = DEFAULT_RAM_BYTES
        ram_note = f"no ram= given, so {_gb(size)} GB of system RAM is assumed"
    reserve = reserve_bytes(size)
    ram_note += (f"; {_gb(reserve)} GB of it is left for the OS and other programs (1/8 of RAM, "
                 "2 to 8 GB)")
    bandwidth, bw_note = _bandwidth(chip, ram_speed, membw)
    flops, flops_note = _flops(chip)
    return Host(chip, size, reserve, ram_note, bandwidth, bw_note, flops, flops_note, unified)


def host_for(request: EstimateRequest, gpu: GpuSelection) -> Host:
    """The host a request describes (cpu=, ram=, membw=), next to the GPU it resolved to."""
    return resolve_host(request.cpu, request.ram, request.ram_speed, request.membw,
                        gpu.gpu.name, gpu.memory_bytes, gpu.gpu.unified_memory)


def cpu_only_selection(host: Host) -> GpuSelection:
    """gpu=none: the 'device' a CPU-only answer is about is system RAM, so the verdict, the
    longest context and the best quantization are all judged against RAM (less the reserve)."""
    cpu = host.cpu.name if host.cpu else "CPU"
    device = Gpu(
        name=f"{cpu} (CPU only, {_gb(host.ram_bytes)} GB RAM)", vendor="cpu",
        memory_bytes=host.ram_bytes, usable_bytes=host.usable_ram_bytes,
        usable_note=f"{_gb(host.usable_ram_bytes)} GB of RAM usable: {host.ram_note}",
        bandwidth_gbs=host.bandwidth_gbs, tflops_fp16=None, tflops_source=None,
        unified_memory=host.unified, compute_capability=None, arch=None,
        source=host.cpu.source if host.cpu else "assumed", notes="",
    )
    return GpuSelection(device, 1, device.memory_bytes, device.usable_bytes, device.usable_note,
                        False)


def ram_needed(ram_side: int, gpu_side_total: int, host: Host, cpu_only: bool) -> int:
    """RAM a llama.cpp run needs: its RAM side, plus on unified memory the GPU side too (one
    pool); on a CPU-only run the RAM side is everything."""
    return ram_side + (gpu_side_total if host.unified and not cpu_only else 0)


def ram_check(details: LlamaCppDetails, host: Host) -> RamCheck:
    """Whether a llama.cpp run's RAM side fits the host: needed, available, and the host."""
    placement = details.placement
    needed = ram_needed(details.system_ram_bytes, placement.vram_bytes.total, host,
                        placement.cpu_only)
    return RamCheck(
        ram_needed_bytes=needed, ram_available_bytes=host.usable_ram_bytes,
        ram_total_bytes=host.ram_bytes, ram_reserve_bytes=host.reserve_bytes,
        ram_fits=needed <= host.usable_ram_bytes, unified_memory=host.unified,
        host=HostInfo(cpu=host.cpu.name if host.cpu else None,
                      ram_bandwidth_gbs=host.bandwidth_gbs,
                      cpu_tflops_fp32=round(host.flops / 1e12, 2),
                      notes=(host.ram_note, host.bandwidth_note, host.flops_note)))
