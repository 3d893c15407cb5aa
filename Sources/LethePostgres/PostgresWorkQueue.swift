public import LetheCatalog
import LetheCore
import PostgresNIO

/// The work queue of a PostgreSQL state (`WorkQueue`): the journal's pending steps, claimed with
/// `FOR UPDATE SKIP LOCKED` (concurrent claimers never wait for each other and never take the same
/// step), leased until a deadline on the database's clock, fenced by an epoch that every claim bumps.
struct PostgresWorkQueue: WorkQueue {
    let store: PostgresStateStore

    func register(_ worker: WorkerID) async throws {
        _ = try await store.transaction("cannot register worker \(worker)") { tx in
            try (tx as! PGTransaction).session.exec(
                .sql(
                    """
                    INSERT INTO workers(id, started_at, heartbeat_at) VALUES ($1, now(), now())
                    ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
                    """
                ) { $0.append(worker.raw) })
        }
    }

    func deregister(_ worker: WorkerID) async throws {
        _ = try await store.transaction("cannot deregister worker \(worker)") { tx in
            try (tx as! PGTransaction).session.exec(.sql("DELETE FROM workers WHERE id = $1") { $0.append(worker.raw) })
        }
    }

    func claim(_ worker: WorkerID, ttl: Duration) async throws -> Lease? {
        let secs = Self.seconds(ttl)
        return try await store.transaction("cannot claim a step") { tx -> Lease? in
            let s = (tx as! PGTransaction).session
            // The subquery locks one claimable row, skipping rows another claimer holds; the outer
            // UPDATE leases it. A row leased meanwhile fails the recheck under its lock and is skipped.
            let rows = try s.query(
                .sql(
                    """
                    UPDATE journal SET lease_owner = $1, lease_until = now() + make_interval(secs => $2::float8),
                        lease_epoch = lease_epoch + 1, attempts = attempts + 1
                    WHERE (job, ordinal) = (
                        SELECT j.job, j.ordinal FROM journal j
                        WHERE j.state = 'pending' AND (j.lease_until IS NULL OR j.lease_until < now())
                          AND NOT EXISTS (SELECT 1 FROM journal p WHERE p.job = j.job AND p.state = 'pending' AND p.wave < j.wave)
                        ORDER BY j.job, j.wave, j.ordinal
                        LIMIT 1 FOR UPDATE SKIP LOCKED)
                    RETURNING \(PostgresStateStore.stepColumns), lease_epoch
                    """
                ) {
                    $0.append(worker.raw); $0.append(secs)
                }
            ).rows
            guard let row = rows.first else { return nil }
            let r = PGRow(row)
            return Lease(step: try PostgresStateStore.step(r), owner: worker, epoch: try r.int(10))
        }
    }

    func renew(_ worker: WorkerID, leases: [Lease], ttl: Duration) async throws -> [Lease] {
        let secs = Self.seconds(ttl)
        return try await store.transaction("cannot renew the leases of worker \(worker)") { tx -> [Lease] in
            let s = (tx as! PGTransaction).session
            try s.exec(.sql("UPDATE workers SET heartbeat_at = now() WHERE id = $1") { $0.append(worker.raw) })
            var lost: [Lease] = []
            for l in leases {
                let n = try s.exec(
                    .sql(
                        """
                        UPDATE journal SET lease_until = now() + make_interval(secs => $1::float8)
                        WHERE job = $2 AND ordinal = $3 AND lease_owner = $4 AND lease_epoch = $5 AND state = 'pending'
                        """
                    ) {
                        $0.append(secs); $0.append(l.step.job); $0.append(l.step.ordinal); $0.append(l.owner.raw); $0.append(l.epoch)
                    })
                if n == 0 { lost.append(l) }
            }
            return lost
        }
    }

    func release(_ lease: Lease) async throws {
        _ = try await store.transaction("cannot release journal step \(lease.step.job)#\(lease.step.ordinal)") { tx in
            try (tx as! PGTransaction).session.exec(
                .sql(
                    """
                    UPDATE journal SET lease_owner = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0)
                    WHERE job = $1 AND ordinal = $2 AND lease_owner = $3 AND lease_epoch = $4 AND state = 'pending'
                    """
                ) {
                    $0.append(lease.step.job); $0.append(lease.step.ordinal); $0.append(lease.owner.raw); $0.append(lease.epoch)
                })
        }
    }

    func whileCoordinating<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T? {
        let name = "lethe:\(store.location.schema):coordinator"
        let session = try await store.threads.runIfActive { () throws -> PGSession in
            do {
                return PGSession(
                    connection: try store.connections.connect(), logger: store.connections.logger, location: store.location.description)
            } catch {
                throw store.wrap(error, "cannot take the coordinator lock")
            }
        }
        // The lock lives as long as this connection: closing it frees the lock (so does a killed process).
        defer { closeConnection(session.connection) }
        let got: Bool
        do {
            got = try await store.threads.runIfActive {
                try PGRow(session.query(.sql("SELECT pg_try_advisory_lock(hashtext($1))") { $0.append(name) }).rows[0]).bool(0)
            }
        } catch {
            throw store.wrap(error, "cannot take the coordinator lock")
        }
        guard got else { return nil }
        return try await body()
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Migration 2: the lease columns of the journal, each step's wave, and the workers.
    static let migration = """
        ALTER TABLE journal ADD COLUMN wave bigint NOT NULL GENERATED ALWAYS AS (
            CASE kind WHEN 'settle' THEN \(JournalStep.settleWave) WHEN 'rebuild' THEN 1 + ordinal ELSE 0 END) STORED;
        ALTER TABLE journal ADD COLUMN lease_owner text;
        ALTER TABLE journal ADD COLUMN lease_until timestamptz;
        ALTER TABLE journal ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0;
        ALTER TABLE journal ADD COLUMN done_by text;
        CREATE INDEX journal_claimable ON journal(job, wave, ordinal) WHERE state = 'pending';
        CREATE TABLE workers(
            id text COLLATE "C" PRIMARY KEY,
            started_at timestamptz NOT NULL,
            heartbeat_at timestamptz NOT NULL
        )
        """
}

extension PostgresStateStore {
    public var workQueue: (any WorkQueue)? { PostgresWorkQueue(store: self) }
}

extension PGJournalWriter {
    func holdLease(job: String, ordinal: Int64, owner: WorkerID, epoch: Int64) throws {
        let n = try s.exec(
            .sql(
                """
                UPDATE journal SET done_by = $3 WHERE job = $1 AND ordinal = $2 AND lease_owner = $3 AND lease_epoch = $4
                """
            ) {
                $0.append(job); $0.append(ordinal); $0.append(owner.raw); $0.append(epoch)
            })
        guard n == 1 else {
            throw LetheError(
                .conflict, "journal step \(job)#\(ordinal): the lease of worker \(owner) (epoch \(epoch)) was lost: another worker holds the step")
        }
    }
}
