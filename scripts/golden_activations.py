"""Golden activation memory for training: bytes PyTorch keeps for backward, per decoder layer.

What it measures
----------------
For a few real Hugging Face configs (``MODEL_IDS``, read from ``core/data/models.jsonl``) this
script builds the model with its REAL widths (hidden, FFN, heads, kv heads, 8 experts / top-2)
but only 2 and 3 decoder layers and a 1024-token vocabulary, in pure bfloat16 (``dtype=bf16``,
no autocast), train mode, the config's own dropout, on CPU, and runs one training step
``loss = model(input_ids=x, labels=x).loss; loss.backward()``.  Per row it records:

``saved_bytes_by_layers``
    What autograd holds for backward when the forward has returned.  Read with
    ``torch.autograd.graph.saved_tensors_hooks``: each packed tensor is attributed to its
    storage, each storage is counted ONCE (dedupe by storage ``data_ptr``) with the storage's
    full ``nbytes`` (the memory really held, even when only a view was saved).  Storages that
    existed before the forward - parameters (so saved weights / views of weights such as
    ``W.t()``), buffers, ``input_ids``/``labels`` - are not counted.  With gradient
    checkpointing (``use_reentrant=False``) the checkpoint installs its own pack hooks inside
    each layer, so ours only see what is saved outside the layers; what the checkpoint keeps
    (the layer's tensor inputs: positional args and the tensors bound into HF's ``partial`` -
    hidden states, rotary cos/sin) is captured by wrapping each layer's
    ``_gradient_checkpointing_func`` and added under the same rules.

``live_bytes_by_layers``
    Cross-check: bytes of the storages created during the forward (tracked by a
    ``TorchDispatchMode`` holding storage weak references) still alive after it, with only
    ``loss`` held.  Equals ``saved_bytes`` up to a few bytes (the loss scalar).

``peak_bytes_by_layers``
    Peak of those tracked storages over forward + backward (sampled after every aten op):
    saved activations + activation gradients in flight + (with checkpointing) the recomputed
    activations of the layer being back-propagated.  Storages that become a parameter's
    ``.grad`` are left out (``.grad`` is dropped at once by ``register_post_accumulate_grad_hook``)
    so the gradient store is not in it; for tied embeddings (GPT-2) the lm_head half of the
    tied gradient waits in autograd's input buffer until the embedding's half arrives and IS
    in it (non-layer part).

``per_layer_* = m(3) - m(2)`` and ``non_layer_* = m(2) - 2 * per_layer`` (bytes).  The marginal
layer is a steady-state layer.  The first layer can save less (with LoRA nothing upstream of the
first adapter needs a gradient, so its input norm saves nothing), and that difference lands in
``non_layer_*`` (it can be negative), next to embedding, final norm, lm_head and loss (the
logits are upcast to fp32 for the cross-entropy).

Grid: attention ``eager``/``sdpa`` x gradient checkpointing off/on x ``full`` (everything
trainable) / ``lora_attn`` / ``lora_all`` (peft LoRA r=16, alpha=32, dropout 0.05, base frozen;
peft's default ``autocast_adapter_dtype=True`` keeps the adapters in fp32, so the adapter
branch runs - and saves - in fp32) x (batch, seq) in ``SHAPES``.  Targets per
family are the regexes in ``FAMILIES`` (recorded with the modules they hit in
``<train>_config``).  Mixtral's experts are fused 3-D parameters in transformers 5, not
``nn.Linear``, so its ``lora_all`` adds them with peft's ``target_parameters``; peft requires
``lora_dropout=0`` for that, so the whole Mixtral ``lora_all`` config has dropout 0, and peft
materialises ``W + B @ A`` for the whole expert stack every forward, which the grouped matmul
then saves: a parameter-sized per-layer constant.  ``layer_tensors`` lists, for a few settings
at (1, 128), every tensor saved inside the last layer of the 3-layer model: module | autograd
node.saved field | shape dtype | storage bytes (found by walking the graph; not with
checkpointing, where reading a saved tensor would start the recomputation).

Batch 1 is special: some reshapes of saved tensors are views at batch 1 but copies at batch > 1,
so bytes per token differ.  GPT-NeoX eager keeps the whole fused qkv output alive through a view
of v at batch 1 (+4h bytes/token); Falcon's single kv head broadcast to all heads is a stride-0
view at batch 1 but a full-width copy at batch > 1.  Hence the (2, 256) row next to (2, 128).

CUDA behaviour (``GPU_EMULATION``; ``--cpu-kernels`` turns it off): ``F.dropout`` is routed to
``torch.native_dropout`` as CUDA's fused kernel does (bool mask saved; the CPU path would save
a bf16 noise tensor), and SDPA with dropout runs with ``dropout_p=0`` (CUDA flash keeps only the
rng seed/offset for its dropout; CPU would fall back to the fp32 math path).  SDPA otherwise
uses the CPU flash kernel, which saves what CUDA flash saves (q, k, v at their own head counts
with HF's ``enable_gqa``, output, fp32 logsumexp).  Falcon-7B passes 1 kv head without
``enable_gqa``: no fused kernel accepts that on CUDA either, and the math path upcasts to fp32
on every device, so its eager and sdpa rows agree.  LayerNorm mean/rstd are fp32 as on CUDA.

Speed: real widths at bf16 are slow on a CPU, but which tensors autograd saves and their sizes
do not depend on the values.  So every non-aliasing aten op whose result is >= ``STUB_MIN_BYTES``
is not computed: the ``TorchDispatchMode`` returns a zero-filled tensor with the exact
shape/stride/dtype of the op's meta kernel (autograd sits above the mode and saves as usual).
Results >= ``LAZY_MIN_BYTES`` stay uninitialised (fresh mmap, never resident) and weights
larger than ``INIT_MAX_NUMEL`` are never initialised, so Mixtral's experts cost no RAM.  SDPA
kernels, views and small ops run for real.  ``--verify`` reruns ``VERIFY`` with real weights
and real kernels and checks identical saved/live/peak bytes (the only known difference, the
CPU kernel's bf16 LayerNorm stats, is mimicked during the check).  A full run takes ~12 min on
one core and < 2 GB RAM; ``--verify`` about an hour (real bf16 matmuls on 2 cores) and ~7 GB
(Mixtral with real weights).

How to rerun
------------
From the repository root (the venv of ``scripts/golden_from_transformers.py`` plus ``peft``)::

    .venv-golden/bin/python scripts/golden_activations.py            # writes tests/golden/activations.json
    .venv-golden/bin/python scripts/golden_activations.py --only openai-community/gpt2-medium --no-write
    .venv-golden/bin/python scripts/golden_activations.py --verify   # shape-only == real kernels
    .venv-golden/bin/python scripts/golden_activations.py --real-vocab  # tests/golden/activations_head.json

Output is deterministic (seeded inputs and dropout, sorted keys, no timestamps).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.initialization import no_init_weights

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "core" / "data" / "models.jsonl"
OUT = ROOT / "tests" / "golden" / "activations.json"
# --real-vocab: the loss's peak with the model's own vocabulary, checkpointing on and off.
OUT_HEAD = ROOT / "tests" / "golden" / "activations_head.json"
HEAD_MODEL = "meta-llama/Meta-Llama-3-8B"
HEAD_SHAPES = ((1, 256), (2, 256))
COMMAND = ".venv-golden/bin/python scripts/golden_activations.py"

DTYPE = torch.bfloat16
VOCAB = 1024
LAYERS = (2, 3)
SHAPES = ((1, 128), (1, 256), (2, 128), (2, 256))
ATTNS = ("eager", "sdpa")
GCS = (False, True)
TRAINS = ("full", "lora_attn", "lora_all")
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
# (attn, gc, train, batch, seq) whose saved tensors are listed per layer in "layer_tensors".
LIST = (
    ("sdpa", False, "full", 1, 128),
    ("sdpa", False, "lora_attn", 1, 128),
    ("sdpa", False, "lora_all", 1, 128),
    ("eager", False, "full", 1, 128),
    ("sdpa", True, "full", 1, 128),
    ("sdpa", False, "full", 2, 128),  # batch 1 can keep views where batch 2 copies
    ("eager", False, "full", 2, 128),
)
VERIFY = (  # (model id, attn, gc, train, batch, seq) rerun with real weights and kernels
    ("openai-community/gpt2-medium", "eager", False, "full", 1, 128),
    ("openai-community/gpt2-medium", "sdpa", True, "lora_all", 2, 128),
    ("meta-llama/Meta-Llama-3-8B", "sdpa", False, "lora_attn", 1, 128),
    ("meta-llama/Meta-Llama-3-8B", "eager", False, "full", 1, 128),
    ("tiiuae/falcon-7b-instruct", "sdpa", False, "full", 1, 128),
    ("EleutherAI/pythia-1.4b", "sdpa", True, "full", 1, 128),
    ("togethercomputer/RedPajama-INCITE-Chat-3B-v1", "eager", True, "lora_attn", 1, 128),
    ("meta-llama/Llama-2-7b-hf", "sdpa", True, "lora_all", 1, 128),
    ("mistralai/Mixtral-8x7B-v0.1", "sdpa", False, "lora_attn", 1, 128),
)

# Shape-only execution: aten ops that return fresh tensors of >= STUB_MIN_BYTES are not computed;
# their result is a zero-filled tensor with the shape/stride/dtype of the op's meta kernel.
STUB_MIN_BYTES = 2**16
LAZY_MIN_BYTES = 2**28  # stub results this large stay uninitialized (fresh mmap reads as 0)
STUB_DENY = {  # always run for real: hidden aliasing, data-dependent, or kernel-specific layout
    "aten::_unsafe_view",
    "aten::_local_scalar_dense",
    "aten::nonzero",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
}
# Parameters larger than this are only read by stubbed ops and are left uninitialized.
INIT_MAX_NUMEL = 2**22

IRRELEVANT_KEYS = ("torch_dtype", "dtype", "transformers_version", "_name_or_path", "auto_map")

# Per family: LoRA target regexes (peft full-match on the module name) and widths from config.
FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {
        "attn": r".*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
        "all": r".*\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))",
    },
    "mixtral": {
        "attn": r".*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
        "all": r".*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
        "all_parameters": ["experts.gate_up_proj", "experts.down_proj"],
    },
    "gpt2": {
        "attn": r".*\.attn\.(c_attn|c_proj)",
        "all": r".*\.(attn\.(c_attn|c_proj)|mlp\.(c_fc|c_proj))",
    },
    "gpt_neox": {
        "attn": r".*\.attention\.(query_key_value|dense)",
        "all": r".*\.(attention\.(query_key_value|dense)|mlp\.(dense_h_to_4h|dense_4h_to_h))",
    },
    "falcon": {
        "attn": r".*\.self_attention\.(query_key_value|dense)",
        "all": r".*\.(self_attention\.(query_key_value|dense)|mlp\.(dense_h_to_4h|dense_4h_to_h))",
    },
}

MODEL_IDS = (
    "meta-llama/Llama-2-7b-hf",
    "meta-llama/Meta-Llama-3-8B",
    "openai-community/gpt2-medium",
    "EleutherAI/pythia-1.4b",
    "togethercomputer/RedPajama-INCITE-Chat-3B-v1",
    "tiiuae/falcon-7b-instruct",
    "mistralai/Mixtral-8x7B-v0.1",
)


# ---------------------------------------------------------------------------------------------
# Model construction
# ---------------------------------------------------------------------------------------------


def load_configs() -> dict[str, dict[str, Any]]:
    out = {}
    with MODELS.open() as fh:
        for line in fh:
            row = json.loads(line)
            if row["id"] in MODEL_IDS:
                out[row["id"]] = row["config"]
    missing = set(MODEL_IDS) - set(out)
    if missing:
        raise SystemExit(f"not in {MODELS}: {sorted(missing)}")
    return out


def make_config(raw: dict[str, Any], n_layers: int) -> tuple[Any, dict[str, Any]]:
    """HF config with n_layers layers and the small vocab; returns (config, overrides)."""
    cfg = {k: v for k, v in raw.items() if k not in IRRELEVANT_KEYS}
    overrides: dict[str, Any] = {"vocab_size": VOCAB, "use_cache": False}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if isinstance(cfg.get(key), int) and cfg[key] >= VOCAB:
            overrides[key] = None
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **{**cfg, **overrides})
    config.num_hidden_layers = n_layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:n_layers]
    return config, overrides


def widths(config: Any) -> dict[str, Any]:
    """Widths a formula needs, read from the (reduced) config as the modeling code uses them."""
    mt = config.model_type
    w: dict[str, Any] = {"model_type": mt, "vocab": config.vocab_size}
    if mt == "gpt2":
        h, nh = config.n_embd, config.n_head
        w.update(
            hidden=h,
            intermediate=config.n_inner or 4 * h,
            heads=nh,
            kv_heads=nh,
            head_dim=h // nh,
            act=config.activation_function,
            dropout={
                "attn": config.attn_pdrop,
                "resid": config.resid_pdrop,
                "embd": config.embd_pdrop,
            },
        )
    elif mt == "falcon":
        h, nh = config.hidden_size, config.num_attention_heads
        kv = (
            config.num_kv_heads
            if (config.new_decoder_architecture or not config.multi_query)
            else 1
        )
        w.update(
            hidden=h,
            intermediate=config.ffn_hidden_size,
            heads=nh,
            kv_heads=kv,
            head_dim=h // nh,
            parallel_attn=config.parallel_attn,
            new_decoder_architecture=config.new_decoder_architecture,
            dropout={"attention": config.attention_dropout, "hidden": config.hidden_dropout},
        )
    elif mt == "gpt_neox":
        h, nh = config.hidden_size, config.num_attention_heads
        rope = getattr(config, "rope_parameters", None) or {}
        w.update(
            hidden=h,
            intermediate=config.intermediate_size,
            heads=nh,
            kv_heads=nh,
            head_dim=h // nh,
            act=config.hidden_act,
            use_parallel_residual=config.use_parallel_residual,
            partial_rotary_factor=rope.get(
                "partial_rotary_factor", getattr(config, "rotary_pct", None)
            ),
            dropout={"attention": config.attention_dropout, "hidden": config.hidden_dropout},
        )
    else:  # llama, mixtral
        h, nh = config.hidden_size, config.num_attention_heads
        w.update(
            hidden=h,
            intermediate=config.intermediate_size,
            heads=nh,
            kv_heads=config.num_key_value_heads,
            head_dim=getattr(config, "head_dim", None) or h // nh,
            act=config.hidden_act,
            dropout={"attention": config.attention_dropout},
        )
        if mt == "mixtral":
            w.update(
                experts=config.num_local_experts,
                top_k=config.num_experts_per_tok,
                experts_implementation=config._experts_implementation,
            )
    return w


def _init_small_params(model: torch.nn.Module, real: bool) -> None:
    """Deterministic init; with real=False the big matmul-only weights stay uninitialized."""
    gen = torch.Generator().manual_seed(0)
    embeds = {id(m) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    with torch.no_grad():
        for module in model.modules():
            is_norm = "Norm" in type(module).__name__
            for name, p in module.named_parameters(recurse=False):
                if is_norm:
                    p.fill_(1.0 if name == "weight" else 0.0)
                elif name == "bias" or p.ndim == 1:
                    p.zero_()
                elif real or id(module) in embeds or p.numel() <= INIT_MAX_NUMEL:
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * 0.02)


def layer_list(model: torch.nn.Module) -> torch.nn.ModuleList:
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and re.search(r"(^|\.)(layers|h)$", name):
            return mod
    raise RuntimeError("no decoder layer list found")


def build(
    raw: dict[str, Any], n_layers: int, attn: str, train: str, use_gc: bool, real: bool
) -> tuple[torch.nn.Module, dict[str, Any], dict[str, Any]]:
    config, overrides = make_config(raw, n_layers)
    torch.manual_seed(0)
    ctx = contextlib.nullcontext() if real else no_init_weights()
    with ctx:
        model = AutoModelForCausalLM.from_config(config, dtype=DTYPE, attn_implementation=attn)
    model.tie_weights()  # no_init_weights() also skips the tying done by init_weights()
    _init_small_params(model, real)
    model.train()
    if use_gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    info: dict[str, Any] = {}
    if train == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        fam = FAMILIES[config.model_type]
        kw: dict[str, Any] = dict(LORA, bias="none", task_type="CAUSAL_LM")
        kw["target_modules"] = fam["attn"] if train == "lora_attn" else fam["all"]
        if train == "lora_all" and fam.get("all_parameters"):
            kw["target_parameters"] = fam["all_parameters"]
            kw["lora_dropout"] = 0.0  # peft's ParamWrapper refuses dropout
        info["lora_config"] = {k: kw[k] for k in sorted(kw) if k != "task_type"}
        torch.manual_seed(0)
        model = get_peft_model(model, LoraConfig(**kw))
        info["lora_targets"] = sorted(
            {
                re.sub(r"^.*?\.(\d+)\.", "N.", n)
                for n, m in model.named_modules()
                if hasattr(m, "lora_A") and re.search(r"\.\d+\.", n)
            }
        )
    return model, overrides, info


# ---------------------------------------------------------------------------------------------
# CUDA behaviour on CPU
# ---------------------------------------------------------------------------------------------

GPU_EMULATION = {
    "dropout": "F.dropout -> torch.native_dropout (CUDA's fused kernel: saves a bool mask; the "
    "CPU path saves a bf16 noise tensor instead)",
    "sdpa_dropout": "SDPA with dropout_p > 0 (and equal q/kv heads or enable_gqa) runs with "
    "dropout_p = 0: CUDA flash regenerates the mask in backward and saves the same tensors + 2 "
    "rng scalars, while CPU would fall back to the fp32 math path.  Unequal heads without "
    "enable_gqa (Falcon MQA) use the math path on CUDA too, which upcasts to fp32 there as well, "
    "so that case is left alone",
}
_F_DROPOUT = torch.nn.functional.dropout
_F_SDPA = torch.nn.functional.scaled_dot_product_attention


def _dropout_cuda_like(
    input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> torch.Tensor:
    if training and 0.0 < p < 1.0 and input.numel() > 0 and not inplace:
        return torch.native_dropout(input, p, True)[0]
    return _F_DROPOUT(input, p, training, inplace)


def _sdpa_cuda_like(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    fused_on_cuda = query.shape[-3] == key.shape[-3] or enable_gqa
    return _F_SDPA(
        query,
        key,
        value,
        attn_mask=attn_mask,
        dropout_p=0.0 if fused_on_cuda else dropout_p,
        is_causal=is_causal,
        scale=scale,
        enable_gqa=enable_gqa,
    )


@contextlib.contextmanager
def cuda_like(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    fn = torch.nn.functional
    fn.dropout, fn.scaled_dot_product_attention = _dropout_cuda_like, _sdpa_cuda_like
    try:
        yield
    finally:
        fn.dropout, fn.scaled_dot_product_attention = _F_DROPOUT, _F_SDPA


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------


def _storage_key(t: torch.Tensor) -> tuple[int, int]:
    st = t.untyped_storage()
    return st.data_ptr(), st.nbytes()


class Probe(TorchDispatchMode):
    """Tracks the lifetime of every storage created by an aten op; optionally stubs ops.

    Time is counted in aten ops; a storage created by op t0 and found dead after op t1 was
    alive at the sample points t0 .. t1 - 1.  Storages that end up as a parameter's ``.grad``
    are marked (``mark_grad``) so the peak can leave the gradient store out.
    """

    def __init__(self, excluded: set[int], stub: bool) -> None:
        super().__init__()
        self.excluded = excluded
        self.stub = stub
        self.t = 0
        self.live: dict[int, tuple[StorageWeakRef, int, int]] = {}  # ptr -> (ref, nbytes, t0)
        self.spans: list[tuple[int, int, int]] = []  # (t0, t1, nbytes), param grads left out
        self.grads: set[tuple[int, int]] = set()  # (ptr, t0) of storages that became .grad

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = _stub_result(func, args, kwargs) if self.stub else None
        if out is None:
            out = func(*args, **kwargs)
        self.t += 1
        self._reap()
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                self._track(t)
        return out

    def _track(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr == 0 or ptr in self.excluded or ptr in self.live:
            return
        self.live[ptr] = (StorageWeakRef(st), st.nbytes(), self.t)

    def _reap(self) -> None:
        for ptr, (ref, nbytes, t0) in list(self.live.items()):
            if ref.expired():
                del self.live[ptr]
                if (ptr, t0) not in self.grads:
                    self.spans.append((t0, self.t, nbytes))

    def mark_grad(self, grad: torch.Tensor) -> None:
        ptr = grad.untyped_storage().data_ptr()
        if ptr in self.live:
            self.grads.add((ptr, self.live[ptr][2]))

    def live_bytes(self) -> int:
        self._reap()
        return sum(n for _, n, _ in self.live.values())

    def peak(self) -> int:
        """Largest sum of live bytes at any sample point, parameter gradients excluded."""
        self._reap()
        end = self.t + 1
        spans = self.spans + [
            (t0, end, n) for p, (_, n, t0) in self.live.items() if (p, t0) not in self.grads
        ]
        events = sorted([(t0, 1, n) for t0, _, n in spans] + [(t1, 0, -n) for _, t1, n in spans])
        best = cur = 0
        for _, _, delta in events:
            cur += delta
            best = max(best, cur)
        return best


_STUBBABLE: dict[Any, bool] = {}
STATS_LIKE_CPU = [False]  # --verify: stub LayerNorm stats as the CPU kernel returns them


def _stubbable(func: Any) -> bool:
    ok = _STUBBABLE.get(func)
    if ok is None:
        schema = func._schema
        ok = (
            schema.name.startswith("aten::")
            and schema.name not in STUB_DENY
            and all(r.alias_info is None for r in schema.returns)
            and all(a.alias_info is None or not a.alias_info.is_write for a in schema.arguments)
            and not any(isinstance(r.type, torch.ListType) for r in schema.returns)
        )
        _STUBBABLE[func] = ok
    return ok


def _stub_result(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Zero-filled result with the real op's metadata, or None to run the op for real."""
    if not _stubbable(func):
        return None
    flat = tree_flatten((args, kwargs))[0]
    if not any(isinstance(x, torch.Tensor) for x in flat):
        return None  # factory op

    def to_meta(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
        return x

    try:
        meta = func(*tree_map(to_meta, args), **tree_map(to_meta, kwargs))
    except Exception:
        return None  # no meta kernel / data-dependent
    if func is torch.ops.aten.native_layer_norm.default and STATS_LIKE_CPU[0]:
        # the meta kernel (like CUDA) returns fp32 mean/rstd; the CPU kernel the input dtype
        x = args[0]
        meta = (meta[0], *(m.to(x.dtype) for m in meta[1:]))
    outs = [m for m in tree_flatten(meta)[0] if isinstance(m, torch.Tensor)]
    if sum(m.untyped_storage().nbytes() for m in outs) < STUB_MIN_BYTES:
        return None

    def to_real(m: Any) -> Any:
        if not isinstance(m, torch.Tensor):
            return m
        out = torch.empty_strided(m.shape, m.stride(), dtype=m.dtype)
        if out.untyped_storage().nbytes() < LAZY_MIN_BYTES:
            out.zero_()
        return out

    return tree_map(to_real, meta)


class _Packed:
    __slots__ = ("idx", "tensor")

    def __init__(self, tensor: torch.Tensor, idx: int) -> None:
        self.tensor = tensor
        self.idx = idx


class Recorder:
    """saved_tensors_hooks + module stack: which storages are saved, by which layer/module."""

    def __init__(self, model: torch.nn.Module, excluded: set[int]) -> None:
        self.excluded = excluded
        self.seen: dict[int, int] = {}  # storage ptr -> nbytes (counted ones)
        self.records: list[dict[str, Any]] = []
        self.stack: list[torch.nn.Module] = []
        self.label: str | None = None
        self.checkpointed = False
        layers = layer_list(model)
        self.owner: dict[int, tuple[int, str]] = {}
        for i, layer in enumerate(layers):
            for name, sub in layer.named_modules():
                self.owner[id(sub)] = (i, _short(name))
        self.n_layers = len(layers)

    def where(self) -> tuple[int | None, str]:
        for mod in reversed(self.stack):
            if id(mod) in self.owner:
                return self.owner[id(mod)]
        return None, type(self.stack[-1]).__name__ if self.stack else "<top>"

    def add(self, t: torch.Tensor, kind: str) -> int:
        ptr, nbytes = _storage_key(t)
        layer, module = self.where()
        new = ptr != 0 and ptr not in self.excluded and ptr not in self.seen
        if new:
            self.seen[ptr] = nbytes
        self.records.append(
            {
                "layer": layer,
                "module": module,
                "kind": kind,
                "shape": list(t.shape),
                "dtype": str(t.dtype).replace("torch.", ""),
                "storage_bytes": nbytes,
                "new": new,
                "param": ptr in self.excluded,
                "op": None,
            }
        )
        return len(self.records) - 1

    def pack(self, t: torch.Tensor) -> _Packed:
        return _Packed(t, self.add(t, "saved"))

    def unpack(self, p: _Packed) -> torch.Tensor:
        if self.label is not None and self.records[p.idx]["op"] is None:
            self.records[p.idx]["op"] = self.label
        return p.tensor

    @contextlib.contextmanager
    def module_stack(self) -> Iterator[None]:
        def pre(mod: torch.nn.Module, _args: Any) -> None:
            self.stack.append(mod)

        def post(mod: torch.nn.Module, _args: Any, _out: Any) -> None:
            if self.stack and self.stack[-1] is mod:
                self.stack.pop()

        h1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
        h2 = torch.nn.modules.module.register_module_forward_hook(post)
        try:
            yield
        finally:
            h1.remove()
            h2.remove()

    @contextlib.contextmanager
    def checkpoints(self, model: torch.nn.Module) -> Iterator[None]:
        """Record what each checkpointed layer keeps: its positional and keyword tensor inputs."""
        wrapped = []
        self.checkpointed = False
        for mod in model.modules():
            fn = getattr(mod, "_gradient_checkpointing_func", None)
            if getattr(mod, "gradient_checkpointing", False) and fn is not None:
                mod._gradient_checkpointing_func = partial(self._checkpoint, fn, mod)
                wrapped.append((mod, fn))
                self.checkpointed = True
        try:
            yield
        finally:
            for mod, fn in wrapped:
                mod._gradient_checkpointing_func = fn

    def _checkpoint(
        self, fn: Callable[..., Any], mod: torch.nn.Module, body: Any, *args: Any, **kwargs: Any
    ) -> Any:
        self.stack.append(mod)
        try:
            held = [*args, *kwargs.values(), *getattr(body, "keywords", {}).values()]
            for t in tree_flatten(held)[0]:
                if isinstance(t, torch.Tensor):
                    self.add(t, "checkpoint_input")
        finally:
            self.stack.pop()
        return fn(body, *args, **kwargs)

    def saved_bytes(self) -> int:
        return sum(self.seen.values())

    def label_ops(self, root: Any) -> None:
        """Walk the autograd graph and read every saved tensor once to learn its node."""
        todo, done = [root], set()
        while todo:
            node = todo.pop()
            if node is None or node in done:
                continue
            done.add(node)
            for attr in dir(node):
                if attr.startswith("_saved_") or attr == "saved_tensors":
                    self.label = f"{node.name()}.{attr.removeprefix('_saved_')}"
                    with contextlib.suppress(Exception):
                        getattr(node, attr)
            self.label = None
            todo.extend(fn for fn, _ in node.next_functions)


def _short(name: str) -> str:
    name = re.sub(r"\.base_layer$", "", name)
    name = re.sub(r"\.(lora_[AB]|lora_dropout)\.default", r".\1", name)
    return name or "<layer>"


def measure(
    model: torch.nn.Module, batch: int, seq: int, stub: bool, listing: bool = False
) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(1234)
    input_ids = torch.randint(0, VOCAB, (batch, seq), generator=gen)
    excluded = {p.untyped_storage().data_ptr() for p in model.parameters()}
    excluded |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    excluded.add(input_ids.untyped_storage().data_ptr())
    rec = Recorder(model, excluded)
    probe = Probe(excluded, stub)

    def drop_grad(p: torch.Tensor) -> None:
        if p.grad is not None:
            probe.mark_grad(p.grad)
        p.grad = None

    hooks = [
        p.register_post_accumulate_grad_hook(drop_grad)
        for p in model.parameters()
        if p.requires_grad
    ]
    torch.manual_seed(0)
    with cuda_like(GPU_LIKE[0]), rec.checkpoints(model), probe, rec.module_stack():
        with torch.autograd.graph.saved_tensors_hooks(rec.pack, rec.unpack):
            loss = model(input_ids=input_ids, labels=input_ids).loss
        saved = rec.saved_bytes()
        live = probe.live_bytes()
        if listing and not rec.checkpointed:
            # (with checkpointing, reading a saved tensor would trigger the recomputation)
            rec.label_ops(loss.grad_fn)
        loss.backward()
        peak = probe.peak()
    for h in hooks:
        h.remove()
    if not math.isfinite(float(loss)):
        raise RuntimeError(f"non-finite loss {float(loss)}")
    out: dict[str, Any] = {"saved": saved, "live": live, "peak": peak}
    if listing:
        out["records"] = rec.records
        out["n_layers"] = rec.n_layers
    del loss
    return out


GPU_LIKE = [True]  # set from --cpu-kernels


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def layer_tensors(records: list[dict[str, Any]], layer: int) -> list[str]:
    """One line per tensor saved inside `layer`: module | op | shape dtype | bytes (+ flags)."""
    lines = []
    for r in records:
        if r["layer"] != layer or r["param"]:
            continue
        flag = "" if r["new"] else "  (storage already counted)"
        shape = "x".join(str(s) for s in r["shape"])
        lines.append(
            f"{r['module']} | {r['op'] or r['kind']} | {shape} {r['dtype']} | "
            f"{r['storage_bytes']}{flag}"
        )
    return lines


def run_model(
    mid: str,
    raw: dict[str, Any],
    shapes: tuple[tuple[int, int], ...],
    stub: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    _, overrides = make_config(raw, LAYERS[-1])
    result: dict[str, Any] = {
        "config_overrides": {"num_hidden_layers": list(LAYERS), **overrides},
        "layers_measured": list(LAYERS),
        "rows": [],
        "layer_tensors": {},
    }
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for attn in ATTNS:
        for use_gc in GCS:
            for train in TRAINS:
                for n in LAYERS:
                    t0 = time.time()
                    model, _, info = build(raw, n, attn, train, use_gc, real=not stub)
                    if "widths" not in result:
                        result["widths"] = widths(model.config)
                    if info:
                        result.setdefault(f"{train}_config", info)
                    for batch, seq in shapes:
                        listing = (attn, use_gc, train, batch, seq) in LIST and n == LAYERS[-1]
                        m = measure(model, batch, seq, stub, listing)
                        key = (attn, use_gc, train, batch, seq)
                        row = rows.setdefault(
                            key,
                            {
                                "attn": attn,
                                "gc": use_gc,
                                "train": train,
                                "batch": batch,
                                "seq": seq,
                                "saved_bytes_by_layers": {},
                                "live_bytes_by_layers": {},
                                "peak_bytes_by_layers": {},
                            },
                        )
                        row["saved_bytes_by_layers"][str(n)] = m["saved"]
                        row["live_bytes_by_layers"][str(n)] = m["live"]
                        row["peak_bytes_by_layers"][str(n)] = m["peak"]
                        if listing:
                            name = f"{attn}/{'gc' if use_gc else 'nogc'}/{train}/{batch}x{seq}"
                            result["layer_tensors"][name] = layer_tensors(
                                m["records"], m["n_layers"] - 1
                            )
                    del model
                    gc.collect()
                    log(f"  {mid} {attn} gc={use_gc} {train} L={n}: {time.time() - t0:.1f}s")
    lo, hi = (str(n) for n in LAYERS)
    span = LAYERS[-1] - LAYERS[0]
    for row in rows.values():
        for field, per, non in (
            ("saved_bytes_by_layers", "per_layer_bytes", "non_layer_bytes"),
            ("live_bytes_by_layers", "per_layer_live", "non_layer_live"),
            ("peak_bytes_by_layers", "per_layer_peak", "non_layer_peak"),
        ):
            by = row[field]
            per_layer = (by[hi] - by[lo]) // span
            row[per] = per_layer
            row[non] = by[lo] - LAYERS[0] * per_layer
        row["per_layer_bytes_per_token"] = round(
            row["per_layer_bytes"] / (row["batch"] * row["seq"]), 2
        )
        result["rows"].append(row)
    return result


def verify(configs: dict[str, dict[str, Any]], log: Callable[[str], None]) -> int:
    bad = 0
    for mid, attn, use_gc, train, batch, seq in VERIFY:
        got = {}
        for stub in (True, False):
            model, _, _ = build(configs[mid], LAYERS[0], attn, train, use_gc, real=not stub)
            got[stub] = measure(model, batch, seq, stub)
            del model
            gc.collect()
        same = all(got[True][k] == got[False][k] for k in ("saved", "live", "peak"))
        bad += not same
        log(
            f"verify {mid} {attn} gc={use_gc} {train} {batch}x{seq}: stub={got[True]} "
            f"real={got[False]} {'OK' if same else 'MISMATCH'}"
        )
    return bad


def summary(mid: str, res: dict[str, Any]) -> str:
    """Per-layer bytes per token for each setting and shape (a quick look at the result)."""
    lines = [mid]
    rows: dict[tuple[Any, ...], dict[tuple[int, int], dict[str, Any]]] = {}
    for r in res["rows"]:
        rows.setdefault((r["attn"], r["gc"], r["train"]), {})[(r["batch"], r["seq"])] = r
    for (attn, use_gc, train), by in rows.items():
        cells = []
        for (b, s), r in sorted(by.items()):
            tok = b * s
            cells.append(
                f"{b}x{s}: {r['per_layer_bytes'] / tok:9.1f} "
                f"(peak {r['per_layer_peak'] / tok:8.1f}, non {r['non_layer_bytes'] / tok:8.1f})"
            )
        lines.append(f"  {attn:5} {'gc ' if use_gc else 'nogc'} {train:9} " + " | ".join(cells))
    return "\n".join(lines)


def real_vocab(configs: dict[str, dict[str, Any]], no_write: bool,
               log: Callable[[str], None]) -> int:
    """Where the loss's logits peak against the recomputed layer, at a real vocabulary.

    The main grid shrinks the vocabulary to 1,024 to stay fast, which hides the loss. This run
    keeps Llama-3-8B's 128,256 entries (SDPA, full and LoRA on every linear, checkpointing on
    and off) so the non-layer peak shows whether the logits and a recomputed layer coexist.
    """
    global VOCAB, ATTNS, TRAINS  # the grid constants drive run_model
    VOCAB, ATTNS, TRAINS = configs[HEAD_MODEL]["vocab_size"], ("sdpa",), ("full", "lora_all")
    t0 = time.time()
    result = run_model(HEAD_MODEL, configs[HEAD_MODEL], HEAD_SHAPES, stub=True, log=log)
    rows = [{k: row[k] for k in ("attn", "gc", "train", "batch", "seq", "per_layer_bytes",
                                 "per_layer_peak", "non_layer_bytes", "non_layer_peak")}
            for row in result["rows"]]
    data = {HEAD_MODEL: {"widths": result["widths"], "rows": rows},
            "_meta": {"torch": torch.__version__, "transformers": transformers.__version__,
                      "peft": peft.__version__, "vocab": VOCAB, "lora": LORA,
                      "layers_measured": list(LAYERS),
                      "per_layer": "m(3) - m(2); non_layer = m(2) - 2 * per_layer",
                      "command": COMMAND + " --real-vocab"}}
    log(f"{HEAD_MODEL} at vocab {VOCAB}: {time.time() - t0:.0f}s")
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if no_write:
        print(text)
    else:
        OUT_HEAD.write_text(text)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", help="model id (repeatable)")
    ap.add_argument("--no-write", action="store_true", help="print instead of writing the file")
    ap.add_argument("--verify", action="store_true", help="check stubbed == real kernels")
    ap.add_argument("--real-vocab", action="store_true",
                    help=f"the loss's peak with {HEAD_MODEL}'s own vocabulary -> {OUT_HEAD.name}")
    ap.add_argument(
        "--cpu-kernels",
        action="store_true",
        help="do not emulate CUDA dropout/SDPA choices (see GPU_EMULATION)",
    )
    args = ap.parse_args()
    GPU_LIKE[0] = not args.cpu_kernels

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    logging.getLogger("peft").setLevel(logging.ERROR)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    configs = load_configs()
    if args.verify:
        torch.set_num_threads(2)  # real matmuls; the shape-only runs are faster on one thread
        STATS_LIKE_CPU[0] = True
        return 1 if verify(configs, log) else 0
    if args.real_vocab:
        return real_vocab(configs, args.no_write, log)
    ids = args.only or list(MODEL_IDS)
    data: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() and args.only else {}
    for mid in ids:
        t0 = time.time()
        data[mid] = run_model(mid, configs[mid], SHAPES, stub=True, log=log)
        log(summary(mid, data[mid]))
        log(f"{mid}: {time.time() - t0:.0f}s")
    data["_meta"] = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "dtype": "bfloat16 (pure: built in bf16, no autocast; peft adapters fp32)",
        "vocab_override": VOCAB,
        "layers_measured": list(LAYERS),
        "lora": LORA,
        "device": "cpu",
        "bytes": "storage nbytes, each storage once; parameters/buffers/inputs excluded",
        "per_layer": "m(3) - m(2); non_layer = m(2) - 2 * per_layer",
        "fields": {
            "saved_bytes_by_layers": "autograd saved tensors after forward (+ checkpoint inputs)",
            "live_bytes_by_layers": "storages created in forward still alive after it",
            "peak_bytes_by_layers": "peak over forward+backward, parameter .grad excluded",
            "per_layer_bytes/non_layer_bytes": "from saved_bytes_by_layers",
            "per_layer_live/non_layer_live, per_layer_peak/non_layer_peak": "likewise",
            "layer_tensors": "module | node.saved_field | shape dtype | storage bytes",
        },
        "stub_min_bytes": STUB_MIN_BYTES,
        "gpu_emulation": GPU_EMULATION if GPU_LIKE[0] else None,
        "command": COMMAND,
    }
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if args.no_write:
        print(text)
    else:
        OUT.write_text(text)
        log(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
