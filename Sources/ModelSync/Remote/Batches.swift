import Foundation

/// What a server says about its batches (Docs/Protocol.md, "Batches").
public struct BatchSupport: Sendable, Hashable {
    /// The path batches are posted to, after the base URL.
    public var path: String
    /// The most operations one batch may hold.
    public var maximumOperations: Int

    /// What a server advertised: its batch path and the most operations a batch may hold.
    public init(path: String, maximumOperations: Int) {
        self.path = path
        self.maximumOperations = maximumOperations
    }
}

/// One change of a batch: a create, update or delete of one record, as a ``SyncRemote`` would send
/// it alone.
public struct BatchOperation: Sendable {
    /// What the operation does to its record.
    public enum Kind: String, Sendable, Hashable {
        /// `POST {path}`.
        case create
        /// `PUT {path}/{id}`.
        case update
        /// `DELETE {path}/{id}`.
        case delete
    }

    /// What the operation does.
    public var kind: Kind
    /// The record's model.
    public var model: ModelSchema
    /// The record in local form (for a delete, its `id` only). For an update,
    /// ``RecordMetadata/version`` is the version the change is based on.
    public var fields: RecordFields
    /// The create's or update's idempotency key (as for a request of its own).
    public var idempotencyKey: String
    /// Foreign keys (property names) whose value is the ID that an earlier create of the same batch
    /// gets (its position in the batch): the server fills them in. Used for records created together
    /// in a unit, which reference each other before any has a server ID.
    public var references: [String: Int]

    /// An operation of a batch; see the properties.
    public init(
        kind: Kind, model: ModelSchema, fields: RecordFields, idempotencyKey: String, references: [String: Int] = [:]
    ) {
        self.kind = kind
        self.model = model
        self.fields = fields
        self.idempotencyKey = idempotencyKey
        self.references = references
    }
}

extension SyncRemote {
    /// No batches: every change goes in a request of its own.
    public func batchSupport() async throws -> BatchSupport? { nil }

    /// Refuses: a remote without batches is never sent one (its `batchSupport()` is `nil`).
    public func send(_ operations: [BatchOperation], atomically: Bool, idempotencyKey: String?) async throws
        -> [Result<RecordFields?, RemoteError>]
    {
        throw RemoteError.invalidResponse("this remote does not send batches")
    }
}
