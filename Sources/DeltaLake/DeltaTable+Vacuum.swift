import Foundation
import LetheCore
import LetheStorage
import Parquet

/// Where Lethe's VACUUM START and VACUUM END commits are in a table's log, from a record of it
/// (Lethe's commit index): every such commit up to `through` is among `versions` (which may name
/// others too: each is read before it decides anything).
public struct LetheVacuumCommits: Sendable, Equatable {
    public var through: Int64
    public var versions: [Int64]

    public init(through: Int64, versions: [Int64]) {
        self.through = through
        self.versions = versions
    }
}

/// What a targeted vacuum did.
public struct DeltaVacuumResult: Sendable {
    /// Object keys of the history files deleted.
    public var deleted: [String]
    /// Object keys of the change data files rewritten in place without the subjects' rows.
    public var rewrittenChangeData: [String] = []
    /// Versions that can no longer be read by time travel (their files are gone).
    public var unreadableVersions: [ClosedRange<Int64>]
    /// Commit files rewritten to scrub statistics or commitInfo.
    public var scrubbedCommits: [Int64]
    /// Checkpoint (and sidecar) files removed because they held scrubbed statistics.
    public var removedCheckpoints: [String]
    /// Checkpoint (and sidecar) files rewritten without the statistics (the JSON log alone does
    /// not replay: its early commits were cleaned up).
    public var rewrittenCheckpoints: [String] = []
    /// Version checksum (`.crc`) and log compaction files removed (both optional) because they
    /// described the deleted files or named a subject.
    public var removedLogFiles: [String] = []
    /// Files asked for that the log still reaches (live in the latest version): never deleted.
    public var keptReachable: [String] = []

    public init(deleted: [String], unreadableVersions: [ClosedRange<Int64>], scrubbedCommits: [Int64], removedCheckpoints: [String]) {
        self.deleted = deleted; self.unreadableVersions = unreadableVersions
        self.scrubbedCommits = scrubbedCommits; self.removedCheckpoints = removedCheckpoints
    }
}

