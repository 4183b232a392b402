"""graphequi.geometry (under construction)."""
