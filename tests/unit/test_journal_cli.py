"""`python main.py journal show`: a journal written by the real Journal, NonceLedger and TransferJournal,
read back in order with what is unfinished, without writing anything."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
from decimal import Decimal

import pytest

from engine.domain.onchain_ports import LedgerStatus, LedgerTx
from engine.domain.transfers import Transfer, TransferKind, TransferStatus
from engine.domain.venue_ports import OrderRequest, OrderType, Side
from engine.services.live.journal import Journal
from engine.services.live.journal_cli import read_journal
from engine.services.live.nonce_ledger import NonceLedger
from engine.services.live.transfers import TransferJournal
from main import main

SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def tx(nonce: int, label: str, status: LedgerStatus) -> LedgerTx:
    return LedgerTx(11155111, SENDER, nonce, "0x" + f"{nonce:02x}" * 32, "send", label, status, "0xf86c" + "ab" * 40,
                    30 * 10**9, 10**9, 21000, created_at=time.time())


@pytest.fixture
def journal_dir(tmp_path):
    path = tmp_path / "journal-testnet.sqlite3"
    j = Journal(path)
    j.event("s1", "session", "start", mode="usdt_market_neutral", api_key="must-not-show")
    done = OrderRequest("ETH/USDT:USDT", Side.SELL, OrderType.MARKET, Decimal("1.5"), "bwdone")
    j.order_submitted("s1", "bybit", done).result(5)
    j.order_update("bwdone", "closed", "1000001", Decimal("1.5"), Decimal("2914.45"))
    j.fill("bwdone", "bybit", "ETH/USDT:USDT", "sell", Decimal("1.5"), Decimal("2914.45"))
    j.save_book("s1", "usdt_market_neutral", "live",
                {"cex": {"bybit": {"usdt": 1.0, "spot": {}, "perps": {"ETH": [-1.5, 2914.45]}}},
                 "wallet": {"tokens": {}, "supply_scaled": {"weETH": 48.5}, "debt_scaled": {"WETH": 45.6}},
                 "entered": True})
    in_flight = OrderRequest("ETH/USDT:USDT", Side.BUY, OrderType.MARKET, Decimal("0.1"), "manflight",
                             reduce_only=True)
    j.order_submitted("s2", "binance", in_flight).result(5)
    assert j.flush(5)
    j.close()
    ledger = NonceLedger(path)
    ledger.record(tx(0, "aave_v3.setUserEMode 1", LedgerStatus.SIGNED))
    ledger.update(tx(0, "", LedgerStatus.SIGNED).tx_hash, LedgerStatus.CONFIRMED, block_number=7, block_hash="0x07")
    ledger.record(tx(1, "pending wrap", LedgerStatus.SENT))
    ledger.close()
    transfers = TransferJournal(path)
    now = time.time()
    transfers.insert(Transfer("t1", TransferKind.WALLET_TO_CEX, "USDT", Decimal(2000), "wallet", "okx", "0xdep",
                              TransferStatus.SENT, now, now, tx_hash="0xpay"))
    transfers.close()
    return tmp_path


def show(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["journal", "show", "--env", "testnet", *args])
    return code, out.getvalue()


def test_show_lists_everything_in_order_and_what_is_unfinished(journal_dir):
    path = journal_dir / "journal-testnet.sqlite3"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    code, text = show("--journal-dir", str(journal_dir))
    assert code == 0
    kinds = [line.split()[2] for line in text.splitlines()[1:] if line[:2] == "20"]
    assert kinds[:5] == ["event", "order", "order_status", "fill", "book"], text
    assert "bwdone" in text and "closed filled 1.5 avg 2914.45 exchange id 1000001" in text
    assert "manflight  ETH/USDT:USDT market buy 0.1 reduce-only: submitted" in text
    assert "nonce 0 send 'aave_v3.setUserEMode 1': confirmed" in text
    assert "perps: bybit ETH -1.5; AAVE (scaled): supply weETH 48.5, debt WETH 45.6" in text
    unfinished = text.split("unfinished: ", 1)[1]
    assert unfinished.startswith("3\n"), unfinished
    assert "order manflight binance" in unfinished and "pending wrap" in unfinished and "transfer t1" in unfinished
    assert "bwdone" not in unfinished
    # nothing secret, not even the signed bytes; and nothing written to the file
    assert "must-not-show" not in text and "abab" not in text and '"api_key": "***"' in text
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_json_session_filter_and_limit(journal_dir):
    code, text = show("--journal-dir", str(journal_dir), "--json", "--session", "s2")
    assert code == 0
    view = json.loads(text)
    orders = [i for i in view["items"] if i["kind"].startswith("order")]
    assert [(i["ref"], i["text"].rsplit(" ", 1)[-1]) for i in orders] == [("manflight", "submitted")]
    assert not [i for i in view["items"] if i["kind"] == "event"]         # s1's events are not s2's
    assert any(i["kind"] == "tx" for i in view["items"])                 # the wallet's are always shown
    code, text = show("--journal-dir", str(journal_dir), "--limit", "2")
    assert code == 0 and "(last 2 shown)" in text
    assert len(read_journal(journal_dir / "journal-testnet.sqlite3").items) > 2


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["journal", "show", "--env", "testnet", "--journal-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no journal at ") and err.count("\n") == 1
    (tmp_path / "journal-testnet.sqlite3").write_bytes(b"not a database" * 100)
    assert main(["journal", "show", "--env", "testnet", "--journal-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: journal ") and err.count("\n") == 1
    assert main(["journal", "show", "--env", "testnet", "--journal-dir", str(tmp_path), "--limit", "0"]) == 2
