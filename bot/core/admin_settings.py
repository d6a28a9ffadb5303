"""``[admin_page]``: the web page where whoever runs the bot sees it at a glance (bot/admin)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

DEFAULT_LISTEN = "127.0.0.1:8081"  # where the page is served when [http] listen is not set


class AdminPageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # How the admin's browser reaches the page (https://bot.example.com behind a reverse proxy);
    # empty: http://<[http] listen>. Discord sends the admin back to <public_url>/admin/login/callback,
    # which must be listed among the application's OAuth2 redirects.
    public_url: Annotated[str, AfterValidator(lambda value: value.rstrip("/"))] = ""
    # "Log in with Discord": the bot's own application. client_id 0 = the bot's application id.
    client_id: int = Field(default=0, ge=0)
    client_secret: SecretStr = SecretStr("")
    # The fallback login, for setups where Discord cannot send the admin back: a long random string.
    token: SecretStr = SecretStr("")
    session_hours: float = Field(default=12, gt=0, le=24 * 30)

    @model_validator(mode="after")
    def _someone_can_log_in(self) -> AdminPageSettings:
        if not self.enabled:
            return self
        if not self.client_secret.get_secret_value() and not self.token.get_secret_value():
            raise ValueError("the admin page needs client_secret (Log in with Discord) or token, or both")
        token = self.token.get_secret_value()
        if token and len(token) < 16:
            raise ValueError("token must be at least 16 characters: it is a password for the whole bot")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return self

    @property
    def discord_login(self) -> bool:
        return bool(self.client_secret.get_secret_value())
