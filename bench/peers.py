"""Peer calculators from the package registry, run offline on the cases fits is checked on.

    python -m bench.peers            # which peers are installed, then a table on 3 sample cases

Every peer is CALLED, never vendored: it lives in its own virtual environment
(``.venv-peers``, see bench/peers_requirements.txt) and runs in a subprocess of that
environment's Python, so fits' own environment never imports a peer. The subprocess is kept
offline: HF_HUB_OFFLINE=1, a private HF_HOME whose hub cache holds only the case's config.json
(for peers that look a repo id up through huggingface_hub), HTTP(S) proxies pointed at a closed
loopback port, no GPU, and a timeout.

A case is a plain dict::

    {"model_id": "meta-llama/Llama-2-7b-hf", "config": {...config.json...}, "params": 6738415616,
     "dtype_or_quant": "fp16", "context_tokens": 4096, "batch": 1,
     "task": "inference", "method": None}

``task`` is "inference" or "training"; ``method`` is "full", "lora" or "qlora" for training.
Optional keys: ``lora_rank`` (default 16, as in fits), ``gradient_checkpointing`` (bool),
``precision`` ("amp"/"pure", vramcalc's training precision; default pure for LoRA and for
"-true" dtypes, else amp) and ``engine`` ("vllm" switches vramscout to its vLLM mode).
``case_from_models_jsonl()`` builds a case on a bundled config.

``available_peers()`` says which peers are installed (name -> version); ``estimate_with(name,
case)`` or the per-peer functions (``hf_vram_calc(case)``, ``vramcalc(case)``, ...) run one;
``run_all(case)`` runs them all.

Each adapter returns a PeerEstimate: ``bytes`` is the peer's own headline figure for the
quantity it models, ``quantity`` says which kind of figure that is (WEIGHTS, INFERENCE or
TRAINING), ``label`` says exactly what the peer counts, ``parts`` keeps its components in bytes.
When the peer cannot take the case, is missing, fails or times out, ``bytes`` is None and
``reason`` says why; an adapter never raises.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS_PYTHON = Path(os.environ.get("FITS_PEERS_PYTHON", str(ROOT / ".venv-peers" / "bin" / "python")))
MODELS_JSONL = ROOT / "core" / "data" / "models.jsonl"
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_LORA_RANK = 16  # fits' default rank (core/request.py)

GIB = 1 << 30
GB = 10**9
MB = 10**6

WEIGHTS = "weights"
INFERENCE = "inference total"
TRAINING = "training total"

Case = Mapping[str, Any]


@dataclass(frozen=True)
class PeerEstimate:
    peer: str
    bytes: int | None
    quantity: str = ""
    label: str = ""
    reason: str = ""
    parts: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.bytes is not None

    def error(self, measured_bytes: float) -> float | None:
        """Signed relative error against a measurement, None when there is no estimate."""
        if self.bytes is None or not measured_bytes:
            return None
        return (self.bytes - measured_bytes) / measured_bytes


class Unsupported(Exception):
    """The peer does not model this case (raised and caught inside this module only)."""


# --------------------------------------------------------------------------- case helpers

_GGUF = re.compile(r"I?Q\d_[A-Z0-9]+(?:_[A-Z0-9]+)*")
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mxfp4", ("mxfp4",)),
    ("nvfp4", ("nvfp4",)),
    ("nf4", ("nf4", "bnb-4bit", "4bit-bnb", "fp4-bnb", "bnb.4bit", "load_in_4bit")),
    ("int4", ("int4", "gptq", "awq", "w4a16", "4bit", "4-bit")),
    ("int8", ("int8", "8bit", "8-bit", "llm.int8", "w8a16")),
    ("fp8", ("fp8", "float8", "e4m3")),
    ("bf16", ("bf16", "bfloat16")),
    ("fp16", ("fp16", "f16", "float16", "half")),
    ("fp32", ("fp32", "f32", "float32")),
)


def quant_family(text: str | None) -> str:
    """Map a free-form dtype/quant string to one of: fp32 fp16 bf16 fp8 int8 int4 nf4 mxfp4
    nvfp4 gguf:<TYPE> or unknown. Accepts fits-style names and the reference records' wording
    ("bnb.nf4 base + bf16", "4bit-bnb", "gptq-4bit", "Q4_K_M", "bf16 weights, fp8 KV cache"):
    the earliest-named family wins, a leading GGUF type name means GGUF."""
    raw = (text or "").strip()
    first = re.split(r"[^A-Za-z0-9_]+", raw, maxsplit=1)[0].upper()
    if _GGUF.fullmatch(first):
        return "gguf:" + first
    s = raw.lower()
    if s in ("q4", "q8"):  # fits' shorthand for a generic 4-/8-bit quant
        return "int4" if s == "q4" else "int8"
    best: tuple[int, int, str] | None = None
    for order, (family, needles) in enumerate(_FAMILIES):
        for needle in needles:
            at = s.find(needle)
            if at >= 0 and (best is None or (at, order) < best[:2]):
                best = (at, order, family)
    return best[2] if best else "unknown"


def _ctx(case: Case) -> int | None:
    value = case.get("context_tokens")
    return int(value) if value else None


def _batch(case: Case) -> int:
    value = case.get("batch")
    return int(value) if value else 1


def _method(case: Case) -> str:
    return str(case.get("method") or "full").lower()


def _lora_rank(case: Case) -> int:
    return int(case.get("lora_rank") or DEFAULT_LORA_RANK)


def _is_training(case: Case) -> bool:
    return str(case.get("task") or "inference").lower() == "training"


def _text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = config.get("text_config")
    return inner if isinstance(inner, Mapping) else config


def case_from_models_jsonl(model_id: str, **fields: Any) -> dict[str, Any]:
    """A case built on a bundled config (core/data/models.jsonl); params is the record's
    published count when it has one, else None (peers that need it then decline)."""
    for line in MODELS_JSONL.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record.get("id") == model_id:
            case: dict[str, Any] = {
                "model_id": model_id,
                "config": record["config"],
                "params": record.get("published_params"),
                "dtype_or_quant": "bf16",
                "context_tokens": None,
                "batch": 1,
                "task": "inference",
                "method": None,
            }
            case.update(fields)
            return case
    raise KeyError(f"{model_id} is not in {MODELS_JSONL}")


# --------------------------------------------------------------------------- subprocess runner

_PRELUDE = r'''
import json, sys, traceback
JOB = json.load(open(sys.argv[1]))
def emit(**kw):
    with open(JOB["out"], "w") as f:
        json.dump(kw, f)
'''

_EPILOGUE = r'''
try:
    main()
except BaseException as exc:  # the peer may sys.exit(); report it instead
    emit(error=f"{type(exc).__name__}: {exc}"[:600], trace=traceback.format_exc()[-1500:])
'''


def _seed_hub_cache(hub: Path, repo_id: str, config: Mapping[str, Any]) -> None:
    """An offline hub cache holding only config.json, so hf_hub_download(repo_id,
    "config.json") and AutoConfig.from_pretrained(repo_id) resolve without a network."""
    commit = "0" * 40
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / "config.json").write_text(json.dumps(config))


def _env(tmp: Path) -> dict[str, str]:
    closed = "http://127.0.0.1:9"  # nothing listens there: any network attempt fails at once
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "HF_HOME": str(tmp / "hf"),
        "HF_HUB_CACHE": str(tmp / "hf" / "hub"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "NO_PROXY": "",
        "no_proxy": "",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONNOUSERSITE": "1",
        "PYTHON_DOTENV_DISABLED": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "COLUMNS": "200",
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
    }


_TELLING = re.compile(r"error|fail|warn|not found|unsupported|cannot|missing", re.IGNORECASE)


def _tail(text: str, lines: int = 2) -> str:
    """The last few lines worth reading from a peer's output (errors and warnings first)."""
    kept = [line.strip() for line in text.strip().splitlines()
            if line.strip() and "deprecated" not in line]
    telling = [line for line in kept if _TELLING.search(line)]
    return " | ".join((telling or kept)[-lines:])[-400:]


