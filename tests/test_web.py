"""The web page (issue 20): the same answer as every surface, rendered on the server for a
shared link, enhanced by one small script, and as guarded as the API."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import quote, unquote

import pytest

from bot.app import create_app
from tests.conftest import run_command
from tests.test_service import make_settings

Q = "meta-llama/Llama-2-7b q4 gpu=24GB"


@pytest.fixture
async def client(aiohttp_client):
    return await aiohttp_client(create_app(make_settings()))


async def test_the_page_has_a_labelled_form(client) -> None:
    resp = await client.get("/")
    html = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert '<label for="q">' in html and '<input id="q" name="q"' in html
    assert '<script src="/static/fits.js" defer>' in html
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_a_shared_link_renders_the_verdict_and_charts_without_javascript(client) -> None:
    resp = await client.get("/?q=" + quote(Q))
    html = await resp.text()
    report = run_command(Q)
    assert resp.status == 200
    headline = re.search(r'<h2 class="verdict (\w+)">(.*?)</h2>', html)
    assert headline and headline[1] == report.verdict
    assert unescape(headline[2]).startswith("YES: meta-llama/Llama-2-7b-hf (Q4_K_M)")
    assert html.count("<svg") == 2  # the breakdown and memory against context
    assert '<meta property="og:title" content="YES: meta-llama' in html
    assert report.run is not None and unescape(report.run.command.split()[0]) in html


async def test_suggestions_are_links_to_the_changed_question(client) -> None:
    resp = await client.get("/?q=" + quote("meta-llama/Llama-2-13b-hf fp16 gpu=24GB"))
    html = await resp.text()
    links = [unquote(unescape(m)) for m in re.findall(r'<a href="/\?q=([^"]+)"><code>', html)]
    assert links and all("gpu=24GB" in link or "gpu=" in link for link in links)
    for link in links:
        followed = await client.get("/?q=" + quote(link))
        assert followed.status == 200 and "given twice" not in await followed.text()


async def test_the_script_gets_the_answer_alone(client) -> None:
    resp = await client.get("/?q=" + quote(Q), headers={"X-Fits-Partial": "1"})
    html = await resp.text()
    assert "<form" not in html and '<h2 class="verdict' in html


async def test_nothing_typed_reaches_the_page_unescaped(client) -> None:
    hostile = '<script>alert(1)</script>" onmouseover="x'
    resp = await client.get("/?q=" + quote(hostile))
    html = await resp.text()
    assert resp.status == 400 and "<script>alert" not in html and 'onmouseover="x' not in html
    assert 'role="alert"' in html


async def test_best_and_compare_render_as_tables(client) -> None:
    html = await (await client.get("/?q=" + quote("best gpu=24GB n=3"))).text()
    assert html.count("<tr>") >= 4
    html = await (await client.get("/?q=" + quote("compare llama-3-8b q4,q8 gpu=3060,4090"))).text()
    assert "<table class=\"grid\">" in html
    assert html.count("<rect") == 4  # grouped bars: two setups on two GPUs


async def test_static_files_and_nothing_else(client) -> None:
    assert (await client.get("/static/fits.js")).status == 200
    assert (await client.get("/static/fits.css")).status == 200
    assert (await client.get("/static/../bot/app.py")).status == 404


def test_the_cli_writes_the_charts(tmp_path) -> None:
    import subprocess
    import sys
    import xml.dom.minidom

    out = tmp_path / "answer.svg"
    done = subprocess.run([sys.executable, "-m", "bot", Q, "--plot", str(out)],
                          capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr
    svg = xml.dom.minidom.parse(str(out))
    assert len(svg.getElementsByTagName("polyline")) == 1  # memory against context
    assert len(svg.getElementsByTagName("rect")) >= 3  # the breakdown's parts
    wrong = subprocess.run([sys.executable, "-m", "bot", Q, "--plot", str(tmp_path / "a.png")],
                           capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1"})
    assert wrong.returncode == 2 and "--plot writes SVG" in wrong.stderr


async def test_the_form_parts_make_the_same_question(client) -> None:
    html = await (await client.get("/", params={
        "model": "meta-llama/Llama-2-7b", "quant": "q4", "gpu": "24GB", "ctx": "", "engine": "",
        "batch": "", "train": ""})).text()
    same = await (await client.get("/?q=" + quote(Q))).text()
    verdict = re.search(r'<h2 class="verdict \w+">(.*?)</h2>', html)
    assert verdict and verdict[0] in same
    assert '<label for="f-gpu">GPU</label>' in html and '<datalist id="gpus">' in html
    assert "NVIDIA GeForce RTX 4090" in html  # the catalogue for the GPU field