extension DeltaTable {
    /// Targeted physical erasure: deletes the given data files (`paths`, log paths of history
    /// files), rewrites each change data file in `changeData` without the given rows (in place,
    /// so the feed stays readable for every version; its `cdc` action's size follows), then
    /// scrubs the log of what still describes the deleted files or names the subject:
    ///
    /// - commits: the `stats` of `add`/`remove` actions for those paths, or whose bounds hold
    ///   one of `subject`'s values, keep only `numRecords`; a commitInfo whose parameters name a
    ///   value (see `SubjectValues`) has them replaced. Each commit is rewritten atomically
    ///   (compare-and-swap on its version).
    /// - checkpoints (and their sidecars) holding such statistics are removed when the JSON log
    ///   alone replays (then `_last_checkpoint` too), else rewritten without them.
    /// - version checksums (`.crc`) and log compactions holding them are removed (both optional).
    ///
    /// A path the log still reaches (live in the latest version, whatever the caller's index
    /// says) is never deleted: it is reported in `keptReachable`. Writes VACUUM START / VACUUM END
    /// commits so other tools see it in history; when an earlier attempt's START has no END
    /// (a resumed or retried run), no second START is written. `runID` is recorded in START.
    ///
    /// `commits`: the commits to read and scrub (e.g. those naming `paths` and `changeData`, from
    /// `DeltaHistory.namedIn`, plus any a sweep found naming the subject); nil reads every commit
    /// (then also another tool's commitInfo naming a value anywhere in the log is scrubbed).
    ///
    /// `known`: where Lethe's earlier VACUUM START and END commits are, as far as the caller's record
    /// of the log goes (e.g. Lethe's commit index); then the log is not read back to find an open START.
    public func vacuumTargeted(
        paths: Set<String>, changeData: [String: [Int64]] = [:], subject: SubjectValues = .none,
        runID: String? = nil, commits: Set<Int64>? = nil, known: LetheVacuumCommits? = nil, now: Int64
    ) async throws -> DeltaVacuumResult {
        var result = DeltaVacuumResult(deleted: [], unreadableVersions: [], scrubbedCommits: [], removedCheckpoints: [])
        let snap = try await Trace.span("delta vacuum: snapshot") { try await snapshot() }
        let ict = snap.metadata.inCommitTimestamps
        let victims = unreachable(paths, in: snap, result: &result)
        let listing = try await Trace.span("delta vacuum: list log") { try await listLog() }
        // VACUUM START (unless an earlier attempt's is still open) is looked for and committed beside
        // the reads and the scrubbed copies' durability pass below, and awaited before the vacuum
        // changes anything: before a change data file is rewritten, a log file replaced or removed, a
        // data file deleted (so a crash leaves no change without it).
        let t0 = ContinuousClock.now
        async let started: Void = Trace.span("delta vacuum: VACUUM START (own time)") {
            try await openVacuum(
                snap, known: known, latest: listing.versions.last, files: victims.count + changeData.count, runID: runID, now: now,
                inCommitTimestamps: ict)
        }
        if !changeData.isEmpty {
            try await started
            Trace.mark("delta vacuum: VACUUM START", since: t0)
        }
        let cdcSize = try await rewriteChangeData(changeData, result: &result)
        let versions = commits.map { c in listing.versions.filter(c.contains) } ?? listing.versions
        let scan = try await Trace.span("delta vacuum: read \(versions.count) commits") {
            try await scanCommits(
                versions, first: listing.versions.first, paths: paths, victims: victims, changeData: changeData,
                cdcSize: cdcSize, subject: subject)
        }
        // With the whole log from version 0 and every path's `add` among the commits read, a
        // checkpoint older than all of them cannot describe a path; nor hold a subject's value, whose
        // files are all among the paths (the caller's index says which; residue elsewhere is the sweep's).
        var floor: Int64?
        if listing.versions.first == 0, !paths.isEmpty, paths.allSatisfy({ scan.firstAdded[$0] != nil }) {
            floor = paths.compactMap { scan.firstAdded[$0] }.min()
        }
        let t1 = ContinuousClock.now
        // A checkpoint at a version where a deleted file was live lists its `add` (a checkpoint is the
        // table's state at its version): it must go whatever else it holds, so it is not read first.
        let live = scan.liveRanges
        let v2 = snap.tableProtocol.readerFeatures.contains("v2Checkpoint"), checkpointsFrom = floor
        // The checkpoints are read and planned beside the writes of the scrubbed commits.
        async let planned = Trace.span("delta vacuum: checkpoints and log copies planned") {
            try await planLogCopies(
                listing, paths: paths, subject: subject, v2Checkpoints: v2, checkpointsFrom: checkpointsFrom,
                knownDirty: { v in live.contains { $0.contains(v) } })
        }
        // The scrubbed commits, checkpoint files and `_last_checkpoint`: written and made durable in
        // one pass (beside VACUUM START), then published in one batch once START is (beside the deletes).
        var rewrites = scan.scrubs.map { LogRewrite(key: $0.key, bytes: $0.bytes, version: $0.version, commit: $0.v) }
        let t2 = ContinuousClock.now
        var writers: [any ObjectWriteStream] = []
        let copies: LogCopiesPlan
        do {
            // Opened together: the store journals their temporary files in one go.
            func write(_ ws: [LogRewrite]) async throws {
                let opened = try await store.openWrites(ws.map { ($0.key, .matches(version: $0.version)) }, durability: .deferred)
                writers += opened
                for (w, writer) in zip(ws, opened) { try await writer.write(w.bytes) }
            }
            try await write(rewrites)
            copies = try await planned
            try await write(copies.rewrites)
            rewrites += copies.rewrites
            Trace.mark("delta vacuum: \(rewrites.count) log files written", since: t1)
            try await store.makeDurable(writers)
            Trace.mark("delta vacuum: \(rewrites.count) log files made durable", since: t2)
            try await started
            Trace.mark("delta vacuum: VACUUM START awaited", since: t0)
        } catch {
            for w in writers { await w.abort() }
            throw error
        }
        // START is in the log: the files are deleted while the log's scrubbed copies are published
        // (neither needs the other: a crash between them leaves START open and the step to resume,
        // which finds the rest from the index), and VACUUM END's bytes are made durable in the
        // publication's pass; END enters the log once both are done (`deleteAndCommitVacuumEnd`).
        // Reachability is read before the log changes (the kept snapshot ends at a commit scrubbed here).
        let t3 = ContinuousClock.now
        let doomed: [String]
        do {
            doomed = try await stillUnreachable(victims, result: &result)
        } catch {
            for w in writers { await w.abort() }
            throw error
        }
        result.deleted = doomed
        result.unreadableVersions = Self.merge(scan.liveRanges)
        result.scrubbedCommits = scan.scrubs.map(\.v)
        result.rewrittenCheckpoints = copies.rewrites.filter(\.reported).map(\.key)
        let ended = result
        try await deleteAndCommitVacuumEnd(doomed, ended, now: now, inCommitTimestamps: ict) { end in
            let written: [ObjectInfo]
            do {
                written = try await store.commitNew(writers, makingDurable: end.map { [$0] } ?? [])
                Trace.mark("delta vacuum: \(rewrites.count) log files linked", since: t2)
            } catch {
                for w in writers { await w.abort() }
                throw error
            }
            // Statistics scrubbed change no table state: a kept snapshot ending at one of these commits
            // stays good, at the commit's new store version.
            for (w, info) in zip(rewrites, written) {
                if let v = w.commit { snapshots?.commitRewritten(root, version: v, from: w.version, to: info.version) }
            }
            _ = try await boundedMap(rewrites, limit: 8) { w in try await self.deleteChecksumSidecar(of: w.key) }
            Trace.mark("delta vacuum: \(rewrites.count) log files replaced", since: t2)
            try await removeLogCopies(copies.removals, result: &result)
        }
        Trace.mark("delta vacuum: delete \(doomed.count) files, VACUUM END", since: t3)
        return result
    }

