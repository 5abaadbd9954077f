"""On-chain reads on web3 AsyncWeb3 (wallet, AAVE v3, LST rates): see factory.build_chain_reader."""
