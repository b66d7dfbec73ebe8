"""The Hub path (adapters/hub, on core's Hub protocol) driven through the real huggingface_hub
client against the local fake Hub (tests/fakes/hub.py): what is fetched, how often, how fast, and
what a user reads when something goes wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

import huggingface_hub.constants
import pytest

from adapters.hub.answer import estimate_command_async
from adapters.hub.cache import DiskConfigCache, MemoryConfigCache, make_cache
from adapters.hub.resolve import resolve_hub, resolve_hub_details, resolve_model
from adapters.hub.retry import Deadline, with_retries
from adapters.hub.search import search_models
from adapters.hub.settings import HubSettings
from adapters.hub.storage import model_key
from core.errors import ModelNotFound, UserError
from core.hub_protocol import gguf_quant, validate_repo_id
from core.parser import EstimateCommand, parse_command
from core.snapshot import entries
from tests.fakes.hub import TOKEN, FakeHub, FakeRepo, count_params, llama_tensors

NIMBUS = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
          "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
          "intermediate_size": 8192, "vocab_size": 128256, "tie_word_embeddings": True,
          "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
NIMBUS_PARAMS = 1_235_814_400  # Llama-3.2-1B's shape, as transformers counts it
TINY = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
        "vocab_size": 1000, "torch_dtype": "bfloat16"}
SECRET = "hf_SECRETtokenNEVERtoBEshown42"


def build_fake() -> FakeHub:
    fake = FakeHub()
    fake.add(FakeRepo("fits-test/Nimbus-1B", config=NIMBUS, params={"BF16": NIMBUS_PARAMS},
                      downloads=900))
    fake.add(FakeRepo("fits-test/Nimbus-1B-Instruct", config=NIMBUS,
                      params={"BF16": NIMBUS_PARAMS}, downloads=500))
    fake.add(FakeRepo("fits-test/Tiny", config=TINY, tensors=llama_tensors(TINY),
                      api_safetensors=False))
    fake.add(FakeRepo("fits-test/TinySharded", config=TINY, tensors=llama_tensors(TINY), shards=3,
                      api_safetensors=False))
    fake.add(FakeRepo("fits-test/Nimbus-1B-GGUF", downloads=300,
                      gguf_files={"nimbus-1b.Q4_K_M.gguf": 807_694_464,
                                  "nimbus-1b.Q8_0.gguf": 1_321_083_008,
                                  "mmproj-nimbus-f16.gguf": 1_000},
                      gguf={"total": NIMBUS_PARAMS, "architecture": "llama"},
                      card_data={"base_model": "fits-test/Nimbus-1B"},
                      tags=["gguf", "base_model:quantized:fits-test/Nimbus-1B"]))
    fake.add(FakeRepo("fits-test/Llama-2-7B-GGUF",
                      gguf_files={"llama-2-7b.Q4_K_M.gguf": 4_081_004_224},
                      tags=["base_model:meta-llama/Llama-2-7b-hf"]))
    fake.add(FakeRepo("fits-test/Gated-1B", config=NIMBUS, params={"BF16": NIMBUS_PARAMS},
                      gated=True))
    fake.add(FakeRepo("fits-test/Private-1B", config=NIMBUS, private=True))
    fake.add(FakeRepo("fits-test/Custom-1B", config={**NIMBUS, "model_type": "nimbus",
                                                     "auto_map": {"AutoModel": "x.Nimbus"}},
                      params={"BF16": 1_300_000_000}))
    fake.add(FakeRepo("fits-test/Listy", config=None, files={"config.json": b"[1, 2, 3]"}))
    llama2 = entries()["meta-llama/llama-2-7b-hf"]  # a bundled model the Hub has too
    fake.add(FakeRepo(llama2.id, config=llama2.config, params={"F16": 6_738_415_616},
                      downloads=1000))
    return fake


@pytest.fixture(autouse=True)
def hub_home(tmp_path, monkeypatch):
    """huggingface_hub reads these at import; the test patches them where they are read."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)


@pytest.fixture
async def fake(aiohttp_server):
    hub = build_fake()
    server = await aiohttp_server(hub.app())
    hub.url = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    yield hub
    hub.release()  # slow answers end now, so the server closes at once


def settings_for(fake: FakeHub, **kw: Any) -> HubSettings:
    options: dict[str, Any] = {"deadline_s": 3.0, "backoff_s": 0.01, **kw}
    return HubSettings(endpoint=fake.url, **options)  # type: ignore[attr-defined]


# --- what is fetched -----------------------------------------------------------------------------


async def test_config_and_exact_count_in_two_requests_then_cached(fake: FakeHub) -> None:
    settings, cache = settings_for(fake), MemoryConfigCache()
    model = await resolve_hub("fits-test/Nimbus-1B", settings, cache)
    assert (model.id, model.source, model.exact_params) == ("fits-test/Nimbus-1B", "hub", True)
    assert model.spec.params == NIMBUS_PARAMS and model.hub_params == NIMBUS_PARAMS
    assert any("safetensors metadata: 1,235,814,400" in n for n in model.notes)
    assert fake.count("/api/models/fits-test/Nimbus-1B", "GET") == 1
    assert fake.count("config.json", "GET") == 1 and fake.total == 2
    again = await resolve_hub("FITS-TEST/nimbus-1b", settings, cache)  # ids are case-insensitive
    assert again.spec.params == NIMBUS_PARAMS and fake.total == 2


