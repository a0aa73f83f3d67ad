-- Wireshark dissector for netemu captures and the Space-Ground Packet protocol (SGP).
--
--   netemulink  the 56-octet link header of netemu captures (pcapng LINKTYPE_USER0 = 147),
--               see protocols/sgp/CAPTURE.md
--   sgp         SGP version 1, see protocols/sgp/SPEC.md; also on UDP port 61801 (a preference)
--
-- Install with `netemu wireshark install`, or load it for one run:
--   tshark -X lua_script:sgp.lua -r capture.pcapng
-- Filter examples: sgp.src == 1003, sgp.type == 1, sgp.rr.node, netemulink.event == 2,
-- netemulink.reason == 1, sgp.crc.status == 0
--
-- Written for Wireshark 4.x (Lua 5.2 and later). SPDX-License-Identifier: Apache-2.0

local SGP_VERSION = 1
local SGP_DEFAULT_PORT = 61801
local HEADER_LEN = 36
local LINK_HEADER_LEN = 56
local DTN_EPOCH_UNIX_S = 946684800

---------------------------------------------------------------------------------------------
-- 32-bit operations: bit32 (Lua 5.2) or Wireshark's `bit` module; results made unsigned.
local bitlib = bit32 or bit
local U32 = 4294967296
local function u32(x) return x % U32 end
local band = function(a, b) return u32(bitlib.band(a, b)) end
local bxor = function(a, b) return u32(bitlib.bxor(a, b)) end
local rshift = function(a, n) return u32(bitlib.rshift(a, n)) end

-- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven.
local CRC32C_TABLE = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if band(c, 1) == 1 then c = bxor(rshift(c, 1), 0x82F63B78) else c = rshift(c, 1) end
    end
    CRC32C_TABLE[i] = c
end

-- CRC-32C of a ByteArray, with the octets [skip, skip+4) taken as zero.
local function crc32c(bytes, skip)
    local crc = 0xFFFFFFFF
    for i = 0, bytes:len() - 1 do
        local b = bytes:get_index(i)
        if i >= skip and i < skip + 4 then b = 0 end
        crc = bxor(CRC32C_TABLE[band(bxor(crc, b), 0xFF)], rshift(crc, 8))
    end
    return bxor(crc, 0xFFFFFFFF)
end

---------------------------------------------------------------------------------------------
-- Registries (SPEC.md section 10; CAPTURE.md)
local MSG_TYPES = {
    [1] = "DATA", [2] = "ACK", [3] = "NACK", [4] = "HELLO",
    [5] = "ECHO_REQUEST", [6] = "ECHO_REPLY", [7] = "ROUTE",
}
local PAYLOAD_TYPES = { [0] = "CONTROL", [1] = "RAW", [2] = "BPV7" }
local EXT_TYPES = { [0] = "PAD1", [1] = "RECORD_ROUTE" }
local NACK_REASONS = {
    [0] = "UNSPECIFIED", [1] = "NO_ROUTE", [2] = "QUEUE_FULL", [3] = "LIFETIME_EXPIRED",
    [4] = "HOP_LIMIT_EXCEEDED", [5] = "TOO_BIG", [6] = "UNKNOWN_CRITICAL_EXTENSION",
    [7] = "UNSUPPORTED_PAYLOAD_TYPE", [8] = "LINK_DOWN",
}
local ROUTE_SCHEMES = { [0] = "RESERVED", [1] = "OPAQUE" }
local LINK_EVENTS = { [1] = "delivered", [2] = "dropped" }
local DROP_REASONS = {
    [0] = "none", [1] = "loss", [2] = "link down", [3] = "queue full", [4] = "too big",
    [5] = "link lost in flight",
}
local CRC_STATUS = { [0] = "Bad", [1] = "Good" }

