import Foundation
import LetheCore
import LetheStorage
@testable import LetheFormats
import LetheTesting

let hasher = SubjectHasher(secret: Array(repeating: 7, count: 32))

func key(_ s: String) -> SubjectKey { hasher.key(for: SubjectID(s)) }
func key(parts: [String]) -> SubjectKey { hasher.key(for: SubjectID(parts: parts.map { Array($0.utf8) })) }

func options(_ fields: String...) -> FormatOptions {
    FormatOptions(subject: SubjectSpec(fields: fields.map(FieldPath.init)))
}

struct ScanResult {
    var rows: [(Int64, SubjectKey)] = []
    var summary = ScanSummary()
    var keys: [SubjectKey] { rows.map(\.1) }
    var ordinals: [Int64] { rows.map(\.0) }
}

func scan(_ format: any RecordFormat, _ store: FaultInjectingStore, _ objectKey: String, _ opts: FormatOptions) async throws -> ScanResult {
    let info = try await store.head(objectKey)!
    var result = ScanResult()
    result.summary = try await format.scan(info, in: store, options: opts, keyer: SubjectKeyer(hasher: hasher)) { row, k in
        result.rows.append((row, k))
    }
    return result
}

func erase(_ format: any RecordFormat, _ store: FaultInjectingStore, _ objectKey: String, _ opts: FormatOptions, _ drop: [SubjectKey]) async throws
    -> EraseOutcome
{
    let info = try await store.head(objectKey)!
    return try await format.erase(info, in: store, options: opts, keyer: SubjectKeyer(hasher: hasher), drop: Set(drop))
}

/// Catches the `LetheError` an async call throws.
func letheError(_ body: () async throws -> Void) async -> LetheError? {
    do {
        try await body()
        return nil
    } catch let e as LetheError {
        return e
    } catch {
        return LetheError(.failure, "unexpected error type: \(error)")
    }
}

/// Runs the system `gzip` on `input` (compress or, with `-d`, decompress).
func gzipTool(_ input: [UInt8], _ args: [String] = []) throws -> [UInt8] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["gzip", "-c"] + args
    let inPipe = Pipe(), outPipe = Pipe()
    p.standardInput = inPipe
    p.standardOutput = outPipe
    p.standardError = FileHandle.nullDevice
    try p.run()
    let writer = Thread {
        inPipe.fileHandleForWriting.write(Data(input))
        try? inPipe.fileHandleForWriting.close()
    }
    writer.start()
    let out = outPipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw LetheError(.failure, "gzip exited with \(p.terminationStatus)") }
    return Array(out)
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}

/// A small deterministic random generator.
typealias SplitMix = SplitMix64
extension SplitMix64 {
    mutating func next64() -> UInt64 { next() }
    mutating func next(_ n: Int) -> Int { n <= 1 ? 0 : Int(next64() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { next(100) < percent }
}
