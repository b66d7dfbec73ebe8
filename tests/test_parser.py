from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import UserError
from core.parser import (
    ATTENTION,
    ENGINES,
    KEY_ALIASES,
    KV_TYPES,
    EstimateCommand,
    GpusCommand,
    HelpCommand,
    ModelsCommand,
    classify_model,
    parse_command,
    parse_quant,
)
from core.request import GENERIC_QUANTS, GGUF_PRESETS, PLAIN_QUANTS, EstimateRequest


def estimate(text: str) -> EstimateCommand:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    return command


def check_message(error: UserError) -> None:
    """The contract for every user-facing error: one short line, one sentence, no internals."""
    message = error.message
    assert message and len(message) < 300
    assert message[-1] in ".?" and "\n" not in message
    assert "Traceback" not in message and "ValidationError" not in message
    assert "\n" not in (error.hint or "")


# --- valid commands -> exact request fields ------------------------------------------------------

VALID: list[tuple[str, dict[str, Any]]] = [
    ("m train=lora", {"mode": "train", "train": "lora", "r": 16, "target": "all"}),
    ("m mode=train", {"mode": "train", "train": "full"}),
    ("m train=qlora r=64 target=attn optim=paged_adamw_8bit gc=off",
     {"train": "qlora", "r": 64, "target": "attn", "optim": "paged_adamw8bit", "gc": False}),
    ("m train=full zero=fsdp offload=cpu precision=bf16-true",
     {"zero": 3, "offload": "cpu", "precision": "bf16"}),
    ("m finetune=ft optimizer=adamw_bnb_8bit gradient_checkpointing=true",
     {"train": "full", "optim": "adamw8bit", "gc": True}),
    (
        "/fits meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB",
        {
            "model": "meta-llama/Llama-2-7b",
            "quant": "q4",
            "ctx": 4096,
            "gpu": "24GB",
            "gpu_given": True,
        },
    ),
    ("fits llama-2-7b", {"model": "llama-2-7b", "quant": None, "gpu": "24GB", "gpu_given": False}),
    ("llama3-8b", {"model": "llama3-8b"}),
    ("  /FITS   llama3-8b    q8  ", {"model": "llama3-8b", "quant": "q8"}),
    ("7b", {"model": "7b"}),
    ("1.5B fp16", {"model": "1.5B", "quant": "fp16"}),
    ("70b int4", {"model": "70b", "quant": "int4"}),
    ("0.5b", {"model": "0.5b"}),
    ("125m", {"model": "125m"}),
    ("Qwen/Qwen2.5-0.5B-Instruct", {"model": "Qwen/Qwen2.5-0.5B-Instruct"}),
    ("https://huggingface.co/org/name", {"model": "org/name"}),
    ("https://huggingface.co/org/name/tree/main", {"model": "org/name"}),
    ("https://huggingface.co/gpt2/blob/main/config.json", {"model": "gpt2"}),
    ("hf.co/org/name?library=transformers", {"model": "org/name"}),
    ("<https://huggingface.co/org/name|org/name>", {"model": "org/name"}),
    ("m q4_k_m", {"quant": "Q4_K_M"}),
    ("m Q4_K_M", {"quant": "Q4_K_M"}),
    ("m q4-k-m", {"quant": "Q4_K_M"}),
    ("m iq4_xs", {"quant": "IQ4_XS"}),
    ("m Q8_0", {"quant": "Q8_0"}),
    ("m q4_k", {"quant": "Q4_K_M"}),
    ("m F16", {"quant": "F16"}),
    ("m BF16", {"quant": "bf16"}),  # the plain name wins over the GGUF type of the same name
    ("m FP8", {"quant": "fp8"}),
    ("m NF4", {"quant": "nf4", "bits": None}),
    ("m mxfp4", {"quant": "mxfp4"}),
    ("m float16", {"quant": "fp16"}),
    ("m bfloat16", {"quant": "bf16"}),
    ("m float32", {"quant": "fp32"}),
    ("m Q4", {"quant": "q4"}),
    ("m 4bit", {"quant": "q4"}),
    ("m 8-bit", {"quant": "q8"}),
    ("m 16bit", {"quant": "fp16"}),
    ("m gptq", {"quant": "gptq", "bits": 4.0}),
    ("m gptq-8bit", {"quant": "gptq", "bits": 8.0}),
    ("m GPTQ-Int4", {"quant": "gptq", "bits": 4.0}),
    ("m awq", {"quant": "awq", "bits": 4.0}),
    ("m awq-4bit", {"quant": "awq", "bits": 4.0}),
    ("m gptq bits=3", {"quant": "gptq", "bits": 3.0}),
    ("m exl2=4.65", {"quant": "exl2", "bits": 4.65}),
    ("m exl2-4.65bpw", {"quant": "exl2", "bits": 4.65}),
    ("m exl2 bits=6", {"quant": "exl2", "bits": 6.0}),
    ("m exl2", {"quant": "exl2", "bits": 4.0}),
    ("m quant=Q5_K_S", {"quant": "Q5_K_S"}),
    ("m ctx=8k", {"ctx": 8192}),
    ("m ctx=128k", {"ctx": 131072}),
    ("m context=32K", {"ctx": 32768}),
    ("m n_ctx=2048", {"ctx": 2048}),
    ("m max_model_len=8_192", {"ctx": 8192}),
    ("m max-model-len=8,192", {"ctx": 8192}),
    ("m seq=1k", {"ctx": 1024}),
    ("m seqlen=2k", {"ctx": 2048}),
    ("m CTX=1m", {"ctx": 1048576}),
    ("m ctx = 4k", {"ctx": 4096}),
    ("m ctx= 4k", {"ctx": 4096}),
    ("m ctx =4k", {"ctx": 4096}),
    ("m ctx:4k", {"ctx": 4096}),
    ("m ctx: 4k", {"ctx": 4096}),
    ("m --ctx=4k", {"ctx": 4096}),
    ("m ctx=4k, batch=2", {"ctx": 4096, "batch": 2}),
    ("m ctx='4k'", {"ctx": 4096}),
    ('m ctx="4k"', {"ctx": 4096}),
    ("m ctx=“4k”", {"ctx": 4096}),
    ("m bs=8", {"batch": 8}),
    ("m batch=64", {"batch": 64}),
    ("m gpu=4090", {"gpu": "4090", "gpu_given": True}),
    ("m gpus=2x3090", {"gpu": "2x3090"}),
    ("m gpu=a100-80g", {"gpu": "a100-80g"}),
    ('m gpu="RTX 4090"', {"gpu": "RTX 4090"}),
    ("m GPU=m2-max-64gb", {"gpu": "m2-max-64gb"}),
    ("m engine=hf", {"engine": "hf"}),
    ("m engine=transformers", {"engine": "hf"}),
    ("m engine=vLLM", {"engine": "vllm"}),
    ("m engine=llama.cpp", {"engine": "llama.cpp"}),
    ("m engine=llamacpp", {"engine": "llama.cpp"}),
    ("m engine=llama-cpp", {"engine": "llama.cpp"}),
    ("m engine=llama_cpp", {"engine": "llama.cpp"}),
    ("m engine=ollama", {"engine": "ollama"}),
    ("m engine=exl2", {"engine": "exllamav2"}),
    ("m engine=exllamav2", {"engine": "exllamav2"}),
    ("m engine=sglang", {"engine": "sglang"}),
    ("m engine=TGI", {"engine": "tgi"}),
    ("m kv=fp8", {"kv": "fp8"}),
    ("m kv=q8_0", {"kv": "q8"}),
    ("m kv=q4_0", {"kv": "q4"}),
    ("m kv=bf16", {"kv": "bf16"}),
    ("m util=0.9", {"util": 0.9}),
    ("m util=90%", {"util": 0.9}),
    ("m util=.85", {"util": 0.85}),
    ("m util=1", {"util": 1.0}),
    ("m tp=2", {"tp": 2}),
    ("m prompt=2k gen=512", {"prompt": 2048, "gen": 512}),
    ("m attn=eager", {"attn": "eager"}),
    ("m attn=fa", {"attn": "flash"}),
    ("m attn=FA2", {"attn": "flash"}),
    ("m attn=flash_attention_2", {"attn": "flash"}),
    ("m mode=infer", {}),
    ("m ctx=4k q4", {"quant": "q4", "ctx": 4096}),  # the quant may come after options
    ("ｍ ｃｔｘ＝４ｋ", {"model": "m", "ctx": 4096}),  # full-width forms
    ("m\u200b ctx=4k", {"model": "m"}),  # zero-width space from a copy-paste
    ("m\tq4\nctx=4k", {"quant": "q4", "ctx": 4096}),
    ("config", {"model": "config"}),
]


