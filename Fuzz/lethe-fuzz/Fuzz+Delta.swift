// Targets for the Delta log: commit files (JSONValue, actions, snapshot replay), classic
// checkpoints (Parquet), and deletion vectors (Z85, portable Roaring, DV files).

@testable import DeltaLake
import LetheCore
import LetheStorage

/// One commit file: its actions, each written back as a line (as a scrubbed commit is) and
/// parsed again to the same action; then the commit replayed as version 0 of a table, with
/// the checks `lethe index` makes (readable, writable, column mapping, deletion vectors).
enum FuzzDeltaLog {
    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = [UInt8](data)
        Fuzz.blocking {
            let store = InMemoryObjectStore()
            let table = DeltaTable(store: store, root: "t")
            if let actions = try? table.parseCommit(bytes, name: "fuzz.json") {
                for a in actions {
                    let line = Array(a.line.utf8)
                    let b: DeltaAction
                    do {
                        b = try DeltaAction.parse(line, table: "t", file: "rewritten.json", line: 1)
                    } catch {
                        Fuzz.fail("an action written back does not parse: \(error)")
                    }
                    guard a.line == b.line else { Fuzz.fail("an action written back parses to another action") }
                }
            }
            store.set("t/_delta_log/" + DeltaTable.commitName(0), bytes)
            guard let s = try? await table.snapshot() else { return }
            _ = try? table.checkReadable(s)
            _ = try? table.checkWritable(s)
            _ = try? s.metadata.physicalPath(["user_id"], table: "t")
            _ = try? s.metadata.physicalPath(["a", "b"], table: "t")
            for add in s.files.values {
                _ = try? DeletionVectorDescriptor(add, table: "t")
                if let stats = add.stats { _ = try? JSONValue.parse(Array(stats.utf8)) }
                _ = decodeDeltaPath(add.path)
            }
            for r in s.tombstones.values { _ = try? DeletionVectorDescriptor(r, table: "t") }
        }
    }
}

/// A classic checkpoint file: its actions read back from Parquet.
enum FuzzCheckpoint {
    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = [UInt8](data)
        guard let (actions, rows) = try? CheckpointReader.actions(bytes, name: "fuzz.checkpoint.parquet", table: "t") else { return }
        guard rows >= Int64(actions.count) else { Fuzz.fail("\(actions.count) actions from \(rows) rows") }
        for a in actions {
            guard (try? DeltaAction.parse(Array(a.line.utf8), table: "t", file: "x", line: 1)) != nil else {
                Fuzz.fail("a checkpoint action written as JSON does not parse")
            }
        }
    }
}

/// Deletion vectors. Byte 0 picks what the rest is:
/// 0: a bitmap (magic number, portable 64-bit Roaring), decoded; its rows must ascend;
/// 1: Z85 text, decoded and encoded again to the same text;
/// 2: a DV file, read through a `u` descriptor whose offset, size and cardinality are
///    bytes 1-2, 3-4 and 5-6 (little endian) and whose file is the rest;
/// 3: a `deletionVector` JSON object, parsed as a descriptor.
enum FuzzDeletionVector {
    static let uuidText = "ab^-aqEH.-t@S}K{vb[*"  // 20 Z85 characters

    static func run(_ data: UnsafeRawBufferPointer) {
        guard let mode = data.first else { return }
        let rest = [UInt8](data.dropFirst())
        switch mode % 4 {
        case 0:
            guard let rows = try? DeletionVectorBitmap.decode(rest[...]) else { return }
            for i in rows.indices.dropFirst() where rows[i] <= rows[i - 1] {
                Fuzz.fail("bitmap rows not strictly ascending at \(i)")
            }
            if let first = rows.first, first < 0 { Fuzz.fail("negative row \(first)") }
        case 1:
            guard let bytes = Z85.decode(rest[...]) else { return }
            guard Array(Z85.encode(bytes).utf8) == rest else { Fuzz.fail("Z85 round trip changed the text") }
        case 2:
            guard rest.count >= 6 else { return }
            let offset = rest[0...1].reversed().reduce(0) { $0 << 8 | Int64($1) }
            let size = rest[2...3].reversed().reduce(0) { $0 << 8 | Int64($1) }
            let card = rest[4...5].reversed().reduce(0) { $0 << 8 | Int64($1) }
            let file = Array(rest[6...])
            let json = JSONValue.object([
                "storageType": .string("u"), "pathOrInlineDv": .string(uuidText),
                "offset": .int(offset), "sizeInBytes": .int(size), "cardinality": .int(card),
            ])
            guard let dv = try? DeletionVectorDescriptor(json: json, table: "t", dataFile: "part-0.parquet") else {
                Fuzz.fail("the fixed descriptor does not parse")
            }
            Fuzz.blocking {
                let store = InMemoryObjectStore()
                let table = DeltaTable(store: store, root: "t")
                guard let key = try? dv.fileKey(in: table) else { Fuzz.fail("no key for a u descriptor") }
                store.set(key, file)
                if let rows = try? await table.deletedRows(dv, dataFile: "part-0.parquet") {
                    guard Int64(rows.count) == card else { Fuzz.fail("\(rows.count) rows for cardinality \(card)") }
                }
            }
        default:
            guard let json = try? JSONValue.parse(rest) else { return }
            _ = try? DeletionVectorDescriptor(json: json, table: "t", dataFile: "part-0.parquet")
        }
    }
}
