"""anvil for the integration tests: the product's launcher (venues/onchain/devstack/anvil.py), so the
tests and ``python main.py devchain`` start the chain the same way."""
from venues.onchain.devstack.anvil import Anvil
from venues.onchain.devstack.peers import anvil_command

__all__ = ["Anvil", "anvil_command"]
