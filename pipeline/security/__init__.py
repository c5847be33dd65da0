"""Access and exposure: outbound-fetch checks (``network``) and throttling of failed log-ins (``throttle``)."""
