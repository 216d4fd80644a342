"""The one SQLite store: schema and migrations, the HLC, and the only write path."""

from .db import Store, Tx
from .hlc import HLC

__all__ = ["HLC", "Store", "Tx"]
