import Foundation
import GRDB

/// The identifier of a record of `Model`: a string, typed by the model it identifies.
///
/// A typed ID keeps a `Message.ID` from being passed where a `Thread.ID` is expected. Locally every
/// ID is a string, whatever JSON type the server uses on the wire.
///
/// Records of models with `idGeneration: server` start with a *temporary* ID
/// (``isTemporary`` is `true`) until the server assigns the permanent one; the store then replaces
/// the temporary ID everywhere (see ``SyncTransaction/replaceTemporaryID(_:with:of:)``).
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

    /// Integer IDs (a server's `bigserial`) come first, in numeric order (`"9"` before `"10"`), then
    /// every other ID in the order of its text.
    public static func < (lhs: ModelID, rhs: ModelID) -> Bool {
        switch (IntegerText(lhs.rawValue), IntegerText(rhs.rawValue)) {
        case (let left?, let right?): return left < right
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil): return lhs.rawValue < rhs.rawValue
        }
    }
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

/// The text of a decimal integer (an optional `-`, then digits, no leading zero), compared by value
/// at any length.
private struct IntegerText: Comparable {
    let isNegative: Bool
    let digits: Substring

    init?(_ text: String) {
        let negative = text.hasPrefix("-")
        let digits = negative ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            digits == "0" || digits.first != "0", !(negative && digits == "0")
        else { return nil }
        isNegative = negative
        self.digits = digits
    }

    static func < (lhs: IntegerText, rhs: IntegerText) -> Bool {
        if lhs.isNegative != rhs.isNegative { return lhs.isNegative }
        let magnitudeLess =
            lhs.digits.count != rhs.digits.count ? lhs.digits.count < rhs.digits.count : lhs.digits < rhs.digits
        let equal = lhs.digits == rhs.digits
        return lhs.isNegative ? !magnitudeLess && !equal : magnitudeLess
    }
}
