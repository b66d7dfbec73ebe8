"""A fake Hugging Face Hub (aiohttp) that the real huggingface_hub client talks to.

It serves what `adapters.hub` and huggingface_hub 2.4.0 ask for (../shared/docs/platforms.md §4.5):

- ``GET /api/models?search=&sort=downloads&limit=``: the search, most downloaded first.
- ``GET /api/models/{org}/{name}`` (and ``/revision/{rev}``), honouring ``expand``: id, sha,
  gated, private, siblings, safetensors parameters and total, config, gguf, cardData, tags.
- ``POST /api/models/{org}/{name}/paths-info/{rev}``: file sizes.
- ``GET|HEAD /{org}/{name}/resolve/{rev}/{file}``: X-Repo-Commit and ETag on every answer, Range
  requests (206 + Content-Range), safetensors headers (single file and sharded with an index), and
  the Hub's X-Error-Code answers: RepoNotFound, GatedRepo (401 without the right token),
  EntryNotFound (with X-Repo-Commit), RevisionNotFound; an unknown token gets the Hub's 401
  "Invalid credentials in Authorization header".

It can be told to be slow, to answer 401/404/429/500 (some number of times, on some paths), to
send truncated JSON or a huge body (with or without Content-Length), and it counts requests per
method and path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "hf_fake_token_0123456789abcdef"  # a token with access to the fake's gated repos
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}

Tensors = dict[str, tuple[str, list[int]]]  # name -> (safetensors dtype, shape)


def llama_tensors(config: dict[str, Any], dtype: str = "BF16") -> Tensors:
    """Every weight tensor of a Llama-style checkpoint for ``config`` (what transformers saves)."""
    hidden, vocab = config["hidden_size"], config["vocab_size"]
    heads = config["num_attention_heads"]
    kv = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim", hidden // heads)
    ffn = config["intermediate_size"]
    out: Tensors = {"model.embed_tokens.weight": (dtype, [vocab, hidden]),
                    "model.norm.weight": (dtype, [hidden])}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out |= {p + "self_attn.q_proj.weight": (dtype, [heads * head_dim, hidden]),
                p + "self_attn.k_proj.weight": (dtype, [kv * head_dim, hidden]),
                p + "self_attn.v_proj.weight": (dtype, [kv * head_dim, hidden]),
                p + "self_attn.o_proj.weight": (dtype, [hidden, heads * head_dim]),
                p + "mlp.gate_proj.weight": (dtype, [ffn, hidden]),
                p + "mlp.up_proj.weight": (dtype, [ffn, hidden]),
                p + "mlp.down_proj.weight": (dtype, [hidden, ffn]),
                p + "input_layernorm.weight": (dtype, [hidden]),
                p + "post_attention_layernorm.weight": (dtype, [hidden])}
    if not config.get("tie_word_embeddings", False):
        out["lm_head.weight"] = (dtype, [vocab, hidden])
    return out


def count_params(tensors: Tensors) -> dict[str, int]:
    out: Counter[str] = Counter()
    for dtype, shape in tensors.values():
        out[dtype] += math.prod(shape)
    return dict(out)


def safetensors_header(tensors: Tensors) -> bytes:
    """A safetensors file without its data: the 8-byte length and the JSON header."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = math.prod(shape) * _DTYPE_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


