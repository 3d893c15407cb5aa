import Foundation
import LetheCatalog
import LetheCore
import PostgresNIO

/// Index backfill items (`lethe index --distribute`): rows of `index_items`, claimed as journal
/// steps are (`FOR UPDATE SKIP LOCKED`, leases on the database's clock, an epoch every claim bumps).
extension PostgresWorkQueue: IndexItemQueue {
    func enqueueIndexItems(_ items: [IndexItem]) async throws {
        guard !items.isEmpty else { return }
        _ = try await store.transaction("cannot enqueue index items") { tx in
            let s = (tx as! PGTransaction).session
            for item in items {
                let payload = String(decoding: try JSONEncoder().encode(item), as: UTF8.self)
                try s.exec(
                    .sql(
                        """
                        INSERT INTO index_items(batch, ordinal, dataset, item, state) VALUES ($1, $2, $3, $4, 'pending')
                        ON CONFLICT (batch, ordinal) DO NOTHING
                        """
                    ) {
                        $0.append(item.batch); $0.append(item.ordinal); $0.append(item.dataset); $0.append(payload)
                    })
            }
        }
    }

    func claimIndexItem(_ worker: WorkerID, ttl: Duration) async throws -> IndexLease? {
        let secs = Self.seconds(ttl)
        // The subquery locks one claimable row (a row leased or ended meanwhile fails the recheck
        // under its lock and is skipped); the outer UPDATE repeats the conditions, so it can never
        // lease a row that is not claimable, whatever plan the server picks.
        return try await store.transaction("cannot claim an index item") { tx -> IndexLease? in
            let rows = try (tx as! PGTransaction).session.query(
                .sql(
                    """
                    UPDATE index_items SET lease_owner = $1, lease_until = now() + make_interval(secs => $2::float8),
                        lease_epoch = lease_epoch + 1, attempts = attempts + 1
                    WHERE (batch, ordinal) = (
                        SELECT batch, ordinal FROM index_items
                        WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < now())
                        ORDER BY batch, ordinal LIMIT 1 FOR UPDATE SKIP LOCKED)
                      AND state = 'pending' AND (lease_until IS NULL OR lease_until < now())
                    RETURNING item, lease_epoch, attempts
                    """
                ) {
                    $0.append(worker.raw); $0.append(secs)
                }
            ).rows
            guard let row = rows.first else { return nil }
            let r = PGRow(row)
            let item = try JSONDecoder().decode(IndexItem.self, from: Data(try r.str(0).utf8))
            return IndexLease(item: item, owner: worker, epoch: try r.int(1), attempts: Int(try r.int(2)))
        }
    }

    func renewIndexItem(_ lease: IndexLease, ttl: Duration) async throws -> Bool {
        let secs = Self.seconds(ttl)
        return try await store.transaction("cannot renew an index item's lease") { tx -> Bool in
            let s = (tx as! PGTransaction).session
            try s.exec(.sql("UPDATE workers SET heartbeat_at = now() WHERE id = $1") { $0.append(lease.owner.raw) })
            let renewed = try s.exec(
                .sql(
                    """
                    UPDATE index_items SET lease_until = now() + make_interval(secs => $1::float8)
                    WHERE batch = $2 AND ordinal = $3 AND lease_owner = $4 AND lease_epoch = $5 AND state = 'pending'
                    """
                ) {
                    $0.append(secs); $0.append(lease.item.batch); $0.append(lease.item.ordinal); $0.append(lease.owner.raw)
                    $0.append(lease.epoch)
                })
            if renewed == 1 { return true }
            // A renewal that waited for this lease's own end (its row lock) finds the item done by
            // this holder: not a lost lease (the holder's report stands).
            return try !s.query(
                .sql(
                    """
                    SELECT 1 FROM index_items
                    WHERE batch = $1 AND ordinal = $2 AND lease_owner = $3 AND lease_epoch = $4 AND state = 'done' AND done_by = $3
                    """
                ) {
                    $0.append(lease.item.batch); $0.append(lease.item.ordinal); $0.append(lease.owner.raw); $0.append(lease.epoch)
                }
            ).rows.isEmpty
        }
    }

    func releaseIndexItem(_ lease: IndexLease) async throws {
        _ = try await store.transaction("cannot release an index item") { tx in
            try (tx as! PGTransaction).session.exec(
                .sql(
                    """
                    UPDATE index_items SET lease_owner = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0)
                    WHERE batch = $1 AND ordinal = $2 AND lease_owner = $3 AND lease_epoch = $4 AND state = 'pending'
                    """
                ) {
                    $0.append(lease.item.batch); $0.append(lease.item.ordinal); $0.append(lease.owner.raw); $0.append(lease.epoch)
                })
        }
    }

    func indexBatch(_ batch: String) async throws -> IndexBatchStatus {
        try await store.transaction("cannot read index batch \(batch)") { tx -> IndexBatchStatus in
            let rows = try (tx as! PGTransaction).session.query(
                .sql("SELECT state, report FROM index_items WHERE batch = $1 ORDER BY ordinal") { $0.append(batch) }
            ).rows
            var status = IndexBatchStatus(pending: 0, done: 0, reports: [])
            for row in rows {
                let r = PGRow(row)
                if try r.str(0) == "pending" {
                    status.pending += 1
                } else {
                    status.done += 1
                    if let rep = try r.optStr(1) { status.reports.append(rep) }
                }
            }
            return status
        }
    }

    /// Migration 3: the index backfill items.
    static let indexItemsMigration = """
        CREATE TABLE index_items(
            batch text COLLATE "C" NOT NULL,
            ordinal bigint NOT NULL,
            dataset text COLLATE "C" NOT NULL,
            item text NOT NULL,
            state text NOT NULL,
            report text,
            attempts bigint NOT NULL DEFAULT 0,
            lease_owner text,
            lease_until timestamptz,
            lease_epoch bigint NOT NULL DEFAULT 0,
            done_by text,
            PRIMARY KEY (batch, ordinal)
        );
        CREATE INDEX index_items_claimable ON index_items(batch, ordinal) WHERE state = 'pending'
        """
}

extension PGJournalWriter {
    func finishIndexItem(_ lease: IndexLease, report: String) throws -> Bool {
        let item = lease.item
        // One completer at a time per batch and dataset: the last one sees every other done.
        try s.exec(.sql("SELECT pg_advisory_xact_lock(hashtext($1))") { $0.append("lethe-index:\(item.batch):\(item.dataset)") })
        let n = try s.exec(
            .sql(
                """
                UPDATE index_items SET state = 'done', report = $5, done_by = $3, lease_until = NULL
                WHERE batch = $1 AND ordinal = $2 AND lease_owner = $3 AND lease_epoch = $4 AND state = 'pending'
                """
            ) {
                $0.append(item.batch); $0.append(item.ordinal); $0.append(lease.owner.raw); $0.append(lease.epoch); $0.append(report)
            })
        guard n == 1 else {
            throw LetheError(
                .conflict,
                "index item \(item.batch)#\(item.ordinal): the lease of worker \(lease.owner) (epoch \(lease.epoch)) was lost: another worker holds the item")
        }
        let left = try PGRow(
            s.query(
                .sql("SELECT count(*)::bigint FROM index_items WHERE batch = $1 AND dataset = $2 AND state = 'pending'") {
                    $0.append(item.batch); $0.append(item.dataset)
                }
            ).rows[0]
        ).int(0)
        return left == 0
    }
}
