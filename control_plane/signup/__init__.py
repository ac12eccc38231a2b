"""Self-service signup: an organization, its owner and its portal in one transaction."""
