"""CalDAV: follow-ups written into the user's calendar (the `caldav` sink) and meetings read from
the user's calendars (the `caldav` source)."""

from __future__ import annotations

from connectors.caldav.sink import CalDavSink, CalDavSinkOptions
from connectors.caldav.source import CalDavSource, CalDavSourceOptions

__all__ = ["CalDavSink", "CalDavSinkOptions", "CalDavSource", "CalDavSourceOptions"]
