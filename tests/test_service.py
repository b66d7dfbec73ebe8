"""The service (bot/app.py) through aiohttp's test client: the JSON API answers what the CLI's
estimator answers, bad and hostile input gets a 4xx with one sentence, never a 5xx, health and
metrics work, request ids travel, and the Hub token never shows. Offline: nothing leaves the host."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import JsonFormatter, create_app
from bot.settings import Settings
from core.answer import estimate_command
from core.parser import EstimateCommand, parse_command
from core.report import report_as_dict

SECRET = "hf_SERVICEtokenNEVERshown77"
API = "/api/v1/fits"


def make_settings(**extra: object) -> Settings:
    # Rate limits off unless a test sets them, so every request here reaches the handler.
    fields: dict[str, object] = {"FITS_RATE_LIMIT_PER_MINUTE": 100_000,
                                 "FITS_RATE_LIMIT_BURST": 100_000, **extra}
    return Settings(HF_HUB_OFFLINE=True, HF_TOKEN=SECRET, HF_ENDPOINT="http://127.0.0.1:9",
                    _env_file=None, **fields)  # type: ignore[call-arg]


@pytest.fixture
async def client(aiohttp_client):
    return await aiohttp_client(create_app(make_settings()))


def expected(text: str) -> dict:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    return report_as_dict(estimate_command(command))


def one_sentence(body: dict) -> None:
    assert isinstance(body["error"], str) and body["error"].endswith(".")
    assert "Traceback" not in body["error"] and "\n" not in body["error"]


@pytest.mark.parametrize("text", ["meta-llama/Llama-2-7b q4 ctx=4096 gpu=24GB",
                                  "llama3-8b awq engine=vllm gpu=4090",
                                  "7b mode=train train=qlora gpu=3090"])
async def test_get_matches_estimator(client, text):
    resp = await client.get(API, params={"q": text})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/json")
    assert await resp.json() == expected(text)


async def test_post_q_and_fields_match_estimator(client):
    text = "meta-llama/Llama-2-7b q4 ctx=8k gpu=4090"
    resp = await client.post(API, json={"q": text})
    assert resp.status == 200
    assert await resp.json() == expected(text)
    fields = {"model": "meta-llama/Llama-2-7b", "quant": "q4", "ctx": 8192, "gpu": "4090"}
    resp = await client.post(API, json=fields)
    assert resp.status == 200
    assert await resp.json() == expected("meta-llama/Llama-2-7b q4 ctx=8192 gpu=4090")
    train = {"model": "7b", "mode": "train", "train": "lora", "gc": True, "util": 0.85,
             "gpu": "RTX 4090"}
    resp = await client.post(API, json=train)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["total_bytes"] == expected(
        '7b mode=train train=lora gc=on util=0.85 gpu="RTX 4090"')["total_bytes"]


async def test_post_with_config(client):
    from core.snapshot import entries

    config = entries()["meta-llama/llama-2-7b-hf"].config
    resp = await client.post(API, json={"q": "my-model q4 gpu=12GB", "config": config})
    assert resp.status == 200
    body = await resp.json()
    command = parse_command("my-model q4 gpu=12GB")
    assert isinstance(command, EstimateCommand)
    assert body == report_as_dict(estimate_command(command, config))
    assert body["model"]["source"] == "config"


async def test_other_commands(client):
    resp = await client.get(API, params={"q": "help"})
    assert resp.status == 200 and "fits" in (await resp.json())["text"]
    resp = await client.get(API, params={"q": "gpus 4090"})
    gpus = (await resp.json())["gpus"]
    assert resp.status == 200 and any("4090" in g["name"] for g in gpus)
    assert all(isinstance(g["memory_bytes"], int) for g in gpus)
    resp = await client.get(API, params={"q": "models llama-2"})
    models = (await resp.json())["models"]
    assert resp.status == 200 and any("Llama-2-7b" in m for m in models)


@pytest.mark.parametrize(("method", "kwargs", "status"), [
    ("get", {}, 400),  # no q
    ("get", {"params": [("q", "7b"), ("q", "8b")]}, 400),
    ("get", {"params": {"q": ""}}, 400),
    ("get", {"params": {"q": "7b qq9"}}, 400),
    ("get", {"params": {"q": "no-such-model-anywhere-xyz q4"}}, 400),
    ("get", {"params": {"q": "7b ctx=0"}}, 400),
    ("get", {"params": {"q": "7b gpu=\"unclosed"}}, 400),
    ("get", {"params": {"q": "7b " * 1000}}, 400),  # > 2,000 characters
    ("post", {"data": b"not json"}, 400),
    ("post", {"data": b"\xff\xfe\x00"}, 400),
    ("post", {"data": b"[1, 2]"}, 400),
    ("post", {"data": b"\"7b\""}, 400),
    ("post", {"json": {"q": 7}}, 400),
    ("post", {"json": {"q": ["7b"]}}, 400),
    ("post", {"json": {"q": "7b", "model": "8b"}}, 400),
    ("post", {"json": {"model": 7}}, 400),
    ("post", {"json": {"model": "7b", "ctx": [1]}}, 400),
    ("post", {"json": {"model": "7b", "ctx": {"a": 1}}}, 400),
    ("post", {"json": {"model": "7b", "ctx": True}}, 400),
    ("post", {"json": {"model": "7b", "ctx": -5}}, 400),
    ("post", {"json": {"model": "7b ctx=1", "gpu": "4090"}}, 400),
    ("post", {"json": {"model": "7b", "gpu": "40\"90"}}, 400),
    ("post", {"json": {"model": "7b", "evil": 1}}, 400),
    ("post", {"json": {"q": "7b", "config": [1, 2]}}, 400),
    ("post", {"json": {"q": "x q4", "config": {"hidden_size": "big"}}}, 400),
    ("post", {"json": {"q": "x q4", "config": {}}}, 400),
    ("post", {"data": b"[" * 100_000 + b"]" * 100_000}, 400),  # deep nesting
    ("post", {"data": json.dumps({"q": "7b", "config": {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
        [[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}})}, 400),
    ("post", {"data": b"{\"q\": \"" + b"a" * 1_100_000 + b"\"}"}, 413),  # > 1 MB
    ("put", {"json": {"q": "7b"}}, 405),
    ("get", {"path": "/api/v2/nothing"}, 404),
])
async def test_bad_and_hostile_input_is_4xx(client, method, kwargs, status):
    path = kwargs.pop("path", API)
    resp = await getattr(client, method)(path, **kwargs)
    assert resp.status == status, await resp.text()
    body = await resp.json()
    one_sentence(body)
    assert "hint" in body and body["request_id"] == resp.headers["X-Request-Id"]


async def test_did_you_mean_carries_suggestions(client):
    resp = await client.get(API, params={"q": "llama-2-7c q4"})
    if resp.status == 200:  # resolved as a near miss: fine, the answer says so
        assert (await resp.json())["model"]["id"]
        return
    body = await resp.json()
    assert resp.status == 400
    one_sentence(body)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300) | st.text(alphabet="7b q4=:ctx\"' gpu,x-/.k", max_size=60))
async def test_random_queries_never_5xx(aiohttp_client, text):
    client = await aiohttp_client(create_app(make_settings()))
    for resp in (await client.get(API, params={"q": text}),
                 await client.post(API, json={"q": text})):
        assert resp.status in (200, 400), (text, resp.status, await resp.text())
        body = await resp.json()
        if resp.status == 400:
            one_sentence(body)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(
    max_size=20), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["q", "model", "quant", "ctx", "gpu", "config", "x"]), inner, max_size=4),
    max_leaves=12))
async def test_random_bodies_never_5xx(aiohttp_client, body):
    client = await aiohttp_client(create_app(make_settings()))
    resp = await client.post(API, data=json.dumps(body))
    assert resp.status in (200, 400), (body, resp.status, await resp.text())


async def test_unexpected_error_is_500_generic_and_logged(client, monkeypatch, caplog):
    import adapters.hub.answer

    def boom(*args, **kwargs):
        raise RuntimeError(f"internal detail {SECRET}")

    monkeypatch.setattr(adapters.hub.answer, "estimate_command_async", boom)
    with caplog.at_level(logging.ERROR, logger="fits.service"):
        resp = await client.get(API, params={"q": "7b"}, headers={"X-Request-Id": "trace-500"})
    body = await resp.json()
    assert resp.status == 500
    assert "internal detail" not in json.dumps(body) and SECRET not in json.dumps(body)
    assert body["request_id"] == "trace-500"
    record = next(r for r in caplog.records if r.levelno == logging.ERROR)
    line = JsonFormatter([SECRET]).format(record)
    assert "RuntimeError" in line and "trace-500" in line and SECRET not in line


async def test_health_ready_metrics(client):
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["status"] == "ready"
    await client.get(API, params={"q": "7b q4"})
    await client.get(API, params={"q": "7b q4"})
    await client.get(API, params={"q": "7b bogusquant"})
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert 'fits_requests_total{outcome="ok",surface="api"} 2.0' in text
    assert 'fits_requests_total{outcome="user_error",surface="api"} 1.0' in text
    assert "fits_estimate_seconds_count 1.0" in text  # the repeat came from the report cache
    assert 'fits_report_cache_lookups_total{result="hit"} 1.0' in text
    assert "fits_hub_cache_lookups_total" in text


async def test_readyz_before_startup():
    from aiohttp.test_utils import make_mocked_request

    from bot.app import readyz

    app = create_app(make_settings())
    resp = await readyz(make_mocked_request("GET", "/readyz", app=app))
    assert resp.status == 503


async def test_request_ids(client):
    resp = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = await client.get("/healthz")
    generated = resp.headers["X-Request-Id"]
    assert len(generated) == 32 and generated.isalnum()
    resp = await client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces" + "x" * 200})
    assert resp.headers["X-Request-Id"] != "bad id"
    assert len(resp.headers["X-Request-Id"]) == 32


async def test_token_never_in_responses_or_logs(aiohttp_client):
    settings = make_settings()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())  # no redaction here: the token must never reach a log
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        client = await aiohttp_client(create_app(settings))
        seen = []
        for path, params in [(API, {"q": "7b q4"}), (API, {"q": "models llama"}),
                             (API, {"q": "fits-test/Not-Here q4"}), (API, {"q": "nope nope"}),
                             ("/metrics", {}), ("/readyz", {}), ("/healthz", {})]:
            resp = await client.get(path, params=params)
            seen.append(await resp.text())
            seen.append(json.dumps(dict(resp.headers)))
        logging.getLogger("fits.service").info("settings", extra={"fields": {
            "settings": settings.model_dump()}})
        logging.getLogger("fits.service").info("settings %r %s", settings, settings.hub())
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    logs = stream.getvalue()
    assert "request" in logs and "settings" in logs
    assert SECRET not in logs
    assert all(SECRET not in text for text in seen)


async def test_json_log_lines_carry_request_id(aiohttp_client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    service = logging.getLogger("fits.service")
    service.addHandler(handler)
    old_level = service.level
    service.setLevel(logging.INFO)
    try:
        client = await aiohttp_client(create_app(make_settings()))
        await client.get(API, params={"q": "7b"}, headers={"X-Request-Id": "log-me-1"})
    finally:
        service.removeHandler(handler)
        service.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request = next(line for line in lines if line["message"] == "request")
    assert request["request_id"] == "log-me-1" and request["outcome"] == "ok"
    assert request["status"] == 200
    assert request["path"] == API and "7b" not in json.dumps(request)


def test_settings_from_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PORT=9123\nHF_TOKEN=\nFITS_CACHE_DIR=\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", SECRET)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    s = Settings()
    assert s.port == 9123 and s.host == "0.0.0.0" and s.hf_hub_offline
    assert s.fits_cache_dir is None
    assert s.hub().token == SECRET and s.hub().offline
    assert SECRET not in repr(s) and SECRET not in str(s.model_dump())


def test_serve_reports_bad_settings(monkeypatch, capsys):
    from bot.serve import main

    monkeypatch.setenv("PORT", "not-a-port")
    assert main(["serve"]) == 2
    assert "PORT" in capsys.readouterr().err


async def test_best_and_compare_endpoints(client):
    resp = await client.get("/api/v1/best", params={"gpu": "24GB", "ctx": "8k", "n": "3"})
    assert resp.status == 200
    body = await resp.json()
    assert len(body["entries"]) == 3 and body["entries"][0]["fits"] is True
    same = await (await client.get(API, params={"q": "best gpu=24GB ctx=8k n=3"})).json()
    assert same == body
    resp = await client.get("/api/v1/compare", params={"q": "llama-3-8b q4,q8", "gpu": "4090,3060"})
    assert resp.status == 200 and len((await resp.json())["cells"]) == 4
    resp = await client.get("/api/v1/best", params={"use": "poetry"})
    assert resp.status == 400 and "use= takes" in (await resp.json())["error"]


async def test_repeated_questions_come_from_the_report_cache(client):
    first = await (await client.get(API, params={"q": "llama-2-7b q4 gpu=4090"})).json()
    again = await (await client.get(API, params={"q": "llama-2-7b  q4   gpu=4090"})).json()
    assert first == again
    metrics = await (await client.get("/metrics")).text()
    assert 'fits_report_cache_lookups_total{result="hit"} 1.0' in metrics
    assert 'fits_report_cache_lookups_total{result="miss"} 1.0' in metrics


async def test_probes_are_not_logged_but_questions_are(aiohttp_client, caplog):
    client = await aiohttp_client(create_app(make_settings()))
    with caplog.at_level(logging.INFO, logger="fits.service"):
        await client.get("/healthz")
        await client.get("/readyz")
        await client.get(API, params={"q": "7b q4"})
    paths = [r.fields["path"] for r in caplog.records if r.getMessage() == "request"]
    assert paths == [API]


async def test_a_stalled_event_loop_shows_in_the_metrics(aiohttp_client):
    """The loop-lag monitor sees the loop held (here by a blocking sleep, as an inline report
    past its slice would): the longest stall and the histogram are on /metrics."""
    import time

    client = await aiohttp_client(create_app(make_settings()))
    await asyncio.sleep(0.05)  # the monitor has started and woken a few times
    time.sleep(0.08)  # hold the loop
    await asyncio.sleep(0.05)
    text = await (await client.get("/metrics")).text()
    line = next(x for x in text.splitlines()
                if x.startswith('fits_event_loop_lag_max_seconds{worker="0"}'))
    assert 0.07 <= float(line.split()[-1]) < 1.0
    assert 'fits_event_loop_lag_seconds_bucket{le="0.05",worker="0"}' in text
