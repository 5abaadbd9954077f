"""Config editor: typed form <-> YAML, validation messages at the field, save/load/revert/diff."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import CONFIG_ROOT


@pytest.fixture
def panel(window):
    config = window.config_panel
    window.show_panel("config")
    config.set_mode("usdt_market_neutral")
    return config


def test_invalid_value_shows_the_message_next_to_the_field(panel, qtbot):
    editor = panel.form.editor("leverage.target_ltv")
    editor.line.clear()
    qtbot.keyClicks(editor.line, "1.2")
    assert editor.message.isVisible()
    assert "out of range" in editor.message.text() and "target_ltv < 1" in editor.message.text()
    assert editor.line.property("invalid") is True
    assert "target_ltv: 1.2" in panel.yaml_edit.toPlainText()
    assert not panel.validation.ok and "error" in panel.status_label.text()
    snapshot = panel.draft_for("usdt_market_neutral")
    assert snapshot is not None and not snapshot.valid

    editor.line.clear()
    qtbot.keyClicks(editor.line, "abc")
    assert "expected a number" in editor.message.text()

    editor.line.clear()
    qtbot.keyClicks(editor.line, "0.85")
    assert not editor.message.isVisible()
    assert panel.validation.ok


def test_cross_field_rules_land_on_the_field_they_name(panel):
    allocation = panel.form.editor("hedge.allocation")
    allocation.rows["okx"][0].setChecked(False)
    assert "sum to" in allocation.message.text()
    assert "allocation: {binance: 0.4, bybit: 0.3}" in panel.yaml_edit.toPlainText()
    panel.share_class_editor.combo.setCurrentIndex(panel.share_class_editor.combo.findData("eth_directional"))
    assert "reports in USDT" in panel.share_class_editor.message.text()


def test_rewards_mode_is_a_choice_and_wsteth_allows_base_only(panel):
    rewards = panel.form.editor("staking.rewards_mode")
    assert [rewards.combo.itemText(i) for i in range(rewards.combo.count())] == [
        "base_only", "base_eigen", "base_eigen_seasonal"]
    assert rewards.combo.currentText() == "base_eigen"
    lst = panel.form.editor("staking.lst_type")
    lst.combo.setCurrentIndex(lst.combo.findText("wstETH"))
    assert "allowed: base_only" in rewards.message.text() and not panel.validation.ok
    rewards.combo.setCurrentIndex(rewards.combo.findText("base_only"))
    assert not rewards.message.isVisible()
    assert "rewards_mode: base_only" in panel.yaml_edit.toPlainText()


def test_yaml_edits_update_the_form_and_comments_survive_form_edits(panel):
    text = panel.yaml_edit.toPlainText()
    assert text.startswith("# usdt_market_neutral"), "the shipped file's comments are shown"
    panel.yaml_edit.setPlainText(text.replace("hf_floor: 1.015", "hf_floor: 0.9"))
    panel.flush_yaml()
    editor = panel.form.editor("rebalancing.hf_floor")
    assert editor.line.text() == "0.9" and "hf_floor > 1" in editor.message.text()
    marked = [sel.cursor.blockNumber() + 1 for sel in panel.yaml_edit.extraSelections()]
    hf_line = next(i for i, line in enumerate(panel.yaml_edit.toPlainText().splitlines(), 1) if "hf_floor: 0.9" in line)
    assert marked == [hf_line], "the YAML view marks the offending line"
    panel.set_field("rebalancing.hf_floor", 1.02)
    assert panel.yaml_edit.toPlainText().startswith("# usdt_market_neutral")
    assert "hf_floor: 1.02" in panel.yaml_edit.toPlainText()

    panel.yaml_edit.setPlainText("mode: [unclosed\n")
    panel.flush_yaml()
    assert "syntax error" in panel.form.banner.text()
    assert not panel.form.editor("leverage.target_ltv").line.isEnabled()
    panel.revert()
    assert panel.validation.ok and panel.form.editor("leverage.target_ltv").line.isEnabled()


def test_diff_against_shipped_and_changed_markers(panel):
    assert "No differences" in panel.diff_view.toPlainText()
    panel.set_field("hedge.margin_ratio_target", 0.4)
    diff = panel.diff_view.toPlainText()
    assert "-  margin_ratio_target: 0.35" in diff and "+  margin_ratio_target: 0.4" in diff
    assert panel.form.labels["hedge.margin_ratio_target"].text().startswith("●")
    assert "differs from shipped" in panel.file_label.text()
    panel.reset_to_shipped()
    assert "No differences" in panel.diff_view.toPlainText()


def test_save_never_overwrites_the_shipped_defaults_and_load_reads_back(panel, tmp_path):
    shipped = CONFIG_ROOT / "modes" / "usdt_market_neutral.yaml"
    before = shipped.read_text()
    panel.set_field("leverage.target_ltv", 0.8)
    assert panel.save_to(shipped) is None
    assert "read-only" in panel.form.banner.text()
    assert shipped.read_text() == before

    target = tmp_path / "my_modes" / "umn.yaml"
    saved = panel.save_to(target)
    assert saved == target.resolve() and "target_ltv: 0.8" in target.read_text()
    assert not panel.draft.modified and str(target.resolve()) in panel.file_label.text()

    panel.set_field("leverage.target_ltv", 1.5)
    assert panel.save_to(tmp_path / "bad.yaml") is None, "invalid documents are not saved"
    panel.revert()
    assert panel.form.editor("leverage.target_ltv").line.text() == "0.8"

    panel.set_mode("pure_lending")
    assert panel.load_file(target)
    assert panel.mode == "usdt_market_neutral"
    assert panel.form.editor("leverage.target_ltv").line.text() == "0.8"

    broken = tmp_path / "broken.yaml"
    broken.write_text("mode: not_a_mode\n")
    assert not panel.load_file(broken)
    assert "cannot tell which mode" in panel.form.banner.text()


def test_each_mode_keeps_its_own_draft(panel):
    panel.set_field("leverage.target_ltv", 0.7)
    panel.set_mode("eth_basis")
    assert panel.draft_for("eth_basis").valid
    panel.set_mode("usdt_market_neutral")
    assert panel.form.editor("leverage.target_ltv").line.text() == "0.7"


def test_user_modes_dir_is_under_the_state_folder(state_dir):
    from app.settings import user_modes_dir

    assert user_modes_dir() == Path(state_dir) / "modes"
