"""Scheduled jobs: the daily fixing (and, later, intraday updates and restatement sweeps)."""