    /// VACUUM START, unless an earlier attempt's is still open (`hasOpenVacuumStart`, from `snap`
    /// and `known` where it can; `latest`: the newest commit of a listing just taken, if any).
    func openVacuum(
        _ snap: Snapshot, known: LetheVacuumCommits?, latest: Int64? = nil, files: Int, runID: String?, now: Int64, inCommitTimestamps ict: Bool
    ) async throws {
        let open = try await Trace.span("delta vacuum: open VACUUM START looked for") {
            try await hasOpenVacuumStart(snap, known: known, latest: latest)
        }
        guard !open else { return }
        try await commitVacuumStart(files: files, runID: runID, now: now, inCommitTimestamps: ict)
    }

    /// The `paths` the log does not reach in `snap` (reachability from the log, never from the
    /// caller's index); the others go to `keptReachable`, sorted.
    func unreachable(_ paths: Set<String>, in snap: Snapshot, result: inout DeltaVacuumResult) -> Set<String> {
        let reachable = Set(snap.files.keys.map(key(forLogPath:)))
        var victims: Set<String> = []
        for p in paths {
            if reachable.contains(key(forLogPath: p)) { result.keptReachable.append(p) } else { victims.insert(p) }
        }
        result.keptReachable.sort()
        return victims
    }

    func commitVacuumStart(files: Int, runID: String?, now: Int64, inCommitTimestamps ict: Bool) async throws {
        var params: [String: JSONValue] = ["mode": .string("targeted"), "numFiles": .int(Int64(files))]
        if let runID { params["lethe_run"] = .string(runID) }
        try await commitNext(
            [
                "timestamp": .int(now), "operation": .string("VACUUM START"), "engineInfo": .string("Lethe/0.1"),
                "operationParameters": .object(params),
            ], now: now, inCommitTimestamps: ict)
    }

    func commitVacuumEnd(_ result: DeltaVacuumResult, now: Int64, inCommitTimestamps ict: Bool) async throws {
        try await commitNext(Self.vacuumEndInfo(result, now: now), now: now, inCommitTimestamps: ict)
    }

    /// The commitInfo of VACUUM END.
    static func vacuumEndInfo(_ result: DeltaVacuumResult, now: Int64) -> [String: JSONValue] {
        [
            "timestamp": .int(now), "operation": .string("VACUUM END"), "engineInfo": .string("Lethe/0.1"),
            "operationParameters": .object(["status": .string("COMPLETED")]),
            "operationMetrics": .object([
                "numDeletedFiles": .int(Int64(result.deleted.count)),
                "numRewrittenChangeDataFiles": .int(Int64(result.rewrittenChangeData.count)),
            ]),
        ]
    }

    /// Rewrites each change data file without its rows (in place, atomically); returns the size
    /// of every file asked for that exists, by log path. Runs before the log is scrubbed: a crash
    /// in between leaves a stale `size` that the re-run sets right (rows == []).
    func rewriteChangeData(_ changeData: [String: [Int64]], result: inout DeltaVacuumResult) async throws -> [String: Int64] {
        var cdcSize: [String: Int64] = [:]
        for (p, rows) in changeData.sorted(by: { $0.key < $1.key }) {
            let k = key(forLogPath: p)
            guard let head = try await store.head(k) else { continue }
            if rows.isEmpty { cdcSize[p] = head.size; continue }
            let bytes = try await store.read(k)
            var sink = InMemorySink()
            do {
                let file = try ParquetFile(bytes: bytes, name: k)
                _ = try file.rewrite(droppingRows: rows, to: &sink)
            } catch { throw LetheError(.corrupt, "\(error)", at: k) }
            try await store.put(k, sink.bytes, precondition: .matches(version: head.version))
            try await deleteChecksumSidecar(of: k)
            cdcSize[p] = Int64(sink.bytes.count)
            result.rewrittenChangeData.append(k)
        }
        return cdcSize
    }

    /// A commit to replace: its version, key, new bytes and the object version it was read at.
    struct CommitScrub: Sendable { var v: Int64; var key: String; var bytes: [UInt8]; var version: String }

    /// What the commits say: the ones to replace and the version ranges the deleted files were live in.
    struct CommitScan {
        var scrubs: [CommitScrub] = []
        var liveRanges: [ClosedRange<Int64>] = []
        /// The first commit read that adds each of the paths.
        var firstAdded: [String: Int64] = [:]
    }

    /// Reads the commits that may name an affected file or hold a value, notes when each of
    /// `victims` was live, and rewrites their statistics, change data sizes and commitInfo.
    /// `first`: the oldest commit retained (`versions` may be a subset of the log).
    func scanCommits(
        _ versions: [Int64], first: Int64?, paths: Set<String>, victims: Set<String>, changeData: [String: [Int64]],
        cdcSize: [String: Int64], subject: SubjectValues
    ) async throws -> CommitScan {
        let read = try await commitsMentioning(versions, paths: paths, changeData: changeData, subject: subject)
        var scan = CommitScan()
        var live = LiveSpans(first: first)
        for (v, bytes) in zip(versions, read) {
            guard let bytes else { continue }
            let name = Self.commitName(v)
            let actions = try parseCommit(bytes.bytes, name: name)
            live.observe(actions, at: v, victims: victims)
            for case .add(let f) in actions where paths.contains(f.path) && scan.firstAdded[f.path] == nil { scan.firstAdded[f.path] = v }
            guard let rewritten = Self.scrubbedCommit(actions, paths: paths, subject: subject, cdcSize: cdcSize) else { continue }
            scan.scrubs.append(CommitScrub(v: v, key: logKey(name), bytes: Self.commitBytes(rewritten), version: bytes.version))
        }
        scan.liveRanges = live.ranges
        return scan
    }

