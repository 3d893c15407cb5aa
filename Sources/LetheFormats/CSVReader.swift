#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import LetheCore

/// One field of a CSV record: `start..<end` is its text (between the quotes when
/// quoted; doubled quotes still doubled when `doubled`).
struct CSVField {
    var start: Int
    var end: Int
    var quoted: Bool
    var doubled: Bool
}

/// One record handed out by `CSVReader`.
struct CSVRecord {
    /// The buffer the record lies in.
    var buffer: UnsafeRawBufferPointer
    /// The record's bytes in `buffer`, including its line ending.
    var start: Int
    var end: Int
    /// The physical line where it begins (1-based).
    var line: Int64
    /// False for an empty line (not a record).
    var isBlank: Bool
    var raw: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[start..<end]) }
}

/// Splits chunks of RFC 4180 CSV into records (quoted fields may hold delimiters,
/// doubled quotes and line breaks; records end in LF or CRLF; the last may lack one).
/// Records are parsed in place; only records that straddle chunks are copied.
struct CSVReader {
    let objectKey: String
    let delimiter: UInt8
    let maxRecordLength: Int
    /// The fields of the record last handed out (reused).
    private(set) var fields: [CSVField] = []
    private var carry: [UInt8] = []
    private var line: Int64 = 1
    private var atObjectStart = true

    init(objectKey: String, delimiter: UInt8, maxRecordLength: Int) {
        self.objectKey = objectKey
        self.delimiter = delimiter
        self.maxRecordLength = maxRecordLength
        fields.reserveCapacity(64)
    }

    private enum Step {
        case record(end: Int, newlines: Int64, blank: Bool)
        case needMore
    }

    mutating func feed(_ chunk: [UInt8], _ body: (CSVRecord, [CSVField]) throws -> Void) throws {
        try chunk.withUnsafeBytes { buf in
            guard let base = buf.baseAddress else { return }
            let n = buf.count
            var pos = 0
            // Finish a record begun in an earlier chunk, one line at a time.
            while !carry.isEmpty && pos < n {
                let end = memchr(base + pos, 0x0A, n - pos).map { UnsafeRawPointer($0) - base + 1 } ?? n
                try appendCarry(UnsafeRawBufferPointer(start: base + pos, count: end - pos))
                pos = end
                try drainCarry(eof: false, body)
            }
            while pos < n {
                switch try step(buf, pos, eof: false) {
                case .needMore:
                    try appendCarry(UnsafeRawBufferPointer(rebasing: buf[pos..<n]))
                    return
                case let .record(end, newlines, blank):
                    try emit(buf, pos, end, newlines, blank, body)
                    pos = end
                }
            }
        }
    }

    mutating func finish(_ body: (CSVRecord, [CSVField]) throws -> Void) throws {
        try drainCarry(eof: true, body)
    }

    private mutating func drainCarry(eof: Bool, _ body: (CSVRecord, [CSVField]) throws -> Void) throws {
        guard !carry.isEmpty else { return }
        let taken = carry
        var off = 0
        try taken.withUnsafeBytes { buf in
            while off < buf.count {
                switch try step(buf, off, eof: eof) {
                case .needMore:
                    return
                case let .record(end, newlines, blank):
                    try emit(buf, off, end, newlines, blank, body)
                    off = end
                }
            }
        }
        if off == carry.count {
            carry.removeAll(keepingCapacity: true)
        } else if off > 0 {
            carry.removeFirst(off)
        }
    }

    private mutating func emit(
        _ buf: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ newlines: Int64, _ blank: Bool,
        _ body: (CSVRecord, [CSVField]) throws -> Void
    ) throws {
        let rec = CSVRecord(buffer: buf, start: start, end: end, line: line, isBlank: blank)
        line += newlines
        atObjectStart = false
        try body(rec, fields)
    }