---------------------------------------------------------------------------------------------
-- netemulink: the capture link header
local netemulink = Proto("netemulink", "netemu emulated link")
local lf = {
    version = ProtoField.uint8("netemulink.version", "Version", base.DEC),
    event = ProtoField.uint8("netemulink.event", "Event", base.DEC, LINK_EVENTS),
    reason = ProtoField.uint8("netemulink.reason", "Drop reason", base.DEC, DROP_REASONS),
    header_length = ProtoField.uint16("netemulink.header_length", "Header length", base.DEC),
    link_id = ProtoField.uint32("netemulink.link_id", "Link id", base.DEC),
    tx_node = ProtoField.uint32("netemulink.tx_node", "Transmitting node", base.DEC),
    rx_node = ProtoField.uint32("netemulink.rx_node", "Receiving node", base.DEC),
    range_m = ProtoField.double("netemulink.range_m", "Range (m)"),
    delay_ns = ProtoField.uint64("netemulink.delay_ns", "Applied delay (ns)", base.DEC),
    delay_ms = ProtoField.double("netemulink.delay_ms", "Applied delay (ms)"),
    loss_probability = ProtoField.double("netemulink.loss_probability", "Loss probability"),
    loss_draw = ProtoField.double("netemulink.loss_draw", "Loss draw"),
    no_draw = ProtoField.bool("netemulink.no_draw", "No loss draw made"),
}
netemulink.fields = lf
local ef_link_short = ProtoExpert.new("netemulink.truncated", "Truncated netemu link header",
    expert.group.MALFORMED, expert.severity.ERROR)
local ef_link_version = ProtoExpert.new("netemulink.bad_version",
    "Unknown netemu link header version", expert.group.MALFORMED, expert.severity.ERROR)
local ef_link_empty = ProtoExpert.new("netemulink.empty", "No SGP packet after the link header",
    expert.group.MALFORMED, expert.severity.ERROR)
netemulink.experts = { ef_link_short, ef_link_version, ef_link_empty }

---------------------------------------------------------------------------------------------
-- sgp
local sgp = Proto("sgp", "Space-Ground Packet protocol")
local f = {
    version = ProtoField.uint8("sgp.version", "Version", base.DEC, nil, 0xF0),
    type = ProtoField.uint8("sgp.type", "Type", base.DEC, MSG_TYPES, 0x0F),
    flags = ProtoField.uint8("sgp.flags", "Flags", base.HEX),
    flag_ack = ProtoField.bool("sgp.flags.ack_requested", "ACK requested", 8, nil, 0x80),
    flag_report = ProtoField.bool("sgp.flags.report_drop", "Report drop", 8, nil, 0x40),
    flag_unassigned = ProtoField.uint8("sgp.flags.unassigned", "Unassigned flags", base.HEX,
        nil, 0x3F),
    hop_limit = ProtoField.uint8("sgp.hop_limit", "Hop limit", base.DEC),
    priority = ProtoField.uint8("sgp.priority", "Priority", base.DEC, nil, 0xE0),
    reserved = ProtoField.uint8("sgp.reserved", "Reserved", base.HEX, nil, 0x1F),
    src = ProtoField.uint32("sgp.src", "Source node", base.DEC),
    dst = ProtoField.uint32("sgp.dst", "Destination node", base.DEC),
    packet_id = ProtoField.uint32("sgp.packet_id", "Packet id", base.DEC),
    creation_time_ns = ProtoField.uint64("sgp.creation_time_ns", "Creation time (ns since 2000)",
        base.DEC),
    creation_time = ProtoField.absolute_time("sgp.creation_time", "Creation time", base.UTC),
    lifetime_ms = ProtoField.uint32("sgp.lifetime_ms", "Lifetime (ms)", base.DEC),
    expiry = ProtoField.absolute_time("sgp.expiry", "Expires", base.UTC),
    payload_type = ProtoField.uint8("sgp.payload_type", "Payload type", base.DEC, PAYLOAD_TYPES),
    ext_length = ProtoField.uint8("sgp.ext_length", "Extension length (words)", base.DEC),
    payload_length = ProtoField.uint16("sgp.payload_length", "Payload length", base.DEC),
    crc = ProtoField.uint32("sgp.crc", "CRC-32C", base.HEX),
    crc_status = ProtoField.uint8("sgp.crc.status", "CRC-32C status", base.DEC, CRC_STATUS),
    crc_computed = ProtoField.uint32("sgp.crc.computed", "Computed CRC-32C", base.HEX),
    -- extensions
    ext = ProtoField.none("sgp.ext", "Extension"),
    ext_type = ProtoField.uint8("sgp.ext.type", "Type", base.HEX, EXT_TYPES),
    ext_critical = ProtoField.bool("sgp.ext.critical", "Critical", 8, nil, 0x80),
    ext_len = ProtoField.uint16("sgp.ext.length", "Length", base.DEC),
    ext_value = ProtoField.bytes("sgp.ext.value", "Value"),
    ext_pad = ProtoField.uint8("sgp.ext.pad", "Padding", base.DEC),
    rr_missed = ProtoField.uint8("sgp.rr.missed", "Hops not recorded", base.DEC),
    rr_hop = ProtoField.none("sgp.rr.hop", "Hop"),
    rr_node = ProtoField.uint32("sgp.rr.node", "Node", base.DEC),
    rr_time_ns = ProtoField.uint64("sgp.rr.time_ns", "Time (ns since 2000)", base.DEC),
    rr_time = ProtoField.absolute_time("sgp.rr.time", "Time", base.UTC),
    rr_hop_ns = ProtoField.int64("sgp.rr.hop_ns", "Time since previous hop (ns)", base.DEC),
    -- bodies
    payload = ProtoField.bytes("sgp.payload", "Payload"),
    ack_ref_src = ProtoField.uint32("sgp.ack.ref_src", "Acknowledged source", base.DEC),
    ack_ref_packet_id = ProtoField.uint32("sgp.ack.ref_packet_id", "Acknowledged packet id",
        base.DEC),
    nack_ref_src = ProtoField.uint32("sgp.nack.ref_src", "Refused source", base.DEC),
    nack_ref_packet_id = ProtoField.uint32("sgp.nack.ref_packet_id", "Refused packet id",
        base.DEC),
    nack_reason = ProtoField.uint16("sgp.nack.reason", "Reason", base.DEC, NACK_REASONS),
    nack_info = ProtoField.uint16("sgp.nack.info", "Info", base.DEC),
    hello_terminal = ProtoField.uint16("sgp.hello.terminal", "Terminal", base.DEC),
    hello_link_mtu = ProtoField.uint16("sgp.hello.link_mtu", "Link MTU", base.DEC),
    hello_node_name = ProtoField.string("sgp.hello.node_name", "Node name", base.UNICODE),
    echo_ident = ProtoField.uint16("sgp.echo.ident", "Identifier", base.HEX),
    echo_seq = ProtoField.uint16("sgp.echo.seq", "Sequence", base.DEC),
    echo_data = ProtoField.bytes("sgp.echo.data", "Data"),
    route_scheme = ProtoField.uint16("sgp.route.scheme", "Scheme", base.HEX, ROUTE_SCHEMES),
    route_update_seq = ProtoField.uint32("sgp.route.update_seq", "Update sequence", base.DEC),
    route_data = ProtoField.bytes("sgp.route.data", "Data"),
}
sgp.fields = f

