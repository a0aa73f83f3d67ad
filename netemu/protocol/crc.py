"""CRC-32C (Castagnoli), the SGP integrity check.

The polynomial is 0x1EDC6F41 (reflected 0x82F63B78), initial value and final XOR 0xFFFFFFFF, as
in iSCSI (RFC 3720, section 12.1 and appendix B.4). We use the ``google-crc32c`` package, which
wraps Google's C implementation (hardware-accelerated where the CPU has it).

>>> hex(crc32c(b"123456789"))
'0xe3069283'
"""

from __future__ import annotations

import google_crc32c


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C of ``data`` as an unsigned 32-bit integer."""
    if type(data) is not bytes:  # the C extension wants read-only bytes
        data = bytes(data)
    return google_crc32c.value(data)
