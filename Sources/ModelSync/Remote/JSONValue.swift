import Foundation

/// A JSON value: what payloads and server responses are made of.
///
/// Numbers keep their exact value: ``parse(_:)`` makes an integer that fits `Int64` an
/// ``integer(_:)``, a number whose nearest `Double` prints as the same decimal number a
/// ``number(_:)``, and any other number (more digits than a `Double` holds, beyond its range, an
/// integer beyond `Int64`) a ``decimal(_:)`` holding its text. ``serialized()`` writes each back as
/// the same decimal number, so a `Decimal` or `Double` decoded from the output equals the one that
/// was encoded into the input.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    /// A number a `Double` holds exactly as written; serialized in its shortest form, which reads
    /// back to the same bits (`-0.0` and subnormals included).
    case number(Double)
    case integer(Int64)
    /// A number kept as its JSON text (`-? digits (. digits)? ([eE] [+-]? digits)?`) because
    /// neither `Int64` nor `Double` holds it exactly: `12345678901234567.89`, a 38-digit decimal,
    /// `1e400`. Serialized verbatim.
    case decimal(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let integer = try? container.decode(Int64.self) {
            self = .integer(integer)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let bool): try container.encode(bool)
        case .number(let number): try container.encode(number)
        case .integer(let integer): try container.encode(integer)
        case .decimal(let text):
            // An encoder writes a Decimal as its digits; beyond Decimal's range only a Double is left.
            if let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), !decimal.isNaN {
                try container.encode(decimal)
            } else {
                try container.encode(Double(text) ?? .nan)
            }
        case .string(let string): try container.encode(string)
        case .array(let array): try container.encode(array)
        case .object(let object): try container.encode(object)
        }
    }

    /// Parses JSON text (RFC 8259), keeping every number exact (see ``JSONValue``).
    ///
    /// - Throws: ``ParseError`` naming the problem and its byte offset: malformed syntax, invalid
    ///   UTF-8, an unescaped control character, an unpaired surrogate escape, or nesting deeper than
    ///   ``maximumNestingDepth``.
    public static func parse(_ data: Data) throws -> JSONValue {
        try JSONParser.parse(data)
    }

    /// The value of a JSON number's text, classified as ``parse(_:)`` does; `nil` when `text` is
    /// not exactly one JSON number.
    public static func number(text: String) -> JSONValue? {
        var text = text
        return text.withUTF8 { bytes in
            guard !bytes.isEmpty, JSONNumberText.scan(bytes, from: 0) == bytes.count else { return nil }
            return JSONNumberText.value(bytes)
        }
    }

    /// JSON text, keys sorted. Throws for a non-finite number.
    public func serialized() throws -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        try write(to: &bytes)
        return Data(bytes)
    }

    private func write(to bytes: inout [UInt8]) throws {
        switch self {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let bool): bytes.append(contentsOf: (bool ? "true" : "false").utf8)
        case .integer(let integer): bytes.append(contentsOf: String(integer).utf8)
        case .number(let number):
            guard number.isFinite else {
                throw EncodingError.invalidValue(
                    number, .init(codingPath: [], debugDescription: "\(number) is not a JSON number"))
            }
            bytes.append(contentsOf: "\(number)".utf8)
        case .decimal(let text):
            guard JSONNumberText.isNumber(text) else {
                throw EncodingError.invalidValue(
                    text, .init(codingPath: [], debugDescription: "'\(text)' is not a JSON number"))
            }
            bytes.append(contentsOf: text.utf8)
        case .string(let string): JSONText.appendString(string, to: &bytes)
        case .array(let array):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                try element.write(to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            for (index, key) in object.keys.sorted().enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONText.appendString(key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                try object[key]!.write(to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// A string or an integer, as a string: how IDs are read whatever their JSON type.
    public var idString: String? {
        switch self {
        case .string(let string): return string
        case .integer(let integer): return String(integer)
        case .number(let number) where number.rounded() == number && abs(number) < 1e15: return String(Int64(number))
        case .decimal(let text) where text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }):
            return text  // an integer beyond Int64, digit for digit
        default: return nil
        }
    }

    /// The number as the nearest `Double` (`nil` for anything but a number; infinite for a
    /// ``decimal(_:)`` beyond the range of `Double`).
    public var doubleValue: Double? {
        switch self {
        case .number(let number): return number
        case .integer(let integer): return Double(integer)
        case .decimal(let text): return Double(text)
        default: return nil
        }
    }

    /// The number's exact decimal text, as ``serialized()`` writes it (`nil` for anything but a
    /// finite number).
    public var numberText: String? {
        switch self {
        case .number(let number) where number.isFinite: return "\(number)"
        case .integer(let integer): return String(integer)
        case .decimal(let text): return text
        default: return nil
        }
    }

    public var isNull: Bool { self == .null }
}
