public import LetheCore
public import LetheStorage
import LetheFormats
public import Testing

/// What every `RecordFormat` must do, as checks run per format fixture (`FormatFixture.all`) over a
/// store the caller makes (memory; S3 later): `@Test(arguments: FormatFixture.all, RecordFormatContract.Check.allCases)`.
public enum RecordFormatContract {
    public enum Check: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case scanFindsEveryRecordsSubject
        case eraseDropsTheSubjectsRecordsAndKeepsTheOthersByteForByte
        case eraseIsIdempotent
        case eraseAbortsOnAFaultLeavingTheObjectUnchanged
        case eraseOfAChangedObjectIsAConflict
        case maskAndBlankKeepTheRecordsOrAreUnsupportedNamingTheFormat
        public var testDescription: String { rawValue }
    }

    public static let keyer = SubjectKeyer(hasher: SubjectHasher(secret: Array(repeating: 7, count: 32)))
    public static func key(_ subject: String) -> SubjectKey { keyer.key(Array(subject.utf8)) }

    /// Subjects `u-1` (three records), `u-2`, `u-3` (one each), interleaved.
    public static let records = [
        FixtureRecord("u-1", "first"), FixtureRecord("u-2", "second"), FixtureRecord("u-1", "third"),
        FixtureRecord("u-3", "fourth"), FixtureRecord("u-1", "fifth"),
    ]

    /// Runs `check` for `fixture` against the store `make` returns (empty, used by this check only).
    public static func run(
        _ check: Check, _ fixture: FormatFixture,
        _ make: () async throws -> any ObjectStore = { InMemoryObjectStore() }
    ) async throws {
        let store = FaultInjectingStore(base: try await make())
        let info = try await store.put(fixture.key, try await fixture.encode(records))
        switch check {
        case .scanFindsEveryRecordsSubject: try await scanFindsEveryRecordsSubject(fixture, store, info)
        case .eraseDropsTheSubjectsRecordsAndKeepsTheOthersByteForByte: try await eraseDrops(fixture, store, info)
        case .eraseIsIdempotent: try await eraseIsIdempotent(fixture, store, info)
        case .eraseAbortsOnAFaultLeavingTheObjectUnchanged: try await eraseAbortsOnAFault(fixture, store, info)
        case .eraseOfAChangedObjectIsAConflict: try await eraseOfAChangedObjectIsAConflict(fixture, store, info)
        case .maskAndBlankKeepTheRecordsOrAreUnsupportedNamingTheFormat: try await maskAndBlank(fixture, store, info)
        }
    }

    static func erase(_ f: FormatFixture, _ s: any ObjectStore, _ info: ObjectInfo, _ actions: EraseActions) async throws -> EraseOutcome {
        try await f.format.erase(info, in: s, options: f.options, keyer: keyer, actions: actions)
    }

    /// The object's bytes and version, and that nothing else is in the store.
    static func snapshot(_ s: any ObjectStore, _ key: String) async throws -> (bytes: [UInt8], version: String?, keys: [String]) {
        (try await s.read(key), try await s.head(key)?.version, try await s.listKeys(prefix: ""))
    }

    public static func scanFindsEveryRecordsSubject(_ f: FormatFixture, _ s: FaultInjectingStore, _ info: ObjectInfo) async throws {
        var rows: [(Int64, SubjectKey)] = []
        let summary = try await f.format.scan(info, in: s, options: f.options, keyer: keyer) { rows.append(($0, $1)) }
        #expect(summary.records == Int64(records.count))
        #expect(summary.recordsWithoutSubject == 0)
        #expect(rows.map(\.0) == Array(0..<Int64(records.count)))
        #expect(rows.map(\.1) == records.map { key($0.subject) })
    }

    public static func eraseDrops(_ f: FormatFixture, _ s: FaultInjectingStore, _ info: ObjectInfo) async throws {
        let before = try await f.decode(try await s.read(f.key))
        let out = try await erase(f, s, info, .drop([key("u-1"), key("nobody")]))
        #expect(out.dropped == [key("u-1"): 3])
        #expect(out.kept == 2 && out.transformed.isEmpty && !out.removed)
        let after = try await s.read(f.key)
        #expect(out.written?.version == (try await s.head(f.key))?.version)
        // The survivors are exactly the other records, in order, as they were stored.
        let dropped = Set(records.indices.filter { records[$0].subject == "u-1" })
        let header = before.count - records.count  // a CSV header line
        let expected = Array(before[..<header]) + before[header...].enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
        #expect(try await f.decode(after) == expected)
        #expect(try await f.decode(after).allSatisfy { !$0.contains("u-1") })
        if f.key.hasSuffix(".gz") { #expect(after.starts(with: [0x1F, 0x8B])) }  // same compression
        #expect(try await s.listKeys(prefix: "") == [f.key])
    }

    public static func eraseIsIdempotent(_ f: FormatFixture, _ s: FaultInjectingStore, _ info: ObjectInfo) async throws {
        _ = try await erase(f, s, info, .drop([key("u-2")]))
        let first = try await snapshot(s, f.key)
        let commits = s.commits
        let again = try await erase(f, s, try await s.head(f.key)!, .drop([key("u-2")]))
        #expect(again.dropped.isEmpty && again.written == nil && again.kept == Int64(records.count - 1))
        #expect(s.commits == commits)  // nothing written
        #expect(try await snapshot(s, f.key) == first)
        // Nobody's records: nothing written either.
        let none = try await erase(f, s, try await s.head(f.key)!, .drop([key("nobody")]))
        #expect(none.written == nil && s.commits == commits)
    }

    /// A failing write (the first, or the Nth), a failing commit or a torn write: the erase throws and
    /// the object is as it was, nothing left beside it; without the fault the erase then succeeds.
    public static func eraseAbortsOnAFault(_ f: FormatFixture, _ s: FaultInjectingStore, _ info: ObjectInfo) async throws {
        var info = info
        var before = try await snapshot(s, f.key)
        let faults: [(String, (FaultInjectingStore) -> Void)] = [
            ("first write", { $0.failWrite(at: 1) }), ("second write", { $0.failWrite(at: 2) }),
            ("commit", { $0.failCommit(at: 1) }), ("torn write", { $0.tearWrites(afterBytes: 5) }),
        ]
        for (name, inject) in faults {
            s.clearFaults()
            inject(s)
            let code = await ObjectStoreContract.errorCode { _ = try await erase(f, s, info, .drop([key("u-1")])) }
            s.clearFaults()
            // A format that writes in one piece never reaches a second write: the erase succeeded, the case is void.
            if code == nil, name == "second write" {
                info = try await s.put(f.key, before.bytes)
                before = try await snapshot(s, f.key)
                continue
            }
            #expect(code == .io, "\(name): \(String(describing: code))")
            let now = try await snapshot(s, f.key)
            #expect(now.bytes == before.bytes && now.version == before.version && now.keys == before.keys, "\(name)")
        }
        let out = try await erase(f, s, info, .drop([key("u-1")]))
        #expect(out.dropped == [key("u-1"): 3])
    }

    public static func eraseOfAChangedObjectIsAConflict(_ f: FormatFixture, _ s: FaultInjectingStore, _ info: ObjectInfo) async throws {
        // Another writer replaces the object after it was listed: the erase must not overwrite it.
        let other = try await f.encode([FixtureRecord("u-1", "newer"), FixtureRecord("u-4", "other")])
        try await s.put(f.key, other)
        let now = try await snapshot(s, f.key)
        let code = await ObjectStoreContract.errorCode { _ = try await erase(f, s, info, .drop([key("u-1")])) }
        #expect(code == .conflict, "\(String(describing: code))")
        #expect(try await snapshot(s, f.key) == now)
    }

    /// JSON Lines and CSV keep the subject's records, changed, so that the subject's key no longer
    /// matches; Parquet refuses a null in a required column (the fixture's), naming the column, and
    /// leaves the object as it was.
    public static func maskAndBlank(_ f: FormatFixture, _ s: FaultInjectingStore, _ info: ObjectInfo) async throws {
        // The Parquet fixture's columns are required: a null there is refused, naming the column.
        let masks = f.format.name == "jsonl" || f.format.name == "csv"
        for action in [RecordAction.transform([FieldPath("user_id"): .null, FieldPath("note"): .redact]), .blankRecord] {
            let before = try await snapshot(s, f.key)
            let current = try #require(try await s.head(f.key))
            do {
                let out = try await erase(f, s, current, EraseActions(bySubject: [key("u-1"): action, key("u-2"): .drop]))
                #expect(masks, "\(action.name) was accepted by \(f.format.name)")
                #expect(out.transformed[key("u-1")] == 3 && out.dropped[key("u-2")] == 1 && out.kept == 4 && !out.exact)
                var rows: [(Int64, SubjectKey)] = []
                let after = try #require(try await s.head(f.key))
                let summary = try await f.format.scan(after, in: s, options: f.options, keyer: keyer) { rows.append(($0, $1)) }
                #expect(summary.records == 4 && summary.recordsWithoutSubject == 3)
                #expect(rows.map(\.1) == [key("u-3")])
                // Idempotent: the subject's key matches nothing any more.
                let again = try await erase(f, s, after, EraseActions(bySubject: [key("u-1"): action]))
                #expect(again.written == nil && again.transformed.isEmpty)
                try await s.put(f.key, try await f.encode(records))
            } catch let e as LetheError {
                #expect(!masks, "\(e)")
                // (Parquet applies one action per erase: a drop and a mask together are refused too.)
                #expect(
                    e.code == .unsupported
                        && (e.description.contains("`user_id`") && e.description.contains("required") || e.description.contains("parquet format applies one")),
                    "\(e)")
                #expect(try await snapshot(s, f.key) == before)
            }
        }
        _ = info
    }
}
