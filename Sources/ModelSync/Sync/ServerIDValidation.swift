import Foundation

/// An ID from the server that cannot be stored: missing, of the wrong JSON type for the spec's
/// `idType`, or a string no server should assign (empty, temporary-looking, control characters,
/// too long).
///
/// Its ``description`` reads as the end of a sentence that starts with where the ID arrived, for
/// example `the create of a Thread was answered with id "abc", which …`.
public struct InvalidServerID: Error, Sendable, Hashable, CustomStringConvertible {
    /// The value as received, as JSON text (shortened when long), or `nothing` when it was missing.
    public var received: String
    /// What is wrong with it, such as `looks like a temporary ID (prefix tmp_)`.
    public var problem: String
    /// What the spec expects, such as `a 64-bit integer (the spec's idType: int)`.
    public var expected: String

    public init(received: String, problem: String, expected: String) {
        self.received = received
        self.problem = problem
        self.expected = expected
    }

    public var description: String { "\(received), which \(problem); expected \(expected)" }
}

/// The rule every record ID that arrives from a server passes before it is stored locally: the
/// ID of a create's answer and the IDs of listed records.
///
/// - `idType: int`: a JSON integer in the 64-bit range, or a string holding one in canonical decimal
///   form (`"42"`, not `"042"`, `"+42"` or `"4.2e1"`). Anything else (a fraction, an exponent, a
///   boolean, an object, an integer beyond 64 bits, a path such as `"7/../x?y=1"`) is refused.
/// - `idType: string`: a JSON string, not empty, not starting with ``TemporaryID/prefix`` (only
///   clients make temporary IDs: storing one as permanent would make the record look unsent
///   forever), without control characters (U+0000–U+001F, U+007F–U+009F), and at most
///   ``maximumStringIDLength`` bytes of UTF-8. A JSON number is refused: set `idType: int` in the
///   spec when the server's IDs are numbers.
///
/// Characters such as `/`, `?` or `%` are allowed in string IDs: ``RESTRemote`` percent-encodes IDs
/// in paths.
public enum ServerIDRule {
    /// The longest string ID accepted, in bytes of UTF-8.
    public static let maximumStringIDLength = 256

    /// Returns the ID in its local form (a string), or throws why it cannot be stored.
    /// - Parameters:
    ///   - value: The ID as the server sent it; `nil` when the field was missing.
    ///   - idType: The JSON type of the model's IDs (the spec's `remote.idType`).
    public static func localID(from value: JSONValue?, idType: RemoteIDType) throws(InvalidServerID) -> String {
        // Every listed record passes here (its ID and each reference): the texts of a refusal are
        // built only for a refusal.
        func refuse(_ problem: String) -> InvalidServerID {
            InvalidServerID(
                received: value.map(render) ?? "nothing", problem: problem,
                expected: idType == .int ? expectedInteger : expectedString)
        }
        guard let value else { throw refuse("is missing") }
        switch (idType, value) {
        case (.int, .integer(let integer)):
            return String(integer)
        case (.int, .string(let text)):
            if TemporaryID.isTemporary(text) { throw refuse(temporaryProblem) }
            guard let integer = Int64(text), String(integer) == text else {
                throw refuse("is not an integer in canonical decimal form")
            }
            return text
        case (.int, .number):
            throw refuse("is a number with a fraction or an exponent, or beyond the 64-bit range")
        case (.string, .string(let text)):
            if text.isEmpty { throw refuse("is empty") }
            if TemporaryID.isTemporary(text) { throw refuse(temporaryProblem) }
            if !isPrintableASCII(text),
                let control = text.unicodeScalars.first(where: { $0.properties.generalCategory == .control })
            {
                let code = String(control.value, radix: 16, uppercase: true)
                throw refuse(
                    "contains a control character (U+\(String(repeating: "0", count: max(0, 4 - code.count)))\(code))")
            }
            if text.utf8.count > maximumStringIDLength {
                throw refuse("is longer than \(maximumStringIDLength) bytes (\(text.utf8.count))")
            }
            return text
        case (.string, .integer), (.string, .number):
            throw refuse("is a number, not a string")
        default:
            throw refuse("is \(kind(of: value))")
        }
    }

    private static let expectedInteger = "a 64-bit integer (the spec's idType: int)"
    private static let expectedString =
        "a string (the spec's idType: string) that is not empty, does not start with "
        + "\(TemporaryID.prefix), has no control characters and is at most \(maximumStringIDLength) bytes long"

    /// `true` when every byte of `text` is printable ASCII (U+0020–U+007E): then it holds no
    /// control character, without a look at each character's Unicode properties.
    private static func isPrintableASCII(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }

    private static let temporaryProblem =
        "looks like a temporary ID (prefix \(TemporaryID.prefix)): only clients make those"

    private static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .array: return "an array"
        case .object: return "an object"
        case .string: return "a string"
        default: return "a number"
        }
    }

    /// JSON text of `value`, shortened to 80 characters.
    static func render(_ value: JSONValue) -> String {
        let text = (try? value.serialized()).map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
        return text.count > 80 ? String(text.prefix(80)) + "…" : text
    }
}

/// A record ID that cannot be sent in a URL path (an update's or a delete's), so the request is
/// not made: an empty ID would address the collection instead of the record.
public struct UnsendableRecordID: Error, Sendable, Hashable, CustomStringConvertible {
    /// The model's name.
    public var model: String
    /// The record's ID.
    public var id: String
    /// Why it cannot be sent.
    public var reason: String

    public init(model: String, id: String, reason: String) {
        self.model = model
        self.id = id
        self.reason = reason
    }

    public var description: String {
        "the ID \(ServerIDRule.render(.string(id))) of a \(model) cannot be sent in a URL path: \(reason)"
    }
}
