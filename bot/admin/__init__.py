"""The admin page: the bot at a glance in a browser, for whoever runs it (``[admin_page]``).

Served on the ops HTTP server at ``/admin``. Log in with Discord (OAuth2, ``identify``) or with
``[admin_page] token``; only ``[access] admin_user_ids`` get in. Pages are rendered on the server
(Jinja2); the live parts poll for a fresh fragment every few seconds. No import of discord: what
only the Discord layer knows (members' names and roles) comes through ``MemberDirectory``.
"""

from bot.admin.context import MemberDirectory, NoDirectory
from bot.admin.site import AdminSite

__all__ = ["AdminSite", "MemberDirectory", "NoDirectory"]
