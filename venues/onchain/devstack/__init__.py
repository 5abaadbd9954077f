"""The local DeFi stack: anvil with the real AAVE v3, Uniswap v3 and Morpho Blue bytecode.

Used by the integration tests and by ``python main.py devchain`` (demos, manual testing, the live
session against a local chain). It lives in the product rather than under tests/ because the
devchain command needs it and tests/ is not importable by the product; it lives in venues/onchain
because it speaks web3, which engine/ must never import.

Nothing here is needed in production: the npm packages it deploys from are installed at test time
(``npm ci --prefix tests/integration/peers``) and a missing one raises ``PeersMissing`` naming the
command to run.
"""

from venues.onchain.devstack.peers import PeersMissing

__all__ = ["PeersMissing"]
