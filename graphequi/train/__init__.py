"""graphequi.train (under construction)."""
