"""``python main.py executor deploy``: deploy the wallet's own LeverageExecutor, once.

    python main.py executor deploy --env testnet [--config overrides.yaml] [--replace]
    python main.py executor deploy --env production --yes-production

The contract is compiled from the repository's source with solc-js (the npm peers; cached by source
hash) and deployed only if its runtime code hashes to the pinned hash the workstation verifies. The
creation transaction goes through the TxManager like any other (simulated on the latest block and
shown as a pre-sign ticket, fee-capped, signed with the wallet's key from the keyring, confirmed);
its owner is the wallet, its Pool, Morpho Blue, WETH and SwapRouter02 the environment's (configs/
venues). The new address is verified on chain and stored in the keyring as the RPC venue's
``executor_address``, where the executor adapter and check-venues find it. A wallet whose stored
executor already verifies is left alone unless ``--replace``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
VENUES = ("aave_v3", "morpho", "uniswap", "lido", "etherfi", "alchemy")


def add_executor_parser(subparsers: argparse._SubParsersAction, guard) -> None:
    p = subparsers.add_parser("executor", help="deploy the wallet's LeverageExecutor (atomic leverage)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="executor_command", metavar="ACTION", required=True)
    deploy = sub.add_parser("deploy", help="compile, check the pinned code hash, deploy, verify, store the address")
    deploy.add_argument("--env", required=True, choices=("testnet", "production"), help="testnet | production")
    deploy.add_argument("--config", type=Path, metavar="FILE",
                        help="override YAML with venue_overrides (e.g. the one `python main.py devchain` writes)")
    deploy.add_argument("--replace", action="store_true",
                        help="deploy a new executor even if the stored one verifies")
    deploy.add_argument("--yes-production", action="store_true", help="required to deploy on production")
    deploy.set_defaults(func=guard(cmd_executor_deploy))


def cmd_executor_deploy(args: argparse.Namespace, store: Any = None, ledger_path: Path | None = None) -> int:
    if args.env == "production" and not args.yes_production:
        raise ValueError("deploying on production spends real ETH: add --yes-production")
    return asyncio.run(deploy(args, store=store, ledger_path=ledger_path))


async def deploy(args: argparse.Namespace, *, store: Any = None, ledger_path: Path | None = None) -> int:
    from engine.config import load_venue_configs
    from engine.services.live.journal import default_journal_path
    from engine.services.live.nonce_ledger import NonceLedger
    from venues.credentials import CredentialStore
    from venues.onchain.execution import build_onchain_execution
    from venues.onchain.executor_code import (
        EXPECTED_RUNTIME_CODE_HASH,
        code_hash,
        compile_executor,
        executor_abi,
        identity_problems,
        read_identity,
    )
    from venues.onchain.program import OnchainProgram, WatchedToken
    from venues.onchain.reader import RPC_VENUE
    from venues.onchain.tx.manager import TxCall

    configs = load_venue_configs(VENUES, override_file=args.config)
    compiled = compile_executor()
    if code_hash(compiled.runtime) != EXPECTED_RUNTIME_CODE_HASH:
        raise ValueError(
            f"the executor compiled from the source hashes to {code_hash(compiled.runtime)}, not the pinned "
            f"{EXPECTED_RUNTIME_CODE_HASH}: the source or the compiler changed (the tests say which); "
            "nothing was deployed")
    store = store or CredentialStore()
    env = args.env
    # The environment's journal: the creation transaction is in the nonce ledger like every other one.
    ledger = NonceLedger(ledger_path or default_journal_path(env))
    try:
        ex = await build_onchain_execution(configs, env, store, ledger)
        try:
            wallet = ex.ctx.address
            pool = getattr(configs["aave_v3"].environments, env).contracts["pool"]
            morpho = getattr(configs["morpho"].environments, env).contracts.get("morpho_blue")
            weth = getattr(configs["aave_v3"].environments, env).tokens["WETH"]
            router = getattr(configs["uniswap"].environments, env).contracts["swap_router_02"]
            if pool is None or weth is None or router is None:
                raise ValueError(f"{env} has no AAVE pool / WETH / SwapRouter02 in configs/venues: nothing to "
                                 "deploy an executor for")
            expected = dict(owner=wallet, pool=pool, morpho=morpho, weth=weth, swap_router=router)
            if ex.executor is not None and not args.replace:
                found = await read_identity(ex.ctx.w3, ex.executor.address, ex.ctx.read)
                if not identity_problems(found, **expected):
                    print(f"the wallet's executor {found.address} is deployed and verified; nothing to do "
                          "(--replace deploys another)")
                    return 0
            contract = ex.ctx.w3.eth.contract(abi=executor_abi(), bytecode=compiled.bytecode)
            args_morpho = morpho or "0x0000000000000000000000000000000000000000"
            data = contract.constructor(wallet, pool, args_morpho, weth, router).data_in_transaction
            program = OnchainProgram(
                f"deploy LeverageExecutor for {wallet} on {env}",
                (TxCall(None, data, label="deploy LeverageExecutor"),),
                (WatchedToken("ETH", None),),
                notes=(f"owner {wallet}; Pool {pool}; Morpho {args_morpho}; WETH {weth}; router {router}",
                       f"runtime code hash {EXPECTED_RUNTIME_CODE_HASH}"),
            )
            assert ex.programs is not None
            for line in (await ex.programs.ticket(program)).lines():
                print(line, flush=True)
            outcome = await ex.programs.execute(program, hf_floor=None)
            receipt = await ex.ctx.read(
                "eth_getTransactionReceipt",
                lambda: ex.ctx.w3.eth.get_transaction_receipt(outcome.results[0].tx_hash))
            address = ex.ctx.reader.checksum(receipt["contractAddress"])
            problems = identity_problems(await read_identity(ex.ctx.w3, address, ex.ctx.read), **expected)
            if problems:
                raise ValueError(f"the deployed executor {address} does not verify: {'; '.join(problems)}")
            store.set(env, RPC_VENUE, "executor_address", address)
            print(f"deployed LeverageExecutor {address} (gas {outcome.gas_used:,}, tx {outcome.results[0].tx_hash}); "
                  f"verified and stored as executor_address for {RPC_VENUE} ({env})")
            return 0
        finally:
            await ex.close()
    finally:
        ledger.close()