    /// The bytes of each commit in `versions` that names an affected file or holds a value, with
    /// the store version they were read at (what its replacement is conditioned on), nil for the
    /// others (a superset: the fields are then compared as values); several at a time.
    func commitsMentioning(
        _ versions: [Int64], paths: Set<String>, changeData: [String: [Int64]],
        subject: SubjectValues
    ) async throws -> [(bytes: [UInt8], version: String)?] {
        let base = { (p: String) in Array((p.split(separator: "/").last.map(String.init) ?? p).utf8) }
        let prefilter = NeedleSet(paths.map(base) + changeData.keys.map(base) + subject.allValues.map { Array($0.utf8) })
        return try await boundedMap(versions, limit: 8) { [self] v -> (bytes: [UInt8], version: String)? in
            let name = Self.commitName(v)
            let bytes: [UInt8]
            let head: ObjectInfo
            do {
                guard let h = try await store.head(logKey(name)) else { throw LetheError(.notFound, "no object", at: logKey(name)) }
                head = h
                bytes = try await store.read(logKey(name), range: nil, ifVersion: h.version)
            } catch let e as LetheError where e.code == .notFound {
                throw DeltaError.corrupt(root, "commit \(v) is missing", file: name)
            }
            return prefilter.containsAny(bytes) ? (bytes, head.version) : nil
        }
    }

    /// The versions each deleted file was live in (under any deletion vector of it), followed
    /// over the commits in order.
    struct LiveSpans {
        let first: Int64?
        var since: [String: Int64] = [:]
        var key: [String: LogicalFileKey] = [:]
        var ranges: [ClosedRange<Int64>] = []

        init(first: Int64?) { self.first = first }

        mutating func observe(_ actions: [DeltaAction], at v: Int64, victims: Set<String>) {
            var ending: Set<String> = []
            for case .remove(let r) in actions where victims.contains(r.path) {
                if key[r.path] == nil || key[r.path] == r.logicalKey {
                    if since[r.path] == nil { since[r.path] = first ?? v }
                    key[r.path] = nil
                    ending.insert(r.path)
                }
            }
            for case .add(let f) in actions where victims.contains(f.path) {
                if since[f.path] == nil { since[f.path] = v }
                key[f.path] = f.logicalKey
                ending.remove(f.path)
            }
            for p in ending.sorted() {
                if let from = since[p], from <= v - 1 { ranges.append(from...(v - 1)) }
                since[p] = nil
            }
        }
    }

    /// A commit's actions with the statistics of affected files bounds-free, the sizes of
    /// rewritten change data files set and a commitInfo naming a value scrubbed; nil when no
    /// action is one of those.
    static func scrubbedCommit(
        _ actions: [DeltaAction], paths: Set<String>, subject: SubjectValues,
        cdcSize: [String: Int64]
    ) -> [DeltaAction]? {
        var changed = false
        var rewritten: [DeltaAction] = []
        for a in actions {
            if let scrubbed = statsScrubbed(a, paths: paths, subject: subject) {
                changed = true
                rewritten.append(scrubbed)
                continue
            }
            switch a {
            case .cdc(var c) where cdcSize[c.path] != nil:
                if c.raw["stats"] != nil || c.raw["size"]?.int != cdcSize[c.path] {
                    c.raw["stats"] = nil
                    c.raw["size"] = .int(cdcSize[c.path]!)
                    c.size = cdcSize[c.path]!
                    changed = true
                }
                rewritten.append(.cdc(c))
            case .commitInfo(var info) where !subject.commitInfoHits(info).isEmpty:
                info["operationParameters"] = .object(["predicate": .string("[scrubbed by Lethe: named an erased subject]")])
                if info["userMetadata"] != nil { info["userMetadata"] = .string("[scrubbed by Lethe]") }
                rewritten.append(.commitInfo(info))
                changed = true
            default:
                rewritten.append(a)
            }
        }
        return changed ? rewritten : nil
    }

    /// An `add` or `remove` with statistics, of one of `paths` or whose statistics hold one of the
    /// subject's values, with bounds-free statistics; nil for any other action.
    static func statsScrubbed(_ a: DeltaAction, paths: Set<String>, subject: SubjectValues) -> DeltaAction? {
        switch a {
        case .add(var f) where f.stats != nil && (paths.contains(f.path) || !subject.fileActionHits(f.raw).isEmpty):
            f.raw["stats"] = .string(Self.boundsFree(f.stats!))
            f.stats = f.raw["stats"]?.string
            return .add(f)
        case .remove(var r) where r.raw["stats"]?.string != nil && (paths.contains(r.path) || !subject.fileActionHits(r.raw).isEmpty):
            r.raw["stats"] = .string(Self.boundsFree(r.raw["stats"]!.string!))
            return .remove(r)
        default:
            return nil
        }
    }

