import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Plain JSON over HTTP (URLSession). Paths, ID types and key naming come from each model's spec
/// (`remote:` blocks); everything else is a ``RESTRemote/Configuration`` setting.
///
/// ```swift
/// let remote = RESTRemote(
///     configuration: .init(baseURL: URL(string: "https://api.example.com/v1")!,
///                          headers: { ["Authorization": "Bearer \(await tokens.current())"] }),
///     models: GeneratedModels.all)
/// ```
public struct RESTRemote: SyncRemote {
    /// Where a listing keeps its records.
    public enum ListEnvelope: Sendable, Hashable {
        /// The body is the array of records.
        case bareArray
        /// The body is an object holding the array under this key (such as `data` or `items`).
        case key(String)
    }

    public struct Configuration: Sendable {
        /// Prefix of every path (paths from the spec are appended verbatim).
        public var baseURL: URL
        /// Extra headers for every request (authentication), fetched before each request.
        public var headers: @Sendable () async throws -> [String: String]
        /// Seconds before a request without an answer counts as a (transient) failure.
        public var timeout: TimeInterval
        /// The path of one record; `{path}` is the collection path and `{id}` the record's ID.
        public var itemPathTemplate: String
        /// The JSON key of IDs.
        public var idField: String
        public var listEnvelope: ListEnvelope
        /// The query parameter that passes the cursor of an incremental listing.
        public var cursorParameter: String
        /// The key of the next cursor in a listing's envelope (ignored for bare arrays).
        public var nextCursorKey: String
        /// The key that marks a listed record as deleted (a tombstone).
        public var deletedFlagKey: String
        /// The key of a record's server version (sent back as `If-Match` with its next update), or
        /// `nil` for a server without versions: updates are then last-writer-wins.
        public var versionKey: String?
        /// The key under which the server echoes the `Idempotency-Key` that created a record, or
        /// `nil` when it does not: a lost create answer is then recognised only when the server's
        /// copy equals what the create sent.
        public var creationKeyKey: String?
        /// Per-table changes to the spec's conventions (path, ID type, key naming).
        public var overrides: [String: RemoteSchema]

        public init(
            baseURL: URL,
            headers: @escaping @Sendable () async throws -> [String: String] = { [:] },
            timeout: TimeInterval = 30,
            itemPathTemplate: String = "{path}/{id}",
            idField: String = "id",
            listEnvelope: ListEnvelope = .key("data"),
            cursorParameter: String = "cursor",
            nextCursorKey: String = "next_cursor",
            deletedFlagKey: String = "deleted",
            versionKey: String? = "_version",
            creationKeyKey: String? = "_idempotency_key",
            overrides: [String: RemoteSchema] = [:]
        ) {
            self.baseURL = baseURL
            self.headers = headers
            self.timeout = timeout
            self.itemPathTemplate = itemPathTemplate
            self.idField = idField
            self.listEnvelope = listEnvelope
            self.cursorParameter = cursorParameter
            self.nextCursorKey = nextCursorKey
            self.deletedFlagKey = deletedFlagKey
            self.versionKey = versionKey
            self.creationKeyKey = creationKeyKey
            self.overrides = overrides
        }
    }

    public let configuration: Configuration
    private let schemasByTable: [String: ModelSchema]
    private let session: URLSession

    /// - Parameters:
    ///   - configuration: The server's base URL, headers and conventions.
    ///   - models: Every model (`GeneratedModels.all`): foreign keys are sent in the JSON type of the
    ///     model they reference.
    ///   - session: The URLSession to use; by default one with `configuration.timeout`.
    public init(configuration: Configuration, models: [any SyncModel.Type], session: URLSession? = nil) {
        self.configuration = configuration
        var schemas: [String: ModelSchema] = [:]
        for model in models { schemas[model.schema.tableName] = model.schema }
        self.schemasByTable = schemas
        if let session {
            self.session = session
        } else {
            let sessionConfiguration = URLSessionConfiguration.ephemeral
            sessionConfiguration.timeoutIntervalForRequest = configuration.timeout
            sessionConfiguration.httpMaximumConnectionsPerHost = 16
            sessionConfiguration.requestCachePolicy = .reloadIgnoringLocalCacheData
            // No URLCache: on Linux, FoundationNetworking looks the cache up on a background queue
            // before the request starts, and cancelling a request in that window (a cancelled push)
            // traps in URLSession's task registry. Sync requests are never served from a cache anyway.
            sessionConfiguration.urlCache = nil
            self.session = URLSession(configuration: sessionConfiguration)
        }
    }

