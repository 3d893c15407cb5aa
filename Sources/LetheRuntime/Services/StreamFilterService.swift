import Foundation
import Synchronization
public import ServiceLifecycle
public import LetheCore
public import LetheStream

/// `lethe filter`: runs a `StreamPump` from one file descriptor to another on a thread of its own
/// (its hot loop blocks in read(2), off the task pool). With `follow`, it keeps reading a growing
/// file until the service group shuts down gracefully: the stop is seen at the next idle moment
/// (input caught up), the last line is filtered and the output flushed. Without `follow`, it ends
/// at the end of input. Its counts are kept after it ends, thrown or not.
public final class StreamFilterService: Service {
    public struct Options: Sendable {
        public var fields: [FieldPath]
        public var streamKey: SipHash24
        public var onMalformed: MalformedPolicy
        public var validation: Validation
        public var input: Int32
        public var output: Int32
        public var follow: Bool

        public init(
            fields: [FieldPath], streamKey: SipHash24, onMalformed: MalformedPolicy, validation: Validation,
            input: Int32, output: Int32, follow: Bool
        ) {
            self.fields = fields; self.streamKey = streamKey; self.onMalformed = onMalformed; self.validation = validation
            self.input = input; self.output = output; self.follow = follow
        }
    }

    let options: Options
    let set: SharedDeletionSet
    private let stopRequested = Atomic<Bool>(false)
    private let finalCounts = Mutex<StreamCounts>(StreamCounts())

    public init(_ options: Options, set: SharedDeletionSet) {
        self.options = options
        self.set = set
    }

    /// The counts of the finished run (zero before it ends).
    public var counts: StreamCounts { finalCounts.withLock { $0 } }

    /// Asks a following run to stop at its next idle moment (what a graceful shutdown does).
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    /// Throws what the pump threw: `MalformedLine` (policy `.fail`) or `LetheError`.
    public func run() async throws {
        let outcome = await withGracefulShutdownHandler {
            await withCheckedContinuation { (cont: CheckedContinuation<Result<Void, any Error>, Never>) in
                let t = Thread { [self] in
                    let o = options
                    let filter = StreamFilter(
                        fields: o.fields, streamKey: o.streamKey, set: set, onMalformed: o.onMalformed,
                        validation: o.validation)
                    let pump = StreamPump(filter: filter, input: o.input, output: o.output)
                    let r = Result { try pump.run(follow: o.follow) { self.stopRequested.load(ordering: .relaxed) } }
                    let c = filter.counts
                    finalCounts.withLock { $0 = c }
                    cont.resume(returning: r)
                }
                t.stackSize = 1 << 22
                t.start()
            }
        } onGracefulShutdown: {
            self.requestStop()
        }
        try outcome.get()
    }
}
