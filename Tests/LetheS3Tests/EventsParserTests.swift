import Foundation
import LetheCore
import Testing
@testable import LetheS3

/// S3 event notification documents, written from the structure AWS documents ("Event message
/// structure", Amazon S3 User Guide): records, url-encoded keys, sequencers, the test event, and
/// the SNS envelope of a queue subscribed to a topic.
@Suite struct EventsParserTests {
    static func record(_ name: String, key: String, sequencer: String? = "0055AED6DCD90281E5", version: String? = nil) -> String {
        """
        {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-west-2","eventTime":"2026-11-30T19:00:00.000Z",
         "eventName":"\(name)","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},
         "requestParameters":{"sourceIPAddress":"192.0.2.1"},
         "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
         "s3":{"s3SchemaVersion":"1.0","configurationId":"lake-events",
               "bucket":{"name":"lake","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::lake"},
               "object":{"key":"\(key)","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e"\(version.map { ",\"versionId\":\"\($0)\"" } ?? "")\(sequencer.map { ",\"sequencer\":\"\($0)\"" } ?? "")}}}
        """
    }

    static func document(_ records: String...) -> [UInt8] { Array(#"{"Records":[\#(records.joined(separator: ","))]}"#.utf8) }

    @Test func recordsWithEncodedKeysAndKinds() throws {
        let m = try S3EventMessage.parse(
            Self.document(
                Self.record("ObjectCreated:Put", key: "prod/raw/events/day%3D2026-11-30/part+1+%C3%A9.jsonl"),
                Self.record("ObjectRemoved:DeleteMarkerCreated", key: "prod/raw/a%2Bb.jsonl", version: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"),
                Self.record("ObjectCreated:CompleteMultipartUpload", key: "prod/silver/t/_delta_log/00000000000000000007.json", sequencer: nil),
                Self.record("ObjectTagging:Put", key: "prod/raw/x.jsonl"),
                Self.record("LifecycleExpiration:Delete", key: "prod/raw/old.jsonl")))
        guard case .events(let e) = m else { Issue.record("not events: \(m)"); return }
        #expect(
            e.map(\.key) == [
                "prod/raw/events/day=2026-11-30/part 1 é.jsonl", "prod/raw/a+b.jsonl", "prod/silver/t/_delta_log/00000000000000000007.json",
                "prod/raw/x.jsonl", "prod/raw/old.jsonl",
            ])
        #expect(e.map(\.kind) == [.created, .removed, .created, .other, .removed])
        #expect(e[0].bucket == "lake" && e[0].size == 1024 && e[0].sequencer == "0055AED6DCD90281E5" && e[0].eTag == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(e[1].versionID == "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
        #expect(e[2].sequencer == nil)
    }

    @Test func testEventSNSEnvelopeAndUnrelatedDocuments() throws {
        let test =
            #"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-30T19:00:00.000Z","Bucket":"lake","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#
        #expect(try S3EventMessage.parse(Array(test.utf8)) == .test(bucket: "lake"))
        // SNS → SQS without raw message delivery: the S3 document is the envelope's `Message` string.
        let inner = String(decoding: Self.document(Self.record("ObjectCreated:Copy", key: "k%20x")), as: UTF8.self)
        var quoted = ""
        JSONValue.quote(inner, into: &quoted)
        let envelope =
            #"{"Type":"Notification","MessageId":"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324","TopicArn":"arn:aws:sns:us-west-2:123456789012:lake","Subject":"Amazon S3 Notification","Message":\#(quoted),"Timestamp":"2026-11-30T19:00:00.000Z"}"#
        guard case .events(let e) = try S3EventMessage.parse(Array(envelope.utf8)) else { Issue.record("no events"); return }
        #expect(e.map(\.key) == ["k x"] && e[0].kind == .created)
        guard case .unrelated = try S3EventMessage.parse(Array(#"{"hello":1}"#.utf8)) else { Issue.record("not unrelated"); return }
    }

    @Test(arguments: [
        "not json", #"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#,
        #"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"bad%zz"}}}]}"#,
        #"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%C3"}}}]}"#,
        #"{"Records":[{"eventSource":"aws:sqs","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#,
        #"{"Records":"x"}"#,
    ])
    func poisonDocumentsAreBadInput(_ body: String) throws {
        let e = #expect(throws: LetheError.self) { try S3EventMessage.parse(Array(body.utf8)) }
        #expect(e?.code == .badInput)
        #expect(e?.description.contains("events queue") == true)
    }

    @Test func sequencersCompareAsNumbersAndCoalesceKeepsTheLatest() {
        #expect(S3ObjectEvent.precedes("0055AED6DCD90281E5", "0055AED6DCD90281E6"))
        #expect(S3ObjectEvent.precedes("FF", "0100"))  // shorter, left-padded with zeros
        #expect(!S3ObjectEvent.precedes("0100", "FF"))
        #expect(!S3ObjectEvent.precedes("00AB", "ab"))
        func ev(_ key: String, _ kind: S3ObjectEvent.Kind, _ seq: String?) -> S3ObjectEvent {
            S3ObjectEvent(kind: kind, name: kind == .created ? "ObjectCreated:Put" : "ObjectRemoved:Delete", bucket: "lake", key: key, sequencer: seq)
        }
        // Out of order: the removal (later sequencer) wins over the put received after it.
        let c = S3ObjectEvent.coalesce([
            ev("a", .removed, "0200"), ev("b", .created, "01"), ev("a", .created, "01FF"), ev("a", .removed, "0200"), ev("b", .removed, "02"),
            ev("c", .created, nil), ev("c", .removed, nil),
        ])
        #expect(c.map(\.key) == ["a", "b", "c"])
        #expect(c.map(\.kind) == [.removed, .removed, .removed])
    }

    @Test func queueHostsNameTheirRegion() {
        #expect(SQSClient.region(ofHost: "sqs.eu-west-1.amazonaws.com") == "eu-west-1")
        #expect(SQSClient.region(ofHost: "us-east-2.queue.amazonaws.com") == "us-east-2")
        #expect(SQSClient.region(ofHost: "127.0.0.1") == nil)
        #expect(throws: LetheError.self) {
            try SQSClient(queueURL: "sqs://nope", credentials: AWSCredentials(accessKeyID: "a", secretAccessKey: "b"), region: "us-east-1")
        }
    }
}

/// `s3: {events_queue}` and `watch: {rescan}` in `lethe.yaml`.
@Suite struct EventsConfigTests {
    static func parse(_ top: String, lake: String = "s3://lake/prod") throws -> LakeConfig {
        try LakeConfig.parse(
            """
            lake: \(lake)
            state: ./state
            \(top)
            datasets:
              - {name: e, path: raw, format: jsonl, subject: id}
            """, file: "lethe.yaml", baseDir: "/tmp")
    }

    @Test func eventsQueueAndRescan() throws {
        let c = try Self.parse(
            """
            s3: {endpoint: "http://127.0.0.1:9000", events_queue: "https://sqs.eu-west-1.amazonaws.com/123456789012/lake-events"}
            watch: {rescan: 2m}
            """)
        #expect(c.eventsQueue == "https://sqs.eu-west-1.amazonaws.com/123456789012/lake-events")
        #expect(c.watchRescan == 120)
        let d = try Self.parse("s3: {region: us-east-1}")
        #expect(d.eventsQueue == nil && d.watchRescan == 600)
        #expect(try Self.parse("watch: {rescan: 90}").watchRescan == 90)
        #expect(try Self.parse("watch: {rescan: 1.5h}").watchRescan == 5400)
    }

    @Test(arguments: [
        ("s3: {events_queue: lake-events}", "events_queue", "lethe.yaml:3"),
        ("watch: {rescan: soon}", "watch.rescan", "lethe.yaml:3"),
        ("watch: {rescan: 0}", "watch.rescan", "lethe.yaml:3"),
        ("watch: {every: 10m}", "unknown key `every` in `watch`", "lethe.yaml:3"),
        ("watch: 10m", "`watch` must be a mapping", "lethe.yaml:3"),
        ("s3: {events_queu: x}", "unknown key `events_queu`", "lethe.yaml:3"),
    ])
    func badKeysAreBadInputNamingTheLine(_ yaml: String, _ says: String, _ at: String) throws {
        let e = #expect(throws: LetheError.self) { try Self.parse(yaml) }
        #expect(e?.code == .badInput)
        #expect(e?.description.contains(says) == true, "\(e.map { "\($0)" } ?? "")")
        #expect(e?.location == at)
    }

    @Test func eventsQueueNeedsAnS3Lake() throws {
        let e = #expect(throws: LetheError.self) {
            try Self.parse("s3: {events_queue: \"https://sqs.us-east-1.amazonaws.com/1/q\"}", lake: "./lake")
        }
        #expect(e?.description.contains("needs an S3 lake") == true)
    }
}
