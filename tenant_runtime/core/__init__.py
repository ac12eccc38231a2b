"""Cross-cutting pieces of the tenant runtime: settings, database, logging, schema."""
