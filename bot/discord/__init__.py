"""The Discord layer: the Bot subclass (app), commands (cogs), buttons, rendering and delivery (ui)."""
