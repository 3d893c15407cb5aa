import Dispatch
import Foundation
import LetheCore
import Parquet
import Synchronization

/// One row group's subject column keyed on its own, by one task of a parallel keying
/// (`ParquetFormat.keys` over a whole object): the chunk's dictionary keyed whole, without the
/// keyer's cache, and for each row the key (or the value of a page in another encoding) it names.
struct GroupKeys: Sendable {
    /// The row group's first row: slot i is row `firstRow + i` (the rows visited, in order).
    var firstRow: Int64 = 0
    /// Per row visited: -1 null; 0 ..< `entryKeys.count` a dictionary entry; -2 - i: value i of
    /// `plain` (a PLAIN or DELTA page's value, keyed by the merge through the keyer's cache).
    var slots: [Int32] = []
    /// The key of each dictionary entry (with the subject's constant parts, normalised as the keyer does).
    var entryKeys: [SubjectKey] = []
    /// Whether a row names each entry (for `unreferenced`).
    var referenced: [Bool] = []
    /// The chunk had a dictionary page.
    var hasDictionary = false
    /// Values of pages in other encodings, in row order.
    var plain = ByteArrayValues()
    /// What stopped the scan after the rows of `slots` (the merge visits those rows first, as a serial scan does).
    var error: (any Error)?

    /// Keys row group `group`'s `column`: what one task of a parallel keying does. Touches no shared
    /// state but `counter` (a lock): the dictionary is keyed with `hasher` alone.
    static func key(
        _ file: ParquetFile, column: Int, group: Int, form: CanonicalText.Form?, hasher: SubjectHasher,
        normalization: Normalization, prefix: [UInt8], suffix: [UInt8], counter: KeyedRowCounter?
    ) -> GroupKeys {
        var out = GroupKeys()
        let rows = Int(file.rowGroups[group].numRows)
        // The dictionary closure escapes: what it captures is checked for exclusive access at run time,
        // on every access, so the slots and PLAIN values are not shared with it.
        var slots: [Int32] = [], plain = ByteArrayValues()
        slots.reserveCapacity(rows)
        var dictionary: ByteArrayValues?
        do {
            try file.scanColumnSlots(column, rowGroup: group, form: form, dictionary: { dictionary = $0 }, slots: &slots) { _, value in
                defer { plain.append(value) }
                return Int32(truncatingIfNeeded: -2 - plain.count)
            }
        } catch {
            out.error = error
        }
        if let dictionary {
            counter?.add(dictionary.count)
            out.hasDictionary = true
            out.entryKeys = Self.keys(dictionary, hasher: hasher, normalization: normalization, prefix: prefix, suffix: suffix)
        }
        let entries = out.entryKeys.count
        if let bad = slots.firstIndex(where: { $0 >= entries }) {
            // An entry beyond the dictionary (the scan renders entries, so it would have refused it first).
            let entry = slots[bad]
            slots.removeSubrange(bad...)
            out.error = ParquetError(.corruptPage, "a row names dictionary entry \(entry) of \(entries)", file: file.name, rowGroup: group)
        }
        out.referenced = [Bool](repeating: false, count: entries)
        for s in slots where s >= 0 { out.referenced[Int(s)] = true }
        out.firstRow = file.rowGroupFirstRow[group]
        out.slots = slots
        out.plain = plain
        return out
    }

    /// The keys of a whole dictionary (entry i: `prefix + entries[i] + suffix`), two at a time.
    static func keys(
        _ entries: ByteArrayValues, hasher: SubjectHasher, normalization: Normalization, prefix: [UInt8], suffix: [UInt8]
    ) -> [SubjectKey] {
        if prefix.isEmpty && suffix.isEmpty {
            return entries.bytes.withUnsafeBytes { b in
                entries.offsets.withUnsafeBufferPointer { SubjectKeyer.uncachedKeys(hasher, normalization, bytes: b, offsets: $0) }
            }
        }
        var joined = ByteArrayValues()
        for i in 0..<entries.count { joined.append(prefix + entries[i] + suffix) }
        return joined.bytes.withUnsafeBytes { b in
            joined.offsets.withUnsafeBufferPointer { SubjectKeyer.uncachedKeys(hasher, normalization, bytes: b, offsets: $0) }
        }
    }

    /// Calls `work(i)` for each i in `0..<count` on up to `tasks` threads and hands each result to
    /// `deliver` in order of i, on the calling thread (`KeyingPipeline.drive`).
    static func inOrder<T: Sendable>(
        _ count: Int, tasks: Int, window: Int, ownThreads: Bool = false, _ work: @escaping @Sendable (Int) -> T,
        deliver: (Int, T) throws -> Void
    ) rethrows {
        try KeyingPipeline(count: count, tasks: tasks, window: window, available: count, ownThreads: ownThreads, work: work).drive(deliver)
    }
}