@pytest.mark.parametrize("repo", ["fits-test/Tiny", "fits-test/TinySharded"])
async def test_exact_count_from_safetensors_headers_when_the_api_lists_none(
        fake: FakeHub, repo: str) -> None:
    model = await resolve_hub(repo, settings_for(fake), MemoryConfigCache())
    expected = sum(count_params(llama_tensors(TINY)).values())
    assert model.hub_params == expected == model.spec.params
    assert any("safetensors headers" in n for n in model.notes)
    assert fake.count(".safetensors", "GET") >= 1  # Range reads of the headers


async def test_multimodal_config_with_text_config(fake: FakeHub) -> None:
    entry = entries()["llava-hf/llava-1.5-7b-hf"]
    fake.add(FakeRepo("fits-test/Llava-Copy", config=entry.config))
    model = await resolve_hub("fits-test/Llava-Copy", settings_for(fake), MemoryConfigCache())
    assert model.spec.params == resolve_hub_snapshot_params("llava-hf/llava-1.5-7b-hf")
    assert model.hub_params is None  # the fake lists no parameters for it


def resolve_hub_snapshot_params(repo_id: str) -> int:
    from core.resolve import resolve_offline

    return resolve_offline(repo_id).spec.params


async def test_quantization_config_and_packed_counts(fake: FakeHub) -> None:
    gptq = {**NIMBUS, "quantization_config": {"quant_method": "gptq", "bits": 4,
                                              "group_size": 128, "desc_act": False}}
    fake.add(FakeRepo("fits-test/Nimbus-1B-GPTQ", config=gptq,
                      params={"I32": 120_000_000, "F16": 300_000_000}))
    old = {**NIMBUS}
    fake.add(FakeRepo("fits-test/Nimbus-1B-OldGPTQ", config=old, files={
        "quantize_config.json": json.dumps({"bits": 4, "group_size": 128}).encode()}))
    settings, cache = settings_for(fake), MemoryConfigCache()
    model = await resolve_hub("fits-test/Nimbus-1B-GPTQ", settings, cache)
    assert model.quantization is not None and model.quantization["quant_method"] == "gptq"
    assert model.hub_params == 420_000_000
    assert any("packed quantized weights" in n for n in model.notes)
    older = await resolve_hub("fits-test/Nimbus-1B-OldGPTQ", settings, cache)
    assert older.quantization == {"quant_method": "gptq", "bits": 4, "group_size": 128}


async def test_gguf_repo_maps_to_its_base_model(fake: FakeHub) -> None:
    settings, cache = settings_for(fake), MemoryConfigCache()
    found = await resolve_hub_details("fits-test/Nimbus-1B-GGUF", settings, cache)
    assert found.model.spec.params == NIMBUS_PARAMS and found.model.hub_params == NIMBUS_PARAMS
    # the mmproj (vision projector) file is not a quantization of the model
    assert [(g.quant, g.size_bytes) for g in found.gguf] == [
        ("Q4_K_M", 807_694_464), ("Q8_0", 1_321_083_008)]
    assert any("base model fits-test/Nimbus-1B" in n for n in found.model.notes)
    assert fake.count("paths-info", "POST") == 1
    # the base is cached too: asking for it costs nothing more
    before = fake.total
    await resolve_hub("fits-test/Nimbus-1B", settings, cache)
    assert fake.total == before


async def test_gguf_base_in_the_snapshot_costs_no_request(fake: FakeHub) -> None:
    found = await resolve_hub_details("fits-test/Llama-2-7B-GGUF", settings_for(fake),
                                      MemoryConfigCache())
    assert found.model.spec.params == 6_738_415_616
    assert found.gguf[0].quant == "Q4_K_M"
    assert fake.count("meta-llama") == 0


async def test_gguf_repo_answer_uses_its_own_file(fake: FakeHub) -> None:
    command = parse_command("fits-test/Nimbus-1B-GGUF gpu=8GB")
    assert isinstance(command, EstimateCommand)
    report = await estimate_command_async(command, settings_for(fake), MemoryConfigCache())
    assert report.engine == "llama.cpp" and report.model.weight_format.startswith("Q4_K_M")
    hub = report.engine_details.hub
    assert hub is not None
    assert hub.gguf_file_bytes == 807_694_464 and hub.hub_params == NIMBUS_PARAMS


async def test_gguf_repo_without_base_uses_its_exact_count_or_says_so(fake: FakeHub) -> None:
    fake.add(FakeRepo("fits-test/Orphan-GGUF", gguf_files={"orphan.Q4_0.gguf": 700_000_000},
                      gguf={"total": 1_100_000_000, "architecture": "llama"}))
    fake.add(FakeRepo("fits-test/Bare-GGUF", gguf_files={"bare.Q4_0.gguf": 700_000_000}))
    settings, cache = settings_for(fake), MemoryConfigCache()
    model = await resolve_hub("fits-test/Orphan-GGUF", settings, cache)
    assert model.source == "hub" and not model.exact_params and model.hub_params == 1_100_000_000
    assert abs(model.spec.params - 1_100_000_000) < 0.1 * 1_100_000_000
    with pytest.raises(UserError, match=r"has no config\.json and names no base model"):
        await resolve_hub("fits-test/Bare-GGUF", settings, cache)


