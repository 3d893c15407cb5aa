/// A small XML reader for the responses of S3-compatible servers: elements, text, the five
/// predefined entities and character references, comments, the XML declaration and CDATA.
/// No DTDs, no namespaces beyond ignoring prefixes and `xmlns` attributes, attributes ignored:
/// S3's responses need none of them. Built as a tree (responses are at most a few MB: a page of
/// 1,000 keys). Malformed input is an error naming the byte offset, never a crash.
public struct XMLElement: Sendable, Equatable {
    public var name: String
    public var text: String
    public var children: [XMLElement]

    /// The first child named `name`.
    public subscript(_ name: String) -> XMLElement? { children.first { $0.name == name } }
    /// Every child named `name`, in order.
    public func all(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }
    /// The text of the first child named `name`.
    public func text(_ name: String) -> String? { self[name]?.text }
}

public struct XMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public var description: String { "malformed XML at byte \(offset): \(message)" }
}

public enum XML {
    /// Deepest nesting accepted (S3 responses nest 3 or 4 deep).
    static let maxDepth = 64

    /// Parses a document; returns its root element.
    public static func parse(_ bytes: [UInt8]) throws(XMLError) -> XMLElement {
        var p = Parser(bytes: bytes)
        return try p.document()
    }

    struct Parser {
        let bytes: [UInt8]
        var pos = 0

        func fail(_ m: String) -> XMLError { XMLError(offset: pos, message: m) }

        mutating func document() throws(XMLError) -> XMLElement {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { pos = 3 }
            try misc()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "<") else { throw fail("no root element") }
            let root = try element(depth: 0)
            try misc()
            guard pos == bytes.count else { throw fail("content after the root element") }
            return root
        }

        /// Whitespace, comments and processing instructions between elements.
        mutating func misc() throws(XMLError) {
            while true {
                skipSpace()
                if starts("<?") {
                    try skip(past: Array("?>".utf8))
                } else if starts("<!--") {
                    try skip(past: Array("-->".utf8))
                } else if starts("<!DOCTYPE") {
                    throw fail("document type declarations are not accepted")
                } else {
                    return
                }
            }
        }

        mutating func skipSpace() {
            while pos < bytes.count, bytes[pos] == 0x20 || bytes[pos] == 0x09 || bytes[pos] == 0x0A || bytes[pos] == 0x0D { pos += 1 }
        }

        func starts(_ s: StaticString) -> Bool {
            let n = s.utf8CodeUnitCount
            guard pos + n <= bytes.count else { return false }
            return s.withUTF8Buffer { b in
                for i in 0..<n where bytes[pos + i] != b[i] { return false }
                return true
            }
        }

        mutating func skip(past end: [UInt8]) throws(XMLError) {
            var i = pos
            while i + end.count <= bytes.count {
                if bytes[i] == end[0] && Array(bytes[i..<(i + end.count)]) == end {
                    pos = i + end.count
                    return
                }
                i += 1
            }
            throw fail("unterminated construct")
        }

        /// A name, without its namespace prefix.
        mutating func name() throws(XMLError) -> String {
            let start = pos
            while pos < bytes.count {
                let c = bytes[pos]
                if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == UInt8(ascii: ">") || c == UInt8(ascii: "/")
                    || c == UInt8(ascii: "=")
                {
                    break
                }
                pos += 1
            }
            guard pos > start else { throw fail("expected a name") }
            var n = bytes[start..<pos]
            if let colon = n.lastIndex(of: UInt8(ascii: ":")) { n = n[(colon + 1)...] }
            return String(decoding: n, as: UTF8.self)
        }

        mutating func element(depth: Int) throws(XMLError) -> XMLElement {
            guard depth < XML.maxDepth else { throw fail("elements nested too deep") }
            pos += 1  // <
            let tag = try name()
            // Attributes: skipped, quoted values honoured.
            while true {
                skipSpace()
                guard pos < bytes.count else { throw fail("unterminated start tag <\(tag)>") }
                if bytes[pos] == UInt8(ascii: "/") {
                    guard pos + 1 < bytes.count, bytes[pos + 1] == UInt8(ascii: ">") else { throw fail("expected /> in <\(tag)>") }
                    pos += 2
                    return XMLElement(name: tag, text: "", children: [])
                }
                if bytes[pos] == UInt8(ascii: ">") {
                    pos += 1
                    break
                }
                _ = try name()
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "=") else { throw fail("attribute without a value in <\(tag)>") }
                pos += 1
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") || bytes[pos] == UInt8(ascii: "'") else {
                    throw fail("unquoted attribute value in <\(tag)>")
                }
                let q = bytes[pos]
                pos += 1
                while pos < bytes.count, bytes[pos] != q { pos += 1 }
                guard pos < bytes.count else { throw fail("unterminated attribute value in <\(tag)>") }
                pos += 1
            }
            var text: [UInt8] = []
            var children: [XMLElement] = []
            while true {
                guard pos < bytes.count else { throw fail("<\(tag)> is not closed") }
                let c = bytes[pos]
                if c == UInt8(ascii: "<") {
                    if starts("</") {
                        pos += 2
                        let end = try name()
                        skipSpace()
                        guard end == tag, pos < bytes.count, bytes[pos] == UInt8(ascii: ">") else {
                            throw fail("</\(end)> closes <\(tag)>")
                        }
                        pos += 1
                        return XMLElement(name: tag, text: String(decoding: text, as: UTF8.self), children: children)
                    } else if starts("<!--") {
                        try skip(past: Array("-->".utf8))
                    } else if starts("<![CDATA[") {
                        pos += 9
                        let start = pos
                        try skip(past: Array("]]>".utf8))
                        text += bytes[start..<(pos - 3)]
                    } else if starts("<?") {
                        try skip(past: Array("?>".utf8))
                    } else {
                        children.append(try element(depth: depth + 1))
                    }
                } else if c == UInt8(ascii: "&") {
                    text += try entity()
                } else {
                    text.append(c)
                    pos += 1
                }
            }
        }

        /// `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` `&#NN;` `&#xHH;` as UTF-8.
        mutating func entity() throws(XMLError) -> [UInt8] {
            let start = pos
            pos += 1
            while pos < bytes.count, bytes[pos] != UInt8(ascii: ";"), pos - start < 12 { pos += 1 }
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ";") else {
                pos = start
                throw fail("unterminated entity")
            }
            let body = String(decoding: bytes[(start + 1)..<pos], as: UTF8.self)
            pos += 1
            switch body {
            case "amp": return [UInt8(ascii: "&")]
            case "lt": return [UInt8(ascii: "<")]
            case "gt": return [UInt8(ascii: ">")]
            case "quot": return [UInt8(ascii: "\"")]
            case "apos": return [UInt8(ascii: "'")]
            default:
                var code: UInt32?
                if body.hasPrefix("#x") || body.hasPrefix("#X") {
                    code = UInt32(body.dropFirst(2), radix: 16)
                } else if body.hasPrefix("#") {
                    code = UInt32(body.dropFirst(), radix: 10)
                }
                guard let code, let scalar = Unicode.Scalar(code), code != 0 else {
                    pos = start
                    throw fail("unknown entity &\(body);")
                }
                return Array(String(Character(scalar)).utf8)
            }
        }
    }
}