def _run_peer(body: str, job: dict[str, Any], case: Case, timeout: float) -> dict[str, Any]:
    """Run ``body`` (defines main(), calls emit()) in the peers' Python; return what it emitted.
    Raises RuntimeError with a short reason on any failure."""
    if not PEERS_PYTHON.exists():
        raise RuntimeError(f"{PEERS_PYTHON} not found: install bench/peers_requirements.txt")
    with tempfile.TemporaryDirectory(prefix="fits-peer-") as name:
        tmp = Path(name)
        model_dir = tmp / "model"
        model_dir.mkdir()
        config = dict(case.get("config") or {})
        (model_dir / "config.json").write_text(json.dumps(config))
        model_id = str(case.get("model_id") or "local/model")
        _seed_hub_cache(tmp / "hf" / "hub", model_id, config)
        out = tmp / "out.json"
        full_job = {"model_id": model_id, "model_dir": str(model_dir), "config": config,
                    "out": str(out), **job}
        job_path = tmp / "job.json"
        job_path.write_text(json.dumps(full_job))
        script = _PRELUDE + body + _EPILOGUE
        try:
            proc = subprocess.run(
                [str(PEERS_PYTHON), "-c", script, str(job_path)],
                cwd=tmp, env=_env(tmp), stdin=subprocess.DEVNULL, capture_output=True,
                text=True, errors="replace", timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"timed out after {timeout:g} s") from None
        if not out.exists():
            raise RuntimeError(f"no result (exit {proc.returncode}): {_tail(proc.stderr or proc.stdout)}")
        result: dict[str, Any] = json.loads(out.read_text())
        if "error" in result:
            said = _tail((proc.stdout or "") + "\n" + (proc.stderr or ""))
            raise RuntimeError(f"{result['error'][:300]} [peer output: {said}]" if said
                               else result["error"])
        return result


