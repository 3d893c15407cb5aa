import Foundation

/// Server-rendered SVG bar charts for the dashboard (no script): requests filed per day, and the time
/// from filing to verified. Colours are presentation attributes (no inline style: the page's CSP has none).
public enum SVGChart {
    /// One bar: its label under the axis and its value.
    public struct Bar: Sendable, Equatable {
        public var label: String
        public var value: Int
        public init(_ label: String, _ value: Int) { self.label = label; self.value = value }
    }

    static let dayMillis: Int64 = 86_400_000

    /// Requests filed on each of the `days` UTC days ending with `now`'s (oldest first), labelled `MM-DD`.
    public static func perDay(filedAt times: [Int64], now: Int64, days: Int = 30) -> [Bar] {
        let today = floorDiv(now, dayMillis)
        let first = today - Int64(days) + 1
        var counts = [Int](repeating: 0, count: days)
        for t in times {
            let d = floorDiv(t, dayMillis)
            if d >= first && d <= today { counts[Int(d - first)] += 1 }
        }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "MM-dd"
        return (0..<days).map { i in
            Bar(f.string(from: Date(timeIntervalSince1970: Double((first + Int64(i)) * dayMillis) / 1000)), counts[i])
        }
    }

    /// The buckets of `timeToErasure`: upper bounds (ms, exclusive) and labels; the last is open.
    public static let erasureBuckets: [(upTo: Int64?, label: String)] = [
        (3_600_000, "< 1 h"), (21_600_000, "1–6 h"), (86_400_000, "6–24 h"), (259_200_000, "1–3 d"),
        (604_800_000, "3–7 d"), (1_209_600_000, "7–14 d"), (2_592_000_000, "14–30 d"), (nil, "> 30 d"),
    ]

    /// How many durations (ms from filing to verified) fall in each of `erasureBuckets`.
    public static func timeToErasure(_ durations: [Int64]) -> [Bar] {
        var counts = [Int](repeating: 0, count: erasureBuckets.count)
        for d in durations {
            let i = erasureBuckets.firstIndex { b in b.upTo.map { d < $0 } ?? true }!
            counts[i] += 1
        }
        return zip(erasureBuckets, counts).map { Bar($0.label, $1) }
    }

    /// A bar chart: `title` (also the accessible name), bars left to right, the y axis from 0 to the
    /// largest value (at least 1), at most `maxLabels` x labels (evenly spaced).
    public static func bars(_ bars: [Bar], title: String, width: Int = 640, height: Int = 220, maxLabels: Int = 10) -> String {
        let left = 40, right = 10, top = 24, bottom = 36
        let plotW = width - left - right, plotH = height - top - bottom
        let top0 = max(1, bars.map(\.value).max() ?? 0)
        let n = max(1, bars.count)
        let slot = Double(plotW) / Double(n)
        let barW = max(1, slot * 0.8)
        var s =
            #"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="\#(width)" height="\#(height)" viewBox="0 0 \#(width) \#(height)" aria-label="\#(HTML.escape(title))">"#
        s += "<title>\(HTML.escape(title))</title>"
        s += #"<text x="\#(left)" y="14" font-size="13" fill="rgb(34,34,34)">\#(HTML.escape(title))</text>"#
        // Axes and the top value.
        s += #"<line x1="\#(left)" y1="\#(top + plotH)" x2="\#(left + plotW)" y2="\#(top + plotH)" stroke="rgb(136,136,136)"/>"#
        s += #"<line x1="\#(left)" y1="\#(top)" x2="\#(left)" y2="\#(top + plotH)" stroke="rgb(136,136,136)"/>"#
        s += #"<text x="\#(left - 4)" y="\#(top + 4)" font-size="11" text-anchor="end" fill="rgb(68,68,68)">\#(top0)</text>"#
        s += #"<text x="\#(left - 4)" y="\#(top + plotH)" font-size="11" text-anchor="end" fill="rgb(68,68,68)">0</text>"#
        let every = max(1, Int((Double(bars.count) / Double(max(1, maxLabels))).rounded(.up)))
        for (i, b) in bars.enumerated() {
            let h = Double(plotH) * Double(b.value) / Double(top0)
            let x = Double(left) + slot * Double(i) + (slot - barW) / 2
            let y = Double(top + plotH) - h
            s += #"<rect class="bar" x="\#(fmt(x))" y="\#(fmt(y))" width="\#(fmt(barW))" height="\#(fmt(h))" fill="rgb(59,110,168)">"#
            s += "<title>\(HTML.escape(b.label)): \(b.value)</title></rect>"
            if i % every == 0 {
                let cx = Double(left) + slot * (Double(i) + 0.5)
                s += #"<text x="\#(fmt(cx))" y="\#(top + plotH + 14)" font-size="10" text-anchor="middle" fill="rgb(68,68,68)">\#(HTML.escape(b.label))</text>"#
            }
        }
        return s + "</svg>"
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
}
