import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Small helpers shared by the benchmark programs (`lethe-bench`, `delta-bench`).

/// Seconds on the monotonic clock.
public func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// An integer with thousands separators: 1,234,567.
public func grouped(_ n: Int64) -> String {
    let s = String(n.magnitude)
    var out = ""
    for (i, c) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

public func grouped(_ n: Int) -> String { grouped(Int64(n)) }

/// Prints a line at once (stdout of a redirected run is otherwise block-buffered).
public func say(_ s: String) {
    FileHandle.standardOutput.write(Data((s + "\n").utf8))
}
