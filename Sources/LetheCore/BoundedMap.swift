/// Runs `body` on every element with at most `limit` at a time; returns the results in
/// the elements' order. The first error cancels the rest and is rethrown.
public func boundedMap<T: Sendable, R: Sendable>(
    _ items: [T], limit: Int, _ body: @escaping @Sendable (T) async throws -> R
) async throws -> [R] {
    guard !items.isEmpty else { return [] }
    return try await withThrowingTaskGroup(of: (Int, R).self) { group in
        var results = [R?](repeating: nil, count: items.count)
        var next = 0
        func launch() {
            guard next < items.count else { return }
            let i = next, item = items[next]
            next += 1
            group.addTask { (i, try await body(item)) }
        }
        for _ in 0..<max(1, limit) { launch() }
        while let (i, r) = try await group.next() {
            results[i] = r
            launch()
        }
        return results.map { $0! }
    }
}
