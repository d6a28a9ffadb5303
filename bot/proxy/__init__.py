"""The Midjourney Proxy client: one httpx client, typed errors, and the guard on what the bot downloads."""
