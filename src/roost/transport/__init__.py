"""All socket I/O: asyncio.Protocol transports feeding connection handlers."""