@pytest.mark.parametrize(("text", "fields"), VALID)
def test_valid_commands(text: str, fields: dict[str, Any]) -> None:
    request = estimate(text).request
    for name, value in fields.items():
        assert getattr(request, name) == value, name


def test_defaults_are_filled_in_and_noted() -> None:
    command = estimate("/fits llama-2-7b")
    assert command.request == EstimateRequest(model="llama-2-7b", gpu_given=False)
    assert command.notes == ("No gpu= given, so a 24GB GPU is assumed.",)


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("m 4bit", "'4bit' read as q4"),
        ("m float16", "'float16' read as fp16"),
        ("m q4_k", "alias for Q4_K_M"),
        ("m gptq", "gptq taken as 4-bit"),
        ("m exl2", "exl2 taken as 4.0 bits"),
        ("https://huggingface.co/org/name", "Read the link as org/name"),
        ("m", "No gpu= given"),
    ],
)
def test_notes(text: str, note: str) -> None:
    assert any(note in line for line in estimate(text).notes)


def test_no_notes_when_nothing_is_assumed() -> None:
    assert estimate("m Q4_K_M gpu=4090").notes == ()
    assert estimate("m q4 gpu=4090").notes == ()  # the engine's choice, noted in the answer


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("help", HelpCommand(None)),
        ("/fits help", HelpCommand(None)),
        ("/fits HELP ctx", HelpCommand("ctx")),
        ("?", HelpCommand(None)),
        ("gpus", GpusCommand("")),
        ("/fits gpus rtx 40", GpusCommand("rtx 40")),
        ("models llama", ModelsCommand("llama")),
        ("/fits models  qwen 7b", ModelsCommand("qwen 7b")),
    ],
)
def test_other_commands(text: str, command: object) -> None:
    assert parse_command(text) == command


