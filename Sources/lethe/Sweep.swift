import ArgumentParser
import Foundation
import LetheCore
import LetheEngine

struct Sweep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Prove verified requests against the whole lake and Lethe's state, then destroy their raw ids.",
        discussion: """
            `lethe run` verifies each request in the datasets its plan and the index name, and relies on the \
            index for what it did not read. The sweep does not trust the index: it reads every object of every dataset with a \
            subject column (Delta: live, history and change data files, and every log file), every object key, hidden \
            files, and Lethe's own state, for the raw ids of every verified request not swept yet, in one pass.

            Per request: nothing found, or only mentions (the id inside another subject's record, e.g. `ref.user.id`: \
            reported, never erased) → `swept`: it stays verified, its sealed raw id is destroyed and the audit log says \
            so. The subject's own records, an object key, a hidden file, a Delta log file or the state still holding \
            it → the request fails again with what was found, the objects are indexed again, and the next `lethe run` \
            erases them. An object that cannot be read leaves the request unswept (named on stderr).

            `verified` proves what the run read and what the index vouches for; `swept` proves the whole lake and \
            the state, without the index. Raw ids not swept within `sweep.raw_id_days` (lethe.yaml, default 25) of \
            filing are destroyed anyway; a later sweep then matches the subject's records by key only.

            --dataset D sweeps one dataset (and the state); marks accumulate, and a request is swept once every \
            dataset with a subject column has been swept since its verification.

            Exit codes: 0 every request in scope swept (mentions allowed); 1 residue found, or something could not be \
            read; 2 bad usage (an unknown dataset). Run it nightly, e.g. from cron:
              17 3 * * *  cd /srv/lake && lethe sweep --json >> /var/log/lethe-sweep.jsonl
            """)
    @OptionGroup var global: Global
    @Option(help: "Only this dataset (marks accumulate across datasets).") var dataset: String?

    func run() async throws {
        try await guarded {
            let lethe = try global.open()
            let r = try await lethe.sweep(dataset: dataset, events: { e in if !global.json { err(e.message) } })
            for u in r.unreadable {
                err("lethe: \(u.dataset.isEmpty ? "" : u.dataset + ": ")\(u.object.isEmpty ? "(dataset)" : u.object): not read: \(u.issue ?? "unreadable")")
            }
            for q in r.requests where q.result == "residue" {
                for f in q.found where f.kind != "mention" {
                    err("lethe: \(q.id): \(f.kind) in \(f.dataset.isEmpty ? "" : f.dataset + ": ")\(f.object)\(f.rows > 0 ? " (\(f.rows) rows)" : "")")
                }
            }
            if global.json {
                out(ReportEncoder.text(r))
            } else {
                let counts = Dictionary(grouping: r.requests, by: \.result).mapValues(\.count)
                out(
                    "swept \(r.objects) object(s), \(r.bytes) bytes in \(r.datasets.count) dataset(s) and the state in \(String(format: "%.2f", r.seconds)) s (\(String(format: "%.2f", r.gbPerSecond)) GB/s)"
                )
                for q in r.requests {
                    let mentions = q.found.filter { $0.kind == "mention" }.count
                    out(
                        "\(q.id)  \(q.result)\(q.keyedOnly ? " (keyed only: raw id destroyed at its deadline)" : "")\(mentions > 0 ? "  \(mentions) mention(s) in other records" : "")"
                    )
                }
                if r.requests.isEmpty { out("no verified request waits for a sweep") }
                let order = ["swept", "partial", "residue", "incomplete"]
                let summary = order.compactMap { k in counts[k].map { "\($0) \(k)" } }
                if !summary.isEmpty { out(summary.joined(separator: ", ")) }
                if r.rawIDsDestroyedDeadline > 0 { out("\(r.rawIDsDestroyedDeadline) raw id(s) destroyed at their deadline") }
            }
            return r.clean ? 0 : 1
        }
    }
}
