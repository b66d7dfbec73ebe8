from __future__ import annotations

import pytest

from core.answer import estimate_command
from core.parser import EstimateCommand, parse_command
from core.report import Report


def run_command(text: str) -> Report:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    return estimate_command(command)


@pytest.fixture
def fits():
    return run_command
