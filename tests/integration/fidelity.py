"""Shapes of recorded real venue answers (tests/fixtures/ccxt_static), and which emulator endpoint each
recording belongs to. Used by test_emulator_fidelity.py."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ccxt_static"
_NUMERIC = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def recorded(venue: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{venue}.json").read_text())


def case(venue: str, method: str, description: str) -> dict[str, Any]:
    return next(c for c in recorded(venue)["methods"][method] if c["description"] == description)


@dataclass(frozen=True)
class Endpoint:
    """An endpoint the adapters call, and the recorded real answers of it."""

    venue: str
    method: str                                  # HTTP method
    path: str                                    # after the venue prefix, as the emulator sees it
    cases: tuple[tuple[str, str], ...]           # (unified method, description) of the recordings
    element: bool = False                        # the recording is one item of this endpoint's list
    category: str | None = None                  # Bybit: only answers of this category (spot/linear)
    exec_type: str | None = None                 # Bybit execution/list: only rows of this execType


    def wants(self, answer: Any) -> bool:
        """Is ``answer`` of the kind recorded (Bybit's tickers answer per category)?"""
        if self.category is None:
            return True
        result = (answer.get("result") or {}) if isinstance(answer, dict) else {}
        if result.get("category") != self.category:
            return False
        rows = result.get("list") or []
        return self.exec_type is None or bool(rows) and all(r.get("execType") == self.exec_type for r in rows)


#: The recordings are of the same endpoints the project's ccxt calls (checked against ccxt's request
#: fixtures: e.g. binanceusdm's fetchBalance is GET fapi/v3/account, OKX's createOrder POST
#: trade/batch-orders). A single-order recording stands for the items of the list endpoints.
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("binance", "GET", "api/v3/account", (("fetchBalance", "Spot balance"),)),
    Endpoint("binance", "GET", "fapi/v3/account", (("fetchPositions", "Fetch linear positions using account endnpoint"),
                                                    ("fetchBalance", "Linear swap balance"))),
    # the recording is of the portfolio-margin twin (papi um/income): the same income rows
    Endpoint("binance", "GET", "fapi/v1/income", (("fetchFundingHistory", "fetch portfolio margin funding history"),),
             element=True),
    Endpoint("binance", "GET", "fapi/v3/positionRisk", (("fetchPositions", "Fetch linear positions without symbols"),
                                                        ("fetchPositions", "Fetch linear positions with symbols"))),
    Endpoint("binance", "GET", "api/v3/openOrders", (("fetchOpenOrders", "Fetch spot open orders"),)),
    Endpoint("binance", "GET", "fapi/v1/openOrders", (("fetchOpenOrder", "swap open order"),), element=True),
    Endpoint("binance", "GET", "api/v3/order", (("fetchOrder", "Fetch spot closed order"),)),
    Endpoint("binance", "GET", "fapi/v1/order", (("fetchOpenOrder", "swap open order"),)),
    Endpoint("binance", "POST", "api/v3/order", (("createOrder", "spot +selfTradePrevention +iceberg"),)),
    Endpoint("binance", "POST", "fapi/v1/order", (("createOrders", "create swap orders"),), element=True),
    Endpoint("binance", "GET", "api/v3/ticker/24hr", (("fetchTicker", "public spot ticker"),)),
    Endpoint("binance", "GET", "api/v3/myTrades", (("fetchMyTrades", "Spot private trade"),)),
    Endpoint("binance", "GET", "fapi/v1/userTrades", (("fetchMyTrades", "Swap private trade"),)),
    Endpoint("bybit", "GET", "v5/account/wallet-balance", (("fetchBalance", "balance after availableToWithdraw update"),)),
    Endpoint("bybit", "GET", "v5/position/list", (("fetchPositions", "Fetch linear position"),)),
    Endpoint("bybit", "GET", "v5/order/realtime", (("fetchOpenOrder", "Fetch an open swap order by its ID and symbol"),),
             category="linear"),
    Endpoint("bybit", "GET", "v5/order/history", (("fetchClosedOrder", "Fetch swap closed order by its ID and symbol"),),
             category="linear"),
    Endpoint("bybit", "POST", "v5/order/create", (("createOrder", "create spot order"),)),
    Endpoint("bybit", "POST", "v5/order/cancel-all", (("cancelAllOrders", "cancel spot orders"),)),
    Endpoint("bybit", "GET", "v5/market/tickers", (("fetchTicker", "swap ticker"),), category="linear"),
    Endpoint("bybit", "GET", "v5/execution/list", (("fetchMyTrades", "spot trades without symbol"),), category="spot"),
    Endpoint("bybit", "GET", "v5/execution/list", (("fetchMyTrades", "swap trades without symbol"),),
             category="linear", exec_type="Trade"),
    Endpoint("bybit", "GET", "v5/execution/list", (("fetchFundingHistory", "linear funding history"),),
             category="linear", exec_type="Funding"),
    Endpoint("okx", "GET", "api/v5/account/balance", (("fetchBalance", "spot balance"),)),
    Endpoint("okx", "GET", "api/v5/account/positions", (("fetchPosition", "fetch position"),)),
    Endpoint("okx", "GET", "api/v5/trade/orders-pending",
             (("fetchOpenOrders", "fetch swap limit open order with take profit and stop loss"),)),
    Endpoint("okx", "GET", "api/v5/trade/order", (("fetchOrder", "fetch spot order"),)),
    Endpoint("okx", "POST", "api/v5/trade/batch-orders", (("createOrder", "type2 & type3 together"),)),
    Endpoint("okx", "GET", "api/v5/market/ticker", (("fetchTicker", "public spot ticker"),)),
    Endpoint("okx", "GET", "api/v5/public/time", (("fetchTime", "Fetch time"),)),
    Endpoint("okx", "GET", "api/v5/account/config", (("fetchAccounts", "Fetch accounts"),)),
    Endpoint("okx", "GET", "api/v5/trade/fills-history", (("fetchMyTrades", "Fetch spot trade"),)),
)

