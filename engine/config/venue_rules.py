"""Cross-field rules for venue files that a single-field type cannot express.

Example: the shared data's margin file has maintenance margin (0.10) above initial margin (0.05),
which no exchange does; a venue file with that inversion must be rejected, not used.
"""

from __future__ import annotations

from collections.abc import Iterator

from .common import LST_VENUE
from .errors import ConfigIssue
from .sources import SourceMap
from .venue_models import (
    AaveConfig,
    CexVenueConfig,
    CollateralRisk,
    DexVenueConfig,
    OnchainVenueConfig,
    RpcVenueConfig,
    StakingVenueConfig,
    TransactionSettings,
    VenueConfig,
)

#: Chain id each environment must point at (production = Ethereum, testnet = Sepolia).
CHAIN_IDS = {"production": 1, "testnet": 11155111}


def check_venue(name: str, venue: VenueConfig, sources: SourceMap) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    if venue.name != name:
        issues.append(sources.issue(("name",), f"must equal the file name {name!r} (allowed: {name})"))
    if isinstance(venue, CexVenueConfig):
        issues += _cex(venue, sources)
    if isinstance(venue, OnchainVenueConfig):
        issues += _onchain(venue, sources)
    if isinstance(venue, AaveConfig):
        issues += _aave(venue, sources)
    if isinstance(venue, StakingVenueConfig):
        issued = [lst for lst, issuer in LST_VENUE.items() if issuer == name]
        if issued and venue.lst_symbol not in issued:
            issues.append(
                sources.issue(
                    ("lst_symbol",),
                    f"{name} issues {', '.join(issued)}, not "
                    f"{venue.lst_symbol} (allowed: {', '.join(issued)})",
                )
            )
    if isinstance(venue, RpcVenueConfig):
        for env_name, env in (
            ("production", venue.environments.production),
            ("testnet", venue.environments.testnet),
        ):
            if env.chain_id != CHAIN_IDS[env_name]:
                issues.append(
                    sources.issue(
                        ("environments", env_name, "chain_id"),
                        f"{env.chain_id} is not the {env_name} chain (allowed: {CHAIN_IDS[env_name]})",
                    )
                )
            issues += _transactions(env_name, env.transactions, sources)
    if isinstance(venue, DexVenueConfig):
        issues += _swap_pools(venue, sources)
    return issues


def _transactions(env_name: str, tx: TransactionSettings, sources: SourceMap) -> Iterator[ConfigIssue]:
    path = ("environments", env_name, "transactions")
    if tx.max_priority_fee_gwei > tx.max_fee_per_gas_gwei:
        yield sources.issue(
            (*path, "max_priority_fee_gwei"),
            f"{tx.max_priority_fee_gwei} must not exceed max_fee_per_gas_gwei {tx.max_fee_per_gas_gwei} "
            f"(allowed: 0 <= max_priority_fee_gwei <= {tx.max_fee_per_gas_gwei})",
        )
    url = tx.private_rpc_url
    if url is not None and url.startswith("http://") and not _is_loopback_url(url):
        yield sources.issue(
            (*path, "private_rpc_url"),
            f"{url} is plain http to another host: signed transactions must travel over TLS "
            "(allowed: https://..., http://127.0.0.1 or http://localhost, or null)",
        )


def _is_loopback_url(url: str) -> bool:
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]")


def _swap_pools(venue: DexVenueConfig, sources: SourceMap) -> Iterator[ConfigIssue]:
    seen: dict[frozenset[str], str] = {}
    for pair in venue.swap_pools:
        base, quote = pair.split("/")
        if base == quote:
            yield sources.issue(
                ("swap_pools", pair), "a pair needs two different tokens (allowed: BASE/QUOTE)"
            )
            continue
        key = frozenset((base, quote))
        if key in seen:
            yield sources.issue(("swap_pools", pair), f"same pair as {seen[key]!r} (list each pair once)")
        seen[key] = pair
        for env_name, env in (
            ("production", venue.environments.production),
            ("testnet", venue.environments.testnet),
        ):
            for symbol in (base, quote):
                if symbol not in env.tokens:
                    yield sources.issue(
                        ("swap_pools", pair),
                        f"{symbol} is not in environments.{env_name}.tokens "
                        f"(allowed: {', '.join(sorted(env.tokens))})",
                    )


