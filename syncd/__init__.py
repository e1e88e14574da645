"""syncd: a self-hosted keep-in-touch daemon for freelancers."""

__version__ = "0.1.0"