local function expert_field(name, text, group, severity)
    return ProtoExpert.new("sgp." .. name, text, group, severity)
end
local E, S = expert.group, expert.severity
local ex = {
    truncated = expert_field("truncated", "Truncated SGP packet", E.MALFORMED, S.ERROR),
    trailing = expert_field("trailing", "Octets after the end announced by the header",
        E.MALFORMED, S.ERROR),
    bad_crc = expert_field("bad_crc", "Bad CRC-32C", E.CHECKSUM, S.ERROR),
    bad_version = expert_field("bad_version", "Unknown SGP version", E.MALFORMED, S.ERROR),
    bad_type = expert_field("bad_type", "Unassigned message type", E.MALFORMED, S.ERROR),
    reserved = expert_field("reserved_nonzero", "Reserved bits are not zero", E.MALFORMED,
        S.ERROR),
    payload_type = expert_field("bad_payload_type", "Payload type not allowed for this message type",
        E.MALFORMED, S.ERROR),
    body_length = expert_field("bad_body_length", "Body length does not match the message type",
        E.MALFORMED, S.ERROR),
    bad_ext = expert_field("bad_extension", "Malformed extension", E.MALFORMED, S.ERROR),
    critical_ext = expert_field("unknown_critical_extension",
        "Unknown critical extension: a node that does not know it drops the packet",
        E.PROTOCOL, S.NOTE),
    bad_name = expert_field("bad_node_name", "HELLO node name invalid", E.MALFORMED, S.ERROR),
    bad_bpv7 = expert_field("bad_bpv7", "BPv7 payload does not start a CBOR indefinite array",
        E.MALFORMED, S.ERROR),
}
sgp.experts = {
    ex.truncated, ex.trailing, ex.bad_crc, ex.bad_version, ex.bad_type, ex.reserved,
    ex.payload_type, ex.body_length, ex.bad_ext, ex.critical_ext, ex.bad_name, ex.bad_bpv7,
}

