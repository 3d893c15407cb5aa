import Foundation
import LetheStorage
import LetheTestSupport
import Testing
@testable import LetheS3

@Suite struct XMLTests {
    @Test func elementsTextEntitiesAndCDATA() throws {
        let doc = Array(
            """
            \u{FEFF}<?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment -->
            <s3:Root xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/" a='1'>
              <Key>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#233;&#x1F600;</Key>
              <Empty/><Empty></Empty>
              <Data><![CDATA[<raw & text>]]></Data>
            </s3:Root>
            """.utf8)
        let root = try XML.parse(doc)
        #expect(root.name == "Root")
        #expect(root.text("Key") == "a & b <c> \"d\" 'e' é\u{1F600}")
        #expect(root.all("Empty").count == 2)
        #expect(root.text("Data") == "<raw & text>")
    }

    @Test func malformedDocumentsAreErrorsWithAnOffset() {
        for bad in [
            "", "<a>", "<a></b>", "<a>&bogus;</a>", "<a>&#0;</a>", "<a x=1></a>", "<a></a><b/>", "<!DOCTYPE a><a/>", "<a>&amp</a>",
            "<a><![CDATA[x</a>", "text", "<a b></a>",
        ] {
            #expect(throws: XMLError.self, "\(bad)") { try XML.parse(Array(bad.utf8)) }
        }
        let deep = String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100)
        #expect(throws: XMLError.self) { try XML.parse(Array(deep.utf8)) }
    }

    @Test func randomBytesNeverCrash() {
        var g = SeededGenerator(seed: 42)
        let alphabet = Array("<>/&;#x!-[]CDATA?= \"'abc\n".utf8)
        for _ in 0..<5_000 {
            let n = g.next(60)
            let bytes = (0..<n).map { _ in alphabet[g.next(alphabet.count)] }
            _ = try? XML.parse([UInt8(ascii: "<"), UInt8(ascii: "r"), UInt8(ascii: ">")] + bytes + Array("</r>".utf8))
            _ = try? XML.parse(bytes)
        }
    }

    @Test func timestampsAndPercentDecoding() throws {
        #expect(S3Text.nanos("1970-01-01T00:00:00Z") == 0)
        #expect(S3Text.nanos("2009-10-12T17:50:30.000Z") == 1_255_369_830_000_000_000)
        #expect(S3Text.nanos("2000-02-29T12:34:56.123456789Z") == 951_827_696_123_456_789)
        #expect(S3Text.nanos("2000-02-29T12:34:56.5Z") == 951_827_696_500_000_000)
        #expect(S3Text.nanos("2009-13-12T17:50:30Z") == nil)
        #expect(S3Text.nanos("garbage") == nil)
        #expect(try S3Text.urlDecoded("a%20b+c%2Bd%C3%A9") == "a b c+dé")
        #expect(throws: XMLError.self) { try S3Text.urlDecoded("bad%2") }
        #expect(throws: XMLError.self) { try S3Text.urlDecoded("%FF%FE") }
        #expect(S3Text.unquoted("\"abc\"") == "abc")
    }

    /// Responses of moto's S3 server (scripts/s3_xml_samples.py): keys with spaces, `+`, `%`, `&`,
    /// `<`, accents and emoji, two list pages, versions with a delete marker, an error, DeleteObjects.
    @Test func motoResponses() throws {
        let out = try Peers.python([Peers.script("s3_xml_samples.py")], what: "s3_xml_samples.py")
        let line = try #require(out.split(separator: "\n").last)
        let d = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        func body(_ k: String) throws -> XMLElement {
            let r = try #require(d[k] as? [String: Any])
            return try XML.parse(Array((r["body"] as! String).utf8))
        }
        let keys = try #require(d["keys"] as? [String])
        let p1 = try S3ListPage(try body("list1"))
        let p2 = try S3ListPage(try body("list2"))
        #expect(p1.truncated && p1.continuationToken != nil)
        #expect(!p2.truncated)
        #expect((p1.objects + p2.objects).map(\.key) == keys)
        #expect(p1.objects.allSatisfy { $0.etag.count == 32 && $0.modifiedNanos > 1_700_000_000_000_000_000 && $0.size > 0 })
        let v = try S3VersionsPage(try body("versions"))
        #expect(v.versions.filter { $0.key == "a b/c+d.json" }.count == 2)
        #expect(v.versions.filter { $0.key == "a b/c+d.json" && $0.isLatest }.count == 1)
        #expect(v.versions.contains { $0.key == "per%cent" && $0.isDeleteMarker })
        let e = try #require(S3ErrorDocument(try body("missing")))
        #expect(e.code == "NoSuchKey" && e.key == "no/such/key")
        let del = try S3DeleteResult(try body("delete"))
        #expect(del.deleted.map(\.key) == ["tilde~x", "plus+plus"] && del.errors.isEmpty)
    }
}