@dataclass
class FakeRepo:
    id: str
    config: dict[str, Any] | None = None  # served as config.json
    tensors: Tensors | None = None  # the checkpoint's tensors (parameters and headers)
    shards: int = 1  # >1: model-0000i-of-0000n.safetensors plus the index
    params: dict[str, int] | None = None  # the API's safetensors.parameters (default: counted)
    api_safetensors: bool = True  # False: /api/models lists no parameters (headers only)
    gated: bool = False
    private: bool = False
    gguf_files: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    gguf: dict[str, Any] | None = None  # the API's gguf field
    card_data: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # any other file, served as is
    downloads: int = 0

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.id.encode()).hexdigest()

    def parameters(self) -> dict[str, int] | None:
        if self.params is not None:
            return self.params
        return count_params(self.tensors) if self.tensors else None

    def file_bytes(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        if self.config is not None:
            out["config.json"] = json.dumps(self.config, indent=2).encode()
        if self.tensors:
            if self.shards <= 1:
                out["model.safetensors"] = safetensors_header(self.tensors)
            else:
                names = list(self.tensors)
                per = math.ceil(len(names) / self.shards)
                weight_map: dict[str, str] = {}
                for i in range(self.shards):
                    shard = f"model-{i + 1:05d}-of-{self.shards:05d}.safetensors"
                    part = {n: self.tensors[n] for n in names[i * per:(i + 1) * per]}
                    out[shard] = safetensors_header(part)
                    weight_map |= dict.fromkeys(part, shard)
                out["model.safetensors.index.json"] = json.dumps(
                    {"metadata": {"total_size": 0}, "weight_map": weight_map}).encode()
        out.update(self.files)
        return out

    def sizes(self) -> dict[str, int]:
        return {**{k: len(v) for k, v in self.file_bytes().items()}, **self.gguf_files}


@dataclass
class _Rule:
    match: str  # substring of the path ("" = every path), or the whole path when ``exact``
    times: int | None  # None: always
    status: int = 0
    error_code: str | None = None
    retry_after: int | None = None
    seconds: float = 0.0
    size: int = 0
    declare_length: bool = True
    exact: bool = False

    def applies(self, path: str) -> bool:
        matches = path == self.match if self.exact else self.match in path
        if not matches or self.times == 0:
            return False
        if self.times is not None:
            self.times -= 1
        return True


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: Counter[str] = Counter()  # "GET /path" -> n
        self.auth_seen: list[str] = []  # authorization headers received
        self.tokens: set[str] = {TOKEN}  # valid tokens; others get 401 invalid credentials
        self.gated_access: set[str] = {TOKEN}  # tokens whose account accepted the licences
        self._failures: list[_Rule] = []
        self._slow: list[_Rule] = []
        self._truncate: list[_Rule] = []
        self._huge: list[_Rule] = []
        self._release = asyncio.Event()

    # --- set-up --------------------------------------------------------------------------------

    def add(self, repo: FakeRepo) -> FakeRepo:
        self.repos[repo.id.lower()] = repo
        return repo

    def fail(self, status: int, *, match: str = "", times: int | None = None,
             error_code: str | None = None, retry_after: int | None = None,
             exact: bool = False) -> None:
        """Answer ``status`` on paths containing ``match`` (or equal to it, ``exact``),
        ``times`` times or always."""
        self._failures.append(_Rule(match, times, status=status, error_code=error_code,
                                    retry_after=retry_after, exact=exact))

    def slow(self, seconds: float, *, match: str = "", times: int | None = None) -> None:
        """Hold answers on matching paths for ``seconds`` (or until ``release()``)."""
        self._slow.append(_Rule(match, times, seconds=seconds))

    def truncate(self, *, match: str = "", times: int | None = None) -> None:
        """Cut matching JSON answers in half."""
        self._truncate.append(_Rule(match, times))

    def huge(self, size: int, *, match: str = "", declare_length: bool = True) -> None:
        """Answer matching JSON files with a valid JSON object of ``size`` bytes, with or
        without Content-Length."""
        self._huge.append(_Rule(match, None, size=size, declare_length=declare_length))

    def release(self) -> None:
        """Let every slow answer go now (so teardown never waits)."""
        self._release.set()

    def count(self, contains: str, method: str | None = None) -> int:
        return sum(n for key, n in self.requests.items()
                   if contains in key and (method is None or key.startswith(method + " ")))

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/models", self._search)
        app.router.add_get("/api/models/{org}/{name}", self._info)
        app.router.add_get("/api/models/{org}/{name}/revision/{rev}", self._info)
        app.router.add_post("/api/models/{org}/{name}/paths-info/{rev}", self._paths_info)
        app.router.add_get("/{org}/{name}/resolve/{rev}/{filename:.+}", self._resolve)
        return app

    # --- plumbing --------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests[f"{request.method} {request.path}"] += 1
        if "authorization" in request.headers:
            self.auth_seen.append(request.headers["authorization"])
            if request.headers["authorization"] not in {f"Bearer {t}" for t in self.tokens}:
                message = "Invalid credentials in Authorization header"
                return web.json_response({"error": message}, status=401,
                                         headers={"X-Error-Message": message})
        for rule in self._slow:
            if rule.applies(request.path):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), rule.seconds)
        for rule in self._failures:
            if rule.applies(request.path):
                headers = {"X-Error-Message": f"fake failure {rule.status}"}
                if rule.error_code:
                    headers["X-Error-Code"] = rule.error_code
                if rule.retry_after is not None:
                    headers["Retry-After"] = str(rule.retry_after)
                return web.json_response({"error": f"fake failure {rule.status}"},
                                         status=rule.status, headers=headers)
        response: web.StreamResponse = await handler(request)
        return response

    def _repo(self, request: web.Request) -> FakeRepo | None:
        return self.repos.get(f"{request.match_info['org']}/{request.match_info['name']}".lower())

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("authorization") in {f"Bearer {t}" for t in self.gated_access}

    async def _json(self, request: web.Request, data: Any,
                    headers: dict[str, str] | None = None,
                    raw: bytes | None = None) -> web.StreamResponse:
        body = raw if raw is not None else json.dumps(data).encode()
        for rule in self._huge:
            if rule.applies(request.path):
                pad = max(0, rule.size - len(body) - 20)
                body = b'{"padding": "' + b" " * pad + b'", "model_type": "llama"}'
                if not rule.declare_length:
                    response = web.StreamResponse(headers=headers or {})
                    response.content_type = "application/json"
                    response.enable_chunked_encoding()
                    await response.prepare(request)
                    with contextlib.suppress(ConnectionResetError):  # the client gave up: good
                        for start in range(0, len(body), 1 << 20):
                            await response.write(body[start:start + (1 << 20)])
                        await response.write_eof()
                    return response
        for rule in self._truncate:
            if rule.applies(request.path):
                body = body[: len(body) // 2]
        return web.Response(body=body, content_type="application/json", headers=headers)

    @staticmethod
    def _error(status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": message}, status=status,
                                 headers={"X-Error-Code": code, "X-Error-Message": message,
                                          **(headers or {})})

    # --- routes ----------------------------------------------------------------------------------

    async def _search(self, request: web.Request) -> web.StreamResponse:
        query = request.query.get("search", "").lower()
        limit = int(request.query.get("limit", "1000"))
        hits = sorted((r for r in self.repos.values()
                       if query in r.id.lower() and (not r.private or self._authorized(request))),
                      key=lambda r: -r.downloads)[:limit]
        return await self._json(request, [{"id": r.id, "modelId": r.id, "downloads": r.downloads,
                                           "likes": 0, "private": r.private, "tags": r.tags}
                                          for r in hits])

    async def _info(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None or (repo.private and not self._authorized(request)):
            return self._error(401, "RepoNotFound", "Repository not found")
        rev = request.match_info.get("rev")
        if rev is not None and rev not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        full: dict[str, Any] = {
            "id": repo.id, "modelId": repo.id, "sha": repo.sha, "private": repo.private,
            "gated": "manual" if repo.gated else False, "downloads": repo.downloads,
            "tags": repo.tags, "siblings": [{"rfilename": f} for f in repo.sizes()],
        }
        params = repo.parameters()
        if params and repo.api_safetensors:
            full["safetensors"] = {"parameters": params, "total": sum(params.values())}
        if repo.config is not None:  # the Hub lists a few keys of config.json, not all of it
            full["config"] = {k: repo.config[k] for k in ("architectures", "model_type",
                                                          "quantization_config")
                              if k in repo.config}
        if repo.gguf is not None:
            full["gguf"] = repo.gguf
        if repo.card_data is not None:
            full["cardData"] = repo.card_data
        expand = request.query.getall("expand", [])
        data = {k: v for k, v in full.items() if k == "id" or k in expand} if expand else full
        return await self._json(request, data)

    async def _paths_info(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        form = await request.post()
        sizes = repo.sizes()
        out = [{"type": "file", "path": p, "size": sizes[p],
                "oid": hashlib.sha1(p.encode()).hexdigest()}
               for p in form.getall("paths", []) if isinstance(p, str) and p in sizes]
        return await self._json(request, out)

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None or (repo.private and not self._authorized(request)):
            return self._error(404, "RepoNotFound", "Repository not found")
        if request.match_info["rev"] not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        commit = {"X-Repo-Commit": repo.sha}
        if repo.gated and not self._authorized(request):
            return self._error(401, "GatedRepo",
                               f"Access to model {repo.id} is restricted. You must have access "
                               "to it and be authenticated to access it.", commit)
        filename = request.match_info["filename"]
        files = repo.file_bytes()
        if filename not in files and filename in repo.gguf_files:
            files[filename] = b"GGUF"  # the content is never read; paths-info gives the size
        if filename not in files:
            return self._error(404, "EntryNotFound", f"{filename} does not exist", commit)
        body = files[filename]
        headers = {**commit, "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
                   "Accept-Ranges": "bytes"}
        if filename.endswith(".json") and request.method == "GET":
            return await self._json(request, None, headers, raw=body)
        ranged = request.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first, _, last = ranged[6:].partition("-")
            start = int(first or 0)
            end = min(int(last) if last else len(body) - 1, len(body) - 1)
            if start >= len(body):
                return web.Response(status=416, headers={**headers,
                                                         "Content-Range": f"bytes */{len(body)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            return web.Response(status=206, body=body[start:end + 1], headers=headers)
        return web.Response(body=body, headers=headers)
