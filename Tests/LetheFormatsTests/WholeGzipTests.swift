import Foundation
import LetheTestSupport
import Testing
import LetheCore
import LetheStorage
import LetheTesting
@testable import LetheFormats

// Issue 16: gzip objects up to a bound are decoded whole with libdeflate (`GzipDecoding.whole`), the
// rest streamed through zlib. Both decoders give the same content for gzip written by Python's gzip
// module and by `gzip -9`; several members, trailing bytes, corrupt and truncated data take zlib's path
// and fail with zlib's error, naming the object.

/// JSON Lines content of about `lines` × 60 bytes, deterministic.
private func content(_ lines: Int, seed: UInt64 = 16) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    var out: [UInt8] = []
    for i in 0..<lines {
        out += "{\"n\":\(i),\"user\":{\"id\":\"u-\(rng.next() % 5000)\"},\"pad\":\"\(String(repeating: "y", count: Int(rng.next() % 40)))\"}\n".bytes
    }
    return out
}

/// gzip members written by Python's gzip module: argv[1] in, argv[2] out, argv[3] level.
private let pythonGzip = #"""
    import sys, gzip
    data = open(sys.argv[1], "rb").read()
    open(sys.argv[2], "wb").write(gzip.compress(data, compresslevel=int(sys.argv[3]), mtime=0))
    """#

private func pythonGzipped(_ bytes: [UInt8], level: Int) throws -> [UInt8] {
    let base = NSTemporaryDirectory() + "lethe-gz-\(UUID().uuidString)"
    defer {
        unlink(base)
        unlink(base + ".gz")
    }
    guard FileManager.default.createFile(atPath: base, contents: Data(bytes)) else { throw LetheError(.io, "cannot write \(base)") }
    try Peers.python(["-c", pythonGzip, base, base + ".gz", String(level)], what: "whole gzip test (python gzip)")
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: base + ".gz")))
}

/// The decoded content of `key` both ways, or each way's error.
private func decodeBothWays(_ store: FaultInjectingStore, _ key: String, chunkSize: Int = 1 << 20) async -> [Result<[UInt8], LetheError>] {
    var out: [Result<[UInt8], LetheError>] = []
    for decoding in [GzipDecoding.whole, .streaming] {
        do {
            let src = try await Codec.openSource(key, in: store, chunkSize: chunkSize, gzip: decoding)
            defer { src.close() }
            var all: [UInt8] = []
            while let c = try await src.next() {
                #expect(!c.isEmpty && c.count <= max(chunkSize, 64))
                all += c
            }
            out.append(.success(all))
        } catch let e as LetheError {
            out.append(.failure(e))
        } catch {
            out.append(.failure(LetheError(.failure, "\(error)")))
        }
    }
    return out
}

struct WholeGzipTests {
    @Test(arguments: ["python-1", "python-6", "python-9", "gzip-9", "gzip-1"])
    func libdeflateDecodesWhatPythonAndGzipWrite(_ writer: String) async throws {
        let plain = content(30_000)
        let level = Int(writer.split(separator: "-")[1])!
        let gz = writer.hasPrefix("python") ? try pythonGzipped(plain, level: level) : try gzipTool(plain, ["-\(level)"])
        #expect(WholeGzip.decode(gz) == plain, "libdeflate decodes it whole")
        let store = FaultInjectingStore()
        store.set("d/a.jsonl.gz", gz)
        for chunkSize in [1 << 20, 4096, 7] {
            let r = await decodeBothWays(store, "d/a.jsonl.gz", chunkSize: chunkSize)
            #expect((try? r[0].get()) == plain && (try? r[1].get()) == plain)
        }
        // What the sweep and the formats read through the seam.
        #expect(try await EncodedObject.read("d/a.jsonl.gz", in: store) == plain)
        let needles = NeedleSet([Array("u-17".utf8), Array("u-4999".utf8), Array("nobody".utf8)], wordBounded: true)
        let whole = try await EncodedObject.matches(of: needles, overlap: 8, in: "d/a.jsonl.gz", of: store)
        let streamed = try await EncodedObject.matches(of: needles, overlap: 8, in: "d/a.jsonl.gz", of: store, gzip: .streaming)
        #expect(whole == streamed && whole.contains(Array("u-17".utf8)) && !whole.contains(Array("nobody".utf8)))
        let r = try await scan(JSONLinesFormat(), store, "d/a.jsonl.gz", options("user.id"))
        #expect(r.summary.records == 30_000)
    }

    @Test func anEmptyMemberDecodes() async throws {
        let gz = try gzipTool([])
        #expect(WholeGzip.decode(gz) == [])
        let store = FaultInjectingStore()
        store.set("e.jsonl.gz", gz)
        let r = await decodeBothWays(store, "e.jsonl.gz")
        #expect((try? r[0].get()) == [] && (try? r[1].get()) == [])
    }

    /// `cat a.gz b.gz`: libdeflate stops after the first member, so the object goes through zlib, which
    /// reads every member.
    @Test func severalMembersGoThroughZlib() async throws {
        let a = content(2000, seed: 1), b = content(1500, seed: 2), c = content(10, seed: 3)
        let gz = try gzipTool(a, ["-9"]) + pythonGzipped(b, level: 6) + gzipTool(c)
        #expect(WholeGzip.decode(gz) == nil)
        let store = FaultInjectingStore()
        store.set("m.jsonl.gz", gz)
        for chunkSize in [1 << 20, 1000] {
            let r = await decodeBothWays(store, "m.jsonl.gz", chunkSize: chunkSize)
            #expect((try? r[0].get()) == a + b + c && (try? r[1].get()) == a + b + c)
        }
    }

    /// Corrupt data, a wrong CRC-32 or size in the trailer, truncation, trailing garbage, not gzip at all:
    /// both ways fail with a `.corrupt` error located at the object, with the same message.
    @Test(arguments: ["flipped", "crc", "size", "truncated", "trailing", "not gzip"])
    func corruptGzipFailsNamingTheObject(_ damage: String) async throws {
        var gz = try gzipTool(content(3000), ["-9"])
        switch damage {
        case "flipped": for i in 200..<240 { gz[i] ^= 0x5A }
        case "crc": gz[gz.count - 6] ^= 0x01
        case "size": gz[gz.count - 3] ^= 0x01
        case "truncated": gz.removeLast(100)
        case "trailing": gz += [0x00, 0x01, 0x02, 0x03]
        default: gz = content(10)
        }
        #expect(WholeGzip.decode(gz) == nil)
        let store = FaultInjectingStore()
        store.set("bad/x.jsonl.gz", gz)
        let r = await decodeBothWays(store, "bad/x.jsonl.gz")
        for result in r {
            guard case .failure(let e) = result else {
                Issue.record("\(damage): decoded without an error")
                continue
            }
            #expect(e.code == .corrupt && e.location?.hasPrefix("bad/x.jsonl.gz") == true, "\(e)")
            #expect("\(e)".contains("gzip") && "\(e)".contains("bad/x.jsonl.gz"), "\(e)")
        }
        if case .failure(let a) = r[0], case .failure(let b) = r[1] { #expect(a.message == b.message) }
        // The sweep's search reports it the same way.
        let e = await letheError {
            _ = try await EncodedObject.matches(of: NeedleSet([Array("u-1".utf8)], wordBounded: true), overlap: 3, in: "bad/x.jsonl.gz", of: store)
        }
        #expect(e?.code == .corrupt && e?.location?.hasPrefix("bad/x.jsonl.gz") == true)
    }

    /// An object above the bound (stored bytes) streams through zlib from the bytes already read on.
    @Test func anObjectAboveTheBoundStreams() async throws {
        var rng = SplitMix64(seed: 99)
        var noise = [UInt8](repeating: 0, count: Codec.wholeGzipLimit + 300_000)
        for i in noise.indices { noise[i] = UInt8(truncatingIfNeeded: rng.next() >> 13) }
        let gz = try gzipTool(noise, ["-1"])
        #expect(gz.count > Codec.wholeGzipLimit)
        let store = FaultInjectingStore()
        store.set("big.bin.gz", gz)
        let r = await decodeBothWays(store, "big.bin.gz")
        #expect((try? r[0].get()) == noise && (try? r[1].get()) == noise)
        // A trailer saying more than the output bound: zlib too.
        #expect(WholeGzip.decode(try gzipTool(content(200)), outputLimit: 100) == nil)
    }
}
