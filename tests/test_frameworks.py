"""Training frameworks' own defaults (issue 22): framework= sets what each one allocates when
nothing else is typed, each default citing its source, explicit keys win, and the memory model
covers what the presets need (activation offload, optimizer in backward, PEFT's upcast)."""

from __future__ import annotations

import pytest

from adapters.text import render_text
from core.engines.details import TrainingDetails
from core.errors import UserError
from core.frameworks import PRESETS
from tests.conftest import run_command

GIB = 1 << 30
TORCHTUNE = ("meta-llama/Llama-3.2-3B bf16 train=full framework=torchtune ctx=4096 batch=2 "
             "gpu=a100-80g")


def details(report) -> TrainingDetails:
    found = report.engine_details.engine
    assert isinstance(found, TrainingDetails)
    return found


def test_torchtune_and_trl_differ_by_master_weights_and_optimizer_precision() -> None:
    tune = run_command(TORCHTUNE)
    trl = run_command(TORCHTUNE.replace("framework=torchtune", "framework=trl"))
    params = tune.model.params
    assert details(tune).precision == "bf16" and details(trl).precision == "mixed"
    # fp32 master weights (4 bytes) plus autocast's bf16 copies, against bf16 weights alone
    assert trl.breakdown.weights - tune.breakdown.weights > 2 * params
    # AdamW in fp32 (8 bytes a parameter) against torchtune's paged 8-bit AdamW (2 bytes)
    assert trl.breakdown.optimizer > 3.5 * tune.breakdown.optimizer
    # optimizer_in_bwd: one parameter's gradient at a time, not all of them
    assert tune.breakdown.gradients < 0.2 * trl.breakdown.gradients / 2
    cited = [a for a in tune.assumptions if a.startswith("framework=torchtune:")]
    assert any("precision=bf16" in a and "full_finetune_single_device.py" in a for a in cited)
    assert any("trl v1.9" in a for a in trl.assumptions if a.startswith("framework=trl:"))


def test_explicit_keys_win_over_the_preset() -> None:
    report = run_command(TORCHTUNE + " precision=mixed optim=adamw opt_in_bwd=off")
    assert details(report).precision == "mixed"
    assert not any("precision=" in a for a in report.assumptions if a.startswith("framework="))


def test_unsloth_keeps_activations_in_cpu_ram_and_shows_the_gpu_peak() -> None:
    report = run_command("meta-llama/Llama-3.1-8B framework=unsloth ctx=8192 gpu=16GB")
    assert report.request["train"] == "qlora" and report.request["act_offload"] is True
    ram = details(report).activation_ram_bytes
    # every checkpointed layer input but two: 30 x 8,192 tokens x 4,096 x 2 bytes
    assert ram == 30 * 8192 * 4096 * 2
    plain = run_command("meta-llama/Llama-3.1-8B train=qlora ctx=8192 gpu=16GB")
    assert plain.total_bytes - report.total_bytes > 2 * GIB
    shown = render_text(report)
    assert "CPU RAM for offloaded activations:" in shown and "while the GPU peaks at" in shown


def test_peft_upcasts_what_bitsandbytes_leaves_in_16_bit() -> None:
    """The HF Trainer + PEFT recipe (fits' default) runs prepare_model_for_kbit_training, which
    casts embeddings, LM head and norms to fp32; torchtune and Unsloth prepare their own way."""
    peft = run_command("meta-llama/Llama-3.1-8B train=qlora gc=on ctx=2048 gpu=24GB")
    tune = run_command("meta-llama/Llama-3.1-8B train=qlora gc=on ctx=2048 gpu=24GB "
                       "framework=torchtune loss=full")
    embeddings_and_head = 2 * 128256 * 4096
    assert peft.breakdown.weights - tune.breakdown.weights >= 2 * embeddings_and_head
    assert any("prepare_model_for_kbit_training" in a for a in peft.assumptions)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_answers_and_cites_each_default_it_takes(name: str) -> None:
    report = run_command(f"meta-llama/Llama-3.2-1B framework={name} ctx=1024 gpu=24GB")
    taken = [a for a in report.assumptions if a.startswith(f"framework={name}:")]
    assert len(taken) >= 1 and all("(" in a and ")" in a for a in taken)


def test_a_framework_means_training() -> None:
    assert run_command("meta-llama/Llama-3.2-1B framework=axolotl gpu=24GB").request["mode"] == \
        "train"
    with pytest.raises(UserError, match="applies to training only"):
        run_command("meta-llama/Llama-3.2-1B framework=trl mode=infer gpu=24GB")
    with pytest.raises(UserError, match="framework"):
        run_command("meta-llama/Llama-3.2-1B framework=deepspeedx gpu=24GB")