    // MARK: SyncRemote

    public func create(_ fields: RecordFields, of model: ModelSchema, idempotencyKey: String) async throws
        -> RecordFields
    {
        let remote = conventions(model)
        var body = try wireObject(fields, model: model, includeID: model.idGeneration == .client)
        if model.idGeneration == .server { body.removeValue(forKey: configuration.idField) }
        let response = try await send(
            "POST", path: remote.path, body: .object(body), headers: ["Idempotency-Key": idempotencyKey])
        guard let object = response?.objectValue else {
            throw RemoteError.invalidResponse("the create of a \(model.name) returned no JSON object")
        }
        let record = try localFields(object, model: model)
        guard record["id"]?.idString != nil else {
            throw RemoteError.invalidResponse(
                "the create of a \(model.name) returned no '\(configuration.idField)' field")
        }
        return record
    }

    public func update(_ fields: RecordFields, of model: ModelSchema, idempotencyKey: String) async throws
        -> RecordFields?
    {
        guard let id = fields["id"]?.idString else {
            throw RemoteError.invalidResponse("an update of a \(model.name) has no id")
        }
        let body = try wireObject(fields, model: model, includeID: true)
        var headers = ["Idempotency-Key": idempotencyKey]
        if configuration.versionKey != nil, let version = fields[RecordMetadata.version]?.idString {
            headers["If-Match"] = "\"\(version)\""
        }
        do {
            let response = try await send("PUT", path: itemPath(model, id: id), body: .object(body), headers: headers)
            guard let object = response?.objectValue else { return nil }
            return try localFields(object, model: model)
        } catch let stale as StaleVersion {
            throw RemoteError.conflict(message: stale.message, serverCopy: try localFields(stale.current, model: model))
        }
    }

    public func fetch(id: String, of model: ModelSchema) async throws -> RecordFields? {
        do {
            guard let object = try await send("GET", path: itemPath(model, id: id), body: nil)?.objectValue else {
                throw RemoteError.invalidResponse("GET of a \(model.name) returned no JSON object")
            }
            return try localFields(object, model: model)
        } catch RemoteError.http(let status, _, _) where status == 404 || status == 410 {
            return nil
        }
    }

    public func delete(id: String, of model: ModelSchema) async throws {
        do {
            _ = try await send("DELETE", path: itemPath(model, id: id), body: nil)
        } catch RemoteError.http(let status, _, _) where status == 404 || status == 410 {
            return  // already gone
        }
    }

    public func list(_ model: ModelSchema, after cursor: String?) async throws -> RemotePage {
        var path = conventions(model).path
        if let cursor {
            let encoded = cursor.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? cursor
            path += (path.contains("?") ? "&" : "?") + "\(configuration.cursorParameter)=\(encoded)"
        }
        let response = try await send("GET", path: path, body: nil)
        let items: [JSONValue]
        var nextCursor: String?
        switch configuration.listEnvelope {
        case .bareArray:
            guard let array = response?.arrayValue else {
                throw RemoteError.invalidResponse("listing \(path) did not return a JSON array")
            }
            items = array
        case .key(let key):
            guard let object = response?.objectValue, let array = object[key]?.arrayValue else {
                throw RemoteError.invalidResponse("listing \(path) did not return an object with a '\(key)' array")
            }
            items = array
            nextCursor = object[configuration.nextCursorKey]?.idString
        }
        var records: [RecordFields] = []
        var deleted: [String] = []
        for item in items {
            guard let object = item.objectValue else { continue }
            if object[configuration.deletedFlagKey] == .bool(true) {
                if let id = object[configuration.idField]?.idString { deleted.append(id) }
            } else {
                records.append(try localFields(object, model: model))
            }
        }
        let hasMore = nextCursor != nil && nextCursor != cursor && !items.isEmpty
        return RemotePage(records: records, deletedIDs: deleted, nextCursor: nextCursor, hasMore: hasMore)
    }

    // MARK: Conventions

    /// The model's REST conventions: the spec's, unless overridden in the configuration.
    public func conventions(_ model: ModelSchema) -> RemoteSchema {
        configuration.overrides[model.tableName] ?? model.remote
    }

