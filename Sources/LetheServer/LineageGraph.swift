/// A request's plan drawn as a graph (server-rendered SVG, no script): one box per dataset of the plan,
/// an arrow from each dataset to those derived from it. Layered layout: a dataset's column is the
/// length of the longest lineage path reaching it from a dataset the plan derives nothing from; boxes
/// keep the plan's order within a column.
public enum LineageGraph {
    public struct Node: Sendable, Equatable {
        public var name: String
        /// `holds`, `derived`, `rebuild` or `may_hold` (the plan's role).
        public var role: String
        public var derivedFrom: [String]
        public var rows: Int64
        public var objects: Int
        public init(name: String, role: String, derivedFrom: [String], rows: Int64, objects: Int) {
            self.name = name; self.role = role; self.derivedFrom = derivedFrom; self.rows = rows; self.objects = objects
        }
    }

    /// A node's place: column and row (0-based).
    public struct Place: Sendable, Equatable {
        public var column: Int
        public var row: Int
        public init(column: Int, row: Int) { self.column = column; self.row = row }
    }

    static let boxW = 180, boxH = 46, gapX = 70, gapY = 18, margin = 10

    /// Each node's column and row, by name. Edges from datasets outside the plan are ignored; a cycle
    /// (which lineage checks refuse) cannot loop: depths stop growing after `nodes.count` passes.
    public static func layout(_ nodes: [Node]) -> [String: Place] {
        let names = Set(nodes.map(\.name))
        var depth: [String: Int] = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, 0) })
        for _ in 0..<nodes.count {
            var changed = false
            for n in nodes {
                for up in n.derivedFrom where names.contains(up) && up != n.name {
                    let d = (depth[up] ?? 0) + 1
                    if d > depth[n.name]! && d < nodes.count {
                        depth[n.name] = d
                        changed = true
                    }
                }
            }
            if !changed { break }
        }
        var rows: [Int: Int] = [:]
        var out: [String: Place] = [:]
        for n in nodes where out[n.name] == nil {
            let c = depth[n.name]!
            out[n.name] = Place(column: c, row: rows[c, default: 0])
            rows[c, default: 0] += 1
        }
        return out
    }

    /// The fill of a box by the dataset's role.
    static func fill(_ role: String) -> String {
        switch role {
        case "holds": return "#dbe8f6"
        case "derived": return "#e6f2e1"
        case "rebuild": return "#f6ecd9"
        default: return "#f6dede"  // may_hold: the index cannot vouch for it
        }
    }

    /// The graph as an SVG element.
    public static func svg(_ nodes: [Node]) -> String {
        let places = layout(nodes)
        let columns = (places.values.map(\.column).max() ?? 0) + 1
        let rows = (places.values.map(\.row).max() ?? 0) + 1
        let width = margin * 2 + columns * boxW + (columns - 1) * gapX
        let height = margin * 2 + rows * boxH + (rows - 1) * gapY
        func origin(_ p: Place) -> (x: Int, y: Int) { (margin + p.column * (boxW + gapX), margin + p.row * (boxH + gapY)) }
        var s =
            #"<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img" width="\#(width)" height="\#(height)" viewBox="0 0 \#(width) \#(height)" aria-label="Lineage of the plan">"#
        s += "<title>Lineage of the plan</title>"
        s +=
            #"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="rgb(85,85,85)"/></marker></defs>"#
        for n in nodes {
            guard let to = places[n.name] else { continue }
            for up in n.derivedFrom {
                guard let from = places[up], up != n.name else { continue }
                let a = origin(from), b = origin(to)
                let x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2
                let mid = (x1 + x2) / 2
                s +=
                    #"<path class="edge" d="M \#(x1) \#(y1) C \#(mid) \#(y1), \#(mid) \#(y2), \#(x2) \#(y2)" fill="none" stroke="rgb(85,85,85)" stroke-width="1.5" marker-end="url(#arrow)"><title>\#(HTML.escape(up)) → \#(HTML.escape(n.name))</title></path>"#
            }
        }
        for n in nodes {
            guard let p = places[n.name] else { continue }
            let o = origin(p)
            s += #"<g class="node" data-dataset="\#(HTML.escape(n.name))">"#
            s += #"<rect x="\#(o.x)" y="\#(o.y)" width="\#(boxW)" height="\#(boxH)" rx="6" fill="\#(fill(n.role))" stroke="rgb(68,68,85)"/>"#
            s += #"<text x="\#(o.x + 8)" y="\#(o.y + 18)" font-size="13" font-weight="bold" fill="rgb(17,17,17)">\#(HTML.escape(clip(n.name, 22)))</text>"#
            let plural = n.objects == 1 ? "" : "s", rowsPlural = n.rows == 1 ? "" : "s"
            s +=
                #"<text x="\#(o.x + 8)" y="\#(o.y + 36)" font-size="11" fill="rgb(51,51,51)">\#(HTML.escape(n.role)) · \#(n.rows) row\#(rowsPlural) · \#(n.objects) object\#(plural)</text>"#
            s += "<title>\(HTML.escape(n.name))</title></g>"
        }
        return s + "</svg>"
    }

    static func clip(_ s: String, _ n: Int) -> String { s.count <= n ? s : String(s.prefix(n - 1)) + "…" }
}
