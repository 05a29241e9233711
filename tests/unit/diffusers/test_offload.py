"""`offload=auto` against module sizes and GPU memory, and the step down after an OOM
(pure arithmetic; no torch)."""

from __future__ import annotations

import pytest

from i2v.engines.diffusers.offload import OFFLOAD_STEPS, choose_offload, fits, step_down

GIB = 1024**3
H100 = 85_520_809_984  # torch.cuda.get_device_properties(...).total_memory of an 80 GB card
H200 = 150_109_880_320  # 141 GB
RTX_4090 = 25_393_692_672  # 24 GB

# Wan2.2 I2V-A14B in bf16 (reference/real-model-configs.md): two 14B experts, UMT5-XXL,
# the Wan2.1 VAE (0.25 GiB)
A14B = [int(26.6 * GIB), int(26.6 * GIB), int(12.5 * GIB), GIB // 4]
# Wan2.2 TI2V-5B: 5B transformer (9.3 GiB), UMT5-XXL, the Wan2.2 VAE (1.3 GiB)
TI2V_5B = [int(9.3 * GIB), int(12.5 * GIB), int(1.3 * GIB)]


@pytest.mark.parametrize(
    ("sizes", "total", "expected"),
    [
        # the bug: 78 GiB of weights on an 80 GB card left no room and picked "none"
        (A14B, H100, "model"),
        (A14B, H200, "none"),
        (TI2V_5B, H100, "none"),
        # on a 24 GB card UMT5-XXL alone leaves under the 12 GiB minimum: block offload
        (TI2V_5B, RTX_4090, "group"),
        (A14B, RTX_4090, "group"),
    ],
)
def test_auto_leaves_room_for_activations_and_the_decode(
    sizes: list[int], total: int, expected: str
) -> None:
    assert choose_offload("auto", sizes, total) == expected


def test_weights_fit_only_within_the_share_and_above_the_minimum_headroom() -> None:
    assert fits(48 * GIB, 80 * GIB)  # 60 %
    assert not fits(49 * GIB, 80 * GIB)
    assert not fits(10 * GIB, 20 * GIB)  # 50 %, but only 10 GiB left to render in
    assert fits(8 * GIB, 20 * GIB)


@pytest.mark.parametrize("choice", ["none", "model", "group", "sequential"])
def test_an_explicit_mode_is_kept(choice: str) -> None:
    assert choose_offload(choice, A14B, H200) == choice
    assert choose_offload(choice, [], 0) == choice


def test_an_oom_steps_down_one_mode_at_a_time_and_stops_at_sequential() -> None:
    seen = ["none"]
    while (following := step_down(seen[-1])) is not None:
        seen.append(following)
    assert tuple(seen) == OFFLOAD_STEPS == ("none", "model", "group", "sequential")
