"""The Hub protocol in core, without a loop or a network: the typed records and their JSON
(core.hub_records), what model_info implies (core.hub_protocol), what each record means for the
answer (core.hub_resolve) and the Hub's extras on a report (core.answer)."""

from __future__ import annotations

from typing import Any

import pytest

from core.answer import hub_job, with_hub_details
from core.errors import ModelNotFound, UserError
from core.hub_protocol import (
    HubSite,
    RepoListing,
    base_model_of,
    group_gguf,
    params_by_dtype,
)
from core.hub_records import (
    GgufFile,
    HubBadConfig,
    HubBadToken,
    HubGated,
    HubNotFound,
    HubOk,
    HubRecord,
    HubTooLarge,
    Unread,
    record_from_json,
)
from core.hub_resolve import HubResolution, fallback, resolve_record
from core.parser import EstimateCommand, parse_command
from core.snapshot import entries

TINY = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
        "vocab_size": 1000, "torch_dtype": "bfloat16"}
SITE = HubSite("https://user:pw@hub.example")
GGUF = (GgufFile("Q8_0", ("m.Q8_0.gguf",), 2_000_000),
        GgufFile("Q4_K_M", ("m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf"),
                 1_200_000))

RECORDS: list[HubRecord] = [
    HubOk("org/Tiny", sha="abc", config=TINY, config_repo="org/Tiny", params={"BF16": 1, "F32": 2},
          params_from="safetensors metadata", gguf=GGUF, base_model="org/Base", gated=True,
          unread=(Unread("quantize_config", "the Hub kept failing (HTTP 500, retried)"),)),
    HubOk("org/Bare"),
    HubNotFound(("org/Near",)), HubNotFound(), HubGated(with_token=True), HubBadToken(),
    HubTooLarge("config.json", 2_000_000), HubBadConfig("not a JSON object"),
]


# --- records and their JSON -------------------------------------------------------------------


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_survives_its_json(record: HubRecord) -> None:
    import json

    assert record_from_json(json.loads(json.dumps(record.to_json()))) == record


@pytest.mark.parametrize("stored", [
    None, "text", [1, 2], {},
    # what fits wrote before the records were typed: a miss, fetched again
    {"kind": "ok", "id": "org/x", "sha": "abc", "config": TINY, "gguf": [], "gated": False},
    {"format": 1, "kind": "ok", "id": "org/x"},
    {"format": 2, "kind": "what"},
    {"format": 2, "kind": "ok", "id": 5, "gated": False, "gguf": [], "unread": []},
    {"format": 2, "kind": "ok", "id": "org/x", "gated": "no", "gguf": [], "unread": []},
    {"format": 2, "kind": "ok", "id": "org/x", "gated": False, "gguf": [["Q4_0"]], "unread": []},
    {"format": 2, "kind": "ok", "id": "org/x", "gated": False, "gguf": [],
     "unread": [["elsewhere", "why"]]},
    {"format": 2, "kind": "ok", "id": "org/x", "gated": False, "gguf": [], "unread": [],
     "params": {"BF16": "many"}},
    {"format": 2, "kind": "gated"},
    {"format": 2, "kind": "too_large", "file": "config.json", "limit": True},
])
def test_a_value_this_release_did_not_write_reads_as_a_miss(stored: Any) -> None:
    assert record_from_json(stored) is None


def test_the_total_is_the_sum_of_the_counts() -> None:
    assert HubOk("org/x", params={"BF16": 5, "F32": 7}).params_total == 12
    assert HubOk("org/x").params_total is None


# --- what model_info implies ------------------------------------------------------------------


