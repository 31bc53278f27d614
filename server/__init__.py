"""The colonies server: an aiohttp app speaking the ColonyOS RPC protocol, state in PostgreSQL."""

__version__ = "0.1.0"
