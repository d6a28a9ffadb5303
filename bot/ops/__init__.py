"""Running the bot: health and metrics, alerts, logs, checks, housekeeping, and the push receiver."""