# --------------------------------------------------------------------------- the peers

Adapter = Callable[..., PeerEstimate]


@dataclass(frozen=True)
class Peer:
    name: str           # as reported in tables
    dist: str           # distribution name on the registry
    module: str         # import name inside .venv-peers
    models: str         # one line: what it estimates
    compute: Callable[[Case, float], PeerEstimate]


def _adapter(peer_name: str) -> Adapter:
    def run(case: Case, timeout: float = DEFAULT_TIMEOUT_S) -> PeerEstimate:
        return estimate_with(peer_name, case, timeout)
    run.__name__ = peer_name.replace("-", "_").replace(" ", "_")
    return run


def estimate_with(peer_name: str, case: Case, timeout: float = DEFAULT_TIMEOUT_S) -> PeerEstimate:
    """Run one peer on one case. Never raises."""
    start = time.perf_counter()
    peer = PEERS.get(peer_name)
    if peer is None:
        return PeerEstimate(peer_name, None, reason="unknown peer")
    try:
        installed = available_peers()
        if peer.name not in installed:
            problem = peers_problem() or f"not installed for {PEERS_PYTHON}"
            return PeerEstimate(peer.name, None, reason=f"{peer.dist} unavailable: {problem}")
        estimate = peer.compute(case, timeout)
    except Unsupported as exc:
        estimate = PeerEstimate(peer.name, None, reason=f"cannot take this case: {exc}")
    except Exception as exc:  # a peer's failure is a result, never the caller's exception
        estimate = PeerEstimate(peer.name, None, reason=f"failed: {exc}"[:500])
    return replace(estimate, seconds=round(time.perf_counter() - start, 2))


# hf-vram-calc ------------------------------------------------------------------------------

_HF_VRAM_CALC = r'''
def main():
    from hf_vram_calc.calculator import LlmodelMemoryResult, ParameterCalculator, VRAMCalculator
    from hf_vram_calc.config import ConfigManager
    from hf_vram_calc.parser import ConfigParser
    cfg = ConfigParser.load_and_parse_config(JOB["model_id"], JOB["model_dir"])
    n = ParameterCalculator.calculate_transformer_params(cfg)
    r = LlmodelMemoryResult(JOB["dtype"], **JOB["kwargs"])
    r.calculate_all(cfg, n, VRAMCalculator(ConfigManager()))
    emit(num_params=n, gib={k: getattr(r, k) for k in ("base_memory", "kv_cache_memory",
         "inference_memory", "training_memory", "lora_memory", "activation_memory")})
'''

_HF_VRAM_DTYPES = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "fp8": "fp8", "int8": "int8",
                   "int4": "int4", "nf4": "int4", "mxfp4": "mxfp4", "nvfp4": "nvfp4"}


def _hf_vram_calc(case: Case, timeout: float) -> PeerEstimate:
    family = quant_family(case.get("dtype_or_quant"))
    dtype = "int4" if _is_training(case) and _method(case) == "qlora" else _HF_VRAM_DTYPES.get(family)
    if dtype is None:
        raise Unsupported(f"no data type for {case.get('dtype_or_quant')!r} (GGUF types unknown)")
    kwargs: dict[str, Any] = {"batch_size": _batch(case), "lora_rank": _lora_rank(case)}
    if _ctx(case):
        kwargs["sequence_length"] = _ctx(case)
    result = _run_peer(_HF_VRAM_CALC, {"dtype": dtype, "kwargs": kwargs}, case, timeout)
    g = result["gib"]
    parts = {"weights": round(g["base_memory"] * GIB), "kv_cache": round(g["kv_cache_memory"] * GIB),
             "activations": round(g["activation_memory"] * GIB)}
    notes = ("GiB throughout, but the LoRA adapter term is in 10^9-byte units",)
    if _is_training(case):
        if _method(case) in ("lora", "qlora"):
            value, label = g["lora_memory"], (
                "'Single GPU LoRA' = (weights + 4x fp16 LoRA params, LoRA = 25% of params x "
                "2r/4096) x 1.2; batch, context and activations ignored")
        else:
            value, label = g["training_memory"], (
                "'Single GPU Training' = weights x 4 x 1.3 in the weight dtype; batch, context "
                "and activations ignored")
        quantity = TRAINING
    else:
        value, quantity = g["inference_memory"], INFERENCE
        label = ("'Single GPU Inference' = weights x 1.2; its KV cache and activation columns "
                 "are not added (see parts)")
    return PeerEstimate("hf-vram-calc", round(value * GIB), quantity, label, parts=parts,
                        inputs={"dtype": dtype, **kwargs}, notes=notes)


# vramcalc ----------------------------------------------------------------------------------

_VRAMCALC = r'''
def main():
    import vramcalc
    est = vramcalc.estimate(JOB["config"], **JOB["kwargs"]).to_dict()
    est.pop("params", None)
    emit(est=est)
'''


