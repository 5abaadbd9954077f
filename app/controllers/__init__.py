"""Controllers: the app's objects between the panels and the engine/venue services (no widgets here)."""
