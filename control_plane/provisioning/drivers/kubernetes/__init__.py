"""The ``kubernetes`` driver: one hardened namespace per tenant."""
