"""What the headless commands print for bad and hostile input: one clear message, exit 2, no traceback.

Most cases run `main.main` in this process (the same parser, handlers and prints as the console
script, without a second interpreter start per case); the memory-exhausting alias bomb also runs as
a real process, since "it exits" is the point there.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import main
from tests.conftest import REPO_ROOT
from tests.unit.test_config_hostile import ALIAS_BOMB


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main.main(argv)
    except SystemExit as exc:           # argparse usage errors
        code = int(exc.code)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture(autouse=True)
def _private_cache(cache_dir, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))


def test_alias_bomb_in_a_real_process_exits_2_quickly(tmp_path: Path, cache_dir):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_dir))
    proc = subprocess.run([sys.executable, "main.py", "backtest", "--mode", "eth_basis", "--config", str(bomb)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(bomb) in proc.stderr and "alias bomb" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("text, needles", [
    ("hedge: &h\n  inner: *h\n", ["line 2", "refers to its own anchor"]),
    ("hedge: " + "[" * 3000 + "\n", ["line 1", "deeper than 32 levels"]),
    ("hedge:\n  margin_ratio_target: 2024-13-45\n", ["hedge.margin_ratio_target", "line 2", "not one"]),
])
def test_hostile_config_files_name_file_and_line(text, needles, tmp_path, capsys):
    path = tmp_path / "o.yaml"
    path.write_text(text)
    code, _, err = run(["backtest", "--mode", "eth_basis", "--config", str(path), "--out", str(tmp_path / "r")],
                       capsys)
    assert code == 2 and str(path) in err and err.count("\n") == 1
    for needle in needles:
        assert needle in err


@pytest.mark.parametrize("value, needle", [
    ("[" * 3000, "deeper than 32 levels"),
    ("2024-13-45", "'2024-13-45' looks like a date but is not one"),
])
def test_hostile_set_values_name_the_key(value, needle, tmp_path, capsys):
    code, _, err = run(["backtest", "--mode", "eth_basis", "--set", f"hedge.margin_ratio_target={value}",
                        "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.startswith("error: invalid configuration: <command line>: hedge.margin_ratio_target:")
    assert needle in err and len(err) < 300


def test_config_folder_is_called_a_folder(tmp_path, capsys):
    code, _, err = run(["backtest", "--mode", "eth_basis", "--config", str(tmp_path)], capsys)
    assert code == 2 and err == f"error: --config {tmp_path}: is a folder; give the override YAML file inside it\n"


def test_one_config_error_has_no_doubled_header(tmp_path, capsys):
    code, _, err = run(["backtest", "--mode", "eth_basis", "--set", "hedge.margin_ratio_target=abc",
                        "--out", str(tmp_path / "r")], capsys)
    assert code == 2
    assert err == "error: invalid configuration: <command line>: hedge.margin_ratio_target: expected a number, " \
                  "got text 'abc'\n"


def test_set_error_blames_the_override(tmp_path, capsys):
    code, _, err = run(["backtest", "--mode", "eth_basis", "--set", "hedge.allocation.binance=0.9",
                        "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.startswith("error: invalid configuration: <command line>: hedge.allocation: ")
    assert "after --set hedge.allocation.binance" in err


def test_window_not_covered_lists_the_available_window_first_on_short_lines(tmp_path, capsys):
    code, _, err = run(["backtest", "--mode", "eth_basis", "--start", "2019-01-01", "--out", str(tmp_path / "r")],
                       capsys)
    lines = err.splitlines()
    assert code == 2
    assert lines[0] == "error: the data covers 2024-01-01 00:00..2025-09-18 23:00 UTC for this run;"
    assert lines[1].startswith("the requested window 2019-01-01 00:00..")
    assert len(lines) >= 4 and max(len(line) for line in lines) <= 110
    assert "bybit ETHUSDT spot close" in err and "execution cost ETH_USDT 10k" in err


@pytest.mark.parametrize("argv, needle", [
    (["live", "--mode", "eth_basis", "--execution", "live", "--dead-man", "inf"],
     "--dead-man must be a finite number"),
    (["live", "--mode", "eth_basis", "--dead-man", "nan"], "--dead-man must be a finite number"),
    (["live", "--mode", "eth_basis", "--dead-man", "1e9"], "--dead-man must be within 1..3600 s, or 0 (off)"),
    (["live", "--mode", "eth_basis", "--tick", "inf"], "--tick must be a finite number"),
    (["live", "--mode", "eth_basis", "--tick", "0"], "--tick must be within 0.05..3600 s"),
    (["live", "--mode", "eth_basis", "--cancel-timeout", "nan"], "--cancel-timeout must be a finite number"),
    (["live", "--mode", "eth_basis", "--data-timeout", "-1"], "--data-timeout must be within 0.1..600 s"),
    (["live", "--mode", "eth_basis", "--max-ticks", "0"], "--max-ticks must be within 1..1,000,000,000"),
    (["check-venues", "--mode", "eth_basis", "--env", "testnet", "--timeout", "inf"],
     "--timeout must be a finite number"),
    (["check-venues", "--mode", "eth_basis", "--env", "testnet", "--timeout", "0"], "--timeout must be within"),
])
def test_numeric_options_reject_non_finite_and_absurd_values(argv, needle, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2 and err.startswith("error: ") and needle in err and err.count("\n") == 1


def test_credentials_set_usage_shows_field_as_required(capsys):
    code, _, err = run(["credentials", "set", "--env", "testnet", "--venue", "okx"], capsys)
    assert code == 2
    assert "--field FIELD" in err and "[--field FIELD]" not in err
    assert "the following arguments are required: --field" in err


def test_production_confirmation_message_has_no_internal_names(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))      # the journal would go here
    code, _, err = run(["live", "--mode", "eth_basis", "--execution", "live", "--env", "production",
                        "--dead-man", "0"], capsys)
    assert code == 2 and "--yes-production" in err and "confirm_production" not in err
