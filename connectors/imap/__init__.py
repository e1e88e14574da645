"""The `imap` source: mail headers from any IMAP server, read-only and incremental.

`source` holds the scan and its cursor, `session` the logged-in connection and its errors,
`folders` which folders are read, `wire` the fast path for the bulk UID SEARCH and header FETCH.
"""

from __future__ import annotations

from connectors.imap.options import ImapOptions
from connectors.imap.source import ImapSource

__all__ = ["ImapOptions", "ImapSource"]
