"""The transactional outbox: rows (codec and numbering, no I/O), the MongoDB log, the relay."""