async def test_bare_names_ask_the_hub_only_without_a_snapshot_near_miss(fake: FakeHub) -> None:
    settings, cache = settings_for(fake), MemoryConfigCache()
    with pytest.raises(ModelNotFound) as info:
        await resolve_model("lama-2-7b", settings, cache)
    assert info.value.suggestions and fake.total == 0
    with pytest.raises(ModelNotFound) as info:
        await resolve_model("nimbus", settings, cache)
    assert info.value.suggestions[0] == "fits-test/Nimbus-1B"


def test_gguf_file_names() -> None:
    assert gguf_quant("llama-2-7b.Q4_K_M.gguf") == "Q4_K_M"
    assert gguf_quant("Q8_0/model-q8_0-00001-of-00002.gguf") == "Q8_0"
    assert gguf_quant("Meta-Llama-3-8B-Instruct-IQ4_XS.gguf") == "IQ4_XS"
    assert gguf_quant("model-bf16.gguf") == "BF16"
    assert gguf_quant("model.gguf") is None


# --- failures and what the user reads ----------------------------------------------------------


async def test_not_found_suggests_from_snapshot_and_hub_search(fake: FakeHub) -> None:
    with pytest.raises(ModelNotFound) as info:
        await resolve_hub("fits-test/Nimbus", settings_for(fake), MemoryConfigCache())
    assert info.value.message == "There is no model 'fits-test/Nimbus' on the Hub (or it is private)."
    assert "fits-test/Nimbus-1B" in info.value.suggestions
    assert info.value.hint and info.value.hint.startswith("Did you mean")


async def test_private_repo_without_token_reads_as_not_found(fake: FakeHub) -> None:
    with pytest.raises(ModelNotFound, match="or it is private"):
        await resolve_hub("fits-test/Private-1B", settings_for(fake), MemoryConfigCache())
    model = await resolve_hub("fits-test/Private-1B", settings_for(fake, token=TOKEN),
                              MemoryConfigCache())
    assert model.spec.params == NIMBUS_PARAMS


async def test_gated_without_token_says_set_hf_token_and_accept_the_licence(fake: FakeHub) -> None:
    with pytest.raises(UserError) as info:
        await resolve_hub("fits-test/Gated-1B", settings_for(fake), MemoryConfigCache())
    assert "gated" in info.value.message
    assert info.value.hint and "HF_TOKEN" in info.value.hint and "licence" in info.value.hint
    fake.tokens.add(SECRET)  # a valid token whose account did not accept the licence
    with pytest.raises(UserError, match="has no access"):
        await resolve_hub("fits-test/Gated-1B", settings_for(fake, token=SECRET),
                          MemoryConfigCache())
    model = await resolve_hub("fits-test/Gated-1B", settings_for(fake, token=TOKEN),
                              MemoryConfigCache())
    assert model.hub_params == NIMBUS_PARAMS
    assert f"Bearer {TOKEN}" in fake.auth_seen  # the token is passed explicitly, not from env


async def test_5xx_after_retries_falls_back_to_the_snapshot(fake: FakeHub) -> None:
    fake.fail(500, match="/api/models/")
    model = await resolve_hub("meta-llama/Llama-2-7b-hf", settings_for(fake), MemoryConfigCache())
    assert model.source == "snapshot" and model.spec.params == 6_738_415_616
    assert model.notes[0] == ("the Hub kept failing (HTTP 500, retried): answered from the "
                              "bundled snapshot")
    assert fake.count("/api/models/meta-llama", "GET") == 3


async def test_5xx_falls_back_to_the_size_in_the_name_or_says_what_happened(fake: FakeHub) -> None:
    fake.fail(503)
    settings = settings_for(fake)
    model = await resolve_hub("fits-test/Cirrus-8B-Instruct", settings, MemoryConfigCache())
    assert model.source == "size" and not model.exact_params
    assert "estimated from the size in the name, 8B" in model.notes[0]
    with pytest.raises(ModelNotFound) as info:
        await resolve_hub("fits-test/Cirrus", settings, MemoryConfigCache())
    assert info.value.message == ("The Hub kept failing (HTTP 503, retried), and the bundled "
                                  "snapshot does not have fits-test/Cirrus.")


@pytest.mark.parametrize(("status", "code", "match", "error", "message"), [
    (401, None, "/api/models/", ModelNotFound, "There is no model 'fits-test/Nimbus-1B' on the Hub"),
    (404, "RepoNotFound", "/api/models/", ModelNotFound, "There is no model"),
    (401, "GatedRepo", "/api/models/", UserError, "fits-test/Nimbus-1B is gated on the Hub"),
    (403, "GatedRepo", "config.json", UserError, "fits-test/Nimbus-1B is gated on the Hub"),
])
async def test_injected_error_answers_map_to_messages(fake: FakeHub, status: int, code: str | None,
                                                      match: str, error: type[Exception],
                                                      message: str) -> None:
    fake.fail(status, match=match, error_code=code)
    with pytest.raises(error) as info:
        await resolve_hub("fits-test/Nimbus-1B", settings_for(fake), MemoryConfigCache())
    assert str(info.value).startswith(message)


