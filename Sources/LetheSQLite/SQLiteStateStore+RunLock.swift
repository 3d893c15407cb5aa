import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import Synchronization
import LetheCore
public import LetheCatalog

extension SQLiteStateStore {
    /// The run lock's file name inside the state folder.
    public static let runLockFileName = "run.lock"

    /// One `lethe run` at a time per state folder: an exclusive `flock` on `<state>/run.lock`, held
    /// for the whole run and released by the kernel when the process ends (a `kill -9` included).
    /// Without it a second run took the first one's live job for an interrupted one and resumed it:
    /// both rewrote the same objects, the loser failed every request ("object changed while it was
    /// being rewritten") or exited on a journal step the other had settled. A run that finds the lock
    /// taken waits for it. `flock` locks belong to the open file description, so they do not interfere
    /// with SQLite's POSIX locks on the database files (a different file), and no other descriptor's
    /// `close` releases them. nil for an in-memory store (nothing to lock).
    public func acquireRunLock(progress: (@Sendable (String) -> Void)?) async throws -> (any RunLockHandle)? {
        guard let folder else { return nil }
        return try await FolderRunLock.acquire(path: folder + "/" + Self.runLockFileName, progress: progress)
    }
}

/// A held `flock` on a state folder's run lock file (see `SQLiteStateStore.acquireRunLock`).
final class FolderRunLock: RunLockHandle {
    /// The open descriptor (-1 once released).
    private let fd: Mutex<Int32>

    private init(fd: Int32) { self.fd = Mutex(fd) }

    static func acquire(path: String, progress: (@Sendable (String) -> Void)?) async throws -> FolderRunLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 { throw LetheError.io("cannot open the run lock", at: path, errno: errno) }
        var told = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            guard e == EWOULDBLOCK || e == EINTR else {
                close(fd)
                throw LetheError.io("cannot lock the run lock", at: path, errno: e)
            }
            if !told {
                progress?("waiting for another `lethe run` on this state to finish")
                told = true
            }
            do { try await Task.sleep(nanoseconds: 50_000_000) } catch { close(fd); throw error }
        }
        return FolderRunLock(fd: fd)
    }

    func release() {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}
