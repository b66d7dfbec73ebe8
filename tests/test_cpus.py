"""The CPU catalogue (core/data/cpus.json) and the host a request describes (core.cpus)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core import cpus
from core.cpus import GIB, resolve_cpu, resolve_host
from core.errors import UserError
from core.gpus import resolve_gpu

DATA = Path(cpus.__file__).parent / "data"


def entries() -> list[dict[str, object]]:
    return json.loads((DATA / "cpus.json").read_text())


def test_every_entry_is_complete_and_sourced() -> None:
    rows = entries()
    assert len(rows) >= 30
    names = [str(e["name"]) for e in rows]
    assert len(names) == len(set(names))
    for e in rows:
        assert re.match(r"https://", str(e["source"])), e["name"]
        assert e["vendor"] in ("amd", "intel", "apple")
        assert 1 <= int(str(e["cores"])) <= int(str(e["threads"])) <= 512
        assert 0.5 <= float(str(e["base_clock_ghz"])) <= float(str(e["boost_clock_ghz"])) <= 6.5
        assert set(e["simd"]) <= {"avx2", "avx512", "amx", "neon"}  # type: ignore[arg-type]
        assert e["simd_width_bits"] in (128, 256, 512) and e["fma_units"] in (2, 4)
        memory = e["memory"]
        assert isinstance(memory, list) and memory
        for m in memory:
            assert re.fullmatch(r"(LP)?DDR\dL?X?", m["type"]) and 1066 <= m["max_mts"] <= 9600
        if e["unified_memory"] and e["vendor"] == "apple":
            assert e["bandwidth_gbs"] and e.get("memory_channels") is None
        elif not e["unified_memory"]:
            assert 1 <= int(str(e["memory_channels"])) <= 12


def test_a_few_dozen_chips_of_every_kind() -> None:
    segments = {str(e["segment"]) for e in entries()}
    assert {"desktop", "laptop", "server", "apple-silicon"} <= segments


def test_apple_bandwidth_agrees_with_the_gpu_catalogue() -> None:
    """An Apple chip is one SoC: the CPU table and the GPU table must give the same bandwidth."""
    checked = 0
    for gpu in json.loads((DATA / "gpus.json").read_text()):
        if gpu["vendor"] != "apple":
            continue
        cpu = cpus.chip_of_gpu(gpu["name"])
        assert cpu is not None, gpu["name"]
        assert cpu.bandwidth_gbs == pytest.approx(float(gpu["bandwidth_gbs"])), gpu["name"]
        checked += 1
    assert checked >= 30


@pytest.mark.parametrize(("typed", "name"), [
    ("7950x", "AMD Ryzen 9 7950X"),
    ("Ryzen 9 7950X", "AMD Ryzen 9 7950X"),
    ("AMD Ryzen 9 7950X 16-Core Processor", "AMD Ryzen 9 7950X"),
    ("i9-13900k", "Intel Core i9-13900K"),
    ("13th Gen Intel(R) Core(TM) i9-13900K", "Intel Core i9-13900K"),
    ("m2-max", "Apple M2 Max"),
    ("m2-max-64gb", "Apple M2 Max"),
    ("epyc-9654", "AMD EPYC 9654"),
    ("EPYC 9654", "AMD EPYC 9654"),
    ("m3 max 16 core", "Apple M3 Max (16-core CPU, 40-core GPU)"),
])
def test_what_people_type_resolves(typed: str, name: str) -> None:
    assert resolve_cpu(typed).name == name


def test_unknown_cpu_suggests_near_misses() -> None:
    with pytest.raises(UserError) as err:
        resolve_cpu("7950xx")
    assert err.value.message == 'Unknown CPU "7950xx".'
    assert err.value.hint and "7950X" in err.value.hint and "membw=" in err.value.hint


def test_ambiguous_cpu_asks_which() -> None:
    with pytest.raises(UserError) as err:
        resolve_cpu("m3 max")
    assert "14-core" in err.value.message and "16-core" in err.value.message


def test_flops_are_cores_times_clock_times_simd() -> None:
    zen4 = resolve_cpu("7950x")
    assert zen4.flops_per_cycle == 32  # AVX-512 on 256-bit datapaths: two FMA pipes x 8 lanes x 2
    assert zen4.peak_flops == pytest.approx(16 * 4.5e9 * 32)
    raptor = resolve_cpu("13900k")
    assert raptor.compute_cores == 8  # the P-cores only
    assert resolve_cpu("9950x").flops_per_cycle == 64
    assert resolve_cpu("m2 max").flops_per_cycle == 32  # four 128-bit NEON FMA pipes


def _host(**kw: object) -> cpus.Host:
    args: dict[str, object] = {"cpu": None, "ram": None, "ram_speed": None, "membw": None,
                               "gpu_name": "NVIDIA GeForce RTX 3060 12GB",
                               "gpu_memory_bytes": 12 * GIB, "gpu_unified": False}
    args.update(kw)
    return resolve_host(**args)  # type: ignore[arg-type]


def test_bandwidth_is_channels_times_mts_times_8_bytes() -> None:
    host = _host(cpu="7950x")
    assert host.bandwidth_gbs == pytest.approx(2 * 5200 * 8 / 1000)
    assert "DDR5-5200" in host.bandwidth_note and "rated maximum" in host.bandwidth_note
    faster = _host(cpu="7950x", ram_speed=6000)
    assert faster.bandwidth_gbs == pytest.approx(96.0) and "6000 MT/s as given" in faster.bandwidth_note
    server = _host(cpu="epyc 9654")
    assert server.bandwidth_gbs == pytest.approx(12 * 4800 * 8 / 1000)
    given = _host(cpu="7950x", membw=70.0)
    assert given.bandwidth_gbs == 70.0 and "membw=" in given.bandwidth_note


def test_without_a_cpu_a_typical_desktop_is_assumed_and_said() -> None:
    host = _host()
    assert host.bandwidth_gbs == pytest.approx(89.6)
    assert "assumed" in host.bandwidth_note and "assumed" in host.flops_note
    assert host.ram_bytes == cpus.DEFAULT_RAM_BYTES and "assumed" in host.ram_note


def test_ram_reserve_is_an_eighth_between_2_and_8_gib() -> None:
    assert cpus.reserve_bytes(8 * GIB) == 2 * GIB
    assert cpus.reserve_bytes(32 * GIB) == 4 * GIB
    assert cpus.reserve_bytes(256 * GIB) == 8 * GIB
    host = _host(ram=64 * GIB)
    assert host.usable_ram_bytes == 56 * GIB


def test_a_unified_memory_gpu_is_its_own_host() -> None:
    gpu = resolve_gpu("m2-max-64gb")
    host = _host(gpu_name=gpu.gpu.name, gpu_memory_bytes=gpu.memory_bytes, gpu_unified=True,
                 ram=16 * GIB)
    assert host.unified and host.cpu is not None and host.cpu.name == "Apple M2 Max"
    assert host.ram_bytes == gpu.memory_bytes and "ram= is ignored" in host.ram_note
    assert host.bandwidth_gbs == gpu.gpu.bandwidth_gbs == 400


def test_search_lists_matches() -> None:
    assert [c.name for c in cpus.search_cpus("epyc")][:1] == ["AMD EPYC 9755"]
    assert len(cpus.search_cpus("")) == 10


def test_gpu_none_stands_for_the_default_host_until_the_estimate_replaces_it() -> None:
    from core.gpus import NO_GPU_RAM_BYTES

    selection = resolve_gpu("none")
    assert selection.gpu.vendor == "cpu" and selection.count == 1
    assert selection.memory_bytes == NO_GPU_RAM_BYTES == cpus.DEFAULT_RAM_BYTES
    assert selection.usable_bytes == NO_GPU_RAM_BYTES - cpus.reserve_bytes(NO_GPU_RAM_BYTES)
    assert resolve_gpu("CPU-only").gpu is selection.gpu
