"""Upstream replication with the national DHIS2 (DESIGN.md §6).

Pure logic: ``clock`` (offset, placing edits on national's time line), ``conflict``
(detection and policies), ``summary`` (2.41/2.43 import summaries), ``chunking``
(adaptive chunk size), ``watermark``, ``backoff``, ``timefmt``, ``subset`` (which
metadata a hub holds).
I/O: ``client`` (national DHIS2 over aiohttp), ``metadata`` (subtree metadata pull),
``apply`` (store writes), ``push`` (acknowledged chunks), ``cycle`` (one cycle),
``daemon`` (scheduling), ``command`` (``appliance sync``), ``api`` (hub endpoints),
``upstream`` (first-login verification against national). The "sync now" datagram the
daemon listens for is ``appliance.trigger``: hub and health send it too.
"""
