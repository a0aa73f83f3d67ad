"""CRC-32C against published check values.

RFC 3720 (iSCSI), appendix B.4 "CRC Examples" lists the CRC-32C of five 32- and 48-octet
messages; the wire octets there are the CRC in little-endian order, so "aa 36 91 8a" is the value
0x8A9136AA. The "123456789" check value 0xE3069283 is the standard CRC-32C check (e.g. the CRC
RevEng catalogue entry CRC-32/ISCSI).
"""

from __future__ import annotations

import pytest

from netemu.protocol import crc32c

ISCSI_READ_PDU = bytes.fromhex(
    "01c00000000000000000000000000000"
    "14000000000004000000001400000018"
    "28000000000000000200000000000000"
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes(32), 0x8A9136AA),  # RFC 3720 B.4: 32 bytes of zeroes
        (b"\xff" * 32, 0x62A8AB43),  # RFC 3720 B.4: 32 bytes of ones
        (bytes(range(32)), 0x46DD794E),  # RFC 3720 B.4: 32 bytes incrementing 00..1f
        (bytes(range(31, -1, -1)), 0x113FDB5C),  # RFC 3720 B.4: 32 bytes decrementing 1f..00
        (ISCSI_READ_PDU, 0xD9963A56),  # RFC 3720 B.4: an iSCSI - SCSI Read (10) Command PDU
        (b"123456789", 0xE3069283),  # the CRC-32C check value
        (b"", 0),
    ],
)
def test_crc32c_check_values(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected
    assert crc32c(bytearray(data)) == expected
    assert crc32c(memoryview(data)) == expected