def _vramcalc(case: Case, timeout: float) -> PeerEstimate:
    family = quant_family(case.get("dtype_or_quant"))
    if family not in ("fp32", "fp16", "bf16"):
        raise Unsupported(f"only fp32/fp16/bf16 weights, not {case.get('dtype_or_quant')!r}")
    model_type = _text_config(case.get("config") or {}).get("model_type")
    if model_type not in ("llama", "mistral", "qwen2", "gemma", "gemma2"):
        raise Unsupported(f"model_type {model_type!r} (Llama, Mistral, Qwen2 and Gemma 1/2 only)")
    kwargs: dict[str, Any] = {"dtype": family, "batch": _batch(case)}
    if _ctx(case):
        kwargs["seq_len"] = _ctx(case)
    if _is_training(case):
        if _method(case) == "qlora":
            raise Unsupported("no 4-bit base weights (QLoRA)")
        kwargs["mode"] = "train"
        kwargs["grad_checkpoint"] = bool(case.get("gradient_checkpointing"))
        # Its "amp" keeps fp32 weights under autocast; LoRA on a model loaded in bf16/fp16, or
        # "bf16-true" style training, is its "pure" precision.
        raw = str(case.get("dtype_or_quant") or "").lower()
        pure = _method(case) == "lora" or "true" in raw or "pure" in raw
        kwargs["precision"] = str(case.get("precision") or ("pure" if pure else "amp"))
        if _method(case) == "lora":
            kwargs["lora_rank"] = _lora_rank(case)
        quantity = TRAINING
    else:
        kwargs["mode"] = "inference"
        quantity = INFERENCE
    est = _run_peer(_VRAMCALC, {"kwargs": kwargs}, case, timeout)["est"]
    parts = {k: int(est[k]) for k in ("weights", "kv_cache", "gradients", "optimizer",
                                      "activations", "autocast_cache", "step_workspace",
                                      "overhead") if est.get(k)}
    label = ("total + overhead, as its fit check: persistent + max(activations + autocast, "
             "optimizer step) + 0.75 GB (10^9) CUDA overhead")
    if kwargs.get("mode") == "train" and _method(case) == "lora":
        label += "; LoRA on q,k,v,o only"
    return PeerEstimate("vramcalc", int(est["total"]) + int(est["overhead"]), quantity, label,
                        parts=parts, inputs=kwargs)


# llm-mem -----------------------------------------------------------------------------------

_LLM_MEM = r'''
def main():
    from llm_mem import LLMMemoryCalculator
    calc = LLMMemoryCalculator()
    kv = calc.calculate_kv_cache_memory(JOB["ctx"], JOB["model_id"], JOB["dtype"])
    if isinstance(kv, str):
        raise RuntimeError(kv)
    weights = LLMMemoryCalculator.calculate_model_memory(JOB["params"] / 1e9, JOB["dtype"])
    emit(model_gb=weights, context_gb=kv)
'''

_LLM_MEM_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "float16", "fp8": "float8",
                   "int8": "int8", "int4": "int4", "nf4": "int4", "mxfp4": "int4", "nvfp4": "int4"}


def _llm_mem(case: Case, timeout: float) -> PeerEstimate:
    if _is_training(case):
        raise Unsupported("inference only")
    family = quant_family(case.get("dtype_or_quant"))
    dtype = _LLM_MEM_DTYPES.get(family)
    if dtype is None:
        raise Unsupported(f"no data type for {case.get('dtype_or_quant')!r}")
    params = case.get("params")
    if not params:
        raise Unsupported("needs the parameter count (it reads it from the Hub's safetensors "
                          "metadata, which is not available offline)")
    notes = ["parameter count given by the case (offline stand-in for the Hub's safetensors "
             "metadata)", "GB = 10^9; weights rounded to 0.01 GB",
             "KV cache in the weight dtype (0.5 byte/elem at int4)"]
    ctx = _ctx(case)
    if ctx is None:
        ctx = 8192
        notes.append("context not given: its CLI default 8192")
    if _batch(case) != 1:
        notes.append(f"batch {_batch(case)} ignored (single sequence)")
    job = {"dtype": dtype, "ctx": ctx, "params": int(params)}
    result = _run_peer(_LLM_MEM, job, case, timeout)
    weights, kv = float(result["model_gb"]), float(result["context_gb"])
    return PeerEstimate("llm-mem", round((weights + kv) * GB), INFERENCE,
                        "'Total VRAM' = params x bytes x 1.18 + KV cache for one sequence",
                        parts={"weights": round(weights * GB), "kv_cache": round(kv * GB)},
                        inputs=job, notes=tuple(notes))


# modelinfo-cli -----------------------------------------------------------------------------

