import Foundation
import GRDB
import GRDBSQLite

// Column encodings that generated `init(row:)` and `databaseValues()` use for the types whose GRDB
// default would lose information or be hard to read, and that check at save time what the server
// could not receive exactly. Every other field type is stored as GRDB stores it natively.
//
// The checking initializers take the model and field names: a refused value throws
// `ModelSyncError.invalidValue(model:field:reason:)`, so the save fails before anything is stored.

let posixLocale = Locale(identifier: "en_US_POSIX")

/// A `Date` stored as seconds since 2001-01-01 (a REAL), so it reads back exactly as saved.
@_spi(Generated) public struct StoredDate: DatabaseValueConvertible, StatementColumnConvertible, Sendable {
    public var date: Date

    /// Wraps `date` without checking it.
    public init(_ date: Date) {
        self.date = date
    }

    /// Wraps `date` for a save: a NaN or infinite time interval is refused (no calendar date and
    /// no ISO 8601 text has it), and `-0.0` is stored as `0.0` (the same instant; ISO 8601 has no
    /// negative zero).
    ///
    /// - Throws: ``ModelSyncError/invalidValue(model:field:reason:)``.
    public init(_ date: Date, model: String, field: String) throws {
        let seconds = date.timeIntervalSinceReferenceDate
        guard seconds.isFinite else {
            throw ModelSyncError.invalidValue(
                model: model, field: field,
                reason: "the date's time interval is \(seconds), which is no instant: no calendar date and no "
                    + "ISO 8601 text can carry it to the server; store a date built from a finite number of seconds")
        }
        self.date = seconds == 0 ? Date(timeIntervalSinceReferenceDate: 0) : date
    }

    public var databaseValue: DatabaseValue { date.timeIntervalSinceReferenceDate.databaseValue }

    public init(sqliteStatement: SQLiteStatement, index: CInt) {
        self.init(Date(timeIntervalSinceReferenceDate: Double(sqliteStatement: sqliteStatement, index: index)))
    }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> StoredDate? {
        Double.fromDatabaseValue(dbValue).map { StoredDate(Date(timeIntervalSinceReferenceDate: $0)) }
    }
}

/// A `Double` checked at save time and stored so that it reads back bit for bit.
///
/// SQLite stores a REAL without fraction as an integer, which turns `-0.0` into `0.0`: `-0.0` is
/// therefore stored as an 8-byte BLOB holding its bits (a query comparing the column with numbers
/// does not match that row). Every other value is a REAL.
@_spi(Generated) public struct StoredDouble: DatabaseValueConvertible, StatementColumnConvertible, Sendable {
    public var value: Double

    /// Wraps `value` for a save: NaN and infinities are refused, since JSON has no such numbers
    /// and the server could not receive them.
    ///
    /// - Throws: ``ModelSyncError/invalidValue(model:field:reason:)``.
    public init(_ value: Double, model: String, field: String) throws {
        guard value.isFinite else {
            let what =
                value.isNaN
                ? "NaN (not a number, such as the result of 0/0)" : "\(value < 0 ? "negative " : "")infinity"
            throw ModelSyncError.invalidValue(
                model: model, field: field,
                reason: "the value is \(what), which JSON cannot carry to the server; store a finite number, "
                    + "or make the field optional and store nil for \"no value\"")
        }
        self.value = value
    }

    private init(unchecked value: Double) {
        self.value = value
    }

    public var databaseValue: DatabaseValue {
        if value == 0, value.sign == .minus {
            return withUnsafeBytes(of: value.bitPattern.bigEndian) { Data($0) }.databaseValue
        }
        return value.databaseValue
    }

    public init(sqliteStatement: SQLiteStatement, index: CInt) {
        if sqlite3_column_type(sqliteStatement, index) == SQLITE_BLOB {
            let count = Int(sqlite3_column_bytes(sqliteStatement, index))
            if count == 8, let bytes = sqlite3_column_blob(sqliteStatement, index) {
                var bits: UInt64 = 0
                withUnsafeMutableBytes(of: &bits) {
                    $0.copyMemory(from: UnsafeRawBufferPointer(start: bytes, count: 8))
                }
                self.init(unchecked: Double(bitPattern: UInt64(bigEndian: bits)))
                return
            }
        }
        self.init(unchecked: sqlite3_column_double(sqliteStatement, index))
    }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> StoredDouble? {
        if case .blob(let data) = dbValue.storage {
            guard data.count == 8 else { return nil }
            let bits = data.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return StoredDouble(unchecked: Double(bitPattern: bits))
        }
        return Double.fromDatabaseValue(dbValue).map(StoredDouble.init(unchecked:))
    }
}

/// A `Decimal` stored as its exact decimal text, checked at save time to read back equal.
@_spi(Generated) public struct StoredDecimal: DatabaseValueConvertible, Sendable {
    public var decimal: Decimal
    private let text: String

