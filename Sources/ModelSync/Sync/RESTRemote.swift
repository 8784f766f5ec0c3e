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

    public func update(_ fields: RecordFields, of model: ModelSchema) async throws {
        guard let id = fields["id"]?.idString else {
            throw RemoteError.invalidResponse("an update of a \(model.name) has no id")
        }
        let body = try wireObject(fields, model: model, includeID: true)
        _ = try await send("PUT", path: itemPath(model, id: id), body: .object(body))
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
        var rejected: [RejectedRecord] = []
        for (position, item) in items.enumerated() {
            guard let object = item.objectValue else {
                rejected.append(
                    RejectedRecord(
                        id: nil, reason: "item \(position) of the \(model.name) listing is not a JSON object"))
                continue
            }
            let id = object[configuration.idField]?.idString
            if object[configuration.deletedFlagKey] == .bool(true) {
                if let id {
                    deleted.append(id)
                } else {
                    rejected.append(
                        RejectedRecord(
                            id: nil,
                            reason: "item \(position) of the \(model.name) listing is marked deleted "
                                + "but has no '\(configuration.idField)'"))
                }
                continue
            }
            // One record that cannot be read is reported; the rest of the page is applied.
            do {
                records.append(try listedFields(object, model: model))
            } catch {
                let record = id.map { "\(model.name) '\($0)'" } ?? "item \(position) of the \(model.name) listing"
                rejected.append(RejectedRecord(id: id, reason: "\(record): \(error.reason)"))
            }
        }
        let hasMore = nextCursor != nil && nextCursor != cursor && !items.isEmpty
        return RemotePage(
            records: records, deletedIDs: deleted, nextCursor: nextCursor, hasMore: hasMore, rejected: rejected)
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

    /// Local form to wire form: key naming, IDs and foreign keys in their JSON type, ISO 8601 dates
    /// (exact, see ``iso8601(_:)``); numbers go as they are, exact.
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
            } else if field.type == .date, let seconds = value.doubleValue {
                guard let text = WireDate.format(seconds) else {
                    throw RemoteError.invalidResponse(
                        "'\(field.name)' of a \(model.name) is \(seconds) seconds, which is not a date")
                }
                object[key] = .string(text)
            } else {
                object[key] = value
            }
        }
        return object
    }

    /// A problem with one field of a record the server sent.
    struct FieldProblem: Error {
        var reason: String
    }

    /// Wire form to local form: property names, string IDs, dates as seconds since 2001.
    ///
    /// - Throws: ``RemoteError/invalidResponse(_:)`` when a date cannot be read.
    func localFields(_ object: [String: JSONValue], model: ModelSchema) throws -> RecordFields {
        do {
            return try convert(object, model: model, checkingTypes: false)
        } catch {
            throw RemoteError.invalidResponse("a \(model.name) from the server: \(error.reason)")
        }
    }

    /// A listed record in local form, each field checked against its column type so that one
    /// record that cannot be stored is rejected on its own.
    func listedFields(_ object: [String: JSONValue], model: ModelSchema) throws(FieldProblem) -> RecordFields {
        try convert(object, model: model, checkingTypes: true)
    }

    private func convert(_ object: [String: JSONValue], model: ModelSchema, checkingTypes: Bool)
        throws(FieldProblem) -> RecordFields
    {
        let remote = conventions(model)
        var fields: RecordFields = [:]
        if let id = object[configuration.idField]?.idString {
            fields["id"] = .string(id)
        } else if checkingTypes {
            throw FieldProblem(reason: "it has no usable '\(configuration.idField)' (a string or an integer)")
        }
        let foreignKeys = Set(model.foreignKeys.map(\.column))
        for field in model.fields {
            let key = remote.fieldNaming.wireKey(for: field.name)
            let name = key == field.name ? "field '\(key)'" : "field '\(key)' (\(field.name))"
            guard let value = object[key] else {
                if checkingTypes, !field.isOptional {
                    throw FieldProblem(reason: "\(name) is missing and the field is not optional")
                }
                continue
            }
            if value == .null {
                if checkingTypes, !field.isOptional {
                    throw FieldProblem(reason: "\(name) is null and the field is not optional")
                }
                fields[field.name] = .null
            } else if foreignKeys.contains(field.name) {
                guard let id = value.idString else {
                    if checkingTypes { throw FieldProblem(reason: "\(name) is \(Self.describe(value)), not an ID") }
                    fields[field.name] = value
                    continue
                }
                fields[field.name] = .string(id)
            } else if field.type == .date, case .string(let text) = value {
                switch WireDate.parse(text) {
                case .success(let seconds): fields[field.name] = .number(seconds)
                case .failure(let error):
                    throw FieldProblem(reason: "\(name) is not an ISO 8601 date: \(error.reason): \(Self.quote(text))")
                }
            } else {
                if checkingTypes, let problem = Self.typeProblem(value, type: field.type) {
                    throw FieldProblem(reason: "\(name) \(problem)")
                }
                fields[field.name] = value
            }
        }
        return fields
    }

    /// Why `value` cannot be stored in a column of `type` (a non-null value that is not a foreign
    /// key nor a date string), or `nil` when it can.
    private static func typeProblem(_ value: JSONValue, type: ColumnType) -> String? {
        switch type {
        case .text:
            if case .string = value { return nil }
            return "is \(describe(value)), not a string"
        case .boolean:
            if case .bool = value { return nil }
            return "is \(describe(value)), not true or false"
        case .integer:
            switch value {
            case .integer: return nil
            case .number(let number) where Int64(exactly: number) != nil: return nil
            case .number, .decimal: return "is \(describe(value)), which is not an integer from Int64.min to Int64.max"
            default: return "is \(describe(value)), not an integer"
            }
        case .double, .date:
            guard let double = value.doubleValue else {
                return type == .date
                    ? "is \(describe(value)), not an ISO 8601 date" : "is \(describe(value)), not a number"
            }
            return double.isFinite ? nil : "is \(describe(value)), beyond the range of a Double"
        case .decimal:
            guard let text = value.numberText else { return "is \(describe(value)), not a number" }
            guard let decimal = Decimal(string: text, locale: posixLocale), !decimal.isNaN,
                StoredDecimal.isExact(decimal, text: text)
            else { return "is \(describe(value)), which a Decimal cannot hold exactly" }
            return nil
        case .blob:
            guard case .string(let text) = value else { return "is \(describe(value)), not a base64 string" }
            return Data(base64Encoded: text) == nil ? "is not valid base64: \(quote(text))" : nil
        case .json:
            if case .array = value { return nil }
            return "is \(describe(value)), not an array"
        }
    }

    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let bool): return "\(bool)"
        case .number, .integer, .decimal: return "the number \(quote(value.numberText ?? "\(value)"))"
        case .string(let text): return "the string \(quote(text))"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// `text` quoted, cut after 80 characters.
    private static func quote(_ text: String) -> String {
        text.count > 80 ? "'\(text.prefix(80))…'" : "'\(text)'"
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

    /// A date as the wire shows it: ISO 8601 in UTC, with as many fractional digits as the date
    /// needs to read back exactly (none for a whole second), at any year: years 0 to 9999 have
    /// four digits, others a sign and at least six (`-010000-01-01T00:00:00Z`). A date whose time
    /// interval is not finite has no ISO 8601 form; it is described as `Date` describes it.
    public static func iso8601(_ date: Date) -> String {
        WireDate.format(date.timeIntervalSinceReferenceDate) ?? "\(date.timeIntervalSinceReferenceDate)"
    }

    /// Reads an ISO 8601 date-time exactly: `2024-05-01T12:34:08Z`, fractions of any length
    /// (`.508518`), offsets (`+02:00`, `-0530`), expanded years (`-010000-01-01T00:00:00Z`).
    /// Returns `nil` for anything else.
    public static func parseISO8601(_ text: String) -> Date? {
        guard case .success(let seconds) = WireDate.parse(text) else { return nil }
        return Date(timeIntervalSinceReferenceDate: seconds)
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
