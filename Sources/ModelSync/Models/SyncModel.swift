import Foundation
import GRDB

/// A model whose records ModelSync stores, queues for the server and keeps consistent when IDs
/// change. Conformances are generated from `*.modelsync.yaml` specs.
///
/// Records are fetched and queried with GRDB (`FetchableRecord`, `TableRecord`: `Message.filter(…)`),
/// and written only through ModelSync (repositories, ``SyncStore/write(_:)``), which queues every
/// change for the server: a model is deliberately not a GRDB `PersistableRecord`, so app code cannot
/// `insert` or `update` one behind the outbox's back. Generated conformances implement `init(row:)`
/// and the hooks below field by field, without going through `Codable` (kept for apps' own use: the
/// runtime never encodes or decodes a model with it).
/// The hooks are SPI (`@_spi(Generated)`): generated code implements them, apps do not see them.
public protocol SyncModel: Codable, Sendable, Hashable, Identifiable, FetchableRecord, TableRecord
where ID == ModelID<Self> {
    var id: ID { get }

    /// Table, fields, foreign keys, the foreign keys that reference this model, and REST conventions.
    static var schema: ModelSchema { get }

    /// Reads a record from a row whose columns are `id` then each of ``ModelSchema/fields``, in that
    /// order (the model's own selection, which the runtime's reads use), by index: no look-up by
    /// name. Rows of any other shape (custom SQL, joins) go through `init(row:)`, which reads by name.
    @_spi(Generated) init(orderedRow row: Row) throws

    /// Reads a record from its fields in local form (an outbox payload, a server's record after the
    /// remote's conversion, a conflict resolver's choice), each through the encoding its column uses.
    ///
    /// - Throws: ``FieldDecodingError`` naming the model, the field and the value that does not fit.
    @_spi(Generated) init(fields: RecordFields) throws

    /// The values stored for this record in column order: `id`, then each of ``ModelSchema/fields``.
    @_spi(Generated) func databaseValues() throws -> [(any DatabaseValueConvertible)?]

    /// A copy of this record with another ID.
    @_spi(Generated) func withID(_ newID: ID) -> Self

    /// A copy of this record whose foreign keys are replaced where `replacement` returns a new ID.
    ///
    /// `replacement` is called with each foreign-key column name and its current (non-nil) value.
    @_spi(Generated) func replacingReferences(_ replacement: (_ foreignKey: String, _ id: String) -> String?) -> Self
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
}