def _cex(venue: CexVenueConfig, sources: SourceMap) -> Iterator[ConfigIssue]:
    mm, im = venue.maintenance_margin_ratio, venue.initial_margin_ratio
    urgent, warning = venue.margin_urgent_ratio, venue.margin_warning_ratio
    if mm >= im:
        yield sources.issue(
            ("maintenance_margin_ratio",),
            f"{mm} must be below initial_margin_ratio {im} (allowed: 0 < maintenance_margin_ratio < {im})",
        )
    if urgent <= mm:
        yield sources.issue(
            ("margin_urgent_ratio",),
            f"{urgent} must be above maintenance_margin_ratio {mm} "
            f"(allowed: {mm} < margin_urgent_ratio < margin_warning_ratio)",
        )
    if warning <= urgent:
        yield sources.issue(
            ("margin_warning_ratio",),
            f"{warning} must be above margin_urgent_ratio {urgent} "
            f"(allowed: margin_warning_ratio > {urgent})",
        )
    if 24 % venue.funding_interval_hours:
        yield sources.issue(
            ("funding_interval_hours",),
            f"{venue.funding_interval_hours} does not divide a day (allowed: 1, 2, 3, 4, 6, 8, 12, 24)",
        )
    if venue.min_order_usdt >= venue.max_position_usdt:
        yield sources.issue(
            ("min_order_usdt",),
            f"{venue.min_order_usdt} must be below max_position_usdt {venue.max_position_usdt} "
            f"(allowed: 0 < min_order_usdt < {venue.max_position_usdt})",
        )
    if venue.min_order_usdt >= venue.max_order_usdt:
        yield sources.issue(
            ("max_order_usdt",),
            f"{venue.max_order_usdt} must be above min_order_usdt {venue.min_order_usdt} "
            f"(allowed: max_order_usdt > {venue.min_order_usdt})",
        )
    if venue.environments.production.sandbox:
        yield sources.issue(
            ("environments", "production", "sandbox"), "production must not use the sandbox (allowed: false)"
        )
    if not venue.environments.testnet.sandbox:
        yield sources.issue(
            ("environments", "testnet", "sandbox"),
            "testnet must use the exchange sandbox/demo (allowed: true)",
        )
    for series in ("spot", "perp"):
        listed = getattr(venue.historical_data, series)
        traded = getattr(venue.markets, series)
        for underlying in listed:
            if underlying not in traded:
                yield sources.issue(
                    ("historical_data", series),
                    f"{underlying} has data but no {series} market in markets.{series} "
                    f"(allowed: {', '.join(traded) or 'none'})",
                )
    for underlying in venue.historical_data.funding:
        if underlying not in venue.markets.perp:
            yield sources.issue(
                ("historical_data", "funding"),
                f"{underlying} has funding data but no perp market "
                f"(allowed: {', '.join(venue.markets.perp) or 'none'})",
            )


def _onchain(venue: OnchainVenueConfig, sources: SourceMap) -> Iterator[ConfigIssue]:
    production, testnet = venue.environments.production, venue.environments.testnet
    for env_name, env in (("production", production), ("testnet", testnet)):
        if env.chain_id != CHAIN_IDS[env_name]:
            yield sources.issue(
                ("environments", env_name, "chain_id"),
                f"{env.chain_id} is not the {env_name} chain (allowed: {CHAIN_IDS[env_name]})",
            )
    for table in ("contracts", "tokens"):
        prod_keys = set(getattr(production, table))
        test_keys = set(getattr(testnet, table))
        # Both environments list the same roles so a missing testnet address is an explicit null.
        for key in sorted(prod_keys - test_keys):
            yield sources.issue(
                ("environments", "testnet", table),
                f"missing {key!r}: list every {table[:-1]} of production, null if not deployed "
                f"(allowed: {key}: <address> or {key}: null)",
            )
        for key in sorted(test_keys - prod_keys):
            yield sources.issue(
                ("environments", "testnet", table, key),
                f"not listed for production (allowed: {', '.join(sorted(prod_keys)) or 'none'})",
            )
        for key, address in getattr(production, table).items():
            if address is None:
                yield sources.issue(
                    ("environments", "production", table, key),
                    "production address is required; null is only allowed on testnet (allowed: a 0x address)",
                )


def _aave(venue: AaveConfig, sources: SourceMap) -> Iterator[ConfigIssue]:
    yield from _collateral(venue.emode, ("emode",), sources)
    for asset in type(venue.standard).model_fields:
        yield from _collateral(getattr(venue.standard, asset), ("standard", asset), sources)
    if not venue.emode.borrowable_assets:
        yield sources.issue(("emode", "borrowable_assets"), "must list at least one asset (allowed: WETH)")
    if not venue.emode.collateral_assets:
        yield sources.issue(
            ("emode", "collateral_assets"), "must list at least one asset (allowed: weETH, wstETH)"
        )
    production = venue.environments.production
    for asset in type(venue.standard).model_fields:
        if asset not in production.tokens:
            yield sources.issue(
                ("environments", "production", "tokens"),
                f"missing the {asset} token address; every reserve in `standard` needs one "
                f"(allowed: {asset}: <address>)",
            )
        for role in (f"a_{asset.lower()}", f"variable_debt_{asset.lower()}"):
            if role not in production.contracts:
                yield sources.issue(
                    ("environments", "production", "contracts"),
                    f"missing {role!r}; every reserve in `standard` needs its aToken and debt token "
                    f"(allowed: {role}: <address>)",
                )


def _collateral(risk: CollateralRisk, path: tuple[str, ...], sources: SourceMap) -> Iterator[ConfigIssue]:
    if risk.ltv >= risk.liquidation_threshold:
        yield sources.issue(
            (*path, "ltv"),
            f"{risk.ltv} must be below liquidation_threshold {risk.liquidation_threshold} "
            f"(allowed: 0 <= ltv < {risk.liquidation_threshold})",
        )
    seized = risk.liquidation_threshold * (1 + risk.liquidation_bonus)
    if seized > 1:
        # AAVE rejects a configuration where a liquidation could seize more collateral than exists.
        yield sources.issue(
            (*path, "liquidation_bonus"),
            f"liquidation_threshold x (1 + liquidation_bonus) = {seized:.4f} exceeds 1 "
            f"(allowed: liquidation_bonus <= {1 / risk.liquidation_threshold - 1:.4f})",
        )
