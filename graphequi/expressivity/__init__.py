"""graphequi.expressivity (under construction)."""
