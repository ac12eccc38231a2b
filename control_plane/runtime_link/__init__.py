"""The channel between each tenant runtime and the control plane (config down, usage up)."""
