"""Storage: SQLAlchemy Core tables and plain async query functions over an aiopg pool.

Functions take a `storage.db.Connection` first and return plain values (dicts) or None;
the caller owns the transaction. Nothing here knows about HTTP.
"""
