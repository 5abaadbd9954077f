"""Where each historical series lives inside the data directory.

Paths are relative to the data directory and keep the layout of the source pack (the public
basis-strategy-v1 repository's data/ folder) so a file can be traced back to its origin. The shipped
copies are gzip-compressed (`.gz` appended); the plain original name is accepted too, so the
provider can also read the uncompressed shared data pack directly.
"""

from __future__ import annotations

from pathlib import Path

from engine.data.errors import DataFormatError

_SPOT = "market_data/spot_prices"
_PERP = "market_data/derivatives/futures_ohlcv"
_FUNDING = "market_data/derivatives/funding_rates"
_AAVE = "protocol_data/aave"
_STAKING = "protocol_data/staking"

# BTC spot: Binance. ETH spot: Bybit (the Binance ETH spot file is missing from the pack).
SPOT_FILES: dict[str, str] = {
    "BTC": f"{_SPOT}/btc_usd/binance_BTCUSDT_1h_2024-01-01_2025-09-30.csv",
    "ETH": f"{_SPOT}/eth_usd/bybit_ETHUSDT_spot_1h_2024-01-01_2025-09-26.csv",
}
SPOT_SOURCES: dict[str, str] = {"BTC": "binance BTCUSDT spot", "ETH": "bybit ETHUSDT spot"}
# Another venue's spot close for the same hour, used where the primary file has a hole (Binance has
# 15 one-day holes): a real price from another venue beats a day-old one.
SPOT_FALLBACK_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "BTC": (("bybit BTCUSDT spot", f"{_SPOT}/btc_usd/bybit_BTCUSDT_spot_1h_2024-01-01_2025-09-30.csv"),),
    "ETH": (),
}

# There is no OKX BTC perp price file at all; OKX BTC perp prices come from the Binance perp.
PERP_FILES: dict[tuple[str, str], str] = {
    ("binance", "BTC"): f"{_PERP}/binance_BTCUSDT_perp_1h_2024-01-01_2025-09-30.csv",
    ("binance", "ETH"): f"{_PERP}/binance_ETHUSDT_perp_1h_2024-01-01_2025-09-26.csv",
    ("bybit", "BTC"): f"{_PERP}/bybit_BTCUSDT_perp_1h_2024-01-01_2025-09-30.csv",
    ("bybit", "ETH"): f"{_PERP}/bybit_ETHUSDT_perp_1h_2024-01-01_2025-09-26.csv",
    ("okx", "ETH"): f"{_PERP}/okx_ETHUSDT_perp_1h_2024-08-01_2025-09-18.csv",
}

FUNDING_FILES: dict[tuple[str, str], str] = {
    ("binance", "BTC"): f"{_FUNDING}/binance_BTCUSDT_funding_rates_2024-01-01_2025-09-30.csv",
    ("binance", "ETH"): f"{_FUNDING}/binance_ETHUSDT_funding_rates_2024-01-01_2025-09-26.csv",
    ("bybit", "BTC"): f"{_FUNDING}/bybit_BTCUSDT_funding_rates_2024-01-01_2025-09-30.csv",
    ("bybit", "ETH"): f"{_FUNDING}/bybit_ETHUSDT_funding_rates_2024-01-01_2025-09-26.csv",
    ("okx", "BTC"): f"{_FUNDING}/okx_BTCUSDT_funding_rates_2024-05-01_2025-09-07.csv",
    ("okx", "ETH"): f"{_FUNDING}/okx_ETHUSDT_funding_rates_2024-05-01_2025-09-07.csv",
}

# Which venue fills in when a venue has no price / no settlement for an hour, in priority order.
# A hole in a venue's perp closes takes the same hour's close of the next venue; only when no venue
# has that hour is the last close carried forward (up to PRICE_FILL_LIMIT_H).
PERP_FALLBACK: dict[str, tuple[str, ...]] = {"okx": ("binance", "bybit"), "binance": ("bybit",), "bybit": ("binance",)}
FUNDING_FALLBACK: dict[str, tuple[str, ...]] = {
    "okx": ("binance", "bybit"),
    "binance": ("bybit",),
    "bybit": ("binance",),
}

