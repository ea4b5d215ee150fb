"""The journal: hash-chained entries in memory, batches, and the durable SQLite store.

``memory`` is the in-memory hash-chained journal; ``batches`` the batch format and its
rollup commitment; ``store`` the SQLite schema and access; ``durable`` the crash-safe
append and tail recovery; ``verify`` re-executes a stored journal and names the first
difference (spec/40-roots.md SK-JOURNAL-1, SK-BATCH-1).
"""
