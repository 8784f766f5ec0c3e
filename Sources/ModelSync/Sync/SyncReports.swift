import Foundation

/// Counts a UI can show while syncing.
public struct SyncProgress: Sendable, Hashable {
    /// Entries waiting to be sent (including those waiting for a retry or for a parent).
    public var queued: Int
    /// Entries being sent now.
    public var inFlight: Int
    /// Entries the server accepted since the engine started.
    public var sent: Int
    /// Entries refused for good (see each record's sync status for the reason).
    public var failed: Int

    /// Per model name (`Message`), the progress of the model's latest pull: items received from the
    /// server, items stored, and the total when the server tells it.
    public var pulls: [String: PullProgress]

    public init(
        queued: Int = 0, inFlight: Int = 0, sent: Int = 0, failed: Int = 0, pulls: [String: PullProgress] = [:]
    ) {
        self.queued = queued
        self.inFlight = inFlight
        self.sent = sent
        self.failed = failed
        self.pulls = pulls
    }
}

/// How far the pull of one model is: counts a UI can show as "12,000 of 100,000 messages".
public struct PullProgress: Sendable, Hashable {
    /// Items (records, tombstones, unreadable items) the server listed so far in this pull.
    public var received: Int
    /// Items stored so far (each chunk counts once its transaction has committed). Records that
    /// cannot be stored yet (kept aside, unreadable) count as handled.
    public var applied: Int
    /// How many items the whole pull lists, when the server tells it (the listing's `total`):
    /// `received` of `total` is the download, `applied` of `total` the whole pull.
    public var total: Int?
    /// `true` once the listing has ended and everything it listed is stored (records kept aside
    /// are settled when the whole pull ends).
    public var isFinished: Bool

    public init(received: Int = 0, applied: Int = 0, total: Int? = nil, isFinished: Bool = false) {
        self.received = received
        self.applied = applied
        self.total = total
        self.isFinished = isFinished
    }
}

/// What one ``SyncEngine/push(waitForRetries:)`` did.
public struct PushReport: Sendable, Hashable {
    public var sent = 0
    public var retried = 0
    /// Entries refused for good, by the server or because its answer could not be stored (each
    /// record's ``SyncStatus`` says why).
    public var failed = 0
    /// Updates the server refused because its copy was newer; the ``ConflictPolicy`` decided.
    public var conflicts = 0
    /// Entries still queued (waiting for a retry time or for a parent that failed).
    public var remaining = 0

    public init() {}
}

/// What one ``SyncEngine/sync()`` did: its push, then its pull.
public struct SyncReport: Sendable, Hashable {
    public var push: PushReport
    public var pull: PullReport

    public init(push: PushReport = PushReport(), pull: PullReport = PullReport()) {
        self.push = push
        self.pull = pull
    }
}

/// What one pull did.
public struct PullReport: Sendable, Hashable {
    public var inserted = 0
    public var updated = 0
    public var deleted = 0
    /// Server records not applied because the local record had unsent changes.
    public var keptLocal = 0
    /// Listed records that could not be applied, each with the reason: unreadable values, or a
    /// reference to a record the server did not list (kept aside and applied by a later pull once
    /// that record arrives). The rest of the pull is applied.
    public var rejected: [RejectedRecord] = []
    /// The longest the pull held the store's write lock in one transaction (from asking for the
    /// writer to the commit): about how long a save made during the pull may have waited for it.
    public var longestTransaction: Duration = .zero

    public init() {}

    mutating func merge(_ other: PullReport) {
        inserted += other.inserted
        updated += other.updated
        deleted += other.deleted
        keptLocal += other.keptLocal
        rejected += other.rejected
        longestTransaction = max(longestTransaction, other.longestTransaction)
    }

    mutating func count(_ outcome: MergeOutcome) {
        switch outcome {
        case .inserted: inserted += 1
        case .updated, .merged: updated += 1
        case .keptLocal: keptLocal += 1
        case .unchanged: break
        }
    }
}
