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


#: what runs written before provenance was recorded lack
NEWER_KEYS = ("run_id", "code_version", "config", "overrides", "data_files", "exit_value", "exit_costs",
              "exit_notes", "final_value_protocol", "max_drawdown_protocol", "rewards")


def test_an_older_run_folder_gets_a_full_report_that_says_what_it_does_not_record(result, tmp_path):
    folder = tmp_path / "run"
    write_results(result, folder)
    summary = json.loads((folder / "summary.json").read_text())
    for key in NEWER_KEYS:
        summary.pop(key, None)
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "balance_sheet.csv").unlink()
    frame = pd.read_csv(folder / "timeseries.csv").rename(columns={"lst_market_over_oracle": "lst_peg"})
    frame.drop(columns=["value_protocol"]).to_csv(folder / "timeseries.csv", index=False)

    html = unescape(build_report(load_run(folder)))
    assert f"{summary['final_value']:,.4f} ETH" in html and f"{100 * summary['apr']:,.2f} %" in html
    assert "not recorded by this run" in html                       # exit value
    assert "does not record: run_id, code_version, config, data_files" in html
    assert "the shipped eth_leveraged.yaml (this run did not record its effective configuration)" in html
    assert "no balance_sheet.csv" in html
    names = _plotly_traces(html)
    assert {"staking", "borrow cost", "health factor", "market / oracle"} <= set(names)
    assert not any("margin" in n for n in names), "no perps, no margin chart"
    assert "long ETH is its own currency" in html                   # directional: ETH is the share currency


def test_a_run_with_provenance_shows_it_with_exit_value_lst_peg_and_balance_sheet(result):
    s = result.summary
    html = unescape(build_report(record_from_result(result, source="test")))
    some_file, digest = next(iter(s["data_files"].items()))
    for text in (s["run_id"], s["code_version"]["commit"], some_file, digest, f"{s['exit_value']:,.4f} ETH",
                 f"{s['final_value_protocol']:,.4f} ETH", "the run's effective configuration",
                 f"deleverage floor {s['config']['mode']['rebalancing']['hf_floor']:g}", "aave_v3.supply.weETH",
                 "Venue files as the run used them", "Cost to unwind at the end"):
        assert text in html, text
    names = _plotly_traces(html)
    assert "LST peg (market vs oracle)" in names and "market / oracle" in names
    assert any(n.startswith("protocol value") for n in names) and any(n.startswith("exit value") for n in names)
    assert "does not record" not in html and "not recorded by this run" not in html


def test_resolving_a_run_folder(tmp_path, result):
    with pytest.raises(ReportError, match="no such folder"):
        resolve_run_dir(tmp_path / "missing")
    write_results(result, tmp_path / "mode" / "run-1")
    (tmp_path / "mode" / "latest").write_text("run-1")
    assert resolve_run_dir(tmp_path / "mode") == tmp_path / "mode" / "run-1"
    (tmp_path / "mode" / "run-1" / "summary.json").write_text(json.dumps({"mode": "x"}))
    with pytest.raises(ReportError, match="missing key 'currency'"):
        load_run(tmp_path / "mode")
