"""The sync table, cursor, runs and locks: the durable state of record."""