_MODELINFO = r'''
def main():
    import json, os, struct
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
    cfg = AutoConfig.from_pretrained(JOB["model_dir"])
    with torch.device("meta"):
        try:
            model = AutoModelForCausalLM.from_config(cfg)
        except ValueError:
            model = AutoModel.from_config(cfg)
    header, offset = {}, 0
    for name, p in model.named_parameters():
        size = p.numel() * 2
        header[name] = {"dtype": JOB["st_dtype"], "shape": list(p.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    path = os.path.join(JOB["model_dir"], "model.safetensors")
    with open(path, "wb") as f:  # header only: modelinfo reads nothing past it
        f.write(struct.pack("<Q", len(blob)) + blob)
    from modelinfo.cli import analyze_model
    info = analyze_model(path, JOB["ctx"], batch_size=JOB["batch"])
    emit(footprint=info["footprint"], context=info["context_length"])
'''

_MODELINFO_DTYPES = {"fp32": "F32", "fp16": "F16", "bf16": "BF16", "fp8": "F8_E4M3", "int8": "I8"}
_MODELINFO_GGUF = {"Q8_0", "Q8_1", "Q8_K", "Q6_K", "Q5_0", "Q5_1", "Q5_K", "Q4_0", "Q4_1",
                   "Q4_K", "Q3_K", "Q2_K", "IQ4_NL", "IQ4_XS", "IQ3_S", "IQ3_XXS", "IQ2_S",
                   "IQ2_XS", "IQ2_XXS", "IQ1_M", "IQ1_S"}


def _modelinfo(case: Case, timeout: float) -> PeerEstimate:
    if _is_training(case):
        raise Unsupported("inference only")
    family = quant_family(case.get("dtype_or_quant"))
    notes = ["weights from a header-only .safetensors synthesized from the config's meta-device "
             "parameter shapes (it reads checkpoint headers, not configs)",
             "KV cache always fp16; prints 2^30 bytes as 'GB'"]
    if family.startswith("gguf:"):
        gguf = family[5:]
        st_dtype = re.sub(r"_(XL|XS|L|M|S)$", "", gguf) if gguf.startswith("Q") else gguf
        if st_dtype not in _MODELINFO_GGUF:
            raise Unsupported(f"no size for GGUF type {gguf}")
        notes.append(f"GGUF {gguf}: every tensor typed {st_dtype} (a real file mixes types)")
    else:
        st_dtype = _MODELINFO_DTYPES.get(family, "")
        if not st_dtype:
            raise Unsupported(f"{case.get('dtype_or_quant')!r}: 4-bit bnb/GPTQ/AWQ checkpoints "
                              "pack weights into integer tensors that a config cannot describe")
    job = {"st_dtype": st_dtype, "ctx": _ctx(case), "batch": _batch(case)}
    result = _run_peer(_MODELINFO, job, case, timeout)
    fp = result["footprint"]
    if job["ctx"] is None:
        notes.append(f"context not given: its default {result['context']}")
    parts = {"weights": round(fp["base_memory_bytes"]), "kv_cache": round(fp["kv_cache_bytes"]),
             "overhead": round(fp["overhead_bytes"])}
    return PeerEstimate("modelinfo-cli", round(fp["total_memory_bytes"]), INFERENCE,
                        "weights + fp16 KV cache + 600 MiB CUDA context",
                        parts=parts, inputs={**job, "context": result["context"]},
                        notes=tuple(notes))


# accelerate estimate-memory ----------------------------------------------------------------

_ACCELERATE = r'''
def main():
    import argparse, types
    import accelerate.commands.estimate as est
    # Offline: the Hub lookup (model_info) is answered from the local config; everything
    # else is accelerate's own gather_data on a model built from that config.
    est.verify_on_hub = lambda repo, token=None: types.SimpleNamespace(
        library_name="transformers", config=JOB["config"])
    args = argparse.Namespace(model_name=JOB["model_dir"], library_name="transformers",
                              dtypes=[JOB["dtype"]], trust_remote_code=False)
    (row,) = est.gather_data(args)
    emit(largest_layer=row[1], total_size=row[2], training=row[3])
'''

_ACCELERATE_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "float16", "int8": "int8",
                      "int4": "int4", "nf4": "int4", "mxfp4": "int4", "nvfp4": "int4"}


def _accelerate(case: Case, timeout: float) -> PeerEstimate:
    family = quant_family(case.get("dtype_or_quant"))
    dtype = _ACCELERATE_DTYPES.get(family)
    if dtype is None:
        raise Unsupported(f"dtypes are float32/float16/int8/int4, not {case.get('dtype_or_quant')!r}")
    training = _is_training(case)
    if training and _method(case) != "full":
        raise Unsupported("no LoRA/QLoRA model (full training with Adam only)")
    if training and dtype not in ("float32", "float16"):
        raise Unsupported(f"training figure is N/A for {dtype}")
    result = _run_peer(_ACCELERATE, {"dtype": dtype}, case, timeout)
    parts = {"largest_layer": round(result["largest_layer"])}
    notes = ("AutoModel (no LM head) built in float32 from the config, then /2, /4, /8",)
    if training:
        train = {k: int(v) for k, v in result["training"].items()}
        value = max(train.values())
        return PeerEstimate("accelerate", value, TRAINING,
                            "'Training using Adam' = the largest of model, gradients, optimizer "
                            "and step (not their sum); batch 1, no activations",
                            parts={**parts, **train}, inputs={"dtype": dtype}, notes=notes)
    return PeerEstimate("accelerate", round(result["total_size"]), WEIGHTS,
                        "'Total Size' to load the weights", parts=parts,
                        inputs={"dtype": dtype}, notes=notes)


