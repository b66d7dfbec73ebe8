"""The request's field checks (core.request.checked_request): what the parser and stored answers
go through, now that the request is a plain dataclass rather than a pydantic model."""

from __future__ import annotations

from typing import Any

import pytest

from core import frameworks
from core.errors import UserError
from core.parser import EstimateCommand, parse_command
from core.request import FIELD_NAMES, EstimateRequest, FieldError, checked_request


def request(text: str) -> EstimateRequest:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    return command.request


@pytest.mark.parametrize(("text", "sentence"), [
    # The parser words most bounds itself ("The context length (ctx=) must be at least 1, not
    # '0'."); these reach the request's own table.
    ("7b batch=100000", "batch= must be at most 65,536."),
    ("7b engine=vllm util=0", "util= must be more than 0."),
])
def test_a_value_out_of_bounds_is_one_sentence_about_its_option(text: str, sentence: str) -> None:
    with pytest.raises(UserError) as err:
        parse_command(text)
    assert err.value.message == sentence


@pytest.mark.parametrize(("field", "value", "bound", "limit"), [
    ("ctx", 0, "ge", 1), ("ctx", 10_485_761, "le", 10_485_760), ("util", 0.0, "gt", 0.0),
    ("util", 1.01, "le", 1.0), ("r", 5000, "le", 4096), ("zero", 4, "le", 3),
    ("ram", 1 << 29, "ge", 1 << 30), ("ngl", -1, "ge", 0), ("membw", 20_001, "le", 20_000),
])
def test_each_bound_is_checked(field: str, value: float, bound: str, limit: float) -> None:
    with pytest.raises(FieldError) as err:
        checked_request({"model": "7b", field: value})
    assert (err.value.name, err.value.bound, err.value.limit) == (field, bound, limit)


@pytest.mark.parametrize(("values", "field"), [
    ({"model": "7b", "ctx": "4096"}, "ctx"),  # a string for a number
    ({"model": "7b", "ctx": True}, "ctx"),  # a bool is not a number here
    ({"model": "7b", "ctx": 4096.5}, "ctx"),  # not whole
    ({"model": "7b", "util": float("nan")}, "util"),
    ({"model": "7b", "engine": "vllm2"}, "engine"),
    ({"model": "7b", "gc": "on"}, "gc"),
    ({"model": "7b", "version": "v0.4"}, "version"),
    ({"model": "7b", "cpu": "x" * 101}, "cpu"),
    ({"model": None}, "model"),
    ({"ctx": 4096}, "model"),
    ({"model": "7b", "gpu_count": 2}, "gpu_count"),  # not a field
])
def test_a_value_of_the_wrong_kind_names_its_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(FieldError) as err:
        checked_request(values)
    assert err.value.name == field and err.value.bound is None


def test_json_numbers_are_taken_as_the_field_wants_them() -> None:
    made = checked_request({"model": "7b", "ctx": 8192.0, "util": 1, "bits": 4})
    assert (made.ctx, made.util, made.bits) == (8192, 1.0, 4.0)
    assert type(made.ctx) is int and type(made.util) is float and type(made.bits) is float


def test_a_stored_request_comes_back_equal() -> None:
    typed = request("llama-3-8b awq engine=vllm gpu=2x3090 ctx=8k batch=4 util=0.85")
    again = checked_request(typed.as_dict())
    assert again == typed and hash(again) == hash(typed)
    assert list(typed.as_dict()) == list(FIELD_NAMES) and "given" not in FIELD_NAMES


def test_what_was_typed_or_changed_is_given_and_keeps_its_value_against_a_preset() -> None:
    typed = request("llama-3-8b train=lora framework=torchtune loss=full")
    assert {"model", "train", "framework", "loss", "mode"} <= typed.given
    applied, notes = frameworks.apply(typed)
    assert applied.loss == "full"  # typed: torchtune's chunked loss does not replace it
    assert not any(n.startswith("framework=torchtune: loss=") for n in notes)
    # A change made later (a suggestion's fix) counts as given too.
    changed = request("llama-3-8b train=lora framework=torchtune").updated(loss="fused")
    assert frameworks.apply(changed)[0].loss == "fused"
    # The identity of a question is its fields, not how they came to be.
    assert changed == request("llama-3-8b train=lora framework=torchtune loss=fused")


def test_the_request_is_immutable() -> None:
    typed = request("7b q4")
    with pytest.raises(AttributeError):
        typed.ctx = 1  # type: ignore[misc]
