import Foundation
import GRDB
import Logging

/// Drains the outbox to a server and pulls server state back.
///
/// ```swift
/// let engine = SyncEngine(store: store, remote: RESTRemote(configuration: ..., models: GeneratedModels.all))
/// try await engine.sync()   // push every queued change, then pull every model
/// ```
///
/// Push sends each record's changes in order, a child only once its parents have server IDs, and
/// unrelated records side by side (up to ``Configuration/maximumConcurrentRequests``). Each answer
/// is recorded in one transaction: a create's server ID replaces the temporary ID everywhere as the
/// entry leaves the outbox. Transient failures retry with backoff; other 4xx answers mark the
/// entry failed with the server's message.
public actor SyncEngine {
    public struct Configuration: Sendable {
        public var maximumConcurrentRequests: Int
        public var retry: RetryPolicy
        public var conflictPolicy: ConflictPolicy
        /// How many listed items a pull stores per transaction at most. A save waits for one chunk
        /// at most; larger chunks store a large first sync slightly faster.
        public var pullChunkSize: Int
        /// How long one pull transaction may hold the write lock before it commits what it stored so
        /// far and lets a waiting save in (checked between pieces of at most 25 items; a chunk never
        /// exceeds ``pullChunkSize``). On a slow device or a loaded machine chunks get smaller
        /// rather than saves slower.
        public var pullTransactionBudget: Duration = .milliseconds(50)
        /// How long ``SyncEngine/push(waitForRetries:)`` waits for scheduled retries at most.
        public var maximumRetryWait: TimeInterval
        /// The most changes sent in one batch to a server that takes batches (it may allow fewer).
        public var maximumBatchSize = 500

        public init(
            maximumConcurrentRequests: Int = 4, retry: RetryPolicy = RetryPolicy(),
            conflictPolicy: ConflictPolicy = .keepLocalChanges, maximumRetryWait: TimeInterval = 300,
            pullChunkSize: Int = 500
        ) {
            self.maximumConcurrentRequests = maximumConcurrentRequests
            self.retry = retry
            self.conflictPolicy = conflictPolicy
            self.maximumRetryWait = maximumRetryWait
            self.pullChunkSize = pullChunkSize
        }
    }

    public let store: SyncStore
    public let remote: any SyncRemote
    public let configuration: Configuration
    let logger: Logger
    var sentCount = 0
    /// Per model name, the progress of its latest pull.
    var pullProgress: [String: PullProgress] = [:]
    let progressSubscribers = Locked([Int: AsyncStream<SyncProgress>.Continuation]())
    let nextSubscriber = Locked(0)
    /// Held while a model is pulled and while live changes are stored, so that the two never
    /// store at once (see ``pullFromCursorOrAgain(_:into:)``).
    nonisolated let pullOrLiveApply = AsyncSerialLock()

    public init(
        store: SyncStore, remote: any SyncRemote, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "ModelSync.SyncEngine")
    ) {
        self.store = store
        self.remote = remote
        self.configuration = configuration
        self.logger = logger
    }

    /// Pushes every queued change, then pulls every model (parents before children), each stored in
    /// chunks as its pages arrive (see ``pull(_:)``).
    @discardableResult
    public func sync() async throws -> SyncReport {
        let push = try await push()
        let pull = try await pullModels(store.models)
        return SyncReport(push: push, pull: pull)
    }
}
