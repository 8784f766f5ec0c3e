import Foundation

/// A record as a JSON object in its local form: property names as keys, IDs as strings, dates as
/// seconds since 2001-01-01 — the form of outbox payloads. A ``SyncRemote`` converts it to and from
/// the server's wire format.
public typealias RecordFields = [String: JSONValue]

/// Keys of the sync metadata a ``SyncRemote`` may add to a record's local form. They start with
/// `$`, which no property name can, so they never collide with a field; payloads never carry them.
public enum RecordMetadata {
    /// The server's version of the record (opaque text). The next update of the record is sent
    /// based on it (`If-Match`), so the server can refuse an update that is older than its copy.
    public static let version = "$version"
    /// The `Idempotency-Key` of the create that made the record on the server. A client that finds
    /// its own key in a listing knows the record is its create, even if the create's answer was lost.
    public static let creationKey = "$creationKey"
}

/// One page of a collection listing.
public struct RemotePage: Sendable, Hashable {
    /// Records in local form.
    public var records: [RecordFields]
    /// IDs of records the server deleted (tombstones), for incremental pulls.
    public var deletedIDs: [String]
    /// Where the next listing starts; `nil` when the server has no cursor support.
    public var nextCursor: String?
    /// `true` when another page follows.
    public var hasMore: Bool
    /// Listed records that cannot be stored (a field of the wrong type, a date that cannot be
    /// read, a number no local type holds exactly), each with the reason. They are not in
    /// ``records``; the rest of the page is.
    public var rejected: [RejectedRecord]
    /// How many items (records and tombstones) this page and the pages after it list, when the
    /// server tells (the listing envelope's `total`); `nil` when it does not. A pull shows it as the
    /// expected count of its progress (``PullProgress/total``).
    public var remainingTotal: Int?

    public init(
        records: [RecordFields], deletedIDs: [String] = [], nextCursor: String? = nil, hasMore: Bool = false,
        rejected: [RejectedRecord] = [], remainingTotal: Int? = nil
    ) {
        self.records = records
        self.deletedIDs = deletedIDs
        self.nextCursor = nextCursor
        self.hasMore = hasMore
        self.rejected = rejected
        self.remainingTotal = remainingTotal
    }

    /// How many items the server listed on this page (records, tombstones and rejected items).
    var itemCount: Int { records.count + deletedIDs.count + rejected.count }
}

/// A record a listing returned that cannot be stored locally.
public struct RejectedRecord: Sendable, Hashable, CustomStringConvertible {
    /// The model's name (`Thread`).
    public var model: String
    /// The record's ID, when the server gave a usable one.
    public var id: String?
    /// What is wrong, naming the model, the record and the field: `Sample 'a1': field 'when' is
    /// not an ISO 8601 date: …`.
    public var reason: String

    public init(model: String, id: String?, reason: String) {
        self.model = model
        self.id = id
        self.reason = reason
    }

    public var description: String { reason }
}

/// The server side of sync: the app's own API. ``RESTRemote`` speaks plain JSON over HTTP; implement
/// this protocol for anything else.
public protocol SyncRemote: Sendable {
    /// Creates a record. For a model with server-generated IDs the returned fields carry the new `id`.
    /// - Parameters:
    ///   - fields: The record, in local form.
    ///   - model: The record's model.
    ///   - idempotencyKey: Stable across retries of the same create: a server that honours it answers
    ///     a repeated create with the record it already made.
    func create(_ fields: RecordFields, of model: ModelSchema, idempotencyKey: String) async throws -> RecordFields
    /// Replaces the record's fields.
    ///
    /// - Parameters:
    ///   - fields: The record, in local form. ``RecordMetadata/version``, when present, is the server
    ///     version the change is based on: a server that keeps versions refuses the update when its
    ///     copy is newer, by throwing ``RemoteError/conflict(message:serverCopy:)``.
    ///   - model: The record's model.
    ///   - idempotencyKey: Stable across retries of the same update: a server that honours it answers
    ///     a repeated (or late) copy of the update with the first answer and changes nothing.
    /// - Returns: The server's copy after the update (with its new version), when it answers one.
    func update(_ fields: RecordFields, of model: ModelSchema, idempotencyKey: String) async throws -> RecordFields?
    /// The server's copy of one record, or `nil` when the server does not have it.
    func fetch(id: String, of model: ModelSchema) async throws -> RecordFields?
    /// Deletes the record; a record the server does not have counts as deleted.
    func delete(id: String, of model: ModelSchema) async throws
    /// Lists records changed after `cursor` (all of them when `cursor` is `nil`).
    func list(_ model: ModelSchema, after cursor: String?) async throws -> RemotePage
    /// Whether the server takes batches of changes, and how many at most; `nil` when it does not
    /// (the default): each change then goes in a request of its own.
    func batchSupport() async throws -> BatchSupport?
    /// Sends `operations` in one request, applied in order, and returns one result per operation.
    /// See ``BatchOperation``; with `atomically`, all or none is applied.
    func send(_ operations: [BatchOperation], atomically: Bool, idempotencyKey: String?) async throws
        -> [Result<RecordFields?, RemoteError>]
}

/// Why a request to the server failed.
public enum RemoteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server could not be reached or did not answer in time.
    case transport(String)
    /// The server answered with a non-2xx status; `message` is its explanation.
    case http(status: Int, message: String, retryAfter: TimeInterval?)
    /// The server answered 2xx with a body that cannot be used.
    case invalidResponse(String)
    /// The server refused an update because its copy of the record is newer than the version the
    /// update was based on (HTTP 409 with the server's copy). `serverCopy` is in local form.
    case conflict(message: String, serverCopy: RecordFields)

    /// `true` for failures worth retrying: network errors, timeouts, 408, 425, 426, 429 and 5xx.
    /// (426 keeps the change queued for the updated app, see ``isClientTooOld``.)
    public var isTransient: Bool {
        switch self {
        case .transport: return true
        case .http(let status, _, _):
            return status == 408 || status == 425 || status == 426 || status == 429 || status >= 500
        case .invalidResponse, .conflict: return false
        }
    }

    /// `true` when the server no longer accepts this app's version of the models (HTTP 426 Upgrade
    /// Required, see `RESTRemote.Configuration.schemaVersion`): show "this app version is too old,
    /// update it". The push that meets it throws this error; the changes stay queued (not failed)
    /// and are sent by the updated app, migrated to its shape.
    public var isClientTooOld: Bool {
        if case .http(426, _, _) = self { return true }
        return false
    }

    /// The delay the server asked for (`Retry-After`), if any.
    public var retryAfter: TimeInterval? {
        if case .http(_, _, let retryAfter) = self { return retryAfter }
        return nil
    }

    public var description: String {
        switch self {
        case .transport(let message): return "network error: \(message)"
        case .http(let status, let message, _): return "HTTP \(status): \(message)"
        case .invalidResponse(let message): return "invalid response: \(message)"
        case .conflict(let message, _): return "HTTP 409: \(message)"
        }
    }
}
