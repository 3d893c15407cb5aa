import LetheCore
import LetheStorage

/// One erase pass of a line or record format: reads `source`, writes what it keeps to a writer that
/// commits against `version`, and returns the outcome with that writer (kept open: its
/// `replacedTail` is read afterwards). With `force`, commits even when nothing was dropped.
typealias ErasePass = (_ source: any ChunkSource, _ version: String, _ force: Bool)
    async throws -> (EraseOutcome, (any ObjectWriteStream)?)

/// Erases from a stream format without losing what a writer appends meanwhile (issue 10 item 6).
///
/// Lake objects are meant to be immutable once written, and the local store refuses to replace a
/// file another process holds open for writing where it can tell. What remains is a writer that
/// opened the file just before the rename (or a system where the store cannot tell): its bytes land
/// in the replaced file. The store keeps that file open (`ObjectWriteStream.replacedTail`); after each
/// replace, whatever it (or any version replaced since) grew by is appended to the current version
/// and the whole passes through the filter again — so the carried records lose the subjects being
/// erased too, and a record split across the boundary is read whole — in another conditional
/// replace, until nothing more comes. A tail the filter cannot read (a writer stopped mid-record,
/// mid-gzip-member) is carried verbatim rather than lost; indexing then quarantines the object and
/// verification cannot call it clean.
enum TailCarry {
    /// Rounds after the first before giving up on an object that keeps growing.
    static let maxRounds = 32

    static func erase(_ object: ObjectInfo, in store: any ObjectStore, chunkSize: Int, pass: ErasePass) async throws -> EraseOutcome {
        let source = try await Codec.openSource(object.key, in: store, chunkSize: chunkSize)
        defer { source.close() }
        let (firstOutcome, first) = try await pass(source, object.version, false)
        var outcome = firstOutcome
        guard let firstWriter = first, var current = outcome.written else { return outcome }
        // Every replaced version, with how much of it has been carried so far.
        var holders: [(writer: any ObjectWriteStream, carried: Int64)] = [(firstWriter, object.size)]
        for _ in 0..<maxRounds {
            var tail: [UInt8] = []
            for i in holders.indices {
                let t = try await holders[i].writer.replacedTail(from: holders[i].carried)
                holders[i].carried += Int64(t.count)
                tail += t
            }
            if tail.isEmpty { return outcome }
            let (round, writer) = try await carry(tail, onto: current, in: store, chunkSize: chunkSize, pass: pass)
            guard let written = round.written, let writer else {
                throw LetheError(.failure, "carrying bytes appended during the rewrite wrote nothing", at: object.key)
            }
            // The new version holds records the read version did not: its index entries cannot be derived.
            outcome.exact = false
            for (k, n) in round.dropped { outcome.dropped[k, default: 0] += n }
            if round.kept > 0 { outcome.kept = round.kept }
            outcome.written = written
            holders.append((writer, current.size))
            current = written
        }
        throw LetheError(
            .conflict,
            "the object kept growing while it was rewritten (\(maxRounds) rounds): lake objects must not change once written; retried by the next run",
            at: object.key)
    }

    /// Writes `current` + `tail` anew, filtered; verbatim when the filter cannot read it.
    /// A version changed meanwhile by someone else is read again (a few times).
    static func carry(
        _ tail: [UInt8], onto start: ObjectInfo, in store: any ObjectStore, chunkSize: Int,
        pass: ErasePass
    ) async throws -> (EraseOutcome, (any ObjectWriteStream)?) {
        var current = start
        for _ in 0..<8 {
            do {
                do {
                    let stream = ConcatenatedStream(try await store.openRead(current.key, chunkSize: chunkSize), tail, chunkSize: chunkSize)
                    let source = try source(over: stream, key: current.key, chunkSize: chunkSize)
                    defer { source.close() }
                    return try await pass(source, current.version, true)
                } catch let e as LetheError where e.code == .corrupt {
                    return try await verbatim(tail, onto: current, in: store, chunkSize: chunkSize)
                }
            } catch let e as LetheError where e.code == .conflict {
                guard let now = try await store.head(current.key) else { throw e }
                current = now
            }
        }
        throw LetheError(.conflict, "the object kept changing while bytes appended during its rewrite were carried into it", at: start.key)
    }

    /// `current`'s stored bytes followed by `tail`, unfiltered.
    static func verbatim(
        _ tail: [UInt8], onto current: ObjectInfo, in store: any ObjectStore,
        chunkSize: Int
    ) async throws -> (EraseOutcome, (any ObjectWriteStream)?) {
        let writer = try await store.openWrite(current.key, precondition: .matches(version: current.version))
        do {
            let stream = try await store.openRead(current.key, chunkSize: chunkSize)
            defer { stream.close() }
            while let c = try await stream.next() { try await writer.write(c) }
            try await writer.write(tail)
            var outcome = EraseOutcome()
            outcome.written = try await writer.commit()
            return (outcome, writer)
        } catch {
            await writer.abort()
            throw error
        }
    }

    /// The decompressed content of a raw byte stream, as `Codec.openSource` reads an object.
    static func source(over stream: any ObjectReadStream, key: String, chunkSize: Int) throws -> any ChunkSource {
        let plain = PlainSource(stream, key: key)
        switch Compression.forKey(key) {
        case .gzip: return try GzipSource(plain, key: key, outputSize: max(chunkSize, 64))
        case .zstd: throw LetheError(.badInput, "zstd-compressed objects are not supported by this format (use gzip)", at: key)
        case .none: return plain
        }
    }
}

/// An object's bytes followed by bytes in memory.
final class ConcatenatedStream: ObjectReadStream {
    private let first: any ObjectReadStream
    private let rest: [UInt8]
    private let chunkSize: Int
    private var firstDone = false
    private var offset = 0

    init(_ first: any ObjectReadStream, _ rest: [UInt8], chunkSize: Int) {
        self.first = first; self.rest = rest; self.chunkSize = max(1, chunkSize)
    }

    func next() async throws -> [UInt8]? {
        if !firstDone {
            if let c = try await first.next() { return c }
            firstDone = true
            first.close()
        }
        guard offset < rest.count else { return nil }
        let end = min(rest.count, offset + chunkSize)
        defer { offset = end }
        return Array(rest[offset..<end])
    }

    func close() { first.close(); offset = rest.count }
}
