"""Stress scenarios as data: shocks to the replay series (configs/scenarios/*.yaml)."""
from engine.scenarios.library import available_scenarios, load_library, load_scenario, load_scenario_file
from engine.scenarios.models import Scenario
from engine.scenarios.shocks import ScenarioError, ShockedMarket, apply_scenario, parse_at

__all__ = ["Scenario", "ScenarioError", "ShockedMarket", "apply_scenario", "available_scenarios",
           "load_library", "load_scenario", "load_scenario_file", "parse_at"]
