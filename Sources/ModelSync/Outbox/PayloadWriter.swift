import Foundation
import GRDB

/// Writes the JSON payload of an outbox entry straight from a record's stored values: `id` first,
/// then the fields in column order, `null` for a nil optional.
///
/// The JSON is the record's local form (dates as seconds since 2001-01-01, data as base64, booleans
/// as `true`/`false`, arrays as JSON, Decimals as their exact number), which generated
/// `init(fields:)` reads back (`RecordCodec.swift`): a payload always decodes back to the record. It
/// is several times faster than `JSONEncoder`. ``fields(values:schema:)`` gives the same local form
/// as values, without JSON text.
struct PayloadWriter {
    private var bytes: [UInt8] = []
    private let model: String

    /// - Throws: ``ModelSyncError/invalidValue(model:field:reason:)`` for a value JSON cannot carry
    ///   exactly (a non-finite number, text that is not a number in a Decimal column).
    static func payload(values: [(any DatabaseValueConvertible)?], schema: ModelSchema) throws -> String {
        var writer = PayloadWriter(model: schema.name)
        writer.bytes.reserveCapacity(64 + 32 * values.count)
        writer.bytes.append(UInt8(ascii: "{"))
        writer.writeKey("id")
        try writer.write(values[0]?.databaseValue ?? .null, type: .text, column: "id")
        for (index, field) in schema.fields.enumerated() {
            writer.bytes.append(UInt8(ascii: ","))
            writer.writeKey(field.name)
            try writer.write(values[index + 1]?.databaseValue ?? .null, type: field.type, column: field.name)
        }
        writer.bytes.append(UInt8(ascii: "}"))
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// Checks that ``payload(values:schema:)`` can write these values, without writing them: what a
    /// save checks, since the payload itself is only written when the change is first sent.
    ///
    /// - Throws: ``ModelSyncError/invalidValue(model:field:reason:)`` as ``payload(values:schema:)``.
    static func validate(values: [DatabaseValue], schema: ModelSchema) throws {
        for (index, field) in schema.fields.enumerated() {
            switch values[index + 1].storage {
            case .double(let double) where !double.isFinite:
                try rejectNonFinite(double, field: field.name, model: schema.name)
            case .string(let string) where field.type == .decimal && !JSONNumberText.isNumber(string):
                throw ModelSyncError.invalidValue(
                    model: schema.name, field: field.name,
                    reason: "'\(string)' is not a number JSON can carry; store a finite Decimal")
            case .blob(let data) where field.type == .double && data.count == 8:
                let double = Double(bitPattern: data.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
                if !double.isFinite { try rejectNonFinite(double, field: field.name, model: schema.name) }
            default: continue
            }
        }
    }

    private static func rejectNonFinite(_ double: Double, field: String, model: String) throws {
        throw ModelSyncError.invalidValue(
            model: model, field: field,
            reason: "the value is \(double.isNaN ? "NaN (not a number)" : "\(double)"), which JSON cannot carry to the "
                + "server; store a finite number")
    }

    /// The record's local form as values: what ``payload(values:schema:)`` writes, parsed (without
    /// the text in between).
    ///
    /// - Throws: ``ModelSyncError/invalidValue(model:field:reason:)`` as ``payload(values:schema:)``.
    static func fields(values: [(any DatabaseValueConvertible)?], schema: ModelSchema) throws -> RecordFields {
        var fields = RecordFields(minimumCapacity: values.count)
        fields["id"] = try fieldValue(values[0]?.databaseValue ?? .null, type: .text, column: "id", model: schema.name)
        for (index, field) in schema.fields.enumerated() {
            fields[field.name] = try fieldValue(
                values[index + 1]?.databaseValue ?? .null, type: field.type, column: field.name, model: schema.name)
        }
        return fields
    }

    /// One stored value in local form, as ``write(_:type:column:)`` writes it.
    private static func fieldValue(_ value: DatabaseValue, type: ColumnType, column: String, model: String) throws
        -> JSONValue
    {
        func invalid(_ reason: String) -> ModelSyncError { .invalidValue(model: model, field: column, reason: reason) }
        func number(_ double: Double) throws -> JSONValue {
            guard double.isFinite else {
                throw invalid(
                    "the value is \(double.isNaN ? "NaN (not a number)" : "\(double)"), which JSON cannot carry to "
                        + "the server; store a finite number")
            }
            return .number(double)
        }
        switch value.storage {
        case .null: return .null
        case .int64(let integer): return type == .boolean ? .bool(integer != 0) : .integer(integer)
        case .double(let double): return try number(double)
        case .string(let string):
            switch type {
            case .json:
                do {
                    return try JSONValue.parse(Data(string.utf8))
                } catch {
                    throw invalid("the stored JSON cannot be read (\(error)); save the record again")
                }
            case .decimal:
                guard let number = JSONValue.number(text: string) else {
                    throw invalid("'\(string)' is not a number JSON can carry; store a finite Decimal")
                }
                return number
            default: return .string(string)
            }
        case .blob(let data):
            switch type {
            case .text: return .string(String(decoding: data, as: UTF8.self))
            case .double where data.count == 8:
                return try number(Double(bitPattern: data.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))
            default: return .string(data.base64EncodedString())
            }
        }
    }

    private init(model: String) {
        self.model = model
    }

    private mutating func writeKey(_ key: String) {
        writeString(key)
        bytes.append(UInt8(ascii: ":"))
    }

    private func invalid(_ column: String, _ reason: String) -> ModelSyncError {
        .invalidValue(model: model, field: column, reason: reason)
    }

    private mutating func write(_ value: DatabaseValue, type: ColumnType, column: String) throws {
        switch value.storage {
        case .null:
            bytes.append(contentsOf: "null".utf8)
        case .int64(let integer):
            if type == .boolean {
                bytes.append(contentsOf: (integer != 0 ? "true" : "false").utf8)
            } else {
                bytes.append(contentsOf: String(integer).utf8)
            }
        case .double(let double):
            try writeDouble(double, column: column)
        case .string(let string):
            switch type {
            case .json:
                bytes.append(contentsOf: string.utf8)
            case .decimal:
                guard JSONNumberText.isNumber(string) else {
                    throw invalid(column, "'\(string)' is not a number JSON can carry; store a finite Decimal")
                }
                bytes.append(contentsOf: string.utf8)
            default:
                writeString(string)
            }
        case .blob(let data):
            switch type {
            case .text:
                // StoredString keeps text holding NUL as a BLOB of its UTF-8 bytes.
                writeString(String(decoding: data, as: UTF8.self))
            case .double where data.count == 8:
                // StoredDouble keeps -0.0 as a BLOB of its bits.
                try writeDouble(Double(bitPattern: data.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }), column: column)
            default:
                writeString(data.base64EncodedString())
            }
        }
    }

    /// Writes the shortest text that reads back to the same bits.
    private mutating func writeDouble(_ double: Double, column: String) throws {
        guard double.isFinite else {
            throw invalid(
                column,
                "the value is \(double.isNaN ? "NaN (not a number)" : "\(double)"), which JSON cannot carry to the "
                    + "server; store a finite number")
        }
        bytes.append(contentsOf: "\(double)".utf8)
    }

    private mutating func writeString(_ string: String) {
        JSONText.appendString(string, to: &bytes)
    }
}

/// JSON text helpers shared by the payload writer and ``JSONValue``.
enum JSONText {
    private static let hex = Array("0123456789abcdef".utf8)

    /// Appends `string` as a JSON string literal (quotes, backslashes and control characters escaped).
    static func appendString(_ string: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