    func itemPath(_ model: ModelSchema, id: String) -> String {
        let collection = conventions(model).path
        let base = collection.hasSuffix("/") ? String(collection.dropLast()) : collection
        let encodedID = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id
        return configuration.itemPathTemplate.replacingOccurrences(of: "{path}", with: base)
            .replacingOccurrences(of: "{id}", with: encodedID)
    }

    /// Local form to wire form: key naming, IDs and foreign keys in their JSON type, ISO 8601 dates.
    func wireObject(_ fields: RecordFields, model: ModelSchema, includeID: Bool) throws -> [String: JSONValue] {
        let remote = conventions(model)
        var object: [String: JSONValue] = [:]
        if includeID, let id = fields["id"]?.idString {
            object[configuration.idField] = try wireID(id, type: remote.idType, model: model.name)
        }
        let foreignKeys = Dictionary(uniqueKeysWithValues: model.foreignKeys.map { ($0.column, $0) })
        for field in model.fields {
            let value = fields[field.name] ?? .null
            let key = remote.fieldNaming.wireKey(for: field.name)
            if let foreignKey = foreignKeys[field.name], let id = value.idString {
                let target = schemasByTable[foreignKey.table].map(conventions)
                object[key] = try wireID(id, type: target?.idType ?? .string, model: model.name)
            } else if field.type == .date, case .number(let seconds) = value {
                object[key] = .string(Self.iso8601(Date(timeIntervalSinceReferenceDate: seconds)))
            } else if field.type == .date, case .integer(let seconds) = value {
                object[key] = .string(Self.iso8601(Date(timeIntervalSinceReferenceDate: Double(seconds))))
            } else {
                object[key] = value
            }
        }
        return object
    }

    /// Wire form to local form.
    func localFields(_ object: [String: JSONValue], model: ModelSchema) throws -> RecordFields {
        let remote = conventions(model)
        var fields: RecordFields = [:]
        if let id = object[configuration.idField]?.idString { fields["id"] = .string(id) }
        if let key = configuration.versionKey, let version = object[key]?.idString {
            fields[RecordMetadata.version] = .string(version)
        }
        if let key = configuration.creationKeyKey, let creationKey = object[key]?.stringValue {
            fields[RecordMetadata.creationKey] = .string(creationKey)
        }
        let foreignKeys = Set(model.foreignKeys.map(\.column))
        for field in model.fields {
            let key = remote.fieldNaming.wireKey(for: field.name)
            guard let value = object[key] else { continue }
            if foreignKeys.contains(field.name), let id = value.idString {
                fields[field.name] = .string(id)
            } else if field.type == .date, case .string(let text) = value {
                guard let date = Self.parseISO8601(text) else {
                    throw RemoteError.invalidResponse("'\(key)' of a \(model.name) is not an ISO 8601 date: \(text)")
                }
                fields[field.name] = .number(date.timeIntervalSinceReferenceDate)
            } else {
                fields[field.name] = value
            }
        }
        return fields
    }

    private func wireID(_ id: String, type: RemoteIDType, model: String) throws -> JSONValue {
        switch type {
        case .string: return .string(id)
        case .int:
            guard let integer = Int64(id) else {
                throw RemoteError.invalidResponse("ID '\(id)' of a \(model) is not an integer, as its spec requires")
            }
            return .integer(integer)
        }
    }

