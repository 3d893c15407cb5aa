// libFuzzer entry points for Lethe's byte parsers (issue 10 item 16).
//
// Built only when LETHE_FUZZ is set (see Package.swift and scripts/fuzz), with
// `-sanitize=fuzzer,address`; libFuzzer supplies `main`. One binary holds every
// target; `LETHE_FUZZ_TARGET` picks one. A target returns normally on any error
// the parser reports (bad input is expected); it traps on a crash, a sanitizer
// finding, or a broken invariant (`Fuzz.fail`), which libFuzzer records with the input.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Dispatch

/// The fuzz targets by name.
enum Fuzz {
    static let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
        "json": FuzzJSON.run,
        "jsonl": FuzzJSONLines.run,
        "csv": FuzzCSV.run,
        "gzip": FuzzGzip.run,
        "thrift": FuzzThrift.run,
        "parquet": FuzzParquet.run,
        "encodings": FuzzEncodings.run,
        "codecs": FuzzCodecs.run,
        "delta-log": FuzzDeltaLog.run,
        "checkpoint": FuzzCheckpoint.run,
        "dv": FuzzDeletionVector.run,
    ]

    nonisolated(unsafe) static var selected: (@Sendable (UnsafeRawBufferPointer) -> Void)?

    /// A broken invariant: the parser accepted something and then contradicted itself.
    static func fail(_ message: @autoclosure () -> String) -> Never {
        fatalError("invariant: \(message())")
    }

    /// Runs async work to completion from the fuzzer's synchronous callback.
    static func blocking(_ body: @escaping @Sendable () async -> Void) {
        let done = DispatchSemaphore(value: 0)
        Task {
            await body()
            done.signal()
        }
        done.wait()
    }
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    let name = getenv("LETHE_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = Fuzz.targets[name] else {
        let known = Fuzz.targets.keys.sorted().joined(separator: ", ")
        let message = Array("lethe-fuzz: set LETHE_FUZZ_TARGET to one of: \(known)\n".utf8)
        _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(2)
    }
    Fuzz.selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)
    Fuzz.selected?(bytes)
    return 0
}
