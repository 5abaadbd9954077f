"""The research lab: stress reports over the scenario library and parameter sweeps."""