async def test_429_is_retried_with_backoff_then_answers(fake: FakeHub) -> None:
    fake.fail(429, match="/api/models/", times=2, retry_after=0)
    model = await resolve_hub("fits-test/Nimbus-1B", settings_for(fake), MemoryConfigCache())
    assert model.source == "hub" and fake.count("/api/models/fits-test", "GET") == 3


async def test_failures_are_not_cached(fake: FakeHub) -> None:
    fake.fail(500, match="config.json", times=3)
    settings, cache = settings_for(fake), MemoryConfigCache()
    first = await resolve_hub("fits-test/Nimbus-1B", settings, cache)
    assert first.source == "size"  # 1B in the name
    second = await resolve_hub("fits-test/Nimbus-1B", settings, cache)
    assert second.source == "hub" and second.hub_params == NIMBUS_PARAMS


async def test_slow_hub_answers_at_the_deadline(fake: FakeHub) -> None:
    fake.slow(30)
    settings = settings_for(fake, deadline_s=0.3)
    start = time.perf_counter()
    model = await resolve_hub("fits-test/Nimbus-1B", settings, MemoryConfigCache())
    elapsed = time.perf_counter() - start
    assert elapsed < 0.3 + 0.5, elapsed  # the fake holds the answer for 30 s
    assert model.source == "size" and "did not answer within 0.3 s" in model.notes[0]


async def test_unreachable_hub_falls_back(unused_tcp_port) -> None:
    settings = HubSettings(endpoint=f"http://127.0.0.1:{unused_tcp_port}", deadline_s=2)
    model = await resolve_hub("meta-llama/Llama-2-7b-hf", settings, MemoryConfigCache())
    assert model.source == "snapshot"
    assert model.notes[0].startswith("the Hub could not be reached (ConnectError)")


async def test_truncated_json_from_the_api_falls_back(fake: FakeHub) -> None:
    fake.truncate(match="/api/models/")
    model = await resolve_hub("meta-llama/Llama-2-7b-hf", settings_for(fake), MemoryConfigCache())
    assert model.source == "snapshot"
    assert model.notes[0].startswith("the Hub sent an answer fits could not read")


@pytest.mark.parametrize(("setup", "message"), [
    (lambda f: f.truncate(match="config.json"),
     "The Hub's config.json for fits-test/Nimbus-1B is not a model config (truncated or not JSON)."),
    (lambda f: f.huge(50_000_000, match="config.json"),
     "The Hub's config.json for fits-test/Nimbus-1B is larger than a config can be (2 MB); "
     "fits did not read it."),
    (lambda f: f.huge(50_000_000, match="config.json", declare_length=False),
     "The Hub's config.json for fits-test/Nimbus-1B is larger than a config can be (2 MB); "
     "fits did not read it."),
])
async def test_bad_config_files_are_refused(fake: FakeHub, setup: Any, message: str) -> None:
    setup(fake)
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        await resolve_hub("fits-test/Nimbus-1B", settings_for(fake), MemoryConfigCache())
    assert info.value.message == message
    assert time.perf_counter() - start < 2.0


async def test_a_config_that_is_not_an_object_is_refused(fake: FakeHub) -> None:
    with pytest.raises(UserError, match="not a JSON object"):
        await resolve_hub("fits-test/Listy", settings_for(fake), MemoryConfigCache())


async def test_custom_code_config_is_data_only(fake: FakeHub) -> None:
    model = await resolve_hub("fits-test/Custom-1B", settings_for(fake), MemoryConfigCache())
    assert any("runs none of it" in n for n in model.notes)
    assert model.hub_params == 1_300_000_000


@pytest.mark.parametrize("repo_id", [
    "a/b/c", "-bad/name", "org/name-", "org/na--me", "org/na..me", "org/name.git", "org/",
    "/name", "org/na me", "x" * 97 + "/y", "org/naïve", "justaname",
])
async def test_invalid_ids_are_refused_before_any_request(fake: FakeHub, repo_id: str) -> None:
    with pytest.raises(UserError, match=r"not a .*Hub model id"):
        await resolve_hub(repo_id, settings_for(fake), MemoryConfigCache())
    assert fake.total == 0


def test_valid_ids_pass() -> None:
    for repo_id in ("meta-llama/Llama-3.1-8B", "a/b", "Org_1/model.v2-final", "x" * 96 + "/y"):
        assert validate_repo_id(repo_id) == repo_id


