"""Cross-cutting pieces of the control plane: settings, database, logging, errors, security."""
