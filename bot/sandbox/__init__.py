"""The world the bot needs, without Discord or Midjourney: a Midjourney Proxy simulator that speaks
novicezk, trueai and new-api (``proxy_sim``), and a Discord double that an unmodified discord.py
logs into (``discord_double``). The tests run the bot against them, and ``mjbot demo`` puts them in
a browser (``demo``). The bot itself never imports this package."""
