import Foundation
import GRDB

// Column encodings that generated `init(row:)` and `encode(to:)` use for the types whose GRDB
// default would lose information or be hard to read. Every other field type is stored as GRDB
// stores it natively.

/// A `Date` stored as seconds since 2001-01-01 (a REAL), so it reads back exactly as saved.
public struct StoredDate: DatabaseValueConvertible, StatementColumnConvertible, Sendable {
    public var date: Date

    public init(_ date: Date) {
        self.date = date
    }

    public var databaseValue: DatabaseValue { date.timeIntervalSinceReferenceDate.databaseValue }

    public init(sqliteStatement: SQLiteStatement, index: CInt) {
        self.init(Date(timeIntervalSinceReferenceDate: Double(sqliteStatement: sqliteStatement, index: index)))
    }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> StoredDate? {
        Double.fromDatabaseValue(dbValue).map { StoredDate(Date(timeIntervalSinceReferenceDate: $0)) }
    }
}

/// A `UUID` stored as lowercase text, readable in any SQLite browser.
public struct StoredUUID: DatabaseValueConvertible, Sendable {
    public var uuid: UUID

    public init(_ uuid: UUID) {
        self.uuid = uuid
    }

    public var databaseValue: DatabaseValue { uuid.uuidString.lowercased().databaseValue }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> StoredUUID? {
        UUID.fromDatabaseValue(dbValue).map(StoredUUID.init)
    }
}

/// An array stored as JSON text.
public struct StoredJSON<Value: Codable & Sendable>: DatabaseValueConvertible, Sendable {
    public var value: Value
    private let json: String

    /// Encodes `value`; throws for values JSON cannot represent (such as `Double.nan`).
    public init(_ value: Value) throws {
        self.init(value: value, json: String(decoding: try JSONEncoder().encode(value), as: UTF8.self))
    }

    private init(value: Value, json: String) {
        self.value = value
        self.json = json
    }

    public var databaseValue: DatabaseValue { json.databaseValue }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> StoredJSON? {
        guard let text = String.fromDatabaseValue(dbValue),
            let value = try? JSONDecoder().decode(Value.self, from: Data(text.utf8))
        else { return nil }
        return StoredJSON(value: value, json: text)
    }
}
