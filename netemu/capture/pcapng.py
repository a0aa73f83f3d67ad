"""A small pcapng writer for emulated-link captures (one interface per link direction).

The fabric calls :meth:`CaptureWriter.write` for every frame that crosses (or is dropped by) an
emulated link. The file layout is specified in protocols/sgp/CAPTURE.md: one section, one
Interface Description Block per link direction (link type LINKTYPE_USER0, nanosecond
timestamps, ``if_name`` such as ``isl:iridium-p01-s03>iridium-p01-s04``), and one Enhanced
Packet Block per frame holding the netemu link header and the SGP packet, with an optional
human-readable comment. Timestamps are scenario time converted to UTC.

Written by hand rather than with scapy because we need nanosecond resolution, named interfaces,
per-frame comments and a fast path (the fabric writes tens of thousands of frames per second).

>>> import io, datetime as dt
>>> buf = io.BytesIO()
>>> with CaptureWriter(buf, epoch_utc=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)) as cap:
...     i = cap.interface("isl:a>b")
...     cap.write(i, 1_000_000, b"\\x10", LinkMeta(1, 10, 11, range_m=1e6, delay_ns=3_335_641))
>>> buf.getvalue()[:4] == b"\\x0a\\x0d\\x0d\\x0a"
True
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
from pathlib import Path
from typing import BinaryIO

from ..timebase import parse_utc
from .linkheader import LINK_HEADER_LEN, LINKTYPE_NETEMU, LinkMeta, encode_link_header

__all__ = ["CaptureWriter"]

log = logging.getLogger(__name__)

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_END = 0
_OPT_COMMENT = 1
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_US = dt.timedelta(microseconds=1)
_EPB_HEAD = struct.Struct("<IIIIIII")  # type, total length, if id, ts high, ts low, caplen, len
_U32 = struct.Struct("<I")
_OPTIONS_END = struct.pack("<HH", _OPT_END, 0)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad4(value)


def _options(opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    return b"".join(_option(c, v) for c, v in opts) + _OPTIONS_END


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


class CaptureWriter:
    """Write emulated-link frames to a pcapng file.

    ``target`` is a path or a binary stream opened for writing. ``epoch_utc`` is the scenario
    epoch: frame times are given as ``t_ns`` (ns since the epoch) and stored as UTC. With
    ``comments=True`` every frame also carries a one-line text comment (readable in Wireshark
    without netemu's dissector). Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        target: str | Path | BinaryIO,
        *,
        epoch_utc: dt.datetime | str,
        comments: bool = True,
        application: str = "netemu",
    ):
        self.epoch_utc = parse_utc(epoch_utc)
        self._epoch_unix_ns = (self.epoch_utc - _UNIX_EPOCH) // _ONE_US * 1000
        self.comments = comments
        if isinstance(target, (str, Path)):
            self.path: Path | None = Path(target)
            self._stream: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            self._owns_stream = True
        else:
            self.path = None
            self._stream = target
            self._owns_stream = False
        self._interfaces: dict[str, int] = {}
        self.frames_written = 0
        shb_body = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + _options(
            [(_SHB_USERAPPL, application.encode("utf-8"))]
        )
        self._stream.write(_block(_SHB, shb_body))

    # -- interfaces ------------------------------------------------------------------------

    def interface(self, name: str, *, description: str | None = None) -> int:
        """The interface id for a link direction, adding its Interface Description Block once.

        ``name`` follows CAPTURE.md: ``<kind>:<tx node name>><rx node name>``, e.g.
        ``isl:iridium-p01-s03>iridium-p01-s04`` or ``gsl:svalbard>iridium-p03-s07``. Calling it
        again with the same name returns the same id.
        """
        existing = self._interfaces.get(name)
        if existing is not None:
            return existing
        opts = [(_IF_NAME, name.encode("utf-8"))]
        if description:
            opts.append((_IF_DESCRIPTION, description.encode("utf-8")))
        opts.append((_IF_TSRESOL, b"\x09"))  # 10^-9 s: nanosecond timestamps
        body = struct.pack("<HHI", LINKTYPE_NETEMU, 0, 0) + _options(opts)
        self._stream.write(_block(_IDB, body))
        iid = len(self._interfaces)
        self._interfaces[name] = iid
        log.debug("capture interface %d: %s", iid, name)
        return iid

    @property
    def interfaces(self) -> dict[str, int]:
        """Interface names and their ids, in order of creation."""
        return dict(self._interfaces)

    # -- frames ----------------------------------------------------------------------------

    def write(self, interface_id: int, t_ns: int, packet: bytes, meta: LinkMeta) -> None:
        """Write one frame: ``packet`` (SGP octets) sent on ``interface_id`` at scenario time
        ``t_ns`` (the time the frame entered the link; it arrives ``meta.delay_ns`` later when
        delivered), with its link metadata.
        """
        if not 0 <= interface_id < len(self._interfaces):
            raise ValueError(f"unknown interface id {interface_id}; call interface() first")
        ts = self._epoch_unix_ns + t_ns
        caplen = LINK_HEADER_LEN + len(packet)
        pad = -caplen % 4
        opts = (
            _option(_OPT_COMMENT, meta.summary().encode()) + _OPTIONS_END if self.comments else b""
        )
        total = 32 + caplen + pad + len(opts)
        self._stream.write(
            b"".join(
                (
                    _EPB_HEAD.pack(
                        _EPB, total, interface_id, ts >> 32, ts & 0xFFFFFFFF, caplen, caplen
                    ),
                    encode_link_header(meta),
                    packet,
                    bytes(pad),
                    opts,
                    _U32.pack(total),
                )
            )
        )
        self.frames_written += 1

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        """Flush, and close the file if this writer opened it."""
        if self._stream.closed:
            return
        self._stream.flush()
        if self._owns_stream:
            self._stream.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
