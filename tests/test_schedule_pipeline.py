"""Budgets through doit, as a user meets them: digits on a board whose SRAM cannot hold the arena stops at the
schedule task; on a board where the arena fits but arena + static RAM + stack does not, it stops after the board
build. Both name the budget, the need and the layer at the peak, without a traceback."""
import json
from pathlib import Path

import pytest

from helpers import ROOT, have_cross_tools, run_doit

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")]

BOARD = (ROOT / "boards" / "stm32f746.yaml").read_text().replace("name: stm32f746", "name: tinyboard")


def _board(tmp: Path, sram: int, reserved: int) -> Path:
    path = tmp / str(sram) / "tinyboard.yaml"  # a board's name must equal its file name
    path.parent.mkdir()
    text = BOARD.replace("sram_bytes: 327680", f"sram_bytes: {sram}").replace("  sram_bytes: 8192 ",
                                                                                f"  sram_bytes: {reserved} ")
    path.write_text(text)
    return path


def test_over_budget_stops_with_a_clear_error(tmp_path: Path):
    build = tmp_path / "build"
    # budget 808 B: the digits arena (about 2 KB) alone does not fit -> the schedule task refuses
    small = run_doit("run", "pipeline=digits", f"build={build}", f"deploy.board={_board(tmp_path, 9000, 8192)}")
    assert small.returncode != 0
    output = small.stdout + small.stderr
    assert "Traceback" not in output
    for fragment in ("SRAM budget exceeded", "activation arena alone needs", "board 'tinyboard' allows 808 B",
                     "The peak is at layer"):
        assert fragment in output, output[-3000:]
    plan = json.loads((build / "schedule" / "plan.json").read_text())
    assert plan["arena_bytes"] > 808 and plan["arena_bytes"] <= plan["baseline"]["arena_bytes"]
    assert not (build / "codegen" / "model.c").exists()

    # budget 4096 B: the arena fits, arena + static RAM + stack does not -> the board build refuses
    mid = run_doit("run", "pipeline=digits", f"build={build}", f"deploy.board={_board(tmp_path, 12288, 8192)}")
    assert mid.returncode != 0
    output = mid.stdout + mid.stderr
    assert "Traceback" not in output
    for fragment in ("SRAM budget exceeded on board 'tinyboard'", "but the budget is 4,096 B", "activation arena",
                     "stack", "the arena's peak is at layer"):
        assert fragment in output, output[-3000:]
    numbers = json.loads((build / "budget.json").read_text())
    assert numbers["arena_bytes"] == json.loads((build / "schedule" / "plan.json").read_text())["arena_bytes"]
    assert numbers["sram_bytes"] == numbers["arena_bytes"] + numbers["other_static_ram_bytes"] + numbers["stack_bytes"]
    assert numbers["sram_bytes"] > 4096 and not numbers["sram_fits"] and numbers["flash_fits"]
    # the whole run's bound follows its deepest chain (newlib's printf path); the inference's own chain is beside it
    assert numbers["stack_bytes"] > 0 and numbers["stack_chain"][0] == "Reset_Handler"
    assert 0 < numbers["inference_stack_bytes"] <= numbers["stack_bytes"]