def test_which_files_are_asked_for() -> None:
    unlisted = RepoListing("org/x")
    assert unlisted.wants_config() and unlisted.wants_safetensors_headers()
    assert not unlisted.wants_quantize_config(TINY)  # only when the repo lists it
    old_gptq = RepoListing("org/x", files=("config.json", "quantize_config.json"))
    assert old_gptq.wants_quantize_config(TINY)
    assert not old_gptq.wants_quantize_config({**TINY, "quantization_config": {}})
    counted = RepoListing("org/x", files=("config.json", "model.safetensors"), params={"BF16": 1})
    assert not counted.wants_safetensors_headers()
    gguf = RepoListing("org/x", files=("m.Q4_0.gguf", "mmproj-m-f16.gguf", "README.md"))
    assert gguf.gguf_files == ["m.Q4_0.gguf"] and not gguf.wants_config()
    assert not gguf.wants_safetensors_headers()


def test_reading_the_listing() -> None:
    assert params_by_dtype({"BF16": 3, "F32": True, "I8": "x"}) == {"BF16": 3}
    assert params_by_dtype(None) is None
    assert base_model_of(["org/a", "org/b"], None) == "org/a"
    assert base_model_of("not-an-id", ["base_model:quantized:org/c"]) == "org/c"
    assert base_model_of(None, ["gguf"]) is None
    names = ["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf", "m.Q8_0.gguf",
             "m.gguf"]
    assert group_gguf(names, {names[0]: 1, names[1]: 2, names[2]: 5}) == (
        GgufFile("Q4_K_M", tuple(names[:2]), 3), GgufFile("Q8_0", (names[2],), 5))
    assert group_gguf(names[:2], {names[0]: 1})[0].size_bytes is None  # a part's size unknown


# --- what a record means for the answer -------------------------------------------------------


@pytest.mark.parametrize(("record", "error", "message"), [
    (HubNotFound(("org/Tiny-2",)), ModelNotFound,
     "There is no model 'org/Tiny' on the Hub (or it is private)."),
    (HubGated(with_token=False), UserError,
     "org/Tiny is gated on the Hub: reading its config needs a token."),
    (HubGated(with_token=True), UserError,
     "org/Tiny is gated and the HF_TOKEN given has no access to it."),
    (HubBadToken(), UserError, "The Hub refused the HF_TOKEN given (invalid credentials)."),
    (HubTooLarge("config.json", 2_000_000), UserError,
     "The Hub's config.json for org/Tiny is larger than a config can be (2 MB); fits did not "
     "read it."),
    (HubBadConfig("truncated or not JSON"), UserError,
     "The Hub's config.json for org/Tiny is not a model config (truncated or not JSON)."),
])
def test_records_without_a_model_are_the_sentences_users_read(
        record: HubRecord, error: type[UserError], message: str) -> None:
    with pytest.raises(error) as info:
        resolve_record("org/Tiny", record, SITE)
    assert type(info.value) is error and info.value.message == message
    assert "pw" not in (info.value.hint or "")  # the endpoint's credentials stay out


def test_not_found_suggests_the_hubs_near_ids_and_a_token() -> None:
    with pytest.raises(ModelNotFound) as info:
        resolve_record("org/Tiny", HubNotFound(("org/Tiny-2",)), SITE)
    assert info.value.suggestions == ["org/Tiny-2"]
    assert info.value.hint == "Did you mean org/Tiny-2? A private repo needs HF_TOKEN."


def test_a_readable_repo_is_a_model_with_its_exact_count() -> None:
    record = HubOk("Org/Tiny", sha="s1", config=TINY, config_repo="Org/Tiny",
                   params={"BF16": 200_000})
    found = resolve_record("org/Tiny-Renamed", record, SITE)  # the Hub's redirect to its new id
    model = found.model
    assert (model.id, model.source, model.hub_params) == ("Org/Tiny", "hub", 200_000)
    assert model.notes[0] == "'org/Tiny-Renamed' is Org/Tiny on the Hub"
    assert model.notes[-1].startswith("exact parameter count from the Hub's safetensors "
                                      "metadata: 200,000; the architecture gives")
    assert resolve_record("org/Tiny-Renamed", record, SITE) is found  # per commit, built once


