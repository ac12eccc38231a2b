"""Who may call the runtime: principals, service tokens and the guard."""
