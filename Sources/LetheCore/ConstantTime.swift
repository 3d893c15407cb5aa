/// True when `a` and `b` are equal, in a time that depends only on their lengths (token, session and
/// signature checks: no early exit at the first differing byte).
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var d: UInt8 = 0
    for i in 0..<a.count { d |= a[i] ^ b[i] }
    return d == 0
}
