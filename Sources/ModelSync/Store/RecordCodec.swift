import Foundation
import GRDB

// The one codec of a record's fields (local form, `RecordFields`): what an outbox payload holds
// (``PayloadWriter``), what a remote's records are converted to (`RESTRemote` maps wire names, IDs
// and ISO 8601 dates to it), and what generated `init(fields:)` reads back, field by field, through
// the same encodings as the row (`StoredDate`, `StoredDouble`, `StoredDecimal`…). No `Codable`:
// a value that does not fit its field is a ``FieldDecodingError`` naming the model, the field and
// the value.

/// A field of a record (from the server, a conflict resolver or an outbox payload) whose value does
/// not fit the field's type: a string where a number belongs, an integer beyond the range of `Int`,
/// a date that is no instant, a missing required field.
public struct FieldDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The model, as the spec names it.
    public var model: String
    /// The field, as the spec names it (`id` for the record's ID).
    public var field: String
    /// Why the value does not fit, with the value itself.
    public var reason: String

    public init(model: String, field: String, reason: String) {
        self.model = model
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(model).\(field) \(reason)" }
}

/// A type a field of a generated model can have (the spec's scalar types, IDs, arrays of them): the
/// generated `init(fields:)` reads it from the record's local form. Its requirement is for generated
/// code only.
public protocol FieldDecodable {
    /// Reads `value` (never `null`: the caller handles absent values).
    ///
    /// - Throws: ``FieldDecodingError`` naming `model`, `field` and the value.
    @_spi(Generated) static func decodeField(_ value: JSONValue, model: String, field: String) throws -> Self
}

/// Reads the fields of one record for a generated `init(fields:)`.
@_spi(Generated) public struct RecordFieldReader {
    public let fields: RecordFields
    public let model: String

    public init(_ fields: RecordFields, model: String) {
        self.fields = fields
        self.model = model
    }

    /// A required field: present and not `null`.
    public func value<Value: FieldDecodable>(_ field: String) throws -> Value {
        try Value.decodeField(try required(field), model: model, field: field)
    }

    /// An optional field: `nil` when absent or `null`.
    public func optional<Value: FieldDecodable>(_ field: String) throws -> Value? {
        guard let value = fields[field], value != .null else { return nil }
        return try Value.decodeField(value, model: model, field: field)
    }

    /// A required date, as the row stores it (`StoredDate`: `-0.0` seconds is the reference date).
    public func value(_ field: String) throws -> Date {
        try storedDate(try required(field), field: field)
    }

    /// An optional date, as the row stores it.
    public func optional(_ field: String) throws -> Date? {
        guard let value = fields[field], value != .null else { return nil }
        return try storedDate(value, field: field)
    }

    /// A required enum field: its case named by a string.
    public func enumCase<Value: RawRepresentable & CaseIterable>(_ field: String) throws -> Value
    where Value.RawValue == String {
        try Self.enumCase(try required(field), model: model, field: field)
    }

    /// An optional enum field.
    public func optionalEnumCase<Value: RawRepresentable & CaseIterable>(_ field: String) throws -> Value?
    where Value.RawValue == String {
        guard let value = fields[field], value != .null else { return nil }
        return try Self.enumCase(value, model: model, field: field)
    }

    private func required(_ field: String) throws -> JSONValue {
        guard let value = fields[field] else {
            throw FieldDecodingError(model: model, field: field, reason: "is missing and the field is not optional")
        }
        guard value != .null else {
            throw FieldDecodingError(model: model, field: field, reason: "is null and the field is not optional")
        }
        return value
    }

    private func storedDate(_ value: JSONValue, field: String) throws -> Date {
        let date = try Date.decodeField(value, model: model, field: field)
        return try rethrowingAsDecoding(field) { try StoredDate(date, model: model, field: field).date }
    }

    private func rethrowingAsDecoding<Value>(_ field: String, _ body: () throws -> Value) throws -> Value {
        do {
            return try body()
        } catch let ModelSyncError.invalidValue(_, _, reason) {
            throw FieldDecodingError(model: model, field: field, reason: "does not fit: \(reason)")
        }
    }

    private static func enumCase<Value: RawRepresentable & CaseIterable>(
        _ value: JSONValue, model: String, field: String
    ) throws -> Value where Value.RawValue == String {
        if case .string(let text) = value, let found = Value(rawValue: text) { return found }
        let cases = Value.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        throw FieldDecodingError(
            model: model, field: field, reason: "is \(describeField(value)), not one of its cases (\(cases))")
    }
}

/// `value` for an error message: its JSON type and its text, cut after 80 characters.
func describeField(_ value: JSONValue) -> String {
    func quote(_ text: String) -> String { text.count > 80 ? "'\(text.prefix(80))…'" : "'\(text)'" }
    switch value {
    case .null: return "null"
    case .bool(let bool): return "\(bool)"
    case .number, .integer, .decimal: return "the number \(quote(value.numberText ?? "\(value)"))"
    case .string(let text): return "the string \(quote(text))"
    case .array: return "an array"
    case .object: return "an object"
    }
}

