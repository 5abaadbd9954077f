"""On-chain writes: one TxManager per wallet and chain (simulate, fee-cap, sign in memory, send,
confirm, replace or cancel), the key read from the OS keyring, reverts decoded by name."""
