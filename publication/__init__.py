"""Layer 4: computed values become vintages, changes become correction notices, on the
schedule the calendar gives (fixing, intraday, restatement sweep, rebalance)."""