extension FieldDecodable {
    static func mismatch(_ value: JSONValue, model: String, field: String, expected: String) -> FieldDecodingError {
        FieldDecodingError(model: model, field: field, reason: "is \(describeField(value)), \(expected)")
    }
}

extension String: FieldDecodable {
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> String {
        guard case .string(let text) = value else {
            throw mismatch(value, model: model, field: field, expected: "not a string")
        }
        return StoredString(text).string
    }
}

extension Int64: FieldDecodable {
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> Int64 {
        switch value {
        case .integer(let integer): return integer
        case .number(let number):
            if let integer = Int64(exactly: number) { return integer }
        case .decimal: break
        default: throw mismatch(value, model: model, field: field, expected: "not an integer")
        }
        throw mismatch(
            value, model: model, field: field, expected: "which is not an integer from \(Int64.min) to \(Int64.max)")
    }
}

extension Int: FieldDecodable {
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> Int {
        let integer: Int64
        do {
            integer = try Int64.decodeField(value, model: model, field: field)
        } catch {
            throw mismatch(
                value, model: model, field: field,
                expected: value.numberText == nil
                    ? "not an integer" : "which is not an integer from \(Int.min) to \(Int.max)")
        }
        guard let exact = Int(exactly: integer) else {
            throw mismatch(
                value, model: model, field: field, expected: "which is not an integer from \(Int.min) to \(Int.max)")
        }
        return exact
    }
}

extension Double: FieldDecodable {
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> Double {
        guard let number = value.doubleValue else {
            throw mismatch(value, model: model, field: field, expected: "not a number")
        }
        guard number.isFinite else {
            throw mismatch(value, model: model, field: field, expected: "beyond the range of a Double")
        }
        return number
    }
}

extension Bool: FieldDecodable {
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> Bool {
        guard case .bool(let bool) = value else {
            throw mismatch(value, model: model, field: field, expected: "not true or false")
        }
        return bool
    }
}

extension Date: FieldDecodable {
    /// Seconds since 2001-01-01 (local form, exact), or ISO 8601 text read exactly (`WireDate`).
    /// Inside arrays, `-0.0` stays as it is (as `StoredJSON` keeps it).
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> Date {
        switch value {
        case .string(let text):
            switch WireDate.parse(text) {
            case .success(let seconds): return Date(timeIntervalSinceReferenceDate: seconds)
            case .failure(let error):
                throw mismatch(value, model: model, field: field, expected: "not an ISO 8601 date: \(error.reason)")
            }
        default:
            guard let seconds = value.doubleValue else {
                throw mismatch(value, model: model, field: field, expected: "not a date (seconds since 2001-01-01)")
            }
            guard seconds.isFinite else {
                throw mismatch(value, model: model, field: field, expected: "which is no instant")
            }
            return Date(timeIntervalSinceReferenceDate: seconds)
        }
    }
}

extension Decimal: FieldDecodable {
    /// The number's exact decimal text; a number a `Decimal` cannot hold exactly is refused.
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> Decimal
    {
        guard let text = value.numberText else {
            throw mismatch(value, model: model, field: field, expected: "not a number")
        }
        guard let decimal = Decimal(string: text, locale: posixLocale), !decimal.isNaN,
            StoredDecimal.isExact(decimal, text: text)
        else { throw mismatch(value, model: model, field: field, expected: "which a Decimal cannot hold exactly") }
        return decimal
    }
}

extension Data: FieldDecodable {
    /// Base64 text.
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> Data {
        guard case .string(let text) = value else {
            throw mismatch(value, model: model, field: field, expected: "not a base64 string")
        }
        guard let data = Data(base64Encoded: text) else {
            throw mismatch(value, model: model, field: field, expected: "which is not valid base64")
        }
        return data
    }
}

extension UUID: FieldDecodable {
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> UUID {
        guard case .string(let text) = value, let uuid = UUID(uuidString: text) else {
            throw mismatch(value, model: model, field: field, expected: "not a UUID")
        }
        return uuid
    }
}

extension URL: FieldDecodable {
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> URL {
        guard case .string(let text) = value, let url = URL(string: text) else {
            throw mismatch(value, model: model, field: field, expected: "not a URL")
        }
        return url
    }
}

extension ModelID: FieldDecodable {
    /// A string ID; an integer is read as its digits.
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws
        -> ModelID
    {
        guard let id = value.idString else {
            throw mismatch(value, model: model, field: field, expected: "not an ID (a string or an integer)")
        }
        return ModelID(id)
    }
}

extension Array: FieldDecodable where Element: FieldDecodable {
    /// A JSON array, each element read as the field's element type.
    @_spi(Generated) public static func decodeField(_ value: JSONValue, model: String, field: String) throws -> Array {
        guard case .array(let elements) = value else {
            throw mismatch(value, model: model, field: field, expected: "not an array")
        }
        var result: [Element] = []
        result.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            guard element != .null else {
                throw FieldDecodingError(
                    model: model, field: field, reason: "has null as element \(index); the elements are not optional")
            }
            do {
                result.append(try Element.decodeField(element, model: model, field: field))
            } catch let error as FieldDecodingError {
                throw FieldDecodingError(model: model, field: field, reason: "element \(index) \(error.reason)")
            }
        }
        return result
    }
}
