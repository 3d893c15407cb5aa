import Yams
import Foundation

/// One dataset of the lake, as declared in `lethe.yaml`.
public struct DatasetSpec: Sendable, Hashable {
    public enum Format: String, Sendable, CaseIterable { case jsonl, csv, parquet, delta }
    public var name: String
    /// Prefix under the lake root; every object below it belongs to the dataset.
    public var path: String
    public var format: Format
    /// The subject field(s); nil for an aggregate that holds no subject column.
    public var subject: SubjectSpec?
    public var pii: [FieldPath]
    public var derivedFrom: [String]
    /// Command that rebuilds the dataset after its upstream datasets are erased (run in the config's folder).
    public var rebuild: String?
    /// CSV field separator.
    public var delimiter: UInt8
    /// The line of the dataset's entry in the config file.
    public var line: Int
    /// `deletes_from: change_feed`: another tool deletes subjects from this (Delta) table;
    /// `lethe run` reads its change feed and erases them everywhere else.
    public var deletesFromChangeFeed = false
    /// `normalize: nfc`: subject values (and a request's subject, matched here) are NFC-normalised before keying.
    public var normalization: Normalization = .none

    public init(name: String, path: String, format: Format, subject: SubjectSpec?, pii: [FieldPath] = [],
                derivedFrom: [String] = [], rebuild: String? = nil, delimiter: UInt8 = UInt8(ascii: ","), line: Int = 0) {
        self.name = name; self.path = path; self.format = format; self.subject = subject; self.pii = pii
        self.derivedFrom = derivedFrom; self.rebuild = rebuild; self.delimiter = delimiter; self.line = line
    }
}

/// Where the lake lives.
public enum LakeLocation: Sendable, Hashable {
    case folder(String)
    case s3(bucket: String, prefix: String, endpoint: String?, region: String?)
}

/// Where Lethe keeps its state.
public enum StateLocation: Sendable, Hashable {
    case folder(String)
    case postgres(url: String)
}

/// `lethe.yaml`, parsed and checked.
public struct LakeConfig: Sendable {
    /// The config file's path, for messages.
    public var file: String
    /// The config file's folder: relative paths and rebuild commands start here.
    public var baseDir: String
    public var lake: LakeLocation
    public var state: StateLocation
    /// Datasets in lineage order: every dataset after the ones it derives from.
    public var datasets: [DatasetSpec]
    /// How a composite subject is typed on the command line (`tenant|user`).
    public var compositeSeparator: Character

    public func dataset(named n: String) -> DatasetSpec? { datasets.first { $0.name == n } }

    /// Datasets reached from `names` through lineage (the datasets derived from them, transitively), in lineage order, excluding `names`.
    public func downstream(of names: Set<String>) -> [DatasetSpec] {
        var reached = names
        var out: [DatasetSpec] = []
        for d in datasets where !names.contains(d.name) {
            if d.derivedFrom.contains(where: reached.contains) {
                reached.insert(d.name)
                out.append(d)
            }
        }
        return out
    }

    static let topKeys: Set<String> = ["lake", "state", "datasets", "s3", "composite_separator", "version"]
    static let datasetKeys: Set<String> = ["name", "path", "format", "subject", "pii", "derived_from", "rebuild", "delimiter", "description", "deletes_from", "normalize"]

    /// A dataset `path` as a key prefix under the lake: relative, with no empty, `.` or `..` component
    /// (so that it can neither leave the lake nor name the same objects as another spelling).
    /// A trailing `/` is dropped. Calls `problem` with the reason otherwise; nil for an empty path.
    static func datasetPath(_ text: String, problem: (String) throws -> Void) throws -> String? {
        var p = text
        if p.hasPrefix("/") {
            try problem("`\(text)` is absolute: write it relative to the lake root (`lake`)")
        }
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        if p.isEmpty { return nil }
        for c in p.split(separator: "/", omittingEmptySubsequences: false) {
            switch c {
            case "": try problem("`\(text)` has an empty component (`//`)")
            case ".": try problem("`\(text)` has a `.` component: write the folder once, without `./`")
            case "..": try problem("`\(text)` has a `..` component: a dataset lies inside the lake")
            default: break
            }
        }
        return p
    }