# --- bad commands -> message and hint ------------------------------------------------------------

INVALID: list[tuple[str, str, str]] = [  # text, part of the message, part of the hint
    ("", "which model", "Usage"),
    ("   ", "which model", "Usage"),
    ("/fits", "which model", "Usage"),
    ("x" * 2001, "too long", ""),
    ("m foo=1", "Unknown option 'foo'", "Options: ctx, batch, gpu"),
    ("m contxt=8k", "Unknown option 'contxt'", "Did you mean 'context'"),
    ("m bach=2", "Unknown option", "Did you mean 'batch'"),
    ("m =5", "Name the model first", ""),
    ("m r=16", "option r= applies to training only", "mode=train"),
    ("m optim=adamw", "applies to training only", "train=full|lora|qlora"),
    ("m mode=infer zero=3", "applies to training only", ""),
    ("m train=lorax", "Unknown train= value", "Did you mean 'lora'"),
    ("m train=lora r=0", "LoRA rank r=", "r=16"),
    ("m train=full gc=maybe", "gc= takes on or off", "gc=on"),
    ("m train=full zero=5", "ZeRO stage 0 to 3", "zero=3"),
    ("m train=full optim=lion", "Unknown optim= value", "adamw8bit"),
    ("m q5 q4", "quantization is given twice", "Keep one"),
    ("m q4 quant=q8", "given twice", ""),
    ("m exl2=4.0 q4", "given twice", ""),
    ("m gptq-8bit bits=4", "bits per weight are given twice", ""),
    ("m q4 bits=4", "bits= applies only to gptq, awq and exl2", ""),
    ("m bits=4", "bits= needs a quantization", ""),
    ("m gptq bits=5", "gptq comes in 2, 3, 4, 8 bits", ""),
    ("m awq-8bit", "awq comes in 4 bits", ""),
    ("m exl2=9", "exl2 needs 2 to 8 bits", "exl2=4.65"),
    ("m exl2=abc", "bits per weight", ""),
    ("m fp17", "'fp17' is not a quantization", "Did you mean 'fp16'"),
    ("m q4_k_mm", "not a quantization", "Did you mean 'Q4_K_M'"),
    ("m quant=foo", "'foo' is not a quantization", "Quantizations:"),
    ("llama 7b", "not a quantization", "one word, like llama-7b"),
    ("m q4 4090", "'4090' is not a quantization", "gpu=4090 or ctx=4090"),
    ("m 24GB", "not a quantization", "gpu=24GB"),
    ("m 8k", "not a quantization", "ctx=8k"),
    ("m vllm", "not a quantization", "engine=vllm"),
    ("m ctx=4k context=8k", "ctx= is given twice", ""),
    ("m gpu=1 gpus=2", "gpu= is given twice", ""),
    ("m ctx=", "ctx= needs a value", ""),
    ("m ctx= gpu=4090", "ctx= needs a value", ""),
    ("m ctx=abc", "Could not read 'abc' as a context length", "8k"),
    ("m ctx=0", "at least 1", ""),
    ("m ctx=-4", "at least 1", ""),
    ("m ctx=20m", "at most 10,485,760", ""),
    ("m ctx=" + "9" * 400, "at most", ""),
    ("m ctx=1.5", "whole number", ""),
    ("m batch=100k", "batch= must be at most 65,536", ""),
    ("m tp=2000", "tp= must be at most 1,024", ""),
    ("m util=0", "util= must be more than 0", ""),
    ("m util=95", "at most 1 (100%)", "util=90%"),
    ("m util=high", "GPU memory fraction", ""),
    ("m engine=vlm", "Unknown engine= value 'vlm'", "Did you mean 'vllm'"),
    ("m kv=int3", "Unknown kv= value", "Choose one of: fp16, bf16, fp8, q8, q4"),
    ("m attn=flashy", "Unknown attn= value", "flash"),
    ("m gpu=@@", "does not look like a GPU", "gpu=24GB"),
    ("m gpu=" + "a" * 80, "does not look like a GPU", ""),
    ("m 'open quote", "quote is not closed", ""),
    ("ctx=4k", "Name the model first", "Usage"),
    ("q4 llama", "'q4' is a quantization; name the model first", ""),
    ("org/name/extra", "one '/'", ""),
    ("-org/name", "not a valid model id", "letters, digits"),
    ("org/name-", "not a valid model id", ""),
    ("org/.name", "not a valid model id", ""),
    ("org--x/name", "'--' or '..'", ""),
    ("org/na..me", "'--' or '..'", ""),
    ("org/" + "a" * 97, "at most 96 characters", ""),
    ("lläma", "not a valid model id", ""),
    ("0b", "out of range", "7b"),
    ("999t", "out of range", ""),
    ("https://huggingface.co/datasets/org/name", "not a model page", ""),
    ("https://huggingface.co/", "not a model page", ""),
    ("https://github.com/org/name", "Only huggingface.co links", ""),
    ("models", "which models", "/fits models llama"),
    ("gpus " + "x" * 200, "too long", ""),
    ("help \x00", "odd characters", ""),
]


