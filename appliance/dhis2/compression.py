"""A compressed import body, found by its magic bytes as DHIS2 finds it. Pure.

DHIS2's imports (dataValueSets in JSON, CSV, XML; 2.41 ``DefaultDataValueSetService``,
2.43 ``DataEntryInput``) read their body through ``StreamUtils.wrapAndCheckCompressionFormat``:
a body starting with the gzip magic (``1f 8b``) is inflated, one starting with a zip
local file header (``PK\\x03\\x04``) is read as its first entry, whatever the request's
Content-Type or Content-Encoding says (Tomcat does not decode Content-Encoding).
"""

from __future__ import annotations

import io
import zipfile
import zlib

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


class TooLarge(ValueError):
    """The inflated body is larger than the limit."""


def unpack(body: bytes, limit: int) -> bytes:
    """``body`` inflated if it is gzip or zip (the first entry), else as it is. Raises
    ``ValueError`` for a damaged archive and ``TooLarge`` past ``limit`` bytes
    inflated, without inflating more than that."""
    if body.startswith(GZIP_MAGIC):
        out = bytearray()
        data = body
        while data:  # concatenated members, as GZIPInputStream reads them
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out += d.decompress(data, limit + 1 - len(out))
            except zlib.error as e:
                raise ValueError(f"damaged gzip body: {e}") from None
            if len(out) > limit or d.unconsumed_tail:
                raise TooLarge(f"the body inflates to more than {limit} bytes")
            if not d.eof:
                raise ValueError("damaged gzip body: it ends before its end")
            data = d.unused_data
            if data and not data.startswith(GZIP_MAGIC):
                break  # trailing bytes after the member: ignored, as GZIPInputStream does
        return bytes(out)
    if body.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as z:
                infos = z.infolist()
                if not infos:
                    return b""
                with z.open(infos[0]) as f:
                    entry = f.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
            raise ValueError(f"damaged zip body: {e}") from None
        if len(entry) > limit:
            raise TooLarge(f"the body inflates to more than {limit} bytes")
        return entry
    return body
