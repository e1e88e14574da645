"""The keys of an `[sources.NAME] type = "imap"` table."""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import Field, model_validator

from connectors.base import ConfigPath, SecretOptions, is_loopback


class ImapOptions(SecretOptions):
    type: Literal["imap"]
    host: str = Field(min_length=1)
    # None: 993 for security = "tls", 143 for "starttls" and "none".
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    auth: Literal["password", "oauth2"] = "password"
    # Prints a fresh OAuth2 access token (e.g. ["oama", "access", "me@gmail.com"]).
    oauth2_token_command: list[str] | None = None
    # Folder names as the mail client shows them; None: INBOX, Sent and Archive (or All Mail).
    folders: list[str] | None = None
    # Only mail the server received on or after this day.
    since: date | None = None
    # The certificate authority to trust instead of the system's (a self-hosted server's own CA).
    ca_file: ConfigPath | None = None

    @model_validator(mode="after")
    def _safe_and_complete(self) -> Self:
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                'security = "none" would send the password unencrypted; it is allowed only for '
                'a server on this machine (localhost, 127.0.0.1); use "tls" (port 993) or '
                '"starttls" (port 143)'
            )
        if not self.username:
            raise ValueError("username is needed to log in (usually the mail address)")
        if self.auth == "oauth2" and not self.oauth2_token_command:
            raise ValueError(
                'auth = "oauth2" needs oauth2_token_command = [...], a command that prints a '
                "fresh access token (e.g. oama or mutt_oauth2.py)"
            )
        return self

    @property
    def server_port(self) -> int:
        if self.port is not None:
            return self.port
        return 993 if self.security == "tls" else 143

    @property
    def user(self) -> str:
        return self.username or ""