@pytest.mark.parametrize(("text", "message", "hint"), INVALID)
def test_invalid_commands(text: str, message: str, hint: str) -> None:
    with pytest.raises(UserError) as info:
        parse_command(text)
    assert message in info.value.message
    assert hint in (info.value.hint or "")
    check_message(info.value)
    if not re.search(r"[.!?]\s", text):  # the user's own text can hold a sentence break
        assert not re.search(r"[.!?]\s", info.value.message), "one sentence"


# --- helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("org/name", "repo"),
        ("7b", "size"),
        ("1.5B", "size"),
        ("125m", "size"),
        ("llama-2-7b", "name"),
    ],
)
def test_classify_model(text: str, kind: str) -> None:
    assert classify_model(text) == kind


def test_parse_quant_canonical_spellings() -> None:
    for name in PLAIN_QUANTS:
        assert parse_quant(name.upper())[0] == name
    for preset in GGUF_PRESETS:
        expected = preset.lower() if preset.lower() in PLAIN_QUANTS else preset  # BF16 -> bf16
        assert parse_quant(preset.lower())[0] == expected
    for level in GENERIC_QUANTS:
        assert parse_quant(level.upper())[0] == level


# --- properties ---------------------------------------------------------------------------------

NASTY = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="=: \"'`/.-_,;<>|%kKmMbB0123456789qQ", max_size=60),
    st.lists(
        st.sampled_from(
            [
                "/fits",
                "m",
                "q4",
                "=",
                "ctx",
                "4k",
                "gpu",
                ":",
                "exl2",
                "'",
                "9" * 40,
                "\x00",
                "\u202e",
                "ß",
                "１",
            ]
        ),
        max_size=12,
    ).map(" ".join),
    st.lists(st.sampled_from([*KEY_ALIASES, "train", "mode", "bits"]), max_size=6).map(
        lambda keys: "m " + " ".join(f"{key}=1e309" for key in keys)
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NASTY)
def test_any_text_gives_a_command_or_a_user_error(text: str) -> None:
    try:
        command = parse_command(text)
    except UserError as error:
        check_message(error)
        if not re.search(r"[.!?]\s", text):
            assert not re.search(r"[.!?]\s", error.message), "one sentence"
    else:
        assert isinstance(command, EstimateCommand | HelpCommand | GpusCommand | ModelsCommand)


