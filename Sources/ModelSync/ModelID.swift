import Foundation
import GRDB

/// The identifier of a record of `Model`: a string, typed by the model it identifies.
///
/// A typed ID keeps a `Message.ID` from being passed where a `Thread.ID` is expected. Locally every
/// ID is a string, whatever JSON type the server uses on the wire.
///
/// Records of models with `idGeneration: server` start with a *temporary* ID
/// (``isTemporary`` is `true`) until the server assigns the permanent one; the store then replaces
/// the temporary ID everywhere (see ``SyncTransaction/replaceTemporaryID(inTable:from:to:)``).
public struct ModelID<Model>: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The ID as stored in the database and sent to the server.
    public let rawValue: String

    /// Wraps an existing ID string.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    /// `true` for an ID made on this device for a record whose permanent ID the server assigns.
    public var isTemporary: Bool { TemporaryID.isTemporary(rawValue) }

    public var description: String { rawValue }

    public static func < (lhs: ModelID, rhs: ModelID) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension ModelID: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) {
        self.init(value)
    }
}

extension ModelID: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self.init(try container.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

extension ModelID: StatementColumnConvertible {
    /// Reads the ID straight from SQLite (GRDB's fast path for fetching rows).
    public init(sqliteStatement: SQLiteStatement, index: CInt) {
        self.init(String(sqliteStatement: sqliteStatement, index: index))
    }
}

extension ModelID: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { rawValue.databaseValue }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> ModelID? {
        String.fromDatabaseValue(dbValue).map { ModelID($0) }
    }
}

/// The format of temporary IDs: `tmp_` followed by a time-ordered UUID (version 7).
///
/// The prefix makes a temporary ID recognisable anywhere (in a row, a foreign key, a queued
/// payload or a log line), and no server-assigned ID is expected to start with it.
public enum TemporaryID {
    /// The prefix every temporary ID starts with.
    public static let prefix = "tmp_"

    /// Makes a new temporary ID.
    public static func make() -> String {
        prefix + IDFormat.uuidv7.generate()
    }

    /// `true` when `id` is a temporary ID.
    @inline(__always)
    public static func isTemporary(_ id: String) -> Bool {
        id.utf8.starts(with: prefix.utf8)
    }
}
