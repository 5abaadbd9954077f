"""The HTML report's contents: what a run records is shown, what an older run does not record is
said, and the report's numbers are the run's own (no Qt, no browser: see the integration test)."""
from __future__ import annotations

import json
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest

from app.report import ReportError, build_report, load_run, record_from_result, resolve_run_dir
from engine.services.backtest import BacktestRequest
from engine.services.results_io import write_results


@pytest.fixture(scope="module")
def result(backtest_service):
    return backtest_service.run(BacktestRequest(mode="eth_leveraged", start="2025-03-01", end="2025-03-20"))


def _plotly_traces(html: str) -> list[str]:
    return [json.loads(f'"{name}"') for name in re.findall(r'"name":"([^"]+)"', html)]


def test_an_older_run_folder_gets_a_full_report_that_says_what_it_does_not_record(result, tmp_path):
    write_results(result, tmp_path / "run")
    record = load_run(tmp_path / "run")
    html = unescape(build_report(record))
    s = result.summary
    assert f"{s['final_value']:,.4f} ETH" in html and f"{100 * s['apr']:,.2f} %" in html
    assert "not recorded by this run" in html                       # exit value
    assert "does not record: run_id, code_version, data_hashes" in html
    assert "the shipped eth_leveraged.yaml (this run did not record its effective configuration)" in html
    assert "no balance_sheet.csv" in html
    names = _plotly_traces(html)
    assert {"staking", "borrow cost", "health factor", "market / oracle"} <= set(names)
    assert not any("margin" in n for n in names), "no perps, no margin chart"
    # directional: ETH held is the share currency
    assert "long ETH is its own currency" in html


def test_a_newer_run_shows_its_provenance_exit_value_lst_peg_and_balance_sheet(result):
    record = record_from_result(result, source="test")
    record.summary.update({
        "run_id": "20250320T000000-7f3a", "code_version": "abc1234", "exit_value": 39.95,
        "data_hashes": {"data/market/eth_spot.csv.gz": "sha256:00ff"},
        "overrides": {"leverage.target_ltv": 0.85},
        "effective_config": {"mode": "eth_leveraged", "rebalancing": {"enabled": True, "hf_floor": 1.02}},
    })
    record.timeseries["pnl.lst_peg"] = np.linspace(0.0, -0.01, len(record.timeseries)) / len(record.timeseries)
    record.balance_sheet = pd.DataFrame({"timestamp": ["2025-03-20T23:00:00Z"] * 2, "venue": ["aave_v3", "aave_v3"],
                                         "holding": ["aweETH", "variableDebtWETH"], "units": [100.0, -90.0]})
    html = unescape(build_report(record))
    for text in ("20250320T000000-7f3a", "abc1234", "sha256:00ff", "39.9500 ETH", "leverage.target_ltv",
                 "the run's effective configuration", "deleverage floor 1.02", "variableDebtWETH"):
        assert text in html, text
    assert "LST peg (market vs oracle)" in _plotly_traces(html)
    assert "does not record" not in html


def test_resolving_a_run_folder(tmp_path, result):
    with pytest.raises(ReportError, match="no such folder"):
        resolve_run_dir(tmp_path / "missing")
    write_results(result, tmp_path / "mode" / "run-1")
    (tmp_path / "mode" / "latest").write_text("run-1")
    assert resolve_run_dir(tmp_path / "mode") == tmp_path / "mode" / "run-1"
    (tmp_path / "mode" / "run-1" / "summary.json").write_text(json.dumps({"mode": "x"}))
    with pytest.raises(ReportError, match="missing key 'currency'"):
        load_run(tmp_path / "mode")
