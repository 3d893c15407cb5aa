import Testing

/// The description of the error `body` throws; records an issue (and returns "") when it throws nothing.
func thrown<R>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> R) async -> String {
    do {
        _ = try await body()
    } catch {
        return "\(error)"
    }
    Issue.record("expected an error", sourceLocation: sourceLocation)
    return ""
}

/// `thrown` for synchronous code.
func thrown<R>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> R) -> String {
    do {
        _ = try body()
    } catch {
        return "\(error)"
    }
    Issue.record("expected an error", sourceLocation: sourceLocation)
    return ""
}
