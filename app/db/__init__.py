"""SQL storage: the catalog, patients, API keys and durable appointments."""