_RESERVED = {"fits", "help", "usage", "gpu", "gpus", "model", "models"}
PART = st.from_regex(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,20}[A-Za-z0-9_])?", fullmatch=True).filter(
    lambda part: "--" not in part and ".." not in part
)
MODELS = st.one_of(
    st.sampled_from(["meta-llama/Llama-2-7b-hf", "llama-2-7b", "7b", "1.5B", "125m"]),
    st.builds(lambda org, name: f"{org}/{name}", PART, PART),
    PART.filter(lambda name: name.lower() not in _RESERVED and _plain_model(name)),
)
QUANTS = st.one_of(
    st.sampled_from(
        [
            ("q4_k_m", "Q4_K_M", None),
            ("float16", "fp16", None),
            ("gptq", "gptq", 4.0),
            ("gptq-8bit", "gptq", 8.0),
            ("awq", "awq", 4.0),
            ("exl2-4.65bpw", "exl2", 4.65),
            ("exl2=5.5", "exl2", 5.5),
            ("quant=q4", "q4", None),
            ("4bit", "q4", None),
            ("8bit", "q8", None),
        ]
    ),
    st.sampled_from(PLAIN_QUANTS[:8] + GENERIC_QUANTS).map(lambda q: (q.upper(), q, None)),
    st.sampled_from(GGUF_PRESETS)
    .filter(lambda p: p.lower() not in PLAIN_QUANTS)
    .map(lambda p: (p.lower(), p, None)),
)


def _plain_model(name: str) -> bool:
    """Names the strategy may use as a model: not a quantization, not an out-of-range size."""
    try:
        parse_quant(name)
    except UserError:
        try:
            classify_model(name)
        except UserError:
            return False
        return True
    return False