async def test_tokens_never_appear_in_messages_or_logs(fake: FakeHub, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake.tokens.add(SECRET)
    settings = settings_for(fake, token=SECRET, deadline_s=0.5)
    assert SECRET not in repr(settings)
    texts: list[str] = []
    for repo in ("fits-test/Gated-1B", "fits-test/Missing", "fits-test/Private-1B"):
        with pytest.raises(UserError) as info:
            await resolve_hub(repo, settings, MemoryConfigCache())
        texts += [str(info.value), info.value.hint or ""]
    fake.fail(500)
    model = await resolve_hub("fits-test/Storm-7B", settings, MemoryConfigCache())
    texts += list(model.notes)
    assert f"Bearer {SECRET}" in fake.auth_seen
    assert all(SECRET not in t for t in texts)
    assert SECRET not in caplog.text


async def test_an_unknown_token_is_named_as_the_problem(fake: FakeHub) -> None:
    with pytest.raises(UserError) as info:
        await resolve_hub("fits-test/Nimbus-1B", settings_for(fake, token=SECRET),
                          MemoryConfigCache())
    assert info.value.message == "The Hub refused the HF_TOKEN given (invalid credentials)."
    assert SECRET not in str(info.value)


async def test_credentials_in_the_endpoint_stay_out_of_messages(fake: FakeHub) -> None:
    url = fake.url.replace("http://", "http://user:pw@")  # type: ignore[attr-defined]
    settings = HubSettings(endpoint=url, deadline_s=3)
    with pytest.raises(UserError) as info:
        await resolve_hub("fits-test/Gated-1B", settings, MemoryConfigCache())
    assert "pw" not in (info.value.hint or "") and "user:" not in (info.value.hint or "")


# --- a part that could not be read: the answer comes, and says so --------------------------------

OLD_GPTQ = {"quantize_config.json": json.dumps({"bits": 4, "group_size": 128}).encode()}
QUANTIZE_UNREAD = "the Hub's quantize_config.json could not be read: "
AS_UNQUANTIZED = ", so the weights are taken as unquantized (the config's dtype), not GPTQ"


def add_old_gptq(fake: FakeHub) -> None:
    fake.add(FakeRepo("fits-test/Nimbus-1B-OldGPTQ", config=NIMBUS, files=OLD_GPTQ,
                      params={"I32": 120_000_000, "F16": 300_000_000}))


async def test_a_failing_quantize_config_is_a_note_not_a_silent_16_bit_answer(
        fake: FakeHub) -> None:
    add_old_gptq(fake)
    fake.fail(500, match="quantize_config.json")
    command = parse_command("fits-test/Nimbus-1B-OldGPTQ gpu=24GB")
    assert isinstance(command, EstimateCommand)
    report = await estimate_command_async(command, settings_for(fake), MemoryConfigCache())
    assert report.model.source == "hub"
    note = QUANTIZE_UNREAD + "the Hub kept failing (HTTP 500, retried)" + AS_UNQUANTIZED
    assert note in report.assumptions


async def test_a_slow_quantize_config_costs_its_note_not_the_answer(fake: FakeHub) -> None:
    add_old_gptq(fake)
    fake.slow(30, match="quantize_config.json")
    start = time.perf_counter()
    model = await resolve_hub("fits-test/Nimbus-1B-OldGPTQ", settings_for(fake, deadline_s=1.0),
                              MemoryConfigCache())
    assert time.perf_counter() - start < 1.0 + 0.5
    assert model.source == "hub" and model.quantization is None  # the config was kept
    assert QUANTIZE_UNREAD + "the Hub did not answer in time" + AS_UNQUANTIZED in model.notes


async def test_a_quantize_config_that_is_not_json_is_a_note(fake: FakeHub) -> None:
    add_old_gptq(fake)
    fake.truncate(match="quantize_config.json")
    model = await resolve_hub("fits-test/Nimbus-1B-OldGPTQ", settings_for(fake),
                              MemoryConfigCache())
    assert (QUANTIZE_UNREAD + "the Hub sent a quantize_config.json that is truncated or not JSON"
            + AS_UNQUANTIZED) in model.notes


async def test_a_partly_read_repo_is_cached_briefly_then_read_again(fake: FakeHub) -> None:
    add_old_gptq(fake)
    fake.fail(500, match="quantize_config.json", times=3)  # every try of the first resolve
    settings, cache = settings_for(fake, negative_ttl_s=0.2), MemoryConfigCache()
    first = await resolve_hub("fits-test/Nimbus-1B-OldGPTQ", settings, cache)
    assert first.quantization is None and any(QUANTIZE_UNREAD in n for n in first.notes)
    assert (await resolve_hub("fits-test/Nimbus-1B-OldGPTQ", settings, cache)) == first
    await asyncio.sleep(0.25)
    again = await resolve_hub("fits-test/Nimbus-1B-OldGPTQ", settings, cache)
    assert again.quantization == {"quant_method": "gptq", "bits": 4, "group_size": 128}
    assert not any(QUANTIZE_UNREAD in n for n in again.notes)


async def test_failing_safetensors_headers_are_a_note(fake: FakeHub) -> None:
    fake.fail(500, match=".safetensors")
    model = await resolve_hub("fits-test/Tiny", settings_for(fake), MemoryConfigCache())
    assert model.source == "hub" and model.hub_params is None
    assert ("the safetensors headers could not be read: the Hub kept failing (HTTP 500, "
            "retried), so the parameter count is the architecture's, not the checkpoint's"
            ) in model.notes


async def test_failing_gguf_sizes_are_a_note(fake: FakeHub) -> None:
    fake.fail(500, match="paths-info")
    found = await resolve_hub_details("fits-test/Nimbus-1B-GGUF", settings_for(fake),
                                      MemoryConfigCache())
    assert [(g.quant, g.size_bytes) for g in found.gguf] == [("Q4_K_M", None), ("Q8_0", None)]
    assert ("the GGUF file sizes could not be read: the Hub kept failing (HTTP 500, retried), "
            "so they are not compared with the estimate") in found.model.notes


async def test_a_failing_base_model_config_is_a_note(fake: FakeHub) -> None:
    fake.fail(500, match="fits-test/Nimbus-1B/resolve/")  # the base's config.json only
    settings, cache = settings_for(fake), MemoryConfigCache()
    model = await resolve_hub("fits-test/Nimbus-1B-GGUF", settings, cache)
    assert model.source == "hub" and not model.exact_params
    assert model.hub_params == NIMBUS_PARAMS  # sized by the GGUF metadata's exact count
    assert ("the config of its base model fits-test/Nimbus-1B could not be read: the Hub kept "
            "failing (HTTP 500, retried), so the architecture is a Llama-style stand-in"
            ) in model.notes


async def test_a_gguf_repo_whose_base_cannot_be_read_says_so(fake: FakeHub) -> None:
    fake.add(FakeRepo("fits-test/Lost-GGUF", gguf_files={"lost.Q4_0.gguf": 700_000_000},
                      card_data={"base_model": "fits-test/Gone-1B"}))
    with pytest.raises(UserError) as info:
        await resolve_hub("fits-test/Lost-GGUF", settings_for(fake), MemoryConfigCache())
    assert info.value.message == (
        "fits-test/Lost-GGUF on the Hub has no config.json, and the config of its base model "
        "fits-test/Gone-1B could not be read: the Hub has no such model (or it is private).")


async def test_a_failing_did_you_mean_search_is_logged(fake: FakeHub, caplog) -> None:
    # The search only, not the repo's model_info; a 400, which huggingface_hub does not retry on
    # its own (a thread still retrying after the test would close its shared client under the
    # next test).
    fake.fail(400, match="/api/models", exact=True)
    with caplog.at_level(logging.WARNING, logger="fits.hub"), \
            pytest.raises(ModelNotFound) as info:
        await resolve_hub("fits-test/Nimbus", settings_for(fake, deadline_s=1.0),
                          MemoryConfigCache())
    # the answer is still "not found", with the snapshot's suggestions alone
    assert info.value.message.startswith("There is no model 'fits-test/Nimbus' on the Hub")
    assert "fits-test/Nimbus-1B" not in info.value.suggestions
    assert ("no Hub suggestions for fits-test/Nimbus: the Hub refused the request (HTTP 400)"
            in caplog.text)


async def test_an_unexpected_client_error_is_logged_and_falls_back(fake: FakeHub, monkeypatch,
                                                                   caplog) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in the client")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", broken)
    with caplog.at_level(logging.WARNING, logger="fits.hub"):
        model = await resolve_hub("meta-llama/Llama-2-7b-hf", settings_for(fake),
                                  MemoryConfigCache())
    assert model.source == "snapshot"
    assert model.notes[0] == ("the Hub failed in an unexpected way (RuntimeError): answered from "
                              "the bundled snapshot")
    assert "a bug in the client" in caplog.text  # the traceback is in the log