# Daily AaveScan snapshots (the *_hourly interpolations in the source pack are not used: the USDT
# and WETH ones are missing and we interpolate all four the same way).
AAVE_RATE_FILES: dict[str, str] = {
    "USDT": f"{_AAVE}/rates/aave_v3_aave-v3-ethereum_USDT_rates_2024-01-01_2025-09-18.csv",
    "WETH": f"{_AAVE}/rates/aave_v3_aave-v3-ethereum_WETH_rates_2024-01-01_2025-09-18.csv",
    "weETH": f"{_AAVE}/rates/aave_v3_aave-v3-ethereum_weETH_rates_2024-05-12_2025-09-18.csv",
    "wstETH": f"{_AAVE}/rates/aave_v3_aave-v3-ethereum_wstETH_rates_2024-05-12_2025-09-18.csv",
}

LST_ORACLE_FILES: dict[str, str] = {
    "weETH": f"{_AAVE}/oracle/weETH_ETH_oracle_2024-01-01_2025-09-18.csv",
    "wstETH": f"{_AAVE}/oracle/wstETH_ETH_oracle_2024-01-01_2025-09-18.csv",
}

LST_PEG_FILES: dict[str, str] = {
    "weETH": f"{_STAKING}/peg_analysis/weETH_peg_analysis_2024-01-01_2025-09-18.csv",
    "wstETH": f"{_STAKING}/peg_analysis/wstETH_peg_analysis_2024-01-01_2025-09-18.csv",
}

# ether.fi reward seeds: the distribution records, the processed file that dates the EIGEN payouts,
# the reward tokens' Uniswap v3 pools (price in WETH per token) and DeFiLlama's eETH reward APY.
_ETHERFI = "manual_sources/etherfi_distributions"
ETHERFI_REWARDS_FILE = f"{_STAKING}/restaking_final/etherfi_seasonal_rewards_2024-01-01_2025-09-18.csv"
EIGEN_DISTRIBUTIONS_FILE = f"{_ETHERFI}/eigen_distributions_raw.csv"
ETHFI_TOPUPS_FILE = f"{_ETHERFI}/ethfi_topups_raw.csv"
SEASONAL_DROPS_FILE = f"{_ETHERFI}/seasonal_drops.csv"
DEFILLAMA_EETH_APY_FILE = f"{_ETHERFI}/bar-chart-supply-apy-2025-09-29-eeth.csv"
REWARD_POOL_FILES: dict[str, str] = {
    "EIGEN": f"{_SPOT}/protocol_tokens/uniswapv3_EIGENWETH_1h_2024-10-05_2025-09-27.csv",
    "ETHFI": f"{_SPOT}/protocol_tokens/uniswapv3_ETHFIWETH_1h_2024-04-01_2025-09-27.csv",
}
GAS_PRICES_FILE = "blockchain_data/gas_prices/ethereum_gas_prices_2024-01-01_2025-09-26.csv"
GAS_UNITS_FILE = "blockchain_data/gas_prices/operation_gas_costs_summary_2024-01-01_2025-09-26.json"
EXECUTION_COSTS_FILE = "execution_costs/lookup_tables/execution_costs_lookup.json"
AAVE_RISK_PARAMS_FILE = f"{_AAVE}/risk_params/aave_v3_risk_parameters.json"


def resolve(data_dir: Path, relative: str) -> Path:
    """The on-disk file for a catalog path: the gzip copy if present, else the plain file.

    Raises DataFormatError (a ValueError: every front end reports it as bad input) naming both
    candidates, because a missing data file is a packaging error the user must see, not something
    to paper over.
    """
    gz = data_dir / f"{relative}.gz"
    if gz.is_file():
        return gz
    plain = data_dir / relative
    if plain.is_file():
        return plain
    raise DataFormatError(f"data file not found: neither {gz} nor {plain} exists (data_dir={data_dir})")