/// Work on indices `0..<count` (a row group each) done on up to `tasks` threads and delivered in order
/// on one: no barrier between batches. Helpers (`tasks - 1` at most, on the global queue) never block:
/// each claims the next index while there is one it may claim, then ends, and is started again
/// (`kick`) when more becomes claimable. An index may be claimed once its input is there (`arrived`:
/// the first n indices, as their bytes come from the store) and fewer than `window` indices after
/// the next one to deliver (memory bounded by the window). `drive` delivers, on the calling thread,
/// each result as soon as it and those before it are done, and works itself when the next result is
/// not ready; it returns (or throws what `deliver` throws) only once no helper holds an index.
/// Nothing ever waits for a helper that has not started (it may not get a thread while the callers
/// hold them all): only for an index a running helper claimed.
final class KeyingPipeline<T: Sendable>: Sendable {
    private struct State {
        var next = 0
        var delivered = 0
        var available: Int
        var stopped = false
        /// Helpers started and not ended (queued ones included).
        var running = 0
        /// Indices claimed by helpers whose results are not stored yet.
        var inFlight = 0
        var results: [T?]

        /// The indices that may be claimed now: `next..<end`.
        func end(_ count: Int, _ window: Int) -> Int { stopped ? next : min(count, delivered + window, available) }
    }
    let count: Int
    let window: Int
    let helpers: Int
    /// Tests: each helper on a thread of its own, so that helpers run however busy the global queue is.
    let ownThreads: Bool
    private let work: @Sendable (Int) -> T
    private let state: Mutex<State>
    /// Signalled once per result a helper stores: the delivering thread waits on it.
    private let progress = DispatchSemaphore(value: 0)

    init(count: Int, tasks: Int, window: Int, available: Int, ownThreads: Bool = false, work: @escaping @Sendable (Int) -> T) {
        self.ownThreads = ownThreads
        self.count = max(0, count)
        self.window = max(1, window)
        self.helpers = max(0, min(max(1, tasks), self.count) - 1)
        self.work = work
        state = Mutex(State(available: min(available, self.count), results: [T?](repeating: nil, count: self.count)))
    }

    /// The input of the first `n` indices is there: they may be claimed.
    func arrived(_ n: Int) {
        state.withLock { $0.available = max($0.available, min(n, count)) }
        kick()
    }

    /// Starts helpers for what may be claimed now, up to `helpers` running.
    private func kick() {
        let start = state.withLock { s -> Int in
            let n = min(helpers - s.running, s.end(count, window) - s.next)
            guard n > 0 else { return 0 }
            s.running += n
            return n
        }
        for _ in 0..<start {
            if ownThreads {
                Thread { [self] in help() }.start()
            } else {
                DispatchQueue.global().async { [self] in help() }
            }
        }
    }

    /// A helper: claims and works while it may, then ends (under the lock that `kick` checks, so
    /// that nothing claimable is left without a helper that could take it).
    private func help() {
        while true {
            let i = state.withLock { s -> Int? in
                guard s.next < s.end(count, window) else {
                    s.running -= 1
                    return nil
                }
                s.inFlight += 1
                defer { s.next += 1 }
                return s.next
            }
            guard let i else { return }
            let r = work(i)
            state.withLock { s in
                s.results[i] = r
                s.inFlight -= 1
            }
            progress.signal()
        }
    }

    /// No more claims; waits for the helpers to finish the indices they hold. Idempotent.
    func finish() {
        state.withLock { $0.stopped = true }
        while state.withLock({ $0.inFlight }) > 0 { progress.wait() }
    }

    /// Delivers every result in order on this thread (every input is there by now), working when the
    /// next result is not ready; stops the helpers and waits for them before it returns or throws.
    func drive(_ deliver: (Int, T) throws -> Void) rethrows {
        defer { finish() }
        arrived(count)
        var next = 0
        while next < count {
            let (ready, claimed) = state.withLock { s -> (T?, Int?) in
                if let r = s.results[next] {
                    s.results[next] = nil
                    return (r, nil)
                }
                guard s.next < s.end(count, window) else { return (nil, nil) }
                defer { s.next += 1 }
                return (nil, s.next)
            }
            if let ready {
                try deliver(next, ready)
                next += 1
                state.withLock { $0.delivered = next }
                kick()
            } else if let claimed {
                let r = work(claimed)
                state.withLock { $0.results[claimed] = r }
            } else {
                progress.wait()
            }
        }
    }
}