# --- cache, single flight, deadline --------------------------------------------------------------


async def test_100_concurrent_requests_make_one_upstream_call(fake: FakeHub) -> None:
    fake.slow(0.2, match="/api/models/", times=1)  # keep the first call in flight
    settings, cache = settings_for(fake), MemoryConfigCache()
    models = await asyncio.gather(*(resolve_hub("fits-test/Nimbus-1B", settings, cache)
                                    for _ in range(100)))
    assert {m.hub_params for m in models} == {NIMBUS_PARAMS}, models[0].notes
    assert fake.count("config.json", "GET") == 1
    assert fake.count("/api/models/fits-test/Nimbus-1B", "GET") == 1
    assert cache.in_flight() == 0


async def test_concurrent_waiters_all_stop_at_the_deadline(fake: FakeHub) -> None:
    fake.slow(30)
    settings, cache = settings_for(fake, deadline_s=0.3), MemoryConfigCache()
    start = time.perf_counter()
    models = await asyncio.gather(*(resolve_hub("fits-test/Nimbus-1B", settings, cache)
                                    for _ in range(20)))
    assert time.perf_counter() - start < 0.3 + 0.5
    assert {m.source for m in models} == {"size"}
    assert fake.count("/api/models/", "GET") == 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_call(fake: FakeHub) -> None:
    fake.slow(0.2, match="/api/models/", times=1)
    settings, cache = settings_for(fake), MemoryConfigCache()
    first = asyncio.create_task(resolve_hub("fits-test/Nimbus-1B", settings, cache))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(resolve_hub("fits-test/Nimbus-1B", settings, cache))
    await asyncio.sleep(0.01)
    first.cancel()
    assert (await second).hub_params == NIMBUS_PARAMS
    assert fake.count("/api/models/", "GET") == 1