    private mutating func appendCarry(_ bytes: UnsafeRawBufferPointer) throws {
        if carry.count + bytes.count > maxRecordLength {
            throw LetheError(.corrupt, "record is longer than \(maxRecordLength) bytes (an unclosed quote?)", at: "\(objectKey):line \(line)")
        }
        carry.append(contentsOf: bytes)
    }

    /// Parses the record starting at `start`.
    private mutating func step(_ buf: UnsafeRawBufferPointer, _ start: Int, eof: Bool) throws -> Step {
        let p = buf.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let n = buf.count
        let lf: UInt8 = 0x0A, cr: UInt8 = 0x0D, quote: UInt8 = 0x22
        let delim = delimiter
        var i = start
        // A UTF-8 byte order mark before the header is not part of the first column's name.
        if atObjectStart && start == 0 {
            if n - i < 3 && !eof && (n - i == 0 || p[i] == 0xEF) { return .needMore }
            if n - i >= 3 && p[i] == 0xEF && p[i + 1] == 0xBB && p[i + 2] == 0xBF { i += 3 }
        }
        // Blank lines are not records.
        if i < n && p[i] == lf { return .record(end: i + 1, newlines: 1, blank: true) }
        if i < n && p[i] == cr {
            if i + 1 < n && p[i + 1] == lf { return .record(end: i + 2, newlines: 1, blank: true) }
            if i + 1 == n && !eof { return .needMore }
        }
        fields.removeAll(keepingCapacity: true)
        var newlines: Int64 = 0
        while true {
            let fs = i
            if i < n && p[i] == quote {
                i += 1
                var doubled = false
                while true {
                    guard let q = memchr(p + i, Int32(quote), n - i) else {
                        if eof {
                            throw LetheError(.corrupt, "unclosed quote in the record that begins here", at: "\(objectKey):line \(line)")
                        }
                        return .needMore
                    }
                    let qi = UnsafePointer<UInt8>(q.assumingMemoryBound(to: UInt8.self)) - p
                    var k = i
                    while k < qi {
                        if p[k] == lf { newlines += 1 }
                        k += 1
                    }
                    i = qi + 1
                    if i < n && p[i] == quote {
                        doubled = true
                        i += 1
                        continue
                    }
                    if i == n && !eof { return .needMore }
                    break
                }
                fields.append(CSVField(start: fs + 1, end: i - 1, quoted: true, doubled: doubled))
            } else {
                while i < n {
                    let c = p[i]
                    if c == delim || c == lf { break }
                    if c == cr {
                        if i + 1 < n {
                            if p[i + 1] == lf { break }
                        } else if !eof {
                            return .needMore
                        } else {
                            break
                        }
                    }
                    i += 1
                }
                fields.append(CSVField(start: fs, end: i, quoted: false, doubled: false))
            }
            if i == n {
                if !eof { return .needMore }
                return .record(end: n, newlines: newlines, blank: false)
            }
            let c = p[i]
            if c == delim {
                i += 1
                continue
            }
            if c == lf { return .record(end: i + 1, newlines: newlines + 1, blank: false) }
            if c == cr {
                if i + 1 < n && p[i + 1] == lf { return .record(end: i + 2, newlines: newlines + 1, blank: false) }
                if i + 1 == n {
                    if !eof { return .needMore }
                    return .record(end: n, newlines: newlines, blank: false)
                }
            }
            throw LetheError(
                .corrupt, "unexpected character after the closing quote of field \(fields.count)",
                at: "\(objectKey):line \(line + newlines)")
        }
    }
}

extension CSVField {
    /// Calls `body` with the field's unquoted text.
    func withText<R>(in buf: UnsafeRawBufferPointer, scratch: inout [UInt8], _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let text = UnsafeRawBufferPointer(rebasing: buf[start..<end])
        if !doubled { return try body(text) }
        scratch.removeAll(keepingCapacity: true)
        var i = 0
        while i < text.count {
            let c = text[i]
            scratch.append(c)
            i += (c == 0x22) ? 2 : 1
        }
        return try scratch.withUnsafeBytes { try body($0) }
    }
}
