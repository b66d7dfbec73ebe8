"""Configs from anyone (an upload, a POST body, a Hub repo) are checked before any builder reads
them: a bad one is one 400 sentence naming the field, never a hang, a 500 or a confident "fits".
Through the real service (aiohttp's test client) and the real Hub client against the fake Hub."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from core.config_check import MAX_LAYERS, check_config
from core.errors import UserError
from core.snapshot import entries
from tests.test_service import make_settings

API = "/api/v1/fits"
LLAMA = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 11008,
         "vocab_size": 32000, "max_position_embeddings": 4096}
# Long enough for any honest answer on a loaded CI machine; a hang fails here instead of forever.
HANG_S = 60


def test_every_bundled_config_passes() -> None:
    for entry in entries().values():
        check_config(entry.config)


async def post(client: Any, config: Any, q: str = "my-model q4 gpu=24GB") -> tuple[int, dict]:
    # json.dumps writes NaN and Infinity, as a hostile client would send them.
    body = json.dumps({"q": q, "config": config})
    resp = await asyncio.wait_for(client.post(API, data=body), HANG_S)
    return resp.status, await resp.json()


@pytest.fixture
async def client(aiohttp_client):
    return await aiohttp_client(create_app(make_settings()))


@pytest.mark.parametrize(("change", "field"), [
    ({"max_position_embeddings": 1.5}, "max_position_embeddings"),  # looped forever
    ({"max_position_embeddings": 4096.5}, "max_position_embeddings"),
    ({"num_hidden_layers": 10**9}, "num_hidden_layers"),  # ~2 GB of tensors, then abort
    ({"num_hidden_layers": 10_000}, "num_hidden_layers"),  # ~8 s on the event loop
    ({"num_hidden_layers": -4}, "num_hidden_layers"),
    ({"hidden_size": -4096}, "hidden_size"),
    ({"intermediate_size": 0}, "intermediate_size"),
    ({"vocab_size": 10**47}, "vocab_size"),
    ({"hidden_size": 1e308}, "hidden_size"),
    ({"hidden_size": math.inf}, "hidden_size"),
    ({"hidden_size": math.nan}, "hidden_size"),
    ({"rope_theta": math.inf}, "rope_theta"),
    ({"hidden_size": "4096"}, "hidden_size"),
    ({"num_attention_heads": 30}, "attention heads"),  # 4096 / 30 is no head width
    ({"num_key_value_heads": 5}, "key/value heads"),
    ({"num_key_value_heads": 64}, "key/value heads"),
    ({"text_config": {"hidden_size": -1}}, "text_config.hidden_size"),
    ({"quantization_config": {"quant_method": "gptq", "bits": 10**6}},
     "quantization_config.bits"),
    ({"quantization_config": {"quant_method": "gptq", "group_size": 0}}, "group_size"),
])
async def test_hostile_configs_get_one_sentence(client, change, field) -> None:
    status, body = await post(client, {**LLAMA, **change})
    assert status == 400, body
    assert field in body["error"] and body["error"].endswith(".")
    assert "\n" not in body["error"] and body["hint"]


async def test_a_valid_upload_still_answers(client) -> None:
    status, body = await post(client, LLAMA)
    assert status == 200 and body["model"]["source"] == "config"
    assert body["max_context"] <= 4096


async def test_the_largest_allowed_model_answers_without_holding_up_health(client) -> None:
    """A config at the bounds is answered; meanwhile /healthz keeps answering (the estimate runs
    off the event loop)."""
    big = {**LLAMA, "num_hidden_layers": MAX_LAYERS}
    answer = asyncio.ensure_future(post(client, big))
    await asyncio.sleep(0.05)
    resp = await asyncio.wait_for(client.get("/healthz"), HANG_S)
    assert resp.status == 200
    assert not answer.done()  # health answered while the report was still being worked out
    status, body = await answer
    assert status == 200 and body["model"]["params"] > 80e9


# Values a hostile or broken config may carry where a real one has a size.
HOSTILE = (st.sampled_from([0, -1, 1.5, 4096.5, 10**9, 10**47, -10**30, 1e308, -1e308, math.inf,
                            -math.inf, math.nan, True, "4096", "", None, [], {}, [1, 2], {"a": 1}])
           | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=8))
SNAPSHOT = sorted(entries())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(model=st.sampled_from(SNAPSHOT), data=st.data(),
       q=st.sampled_from(["my-model q4 gpu=24GB", "my-model gpu=4090 engine=vllm",
                          "my-model train=qlora gpu=24GB", "my-model gpu=none ram=64GB",
                          "my-model exl2=4 gpu=24GB", "my-model gpu=2x3090 engine=vllm tp=2"]))
async def test_any_mutated_config_is_answered_or_refused(aiohttp_client, model, data, q) -> None:
    """Real configs with one to three fields (sizes, nested ones too) replaced by hostile values:
    every answer is a 200 or a 400 sentence, never a 5xx and never a hang."""
    client = await aiohttp_client(create_app(make_settings()))
    config = json.loads(json.dumps(entries()[model].config))
    targets = _numeric_paths(config)
    for _ in range(data.draw(st.integers(1, 3))):
        if not targets:
            break
        path = data.draw(st.sampled_from(targets))
        _set(config, path, data.draw(HOSTILE))
    status, body = await post(client, config, q)
    assert status in (200, 400), body
    if status == 400:
        assert body["error"].endswith(".") and "\n" not in body["error"]


def _numeric_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out: list[tuple] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, dict | list):
            out += _numeric_paths(value, (*prefix, key))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append((*prefix, key))
    return out


def _set(node: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def test_check_config_names_nested_fields_and_leaves_real_ones_alone() -> None:
    with pytest.raises(UserError, match=r"vision_config\.patch_size"):
        check_config({**LLAMA, "vision_config": {"image_size": 224, "patch_size": 0}})
    with pytest.raises(UserError, match=r"block_configs\[1\]\.attention\.n_heads_in_group"):
        check_config({**LLAMA, "block_configs": [{"attention": {"n_heads_in_group": 8}},
                                                 {"attention": {"n_heads_in_group": -8}}]})
    check_config({**LLAMA, "rope_theta": 500000.0, "rope_scaling": {"factor": 8.0}})