async def test_negative_answers_are_cached_shorter(fake: FakeHub) -> None:
    settings = settings_for(fake, negative_ttl_s=0.2)
    cache = MemoryConfigCache()
    for _ in range(3):
        with pytest.raises(ModelNotFound):
            await resolve_hub("fits-test/Gone", settings, cache)
    assert fake.count("/api/models/fits-test/Gone") == 1
    await asyncio.sleep(0.25)
    with pytest.raises(ModelNotFound):
        await resolve_hub("fits-test/Gone", settings, cache)
    assert fake.count("/api/models/fits-test/Gone") == 2


async def test_memory_cache_expires_and_is_bounded() -> None:
    cache = MemoryConfigCache(maxsize=2)
    await cache.set("a", 1, 0.05)
    await cache.set("b", 2, 60)
    assert await cache.get("a") == 1
    await asyncio.sleep(0.06)
    assert await cache.get("a") is None
    await cache.set("c", 3, 60)
    await cache.set("d", 4, 60)
    assert len(cache) == 2 and await cache.get("d") == 4


async def test_disk_cache_survives_the_process(tmp_path) -> None:
    first = DiskConfigCache(tmp_path)
    await first.set("k", {"x": [1, 2]}, 60)
    await first.set("old", 1, 0.01)
    second = DiskConfigCache(tmp_path)
    assert await second.get("k") == {"x": [1, 2]}
    await asyncio.sleep(0.02)
    assert await second.get("old") is None and await second.get("missing") is None


async def test_an_old_or_foreign_cached_value_is_a_miss(fake: FakeHub, tmp_path) -> None:
    settings = settings_for(fake)
    key = model_key(settings, "fits-test/Nimbus-1B")
    old_shape = {"kind": "ok", "id": "fits-test/Nimbus-1B", "config": TINY, "gguf": []}
    for cache in (MemoryConfigCache(), DiskConfigCache(tmp_path / "d")):
        for stored in (old_shape, {**old_shape, "format": 2, "gated": "no"}, "x", [1]):
            await cache.set(key, stored, 60)
            model = await resolve_hub("fits-test/Nimbus-1B", settings, cache)
            assert model.spec.params == NIMBUS_PARAMS  # fetched again, not read from the value
    (tmp_path / "d" / "junk.json").write_text("{not json")
    assert fake.count("config.json", "GET") == 8


async def test_a_disk_cache_that_cannot_write_warns_once(tmp_path, caplog) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    cache = DiskConfigCache(blocked / "cache")  # under a file: every write fails
    with caplog.at_level(logging.WARNING, logger="fits.hub"):
        await cache.set("a", 1, 60)
        await cache.set("b", 2, 60)
    assert await cache.get("a") == 1  # the in-memory front still answers
    warnings = [r for r in caplog.records if "FITS_CACHE_DIR" in r.getMessage()]
    assert len(warnings) == 1 and "later runs fetch again" in warnings[0].getMessage()


async def test_retries_stop_before_the_deadline() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise OSError("boom")

    start = time.perf_counter()
    with pytest.raises(OSError):
        await with_retries(failing, retryable=lambda _: 5.0, deadline=Deadline(0.5), attempts=5)
    assert calls == 1 and time.perf_counter() - start < 0.5  # a 5 s Retry-After cannot fit
    calls = 0
    with pytest.raises(OSError):
        await with_retries(failing, retryable=lambda _: 0.0, deadline=Deadline(5), attempts=3,
                           base_delay_s=0.01)
    assert calls == 3


# --- offline -----------------------------------------------------------------------------------


async def test_offline_never_touches_the_network(fake: FakeHub, tmp_path) -> None:
    settings = settings_for(fake, offline=True)
    cache = MemoryConfigCache()
    found = await resolve_model("meta-llama/Llama-2-7b", settings, cache)
    assert found.model.source == "snapshot"
    with pytest.raises(ModelNotFound) as info:
        await resolve_model("fits-test/Nimbus", settings, cache)
    assert "HF_HUB_OFFLINE=1" in (info.value.hint or "")
    sized = await resolve_model("fits-test/Nimbus-1B", settings, cache)
    assert sized.model.source == "size" and sized.model.spec.params < 1.5e9
    assert "HF_HUB_OFFLINE=1" in sized.model.notes[0] and "size in the name, 1B" in sized.model.notes[0]
    assert await search_models("nimbus", settings, cache) == []
    assert fake.total == 0


async def test_offline_reuses_what_an_online_run_cached_on_disk(fake: FakeHub, tmp_path) -> None:
    online = settings_for(fake, cache_dir=str(tmp_path / "c"))
    await resolve_hub("fits-test/Nimbus-1B", online, make_cache(online))
    seen = fake.total
    offline = settings_for(fake, cache_dir=str(tmp_path / "c"), offline=True)
    found = await resolve_model("fits-test/Nimbus-1B", offline, make_cache(offline))
    assert found.model.hub_params == NIMBUS_PARAMS and fake.total == seen
    assert found.model.notes[0].startswith("offline (HF_HUB_OFFLINE=1)")


