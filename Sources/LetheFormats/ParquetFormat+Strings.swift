public import LetheStorage
import Parquet

extension ParquetFormat {
    /// Every BYTE_ARRAY value of every column of `object` (strings, JSON, binary), decompressed and decoded,
    /// each followed by a newline: what `lethe sweep` searches for raw ids held in other fields than the
    /// subject's (mentions). A literal search of the stored bytes would prove nothing: pages are compressed.
    public func byteArrayValues(_ object: ObjectInfo, in store: any ObjectStore) async throws -> [UInt8] {
        let bytes = try await store.read(object.key, range: 0..<object.size, ifVersion: object.version)
        return try Self.parquet(object.key) { () throws(ParquetError) -> [UInt8] in
            let file = try ParquetFile(bytes: bytes, name: object.key)
            var out: [UInt8] = []
            let columns = file.schema.columns.indices.filter { file.schema.columns[$0].physicalType == .byteArray }
            for g in file.rowGroups.indices {
                for c in columns {
                    guard case .byteArray(let v) = try file.readColumn(c, rowGroup: g).values else { continue }
                    for i in 0..<v.count {
                        out.append(contentsOf: v[i])
                        out.append(0x0A)
                    }
                }
            }
            return out
        }
    }
}
