import LetheNotify
import NIOCore
import Testing

/// RESP2 on bytes: every reply type, partial input, malformed input.
@Suite struct RESPTests {
    static let replies: [(String, RESPValue)] = [
        ("+OK\r\n", .simple("OK")),
        ("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", .error("WRONGTYPE Operation against a key holding the wrong kind of value")),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(Int64.max)),
        ("$5\r\nhello\r\n", .bulk(Array("hello".utf8))),
        ("$0\r\n\r\n", .bulk([])),
        ("$4\r\na\r\nb\r\n", .bulk(Array("a\r\nb".utf8))),  // binary-safe: CR LF inside a bulk string
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("*0\r\n", .array([])),
        ("*3\r\n:1\r\n$3\r\nfoo\r\n*2\r\n+a\r\n$-1\r\n", .array([.integer(1), .bulk(Array("foo".utf8)), .array([.simple("a"), .null])])),
    ]

    @Test("each reply type parses and is consumed whole", arguments: 0..<replies.count)
    func parses(_ i: Int) throws {
        let (text, value) = Self.replies[i]
        var b = ByteBuffer(string: text + "+next\r\n")
        #expect(try RESP.parse(&b) == value)
        #expect(try RESP.parse(&b) == .simple("next"))
        #expect(b.readableBytes == 0)
    }

    @Test("every proper prefix of a reply is incomplete (nil) and consumes nothing", arguments: 0..<replies.count)
    func partial(_ i: Int) throws {
        let bytes = Array(Self.replies[i].0.utf8)
        for n in 0..<bytes.count {
            var b = ByteBuffer(bytes: bytes[0..<n])
            #expect(try RESP.parse(&b) == nil, "prefix of \(n) bytes")
            #expect(b.readableBytes == n)
        }
    }

    @Test(
        "malformed replies throw instead of hanging or crashing",
        arguments: ["!x\r\n", ":12a\r\n", ":\r\n", ":99999999999999999999\r\n", "$-2\r\n", "$3\r\nabcd\r\n", "*-5\r\n", "$x\r\n"])
    func malformed(_ text: String) {
        var b = ByteBuffer(string: text)
        #expect(throws: (any Error).self) { try RESP.parse(&b) }
    }

    @Test("commands are arrays of bulk strings (lengths in bytes, not characters)")
    func encodes() {
        var b = ByteBuffer()
        RESP.encode(["SADD", "k", "é"], into: &b)
        #expect(String(buffer: b) == "*3\r\n$4\r\nSADD\r\n$1\r\nk\r\n$2\r\né\r\n")
    }

    @Test("nesting deeper than 32 is refused")
    func deep() {
        var b = ByteBuffer(string: String(repeating: "*1\r\n", count: 40) + ":1\r\n")
        #expect(throws: (any Error).self) { try RESP.parse(&b) }
    }
}
