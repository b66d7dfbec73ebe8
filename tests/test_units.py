from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import UserError
from core.units import (
    MAX_TOKENS,
    format_bytes,
    format_tokens,
    parse_bytes,
    parse_tokens,
    quoted,
)

GiB = 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("4k", 4096),
        ("4K", 4096),
        ("32K", 32768),
        ("128k", 131072),
        ("1m", 1048576),
        ("1M", 1048576),
        ("1.5k", 1536),
        ("0.5k", 512),
        (".5k", 512),
        ("8_192", 8192),
        ("8,192", 8192),
        ("1,048,576", 1048576),
        (" 2048 ", 2048),
        ("8 k", 8192),
        ("1", 1),
        ("10m", MAX_TOKENS),
        ("1.3k", 1331),  # 1331.2 rounds to the nearest token
    ],
)
def test_parse_tokens(text: str, expected: int) -> None:
    assert parse_tokens(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing"),
        ("abc", "Could not read 'abc'"),
        ("4kk", "Could not read"),
        ("4g", "Could not read"),
        ("1e6", "Could not read"),
        ("81_92", "Could not read"),
        ("1,5k", "Could not read"),
        ("-5", "at least 1"),
        ("0", "at least 1"),
        ("0k", "at least 1"),
        ("0.0001k", "at least 1"),
        ("1.5", "whole number"),
        ("11m", "at most 10,485,760"),
        ("9" * 500, "at most"),
        ("٤٠٩٦", "Could not read"),  # non-ASCII digits are not numbers here
    ],
)
def test_parse_tokens_errors(text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_tokens(text)
    assert message in info.value.message
    assert info.value.hint


def test_parse_tokens_names_the_value() -> None:
    with pytest.raises(UserError, match="batch size"):
        parse_tokens("x", name="batch size")
    with pytest.raises(UserError, match="at most 8"):
        parse_tokens("9", limit=8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24GB", 24 * 10**9),
        ("24gb", 24 * 10**9),
        ("24 GB", 24 * 10**9),
        ("24GiB", 24 * GiB),
        ("24G", 24 * GiB),  # a bare G is binary, as in a100-80g
        ("24g", 24 * GiB),
        ("24Gi", 24 * GiB),
        ("512MB", 512 * 10**6),
        ("512MiB", 512 * 1024**2),
        ("1.5TB", 1_500_000_000_000),
        ("1.5TiB", 1536 * GiB),
        ("80 GiB", 80 * GiB),
        ("100KB", 100_000),
        ("1024B", 1024),
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Could not read"),
        ("24", "needs a unit"),
        ("GB", "Could not read"),
        ("-24GB", "Could not read"),
        ("0GB", "more than zero"),
        ("24XB", "Could not read"),
        ("2PB", "larger than 1 PiB"),
        ("99999999TB", "larger than 1 PiB"),
    ],
)
def test_parse_bytes_errors(text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_bytes(text)
    assert message in info.value.message
    assert "GB = 10^9" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (812, "812 B"),
        (812 * 1024**2, "812 MiB"),
        (int(13.5 * GiB), "13.5 GiB"),
        (24 * GiB, "24 GiB"),
        (int(1.25 * GiB), "1.25 GiB"),
        (int(141.2 * GiB), "141 GiB"),
        (1024**2 * 1023 + 1000 * 1024, "1 GiB"),  # would round to "1024 MiB"
        (-int(1.5 * GiB), "-1.5 GiB"),
        (3 * 1024**4, "3 TiB"),
        (1536, "1.5 KiB"),
    ],
)
def test_format_bytes(n: int, expected: str) -> None:
    assert format_bytes(n) == expected


def test_format_tokens() -> None:
    assert format_tokens(131072) == "131,072"
    assert format_tokens(512) == "512"


def test_quoted_is_one_safe_line() -> None:
    assert quoted("abc") == "'abc'"
    assert quoted("a\nb\x00") == "'a\ufffdb\ufffd'"
    assert len(quoted("x" * 500)) == 42


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_TOKENS))
def test_tokens_round_trip(n: int) -> None:
    assert parse_tokens(str(n)) == n
    assert parse_tokens(format_tokens(n)) == n


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_units_only_raise_user_error(text: str) -> None:
    for parse in (parse_tokens, parse_bytes):
        try:
            assert parse(text) >= 1
        except UserError as error:
            assert error.message.endswith(".") and "\n" not in error.message


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(1024**5), max_value=1024**5))
def test_format_bytes_is_short_and_reads_back(n: int) -> None:
    text = format_bytes(n)
    number, unit = text.split(" ")
    assert unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    assert abs(float(number)) < 1024
    if n > 0:  # within the rounding of three significant digits
        assert parse_bytes(text.replace(" ", "")) == pytest.approx(n, rel=0.01, abs=1)