#: Keys in a recording that the venue never sent, with the reason (skipped by the check).
NOT_FROM_THE_VENUE: dict[tuple[str, str], str] = {
    ("bybit", "nextPageCursor"): "ccxt's add_pagination_cursor_to_result copies the cursor into the first row",
}
#: Objects whose keys are data (a fee per coin), not fields: their values are checked, not their keys.
KEYED_BY_DATA = frozenset({("bybit", "cumFeeDetail")})
#: ccxt's recorder wrote these venues' numbers as strings in older recordings (newer ones keep them).
NUMBERS_RECORDED_AS_TEXT = frozenset({"binance", "bybit"})


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "numeric string" if _NUMERIC.match(value) else "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _matches(want: str, got: str, lenient: bool) -> bool:
    if want == "null" or want == got:
        return True
    if want == "numeric string" and got == "number" and lenient:
        return True
    # a field that held a number-like text in the recording may hold other text (e.g. "" for no price)
    return {want, got} <= {"string", "numeric string"}


def shape_problems(want: Any, got: Any, venue: str, path: str = "$") -> list[str]:
    """Where ``got`` (an emulator answer) lacks a key of ``want`` (a recorded answer) or has another
    JSON type there, recursively. Lists: every item of ``got`` is checked against each recorded item's
    keys that all recorded items share."""
    lenient = venue in NUMBERS_RECORDED_AS_TEXT
    wk, gk = kind(want), kind(got)
    if not _matches(wk, gk, lenient):
        return [f"{path}: recorded {wk} {_short(want)}, emulator {gk} {_short(got)}"]
    problems: list[str] = []
    if wk == "object" and (venue, path.rsplit(".", 1)[-1]) in KEYED_BY_DATA:
        sample = next(iter(want.values()), None)
        return [p for k, v in got.items() for p in shape_problems(sample, v, venue, f"{path}.{k}")] \
            if sample is not None else []
    if wk == "object":
        for key, value in want.items():
            if (venue, key) in NOT_FROM_THE_VENUE:
                continue
            if key not in got:
                problems.append(f"{path}.{key}: missing (recorded {kind(value)} {_short(value)})")
            else:
                problems += shape_problems(value, got[key], venue, f"{path}.{key}")
    elif wk == "array" and want:
        if not got:
            return [f"{path}: emulator list is empty, the recording has {len(want)} item(s)"]
        template = merged(want)
        for i, item in enumerate(got):
            problems += shape_problems(template, item, venue, f"{path}[{i}]")
    return problems


def merged(items: list[Any]) -> Any:
    """One template for a recorded list: for objects, the keys every item has (first non-null value)."""
    if not all(isinstance(i, dict) for i in items):
        return items[0]
    shared = set.intersection(*(set(i) for i in items))
    out: dict[str, Any] = {}
    for key in items[0]:
        if key in shared:
            out[key] = next((i[key] for i in items if i[key] is not None), None)
    return out


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
