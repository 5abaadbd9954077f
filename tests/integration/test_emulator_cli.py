"""The emulator's command line: --help documents every option and every fault; faults parse."""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.emulator.__main__ import build_parser
from tests.integration.emulator.core import FaultRule, Faults


def test_help_documents_every_option_and_every_fault():
    proc = subprocess.run([sys.executable, "-m", "tests.integration.emulator", "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    text = proc.stdout
    parser = build_parser()
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, f"{action.option_strings} has no help"
        for option in action.option_strings:
            assert option in text
    for field in {f.name for f in dataclasses.fields(Faults)} | {f.name for f in dataclasses.fields(FaultRule)} - {
            "path", "method", "hits"}:
        assert field in text, f"fault {field!r} is not in --help"
    for body in ("truncated", "html", "empty"):
        assert body in text


def test_faults_and_rules_parse():
    args = build_parser().parse_args(["--fault", "okx:http_status=503", "--fault", "bybit:body=html",
                                      "--fault-rule", "binance:post:api/v3/order:answer_late_s=2,times=1",
                                      "--fault-rule", "okx:*:api/v5/account/balance:retry_after_s=1.5"])
    assert args.fault == [("okx", "http_status", 503), ("bybit", "body", "html")]
    assert args.fault_rule == [("binance", "POST", "api/v3/order", {"answer_late_s": 2, "times": 1}),
                               ("okx", "", "api/v5/account/balance", {"retry_after_s": 1.5})]


@pytest.mark.parametrize("argv", [["--fault", "okx:no_such=1"], ["--fault", "kraken:hang=true"],
                                  ["--fault-rule", "okx:GET:balance"], ["--fault-rule", "okx:GET:x:bad_auth=true"]])
def test_bad_faults_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2 and "error:" in capsys.readouterr().err
