import Foundation
import GRDB

/// A model whose records ModelSync stores, queues for the server and keeps consistent when IDs
/// change. Conformances are generated from `*.modelsync.yaml` specs.
public protocol SyncModel: Codable, Sendable, Hashable, Identifiable, FetchableRecord, PersistableRecord
where ID == ModelID<Self> {
    var id: ID { get }

    /// Table, fields, foreign keys, the foreign keys that reference this model, and REST conventions.
    static var schema: ModelSchema { get }

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

    /// Dates are stored as seconds since 2001-01-01, so that they read back exactly as saved.
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSinceReferenceDate
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy {
        .timeIntervalSinceReferenceDate
    }

    /// UUIDs are stored as lowercase text, readable in any SQLite browser.
    public static func databaseUUIDEncodingStrategy(for column: String) -> DatabaseUUIDEncodingStrategy {
        .lowercaseString
    }
}