def _count(limit: int) -> st.SearchStrategy[tuple[str, int]]:
    plain = st.integers(1, limit).map(lambda n: (str(n), n))
    grouped = st.integers(1, limit).map(lambda n: (f"{n:,}", n))
    underscored = st.integers(1, limit).map(lambda n: (f"{n:_}", n))
    kilo = st.integers(1, limit // 1024).map(lambda n: (f"{n}k", n * 1024))
    return st.one_of(plain, grouped, underscored, kilo)


def _choice(table: dict[str, str]) -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from(sorted(table.items()))


VALUES: dict[str, st.SearchStrategy[tuple[str, Any]]] = {
    "ctx": _count(10_485_760),
    "batch": _count(65_536),
    "tp": _count(1024),
    "prompt": _count(1_000_000),
    "gen": _count(100_000),
    "gpu": st.sampled_from(["24GB", "4090", "rtx-4090", "2x3090", "a100-80g", "RTX 4090"]).map(
        lambda g: (f'"{g}"' if " " in g else g, g)
    ),
    "engine": _choice(ENGINES),
    "kv": _choice(KV_TYPES),
    "attn": _choice(ATTENTION),
    "util": st.integers(1, 100).map(lambda p: (f"{p}%", p / 100)),
}


@st.composite
def valid_commands(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    model = draw(MODELS)
    expected: dict[str, Any] = {"model": model}
    words = [model]
    if draw(st.booleans()):
        typed, quant, bits = draw(QUANTS)
        words.append(typed)
        expected |= {"quant": quant, "bits": bits}
    for key in draw(st.lists(st.sampled_from(sorted(VALUES)), unique=True, max_size=6)):
        typed, value = draw(VALUES[key])
        name = draw(st.sampled_from((key, *KEY_ALIASES[key])))
        name = name.upper() if draw(st.booleans()) else name
        separator = draw(st.sampled_from(["=", " = ", "= ", ":"]))
        words.append(f"{name}{separator}{typed}")
        expected[key] = value
    prefix = draw(st.sampled_from(["", "/fits ", "fits ", "  /FITS  "]))
    tail = words[1:]
    order = draw(st.permutations(tail))
    return prefix + " ".join([words[0], *order]), expected


@settings(max_examples=200, deadline=None)
@given(valid_commands())
def test_valid_commands_round_trip(case: tuple[str, dict[str, Any]]) -> None:
    text, expected = case
    request = estimate(text).request
    for name, value in expected.items():
        actual = getattr(request, name)
        assert actual == pytest.approx(value) if isinstance(value, float) else actual == value, name
    assert request.gpu_given == ("gpu" in expected)


def test_engine_version_is_normalized() -> None:
    from core.parser import EstimateCommand, parse_command

    command = parse_command("llama-2-7b engine=vllm version=v0.11.0")
    assert isinstance(command, EstimateCommand)
    assert command.request.version == "0.11.0"
    command = parse_command("llama-2-7b engine=vllm vllm_version=0.19")
    assert isinstance(command, EstimateCommand)
    assert command.request.version == "0.19"


def test_a_bad_engine_version_is_a_user_error() -> None:
    import pytest

    from core.errors import UserError
    from core.parser import parse_command

    with pytest.raises(UserError, match="engine release"):
        parse_command("llama-2-7b engine=vllm version=latest")


def test_bitsandbytes_release_is_a_training_key() -> None:
    from core.errors import UserError
    from core.parser import EstimateCommand, parse_command

    command = parse_command("llama-2-13b train=qlora bitsandbytes=v0.41.0")
    assert isinstance(command, EstimateCommand)
    assert command.request.bnb == "0.41.0"
    with pytest.raises(UserError, match="training only"):
        parse_command("llama-2-13b nf4 bnb=0.41")
    with pytest.raises(UserError, match="bitsandbytes release"):
        parse_command("llama-2-13b train=qlora bnb=old")


# --- the CPU side: gpu=none, cpu=, ram=, membw=, ngl= -------------------------------------------

GIB = 1 << 30


@pytest.mark.parametrize(("text", "fields"), [
    ("llama3-8b q4 gpu=none cpu=7950x ram=64GB",
     {"gpu": "none", "cpu": "7950x", "ram": 64 * GIB, "ram_speed": None}),
    ("llama3-8b q4 ram=64GB@6000", {"ram": 64 * GIB, "ram_speed": 6000}),
    ('llama3-8b q4 ram="32 GiB @ DDR5-5600"', {"ram": 32 * GIB, "ram_speed": 5600}),
    ("llama3-8b q4 ram:1.5TB", {"ram": int(1.5 * 1024 * GIB)}),
    ("llama3-8b q4 system_ram=16g", {"ram": 16 * GIB}),
    ("llama3-8b q4 membw=89.6", {"membw": 89.6}),
    ("llama3-8b q4 memory_bandwidth=460GB/s", {"membw": 460.0}),
    ("llama3-8b q4 ngl=20 engine=ollama", {"ngl": 20, "engine": "ollama"}),
    ("llama3-8b q4 n_gpu_layers=all", {"ngl": 1000}),
    ('llama3-8b q4 cpu="Ryzen 9 7950X" gpu=cpu', {"cpu": "Ryzen 9 7950X", "gpu": "cpu"}),
    ("llama3-8b q4", {"cpu": None, "ram": None, "ram_speed": None, "membw": None, "ngl": None}),
])
def test_cpu_side_keys(text: str, fields: dict[str, Any]) -> None:
    request = estimate(text).request
    for name, value in fields.items():
        assert getattr(request, name) == value, name


@pytest.mark.parametrize(("text", "message"), [
    ("llama3-8b q4 ram=lots", "as a RAM size"),
    ("llama3-8b q4 ram=0.5GB", "between 1 GB and 16 TB"),
    ("llama3-8b q4 ram=64GB@90000", "out of range"),
    ("llama3-8b q4 membw=fast", "memory bandwidth"),
    ("llama3-8b q4 membw=0", "out of range"),
    ("llama3-8b q4 ngl=-1", "number of layers"),
    ("llama3-8b q4 ngl=twenty", "number of layers"),
    ("llama3-8b awq engine=vllm ngl=20", "applies to llama.cpp and Ollama"),
    ("llama3-8b awq engine=vllm gpu=none", "answered for llama.cpp and Ollama"),
    ("llama3-8b train=lora ram=64GB", "not to training"),
    ("llama3-8b train=lora gpu=none", "not to training"),
    ("llama3-8b q4 cpu=ryzen<script>", "does not look like a CPU"),
])
def test_cpu_side_errors(text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        parse_command(text)
    check_message(err.value)
    assert message in err.value.message and err.value.hint


CPU_VALUES: dict[str, st.SearchStrategy[tuple[str, Any]]] = {
    "cpu": st.sampled_from(["7950x", "i9-13900k", "m2-max", "epyc-9654", "Ryzen 9 7950X"]).map(
        lambda c: (f'"{c}"' if " " in c else c, c)),
    "ram": st.tuples(st.integers(1, 2048), st.sampled_from(["GB", "G", "GiB", " GB"]),
                     st.one_of(st.none(), st.integers(400, 20_000))).map(
        lambda t: (f'"{t[0]}{t[1]}' + (f"@{t[2]}" if t[2] else "") + '"', (t[0] * GIB, t[2]))),
    "membw": st.integers(1, 20_000).map(lambda n: (f"{n}GB/s", float(n))),
    "ngl": st.integers(0, 1000).map(lambda n: (str(n), n)),
    "gpu": st.sampled_from(["none", "cpu", "rtx-3060", "24GB"]).map(lambda g: (g, g)),
}


@st.composite
def cpu_side_commands(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    words = ["llama3-8b", draw(st.sampled_from(["q4", "Q4_K_M", "q8_0"])),
             draw(st.sampled_from(["engine=llama.cpp", "engine=ollama", ""]))]
    expected: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(sorted(CPU_VALUES)), unique=True, max_size=5)):
        typed, value = draw(CPU_VALUES[key])
        name = draw(st.sampled_from((key, *KEY_ALIASES.get(key, ()))))
        words.append(f"{name}{draw(st.sampled_from(['=', ':', ' = ']))}{typed}")
        expected[key] = value
    return " ".join(w for w in words if w), expected


@settings(max_examples=200, deadline=None)
@given(cpu_side_commands())
def test_cpu_side_commands_round_trip(case: tuple[str, dict[str, Any]]) -> None:
    text, expected = case
    request = estimate(text).request
    for name, value in expected.items():
        if name == "ram":
            assert (request.ram, request.ram_speed) == value
        else:
            assert getattr(request, name) == value, name


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["cpu=", "ram=", "membw=", "ngl=", "gpu=none", "@", "64GB",
                                 "6000", "GB/s", "7950x", "-1", "1e309", "all", "engine=vllm",
                                 "train=lora", "'", " "]), max_size=10).map("".join))
def test_cpu_side_noise_gives_a_request_or_a_clear_error(tail: str) -> None:
    text = f"llama3-8b q4 {tail}"
    try:
        parse_command(text)
    except UserError as error:
        check_message(error)
