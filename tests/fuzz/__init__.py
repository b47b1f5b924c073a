"""Property-based tests: bad input never crashes the import, the sandbox or the config."""
