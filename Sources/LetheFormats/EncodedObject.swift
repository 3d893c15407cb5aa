public import LetheCore
public import LetheStorage

/// Whole-object reads and writes that apply the compression the key names
/// (`.gz` → gzip). For tools and sample data, not the streaming hot paths.
public enum EncodedObject {
    /// Writes `content` to `key`, compressed as its extension says, atomically.
    @discardableResult
    public static func write(
        _ content: [UInt8], to key: String, in store: any ObjectStore,
        precondition: WritePrecondition = .none
    ) async throws -> ObjectInfo {
        let w = try await store.openWrite(key, precondition: precondition)
        do {
            let sink = try Codec.sink(for: key, over: w)
            try await sink.write(content)
            try await sink.finish()
            return try await w.commit()
        } catch {
            await w.abort()
            throw error
        }
    }

    /// The needles whose bytes the decompressed content of `key` holds, read a chunk at a time (each
    /// chunk searched with the last `overlap` bytes of the one before, so a needle of up to `overlap`
    /// bytes across two chunks is found; a word-bounded needle that starts right at a chunk's carried
    /// bytes is judged without the byte before it).
    /// `gzip` says how a gzip object is decoded (libdeflate whole up to a bound, by default).
    public static func matches(
        of needles: NeedleSet, overlap: Int, in key: String, of store: any ObjectStore, gzip: GzipDecoding = .whole
    ) async throws -> Set<[UInt8]> {
        let src = try await Codec.openSource(key, in: store, chunkSize: 1 << 20, gzip: gzip)
        defer { src.close() }
        var found = Set<[UInt8]>()
        var carry: [UInt8] = []
        while let c = try await src.next() {
            let hay = carry.isEmpty ? c : carry + c
            found.formUnion(needles.matches(in: hay))
            carry = Array(hay.suffix(max(0, overlap)))
        }
        return found
    }

    /// Reads the decompressed content of `key`.
    public static func read(_ key: String, in store: any ObjectStore, gzip: GzipDecoding = .whole) async throws -> [UInt8] {
        let src = try await Codec.openSource(key, in: store, chunkSize: 1 << 20, gzip: gzip)
        defer { src.close() }
        var out: [UInt8] = []
        while let c = try await src.next() { out += c }
        return out
    }
}
