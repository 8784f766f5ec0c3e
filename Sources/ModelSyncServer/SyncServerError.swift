import Foundation

/// An answer other than 2xx: its status and message, written as JSON `{"error": message}` (with
/// `"current": <record>` for a stale update).
public struct SyncServerError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public var status: Int
    /// What went wrong, for a person: the field, the value's problem, what to do.
    public var message: String
    /// The server's copy of the record (JSON text), for a `409` on a stale version.
    public var current: String?
    /// A machine-readable kind (`client_too_old`), written as `"code"`.
    public var code: String?
    /// For `client_too_old`: the oldest schema version served, written as `"minimum_schema_version"`.
    public var minimumSchemaVersion: Int?

    /// An error answer.
    public init(
        status: Int, message: String, current: String? = nil, code: String? = nil, minimumSchemaVersion: Int? = nil
    ) {
        self.status = status
        self.message = message
        self.current = current
        self.code = code
        self.minimumSchemaVersion = minimumSchemaVersion
    }

    /// `401`: the request has no valid credentials.
    public static func unauthorized(_ message: String) -> SyncServerError {
        SyncServerError(status: 401, message: message)
    }

    public var description: String { "\(status): \(message)" }

    /// The JSON body of the answer.
    public var body: String {
        var text = #"{"error":"# + jsonString(message)
        if let current { text += #","current":"# + current }
        if let code { text += #","code":"# + jsonString(code) }
        if let minimumSchemaVersion { text += #","minimum_schema_version":"# + String(minimumSchemaVersion) }
        return text + "}"
    }
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

/// The shape of a JSON value, enough to check a body's fields before they reach SQL.
enum JSONShape: Decodable, Equatable {
    case null
    case bool
    case integer
    /// A number with a fraction or an exponent, or one too large for an `Int64`.
    case number
    case string(String)
    case array
    case object([String: JSONShape])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if (try? container.decode(Bool.self)) != nil {
            self = .bool
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if (try? container.decode([JSONShape].self)) != nil {
            self = .array
        } else if let object = try? container.decode([String: JSONShape].self) {
            self = .object(object)
        } else if (try? container.decode(Int64.self)) != nil {
            self = .integer
        } else if (try? container.decode(Double.self)) != nil || (try? container.decode(Decimal.self)) != nil {
            self = .number
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    /// The body as an object, or a `400` saying what is wrong.
    static func object(from body: Data) throws -> [String: JSONShape] {
        let shape: JSONShape
        do {
            shape = try JSONDecoder().decode(JSONShape.self, from: body)
        } catch {
            throw SyncServerError(status: 400, message: "the body is not valid JSON; send one JSON object")
        }
        guard case .object(let object) = shape else {
            throw SyncServerError(status: 400, message: "the body must be a JSON object")
        }
        return object
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
