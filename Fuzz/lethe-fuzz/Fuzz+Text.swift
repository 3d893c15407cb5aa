// Targets for the text formats: the JSON field scanner, JSON Lines and CSV objects
// (line splitter, CSV reader, scan and erase), and gzip framing.

@testable import LetheCore
@testable import LetheFormats
import LetheStorage

/// JSONFieldScanner on one document, with several paths at once (plain, nested, escaped
/// key, deep) and with `stopWhenFound`; canonical values of every scalar match.
enum FuzzJSON {
    static let paths = [FieldPath("user.id"), FieldPath("id"), FieldPath("a.b.c"), FieldPath("user_id")]
    nonisolated(unsafe) static let scanner = JSONFieldScanner(paths: paths)
    nonisolated(unsafe) static let single = JSONFieldScanner(paths: [FieldPath("user.id")])

    static func run(_ data: UnsafeRawBufferPointer) {
        var full: [JSONFieldScanner.Match]?
        do {
            try scanner.scan(data)
            full = (0..<paths.count).map { scanner.match($0) }
            for k in 0..<paths.count {
                let m = scanner.match(k)
                guard m.kind != .absent else { continue }
                guard m.start >= 0, m.start <= m.end, m.end <= data.count else {
                    Fuzz.fail("match \(k) at \(m.start)..<\(m.end) outside a \(data.count)-byte document")
                }
                if m.kind.isScalarValue {
                    guard scanner.canonicalValue(k, in: data) != nil else { Fuzz.fail("no canonical value for a scalar match") }
                }
            }
        } catch {
            guard error.offset >= 0, error.offset <= data.count else {
                Fuzz.fail("error offset \(error.offset) outside a \(data.count)-byte document")
            }
        }
        // A scan that stops early agrees with the full scan on what it found.
        do {
            try single.scan(data, stopWhenFound: true)
            let m = single.match(0)
            if let full, m.kind != .absent, m != full[0] {
                Fuzz.fail("stopWhenFound found \(m), the full scan \(full[0])")
            }
        } catch {}
    }
}

/// Shared driver of the object formats: scan the object with large and tiny chunks (the
/// results must agree), erase every other subject found, and scan the result: it must
/// hold exactly the kept records, in order, and none of the dropped subjects.
enum ObjectFormatDriver {
    static let keyer = SubjectKeyer(hasher: SubjectHasher(secret: Array("lethe-fuzz-secret-0123456789abcdef".utf8)))

    struct Scan: Equatable {
        var rows: [Int64] = []
        var keys: [SubjectKey] = []
        var summary = ScanSummary()
    }

    static func scan(_ format: any RecordFormat, _ key: String, _ store: InMemoryObjectStore, _ options: FormatOptions) async -> Scan? {
        guard let info = try? await store.head(key) else { Fuzz.fail("object \(key) vanished") }
        var s = Scan()
        do {
            s.summary = try await format.scan(info, in: store, options: options, keyer: keyer) { row, k in
                s.rows.append(row)
                s.keys.append(k)
            }
        } catch {
            return nil
        }
        s.summary.bytes = 0
        return s
    }

    static func run(_ data: UnsafeRawBufferPointer, key: String, whole: any RecordFormat, tiny: any RecordFormat, options: FormatOptions) {
        let bytes = [UInt8](data)
        Fuzz.blocking {
            let store = InMemoryObjectStore()
            store.set(key, bytes)
            let a = await scan(whole, key, store, options)
            let b = await scan(tiny, key, store, options)
            guard a == b else { Fuzz.fail("scan with 1 MiB chunks \(String(describing: a)) != with tiny chunks \(String(describing: b))") }
            guard let a else { return }
            var seen: [SubjectKey] = []
            for k in a.keys where !seen.contains(k) { seen.append(k) }
            let drop = Set(seen.enumerated().filter { $0.offset % 2 == 0 }.map(\.element))
            guard let info = try? await store.head(key) else { Fuzz.fail("object vanished") }
            let outcome: EraseOutcome
            do {
                outcome = try await tiny.erase(info, in: store, options: options, keyer: keyer, drop: drop)
            } catch {
                Fuzz.fail("erase failed on an object the scan read: \(error)")
            }
            let expectKeys = a.keys.filter { !drop.contains($0) }
            let droppedCount = Int64(a.keys.count - expectKeys.count)
            guard outcome.droppedTotal == droppedCount else { Fuzz.fail("erase dropped \(outcome.droppedTotal), expected \(droppedCount)") }
            guard outcome.kept == a.summary.records - droppedCount else { Fuzz.fail("erase kept \(outcome.kept) of \(a.summary.records) - \(droppedCount)") }
            if droppedCount == 0 {
                guard outcome.written == nil, !outcome.removed, (try? await store.read(key, range: nil)) == bytes else {
                    Fuzz.fail("an erase that dropped nothing changed the object")
                }
                return
            }
            if outcome.removed { return }
            guard let after = await scan(whole, key, store, options) else { Fuzz.fail("the erased object does not scan") }
            guard after.keys == expectKeys else { Fuzz.fail("after erase: keys \(after.keys.count), expected \(expectKeys.count) in order") }
            guard after.summary.records == outcome.kept else { Fuzz.fail("after erase: \(after.summary.records) records, kept \(outcome.kept)") }
            guard after.summary.recordsWithoutSubject == a.summary.recordsWithoutSubject else {
                Fuzz.fail("after erase: \(after.summary.recordsWithoutSubject) records without subject, before \(a.summary.recordsWithoutSubject)")
            }
        }
    }
}

