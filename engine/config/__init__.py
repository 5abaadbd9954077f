"""Configuration layer: YAML files -> validated pydantic models.

Typical use::

    from engine.config import load_config
    cfg = load_config("eth_leveraged", cli_overrides={"leverage.target_ltv": 0.85})
    cfg.mode.leverage.target_ltv, cfg.venues["aave_v3"].emode.ltv, cfg.warnings

Every problem is reported as `<file>: <dotted.key>: <problem> (allowed: ...)`; all problems of a
document come together in one `ConfigError` (its `.errors` are `ConfigIssue`s).
"""

from .capital import MAX_CAPITAL, CapitalError, check_capital, check_capital_text
from .common import BASIS_MODES, CEX_VENUES, LST_VENUE, MODES, VENUES
from .documents import load_venue_config, load_venue_configs
from .errors import ConfigError, ConfigIssue
from .loader import ResolvedConfig, dump_mode_yaml, load_config, validate_document, validate_yaml_text
from .mode_models import (
    HedgeConfig,
    LendingConfig,
    LeverageConfig,
    ModeConfig,
    RebalancingConfig,
    RiskConfig,
    StakingConfig,
)
from .overrides import parse_cli_overrides
from .paths import CONFIG_ROOT
from .share_class import ShareClassConfig
from .venue_models import (
    AaveConfig,
    CexVenueConfig,
    CollateralRisk,
    DexVenueConfig,
    EModeCategory,
    FlashLoanVenueConfig,
    OnchainVenueConfig,
    RpcVenueConfig,
    StakingVenueConfig,
    VenueConfig,
)

__all__ = [
    "BASIS_MODES",
    "CEX_VENUES",
    "CONFIG_ROOT",
    "LST_VENUE",
    "MAX_CAPITAL",
    "MODES",
    "VENUES",
    "AaveConfig",
    "CapitalError",
    "CexVenueConfig",
    "CollateralRisk",
    "ConfigError",
    "ConfigIssue",
    "DexVenueConfig",
    "EModeCategory",
    "FlashLoanVenueConfig",
    "HedgeConfig",
    "LendingConfig",
    "LeverageConfig",
    "ModeConfig",
    "OnchainVenueConfig",
    "RebalancingConfig",
    "ResolvedConfig",
    "RiskConfig",
    "RpcVenueConfig",
    "ShareClassConfig",
    "StakingConfig",
    "StakingVenueConfig",
    "VenueConfig",
    "check_capital",
    "check_capital_text",
    "dump_mode_yaml",
    "load_config",
    "load_venue_config",
    "load_venue_configs",
    "parse_cli_overrides",
    "validate_document",
    "validate_yaml_text",
]
