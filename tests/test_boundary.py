"""The guided solvers (core/boundary.py) against halving, the search they replaced: the same
longest context and largest batch for every bundled model on many setups, in fewer engine runs."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import snapshot
from core.boundary import largest_by_halving, largest_fitting
from core.errors import UserError
from core.estimate import bind
from core.gpus import resolve_gpu
from core.parser import EstimateCommand, parse_command
from core.resolve import resolve_offline
from core.setup import MAX_BATCH_CAP, Setup, context_cap

SETUPS = (
    "q4 gpu=24GB",
    "q4_k_m gpu=rtx-3060 ctx=8k",
    "q4_k_m gpu=8GB ram=32GB",
    "q8 engine=ollama gpu=4090 fa=off",
    "awq engine=vllm gpu=a100-80g",
    "fp8 engine=vllm gpu=8xh100 ctx=32k",
    "bf16 engine=vllm gpu=2xa100-80g kv=fp8",
    "bf16 gpu=h100 attn=eager",
    "nf4 gpu=4090 batch=4",
    "exl2=4.0 gpu=3090",
    "mode=train train=lora gpu=a100-80g ctx=2048",
    "mode=train train=qlora gpu=24GB ctx=4096",
    "mode=train train=full gpu=8xh100 ctx=4096 zero=3",
)


def bound_setup(text: str) -> Setup | None:
    command = parse_command(text)
    assert isinstance(command, EstimateCommand)
    request = command.request
    try:
        model = resolve_offline(request.model)
        return bind(request, model, resolve_gpu(request.gpu), None, None).setup
    except UserError:  # an engine that refuses this model (its own rules); nothing to solve
        return None


class Counted:
    """The setup's fits, counting the engine runs each search makes."""

    def __init__(self, setup: Setup, key: str) -> None:
        self.setup, self.key, self.runs = setup, key, 0

    def change(self, n: int) -> dict[str, object]:
        return {"ctx": n, "prompt": None} if self.key == "ctx" else {"batch": n}

    def fits(self, n: int) -> bool:
        self.runs += 1
        return self.setup.fits(self.setup.run(**self.change(n)))

    def probe(self, n: int) -> tuple[bool, float | None]:
        self.runs += 1
        est = self.setup.run(**self.change(n))
        return self.setup.fits(est), self.setup.margin(est)


def test_the_guided_solvers_find_what_halving_finds_on_every_bundled_model() -> None:
    guided_runs: list[int] = []
    halving_runs: list[int] = []
    compared = 0
    for repo_id in sorted(snapshot.entries()):
        for tail in SETUPS:
            setup = bound_setup(f"{repo_id} {tail}")
            if setup is None:
                continue
            for key, high in (("ctx", context_cap(setup)), ("batch", MAX_BATCH_CAP)):
                guided, halving = Counted(setup, key), Counted(setup, key)
                found = largest_fitting(guided.probe, 1, high)
                expected = largest_by_halving(halving.fits, 1, high)
                assert found == expected, (repo_id, tail, key)
                if found is not None and found < high:  # a boundary, exactly
                    assert halving.fits(found) and not halving.fits(found + 1)
                guided_runs.append(guided.runs)
                halving_runs.append(halving.runs)
                compared += 1
    assert compared > 1000
    assert statistics.mean(guided_runs) * 3 < statistics.mean(halving_runs)
    assert max(guided_runs) <= max(halving_runs)


@pytest.mark.parametrize("steps", [1, 256, 4096])
@given(budget=st.integers(-10, 10**7), base=st.integers(0, 10**6),
       per=st.integers(0, 10**4), high=st.integers(1, 10**6))
def test_any_monotone_margin_gives_halvings_answer(steps: int, budget: int, base: int, per: int,
                                                   high: int) -> None:
    def used(n: int) -> int:  # stepped like llama.cpp's padded context
        return base + per * (-(-n // steps) * steps)

    def probe(n: int) -> tuple[bool, float | None]:
        return used(n) <= budget, budget - used(n)

    assert largest_fitting(probe, 1, high) == \
        largest_by_halving(lambda n: used(n) <= budget, 1, high)


@given(budget=st.integers(0, 10**9), base=st.integers(0, 10**6), per=st.integers(0, 10**3),
       square=st.integers(0, 100), high=st.integers(1, 10**6))
def test_a_curved_margin_gives_halvings_answer(budget: int, base: int, per: int, square: int,
                                               high: int) -> None:
    def used(n: int) -> int:  # eager attention: scores grow with the context squared
        return base + per * n + square * n * n

    def probe(n: int) -> tuple[bool, float | None]:
        return used(n) <= budget, budget - used(n)

    assert largest_fitting(probe, 1, high) == \
        largest_by_halving(lambda n: used(n) <= budget, 1, high)


@given(threshold=st.integers(-5, 10**6), high=st.integers(1, 10**6))
def test_without_a_margin_it_still_finds_the_boundary(threshold: int, high: int) -> None:
    assert largest_fitting(lambda n: (n <= threshold, None), 1, high) == \
        (None if threshold < 1 else min(threshold, high))