extension ParquetFormat {
    /// Tasks of the default parallel keying: one per core, at most 8.
    public static let defaultKeyingTasks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))

    /// The pipeline that keys `groups`' `column` (one row group an index, `GroupKeys.key`) on
    /// `keyingTasks` threads, the first `available` row groups' bytes there already (`arrived` for more).
    func groupKeying(
        _ file: ParquetFile, column: Int, groups: [Int], form: CanonicalText.Form?, keyer: SubjectKeyer, prefix: [UInt8], suffix: [UInt8],
        available: Int
    ) -> KeyingPipeline<GroupKeys> {
        let hasher = keyer.hasher, normalization = keyer.normalization, counter = keyedValues
        return KeyingPipeline(
            count: groups.count, tasks: keyingTasks, window: 4 * keyingTasks, available: available, ownThreads: helpersOnOwnThreads
        ) { i in
            GroupKeys.key(
                file, column: column, group: groups[i], form: form, hasher: hasher, normalization: normalization, prefix: prefix,
                suffix: suffix, counter: counter)
        }
    }

    /// Whether a full keying of `groups` runs on several threads: more than one task and one row
    /// group, and at least `parallelRowsMinimum` rows.
    func keysInParallel(_ file: ParquetFile, groups: [Int]) -> Bool {
        guard keyingTasks > 1, groups.count > 1 else { return false }
        return groups.reduce(Int64(0)) { $0 + file.rowGroups[$1].numRows } >= parallelRowsMinimum
    }

    /// A full keying of one column (the subject's other parts constant) with its row groups keyed on
    /// `keyingTasks` threads (`GroupKeys.key`: each dictionary keyed whole, no cache), the rows then
    /// visited in order on this thread, as the serial path visits them: the same rows, keys and
    /// unreferenced entries, in the same order, and a failing row group's rows up to its error. A
    /// value of a page in another encoding is keyed here, through the keyer's cache. Returns the rows
    /// without a subject.
    func keysInParallel(
        _ file: ParquetFile, column: Int, groups: [Int], form: CanonicalText.Form?, keyer: SubjectKeyer,
        prefix: [UInt8], suffix: [UInt8], unreferenced: ((_ rowGroup: Int, _ column: Int, SubjectKey) -> Void)?,
        prestarted: KeyingPipeline<GroupKeys>? = nil, _ visit: (Int64, SubjectKey) throws -> Void
    ) throws -> Int64 {
        var withoutSubject: Int64 = 0
        let affixed = KeyedValues(keyer: keyer, prefix: prefix, suffix: suffix, counter: keyedValues)
        let pipeline =
            prestarted
            ?? groupKeying(file, column: column, groups: groups, form: form, keyer: keyer, prefix: prefix, suffix: suffix, available: groups.count)
        try pipeline.drive { i, r in
            for (i, slot) in r.slots.enumerated() {
                let row = r.firstRow + Int64(i)
                if slot == -1 {
                    withoutSubject += 1
                    continue
                }
                keyedRows?.add()
                if slot >= 0 {
                    try visit(row, r.entryKeys[Int(slot)])
                } else {
                    let v = Int(-2 - slot)
                    try r.plain.bytes.withUnsafeBytes { b in
                        try visit(row, affixed.key(UnsafeRawBufferPointer(rebasing: b[r.plain.offsets[v]..<r.plain.offsets[v + 1]])))
                    }
                }
            }
            if let e = r.error { throw e }
            guard let unreferenced, r.hasDictionary, r.referenced.contains(false) else { return }
            // As the serial path: an entry whose value a referenced entry also holds adds nothing.
            let orphans = r.entryKeys.indices.filter { !r.referenced[$0] }.map { r.entryKeys[$0] }
            let prefixes = Set(orphans.map(\.prefix64))
            var copies: Set<SubjectKey> = []
            for e in r.entryKeys.indices where r.referenced[e] && prefixes.contains(r.entryKeys[e].prefix64) { copies.insert(r.entryKeys[e]) }
            for k in orphans where !copies.contains(k) { unreferenced(groups[i], column, k) }
        }
        return withoutSubject
    }
}

/// Byte ranges of a file that arrive while it is being read (a full keying's subject chunks, added as
/// the store returns them while the row groups whose chunks are there are keyed): a `SparseSource`
/// behind a lock. Reading a range that has not arrived is the same `.io` error as for a `SparseSource`.
final class ArrivingSource: ParquetSource {
    let size: Int64
    private let held: Mutex<SparseSource>

    init(_ source: SparseSource) {
        size = source.size
        held = Mutex(source)
    }

    func add(_ offset: Int64, _ bytes: [UInt8]) { held.withLock { $0.add(offset, bytes) } }

    func covers(_ range: Range<Int64>) -> Bool { held.withLock { $0.covers(range) } }

    func read(_ range: Range<Int64>) throws -> [UInt8] { try held.withLock { try $0.read(range) } }
}
