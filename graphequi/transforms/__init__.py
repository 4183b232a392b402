"""graphequi.transforms (under construction)."""