# llm-mem-planner ---------------------------------------------------------------------------

_LLM_MEM_PLANNER = r'''
def main():
    import contextlib, io, os
    from llm_mem_planner.cli import main as cli
    buf = io.StringIO()
    argv = ["--config", os.path.join(JOB["model_dir"], "config.json")] + JOB["argv"]
    with contextlib.redirect_stdout(buf):
        cli(argv)
    emit(stdout=buf.getvalue())
'''

_PLANNER_DTYPES = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "fp8": "fp8", "int8": "int8",
                   "int4": "int4", "nf4": "int4", "mxfp4": "fp4", "nvfp4": "fp4"}


def _gib_after(pattern: str, text: str) -> int:
    match = re.search(pattern + r"\s*([0-9.]+) GiB", text)
    return round(float(match.group(1)) * GIB) if match else 0


def _llm_mem_planner(case: Case, timeout: float) -> PeerEstimate:
    if _is_training(case):
        raise Unsupported("inference only")
    cfg = _text_config(case.get("config") or {})
    if not all(cfg.get(k) for k in ("q_lora_rank", "kv_lora_rank", "qk_rope_head_dim")):
        raise Unsupported("MLA (DeepSeek-V3-style, q_lora_rank set) configs only")
    family = quant_family(case.get("dtype_or_quant"))
    dtype = _PLANNER_DTYPES.get(family)
    if dtype is None:
        raise Unsupported(f"no data type for {case.get('dtype_or_quant')!r}")
    notes = ["KV cache and activations in the config's dtype"]
    ctx = _ctx(case)
    if ctx is None:
        ctx = 20480
        notes.append("context not given: its default 20480")
    argv = ["--seq-len", str(ctx), "--batch", str(_batch(case)), "--weight-dtype", dtype]
    out = _run_peer(_LLM_MEM_PLANNER, {"argv": argv}, case, timeout)["stdout"]
    parts = {"weights": _gib_after(r"weights_per_rank:", out),
             "kv_cache": _gib_after(r"kv_per_rank=", out),
             "index_cache": _gib_after(r"index_per_rank=", out),
             "prefill_activations": _gib_after(r"prefill\(.*?peak≈", out)}
    if not parts["weights"]:
        raise RuntimeError(f"unexpected output: {_tail(out)}")
    return PeerEstimate("llm-mem-planner", sum(parts.values()), INFERENCE,
                        "weights + MLA latent KV + index cache + prefill working set (the parts "
                        "it prints, 3-decimal GiB; no total printed without a GPU)",
                        parts=parts, inputs={"argv": argv}, notes=tuple(notes))


# vramscout ---------------------------------------------------------------------------------

_VRAMSCOUT = r'''
def main():
    from vramscout import plan_modern
    r = plan_modern(JOB["model_dir"], vram_gib=1024.0, reserve_gib=0.0, **JOB["kwargs"])
    emit(total_gib=r.total_gib, parts=r.parts_gib, context=r.context,
         params=r.profile.num_params, family=r.profile.family)
'''

_VRAMSCOUT_DTYPES = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "fp8": "fp8", "int8": "int8",
                     "int4": "int4", "nf4": "int4", "mxfp4": "nvfp4", "nvfp4": "nvfp4"}


def _vramscout(case: Case, timeout: float) -> PeerEstimate:
    if _is_training(case):
        raise Unsupported("inference only")
    family = quant_family(case.get("dtype_or_quant"))
    dtype = _VRAMSCOUT_DTYPES.get(family)
    if dtype is None:
        raise Unsupported(f"no weight dtype for {case.get('dtype_or_quant')!r}")
    kwargs: dict[str, Any] = {"weight_dtype": dtype, "batch_size": _batch(case)}
    if _ctx(case):
        kwargs["context"] = _ctx(case)
    engine = str(case.get("engine") or "").lower()
    if engine == "vllm":
        kwargs["engine"] = "vllm"
    result = _run_peer(_VRAMSCOUT, {"kwargs": kwargs}, case, timeout)
    parts = {re.sub(r"\W+", "_", k.lower()).strip("_"): round(v * GIB)
             for k, v in result["parts"].items() if v}
    notes = ["safety reserve set to 0 (its default is max(1 GiB, 5% of the GPU))",
             "parameter count from its config formula (the Hub metadata it prefers is offline)"]
    return PeerEstimate("vramscout", round(result["total_gib"] * GIB), INFERENCE,
                        "'Estimated peak / rank': weights + cache/state + CUDA/runtime + prefill "
                        "scratch", parts=parts,
                        inputs={**kwargs, "context": result["context"]}, notes=tuple(notes))


