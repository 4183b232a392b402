"""graphequi.poly (under construction)."""
