"""Training estimates through the real path: command -> parser -> snapshot -> Report."""

from __future__ import annotations

import pytest

from bench.training_reference import compare_all
from core.engines.details import TrainingDetails
from core.engines.training import lora_params
from core.resolve import resolve_offline
from tests.conftest import details_of, run_command

GIB = 1 << 30
LLAMA2_7B = 6_738_415_616


def test_lora_trainable_parameters_match_peft() -> None:
    spec = resolve_offline("meta-llama/Llama-2-7b-hf").spec
    # PEFT's print_trainable_parameters for Llama-2-7B: r=8 on q_proj,v_proj; r=16 all-linear
    assert lora_params(spec, 8, "qv") == 4_194_304
    assert lora_params(spec, 16, "all") == 39_976_960


def test_full_fine_tuning_bytes_per_parameter_follow_the_precision() -> None:
    mixed = run_command("meta-llama/Llama-2-7b-hf train=full gpu=h100")
    assert mixed.breakdown.gradients == 4 * LLAMA2_7B
    assert mixed.breakdown.optimizer == 8 * LLAMA2_7B  # two fp32 AdamW states
    assert mixed.breakdown.weights > 4 * LLAMA2_7B  # fp32 master + autocast's bf16 copies
    pure = run_command("meta-llama/Llama-2-7b-hf train=full precision=bf16 gpu=h100")
    assert pure.breakdown.weights == pure.breakdown.gradients == 2 * LLAMA2_7B
    assert pure.breakdown.optimizer == 4 * LLAMA2_7B
    eight = run_command("meta-llama/Llama-2-7b-hf train=full optim=adamw8bit gpu=h100")
    assert eight.breakdown.optimizer == pytest.approx(2 * LLAMA2_7B, rel=0.01)


def test_zero_stages_shard_states_then_gradients_then_weights() -> None:
    base = "meta-llama/Llama-2-7b-hf train=full precision=bf16 gpu=4xa100-80g"
    ddp, z1, z2, z3 = (run_command(f"{base} zero={z}").breakdown for z in range(4))
    assert z1.optimizer == ddp.optimizer // 4
    assert z2.gradients == z1.gradients // 4 and z2.optimizer == z1.optimizer
    assert z3.weights == z2.weights // 4
    assert ddp.gradients == 2 * 2 * LLAMA2_7B  # DDP's bucket buffers copy the gradients


def test_cpu_offload_moves_states_to_ram_and_says_how_much() -> None:
    report = run_command("meta-llama/Llama-2-7b-hf train=full gpu=2xa100-80g zero=3 offload=cpu")
    assert report.breakdown.optimizer == 0
    assert details_of(report, TrainingDetails).cpu_ram_bytes >= 8 * LLAMA2_7B
    assert any("offloaded to CPU RAM" in a for a in report.assumptions)


def test_checkpointing_trades_memory_for_compute() -> None:
    off = run_command("meta-llama/Llama-2-7b-hf train=lora ctx=2048 batch=4 gc=off gpu=a100-80g")
    on = run_command("meta-llama/Llama-2-7b-hf train=lora ctx=2048 batch=4 gc=on gpu=a100-80g")
    assert on.breakdown.activations < off.breakdown.activations / 3
    assert on.speed.step_seconds > off.speed.step_seconds  # the forward runs twice


def test_activations_grow_with_batch_and_sequence() -> None:
    def acts(batch: int, ctx: int) -> int:
        return run_command(f"meta-llama/Llama-2-7b-hf train=lora ctx={ctx} batch={batch} "
                           "gpu=a100-80g").breakdown.activations

    assert acts(2, 1024) == pytest.approx(2 * acts(1, 1024), rel=0.01)
    assert acts(1, 2048) == pytest.approx(2 * acts(1, 1024), rel=0.01)  # SDPA: linear in seq
    eager = run_command("meta-llama/Llama-2-7b-hf train=lora ctx=2048 attn=eager gpu=a100-80g")
    assert eager.breakdown.activations > acts(1, 2048)  # eager keeps the s x s scores


def test_full_fine_tuning_on_a_4090_suggests_what_fits() -> None:
    report = run_command("meta-llama/Llama-2-7b-hf train=full ctx=2048 gpu=4090")
    assert not report.fits
    changes = [s.change for s in report.suggestions]
    assert "train=qlora" in changes
    assert any(c.startswith("gpu=") and c.endswith("x4090 zero=3") for c in changes)
    for suggestion in report.suggestions:
        words = ["meta-llama/Llama-2-7b-hf", "train=full", "ctx=2048", "gpu=4090"]
        change = suggestion.change
        if change.startswith("gpu="):
            words = [w for w in words if not w.startswith("gpu=")]
        if change.startswith("train="):
            words = [w for w in words if not w.startswith("train=")]
        assert run_command(" ".join([*words, change])).fits, change