# qmemcalc ----------------------------------------------------------------------------------

_QMEMCALC = r'''
def main():
    from qmemcalc.memory import estimate_memory
    emit(result=estimate_memory(JOB["model_dir"], **JOB["kwargs"]))
'''


def _qmemcalc(case: Case, timeout: float) -> PeerEstimate:
    if not _is_training(case):
        raise Unsupported("fine-tuning only")
    family = quant_family(case.get("dtype_or_quant"))
    method = _method(case)
    kwargs: dict[str, Any] = {"batch_size": _batch(case), "optimizer": "adamw",
                              "gradient_checkpointing": bool(case.get("gradient_checkpointing"))}
    notes = ["base parameter count from config.num_parameters, else 4 x hidden^2 x layers "
             "(HF configs have no num_parameters)", "MB = 10^6"]
    if family in ("nf4", "int4") or method == "qlora":
        kwargs.update(precision="bf16", quantization="4bit")
    elif family == "int8":
        kwargs.update(precision="bf16", quantization="8bit")
    elif family in ("fp32", "fp16", "bf16"):
        kwargs.update(precision=family, quantization="none")
    else:
        raise Unsupported(f"no precision for {case.get('dtype_or_quant')!r}")
    if method in ("lora", "qlora"):
        kwargs["lora_r"] = _lora_rank(case)
    else:
        if not case.get("params"):
            raise Unsupported("full fine-tuning needs num_trainable_params (the case has no params)")
        kwargs["num_trainable_params"] = int(case["params"])
        notes.append("full fine-tuning via num_trainable_params = all parameters")
    ctx = _ctx(case)
    if ctx is None:
        ctx = 2048
        notes.append("context not given: 2048 assumed (its CLI requires one)")
    kwargs["seq_len"] = ctx
    res = _run_peer(_QMEMCALC, {"kwargs": kwargs}, case, timeout)["result"]
    parts = {k[:-3]: round(float(v) * MB) for k, v in res.items()
             if k.endswith("_MB") and k != "total_MB"}
    return PeerEstimate("qmemcalc", round(float(res["total_MB"]) * MB), TRAINING,
                        "total_MB: base weights + adapter weights/grads/AdamW + activations "
                        "(batch x seq x hidden x layers x 2) + 10% buffers",
                        parts=parts, inputs=kwargs, notes=tuple(notes))


# llm-resource-planner ----------------------------------------------------------------------

_LLM_PLAN = r'''
def main():
    from llm_resource_planner.cli import calculate_params, estimate_memory, get_model_config
    cfg = get_model_config(JOB["model_dir"])
    params, layers, hidden = calculate_params(cfg)
    w, kv, total = estimate_memory(params, hidden, layers, JOB["dtype"])
    emit(weights_gib=w, kv_gib=kv, total_gib=total, params_b=params)
'''

_LLM_PLAN_DTYPES = {"fp32": "fp32", "fp16": "float16", "bf16": "float16", "int8": "int8",
                    "int4": "int4", "nf4": "int4", "mxfp4": "int4", "nvfp4": "int4"}


def _llm_resource_planner(case: Case, timeout: float) -> PeerEstimate:
    if _is_training(case):
        raise Unsupported("inference only")
    family = quant_family(case.get("dtype_or_quant"))
    dtype = _LLM_PLAN_DTYPES.get(family)
    if dtype is None:
        raise Unsupported(f"no data type for {case.get('dtype_or_quant')!r}")
    notes = ["params = 12 x hidden^2 x layers (no embeddings, no GQA)",
             "KV cache for a fixed 4096 tokens, batch 1, MHA, in the weight dtype",
             "its CLI always uses float16; the dtype goes through its estimate_memory()",
             "prints GiB as 'GB'"]
    if (_ctx(case) or 4096) != 4096 or _batch(case) != 1:
        notes.append(f"case context {_ctx(case)} x batch {_batch(case)} not modelled")
    res = _run_peer(_LLM_PLAN, {"dtype": dtype}, case, timeout)
    return PeerEstimate("llm-resource-planner", round(float(res["total_gib"]) * GIB), INFERENCE,
                        "'Total Recommended VRAM' = weights + 1.2 x KV cache (4096 tokens)",
                        parts={"weights": round(float(res["weights_gib"]) * GIB),
                               "kv_cache": round(float(res["kv_gib"]) * GIB)},
                        inputs={"dtype": dtype}, notes=tuple(notes))


