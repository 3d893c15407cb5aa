import LetheCore
import LetheCatalog
import DeltaLake
import LetheStorage

/// Where a subject's rows are in a Delta table, with how they are reachable.
extension DeltaDatasetDriver {
    /// Live rows apart from rows only time travel reaches (removed files, rows deleted by a
    /// deletion vector) and change data. The table's snapshot is read once.
    func rowRoles(_ lethe: Lethe) async throws -> RowRoles {
        let t = table(lethe)
        let s = try await t.snapshot()
        var roles: [String: DeltaFileRole] = [:]
        for (o, r) in try await files(lethe, snapshot: s) { roles[o.key] = r }
        var live: [String: AddFile] = [:]
        for (path, add) in s.files { live[t.key(forLogPath: path)] = add }
        let name = spec.name
        return RowRoles { [roles, live] p in
            let role = roles[p.object.key] ?? .history
            guard role == .live, let add = live[p.object.key], add.deletionVector != nil else {
                return [LocatedRows(dataset: name, object: p.object.key, role: role, rows: p.rows)]
            }
            let deleted = Set(try await t.deletedRows(add))
            let kept = p.rows.filter { !deleted.contains($0) }, gone = p.rows.filter { deleted.contains($0) }
            var out: [LocatedRows] = []
            if !kept.isEmpty { out.append(LocatedRows(dataset: name, object: p.object.key, role: .live, rows: kept)) }
            if !gone.isEmpty { out.append(LocatedRows(dataset: name, object: p.object.key, role: .history, rows: gone)) }
            return out
        }
    }
}