    /// A log file to replace (compare-and-swap on the store version it was read at): a scrubbed
    /// commit (`commit`: its version), a checkpoint file or sidecar (`reported`: listed in
    /// `rewrittenCheckpoints`), or `_last_checkpoint`.
    struct LogRewrite: Sendable {
        var key: String
        var bytes: [UInt8]
        var version: String
        var commit: Int64? = nil
        var reported = false
    }

    /// The `victims` the log does not reach now (a writer may have restored one; those go to
    /// `keptReachable`), as keys: the files to delete.
    func stillUnreachable(_ victims: Set<String>, result: inout DeltaVacuumResult) async throws -> [String] {
        let stillReachable = Set(try await snapshot().files.keys.map(key(forLogPath:)))
        var doomed: [String] = []
        for p in victims.sorted() {
            let k = key(forLogPath: p)
            if stillReachable.contains(k) { result.keptReachable.append(p) } else { doomed.append(k) }
        }
        return doomed
    }

    /// Deletes `doomed` (with their checksum sidecars), then commits VACUUM END. END's bytes are
    /// written and made durable while the files are deleted; END enters the log (linked at the next
    /// free version, then its folder synced) only once every delete has returned, durable (the
    /// store syncs the folders), and `meanwhile` has: the log never says a vacuum ended whose files
    /// a crash could bring back. Another writer taking END's version first: END is committed at the
    /// next free one.
    ///
    /// `meanwhile(end)` runs beside the deletes once END's bytes are written (`end`; nil when END could
    /// not be written, which then fails the vacuum after it): the vacuum publishes its scrubbed log
    /// copies there, in a pass that makes END durable too. A throw from it ends the vacuum without END.
    func deleteAndCommitVacuumEnd(
        _ doomed: [String], _ result: DeltaVacuumResult, now: Int64, inCommitTimestamps ict: Bool,
        meanwhile: (_ end: (any ObjectWriteStream)?) async throws -> Void = { _ in }
    ) async throws {
        async let gone: Void = deleteWithSidecars(doomed)
        var writer: (any ObjectWriteStream)? = nil
        var unwritten: (any Error)? = nil
        do {
            let info = Self.vacuumEndInfo(result, now: now)
            let version = (try await latestVersion() ?? -1) + 1
            let bytes = Self.commitBytes([.commitInfo(try await stamped(info, version: version, now: now, enabled: ict))])
            writer = try await store.openWrite(logKey(Self.commitName(version)), precondition: .absent, durability: .deferred)
            try await writer?.write(bytes)
        } catch {
            if let w = writer { await w.abort() }
            writer = nil
            unwritten = error
        }
        do {
            try await meanwhile(writer)
            if let unwritten { throw unwritten }
        } catch {
            if let w = writer { await w.abort() }
            try? await gone
            throw error
        }
        guard let writer else { return }
        var linked = false
        do {
            try await store.makeDurable([writer])  // nothing more when `meanwhile` made it durable
            try await gone
            _ = try await store.commit([writer])
            linked = true
        } catch let e as LetheError where e.code == .conflict {
            await writer.abort()  // version taken by another writer: the loop below takes the next
        } catch {
            await writer.abort()
            throw error
        }
        if !linked {
            try await gone
            try await commitVacuumEnd(result, now: now, inCommitTimestamps: ict)
        }
    }

    /// Deletes `keys` (one folder sync per folder), then their checksum sidecars.
    func deleteWithSidecars(_ keys: [String]) async throws {
        try await store.delete(keys)
        _ = try await boundedMap(keys, limit: 8) { [self] k in try await deleteChecksumSidecar(of: k) }
    }