sgp.prefs.udp_port = Pref.uint("UDP port", SGP_DEFAULT_PORT, "UDP port of SGP")

-- Payload dissectors by payload type; other plugins may add to this table.
local payload_table = DissectorTable.new("sgp.payload_type", "SGP payload type", ftypes.UINT8,
    base.DEC, sgp)
local data_dissector = Dissector.get("data")

-- DTN-epoch nanoseconds (UInt64) to NSTime, or nil for 0 (unknown).
local function dtn_nstime(ns)
    if ns == UInt64(0) then return nil end
    local secs = (ns / 1000000000):tonumber() + DTN_EPOCH_UNIX_S
    local nsecs = (ns % 1000000000):tonumber()
    return NSTime.new(secs, nsecs)
end

local function dissect_extensions(tvb, tree, pinfo, start, stop)
    local pos = start
    local seen_rr = false
    local prev_time = nil
    while pos < stop do
        local ext_type = tvb(pos, 1):uint()
        if ext_type == 0 then
            local n = 0
            while pos + n < stop and tvb(pos + n, 1):uint() == 0 do n = n + 1 end
            tree:add(f.ext_pad, tvb(pos, n), n):set_text("Padding: " .. n .. " octet(s)")
            pos = pos + n
        else
            if stop - pos < 3 then
                tree:add_proto_expert_info(ex.bad_ext, "Extension TLV header cut by the end of the area")
                return
            end
            local length = tvb(pos + 1, 2):uint()
            local vstart = pos + 3
            local item_len = math.min(3 + length, stop - pos)
            local name = EXT_TYPES[ext_type] or string.format("0x%02x", ext_type)
            local et = tree:add(f.ext, tvb(pos, item_len))
            et:set_text("Extension " .. name)
            et:add(f.ext_type, tvb(pos, 1))
            et:add(f.ext_critical, tvb(pos, 1))
            et:add(f.ext_len, tvb(pos + 1, 2))
            if vstart + length > stop then
                et:add_proto_expert_info(ex.bad_ext, "Extension value runs past the extension area")
                return
            end
            if ext_type == 1 then
                if seen_rr then et:add_proto_expert_info(ex.bad_ext, "Second RECORD_ROUTE") end
                seen_rr = true
                if length < 1 or (length - 1) % 12 ~= 0 then
                    et:add_proto_expert_info(ex.bad_ext, "RECORD_ROUTE value must be 1 + 12n octets")
                else
                    et:add(f.rr_missed, tvb(vstart, 1))
                    local n = (length - 1) / 12
                    for i = 0, n - 1 do
                        local off = vstart + 1 + 12 * i
                        local node = tvb(off, 4):uint()
                        local t = tvb(off + 4, 8):uint64()
                        local ht = et:add(f.rr_hop, tvb(off, 12))
                        ht:set_text(string.format("Hop %d: node %d", i + 1, node))
                        ht:add(f.rr_node, tvb(off, 4))
                        ht:add(f.rr_time_ns, tvb(off + 4, 8))
                        local nst = dtn_nstime(t)
                        if nst then ht:add(f.rr_time, tvb(off + 4, 8), nst) end
                        if prev_time then
                            local d = Int64(t) - Int64(prev_time)
                            ht:add(f.rr_hop_ns, tvb(off + 4, 8), d):set_generated()
                        end
                        prev_time = t
                    end
                end
            else
                if length > 0 then et:add(f.ext_value, tvb(vstart, length)) end
                if bitlib.band(ext_type, 0x80) ~= 0 then
                    et:add_proto_expert_info(ex.critical_ext)
                end
            end
            pos = vstart + length
        end
    end
end

