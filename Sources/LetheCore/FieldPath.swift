/// A field named by exact path: `user.id` is the key `id` inside the object under
/// the top-level key `user`. For CSV only single-component paths (column names) apply.
public struct FieldPath: Hashable, Sendable, CustomStringConvertible {
    /// The path's components as UTF-8 bytes, outermost first.
    public let components: [[UInt8]]

    /// Parses a dotted path. A component may contain a literal dot written `\.`.
    public init(_ dotted: String) {
        var comps: [[UInt8]] = []
        var cur: [UInt8] = []
        var escape = false
        for b in dotted.utf8 {
            if escape { cur.append(b); escape = false; continue }
            if b == UInt8(ascii: "\\") { escape = true; continue }
            if b == UInt8(ascii: ".") { comps.append(cur); cur = []; continue }
            cur.append(b)
        }
        comps.append(cur)
        self.components = comps
    }

    public init(components: [[UInt8]]) { self.components = components }

    public var description: String {
        components.map { c in
            String(decoding: c, as: UTF8.self).replacingDots()
        }.joined(separator: ".")
    }
}

private extension String {
    func replacingDots() -> String {
        var s = ""
        for ch in self { if ch == "." { s += "\\." } else { s.append(ch) } }
        return s
    }
}

/// How a dataset names its subject: one field, or several for a composite subject
/// (the subject is then the parts' values joined by U+001F, in this order).
public struct SubjectSpec: Hashable, Sendable, CustomStringConvertible {
    public let fields: [FieldPath]
    public init(fields: [FieldPath]) {
        precondition(!fields.isEmpty)
        self.fields = fields
    }
    public init(_ field: String) { self.fields = [FieldPath(field)] }
    public var isComposite: Bool { fields.count > 1 }
    public var description: String { fields.map(\.description).joined(separator: ", ") }
}