async def test_huggingface_hub_own_offline_flag_is_a_fallback(fake: FakeHub, monkeypatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    model = await resolve_hub("meta-llama/Llama-2-7b-hf", settings_for(fake), MemoryConfigCache())
    assert model.source == "snapshot" and "offline mode" in model.notes[0]
    assert fake.total == 0


def test_settings_from_env() -> None:
    settings = HubSettings.from_env({"HF_ENDPOINT": "http://hub.local:8080/", "HF_TOKEN": SECRET,
                                     "HF_HUB_OFFLINE": "1", "FITS_CACHE_DIR": "/tmp/x",
                                     "FITS_HUB_DEADLINE_S": "2.5"})
    assert settings.endpoint == "http://hub.local:8080" and settings.token == SECRET
    assert settings.offline and settings.cache_dir == "/tmp/x" and settings.deadline_s == 2.5
    default = HubSettings.from_env({})
    assert default.endpoint == "https://huggingface.co" and default.token is None
    assert not default.offline and default.deadline_s == 5.0
    with pytest.raises(UserError, match="HF_ENDPOINT"):
        HubSettings.from_env({"HF_ENDPOINT": "ftp://nope"})


# --- search ------------------------------------------------------------------------------------


async def test_search_lists_snapshot_then_hub_and_caches(fake: FakeHub) -> None:
    settings, cache = settings_for(fake), MemoryConfigCache()
    ids = await search_models("llama-2-7b", settings, cache, limit=10)
    # the bundled matches, then the Hub's (without repeats), then the bundled near misses
    assert ids[:3] == ["meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-chat-hf",
                       "fits-test/Llama-2-7B-GGUF"]
    assert len(ids) == 10 and len({i.lower() for i in ids}) == 10
    assert await search_models("llama-2-7b", settings, cache, limit=10) == ids
    assert fake.count("/api/models", "GET") == 1
    nimbus = await search_models("nimbus", settings, cache)
    assert nimbus[:3] == ["fits-test/Nimbus-1B", "fits-test/Nimbus-1B-Instruct",
                          "fits-test/Nimbus-1B-GGUF"]  # most downloaded first


async def test_search_answers_within_its_deadline(fake: FakeHub) -> None:
    fake.slow(30, match="/api/models")
    settings = settings_for(fake, search_deadline_s=0.3)
    start = time.perf_counter()
    ids = await search_models("qwen3", settings, MemoryConfigCache())
    assert time.perf_counter() - start < 0.3 + 0.5
    assert ids and all(i.startswith("Qwen/") for i in ids[:3])


# --- the answer and the CLI ----------------------------------------------------------------------


async def test_estimate_uses_the_snapshot_without_the_hub(fake: FakeHub) -> None:
    command = parse_command("meta-llama/Llama-2-7b q4 gpu=24GB")
    assert isinstance(command, EstimateCommand)
    report = await estimate_command_async(command, settings_for(fake), MemoryConfigCache())
    assert report.model.source == "snapshot" and fake.total == 0


async def _fits(fake: FakeHub, tmp_path, *args: str, **env: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("HF_", "HUGGING_FACE", "FITS_"))}
    full = {**clean, "HF_ENDPOINT": fake.url, "HF_HOME": str(tmp_path / "hf"), **env}  # type: ignore[attr-defined]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=full,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_reports_a_hub_model_with_its_exact_count(fake: FakeHub, tmp_path) -> None:
    code, out, err = await _fits(fake, tmp_path, "--json", "fits-test/Nimbus-1B q4 gpu=24GB")
    assert code == 0, err
    report = json.loads(out)
    assert report["model"]["source"] == "hub" and report["model"]["id"] == "fits-test/Nimbus-1B"
    assert report["model"]["params"] == NIMBUS_PARAMS
    assert report["engine_details"]["hub_params"] == NIMBUS_PARAMS
    assert any("1,235,814,400" in a for a in report["assumptions"])
    assert err == ""


async def test_cli_offline_never_touches_the_hub(fake: FakeHub, tmp_path) -> None:
    code, out, err = await _fits(fake, tmp_path, "fits-test/Nimbus q4", HF_HUB_OFFLINE="1")
    assert code == 2 and out == ""
    assert err.startswith("error: fits does not know the model 'fits-test/Nimbus'.")
    code, out, err = await _fits(fake, tmp_path, "fits-test/Nimbus-1B q4", HF_HUB_OFFLINE="1")
    assert code == 0 and "the size in the name, 1B" in out
    code, out, _ = await _fits(fake, tmp_path, "models", "nimbus", HF_HUB_OFFLINE="1")
    assert "No model matches 'nimbus'." in out and "only bundled models are listed" in out
    assert fake.total == 0


async def test_cli_models_lists_hub_results(fake: FakeHub, tmp_path) -> None:
    code, out, err = await _fits(fake, tmp_path, "models", "nimbus")
    assert code == 0, err
    assert out.split()[:2] == ["fits-test/Nimbus-1B", "fits-test/Nimbus-1B-Instruct"]


async def test_cli_answers_on_time_when_the_hub_hangs(fake: FakeHub, tmp_path) -> None:
    fake.slow(60)
    start = time.perf_counter()
    code, out, err = await _fits(fake, tmp_path, "--json", "fits-test/Nimbus-1B q4",
                                 FITS_HUB_DEADLINE_S="0.5")
    elapsed = time.perf_counter() - start
    assert code == 0, err
    report = json.loads(out)
    assert report["model"]["source"] == "size"
    assert any("did not answer within 0.5 s" in a for a in report["assumptions"])
    assert elapsed < 10  # the abandoned request does not hold the process for its 60 s