    /// True when the log already holds a VACUUM START of Lethe's with no VACUUM END after it: an
    /// earlier attempt (this run resumed, or a failed run retried) that did not finish, whose
    /// START this vacuum completes. Looks back through the newest commits only.
    /// `snap`: the commitInfo of the versions it replayed is taken from it instead of reading them again.
    /// `known`: up to its version, only the commits it names are read (none when it names none).
    func hasOpenVacuumStart(_ snap: Snapshot? = nil, known: LetheVacuumCommits? = nil, latest listed: Int64? = nil) async throws -> Bool {
        var newest = listed
        if newest == nil { newest = try await latestVersion() }
        guard let latest = newest else { return false }
        func decision(_ infos: [[String: JSONValue]]) -> Bool? {
            for c in infos where (c["engineInfo"]?.string ?? "").hasPrefix("Lethe/") {
                if c["operation"]?.string == "VACUUM END" { return false }
                if c["operation"]?.string == "VACUUM START" { return true }
            }
            return nil
        }
        func infos(_ actions: [DeltaAction]) -> [[String: JSONValue]] {
            actions.compactMap { if case .commitInfo(let c) = $0 { return c } else { return nil } }
        }
        let lowest = max(0, latest - 199)
        // Only a commit whose bytes name Lethe can hold Lethe's commitInfo: the others are not parsed.
        let lethe = NeedleSet([Array("Lethe".utf8)])
        var v = latest
        while v >= lowest {
            if let snap, v <= snap.version, v > (snap.checkpoint?.version ?? -1) {
                if let d = decision(snap.commitInfos[v].map { [$0] } ?? []) { return d }
                v -= 1
                continue
            }
            if let known, v <= known.through {
                // The caller's record of the log: only the commits it names can be Lethe's START or END, newest first.
                for w in known.versions.filter({ $0 >= lowest && $0 <= v }).sorted(by: >) {
                    guard let bytes = try? await store.read(logKey(Self.commitName(w))),
                        let actions = try? parseCommit(bytes, name: Self.commitName(w))
                    else { return false }
                    if let d = decision(infos(actions)) { return d }
                }
                return false
            }
            // Commits the snapshot does not hold: a window at a time, newest first, several read at once.
            let window = Array(stride(from: v, through: max(lowest, v - 31, (known?.through ?? -1) + 1), by: -1))
            let read = try await boundedMap(window, limit: 8) { [self] w -> [UInt8]? in
                try? await store.read(logKey(Self.commitName(w)))
            }
            for (w, bytes) in zip(window, read) {
                guard let bytes else { return false }
                guard lethe.containsAny(bytes) else { continue }
                guard let actions = try? parseCommit(bytes, name: Self.commitName(w)) else { return false }
                if let d = decision(infos(actions)) { return d }
            }
            v = window.last! - 1
        }
        return false
    }

    /// What scrubbing the log's other copies of file statistics changes (`planLogCopies`): the
    /// files to replace, and the files to remove, in order.
    struct LogCopiesPlan: Sendable {
        /// Checkpoint files and sidecars rewritten without the statistics, then `_last_checkpoint`
        /// with its size following them.
        var rewrites: [LogRewrite] = []
        /// Names under `_delta_log` to remove; `checkpoint`: reported in `removedCheckpoints`, else
        /// in `removedLogFiles`.
        var removals: [(name: String, checkpoint: Bool)] = []
    }

