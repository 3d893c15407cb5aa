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
    /// An object stored plain is lent by the store a window at a time (`ObjectStore.forEachWindow`: a
    /// local file mapped); a gzip object decoded whole is searched in one pass where it lies.
    public static func matches(
        of needles: NeedleSet, overlap: Int, in key: String, of store: any ObjectStore, gzip: GzipDecoding = .whole
    ) async throws -> Set<[UInt8]> {
        var found = Set<[UInt8]>()
        if Compression.forKey(key) == .none {
            do {
                try await store.forEachWindow(of: key, window: 4 << 20) { w, end in
                    found.formUnion(needles.matches(in: w))
                    return end ? 0 : min(max(0, overlap), w.count)
                }
            } catch {
                throw Codec.readFailure(error, key)
            }
            return found
        }
        let src = try await Codec.openSource(key, in: store, chunkSize: 1 << 20, gzip: gzip)
        defer { src.close() }
        if let whole = src as? BufferSource { return whole.content.withUnsafeBufferPointer { needles.matches(in: $0) } }
        var carry: [UInt8] = []
        while let c = try await src.next() {
            let hay = carry.isEmpty ? c : carry + c
            found.formUnion(needles.matches(in: hay))
            carry = Array(hay.suffix(max(0, overlap)))
        }
        return found
    }

    /// The content of a gzip object that is decoded whole (`GzipDecoding.whole`: stored size at most
    /// `Codec.wholeGzipLimit`, one member, decoding to at most `Codec.wholeGzipOutputLimit`), or nil for
    /// any other object (not gzip, larger, several members, corrupt: `matches` streams it and says what
    /// is wrong). The sweep decodes the next object with it while it searches this one.
    public static func decodedWhole(_ object: ObjectInfo, in store: any ObjectStore) async throws -> [UInt8]? {
        guard Compression.forKey(object.key) == .gzip, object.size <= Int64(Codec.wholeGzipLimit) else { return nil }
        let src = try await Codec.openSource(object.key, in: store, chunkSize: 1 << 20, gzip: .whole)
        defer { src.close() }
        return (src as? BufferSource)?.content
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
