"""Applying a plan to a source: batches, the ledger beside them, verification and recovery."""