    /// The other copies of file statistics in the log: checkpoints (with their sidecars),
    /// version checksums, log compactions and `_last_checkpoint`, for the deleted `paths` and
    /// the subject's values; read, and what to replace and remove planned (nothing is changed:
    /// `vacuumTargeted` replaces the files with the scrubbed commits, then `removeLogCopies`).
    /// `v2Checkpoints`: the table has the `v2Checkpoint` feature, so a classic-named checkpoint may
    /// name sidecars (without it only a UUID-named one can, and the others are not read twice to find none).
    func planLogCopies(
        _ listing: DeltaLogListing, paths: Set<String>, subject: SubjectValues, v2Checkpoints: Bool = true,
        checkpointsFrom floor: Int64? = nil, knownDirty: (Int64) -> Bool = { _ in false }
    ) async throws -> LogCopiesPlan {
        var plan = LogCopiesPlan()
        let replaysWithoutCheckpoints = listing.versions.first == 0
        let basenames = paths.map { Array(($0.split(separator: "/").last.map(String.init) ?? $0).utf8) }
        let mentionsPaths = NeedleSet(basenames)
        // Checkpoints: each of their files (and a V2 checkpoint's sidecars).
        var removedNames: Set<String> = []
        var rewrittenVersions: Set<Int64> = []
        var rewrittenSize: [String: Int64] = [:]
        func remove(_ cp: DeltaLogListing.Checkpoint, sidecars: [String]) async throws {
            for name in cp.names + sidecars where !removedNames.contains(name) {
                guard try await store.head(logKey(name)) != nil else { continue }
                removedNames.insert(name)
                plan.removals.append((name, true))
            }
        }
        // With the JSON log from version 0, the dirty checkpoints go, except the newest, which is
        // scrubbed: readers (and Lethe's next snapshot) start from it instead of replaying every commit.
        let newest = listing.checkpoints.map(\.version).max()
        for cp in listing.checkpoints where cp.version >= (floor ?? Int64.min) {
            let keep = !replaysWithoutCheckpoints || cp.version == newest
            if replaysWithoutCheckpoints && !keep && knownDirty(cp.version) {
                // Removed unread (sidecars named by file only: a V2 checkpoint's are read).
                var sidecars: [String] = []
                if cp.kind == .uuid || (cp.kind == .classic && v2Checkpoints) {
                    for name in cp.names { sidecars += (try? await sidecarNames(of: name)) ?? [] }
                }
                try await remove(cp, sidecars: sidecars)
                continue
            }
            var sidecars: [String] = []
            var dirty: [(name: String, version: String, scrubbed: [UInt8])] = []
            do {
                if cp.kind == .uuid || (cp.kind == .classic && v2Checkpoints) {
                    for name in cp.names { sidecars += try await sidecarNames(of: name) }
                }
                // Sidecars first: a rewritten sidecar changes size, which the checkpoint's `sidecar` action records.
                for name in sidecars where !removedNames.contains(name) {
                    guard let head = try await store.head(logKey(name)) else { continue }
                    if let scrubbed = try await scrubbedCopy(name, paths: paths, subject: subject, mentions: mentionsPaths, sidecarSizes: [:]) {
                        dirty.append((name, head.version, scrubbed))
                    }
                }
                let sizes = Dictionary(uniqueKeysWithValues: dirty.map { ($0.name, Int64($0.scrubbed.count)) })
                for name in cp.names where !removedNames.contains(name) {
                    guard let head = try await store.head(logKey(name)) else { continue }
                    if let scrubbed = try await scrubbedCopy(name, paths: paths, subject: subject, mentions: mentionsPaths, sidecarSizes: sizes) {
                        dirty.append((name, head.version, scrubbed))
                    }
                }
            } catch let e as LetheError where e.code == .corrupt && replaysWithoutCheckpoints && knownDirty(cp.version) {
                // The newest, unreadable, and known to list a deleted file: removed (the log replays without it).
                try await remove(cp, sidecars: sidecars)
                continue
            }
            guard !dirty.isEmpty else { continue }
            if !keep {
                // The JSON log from version 0 replays without it: the whole checkpoint goes.
                try await remove(cp, sidecars: sidecars)
            } else {
                for d in dirty {
                    plan.rewrites.append(LogRewrite(key: logKey(d.name), bytes: d.scrubbed, version: d.version, reported: true))
                    rewrittenSize[d.name] = Int64(d.scrubbed.count)
                }
                rewrittenVersions.insert(cp.version)
            }
        }
        // `_last_checkpoint`: gone when the checkpoint it names is; else its size in bytes follows a rewrite.
        if listing.hasLastCheckpoint, let head = try await store.head(logKey("_last_checkpoint")),
            let pointer = try? JSONValue.parse(try await store.read(logKey("_last_checkpoint"))), var o = pointer.object
        {
            let v = pointer["version"]?.int
            let named = listing.checkpoints.filter { $0.version == v }
            let left = named.filter { !$0.names.contains(where: removedNames.contains) }
            if !removedNames.isEmpty && left.isEmpty {
                plan.removals.append(("_last_checkpoint", true))
            } else if let cp = left.first, rewrittenVersions.contains(cp.version) {
                var total: Int64 = 0
                for n in cp.names {
                    if let size = rewrittenSize[n] { total += size } else { total += try await store.head(logKey(n))?.size ?? 0 }
                }
                if o["sizeInBytes"] != nil { o["sizeInBytes"] = .int(total) }
                o["checksum"] = nil
                o["v2Checkpoint"] = nil
                plan.rewrites.append(
                    LogRewrite(key: logKey("_last_checkpoint"), bytes: Array(JSONValue.object(o).encodedText.utf8), version: head.version))
            }
        }
        // Version checksums and log compactions: optional, removed when they hold the statistics or a value.
        for name in listing.checksums.keys.sorted().map({ listing.checksums[$0]! }) + listing.compactions {
            guard let bytes = try? await store.read(logKey(name)) else { continue }
            let stale = !basenames.isEmpty && mentionsPaths.containsAny(bytes)
            if try stale || !residueFields(bytes, name: name, subject: subject).isEmpty {
                plan.removals.append((name, false))
            }
        }
        return plan
    }

    /// Removes the log files `planLogCopies` planned to remove (each with its checksum sidecar), in order.
    func removeLogCopies(_ removals: [(name: String, checkpoint: Bool)], result: inout DeltaVacuumResult) async throws {
        for (name, checkpoint) in removals {
            try await store.delete(logKey(name))
            try await deleteChecksumSidecar(of: logKey(name))
            if checkpoint { result.removedCheckpoints.append(logKey(name)) } else { result.removedLogFiles.append(logKey(name)) }
        }
    }

    /// A checkpoint or sidecar file (by name under `_delta_log`) without the statistics bounds of
    /// `paths` and of the subject's values, with the sizes of rewritten sidecars it names set
    /// (`sidecarSizes`, by name under `_delta_log`); nil when nothing changes.
    func scrubbedCopy(
        _ name: String, paths: Set<String>, subject: SubjectValues, mentions: NeedleSet,
        sidecarSizes: [String: Int64]
    ) async throws -> [UInt8]? {
        let bytes = try await store.read(logKey(name))
        let mentioned = !paths.isEmpty && mentions.containsAny(bytes)
        let hits = try residueFields(bytes, name: name, subject: subject)
        guard mentioned || !hits.isEmpty || !sidecarSizes.isEmpty else { return nil }
        if name.hasSuffix(".parquet") {
            return try CheckpointReader.scrubbed(bytes, name: name, table: root, paths: paths, subject: subject, sidecarSizes: sidecarSizes)
        }
        let actions = try parseCommit(bytes, name: name)
        let rewritten = actions.map { a -> DeltaAction in
            if let scrubbed = Self.statsScrubbed(a, paths: paths, subject: subject) { return scrubbed }
            switch a {
            case .other("sidecar", var sc):
                if let p = sc["path"]?.string, let size = sidecarSizes[Self.sidecarName(p)], case .object(var o) = sc {
                    o["sizeInBytes"] = .int(size)
                    sc = .object(o)
                }
                return .other("sidecar", sc)
            default: return a
            }
        }
        return rewritten == actions ? nil : Self.commitBytes(rewritten)
    }

