"""Mission Control: the vendor's central aiohttp service that every cluster reports to."""
