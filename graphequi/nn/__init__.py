"""graphequi.nn (under construction)."""
