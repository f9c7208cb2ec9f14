"""Layer 2: typed models, engines and sessions, migrations, and the repositories other
layers write through (reference data, idempotent inserts, the audit ledger)."""