    /// A date as the wire shows it: ISO 8601 with milliseconds, in UTC.
    public static func iso8601(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// Reads an ISO 8601 date, with or without fractional seconds.
    public static func parseISO8601(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }

    /// Sends `request`, returning as soon as the calling task is cancelled (with a
    /// `CancellationError`) without cancelling the URLSession task: on Linux, FoundationNetworking
    /// can trap or never resume `data(for:)` when its task is cancelled mid-request. The abandoned
    /// request ends by itself (answer or `timeout`); a create it completes is replayed with the
    /// same idempotency key.
    static func data(for request: URLRequest, in session: URLSession) async throws -> (Data, URLResponse) {
        try Task.checkCancellation()
        let outcome = OneShot<(Data, URLResponse)>()
        Task.detached {
            do {
                outcome.resume(.success(try await session.data(for: request)))
            } catch {
                outcome.resume(.failure(error))
            }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { outcome.wait(with: $0) }
        } onCancel: {
            outcome.resume(.failure(CancellationError()))
        }
    }

    // MARK: HTTP

    private func send(_ method: String, path: String, body: JSONValue?, headers: [String: String] = [:])
        async throws -> JSONValue?
    {
        let urlString = configuration.baseURL.absoluteString.trimmingSuffix("/") + path
        guard let url = URL(string: urlString) else {
            throw RemoteError.invalidResponse("'\(urlString)' is not a valid URL")
        }
        var request = URLRequest(url: url, timeoutInterval: configuration.timeout)
        request.httpMethod = method
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let body {
            request.httpBody = try body.serialized()
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        for (name, value) in try await configuration.headers() { request.setValue(value, forHTTPHeaderField: name) }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }

        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await Self.data(for: request, in: session)
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as URLError where error.code == .cancelled {
            throw CancellationError()
        } catch {
            throw RemoteError.transport("\(method) \(path): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw RemoteError.invalidResponse("\(method) \(path) got no HTTP response")
        }
        guard (200..<300).contains(http.statusCode) else {
            if http.statusCode == 409, method == "PUT", let object = (try? JSONValue.parse(data))?.objectValue,
                let current = object["current"]?.objectValue
            {
                throw StaleVersion(message: Self.errorMessage(data, status: 409), current: current)
            }
            let retryAfter = http.value(forHTTPHeaderField: "Retry-After").flatMap(Self.parseRetryAfter)
            throw RemoteError.http(
                status: http.statusCode, message: Self.errorMessage(data, status: http.statusCode),
                retryAfter: retryAfter)
        }
        guard !data.isEmpty else { return nil }
        do {
            return try JSONValue.parse(data)
        } catch {
            throw RemoteError.invalidResponse(
                "\(method) \(path) answered \(http.statusCode) with a body that is not JSON: "
                    + Self.excerpt(String(decoding: data, as: UTF8.self)))
        }
    }

    /// Seconds from a `Retry-After` header: a number of seconds or an HTTP date.
    static func parseRetryAfter(_ value: String) -> TimeInterval? {
        if let seconds = TimeInterval(value.trimmingCharacters(in: .whitespaces)) { return max(0, seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).map { max(0, $0.timeIntervalSinceNow) }
    }

    /// The server's explanation: `error` or `message` of a JSON body, else a readable excerpt of
    /// the text (HTML tags removed).
    static func errorMessage(_ data: Data, status: Int) -> String {
        if let object = (try? JSONValue.parse(data))?.objectValue {
            for key in ["message", "error", "detail", "title"] {
                if let text = object[key]?.stringValue { return text }
                if let nested = object[key]?.objectValue?["message"]?.stringValue { return nested }
            }
        }
        let text = excerpt(String(decoding: data, as: UTF8.self))
        return text.isEmpty ? HTTPURLResponse.localizedString(forStatusCode: status) : text
    }

    static func excerpt(_ text: String) -> String {
        var plain = ""
        var insideTag = false
        for character in text {
            if character == "<" {
                insideTag = true
            } else if character == ">" {
                insideTag = false
                plain.append(" ")
            } else if !insideTag {
                plain.append(character)
            }
        }
        let collapsed = plain.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return collapsed.count > 200 ? String(collapsed.prefix(200)) + "…" : collapsed
    }
}

/// A 409 answer to an update, with the server's copy (wire form) under `current`.
private struct StaleVersion: Error {
    var message: String
    var current: [String: JSONValue]
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

/// A result delivered once to a continuation, whichever comes first: the result or the waiter.
final class OneShot<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Value, any Error>?
    private var continuation: CheckedContinuation<Value, any Error>?

    func wait(with continuation: CheckedContinuation<Value, any Error>) {
        lock.lock()
        if let result {
            lock.unlock()
            continuation.resume(with: result)
            return
        }
        self.continuation = continuation
        lock.unlock()
    }

    /// Delivers `result` unless one was delivered already.
    func resume(_ result: Result<Value, any Error>) {
        lock.lock()
        guard self.result == nil else {
            lock.unlock()
            return
        }
        self.result = result
        let continuation = self.continuation
        self.continuation = nil
        lock.unlock()
        continuation?.resume(with: result)
    }
}