def test_parts_not_read_are_notes_after_the_rest() -> None:
    record = HubOk("org/Tiny", config=TINY, unread=(
        Unread("quantize_config", "the Hub kept failing (HTTP 500, retried)"),
        Unread("gguf_sizes", "the Hub did not answer in time")))
    notes = resolve_record("org/Tiny", record, SITE).model.notes
    assert notes[-2:] == (
        "the Hub's quantize_config.json could not be read: the Hub kept failing (HTTP 500, "
        "retried), so the weights are taken as unquantized (the config's dtype), not GPTQ",
        "the GGUF file sizes could not be read: the Hub did not answer in time, so they are "
        "not compared with the estimate")


def test_a_repo_without_config_is_sized_by_its_count_or_says_why_not() -> None:
    sized = resolve_record("org/G", HubOk("org/G", params={"GGUF": 1_100_000_000},
                                          params_from="GGUF metadata", gguf=GGUF), SITE)
    assert sized.model.source == "hub" and not sized.model.exact_params
    assert sized.gguf == GGUF and sized.model.notes[0].startswith("GGUF repo with Q8_0 ")
    lost = HubOk("org/G", base_model="org/Base",
                 unread=(Unread("base_config", "the Hub has no such model (or it is private)"),))
    with pytest.raises(UserError, match=r"config of its base model org/Base could not be read"):
        resolve_record("org/G", lost, SITE)
    with pytest.raises(UserError, match=r"has no config\.json and names no base model"):
        resolve_record("org/G", HubOk("org/G"), SITE)


def test_without_the_hub_the_snapshot_or_the_size_in_the_name() -> None:
    bundled = fallback("meta-llama/Llama-2-7b-hf", "is down").model
    assert bundled.source == "snapshot"
    assert bundled.notes[0] == "the Hub is down: answered from the bundled snapshot"
    sized = fallback("org/Cirrus-8B-Instruct", "is down").model
    assert sized.source == "size" and "size in the name, 8B" in sized.notes[0]
    with pytest.raises(ModelNotFound, match="The Hub is down, and the bundled snapshot"):
        fallback("org/Cirrus", "is down")


# --- the Hub's extras on a report -------------------------------------------------------------


def test_a_gguf_repo_is_answered_for_its_own_file_with_its_size() -> None:
    llama2 = entries()["meta-llama/llama-2-7b-hf"]
    found = resolve_record("org/Llama-2-7B-GGUF", HubOk(
        "org/Llama-2-7B-GGUF", sha="s2", config=llama2.config, config_repo=llama2.id,
        params={"GGUF": 6_738_415_616}, params_from="GGUF metadata",
        gguf=(GgufFile("Q4_K_M", ("llama-2-7b.Q4_K_M.gguf",), 4_081_004_224),)), SITE)
    command = parse_command("org/Llama-2-7B-GGUF gpu=8GB")
    assert isinstance(command, EstimateCommand)
    job = hub_job(command, found)
    assert job.request.quant == "Q4_K_M"
    assert job.notes[-1] == "a GGUF repo and no quantization given: its Q4_K_M file"
    report = with_hub_details(job.run(), found)
    hub = report.engine_details.hub
    assert hub is not None
    assert hub.gguf_files == ("llama-2-7b.Q4_K_M.gguf",)
    assert hub.gguf_file_bytes == 4_081_004_224
    assert hub.hub_params == 6_738_415_616
    assert report.assumptions[-1].startswith("the repo's Q4_K_M file is 3.8 GiB on the Hub; "
                                             "the estimate's weights total")


def test_a_model_the_hub_added_nothing_to_keeps_its_report() -> None:
    found = HubResolution(fallback("meta-llama/Llama-2-7b-hf", "is down").model)
    command = parse_command("meta-llama/Llama-2-7b-hf q4")
    assert isinstance(command, EstimateCommand)
    report = hub_job(command, found).run()
    assert with_hub_details(report, found) is report
