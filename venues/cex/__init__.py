"""CEX adapters on ccxt.async_support (binance spot + USD-M, bybit, okx): see factory.build_cex_adapter."""