    /// Wraps `decimal` for a save: NaN is refused (JSON has no such number), and so is a value whose
    /// text does not read back as the same Decimal.
    ///
    /// - Throws: ``ModelSyncError/invalidValue(model:field:reason:)``.
    public init(_ decimal: Decimal, model: String, field: String) throws {
        guard !decimal.isNaN else {
            throw ModelSyncError.invalidValue(
                model: model, field: field,
                reason: "the Decimal is NaN (not a number), which JSON cannot carry to the server; store a number, "
                    + "or make the field optional and store nil for \"no value\"")
        }
        let text = decimal.description
        guard let readBack = Decimal(string: text, locale: posixLocale), readBack == decimal,
            Self.isExact(readBack, text: text)
        else {
            throw ModelSyncError.invalidValue(
                model: model, field: field,
                reason: "the Decimal \(text) does not read back as the same value from its decimal text, so it "
                    + "cannot be stored or sent exactly; round it to at most 38 significant digits")
        }
        self.init(unchecked: decimal, text: text)
    }

    private init(unchecked decimal: Decimal, text: String) {
        self.decimal = decimal
        self.text = text
    }

    /// `true` when `decimal` is exactly the number `text` writes (any notation).
    static func isExact(_ decimal: Decimal, text: String) -> Bool {
        var written = text
        var held = decimal.description
        let writtenParts = written.withUTF8 { DecimalParts($0) }
        let heldParts = held.withUTF8 { DecimalParts($0) }
        if writtenParts.digits.isEmpty && heldParts.digits.isEmpty { return true }  // 0 and -0
        return writtenParts == heldParts
    }

    public var databaseValue: DatabaseValue { text.databaseValue }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> StoredDecimal? {
        guard let decimal = Decimal.fromDatabaseValue(dbValue) else { return nil }
        return StoredDecimal(unchecked: decimal, text: decimal.description)
    }
}

/// A `String` stored with its full length.
///
/// GRDB binds and reads text as C strings, which end at the first NUL (`"a\0b"` would be stored
/// as `"a"`). Text without NUL is stored as TEXT, as GRDB stores it (queries and unique
/// constraints work as usual); text holding a NUL is stored as a BLOB of its UTF-8 bytes (unique
/// constraints still compare it exactly; a query comparing the column with a string does not match
/// it, and it sorts after all text). Both are read with their explicit length.
@_spi(Generated) public struct StoredString: DatabaseValueConvertible, StatementColumnConvertible, Sendable {
    public var string: String

    public init(_ string: String) {
        self.string = string
    }

    public var databaseValue: DatabaseValue {
        string.containsNUL ? Data(string.utf8).databaseValue : string.databaseValue
    }

    public init(sqliteStatement: SQLiteStatement, index: CInt) {
        let bytes: UnsafeRawPointer?
        if sqlite3_column_type(sqliteStatement, index) == SQLITE_BLOB {
            bytes = sqlite3_column_blob(sqliteStatement, index)
        } else {
            bytes = sqlite3_column_text(sqliteStatement, index).map { UnsafeRawPointer($0) }
        }
        let count = Int(sqlite3_column_bytes(sqliteStatement, index))
        guard let bytes, count > 0 else {
            self.init("")
            return
        }
        self.init(String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self))
    }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> StoredString? {
        switch dbValue.storage {
        case .string(let string): return StoredString(string)
        case .blob(let data): return StoredString(String(decoding: data, as: UTF8.self))
        default: return nil
        }
    }
}

/// A `UUID` stored as lowercase text, readable in any SQLite browser.
@_spi(Generated) public struct StoredUUID: DatabaseValueConvertible, Sendable {
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
@_spi(Generated) public struct StoredJSON<Value: Codable & Sendable>: DatabaseValueConvertible, Sendable {
    public var value: Value
    private let json: String

    /// Encodes `value`; throws for values JSON cannot represent (such as `Double.nan`).
    public init(_ value: Value) throws {
        self.init(value: value, json: String(decoding: try JSONEncoder().encode(value), as: UTF8.self))
    }

    /// Encodes `value` for a save, refusing elements JSON cannot carry: NaN and infinite numbers
    /// (`Double`, `Date`), NaN `Decimal`s.
    ///
    /// - Throws: ``ModelSyncError/invalidValue(model:field:reason:)``.
    public init(_ value: Value, model: String, field: String) throws {
        let data: Data
        do {
            data = try JSONEncoder().encode(value)
        } catch let EncodingError.invalidValue(element, context) {
            let position = context.codingPath.first?.intValue.map { "element \($0)" } ?? "an element"
            throw ModelSyncError.invalidValue(
                model: model, field: field,
                reason: "\(position) is \(element), which JSON cannot carry to the server; store finite numbers")
        }
        // JSONEncoder writes a NaN Decimal as the text NaN, which is not JSON.
        do {
            _ = try JSONValue.parse(data)
        } catch {
            throw ModelSyncError.invalidValue(
                model: model, field: field,
                reason: "an element has no JSON form (\(error)); a NaN Decimal cannot be sent, store numbers")
        }
        self.init(value: value, json: String(decoding: data, as: UTF8.self))
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

extension String {
    /// Whether the text holds a NUL character (SQLite, given the text as a C string, cuts it there).
    /// Scans the UTF-8 bytes with `memchr`: a save checks every text value and its ID.
    var containsNUL: Bool {
        var text = self
        return text.withUTF8 { bytes in bytes.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false }
    }
}