PEERS: dict[str, Peer] = {p.name: p for p in (
    Peer("hf-vram-calc", "hf-vram-calc", "hf_vram_calc",
         "weights, KV, activations; headline inference = weights x 1.2; training; LoRA",
         _hf_vram_calc),
    Peer("vramcalc", "vramcalc", "vramcalc",
         "Llama-family inference and training (full/LoRA) totals from config.json", _vramcalc),
    Peer("llm-mem", "llm-mem", "llm_mem", "inference: weights x 1.18 + KV cache", _llm_mem),
    Peer("modelinfo-cli", "modelinfo-cli", "modelinfo",
         "inference from checkpoint headers: weights + fp16 KV + CUDA context", _modelinfo),
    Peer("accelerate", "accelerate", "accelerate",
         "`accelerate estimate-memory`: load size and Adam training size", _accelerate),
    Peer("llm-mem-planner", "llm-mem-planner", "llm_mem_planner",
         "MLA (DeepSeek-style) weights, latent KV, activations", _llm_mem_planner),
    Peer("vramscout", "vramscout", "vramscout",
         "inference peak: weights + cache/state + runtime + prefill scratch", _vramscout),
    Peer("qmemcalc", "qmemcalc", "qmemcalc", "LoRA/QLoRA/full fine-tuning totals", _qmemcalc),
    Peer("llm-resource-planner", "llm-resource-planner", "llm_resource_planner",
         "inference: 12 h^2 L params + 4k-token KV", _llm_resource_planner),
)}

# One adapter function per peer, each taking a case (and an optional timeout).
hf_vram_calc = _adapter("hf-vram-calc")
vramcalc = _adapter("vramcalc")
llm_mem = _adapter("llm-mem")
modelinfo_cli = _adapter("modelinfo-cli")
accelerate_estimate_memory = _adapter("accelerate")
llm_mem_planner = _adapter("llm-mem-planner")
vramscout = _adapter("vramscout")
qmemcalc = _adapter("qmemcalc")
llm_resource_planner = _adapter("llm-resource-planner")


# --------------------------------------------------------------------------- availability

_VERSIONS = r'''
import importlib.metadata as md, importlib.util, json, sys
out = {}
for name, dist, module in json.loads(sys.argv[1]):
    try:
        version = md.version(dist)
    except md.PackageNotFoundError:
        continue
    if importlib.util.find_spec(module) is not None:
        out[name] = version
print(json.dumps(out))
'''

_problem: list[str] = []


def peers_problem() -> str:
    return _problem[0] if _problem else ""


@lru_cache(maxsize=1)
def available_peers() -> dict[str, str]:
    """Installed peers in .venv-peers, name -> version. Empty when that environment is missing
    or broken (never raises)."""
    _problem.clear()
    if not PEERS_PYTHON.exists():
        _problem.append(f"{PEERS_PYTHON} not found")
        return {}
    spec = json.dumps([[p.name, p.dist, p.module] for p in PEERS.values()])
    try:
        proc = subprocess.run([str(PEERS_PYTHON), "-c", _VERSIONS, spec], capture_output=True,
                              text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                   "PYTHONNOUSERSITE": "1"})
        found: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
        return found
    except Exception as exc:
        _problem.append(f"could not query {PEERS_PYTHON}: {exc}")
        return {}


def run_all(case: Case, peers: list[str] | None = None, jobs: int = 2,
            timeout: float = DEFAULT_TIMEOUT_S) -> list[PeerEstimate]:
    """Every (or the named) peer on one case, ``jobs`` subprocesses at a time, in PEERS order."""
    names = peers or list(PEERS)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda name: estimate_with(name, case, timeout), names))


# --------------------------------------------------------------------------- __main__

def _sample_cases() -> list[tuple[str, dict[str, Any]]]:
    llama = "meta-llama/Llama-2-7b-hf"
    return [
        ("fp16 infer ctx4096", case_from_models_jsonl(
            llama, dtype_or_quant="fp16", context_tokens=4096, batch=1, task="inference")),
        ("int4 infer ctx4096", case_from_models_jsonl(
            llama, dtype_or_quant="int4", context_tokens=4096, batch=1, task="inference")),
        ("bf16 LoRA r16 ctx2048 b1", case_from_models_jsonl(
            llama, dtype_or_quant="bf16", context_tokens=2048, batch=1, task="training",
            method="lora", lora_rank=16)),
    ]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    jobs = int(args[args.index("--jobs") + 1]) if "--jobs" in args else 2
    installed = available_peers()
    print(f"peers python: {PEERS_PYTHON}")
    for peer in PEERS.values():
        version = installed.get(peer.name)
        print(f"  {peer.name:<22} {version or 'MISSING':<10} {peer.models}")
    if not installed:
        print(peers_problem() or "no peer installed", file=sys.stderr)
    header = f"{'case':<26} {'peer':<22} {'GiB':>8}  {'quantity':<16} what / why not"
    print()
    print(header)
    print("-" * len(header))
    for title, case in _sample_cases():
        for est in run_all(case, jobs=jobs):
            gib = f"{est.bytes / GIB:8.2f}" if est.bytes is not None else f"{'-':>8}"
            text = est.label if est.ok else est.reason
            print(f"{title:<26} {est.peer:<22} {gib}  {est.quantity:<16} {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