def test_largest_micro_batch_and_sequence_are_boundaries() -> None:
    cmd = "meta-llama/Llama-2-7b-hf train=qlora ctx=2048 gpu=4090"
    report = run_command(cmd)
    batch = report.max_batch
    assert batch and run_command(f"{cmd} batch={batch}").fits
    assert not run_command(f"{cmd} batch={batch + 1}").fits


def test_training_speed_counts_six_flops_per_parameter_per_token() -> None:
    report = run_command("meta-llama/Llama-2-7b-hf train=full precision=bf16 ctx=2048 batch=1 "
                         "gc=off gpu=8xh100 zero=3")
    assert details_of(report, TrainingDetails).flops_per_token == 6 * LLAMA2_7B
    assert report.speed.step_seconds and report.speed.train_tokens_per_s


def test_checkpointed_training_reports_the_allocated_peak_beside_the_reserved_one() -> None:
    on = run_command("meta-llama/Llama-3.1-8B-Instruct train=qlora ctx=4096 gpu=4090 gc=on")
    reserved = on.total_bytes - on.breakdown.overhead
    allocated = details_of(on, TrainingDetails).allocated_bytes
    assert 0.8 * reserved < allocated < reserved
    assert any("max_memory_allocated" in a for a in on.assumptions)
    # Without checkpointing nothing is freed in between: the two peaks are one.
    off = run_command("meta-llama/Llama-3.1-8B-Instruct train=qlora ctx=4096 gpu=a100-80g gc=off")
    assert details_of(off, TrainingDetails).allocated_bytes == (off.total_bytes
                                                                - off.breakdown.overhead)
    assert not any("max_memory_allocated" in a for a in off.assumptions)


def test_old_bitsandbytes_keeps_each_4bit_layers_input() -> None:
    base = "meta-llama/Llama-2-13b-hf train=qlora r=8 target=qv ctx=1304 gpu=a100-40gb"
    current = run_command(f"{base} gc=off")
    old = run_command(f"{base} gc=off bnb=0.41")
    # Llama-2-13B keeps, per layer and token, the attention and MLP inputs (5,120 each), the
    # attention output (5,120) and the down projection's input (13,824) in bf16: 40 layers.
    per_layer = 2 * (3 * 5120 + 13824) * 1304
    assert old.breakdown.activations - current.breakdown.activations == 40 * per_layer
    assert any("bitsandbytes 0.41" in a for a in old.assumptions)
    # With checkpointing only the layer being recomputed keeps them.
    checkpointed = run_command(f"{base} gc=on bnb=0.41").breakdown.activations
    assert checkpointed - run_command(f"{base} gc=on").breakdown.activations == per_layer
    # 0.43.2 freed them.
    assert run_command(f"{base} gc=off bnb=0.43.2").breakdown == current.breakdown
    # A 16-bit base has no 4-bit layers: the key changes nothing and the answer says so.
    lora = run_command("meta-llama/Llama-2-13b-hf train=lora bnb=0.41 gpu=a100-40gb")
    assert any("4-bit base" in w for w in lora.warnings)


@pytest.mark.parametrize("record", ["m074", "m176", "m180", "m181", "m183", "m212", "m214", "m215",
                                    "m217", "m219", "m220", "m221"])
def test_published_training_measurements_within_ten_percent(record: str) -> None:
    comparison = next(c for c in compare_all() if c.id == record)
    assert abs(comparison.error) <= 0.10, f"{record}: {comparison.error:+.1%}"


def test_lora_over_int8_keeps_int8_inputs_and_checkpoints_by_default() -> None:
    """PEFT's prepare_model_for_kbit_training turns checkpointing on for any bitsandbytes base,
    and LLM.int8's MatMul8bitLt saves an int8 copy of every linear's input for backward."""
    from tests.conftest import run_command

    int8 = run_command("meta-llama/Llama-2-7b-hf int8 train=lora ctx=2048 batch=4 gpu=24GB")
    assert int8.engine_details.engine.gradient_checkpointing
    bf16 = run_command("meta-llama/Llama-2-7b-hf train=lora gc=off ctx=2048 batch=4 gpu=80GB")
    int8_off = run_command("meta-llama/Llama-2-7b-hf int8 train=lora gc=off ctx=2048 batch=4 "
                           "gpu=80GB")
    tokens, layers = 4 * 2048, 32
    # q, k, v each quantize the 4096-wide normed state; o 4096; gate, up 4096 each; down 11008
    saved = tokens * layers * (3 * 4096 + 4096 + 2 * 4096 + 11008)
    extra = int8_off.breakdown.activations - bf16.breakdown.activations
    assert saved <= extra <= saved + 2 * 11008 * 4096 * 2  # + one dequantized weight
