"""configs/transfers.yaml as a validated model: timings, confirmations, the whitelist, and where each
exchange lands deposits versus where it trades.

Every key is required: a transfer moves real money, and a timing or an account picked by a silent
default is a guess the operator never made. A missing or bad key is a ``TransferConfigError`` naming
the key and the file.

``venue_accounts`` exists because the exchanges do not deposit where they trade: Binance credits
deposits to the spot wallet while the perps margin from USD-M futures; OKX credits the funding
account (6) and trades from the trading account (18), and withdraws only from funding; Bybit credits
FUND while a unified account trades from UNIFIED (its withdrawal with accountType UTA draws from
UNIFIED itself). The transfer service moves a credited deposit of one of ``assets`` from
``deposit_account`` to ``trading_account``, and before a withdrawal moves it from ``trading_account``
to ``withdraw_account`` where the two differ. Account names are ccxt's (``transfer(code, amount,
fromAccount, toAccount)``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CONFIG_PATH = Path(__file__).resolve().parents[3] / "configs" / "transfers.yaml"


class TransferConfigError(ValueError):
    """configs/transfers.yaml is missing a key or holds a bad value (the message names both)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VenueAccounts(_Strict):
    deposit_account: str = Field(min_length=1)
    trading_account: str = Field(min_length=1)
    withdraw_account: str = Field(min_length=1)
    assets: tuple[str, ...]

    def moves(self, asset: str) -> bool:
        return asset in self.assets


class EnvironmentTransfers(_Strict):
    confirmations: int = Field(ge=1)
    poll_interval_s: float = Field(gt=0)
    transfer_timeout_s: float = Field(gt=0)
    whitelist: dict[str, str]

    @field_validator("whitelist", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        value = {} if value is None else value
        if not isinstance(value, dict) or not all(
                isinstance(a, str) and a.startswith("0x") and len(a) == 42 for a in value.values()):
            raise ValueError("must map labels to 0x addresses (40 hex digits)")
        return {str(k): v for k, v in value.items()}


class TransfersFile(_Strict):
    venue_accounts: dict[str, VenueAccounts]
    environments: dict[str, EnvironmentTransfers]


@dataclass(frozen=True)
class TransferSettings:
    """What the transfer service runs on. ``whitelist``: label -> address a withdrawal may pay
    ("wallet" the operator's wallet, a venue name that venue's deposit address). ``confirmations``:
    blocks before a wallet arrival counts. ``transfer_timeout_s``: how long a live program's transfer
    step may take to arrive before the program stops naming it. ``venue_accounts``: see the module."""

    confirmations: int
    poll_interval_s: float
    whitelist: Mapping[str, str] = field(default_factory=dict)
    transfer_timeout_s: float = 0.0
    venue_accounts: Mapping[str, VenueAccounts] = field(default_factory=dict)

    def with_whitelist(self, extra: Mapping[str, str]) -> TransferSettings:
        return replace(self, whitelist={**self.whitelist, **extra})

    def whitelisted(self, address: str) -> str | None:
        """The label of ``address`` on the whitelist (None: not on it)."""
        return next((label for label, a in self.whitelist.items() if a.lower() == address.lower()), None)

    def accounts(self, venue: str) -> VenueAccounts | None:
        return self.venue_accounts.get(venue)


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def load_transfer_settings(environment: str, path: Path = CONFIG_PATH) -> TransferSettings:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TransferConfigError(f"{path}: file not found") from None
    try:
        parsed = TransfersFile.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _where(first["loc"])
        if first["type"] == "missing":
            raise TransferConfigError(f"{path.name}: {key} is missing") from None
        if first["type"] == "extra_forbidden":
            raise TransferConfigError(f"{path.name}: {key} is not a known key") from None
        raise TransferConfigError(f"{path.name}: {key}: {first['msg']}, got {first.get('input')!r}") from None
    env = parsed.environments.get(environment)
    if env is None:
        raise TransferConfigError(f"{path.name}: environments.{environment} is missing "
                                  f"(have: {', '.join(parsed.environments) or 'none'})")
    return TransferSettings(env.confirmations, env.poll_interval_s, dict(env.whitelist), env.transfer_timeout_s,
                            dict(parsed.venue_accounts))
