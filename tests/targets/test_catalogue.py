import pytest

from edgessl.targets.catalogue import TargetError, load_catalogue, resolve


def test_every_family_has_a_default_board_and_sources():
    cat = load_catalogue()
    assert set(cat["families"]) >= {"cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "esp32-s3"}
    for name, fam in cat["families"].items():
        assert fam["default_board"] in cat["boards"] and fam["source"], name
        assert set(fam["macs_per_cycle"]) == {"conv", "depthwise", "fully_connected", "matmul"}
    for name, board in cat["boards"].items():
        assert board["source"] and board["family"] in cat["families"], name


def test_family_resolves_to_its_default_board_and_boards_by_name():
    assert resolve("cortex-m7").name == "stm32h743"
    assert resolve("cortex-m7", "stm32f746").sram == 320 * 1024
    assert resolve("nrf52840").family == "cortex-m4"


def test_unknown_target_lists_the_known_ones():
    with pytest.raises(TargetError, match="unknown target 'cortex-m99'.*cortex-m7.*stm32h743"):
        resolve("cortex-m99")
    with pytest.raises(TargetError, match="is a cortex-m4"):
        resolve("cortex-m7", "nrf52840")


def test_user_boards_extend_the_catalogue(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("boards:\n  myboard: {family: cortex-m7, clock_mhz: 300, flash: 4194304, sram: 2097152, source: mine}\n")
    assert resolve("myboard", extra=extra).clock_mhz == 300