    /// Loads and checks a config file. Errors name the file and line, with code `.badInput`.
    public static func load(path: String) throws -> LakeConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LetheError(.badInput, "cannot read the config file (run `lethe init` to write one, or pass --config)", at: path)
        }
        let abs = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let base = (abs as NSString).deletingLastPathComponent
        return try parse(String(decoding: data, as: UTF8.self), file: path, baseDir: base)
    }

    /// Parses config text; `baseDir` resolves relative paths.
    public static func parse(_ text: String, file: String, baseDir: String) throws -> LakeConfig {
        func err(_ msg: String, _ node: Node?) -> LetheError {
            LetheError(.badInput, msg, at: node?.mark.map { "\(file):\($0.line)" } ?? file)
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let e as YamlError {
            throw LetheError(.badInput, "not valid YAML: \(e)", at: file)
        }
        guard let root, let top = root.mapping else { throw err("the config must be a mapping with `lake`, `state` and `datasets`", root) }

        func str(_ n: Node, _ what: String) throws -> String {
            guard let s = n.scalar?.string else { throw err("`\(what)` must be a string", n) }
            return s
        }
        func strList(_ n: Node, _ what: String) throws -> [String] {
            if let s = n.scalar { return s.string.isEmpty ? [] : [s.string] }
            guard let seq = n.sequence else { throw err("`\(what)` must be a string or a list of strings", n) }
            return try seq.map { try str($0, what) }
        }
        func resolve(_ p: String) -> String {
            if p.hasPrefix("/") { return p }
            var r = baseDir + "/" + p
            if r.hasSuffix("/.") { r.removeLast(2) }
            return (r as NSString).standardizingPath
        }

        var lakeNode: Node?, stateNode: Node?, datasetsNode: Node?, s3Node: Node?
        var sep: Character = "|"
        for (k, v) in top {
            guard let key = k.scalar?.string else { throw err("keys must be strings", k) }
            switch key {
            case "lake": lakeNode = v
            case "state": stateNode = v
            case "datasets": datasetsNode = v
            case "s3": s3Node = v
            case "version": break
            case "composite_separator":
                let s = try str(v, key)
                guard s.count == 1, let c = s.first else { throw err("`composite_separator` must be one character", v) }
                sep = c
            default:
                throw err("unknown key `\(key)` (known: \(topKeys.sorted().joined(separator: ", ")))", k)
            }
        }
        guard let lakeNode else { throw err("missing key `lake` (a folder, or s3://bucket/prefix)", root) }
        let lakeText = try str(lakeNode, "lake")
        let lake: LakeLocation
        if lakeText.hasPrefix("s3://") {
            let rest = lakeText.dropFirst(5)
            let parts = rest.split(separator: "/", maxSplits: 1)
            guard let bucket = parts.first, !bucket.isEmpty else { throw err("`lake` s3:// URL needs a bucket", lakeNode) }
            var endpoint: String?, region: String?
            if let s3 = s3Node?.mapping {
                for (k, v) in s3 {
                    switch k.scalar?.string {
                    case "endpoint": endpoint = try str(v, "s3.endpoint")
                    case "region": region = try str(v, "s3.region")
                    default: throw err("unknown key `\(k.scalar?.string ?? "?")` in `s3` (known: endpoint, region)", k)
                    }
                }
            }
            lake = .s3(bucket: String(bucket), prefix: parts.count > 1 ? String(parts[1]) : "", endpoint: endpoint, region: region)
        } else {
            guard !lakeText.isEmpty else { throw err("`lake` is empty", lakeNode) }
            lake = .folder(resolve(lakeText))
        }
        let stateText = try stateNode.map { try str($0, "state") } ?? ".lethe"
        let state: StateLocation = stateText.hasPrefix("postgres://") || stateText.hasPrefix("postgresql://")
            ? .postgres(url: stateText) : .folder(resolve(stateText))

        /// A dotted field path with no empty component (`a..b`, `.a`, `a.` name no field).
        func fieldPath(_ text: String, _ node: Node, _ key: String) throws -> FieldPath {
            let p = FieldPath(text)
            guard !p.components.contains(where: \.isEmpty), !text.hasSuffix("\\") || text.hasSuffix("\\\\") else {
                throw err("`\(key)`: `\(text)` is not a field path (an empty part between dots; write a literal dot as `\\.`)", node)
            }
            return p
        }
        guard let datasetsNode else { throw err("missing key `datasets` (a list of datasets)", root) }
        guard let seq = datasetsNode.sequence else { throw err("`datasets` must be a list", datasetsNode) }
        var specs: [DatasetSpec] = []
        var nodes: [String: Node] = [:]
        for item in seq {
            guard let m = item.mapping else { throw err("each dataset must be a mapping with name, path, format", item) }
            var name: String?, pathText: String?, pathNode: Node?, format: DatasetSpec.Format?, subject: SubjectSpec?
            var pii: [FieldPath] = [], derived: [String] = [], rebuild: String?, delim = UInt8(ascii: ",")
            var deletesFrom: Node?
            var normalization = Normalization.none
            for (k, v) in m {
                guard let key = k.scalar?.string else { throw err("keys must be strings", k) }
                switch key {
                case "name": name = try str(v, key)
                case "path": pathText = try str(v, key); pathNode = v
                case "format":
                    let f = try str(v, key)
                    guard let fm = DatasetSpec.Format(rawValue: f) else {
                        throw err("unknown format `\(f)` (known: \(DatasetSpec.Format.allCases.map(\.rawValue).joined(separator: ", ")))", v)
                    }
                    format = fm
                case "subject":
                    let fields = try strList(v, key)
                    guard !fields.isEmpty, !fields.contains(where: \.isEmpty) else { throw err("`subject` is empty", v) }
                    let paths = try fields.map { try fieldPath($0, v, key) }
                    for (i, p) in paths.enumerated() where paths[..<i].contains(p) {
                        throw err("`subject` names the field `\(fields[i])` twice (a composite subject lists each field once)", v)
                    }
                    subject = SubjectSpec(fields: paths)
                case "pii": pii = try strList(v, key).map { try fieldPath($0, v, key) }
                case "derived_from": derived = try strList(v, key)
                case "rebuild": rebuild = try str(v, key)
                case "delimiter":
                    let d = try str(v, key)
                    let u = Array((d == "\\t" ? "\t" : d).utf8)
                    guard u.count == 1, u[0] != UInt8(ascii: "\"") else { throw err("`delimiter` must be one ASCII character other than a quote", v) }
                    delim = u[0]
                case "description": break
                case "normalize":
                    let n = try str(v, key)
                    guard let m = Normalization(rawValue: n) else {
                        throw err("`normalize` must be `nfc` (Unicode canonical composition) or `none`", v)
                    }
                    normalization = m
                case "deletes_from":
                    guard try str(v, key) == "change_feed" else {
                        throw err("`deletes_from` must be `change_feed` (another tool deletes from this Delta table; Lethe follows its change feed)", v)
                    }
                    deletesFrom = v
                default:
                    throw err("unknown key `\(key)` in a dataset (known: \(datasetKeys.sorted().joined(separator: ", ")))", k)
                }
            }
            guard let name, !name.isEmpty else { throw err("a dataset is missing `name`", item) }
            guard let pathText else { throw err("dataset `\(name)` is missing `path`", item) }
            guard let format else { throw err("dataset `\(name)` is missing `format` (jsonl, csv, parquet, delta)", item) }
            if subject == nil && rebuild == nil {
                throw err("dataset `\(name)` needs `subject` (the field that names the person) or, for an aggregate without one, `rebuild`", item)
            }
            if rebuild != nil && derived.isEmpty {
                throw err("dataset `\(name)` has `rebuild` but no `derived_from`: a rebuild runs after its upstream datasets are erased", item)
            }
            if let deletesFrom, format != .delta || subject == nil {
                throw err("dataset `\(name)`: `deletes_from: change_feed` needs `format: delta` and a `subject` (the change feed names whom another tool deleted)", deletesFrom)
            }
            if nodes[name] != nil { throw err("dataset `\(name)` is declared twice", item) }
            nodes[name] = item
            guard let p = try datasetPath(pathText, problem: { throw err("dataset `\(name)`: `path` \($0)", pathNode ?? item) }) else {
                throw err("dataset `\(name)`: `path` is empty: name a folder under the lake", pathNode ?? item)
            }
            var spec = DatasetSpec(name: name, path: p, format: format, subject: subject, pii: pii,
                                   derivedFrom: derived, rebuild: rebuild, delimiter: delim, line: item.mark?.line ?? 0)
            spec.deletesFromChangeFeed = deletesFrom != nil
            spec.normalization = normalization
            if normalization != .none && subject == nil {
                throw err("dataset `\(name)`: `normalize` needs a `subject`", item)
            }
            specs.append(spec)
        }
        for d in specs {
            for up in d.derivedFrom where nodes[up] == nil {
                throw err("dataset `\(d.name)`: `derived_from` names `\(up)`, which is not a dataset", nodes[d.name])
            }
            for o in specs where o.name != d.name {
                if d.path == o.path || d.path.hasPrefix(o.path + "/") || o.path.isEmpty {
                    throw err("dataset `\(d.name)`: path `\(d.path)` lies inside dataset `\(o.name)` (`\(o.path)`); each object belongs to one dataset", nodes[d.name])
                }
            }
        }
        // A state folder inside a dataset would be indexed (and erased from) as lake objects.
        if case .folder(let lakeRoot) = lake, case .folder(let stateDir) = state {
            let s = (stateDir as NSString).standardizingPath
            for d in specs {
                let root = ((lakeRoot + "/" + d.path) as NSString).standardizingPath
                if s == root || s.hasPrefix(root + "/") {
                    throw err("`state` `\(stateText)` lies inside dataset `\(d.name)` (`\(d.path)`): Lethe would read its own database and keys as lake objects; keep the state folder outside every dataset", stateNode ?? lakeNode)
                }
            }
        }
        // Lineage order (Kahn), keeping declaration order among equals; a cycle is an error.
        var ordered: [DatasetSpec] = []
        var placed = Set<String>()
        var remaining = specs
        while !remaining.isEmpty {
            guard let i = remaining.firstIndex(where: { $0.derivedFrom.allSatisfy(placed.contains) }) else {
                let names = remaining.map(\.name).sorted().joined(separator: " → ")
                throw err("`derived_from` forms a cycle among: \(names)", nodes[remaining[0].name])
            }
            let d = remaining.remove(at: i)
            placed.insert(d.name)
            ordered.append(d)
        }
        return LakeConfig(file: file, baseDir: baseDir, lake: lake, state: state, datasets: ordered, compositeSeparator: sep)
    }
}
