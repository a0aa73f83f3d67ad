"""Write a capture of every SGP test vector (the committed captures/sample-vectors.pcapng).

    python -m netemu.capture.sample captures/sample-vectors.pcapng

Valid vectors go out on an inter-satellite link in both directions, the invalid ones on a
ground-to-satellite link; a few frames are marked as dropped (loss, link down) so every part of
the link header shows up in Wireshark.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from ..protocol.vectors import load_vectors
from .linkheader import DropReason, LinkEvent, LinkMeta
from .pcapng import CaptureWriter

__all__ = ["SAMPLE_EPOCH_UTC", "write_vector_capture"]

log = logging.getLogger(__name__)

SAMPLE_EPOCH_UTC = "2026-01-01T00:00:00Z"
_C_M_PER_S = 299_792_458.0


def write_vector_capture(target, *, comments: bool = True) -> list[dict]:
    """Write every vector as one frame; returns the vectors in frame order (frame n = item n-1)."""
    vectors = load_vectors()
    with CaptureWriter(target, epoch_utc=SAMPLE_EPOCH_UTC, comments=comments) as cap:
        fwd = cap.interface("isl:iridium-p01-s03>iridium-p01-s04", description="link 1")
        rev = cap.interface("isl:iridium-p01-s04>iridium-p01-s03", description="link 1")
        gsl = cap.interface("gsl:svalbard>iridium-p01-s03", description="link 2")
        for i, vector in enumerate(vectors):
            t_ns = i * 10_000_000
            range_m = 4_000_000.0 + 1_000.0 * i
            delay_ns = round(range_m / _C_M_PER_S * 1e9)
            if vector["kind"] == "invalid":
                iface, meta = gsl, LinkMeta(2, 9000, 1003, range_m, delay_ns)
            else:
                reverse = i % 2 == 1
                iface = rev if reverse else fwd
                tx, rx = (1004, 1003) if reverse else (1003, 1004)
                meta = LinkMeta(1, tx, rx, range_m, delay_ns, 0.01, (i * 0.137) % 1.0)
                if i % 7 == 3:
                    meta = LinkMeta(
                        1, tx, rx, range_m, delay_ns, 0.5, 0.25, LinkEvent.DROPPED, DropReason.LOSS
                    )
                elif i % 7 == 5:
                    meta = LinkMeta(
                        1, tx, rx, range_m, delay_ns, 1.0, math.nan, LinkEvent.DROPPED,
                        DropReason.LINK_DOWN,
                    )  # fmt: skip
            cap.write(iface, t_ns, bytes.fromhex(vector["hex"]), meta)
    return vectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a pcapng capture of the SGP vectors.")
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n = len(write_vector_capture(args.path))
    log.info("wrote %d frames to %s", n, args.path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
