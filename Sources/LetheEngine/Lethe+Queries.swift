public import LetheCore
public import LetheCatalog

// What the doors (the CLI, later the HTTP service) ask of the state, through the engine: they never
// call the state store themselves.

extension Lethe {
    /// Requests read at a time by listings (`requests`, `approve --all`, `verify --all`); task-local so
    /// that tests can read in small pages.
    @TaskLocal static var requestPage = 1_000

    /// Every request in filing order, optionally of one status, read a page at a time.
    public func requests(status: RequestStatus?) async throws -> [ErasureRequest] {
        var out: [ErasureRequest] = []
        try await forEachRequestPage(status: status) { out += $0 }
        return out
    }

    /// Calls `body` with each page of requests (filing order, optionally of one status) as it is read.
    func forEachRequestPage(status: RequestStatus?, _ body: ([ErasureRequest]) async throws -> Void) async throws {
        try await Self.forEachRequestPage(in: meta, status: status, body)
    }

    /// `forEachRequestPage` over a state store (for the engine's parts that hold the store, not a `Lethe`).
    static func forEachRequestPage(
        in state: any StateStore, status: RequestStatus?,
        _ body: ([ErasureRequest]) async throws -> Void
    ) async throws {
        var after: String?
        repeat {
            let page = try await state.requests.requests(status: status, after: after, limit: requestPage)
            if !page.items.isEmpty { try await body(page.items) }
            after = page.next
        } while after != nil
    }

    /// The requests `verify --all` examines: erased or verified ones, and failed ones that were
    /// verified before (filing order, read a page at a time; the verifier holds the store).
    static func verifiableRequests(in state: any StateStore) async throws -> [ErasureRequest] {
        var out: [ErasureRequest] = []
        try await forEachRequestPage(in: state, status: nil) { page in
            out += page.filter { $0.status == .erased || $0.status == .verified || ($0.status == .failed && $0.verification != nil) }
        }
        return out
    }

    /// The stream deletion set's changes since `since` (see `RequestReader.deletionTags`).
    public func deletionTags(since: Int64) async throws -> DeletionChanges {
        try await Self.deletionTags(in: meta, since: since)
    }

    // For doors that open a state without a lake (`filter`, `deletions`: `Runtime.openState`).

    /// The stream deletion set's changes since `since` in a state (see `RequestReader.deletionTags`).
    public static func deletionTags(in state: any StateStore, since: Int64) async throws -> DeletionChanges {
        try await state.requests.deletionTags(since: since)
    }

    /// How many requests filed before stream filtering hold their sealed subject but no stream tag
    /// yet (`backfillStreamTags` gives them one; a read-only door only counts them).
    public static func untaggedRequestCount(in state: any StateStore) async throws -> Int {
        try await state.requests.requestsWithoutStreamTag().filter { $0.sealedSubject != nil }.count
    }

    /// Gives memory a state store caches back to the system (after a large scan).
    public static func releaseMemory(of state: any StateStore) {
        state.releaseMemory()
    }
}
