import LetheCore
public import NIOCore

/// One Redis reply (RESP2): a simple string, an error, an integer, a bulk string, an array, or nil
/// (a nil bulk string or a nil array).
public enum RESPValue: Sendable, Hashable {
    case simple(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case array([RESPValue])
    case null

    /// A simple or bulk string as text.
    public var string: String? {
        switch self {
        case .simple(let s): return s
        case .bulk(let b): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }

    /// An integer reply.
    public var integer: Int64? { if case .integer(let i) = self { return i }; return nil }

    /// The items of an array reply.
    public var array: [RESPValue]? { if case .array(let a) = self { return a }; return nil }
}

/// RESP2 on bytes: commands encoded as arrays of bulk strings, replies parsed from a buffer that may
/// hold a partial reply (nil until the rest arrives).
public enum RESP {
    /// The largest bulk string accepted (Redis's own limit, `proto-max-bulk-len`).
    static let maxBulk = 512 << 20
    /// The largest array accepted, and the deepest nesting.
    static let maxArray = 1 << 28
    static let maxDepth = 32
    /// The longest header line (`$123\r\n`, `+OK\r\n`, an error text).
    static let maxLine = 64 << 10

    /// Appends one command (`SADD key member…`) to `buffer`.
    public static func encode(_ arguments: [String], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        buffer.writeString(String(arguments.count))
        buffer.writeStaticString("\r\n")
        for a in arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            buffer.writeString(String(a.utf8.count))
            buffer.writeStaticString("\r\n")
            buffer.writeString(a)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Parses one reply from the front of `buffer` and consumes it; nil (nothing consumed) when the
    /// buffer holds only part of one. Malformed input throws.
    public static func parse(_ buffer: inout ByteBuffer) throws -> RESPValue? {
        let parsed = try buffer.withUnsafeReadableBytes { p -> (RESPValue, Int)? in
            var i = 0
            guard let v = try value(p, &i, depth: 0) else { return nil }
            return (v, i)
        }
        guard let (v, n) = parsed else { return nil }
        buffer.moveReaderIndex(forwardBy: n)
        return v
    }

    private static func value(_ p: UnsafeRawBufferPointer, _ i: inout Int, depth: Int) throws -> RESPValue? {
        guard depth <= maxDepth else { throw bad("replies nested deeper than \(maxDepth)") }
        guard i < p.count else { return nil }
        let type = p[i]
        // The header line: from after the type byte to CR LF.
        var end = i + 1
        while end + 1 < p.count && !(p[end] == 13 && p[end + 1] == 10) {
            end += 1
            if end - i > maxLine { throw bad("a reply line longer than \(maxLine) bytes") }
        }
        guard end + 1 < p.count else {
            if p.count - i > maxLine { throw bad("a reply line longer than \(maxLine) bytes") }
            return nil
        }
        let line = UnsafeRawBufferPointer(rebasing: p[(i + 1)..<end])
        let next = end + 2
        switch type {
        case UInt8(ascii: "+"):
            i = next
            return .simple(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: "-"):
            i = next
            return .error(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: ":"):
            i = next
            return .integer(try integer(line))
        case UInt8(ascii: "$"):
            let n = try integer(line)
            if n == -1 { i = next; return .null }
            guard n >= 0, n <= maxBulk else { throw bad("a bulk string of length \(n)") }
            let count = Int(n)
            guard p.count >= next + count + 2 else { return nil }
            guard p[next + count] == 13, p[next + count + 1] == 10 else { throw bad("a bulk string not ended by CR LF") }
            i = next + count + 2
            return .bulk(Array(UnsafeRawBufferPointer(rebasing: p[next..<(next + count)])))
        case UInt8(ascii: "*"):
            let n = try integer(line)
            if n == -1 { i = next; return .null }
            guard n >= 0, n <= maxArray else { throw bad("an array of length \(n)") }
            var j = next
            var items: [RESPValue] = []
            items.reserveCapacity(Int(min(n, 1024)))
            for _ in 0..<n {
                guard let v = try value(p, &j, depth: depth + 1) else { return nil }
                items.append(v)
            }
            i = j
            return .array(items)
        default:
            throw bad("an unknown reply type byte 0x" + String(type, radix: 16))
        }
    }

    /// A decimal integer (optional minus sign), checked for overflow.
    private static func integer(_ line: UnsafeRawBufferPointer) throws -> Int64 {
        var negative = false
        var digits = line[...]
        if digits.first == UInt8(ascii: "-") {
            negative = true
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.count <= 19 else { throw bad("a malformed integer") }
        var v: Int64 = 0
        for c in digits {
            guard c >= 48, c <= 57 else { throw bad("a malformed integer") }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(c - 48))
            guard !o1, !o2 else { throw bad("an integer out of range") }
            v = s
        }
        return negative ? -v : v
    }

    private static func bad(_ what: String) -> LetheError {
        LetheError(.failure, "Redis protocol error: \(what)")
    }
}
