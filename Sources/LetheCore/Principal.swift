/// What a caller of the HTTP API may do (`lethe token create --role R`).
public enum Role: String, Sendable, CaseIterable, Codable {
    /// Files requests and reads its own.
    case requester
    /// Approves and rejects requests; reads all of them.
    case approver
    /// Reads the audit log and certificates.
    case auditor
    /// Reads the stream deletion set's changes.
    case stream
    /// Manages tokens and refreshes the index.
    case admin
}

/// Who is calling: a token's (or a verified JWT's) name and role. Four eyes is enforced on `name`:
/// the principal that filed a request can never approve it, whatever its role.
public struct Principal: Sendable, Hashable, Codable {
    public var name: String
    public var role: Role
    public init(name: String, role: Role) { self.name = name; self.role = role }
}
