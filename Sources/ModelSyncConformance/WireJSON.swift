import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A JSON value as the kit sends and reads it: integers stay integers (an ID `7` is not `7.0`), and
/// `true` is not `1`.
enum WireJSON: Sendable, Hashable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([WireJSON])
    case object([String: WireJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([WireJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: WireJSON].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses a JSON document; `nil` when it is not JSON.
    static func parse(_ data: Data) -> WireJSON? {
        try? JSONDecoder().decode(WireJSON.self, from: data)
    }

    /// The compact JSON text (keys sorted).
    var serialized: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("null".utf8)
    }

    var description: String { String(decoding: serialized, as: UTF8.self) }

    var objectValue: [String: WireJSON]? {
        if case .object(let value) = self { return value }
        return nil
    }

    var arrayValue: [WireJSON]? {
        if case .array(let value) = self { return value }
        return nil
    }

    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// An ID or cursor as text: a string as is, an integer in decimal; `nil` for anything else.
    var idText: String? {
        switch self {
        case .string(let value): return value
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    /// What JSON type this is, for messages: `a string`, `a number`.
    var kind: String {
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

/// One HTTP answer.
struct HTTPAnswer: Sendable {
    var method: String
    /// The path and query the request was sent to.
    var target: String
    var status: Int
    var contentType: String?
    var body: Data

    var isSuccess: Bool { (200..<300).contains(status) }

    /// The body as JSON, `nil` when it is not JSON.
    var json: WireJSON? { body.isEmpty ? nil : WireJSON.parse(body) }

    /// The body as a JSON object, `nil` when it is not one.
    var object: [String: WireJSON]? { json?.objectValue }

    /// `POST /threads`.
    var request: String { "\(method) \(target)" }

    /// The error message of a JSON error body (`error`, `message`, `detail` or `title`), `nil` when the
    /// body is not such an object.
    var errorMessage: String? {
        guard let object else { return nil }
        for key in ["error", "message", "detail", "title"] {
            if let text = object[key]?.stringValue { return text }
            if let nested = object[key]?.objectValue, let text = nested["message"]?.stringValue { return text }
        }
        return nil
    }

    /// Whether the answer is a JSON error as the protocol asks: a JSON object with a message.
    var isJSONError: Bool { errorMessage != nil }

    /// `422 {"error":"…"}`, or `500 text/html "<html>…"`, shortened, for messages.
    var summary: String {
        let text = String(decoding: body.prefix(400), as: UTF8.self)
            .replacingOccurrences(of: "\n", with: " ")
        let shown = text.count > 160 ? String(text.prefix(160)) + "…" : text
        if json != nil { return "\(status) \(shown)" }
        if body.isEmpty { return "\(status) with an empty body" }
        return "\(status) \(contentType ?? "without a Content-Type") \"\(shown)\""
    }
}

/// A failure to talk to the server at all (refused connection, timeout).
struct TransportFailure: Error, CustomStringConvertible {
    var request: String
    var reason: String
    var description: String { "\(request) got no answer: \(reason)" }
}

/// Sends the kit's requests: plain URLSession, no cache, no redirects followed silently.
final class ConformanceHTTP: Sendable {
    let baseURL: URL
    private let session: URLSession

    init(baseURL: URL, timeout: TimeInterval) {
        self.baseURL = baseURL
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        session = URLSession(configuration: configuration)
    }

    /// Sends one request. `token` becomes `Authorization: Bearer <token>`.
    func send(
        _ method: String, _ target: String, json: WireJSON? = nil, rawBody: Data? = nil, token: String?,
        headers: [String: String] = [:]
    ) async throws -> HTTPAnswer {
        let text =
            baseURL.absoluteString.hasSuffix("/") ? String(baseURL.absoluteString.dropLast()) : baseURL.absoluteString
        guard let url = URL(string: text + target) else {
            throw TransportFailure(request: "\(method) \(target)", reason: "'\(text + target)' is not a valid URL")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let body = rawBody ?? json?.serialized {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw TransportFailure(request: "\(method) \(target)", reason: error.localizedDescription)
        }
        guard let http = response as? HTTPURLResponse else {
            throw TransportFailure(request: "\(method) \(target)", reason: "not an HTTP response")
        }
        return HTTPAnswer(
            method: method, target: target, status: http.statusCode,
            contentType: http.value(forHTTPHeaderField: "Content-Type"), body: data)
    }
}
