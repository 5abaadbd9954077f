"""Vocabulary shared by the mode, share-class and venue models.

The names here are the exact strings the YAML files and the engine use; keeping them in one place
means a typo in a config file is reported with the full list of allowed values.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

ModeName = Literal[
    "pure_lending",
    "btc_basis",
    "eth_basis",
    "eth_staking_only",
    "eth_leveraged",
    "usdt_market_neutral_no_leverage",
    "usdt_market_neutral",
]
MODES: tuple[str, ...] = get_args(ModeName)

#: Modes whose long leg is spot on a CEX and whose short leg is perps (docs/ARCHITECTURE.md, Modes).
BASIS_MODES: tuple[str, ...] = ("btc_basis", "eth_basis")

CexName = Literal["binance", "bybit", "okx"]
CEX_VENUES: tuple[str, ...] = get_args(CexName)
FlashVenueName = Literal["morpho", "instadapp"]
StakingVenueName = Literal["lido", "etherfi"]
LstType = Literal["weETH", "wstETH"]
#: Which ether.fi reward streams a weETH position counts on top of the staking rate (the LST's own
#: exchange-rate growth, always counted):
#:   base_only            nothing else (the only choice for wstETH: Lido pays no reward tokens);
#:   base_eigen           the KING weekly distributions: EIGEN per eETH, plus the ETHFI top-ups
#:                        ether.fi paid into the same distributions (both exact published records);
#:   base_eigen_seasonal  also the ETHFI seasonal airdrops (published only as ranges: the
#:                        conservative end is used).
RewardsMode = Literal["base_only", "base_eigen", "base_eigen_seasonal"]
REWARDS_MODES: tuple[str, ...] = get_args(RewardsMode)
#: Reward tokens each rewards mode needs the staking venue to pay.
REWARDS_MODE_TOKENS: dict[str, tuple[str, ...]] = {
    "base_only": (),
    "base_eigen": ("EIGEN", "ETHFI"),
    "base_eigen_seasonal": ("EIGEN", "ETHFI"),
}
Underlying = Literal["BTC", "ETH"]
Currency = Literal["USDT", "ETH"]
LendingAsset = Literal["USDT", "WETH"]
AaveAsset = Literal["USDT", "WETH", "weETH", "wstETH"]
LoopMethod = Literal["atomic", "sequential"]
BreachAction = Literal["halt", "reduce"]

#: Every venue that has a file in configs/venues, in the canonical order used for listings.
VENUES: tuple[str, ...] = (
    "binance",
    "bybit",
    "okx",
    "etherfi",
    "lido",
    "aave_v3",
    "morpho",
    "instadapp",
    "uniswap",
    "alchemy",
)

#: Which staking venue issues each liquid staking token.
LST_VENUE: dict[str, str] = {"weETH": "etherfi", "wstETH": "lido"}

#: Tolerance for "weights sum to 1" (hedge allocation).
ALLOCATION_TOLERANCE = 1e-9

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
#: A ratio strictly between 0 and 1 (margin ratios, triggers).
OpenFraction = Annotated[float, Field(gt=0, lt=1)]
#: A fraction in (0, 1] (drawdown limits, close factor).
Fraction = Annotated[float, Field(gt=0, le=1)]

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _reject_unquoted_hex(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # pydantic turns ValueError (not TypeError) into a located validation error.
        raise ValueError("YAML read an unquoted 0x... value as a number; put the address in quotes")  # noqa: TRY004
    return value


def _check_address(value: str) -> str:
    if not _ADDRESS_RE.match(value):
        raise ValueError(f"not an Ethereum address: {value!r} (expected '0x' followed by 40 hex digits)")
    return value


#: A 20-byte hex address (checksum case is kept as written; the venue adapter normalises it).
Address = Annotated[str, BeforeValidator(_reject_unquoted_hex), AfterValidator(_check_address)]


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, no type coercion, immutable.

    Strict mode matters here: with coercion a YAML string "0.9" or "yes" would silently become a
    number or a bool; for risk parameters a wrong type must be reported, not guessed. YAML also
    reads `.inf` and `.nan` as floats: no parameter of ours has a meaning at infinity, and NaN
    passes every comparison-based range check unnoticed downstream, so both are refused. A string
    under a field is that field's description (shown as the config editor's tooltip).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)
