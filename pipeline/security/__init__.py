"""Access and exposure: throttling failed log-ins (and, as they land, keys and outbound-fetch checks)."""
