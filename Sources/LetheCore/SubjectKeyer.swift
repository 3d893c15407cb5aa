/// Turns subject values found in records into keys, caching by raw bytes so that
/// a subject seen many times is hashed once. One per task (not shared across threads).
///
/// Canonical values: a JSON string is its unescaped UTF-8 content, a JSON number
/// its literal text, a CSV field its unquoted text, a Parquet value its decimal or
/// UTF-8 text. So `"123"` and `123` name the same subject.
public final class SubjectKeyer {
    public let hasher: SubjectHasher
    private var cache: [[UInt8]: SubjectKey] = [:]
    private let limit: Int

    public init(hasher: SubjectHasher, cacheLimit: Int = 1 << 20) {
        self.hasher = hasher
        self.limit = cacheLimit
    }

    /// The key of a canonical subject value.
    public func key(_ canonical: [UInt8]) -> SubjectKey {
        if let k = cache[canonical] { return k }
        let k = hasher.key(forBytes: canonical)
        if cache.count >= limit { cache.removeAll(keepingCapacity: true) }
        cache[canonical] = k
        return k
    }

    /// The key of a canonical subject value held in a buffer (copied only on a cache miss).
    public func key(_ canonical: UnsafeRawBufferPointer) -> SubjectKey {
        key(Array(canonical))
    }
}
