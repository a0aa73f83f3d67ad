#!/usr/bin/env python3
"""A minimal second SGP implementation, written only from protocols/sgp/SPEC.md and the fabric
attachment of docs/runtime.md. It does not import netemu (standard library only), so that a
netemu run with ``--external NODE="python3 sgp_min_node.py ..."`` checks netemu against an
independent reading of the SPEC (docs/external.md).

It is an *endpoint*: it answers ECHO_REQUEST (SPEC 6.4), delivers DATA with payload type RAW or
experimental (7.5), sends HELLO when a link comes up (6.3), ACK/NACK when asked (6.2, 7.6), and
forwards nothing: a packet for another node is dropped NO_ROUTE (7.4). It originates ECHO_REQUEST
and DATA on command: JSON datagrams to its control port (127.0.0.1, the port is written to
``--control-file``)::

    {"op": "echo", "dst": 1002, "seq": 1}          -> {"ok": true, "packet_id": 1}
    {"op": "data", "dst": 1002, "text": "hello"}    -> {"ok": true, "packet_id": 2}

Everything it sends and receives is logged as JSON lines to ``--log``. It has no MQTT; its clock
(DTN time, SPEC 2) comes from the run's ``t0_mono_ns`` in ``--run-json`` (docs/external.md,
"Time") once the run has started. Before that ``creation_time_ns`` is 0 ("no synchronised clock",
SPEC 4), or a lower bound of DTN time learned from the packets it received.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

# -- SPEC 4.1: CRC-32C, reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF ----------
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for octet in data:
        crc = _CRC_TABLE[(crc ^ octet) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the check value given in SPEC 4.1

# -- SPEC 4: the 36-octet fixed header; 10.1 types; 10.2 flags; 10.3 payload types ---------------
HEADER = struct.Struct("!BBBBIIIQIBBHI")
DATA, ACK, NACK, HELLO, ECHO_REQUEST, ECHO_REPLY, ROUTE = range(1, 8)
ACK_REQUESTED, REPORT_DROP = 0x80, 0x40
CONTROL, RAW, BPV7 = 0, 1, 2
ALL_NEIGHBOURS = 0xFFFFFFFF
RECORD_ROUTE = 1
NO_ROUTE, UNSUPPORTED_PAYLOAD_TYPE, UNKNOWN_CRITICAL_EXTENSION, LIFETIME_EXPIRED = 1, 7, 6, 3
FIXED_BODY = {ACK: 8, NACK: 12}  # exact lengths (6); minimum lengths below
MIN_BODY = {HELLO: 4, ECHO_REQUEST: 4, ECHO_REPLY: 4, ROUTE: 6}
# -- docs/runtime.md, "Fabric attachment": 'N' 'F' version kind node(u32) ------------------------
NF = struct.Struct("!2sBBI")
FRAME, ATTACH, ATTACHED, LINK = 1, 2, 3, 4
LINK_MTU = 65507 - NF.size  # UDP maximum minus the attachment header (SPEC 8)


class Malformed(Exception):
    """SPEC 11: silently discarded; ``field`` names the first problem found (7.1 order)."""


def encode(typ, src, dst, body, *, packet_id=0, hop_limit=64, flags=0, created_ns=0,
           lifetime_ms=60_000, payload_type=CONTROL, ext=b"", priority=0):  # fmt: skip
    ext += b"\x00" * (-len(ext) % 4)  # PAD1 up to a multiple of four octets (SPEC 5)
    first = (1 << 4) | typ  # version 1, then the type
    head = HEADER.pack(first, flags, hop_limit, priority << 5, src, dst, packet_id, created_ns,
                       lifetime_ms, payload_type, len(ext) // 4, len(body), 0)  # fmt: skip
    packet = head + ext + body
    return packet[:32] + crc32c(packet).to_bytes(4, "big") + packet[36:]  # crc over zeroed crc


def decode(packet: bytes) -> dict:
    """Checks in the order of SPEC 7.1: length, fixed header rules, CRC, extensions, body."""
    if len(packet) < HEADER.size:
        raise Malformed("length")
    (vt, flags, hop, pr, src, dst, pid, created, life, ptype, ext_len, plen, crc) = HEADER.unpack(
        packet[: HEADER.size]
    )
    if len(packet) != HEADER.size + 4 * ext_len + plen:  # SPEC 3
        raise Malformed("payload_length")
    typ = vt & 0x0F
    if vt >> 4 != 1:  # SPEC 13
        raise Malformed("version")
    if not 1 <= typ <= 7:  # SPEC 10.1
        raise Malformed("type")
    if pr & 0x1F:  # SPEC 4: reserved bits
        raise Malformed("reserved")
    if (typ == DATA) == (ptype == CONTROL):  # SPEC 6: DATA non-zero, everything else CONTROL
        raise Malformed("payload_type")
    if crc32c(packet[:32] + b"\0\0\0\0" + packet[36:]) != crc:  # SPEC 4.1
        raise Malformed("crc")
    ext, body = packet[36 : 36 + 4 * ext_len], packet[36 + 4 * ext_len :]
    rr, critical, i = None, None, 0
    while i < len(ext):  # SPEC 5: TLVs, PAD1 anywhere
        t = ext[i]
        if t == 0:
            i += 1
            continue
        if i + 3 > len(ext) or i + 3 + int.from_bytes(ext[i + 1 : i + 3], "big") > len(ext):
            raise Malformed("extension_length")
        value = ext[i + 3 : i + 3 + int.from_bytes(ext[i + 1 : i + 3], "big")]
        if t == RECORD_ROUTE:  # 5.1
            if rr is not None or (len(value) - 1) % 12:
                raise Malformed("record_route")
            rr = value
        elif t & 0x80:
            critical = t
        i += 3 + len(value)
    if typ in FIXED_BODY and len(body) != FIXED_BODY[typ] or len(body) < MIN_BODY.get(typ, 0):
        raise Malformed("body")
    if typ == HELLO and (len(body) > 68 or not _utf8(body[4:])):
        raise Malformed("node_name")
    if typ == DATA and ptype == BPV7 and body[:1] != b"\x9f":  # 6.1
        raise Malformed("payload")
    return dict(type=typ, flags=flags, hop_limit=hop, src=src, dst=dst, packet_id=pid,
                created_ns=created, lifetime_ms=life, payload_type=ptype, rr=rr,
                critical=critical, body=body)  # fmt: skip


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class Node:
    def __init__(self, number, fabric, log, run_json=None, epoch_dtn_ns=0):
        self.number, self.fabric, self.log_file = number, fabric, log
        self.run_json, self.epoch_dtn_ns, self.synced = run_json, epoch_dtn_ns, False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ctl.bind(("127.0.0.1", 0))
        self.attached = False
        self.up: list[int] = []  # neighbours with the link up, latest last
        self.next_id = 0
        self.clock_offset_ns = None  # DTN ns minus our monotonic ns, learned (lower bound)

    def log(self, event, **fields):
        fields = {"t_mono_ns": time.monotonic_ns(), "event": event, **fields}
        self.log_file.write(json.dumps(fields) + "\n")
        self.log_file.flush()

    def now_dtn_ns(self) -> int:
        return 0 if self.clock_offset_ns is None else time.monotonic_ns() + self.clock_offset_ns

    def send(self, next_hop, packet, what):
        self.sock.sendto(NF.pack(b"NF", 1, FRAME, next_hop) + packet, self.fabric)
        self.log("tx", next_hop=next_hop, **what)

    def route(self, prefer=None):
        """No forwarding table (it is on MQTT): the preferred neighbour if its link is up, else
        the neighbour whose link came up last; None when no link is up."""
        if prefer in self.up:
            return prefer
        return self.up[-1] if self.up else None

    def originate(self, typ, dst, body, *, payload_type=CONTROL, ext=b"", prefer=None):
        hop = self.route(prefer)
        if hop is None:
            self.log("no_route", dst=dst, type=typ)
            return None
        self.next_id = (self.next_id + 1) % 2**32  # SPEC 4: packet_id increases by one
        packet = encode(typ, self.number, dst, body, packet_id=self.next_id, ext=ext,
                        created_ns=self.now_dtn_ns(), payload_type=payload_type)  # fmt: skip
        self.send(hop, packet, {"type": typ, "dst": dst, "packet_id": self.next_id})
        return self.next_id

    def on_frame(self, prev_hop, packet):
        try:
            p = decode(packet)
        except Malformed as exc:
            self.log("malformed", field=str(exc), prev_hop=prev_hop, octets=len(packet))
            return
        if p["created_ns"] and not self.synced:  # a lower bound of DTN time (transit >= 0 s)
            offset = p["created_ns"] - time.monotonic_ns()
            self.clock_offset_ns = max(offset, self.clock_offset_ns or offset)
        brief = {k: p[k] for k in ("type", "src", "dst", "packet_id", "flags", "hop_limit")}
        self.log("rx", prev_hop=prev_hop, **brief)
        expiry = p["created_ns"] + p["lifetime_ms"] * 1_000_000
        if p["created_ns"] and self.clock_offset_ns is not None and expiry < self.now_dtn_ns():
            return self.drop(p, prev_hop, LIFETIME_EXPIRED)  # 7.3
        if p["critical"] is not None:
            return self.drop(p, prev_hop, UNKNOWN_CRITICAL_EXTENSION, p["critical"])  # 5, 7.6
        if p["dst"] == ALL_NEIGHBOURS and p["hop_limit"] == 1 and p["type"] in (HELLO, ROUTE):
            if p["type"] == HELLO:  # 6.3: learn the neighbour's name; ROUTE is ignored (6.5)
                mtu = int.from_bytes(p["body"][2:4], "big")
                self.log("hello", src=p["src"], name=p["body"][4:].decode(), link_mtu=mtu)
            return
        if p["dst"] != self.number:
            return self.drop(p, prev_hop, NO_ROUTE)  # an endpoint forwards nothing (7.4)
        body = p["body"]
        if p["type"] == ECHO_REQUEST:  # 6.4: same ident, seq and data; RECORD_ROUTE copied
            self.ack(p, prev_hop)
            ext = b""
            if p["rr"] is not None:  # 5.1: as the reply's source we append our own entry
                rr = p["rr"] + struct.pack("!IQ", self.number, self.now_dtn_ns())
                ext = bytes((RECORD_ROUTE,)) + len(rr).to_bytes(2, "big") + rr
            self.originate(ECHO_REPLY, p["src"], body, ext=ext, prefer=prev_hop)
        elif p["type"] == ECHO_REPLY:
            ident, seq = struct.unpack("!HH", body[:4])
            self.log("echo_reply", src=p["src"], ident=ident, seq=seq, data=body[4:].hex())
        elif p["type"] == DATA:
            if p["payload_type"] == RAW or 192 <= p["payload_type"] <= 254:  # 7.5, 10.3
                self.ack(p, prev_hop)
                self.log("data", src=p["src"], payload_type=p["payload_type"], payload=body.hex())
            else:
                self.drop(p, prev_hop, UNSUPPORTED_PAYLOAD_TYPE, p["payload_type"])
        elif p["type"] in (ACK, NACK):
            self.log(("ack", "nack")[p["type"] == NACK], src=p["src"], body=body.hex())

    def ack(self, p, prev_hop):
        if p["flags"] & ACK_REQUESTED and p["type"] not in (ACK, NACK):  # 6.2
            body = struct.pack("!II", p["src"], p["packet_id"])
            self.send(prev_hop, encode(ACK, self.number, prev_hop, body, hop_limit=1,
                                       created_ns=self.now_dtn_ns()), {"type": ACK})  # fmt: skip

    def drop(self, p, prev_hop, reason, info=0):
        self.log("drop", reason=reason, src=p["src"], dst=p["dst"], packet_id=p["packet_id"])
        if p["type"] in (ACK, NACK):  # 6.2, 7.6: never a NACK about an ACK or NACK
            return
        body = struct.pack("!IIHH", p["src"], p["packet_id"], reason, min(info, 0xFFFF))
        if p["flags"] & ACK_REQUESTED:
            self.send(prev_hop, encode(NACK, self.number, prev_hop, body, hop_limit=1,
                                       created_ns=self.now_dtn_ns()), {"type": NACK})  # fmt: skip
        if p["flags"] & REPORT_DROP:
            self.originate(NACK, p["src"], body, prefer=prev_hop)

    def on_fabric(self, datagram):
        if len(datagram) < NF.size:
            return
        magic, version, kind, node = NF.unpack_from(datagram)
        if magic != b"NF" or version != 1:
            return
        if kind == ATTACHED and not self.attached:
            self.attached = True
            self.log("attached", number=node)
        elif kind == LINK and len(datagram) > NF.size:
            up = datagram[NF.size] == 1
            if node in self.up:
                self.up.remove(node)
            if up:
                self.up.append(node)
                name = os.environ.get("NETEMU_NODE_NAME", "").encode()[:64]
                body = struct.pack("!HH", 0, LINK_MTU) + name  # 6.3: terminal, link_mtu, name
                hello = encode(HELLO, self.number, ALL_NEIGHBOURS, body, hop_limit=1,
                               created_ns=self.now_dtn_ns())  # fmt: skip
                self.send(node, hello, {"type": HELLO})
            self.log("link", neighbour=node, up=up)
        elif kind == FRAME:
            self.on_frame(node, datagram[NF.size :])

    def sync_clock(self):
        """DTN time = scenario epoch + (CLOCK_MONOTONIC - t0_mono_ns), once run.json has t0."""
        try:
            with open(self.run_json) as f:
                t0 = json.load(f).get("t0_mono_ns")
        except (OSError, ValueError):
            return
        if isinstance(t0, int):
            self.clock_offset_ns, self.synced = self.epoch_dtn_ns - t0, True
            self.log("clock", source="run.json", t0_mono_ns=t0)

    def on_command(self, datagram, addr):
        try:
            cmd = json.loads(datagram)
            dst = int(cmd["dst"])
            if cmd["op"] == "echo":
                data = cmd.get("data", "").encode()
                body = struct.pack("!HH", int(cmd.get("ident", 1)), int(cmd.get("seq", 1))) + data
                pid = self.originate(ECHO_REQUEST, dst, body)
            elif cmd["op"] == "data":
                pid = self.originate(DATA, dst, cmd["text"].encode(), payload_type=RAW)
            else:
                raise ValueError(f"unknown op {cmd['op']!r}")
            reply = {"ok": pid is not None, "packet_id": pid, "neighbours": self.up}
        except (ValueError, KeyError, TypeError) as exc:
            reply = {"ok": False, "error": str(exc)}
        self.ctl.sendto(json.dumps(reply).encode(), addr)

    def run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ, "fabric")
        sel.register(self.ctl, selectors.EVENT_READ, "control")
        next_attach = 0.0
        while True:
            if not self.attached and time.monotonic() >= next_attach:  # runtime.md: every 0.2 s
                self.sock.sendto(NF.pack(b"NF", 1, ATTACH, self.number), self.fabric)
                next_attach = time.monotonic() + 0.2
            if not self.synced and self.run_json and self.epoch_dtn_ns:
                self.sync_clock()
            for key, _ in sel.select(timeout=0.2):
                data, addr = key.fileobj.recvfrom(65535)
                if key.data == "fabric":
                    self.on_fabric(data)
                else:
                    self.on_command(data, addr)


def main() -> int:
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=int(env("NETEMU_NODE_NUMBER", "0")))
    ap.add_argument("--fabric-host", default=env("NETEMU_FABRIC_HOST", "127.0.0.1"))
    ap.add_argument("--fabric-port", type=int, default=int(env("NETEMU_FABRIC_PORT", "0")))
    ap.add_argument("--epoch-dtn-ns", type=int, default=int(env("NETEMU_EPOCH_DTN_NS", "0")))
    ap.add_argument("--run-json", default=os.path.join(env("NETEMU_OUT", "."), "run", "run.json"))
    ap.add_argument("--log", required=True, help="JSON lines of what is sent and received")
    ap.add_argument("--control-file", required=True, help="the control port is written here")
    args = ap.parse_args()
    if not args.number or not args.fabric_port:
        ap.error("need --number and --fabric-port (or NETEMU_NODE_NUMBER, NETEMU_FABRIC_PORT)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # netemu ends us by PID (SIGTERM)
    with open(args.log, "a") as log:
        fabric = (args.fabric_host, args.fabric_port)
        node = Node(args.number, fabric, log, args.run_json, args.epoch_dtn_ns)
        tmp = args.control_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(node.ctl.getsockname()[1]))
        os.replace(tmp, args.control_file)
        node.log("start", number=args.number, control_port=node.ctl.getsockname()[1])
        try:
            node.run()
        finally:
            node.log("exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
