"""Layer 6: the HTTP API: thin routes over ingest, publication and the store."""
