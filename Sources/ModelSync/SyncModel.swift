import Foundation
import GRDB

/// A model whose records ModelSync stores, queues for the server and keeps consistent when IDs
/// change. Conformances are generated from `*.modelsync.yaml` specs.
///
/// Generated conformances also implement GRDB's `init(row:)` and `encode(to:)` field by field, so
/// records are read and written without going through `Codable` (which is kept for payloads).
public protocol SyncModel: Codable, Sendable, Hashable, Identifiable, FetchableRecord, PersistableRecord
where ID == ModelID<Self> {
    var id: ID { get }

    /// Table, fields, foreign keys, the foreign keys that reference this model, and REST conventions.
    static var schema: ModelSchema { get }

    /// The values stored for this record in column order: `id`, then each of ``ModelSchema/fields``.
    func databaseValues() throws -> [(any DatabaseValueConvertible)?]

    /// A copy of this record with another ID.
    func withID(_ newID: ID) -> Self

    /// A copy of this record whose foreign keys are replaced where `replacement` returns a new ID.
    ///
    /// `replacement` is called with each foreign-key column name and its current (non-nil) value.
    func replacingReferences(_ replacement: (_ foreignKey: String, _ id: String) -> String?) -> Self
}

extension SyncModel {
    /// A new ID for a record of this model: a final client ID (`idGeneration: client`, in the
    /// model's `idFormat`, after its `idPrefix`) or a temporary one (`idGeneration: server`).
    public static func newID() -> ID {
        switch schema.idGeneration {
        case .client: return ID(schema.idPrefix + schema.idFormat.generate())
        case .server: return ID(TemporaryID.make())
        }
    }

    /// Writes ``databaseValues()`` under their column names, for GRDB's persistence methods.
    public func encode(to container: inout PersistenceContainer) throws {
        let values = try databaseValues()
        container["id"] = values[0]
        for (index, field) in Self.schema.fields.enumerated() {
            container[field.name] = values[index + 1]
        }
    }
}
