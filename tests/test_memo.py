"""core.memo: figures cached per spec, typed by their function, bounded where asked."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from core.engines import llamacpp
from core.formats import WeightFormat, weight_bytes
from core.memo import per_spec
from core.resolve import resolve_offline
from core.spec import ModelSpec

CALLS: list[tuple[str, int]] = []


@per_spec()
def doubled(spec: ModelSpec, n: int) -> int:
    CALLS.append(("doubled", n))
    return 2 * n


@per_spec()
def tripled(spec: ModelSpec, n: int) -> int:
    CALLS.append(("tripled", n))
    return 3 * n


@per_spec(bound=3)
def bounded(spec: ModelSpec, n: int) -> int:
    CALLS.append(("bounded", n))
    return n + 1


def fresh_spec() -> ModelSpec:
    # replace() makes a spec of its own, with an empty memo.
    return replace(resolve_offline("meta-llama/Llama-2-7b-hf").spec)


def test_a_figure_is_computed_once_per_spec_and_arguments() -> None:
    spec = fresh_spec()
    CALLS.clear()
    assert [doubled(spec, 2), doubled(spec, 2), doubled(spec, 5)] == [4, 4, 10]
    assert CALLS == [("doubled", 2), ("doubled", 5)]
    assert spec.memo.entries(doubled) == 2


def test_figures_with_the_same_arguments_keep_their_own_values() -> None:
    spec = fresh_spec()
    assert (doubled(spec, 7), tripled(spec, 7), doubled(spec, 7)) == (14, 21, 14)


def test_each_spec_has_its_own_memo_even_when_equal_in_content() -> None:
    one = fresh_spec()
    two = replace(one)  # the same architecture, another object
    assert one.memo is not two.memo and one != two  # specs compare by identity
    CALLS.clear()
    doubled(one, 3)
    doubled(two, 3)
    assert CALLS == [("doubled", 3), ("doubled", 3)]
    assert one.memo.entries(doubled) == two.memo.entries(doubled) == 1


def test_a_bounded_figure_stops_storing_but_keeps_answering() -> None:
    spec = fresh_spec()
    CALLS.clear()
    assert [bounded(spec, n) for n in range(5)] == [1, 2, 3, 4, 5]
    assert spec.memo.entries(bounded) == 3
    assert [bounded(spec, n) for n in range(5)] == [1, 2, 3, 4, 5]  # right past the bound too
    recomputed = [("bounded", n) for n in (0, 1, 2, 3, 4, 3, 4)]  # the unstored ones again
    assert recomputed == CALLS


def test_llama_cpp_bounds_its_cache_layout_per_context() -> None:
    spec = fresh_spec()
    for n_ctx in range(1, 5001):
        llamacpp._kv_elements_by_layer(spec, n_ctx)
    assert spec.memo.entries(llamacpp._kv_elements_by_layer) == 4096


def test_the_estimate_path_fills_the_memo_and_answers_the_same_from_it() -> None:
    spec = fresh_spec()
    fmt = WeightFormat("bf16")
    first = weight_bytes(spec, fmt)
    assert spec.memo.entries(weight_bytes) == 1
    assert weight_bytes(spec, fmt) == first == 2 * spec.params


def test_memoized_figures_keep_their_types_for_mypy(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    code = textwrap.dedent("""\
        from core.engines.vllm_kv import block_layout
        from core.formats import WeightFormat, weight_bytes
        from core.spec import ModelSpec

        def check(spec: ModelSpec) -> None:
            reveal_type(weight_bytes(spec, WeightFormat("bf16")))
            reveal_type(block_layout(spec, "fp16", 1, True))
            weight_bytes(spec, "bf16")
        """)
    (tmp_path / "snippet.py").write_text(code)
    out, _, _ = api.run(["--strict", "--cache-dir", str(tmp_path / "cache"),
                         str(tmp_path / "snippet.py")])
    assert re.search(r'Revealed type is "(builtins\.)?int"', out), out
    assert 'Revealed type is "core.engines.vllm_kv.BlockLayout"' in out
    assert 'Argument 2 to "weight_bytes" has incompatible type "str"' in out
