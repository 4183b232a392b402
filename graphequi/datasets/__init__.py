"""graphequi.datasets (under construction)."""
