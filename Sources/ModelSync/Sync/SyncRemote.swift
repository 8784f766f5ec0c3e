import Foundation

/// A record as a JSON object in its local form: property names as keys, IDs as strings, dates as
/// seconds since 2001-01-01 — the form of outbox payloads. A ``SyncRemote`` converts it to and from
/// the server's wire format.
public typealias RecordFields = [String: JSONValue]

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

    public init(
        records: [RecordFields], deletedIDs: [String] = [], nextCursor: String? = nil, hasMore: Bool = false,
        rejected: [RejectedRecord] = []
    ) {
        self.records = records
        self.deletedIDs = deletedIDs
        self.nextCursor = nextCursor
        self.hasMore = hasMore
        self.rejected = rejected
    }
}

/// A record a listing returned that cannot be stored locally.
public struct RejectedRecord: Sendable, Hashable, CustomStringConvertible {
    /// The record's ID, when the server gave a usable one.
    public var id: String?
    /// What is wrong, naming the model, the record and the field: `Sample 'a1': field 'when' is
    /// not an ISO 8601 date: …`.
    public var reason: String

    public init(id: String?, reason: String) {
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
    func update(_ fields: RecordFields, of model: ModelSchema) async throws
    /// Deletes the record; a record the server does not have counts as deleted.
    func delete(id: String, of model: ModelSchema) async throws
    /// Lists records changed after `cursor` (all of them when `cursor` is `nil`).
    func list(_ model: ModelSchema, after cursor: String?) async throws -> RemotePage
}

/// Why a request to the server failed.
public enum RemoteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server could not be reached or did not answer in time.
    case transport(String)
    /// The server answered with a non-2xx status; `message` is its explanation.
    case http(status: Int, message: String, retryAfter: TimeInterval?)
    /// The server answered 2xx with a body that cannot be used.
    case invalidResponse(String)

    /// `true` for failures worth retrying: network errors, timeouts, 408, 425, 429 and 5xx.
    public var isTransient: Bool {
        switch self {
        case .transport: return true
        case .http(let status, _, _): return status == 408 || status == 425 || status == 429 || status >= 500
        case .invalidResponse: return false
        }
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
        }
    }
}