-- Fixed body fields per message type: {field, size}; tail field or nil.
local BODY = {
    [2] = { fixed = { { f.ack_ref_src, 4 }, { f.ack_ref_packet_id, 4 } } },
    [3] = { fixed = { { f.nack_ref_src, 4 }, { f.nack_ref_packet_id, 4 }, { f.nack_reason, 2 },
        { f.nack_info, 2 } } },
    [4] = { fixed = { { f.hello_terminal, 2 }, { f.hello_link_mtu, 2 } }, tail = f.hello_node_name,
        tail_max = 64 },
    [5] = { fixed = { { f.echo_ident, 2 }, { f.echo_seq, 2 } }, tail = f.echo_data },
    [6] = { fixed = { { f.echo_ident, 2 }, { f.echo_seq, 2 } }, tail = f.echo_data },
    [7] = { fixed = { { f.route_scheme, 2 }, { f.route_update_seq, 4 } }, tail = f.route_data },
}

-- Strict UTF-8 check (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
local function valid_utf8(bytes)
    local i, n = 0, bytes:len()
    while i < n do
        local c = bytes:get_index(i)
        local need, lo, hi = 0, 0x80, 0xBF
        if c < 0x80 then need = 0
        elseif c >= 0xC2 and c <= 0xDF then need = 1
        elseif c == 0xE0 then need, lo = 2, 0xA0
        elseif c == 0xED then need, hi = 2, 0x9F
        elseif c >= 0xE1 and c <= 0xEF then need = 2
        elseif c == 0xF0 then need, lo = 3, 0x90
        elseif c == 0xF4 then need, hi = 3, 0x8F
        elseif c >= 0xF1 and c <= 0xF3 then need = 3
        else return false end
        if i + need > n - 1 then return false end  -- sequence cut by the end
        for k = 1, need do
            local b = bytes:get_index(i + k)
            if k == 1 then
                if b < lo or b > hi then return false end
            elseif b < 0x80 or b > 0xBF then return false end
        end
        i = i + need + 1
    end
    return true
end

local function dissect_body(tvb, pinfo, tree, root, mtype, ptype, start, size)
    if mtype == 1 then
        if size == 0 then
            if ptype == 2 then tree:add_proto_expert_info(ex.bad_bpv7) end
            return ""
        end
        local sub = tvb(start, size)
        local item = tree:add(f.payload, sub)
        if ptype == 2 and tvb(start, 1):uint() ~= 0x9F then
            item:add_proto_expert_info(ex.bad_bpv7)
            return ""
        end
        if not payload_table:try(ptype, sub:tvb(), pinfo, root) then
            data_dissector:call(sub:tvb(), pinfo, root)
        end
        return ""
    end
    local spec = BODY[mtype]
    if spec == nil then return "" end
    local bt = tree:add(sgp, tvb(start, size), "Body: " .. MSG_TYPES[mtype])
    local off = 0
    local fixed_len = 0
    for _, fs in ipairs(spec.fixed) do fixed_len = fixed_len + fs[2] end
    for _, fs in ipairs(spec.fixed) do
        if off + fs[2] > size then
            bt:add_proto_expert_info(ex.truncated, "Body shorter than its fixed fields")
            return ""
        end
        bt:add(fs[1], tvb(start + off, fs[2]))
        off = off + fs[2]
    end
    if spec.tail == nil then
        if size ~= fixed_len then
            bt:add_proto_expert_info(ex.body_length)
        end
    elseif size > fixed_len then
        local tail = tvb(start + fixed_len, size - fixed_len)
        if mtype == 4 then
            local ti = bt:add(spec.tail, tail, tail:string(ENC_UTF_8))
            if size - fixed_len > spec.tail_max then
                ti:add_proto_expert_info(ex.bad_name, "HELLO node name longer than 64 octets")
            end
            if not valid_utf8(tail:bytes()) then
                ti:add_proto_expert_info(ex.bad_name, "HELLO node name is not valid UTF-8")
            end
            return " " .. tail:string(ENC_UTF_8)
        end
        bt:add(spec.tail, tail)
    end
    if mtype == 2 or mtype == 3 then
        return string.format(" ref %d/%d", tvb(start, 4):uint(), tvb(start + 4, 4):uint())
    elseif mtype == 5 or mtype == 6 then
        return string.format(" ident=0x%04x seq=%d", tvb(start, 2):uint(), tvb(start + 2, 2):uint())
    end
    return ""
end

function sgp.dissector(tvb, pinfo, root)
    pinfo.cols.protocol = "SGP"
    local n = tvb:reported_length_remaining()
    local tree = root:add(sgp, tvb())
    if n < HEADER_LEN then
        -- show the header fields that are complete, then flag the truncation
        local layout = { { f.version, 0, 1 }, { f.type, 0, 1 }, { f.flags, 1, 1 },
            { f.hop_limit, 2, 1 }, { f.priority, 3, 1 }, { f.reserved, 3, 1 }, { f.src, 4, 4 },
            { f.dst, 8, 4 }, { f.packet_id, 12, 4 }, { f.creation_time_ns, 16, 8 },
            { f.lifetime_ms, 24, 4 }, { f.payload_type, 28, 1 }, { f.ext_length, 29, 1 },
            { f.payload_length, 30, 2 }, { f.crc, 32, 4 } }
        for _, e in ipairs(layout) do
            if e[2] + e[3] <= n then tree:add(e[1], tvb(e[2], e[3])) end
        end
        tree:add_proto_expert_info(ex.truncated,
            string.format("Truncated: the fixed header needs %d octets, the packet has %d",
                HEADER_LEN, n))
        pinfo.cols.info = "SGP [truncated header]"
        return n
    end

    local b0 = tvb(0, 1):uint()
    local version = rshift(b0, 4)
    local mtype = band(b0, 0x0F)
    local ptype = tvb(28, 1):uint()
    local ext_words = tvb(29, 1):uint()
    local plen = tvb(30, 2):uint()
    local src = tvb(4, 4):uint()
    local dst = tvb(8, 4):uint()
    local tname = MSG_TYPES[mtype] or string.format("type %d", mtype)

    local vi = tree:add(f.version, tvb(0, 1))
    if version ~= SGP_VERSION then vi:add_proto_expert_info(ex.bad_version) end
    local ti = tree:add(f.type, tvb(0, 1))
    if MSG_TYPES[mtype] == nil then ti:add_proto_expert_info(ex.bad_type) end
    local fl = tree:add(f.flags, tvb(1, 1))
    fl:add(f.flag_ack, tvb(1, 1))
    fl:add(f.flag_report, tvb(1, 1))
    fl:add(f.flag_unassigned, tvb(1, 1))
    tree:add(f.hop_limit, tvb(2, 1))
    tree:add(f.priority, tvb(3, 1))
    local ri = tree:add(f.reserved, tvb(3, 1))
    if band(tvb(3, 1):uint(), 0x1F) ~= 0 then ri:add_proto_expert_info(ex.reserved) end
    tree:add(f.src, tvb(4, 4))
    tree:add(f.dst, tvb(8, 4))
    tree:add(f.packet_id, tvb(12, 4))
    local ct = tvb(16, 8):uint64()
    tree:add(f.creation_time_ns, tvb(16, 8))
    local nst = dtn_nstime(ct)
    tree:add(f.lifetime_ms, tvb(24, 4))
    if nst then
        tree:add(f.creation_time, tvb(16, 8), nst):set_generated()
        local lifetime = tvb(24, 4):uint()
        local exp = nst + NSTime.new(math.floor(lifetime / 1000), (lifetime % 1000) * 1000000)
        tree:add(f.expiry, tvb(24, 4), exp):set_generated()
    end
    local pi = tree:add(f.payload_type, tvb(28, 1))
    if MSG_TYPES[mtype] ~= nil then
        if (mtype == 1 and ptype == 0) or (mtype ~= 1 and ptype ~= 0) then
            pi:add_proto_expert_info(ex.payload_type)
        end
    end
    tree:add(f.ext_length, tvb(29, 1))
    tree:add(f.payload_length, tvb(30, 2))
    local crc_item = tree:add(f.crc, tvb(32, 4))

    local info = string.format("SGP %s %d → %d id=%d hl=%d", tname, src, dst,
        tvb(12, 4):uint(), tvb(2, 1):uint())
    if mtype == 1 then
        info = info .. " " .. (PAYLOAD_TYPES[ptype] or string.format("payload type %d", ptype))
    end

    local ext_end = HEADER_LEN + 4 * ext_words
    local total = ext_end + plen
    if n < total then
        tree:add_proto_expert_info(ex.truncated, string.format(
            "Truncated: the header announces %d octets, the packet has %d", total, n))
    elseif n > total then
        tree:add_proto_expert_info(ex.trailing, string.format(
            "The header announces %d octets, the packet has %d", total, n))
    end
    if n >= total then
        local computed = crc32c(tvb(0, total):bytes(), 32)
        local carried = tvb(32, 4):uint()
        if computed == carried then
            tree:add(f.crc_status, tvb(32, 4), 1):set_generated()
        else
            tree:add(f.crc_status, tvb(32, 4), 0):set_generated()
            tree:add(f.crc_computed, tvb(32, 4), computed):set_generated()
            crc_item:add_proto_expert_info(ex.bad_crc, string.format(
                "Bad CRC-32C: computed 0x%08x, packet carries 0x%08x", computed, carried))
            info = info .. " [bad CRC]"
        end
    else
        info = info .. " [truncated]"
    end

    if ext_words > 0 then
        local et = tree:add(sgp, tvb(HEADER_LEN, math.min(4 * ext_words, n - HEADER_LEN)),
            "Extensions")
        dissect_extensions(tvb, et, pinfo, HEADER_LEN, math.min(ext_end, n))
    end
    if n >= ext_end and MSG_TYPES[mtype] ~= nil then
        local size = math.min(plen, n - ext_end)
        info = info .. dissect_body(tvb, pinfo, tree, root, mtype, ptype, ext_end, size)
    end
    pinfo.cols.info = info
    return n
end

function netemulink.dissector(tvb, pinfo, root)
    pinfo.cols.protocol = "netemulink"
    local n = tvb:reported_length_remaining()
    local tree = root:add(netemulink, tvb(0, math.min(n, LINK_HEADER_LEN)))
    if n < LINK_HEADER_LEN then
        tree:add_proto_expert_info(ef_link_short)
        return n
    end
    local vi = tree:add(lf.version, tvb(0, 1))
    if tvb(0, 1):uint() ~= 1 then
        vi:add_proto_expert_info(ef_link_version)
        return n
    end
    local event = tvb(1, 1):uint()
    local reason = tvb(2, 1):uint()
    tree:add(lf.event, tvb(1, 1))
    tree:add(lf.reason, tvb(2, 1))
    tree:add(lf.header_length, tvb(4, 2))
    tree:add(lf.link_id, tvb(8, 4))
    tree:add(lf.tx_node, tvb(12, 4))
    tree:add(lf.rx_node, tvb(16, 4))
    tree:add(lf.range_m, tvb(24, 8))
    tree:add(lf.delay_ns, tvb(32, 8))
    tree:add(lf.delay_ms, tvb(32, 8), tvb(32, 8):uint64():tonumber() / 1e6):set_generated()
    tree:add(lf.loss_probability, tvb(40, 8))
    local draw = tvb(48, 8):float()
    if draw ~= draw then
        tree:add(lf.no_draw, tvb(48, 8), true):set_generated()
    else
        tree:add(lf.loss_draw, tvb(48, 8))
    end
    local text = string.format("link %d %d>%d %s", tvb(8, 4):uint(), tvb(12, 4):uint(),
        tvb(16, 4):uint(), LINK_EVENTS[event] or "?")
    if event == 2 then text = text .. " (" .. (DROP_REASONS[reason] or "?") .. ")" end
    tree:append_text(": " .. text)
    local hlen = tvb(4, 2):uint()
    if hlen < LINK_HEADER_LEN or hlen > n then hlen = LINK_HEADER_LEN end
    if n > hlen then
        sgp.dissector(tvb(hlen):tvb(), pinfo, root)
    else
        tree:add_proto_expert_info(ef_link_empty)
        pinfo.cols.info = "SGP [empty packet]"
    end
    if event == 2 then
        pinfo.cols.info:prepend("[dropped: " .. (DROP_REASONS[reason] or "?") .. "] ")
    end
    return n
end

-- Registration
local bpv7 = Dissector.get("bpv7")
if bpv7 then payload_table:add(2, bpv7) end
payload_table:add(1, data_dissector)

local encaps = wtap_encaps or wtap
DissectorTable.get("wtap_encap"):add(encaps.USER0, netemulink)

local current_port = sgp.prefs.udp_port
DissectorTable.get("udp.port"):add(current_port, sgp)
function sgp.prefs_changed()
    if current_port ~= sgp.prefs.udp_port then
        DissectorTable.get("udp.port"):remove(current_port, sgp)
        current_port = sgp.prefs.udp_port
        DissectorTable.get("udp.port"):add(current_port, sgp)
    end
end