/// A JSON Lines object (gzip when the input starts with the gzip magic): LineSplitter,
/// JSONFieldScanner, gzip source and sink, scan and erase.
enum FuzzJSONLines {
    static let options = FormatOptions(subject: SubjectSpec("user.id"))
    static let whole = JSONLinesFormat()
    static let tiny = JSONLinesFormat(chunkSize: 7, maxLineLength: 1 << 16)
    static let wholeSmallLines = JSONLinesFormat(chunkSize: 1 << 20, maxLineLength: 1 << 16)

    static func run(_ data: UnsafeRawBufferPointer) {
        let gz = data.count >= 2 && data[0] == 0x1F && data[1] == 0x8B
        ObjectFormatDriver.run(data, key: gz ? "t/a.jsonl.gz" : "t/a.jsonl", whole: wholeSmallLines, tiny: tiny, options: options)
    }
}

/// A CSV object with the subject in column `id` (composite `id`+`t` when the input's
/// length is odd): CSVReader, scan and erase.
enum FuzzCSV {
    static let single = FormatOptions(subject: SubjectSpec("id"))
    static let composite = FormatOptions(subject: SubjectSpec(fields: [FieldPath("id"), FieldPath("t")]))
    static let whole = CSVFormat(chunkSize: 1 << 20, maxRecordLength: 1 << 16)
    static let tiny = CSVFormat(chunkSize: 5, maxRecordLength: 1 << 16)

    static func run(_ data: UnsafeRawBufferPointer) {
        let gz = data.count >= 2 && data[0] == 0x1F && data[1] == 0x8B
        ObjectFormatDriver.run(
            data, key: gz ? "t/a.csv.gz" : "t/a.csv", whole: whole, tiny: tiny,
            options: data.count % 2 == 0 ? single : composite)
    }
}

/// Gzip framing: a GzipSource over the input in chunks of several sizes; the output must not
/// depend on how the input was chunked, and libdeflate's whole decoding must agree with it.
enum FuzzGzip {
    final class Chunks: ObjectReadStream, @unchecked Sendable {
        let bytes: [UInt8]
        let size: Int
        var pos = 0
        init(_ bytes: [UInt8], size: Int) { self.bytes = bytes; self.size = size }
        func next() async throws -> [UInt8]? {
            guard pos < bytes.count else { return nil }
            let end = min(bytes.count, pos + size)
            defer { pos = end }
            return Array(bytes[pos..<end])
        }
        func close() { pos = bytes.count }
    }

    static func inflate(_ bytes: [UInt8], inputChunk: Int, outputSize: Int) async -> [UInt8]? {
        do {
            let source = try GzipSource(PlainSource(Chunks(bytes, size: inputChunk), key: "fuzz.gz"), key: "fuzz.gz", outputSize: outputSize)
            defer { source.close() }
            var out: [UInt8] = []
            while let chunk = try await source.next() {
                out += chunk
                if out.count > 64 << 20 { return out }  // a zip bomb: enough
            }
            return out
        } catch {
            return nil
        }
    }

    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = [UInt8](data)
        Fuzz.blocking {
            let a = await inflate(bytes, inputChunk: 1 << 20, outputSize: 1 << 16)
            let b = await inflate(bytes, inputChunk: 3, outputSize: 5)
            guard a == b else {
                Fuzz.fail("gzip output depends on chunking: \(a.map { "\($0.count) bytes" } ?? "error") vs \(b.map { "\($0.count) bytes" } ?? "error")")
            }
            // libdeflate's whole-object decoding (issue 16) gives zlib's output whenever it accepts the input.
            if let whole = WholeGzip.decode(bytes, outputLimit: 64 << 20), whole != a {
                Fuzz.fail("libdeflate decoded \(whole.count) bytes where zlib gave \(a.map { "\($0.count) bytes" } ?? "an error")")
            }
        }
    }
}
