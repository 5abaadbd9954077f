"""On-chain venues on web3 AsyncWeb3: reads (reader.ChainReader), writes through one TxManager per
wallet (tx/), the protocol adapters (aave_v3, lido, etherfi, weth, uniswap; built by execution.py),
and the local DeFi stack for tests and ``python main.py devchain`` (devstack/)."""
