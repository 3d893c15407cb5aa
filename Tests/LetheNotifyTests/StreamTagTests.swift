import Foundation
import LetheCore
import LetheNotify
import LetheTestSupport
import Testing

/// The documented recipe for stream processors (scripts/stream_tag.py, docs/notifications.md)
/// computes the same tags as Lethe: the members of the Redis set.
@Suite struct StreamTagTests {
    @Test("the Python recipe's tags equal StateSecrets.streamTag, plain and composite subjects")
    func recipe() throws {
        let folder = try PythonPeer.temporaryFolder("streamkey")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let key = (0..<32).map { _ in UInt8.random(in: 0...255) }
        try (Hex.encode(key) + "\n").write(toFile: folder + "/stream.key", atomically: true, encoding: .utf8)
        let secrets = StateSecrets(installationSecret: Array(repeating: 1, count: 32), requestKey: Array(repeating: 2, count: 32), streamKey: key)
        let subjects: [[String]] = [
            ["alice@example.com"], ["42"], ["ünïcødé-ユーザー"], ["", "x"], ["tenant-7", "user-12345678"], [String(repeating: "z", count: 100)],
        ]
        for parts in subjects {
            let id = SubjectID(parts: parts.map { Array($0.utf8) })
            let mine = RedisDeletionSink.member(secrets.streamTag(id))
            let theirs = try Peers.python([Peers.script("stream_tag.py"), folder + "/stream.key"] + parts, what: "stream_tag.py")
            #expect(mine == theirs.trimmingCharacters(in: .whitespacesAndNewlines), "subject of \(parts.count) part(s)")
        }
    }
}
