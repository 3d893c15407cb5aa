import LetheCore
import LetheStorage
import LetheFormats
import LetheCatalog
import DeltaLake

/// How Lethe lists, reads, indexes and erases one kind of dataset: plain objects in a folder
/// (`ObjectDatasetDriver`), or a table behind a transaction log (`DeltaDatasetDriver`). The engine
/// asks the driver instead of branching on the format; `DatasetDrivers` is the only place that
/// knows which driver a format gets.
protocol DatasetDriver: Sendable {
    var spec: DatasetSpec { get }
    /// The record format that reads the dataset's objects (`Formats.named`).
    var formatName: String { get }
    /// The dataset keeps a transaction log: its files are reached through it (live, history, change
    /// data), `vacuum` applies, and verification reads the log too.
    var hasTransactionLog: Bool { get }
    /// One journal step erases the subjects from the whole dataset in one commit (else one step per object).
    var erasesInOneCommit: Bool { get }

    /// The options to read the dataset's subject, before anything is read from the lake.
    func baseOptions(_ subject: FormatOptions) -> FormatOptions
    /// The options to scan the dataset's objects for its subject, as the lake says now.
    func scanOptions(_ lethe: Lethe) async throws -> FormatOptions?
    /// What `index` scans (see `Lethe.IndexListing`).
    func indexListing(_ lethe: Lethe) async throws -> Lethe.IndexListing
    /// Every object verification reads (see `Lethe.datasetObjects`).
    func objects(_ lethe: Lethe) async throws -> DatasetObjects
    /// How each object is reachable, by key (for `locate`); empty when every object is live.
    func roles(_ lethe: Lethe) async throws -> [String: DeltaFileRole]
    /// The files of the dataset's log naming each subject (for the verifier); nil without a log.
    func logResidue(_ subjects: [SubjectID], _ lethe: Lethe) async throws -> [SubjectID: [LogResidue]]?
    /// The typed subject columns, by index in the subject (for canonical-form hints).
    func subjectColumnTypes(_ subject: SubjectSpec, _ lethe: Lethe) async throws -> [Int: CanonicalType]
    /// Runs an erasure step this driver planned; finishes the step (done or failed) with its audit entry.
    func erase(job: String, step: JournalStep, report: inout RunReport, events: EngineEvents?, _ lethe: Lethe) async throws
    /// The erasure steps of the dataset for a job, in order, each an object key (`JournalStep.deltaTableKey`
    /// for a whole table) with the requests whose subjects it erases; pure (see `JobPlanner`).
    /// - holders: per object key, the requests the index finds there (nil: none).
    /// - inScope: every request whose plan reaches the dataset.
    /// - quarantined: the dataset's objects the index could not read (they may hold any subject).
    func planSteps(
        holders: [String: [ErasureRequest]]?, inScope: [ErasureRequest],
        quarantined: [IndexedObject]
    ) -> [(key: String, requests: [ErasureRequest])]
    /// `lethe vacuum` of the dataset (see `Lethe.vacuum`); a dataset without a log refuses it.
    func vacuum(_ mode: VacuumMode, dryRun: Bool, _ lethe: Lethe) async throws -> VacuumReport
    /// How the located rows of the dataset are reachable (for `locateRows`); reads what it needs once.
    func rowRoles(_ lethe: Lethe) async throws -> RowRoles
}

/// What `lethe vacuum` deletes: by retention (every unreferenced file older than `hours`; below
/// the table's configured retention only with `force`), or targeted (the files holding subjects
/// of erased requests, no retention).
enum VacuumMode: Sendable {
    case retention(hours: Double, force: Bool)
    case targeted
}

/// How a dataset's located rows are reachable: `rows` turns one posting of the dataset into
/// located rows, each with its role.
struct RowRoles: Sendable {
    let rows: @Sendable (Posting) async throws -> [LocatedRows]

    /// Every row live (a dataset without a log).
    static func allLive(_ dataset: String) -> RowRoles {
        RowRoles { p in [LocatedRows(dataset: dataset, object: p.object.key, role: .live, rows: p.rows)] }
    }
}

/// The objects of a dataset verification reads, with the options to scan them. `unnamed`: files under
/// a table its log does not name (an interrupted write left them); `hidden`: a plain dataset's
/// hidden-by-name files (`_SUCCESS`, `.crc` sidecars), not records, but their bytes may hold an id.
struct DatasetObjects: Sendable {
    var objects: [ObjectInfo]
    var options: FormatOptions?
    var unnamed: Set<String>
    var hidden: [ObjectInfo]
}

/// The one place a dataset's format chooses its driver.
enum DatasetDrivers {
    static func driver(for spec: DatasetSpec) -> any DatasetDriver {
        switch spec.format {
        case .delta: return DeltaDatasetDriver(spec: spec)
        default: return ObjectDatasetDriver(spec: spec)
        }
    }

    /// The driver that planned a journal step (its kind says which), for the dataset as configured now.
    static func driver(for step: JournalStep, _ spec: DatasetSpec) -> any DatasetDriver {
        step.kind == .deltaTable ? DeltaDatasetDriver(spec: spec) : ObjectDatasetDriver(spec: spec)
    }
}