    /// The sidecar files (names under `_delta_log`) a V2 checkpoint file names.
    func sidecarNames(of checkpoint: String) async throws -> [String] {
        let bytes = try await store.read(logKey(checkpoint))
        let actions: [DeltaAction]
        if checkpoint.hasSuffix(".json") {
            actions = try parseCommit(bytes, name: checkpoint)
        } else {
            actions = try CheckpointReader.actions(bytes, name: checkpoint, table: root).actions
        }
        return actions.compactMap { a in
            if case .other("sidecar", let s) = a, let p = s["path"]?.string { return Self.sidecarName(p) }
            return nil
        }
    }

    /// Statistics without bounds: only the record count survives.
    static func boundsFree(_ stats: String) -> String {
        guard let j = try? JSONValue.parse(Array(stats.utf8)), let n = j["numRecords"] else { return "{}" }
        return JSONValue.object(["numRecords": n]).encodedText
    }

    static func merge(_ rs: [ClosedRange<Int64>]) -> [ClosedRange<Int64>] {
        var out: [ClosedRange<Int64>] = []
        for r in rs.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, r.lowerBound <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }
}

extension DeltaTable {
    /// The table's `delta.deletedFileRetentionDuration` in hours (default 168: one week).
    public func configuredRetentionHours(_ s: Snapshot) -> Double {
        guard let text = s.metadata.configuration["delta.deletedFileRetentionDuration"] else { return 168 }
        // "interval 7 days", "interval 12 hours", "interval 30 minutes"
        let parts = text.lowercased().split(separator: " ").map(String.init)
        guard parts.count >= 3, parts[0] == "interval", let n = Double(parts[1]) else { return 168 }
        switch parts[2] {
        case let u where u.hasPrefix("week"): return n * 168
        case let u where u.hasPrefix("day"): return n * 24
        case let u where u.hasPrefix("hour"): return n
        case let u where u.hasPrefix("minute"): return n / 60
        case let u where u.hasPrefix("second"): return n / 3600
        default: return 168
        }
    }

    /// Standard vacuum: deletes every data or change-data file under the table that
    /// the latest version does not reference and that was removed (or, for files the
    /// log never named, last modified) more than `retainHours` ago. The log and hidden
    /// files are never touched. With `dryRun`, only lists what it would delete.
    public func vacuumStandard(retainHours: Double, now: Int64, dryRun: Bool) async throws -> [String] {
        let s = try await snapshot()
        let cutoff = now - Int64(retainHours * 3_600_000)
        var live = Set(s.files.keys.map { key(forLogPath: $0) })
        // Deletion vector files of live files are part of the table.
        for add in s.files.values {
            if let dv = try DeletionVectorDescriptor(add, table: root), let k = try dv.fileKey(in: self) { live.insert(k) }
        }
        var removedAt: [String: Int64] = [:]
        for (p, r) in s.tombstones { removedAt[key(forLogPath: p)] = r.deletionTimestamp ?? 0 }
        var victims: [String] = []
        let prefix = root.isEmpty ? "" : root + "/"
        for o in try await store.list(prefix: root) {
            let rel = String(o.key.dropFirst(prefix.count))
            if rel.hasPrefix("_delta_log/") || rel.split(separator: "/").contains(where: { ($0.hasPrefix("_") && $0 != "_change_data") || $0.hasPrefix(".") }) {
                continue
            }
            if live.contains(o.key) { continue }
            let when = removedAt[o.key] ?? o.modifiedNanos / 1_000_000
            if when < cutoff { victims.append(o.key) }
        }
        guard !dryRun, !victims.isEmpty else { return victims }
        let ict = s.metadata.inCommitTimestamps
        try await commitNext(
            [
                "timestamp": .int(now), "operation": .string("VACUUM START"), "engineInfo": .string("Lethe/0.1"),
                "operationParameters": .object([
                    "retentionCheckEnabled": .bool(true), "specifiedRetentionMillis": .int(Int64(retainHours * 3_600_000)),
                    "defaultRetentionMillis": .int(Int64(configuredRetentionHours(s) * 3_600_000)),
                ]),
                "operationMetrics": .object(["numFilesToDelete": .int(Int64(victims.count))]),
            ], now: now, inCommitTimestamps: ict)
        try await store.delete(victims)
        try await commitNext(
            [
                "timestamp": .int(now), "operation": .string("VACUUM END"), "engineInfo": .string("Lethe/0.1"),
                "operationParameters": .object(["status": .string("COMPLETED")]),
                "operationMetrics": .object(["numDeletedFiles": .int(Int64(victims.count))]),
            ], now: now, inCommitTimestamps: ict)
        return victims
    }
}
