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
    /// `deliver` in order of i, on the calling thread, as soon as it and those before it are done: no
    /// barrier between batches. The calling thread works too (it claims the next i whenever the result
    /// it must deliver next is not ready), `tasks - 1` helpers run on the global queue, and no i is
    /// claimed more than `window` ahead of the next one to deliver (memory bounded by the window).
    /// When `deliver` throws, the helpers finish the work they hold, claim no more, and are waited for.
    static func inOrder<T: Sendable>(
        _ count: Int, tasks: Int, window: Int, _ work: @Sendable (Int) -> T, deliver: (Int, T) throws -> Void
    ) rethrows {
        guard count > 0 else { return }
        let helpers = min(max(1, tasks), count) - 1
        if helpers == 0 {
            for i in 0..<count { try deliver(i, work(i)) }
            return
        }
        let window = max(1, window)
        try withoutActuallyEscaping(work) { work in
            let pipe = Pipeline<T>(count: count, window: window)
            let group = DispatchGroup()
            for _ in 0..<helpers {
                DispatchQueue.global().async(group: group) {
                    while let i = pipe.claim(waiting: true) { pipe.store(i, work(i)) }
                }
            }
            defer {
                pipe.stop(helpers: helpers)
                group.wait()
            }
            var next = 0
            while next < count {
                if let r = pipe.take(next) {
                    try deliver(next, r)
                    next += 1
                    pipe.delivered(next)
                } else if let i = pipe.claim(waiting: false) {
                    pipe.store(i, work(i))
                } else {
                    pipe.waitForProgress()
                }
            }
        }
    }
}

/// The shared state of `GroupKeys.inOrder`: the next index to claim, the results not yet delivered,
/// how far delivery got. `progress` is signalled once per result stored (the delivering thread waits
/// on it), `space` once per result delivered and at the end (helpers wait on it for the window to move).
private final class Pipeline<T: Sendable>: Sendable {
    struct State {
        var next = 0
        var delivered = 0
        var stopped = false
        var results: [T?]
    }
    let count: Int
    let window: Int
    let state: Mutex<State>
    let progress = DispatchSemaphore(value: 0)
    let space = DispatchSemaphore(value: 0)

    init(count: Int, window: Int) {
        self.count = count
        self.window = window
        state = Mutex(State(results: [T?](repeating: nil, count: count)))
    }

    /// The next index to work on; nil when all are claimed or the pipeline stopped. With `waiting`, waits
    /// while the window is full; without, returns nil then.
    func claim(waiting: Bool) -> Int? {
        while true {
            let (i, full): (Int?, Bool) = state.withLock { s in
                if s.stopped || s.next >= count { return (nil, false) }
                if s.next >= s.delivered + window { return (nil, true) }
                defer { s.next += 1 }
                return (s.next, false)
            }
            if let i { return i }
            guard full, waiting else { return nil }
            space.wait()
        }
    }

    func store(_ i: Int, _ r: T) {
        state.withLock { $0.results[i] = r }
        progress.signal()
    }

    /// Result `i`, removed, if it is done.
    func take(_ i: Int) -> T? {
        state.withLock { s in
            defer { s.results[i] = nil }
            return s.results[i]
        }
    }

    /// `n` results delivered: the window moves by one.
    func delivered(_ n: Int) {
        state.withLock { $0.delivered = n }
        space.signal()
    }

    func waitForProgress() { progress.wait() }

    /// No more claims; wakes every helper waiting for the window.
    func stop(helpers: Int) {
        state.withLock { $0.stopped = true }
        for _ in 0..<helpers { space.signal() }
    }
}

extension ParquetFormat {
    /// Tasks of the default parallel keying: one per core, at most 8.
    public static let defaultKeyingTasks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))

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
        _ visit: (Int64, SubjectKey) throws -> Void
    ) throws -> Int64 {
        var withoutSubject: Int64 = 0
        let hasher = keyer.hasher, normalization = keyer.normalization, counter = keyedValues
        let affixed = KeyedValues(keyer: keyer, prefix: prefix, suffix: suffix, counter: keyedValues)
        try GroupKeys.inOrder(groups.count, tasks: keyingTasks, window: 4 * keyingTasks) { i in
            GroupKeys.key(
                file, column: column, group: groups[i], form: form, hasher: hasher, normalization: normalization, prefix: prefix,
                suffix: suffix, counter: counter)
        } deliver: { i, r in
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
