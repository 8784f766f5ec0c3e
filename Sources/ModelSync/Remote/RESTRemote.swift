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
///
/// What it does with a server that misbehaves:
/// - **Stalls.** Every request has a total deadline (``Configuration/requestDeadline``) besides the
///   idle ``Configuration/timeout``; past it the request fails as a transient error and is retried.
///   The URLSession task is abandoned, never cancelled (cancelling traps FoundationNetworking on
///   Linux), and ends when the server closes it or goes idle.
/// - **Sends unusable IDs.** IDs in a create's answer and in listings must pass ``ServerIDRule``;
///   a create answered with another ID fails for good, with a reason naming the model, the ID
///   received and what was expected.
/// - **Redirects.** Only 307 and 308, and 301–303 of a GET, to the same origin, are followed, with
///   the method, body and headers unchanged; any other redirect fails with a message naming its
///   status and both URLs.
///
/// IDs in paths are percent-encoded as one segment each (only `A–Z a–z 0–9 - . _ ~` stay, and `.`
/// and `..` are encoded), so an ID such as `a/b`, `..` or `%41` addresses its own record.
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
        /// Seconds a request may go without receiving anything before it counts as a (transient)
        /// failure. An idle timeout only: a server that keeps sending a byte now and then never
        /// reaches it; ``requestDeadline`` bounds the whole request.
        public var timeout: TimeInterval
        /// Seconds a request may take in total, from sending it to the last byte of the answer,
        /// redirects included (default 120). Past it the request fails as a transient error naming
        /// the request and the deadline, and is retried later. The abandoned request is not cancelled
        /// (see ``RESTRemote``): it ends by itself when the server closes it or goes idle for
        /// ``timeout``. Set it above the time your largest listing page takes on a slow network;
        /// `.infinity` turns it off.
        public var requestDeadline: TimeInterval
        /// The path of one record; `{path}` is the collection path and `{id}` the record's ID.
        public var itemPathTemplate: String
        /// The JSON key of IDs.
        public var idField: String
        public var listEnvelope: ListEnvelope
        /// The query parameter that passes the cursor of an incremental listing.
        public var cursorParameter: String
        /// The key of the next cursor in a listing's envelope (ignored for bare arrays).
        public var nextCursorKey: String
        /// How many items to ask for per listing page (sent as ``pageSizeParameter``), or `nil` to
        /// let the server choose. Larger pages make a large first sync faster; a pull stores each
        /// page in chunks either way (``SyncEngine/Configuration/pullChunkSize``).
        public var pageSize: Int?
        /// The query parameter that passes ``pageSize``.
        public var pageSizeParameter: String
        /// The key that marks a listed record as deleted (a tombstone).
        public var deletedFlagKey: String
        /// The key of the optional count in a listing's envelope: how many items this page and the
        /// pages after it hold (ignored for bare arrays, and when absent). Pull progress shows it as
        /// the expected total.
        public var totalKey: String
        /// The key of a record's server version (sent back as `If-Match` with its next update), or
        /// `nil` for a server without versions: updates are then last-writer-wins.
        public var versionKey: String?
        /// The key under which the server echoes the `Idempotency-Key` that created a record, or
        /// `nil` when it does not: a lost create answer is then recognised only when the server's
        /// copy equals what the create sent.
        public var creationKeyKey: String?
        /// Per-table changes to the spec's conventions (path, ID type, key naming); set them with
        /// ``override(_:with:)``.
        public var overrides: [String: RemoteSchema]
        /// The version of the models' shape this app sends (`GeneratedModels.schemaVersion`), in the
        /// `ModelSync-Schema-Version` header of every request. `nil` (the default) takes it from the
        /// generated models given to ``RESTRemote/init(configuration:models:session:)`` (the highest
        /// `ModelSchema.schemaVersion`), and sends no header when that is 1, which servers read as 1.
        /// A server that no longer accepts it answers 426 (``RemoteError/isClientTooOld``).
        public var schemaVersion: Int?
        /// Whether to send queued changes in batches to a server that advertises them
        /// (`GET {baseURL}/_modelsync`, see Docs/Protocol.md). `true` by default; `false` sends every
        /// change in a request of its own.
        public var usesBatches = true

        /// Replaces the spec's REST conventions of `model` (path, ID type, key naming).
        public mutating func override<Model: SyncModel>(_ model: Model.Type, with conventions: RemoteSchema) {
            overrides[Model.schema.tableName] = conventions
        }

        public init(
            baseURL: URL,
            headers: @escaping @Sendable () async throws -> [String: String] = { [:] },
            timeout: TimeInterval = 30,
            requestDeadline: TimeInterval = 120,
            itemPathTemplate: String = "{path}/{id}",
            idField: String = "id",
            listEnvelope: ListEnvelope = .key("data"),
            cursorParameter: String = "cursor",
            nextCursorKey: String = "next_cursor",
            pageSize: Int? = nil,
            pageSizeParameter: String = "limit",
            deletedFlagKey: String = "deleted",
            totalKey: String = "total",
            versionKey: String? = "_version",
            creationKeyKey: String? = "_idempotency_key",
            overrides: [String: RemoteSchema] = [:],
            schemaVersion: Int? = nil
        ) {
            self.baseURL = baseURL
            self.headers = headers
            self.timeout = timeout
            self.requestDeadline = requestDeadline
            self.itemPathTemplate = itemPathTemplate
            self.idField = idField
            self.listEnvelope = listEnvelope
            self.cursorParameter = cursorParameter
            self.nextCursorKey = nextCursorKey
            self.pageSize = pageSize
            self.pageSizeParameter = pageSizeParameter
            self.deletedFlagKey = deletedFlagKey
            self.totalKey = totalKey
            self.versionKey = versionKey
            self.creationKeyKey = creationKeyKey
            self.overrides = overrides
            self.schemaVersion = schemaVersion
        }
    }

    /// The header that carries ``Configuration/schemaVersion``.
    public static let schemaVersionHeader = "ModelSync-Schema-Version"

    public let configuration: Configuration
    /// Whether the server takes batches (RESTRemote+Batch.swift), once asked.
    let batchSupportAnswer = Locked<BatchSupport??>(nil)
    private let schemasByTable: [String: ModelSchema]
    private let session: URLSession
    /// Per table, each field's wire key and, for a foreign key, the ID type of the model it
    /// references: worked out once instead of for every field of every record read.
    private let fieldPlans: [String: [FieldPlan]]

    struct FieldPlan: Sendable {
        var key: String
        /// The ID type of the referenced model, when the field is a foreign key.
        var referenceIDType: RemoteIDType?
    }

    /// - Parameters:
    ///   - configuration: The server's base URL, headers and conventions.
    ///   - models: Every model (`GeneratedModels.all`): foreign keys are sent in the JSON type of the
    ///     model they reference, and the models' schema version is sent when the configuration
    ///     names none.
    ///   - session: The URLSession to use; by default ``makeSession(timeout:)`` with
    ///     `configuration.timeout`. A session of your own should refuse redirects (its delegate's
    ///     `urlSession(_:task:willPerformHTTPRedirection:newRequest:completionHandler:)` passes `nil`)
    ///     so that RESTRemote decides which to follow; a request your session redirected anyway fails
    ///     unless it is a GET that stayed on the same origin.
    public init(configuration: Configuration, models: [any SyncModel.Type], session: URLSession? = nil) {
        var configuration = configuration
        if configuration.schemaVersion == nil,
            let modelsVersion = models.map({ $0.schema.schemaVersion }).max(), modelsVersion > 1
        {
            configuration.schemaVersion = modelsVersion
        }
        self.configuration = configuration
        var schemas: [String: ModelSchema] = [:]
        for model in models { schemas[model.schema.tableName] = model.schema }
        self.schemasByTable = schemas
        self.session = session ?? Self.makeSession(timeout: configuration.timeout)
        fieldPlans = schemas.mapValues { schema in
            let remote = configuration.overrides[schema.tableName] ?? schema.remote
            let foreignKeys = Dictionary(schema.foreignKeys.map { ($0.column, $0.table) }) { first, _ in first }
            return schema.fields.map { field in
                FieldPlan(
                    key: remote.fieldNaming.wireKey(for: field.name),
                    referenceIDType: foreignKeys[field.name].map { target in
                        schemas[target].map { (configuration.overrides[$0.tableName] ?? $0.remote).idType } ?? .string
                    })
            }
        }
    }

    /// The session RESTRemote uses by default: ephemeral, no cache, 16 connections per host, and a
    /// delegate that refuses every redirect, so that RESTRemote follows only those that keep the
    /// request intact (see ``RESTRemote`` on redirects). Share one between remotes if you like.
    /// - Parameter timeout: The idle timeout of each request (``Configuration/timeout``).
    public static func makeSession(timeout: TimeInterval) -> URLSession {
        let sessionConfiguration = URLSessionConfiguration.ephemeral
        sessionConfiguration.timeoutIntervalForRequest = timeout
        sessionConfiguration.httpMaximumConnectionsPerHost = 16
        sessionConfiguration.requestCachePolicy = .reloadIgnoringLocalCacheData
        // No URLCache: on Linux, FoundationNetworking looks the cache up on a background queue
        // before the request starts, and cancelling a request in that window (a cancelled push)
        // traps in URLSession's task registry. Sync requests are never served from a cache anyway.
        sessionConfiguration.urlCache = nil
        return URLSession(configuration: sessionConfiguration, delegate: RedirectRefusal(), delegateQueue: nil)
    }

    // MARK: SyncRemote

    public func create(_ fields: RecordFields, of model: ModelSchema, idempotencyKey: String) async throws
        -> RecordFields
    {
        let response = try await send(
            "POST", path: conventions(model).path, body: .object(try createBody(fields, model: model)),
            headers: ["Idempotency-Key": idempotencyKey])
        return try createdRecord(response, sent: fields, model: model)
    }

    /// The body of a create: the record in wire form, with its ID only when the server keeps it.
    func createBody(_ fields: RecordFields, model: ModelSchema) throws -> [String: JSONValue] {
        let remote = conventions(model)
        // A server-ID record whose ID is not temporary was created with a client ID: by an earlier
        // version of the app, before its model switched to `idGeneration: server` (or it is a
        // re-created record). It goes out with that ID; the server keeps it or answers its own,
        // which then replaces it locally as a temporary ID would be.
        let localID = fields["id"]?.idString ?? TemporaryID.prefix
        let sendsID =
            model.idGeneration == .client
            || (!TemporaryID.isTemporary(localID) && (remote.idType == .string || Int64(localID) != nil))
        var body = try wireObject(fields, model: model, includeID: sendsID)
        if !sendsID { body.removeValue(forKey: configuration.idField) }
        return body
    }

    /// A create's answer in local form, its ID checked (``createdID(_:sent:model:)``).
    func createdRecord(_ response: JSONValue?, sent fields: RecordFields, model: ModelSchema) throws -> RecordFields {
        guard var object = response?.objectValue else {
            throw RemoteError.invalidResponse("the create of a \(model.name) returned no JSON object")
        }
        let id = try createdID(object.removeValue(forKey: configuration.idField), sent: fields, model: model)
        // The create is done once its ID is known: a field of the answer that cannot be read (a date
        // in a form of the server's own) must not fail a create the server stored.
        var record = (try? localFields(object, model: model)) ?? metadata(of: object)
        record["id"] = .string(id)
        return record
    }

    /// The ID of a create's answer, checked: for server-generated IDs it must pass ``ServerIDRule``;
    /// for client-generated IDs it must be the ID that was sent (anything else is another record's
    /// answer, or another model's).
    ///
    /// A bad answer fails the create for good (not for a retry): a server that answers this way
    /// answers the same to a retry with the same idempotency key. The reason says that the server may
    /// have stored the record, so that the user checks there before retrying the entry.
    private func createdID(_ value: JSONValue?, sent fields: RecordFields, model: ModelSchema) throws -> String {
        let idType = conventions(model).idType
        let afterward =
            "The server may have stored the record: check it there (and the spec's remote idType) "
            + "before retrying this entry, whose retry sends the same idempotency key."
        if model.idGeneration == .client, let sentID = fields["id"]?.idString {
            // The sent ID itself, not the rule: a client ID the store accepted is echoed as is.
            let echoed: Bool
            switch (idType, value) {
            case (.string, .string(let text)?): echoed = text == sentID
            case (.int, let value?): echoed = (try? ServerIDRule.localID(from: value, idType: .int)) == sentID
            default: echoed = false
            }
            guard echoed else {
                let received = value.map(ServerIDRule.render) ?? "no '\(configuration.idField)' field"
                throw RemoteError.invalidResponse(
                    "the create of a \(model.name) was answered with id \(received), not the ID it sent "
                        + "(\(ServerIDRule.render(.string(sentID)))): the answer is another record's, or another "
                        + "model's. \(afterward)")
            }
            return sentID
        }
        do {
            return try ServerIDRule.localID(from: value, idType: idType)
        } catch {
            throw RemoteError.invalidResponse(
                "the create of a \(model.name) was answered with id \(error). \(afterward)")
        }
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
            let response = try await send(
                "PUT", path: try itemPath(model, id: id), body: .object(body), headers: headers)
            guard let object = response?.objectValue else { return nil }
            return try localFields(object, model: model)
        } catch let stale as StaleVersion {
            throw RemoteError.conflict(message: stale.message, serverCopy: try localFields(stale.current, model: model))
        }
    }

    public func fetch(id: String, of model: ModelSchema) async throws -> RecordFields? {
        do {
            guard let object = try await send("GET", path: try itemPath(model, id: id), body: nil)?.objectValue else {
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

    /// RFC 3986's unreserved characters: the only ones a query value keeps unencoded.
    static let unreservedCharacters = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    public func list(_ model: ModelSchema, after cursor: String?) async throws -> RemotePage {
        var path = conventions(model).path
        if let cursor {
            // Only unreserved characters stay as they are: `&`, `=`, `+` and `#` in a cursor would
            // otherwise change the query.
            let encoded = cursor.addingPercentEncoding(withAllowedCharacters: Self.unreservedCharacters) ?? cursor
            path += (path.contains("?") ? "&" : "?") + "\(configuration.cursorParameter)=\(encoded)"
        }
        if let pageSize = configuration.pageSize {
            path += (path.contains("?") ? "&" : "?") + "\(configuration.pageSizeParameter)=\(pageSize)"
        }
        let response = try await send("GET", path: path, body: nil)
        let items: [JSONValue]
        var nextCursor: String?
        var remainingTotal: Int?
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
            if case .integer(let total)? = object[configuration.totalKey], total >= 0, total <= Int64(Int.max) {
                remainingTotal = Int(total)
            }
        }
        var records: [RecordFields] = []
        var deleted: [String] = []
        var rejected: [RejectedRecord] = []
        for (position, item) in items.enumerated() {
            guard let object = item.objectValue else {
                rejected.append(
                    RejectedRecord(
                        model: model.name, id: nil,
                        reason: "item \(position) of the \(model.name) listing is not a JSON object"))
                continue
            }
            let id = object[configuration.idField]?.idString
            if object[configuration.deletedFlagKey] == .bool(true) {
                // A tombstone deletes a local record: its ID must be a valid server ID (a temporary-
                // looking one would delete a record this device has not sent yet).
                do {
                    deleted.append(
                        try ServerIDRule.localID(from: object[configuration.idField], idType: conventions(model).idType)
                    )
                } catch {
                    rejected.append(
                        RejectedRecord(
                            model: model.name, id: id,
                            reason:
                                "item \(position) of the \(model.name) listing is marked deleted but has id \(error)"
                        ))
                }
                continue
            }
            // One record that cannot be read is reported; the rest of the page is applied.
            do {
                records.append(try listedFields(object, model: model))
            } catch {
                let record = id.map { "\(model.name) '\($0)'" } ?? "item \(position) of the \(model.name) listing"
                rejected.append(RejectedRecord(model: model.name, id: id, reason: "\(record): \(error.reason)"))
            }
        }
        let hasMore = nextCursor != nil && nextCursor != cursor && !items.isEmpty
        return RemotePage(
            records: records, deletedIDs: deleted, nextCursor: nextCursor, hasMore: hasMore, rejected: rejected,
            remainingTotal: remainingTotal)
    }

    // MARK: Conventions

    /// The model's REST conventions: the spec's, unless overridden in the configuration.
    public func conventions(_ model: ModelSchema) -> RemoteSchema {
        configuration.overrides[model.tableName] ?? model.remote
    }

    /// The path of one record: `id` percent-encoded as one path segment (``pathSegment(_:model:)``).
    func itemPath(_ model: ModelSchema, id: String) throws -> String {
        let collection = conventions(model).path
        let base = collection.hasSuffix("/") ? String(collection.dropLast()) : collection
        let encodedID = try Self.pathSegment(id, model: model.name)
        return configuration.itemPathTemplate.replacingOccurrences(of: "{path}", with: base)
            .replacingOccurrences(of: "{id}", with: encodedID)
    }

    /// `id` as one URL path segment: every byte of its UTF-8 percent-encoded except the unreserved
    /// characters of RFC 3986 (`A–Z a–z 0–9 - . _ ~`), and the dot segments `.` and `..` encoded too
    /// (`%2E`, `%2E%2E`), which clients and proxies would otherwise resolve away. So `a/b`, `..`,
    /// `?x`, `#y` and `%41` each address the record with that ID and nothing else. Throws
    /// ``UnsendableRecordID`` for an empty ID, which would address the collection.
    static func pathSegment(_ id: String, model: String) throws -> String {
        guard !id.isEmpty else {
            throw UnsendableRecordID(
                model: model, id: id,
                reason: "it is empty, so the request would address the whole collection; "
                    + "give the record a non-empty ID (or discard the change)")
        }
        if id == "." || id == ".." { return String(repeating: "%2E", count: id.count) }
        let hex = Array("0123456789ABCDEF".utf8)
        var encoded: [UInt8] = []
        encoded.reserveCapacity(id.utf8.count)
        for byte in id.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                encoded.append(byte)
            default:
                encoded.append(contentsOf: [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
            }
        }
        return String(decoding: encoded, as: UTF8.self)
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

    /// The sync metadata of a record the server sent (``RecordMetadata``), in local form.
    func metadata(of object: [String: JSONValue]) -> RecordFields {
        var fields: RecordFields = [:]
        addMetadata(of: object, to: &fields)
        return fields
    }

    /// Adds the sync metadata of `object` to `fields` (each listed record: no dictionary of its own).
    private func addMetadata(of object: [String: JSONValue], to fields: inout RecordFields) {
        if let key = configuration.versionKey, let version = object[key]?.idString {
            fields[RecordMetadata.version] = .string(version)
        }
        if let key = configuration.creationKeyKey, let creationKey = object[key]?.stringValue {
            fields[RecordMetadata.creationKey] = .string(creationKey)
        }
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
        var fields = RecordFields(minimumCapacity: model.fields.count + 3)
        if let value = object[configuration.idField] {
            do {
                fields["id"] = .string(try ServerIDRule.localID(from: value, idType: remote.idType))
            } catch {
                throw FieldProblem(reason: "it has id \(error)")
            }
        } else if checkingTypes {
            throw FieldProblem(reason: "it has no '\(configuration.idField)'")
        }
        addMetadata(of: object, to: &fields)
        let plans = fieldPlans[model.tableName]
        let foreignKeys =
            plans == nil ? Dictionary(model.foreignKeys.map { ($0.column, $0.table) }) { first, _ in first } : [:]
        for (index, field) in model.fields.enumerated() {
            let key = plans?[index].key ?? remote.fieldNaming.wireKey(for: field.name)
            var name: String { key == field.name ? "field '\(key)'" : "field '\(key)' (\(field.name))" }
            let referenceIDType =
                plans == nil
                ? foreignKeys[field.name].map { target in
                    schemasByTable[target].map { conventions($0).idType } ?? .string
                }
                : plans?[index].referenceIDType
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
            } else if let idType = referenceIDType {
                // A reference is an ID of the referenced model, held to the same rule as its own IDs
                // (a temporary-looking or malformed reference would point at the wrong record).
                do {
                    fields[field.name] = .string(try ServerIDRule.localID(from: value, idType: idType))
                } catch {
                    guard checkingTypes else {
                        fields[field.name] = value.idString.map(JSONValue.string) ?? value
                        continue
                    }
                    throw FieldProblem(reason: "\(name) references \(error)")
                }
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
        describeField(value)
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
    /// `CancellationError`) or `deadline` passes (with ``RequestDeadlineExceeded``), without
    /// cancelling the URLSession task: on Linux, FoundationNetworking can trap or never resume
    /// `data(for:)` when its task is cancelled mid-request. The abandoned request ends by itself
    /// (answer or `timeout`); a create it completes is replayed with the same idempotency key.
    static func data(
        for request: URLRequest, in session: URLSession, deadline: ContinuousClock.Instant? = nil
    ) async throws -> (Data, URLResponse) {
        try Task.checkCancellation()
        if let deadline, deadline <= .now { throw RequestDeadlineExceeded() }
        let outcome = OneShot<(Data, URLResponse)>()
        Task.detached {
            do {
                outcome.resume(.success(try await session.data(for: request)))
            } catch {
                outcome.resume(.failure(error))
            }
        }
        let timer = deadline.map { deadline in
            Task.detached {
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                } catch {
                    return  // the answer came first
                }
                outcome.resume(.failure(RequestDeadlineExceeded()))
            }
        }
        defer { timer?.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { outcome.wait(with: $0) }
        } onCancel: {
            outcome.resume(.failure(CancellationError()))
        }
    }

    /// Thrown by ``data(for:in:deadline:)`` when the deadline passes first.
    struct RequestDeadlineExceeded: Error {}

    /// The most redirects followed for one request.
    static let maximumRedirects = 5

    // MARK: HTTP

    func send(_ method: String, path: String, body: JSONValue?, headers: [String: String] = [:])
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
        if let version = configuration.schemaVersion {
            request.setValue(String(version), forHTTPHeaderField: Self.schemaVersionHeader)
        }

        let label = "\(method) \(path)"
        let limit = configuration.requestDeadline
        let deadline = limit.isFinite ? ContinuousClock.now + .seconds(min(max(0, limit), 1e9)) : nil
        var redirects = 0
        while true {
            let (data, http) = try await exchange(request, label: label, deadline: deadline)
            if let next = try redirection(of: request, answer: http, label: label, redirects: redirects) {
                request.url = next
                redirects += 1
                continue
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
                    "\(label) answered \(http.statusCode) with a body that is not JSON: "
                        + Self.excerpt(String(decoding: data, as: UTF8.self)))
            }
        }
    }

    /// One round trip, bounded by the request's deadline.
    private func exchange(_ request: URLRequest, label: String, deadline: ContinuousClock.Instant?) async throws
        -> (Data, HTTPURLResponse)
    {
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await Self.data(for: request, in: session, deadline: deadline)
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as URLError where error.code == .cancelled {
            throw CancellationError()
        } catch is RequestDeadlineExceeded {
            throw RemoteError.transport(
                "\(label): no complete answer within the request deadline of "
                    + "\(Self.seconds(configuration.requestDeadline)) s (RESTRemote.Configuration.requestDeadline); "
                    + "the server may still be sending it")
        } catch {
            throw RemoteError.transport("\(label): \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw RemoteError.invalidResponse("\(label) got no HTTP response")
        }
        return (data, http)
    }

    /// Where to send `request` next when `answer` redirects it, `nil` when it does not; throws for
    /// a redirect that is not followed.
    ///
    /// Followed, up to ``maximumRedirects`` times: 307 and 308 (the method, body and headers are
    /// sent again unchanged), and 301, 302 and 303 of a GET (which stays a GET) — and only to the
    /// same origin (scheme, host and port), so that headers such as `Authorization` and the
    /// `Idempotency-Key` never go to another server. Anything else fails with a message naming the
    /// status and both URLs: a 301, 302 or 303 would turn a POST, PUT or DELETE into a body-less
    /// GET. A redirect is the server's configuration, not a passing fault: the failure is for
    /// good (the entry fails; fix the base URL or the server, then retry it).
    private func redirection(of request: URLRequest, answer: HTTPURLResponse, label: String, redirects: Int)
        throws -> URL?
    {
        let method = request.httpMethod ?? "GET"
        let sentURL = request.url?.absoluteString ?? "?"
        // A session of the app's own that followed a redirect by itself (its delegate does not refuse
        // them): the request may have arrived changed.
        if let answeredURL = answer.url, let sent = request.url, !Self.sameResource(sent, answeredURL) {
            guard method == "GET", Self.sameOrigin(sent, answeredURL) else {
                throw RemoteError.invalidResponse(
                    "\(label) was redirected by the URLSession from \(sentURL) to \(answeredURL.absoluteString), "
                        + "which may have changed the request (a POST becomes a GET, a body is lost); "
                        + "give RESTRemote a session that refuses redirects (RESTRemote.makeSession) "
                        + "or point the base URL at the new location")
            }
            return nil
        }
        let status = answer.statusCode
        guard [301, 302, 303, 307, 308].contains(status) else { return nil }
        guard let location = answer.value(forHTTPHeaderField: "Location"),
            let target = URL(string: location, relativeTo: request.url)?.absoluteURL
        else {
            throw RemoteError.http(
                status: status, message: "\(label) was redirected (\(status)) without a usable Location header",
                retryAfter: nil)
        }
        let redirect = "\(label) was redirected (\(status)) from \(sentURL) to \(target.absoluteString)"
        let fix = "point the base URL at the new location, or fix the server"
        guard status == 307 || status == 308 || method == "GET" else {
            throw RemoteError.http(
                status: status,
                message: "\(redirect); not followed: a \(status) turns a \(method) into a GET without its body; \(fix)",
                retryAfter: nil)
        }
        guard let sent = request.url, Self.sameOrigin(sent, target) else {
            throw RemoteError.http(
                status: status,
                message: "\(redirect); not followed: it leads to another origin, which would receive the "
                    + "request's headers (authorization, idempotency key); \(fix)",
                retryAfter: nil)
        }
        guard redirects < Self.maximumRedirects else {
            throw RemoteError.http(
                status: status,
                message: "\(redirect); not followed: more than \(Self.maximumRedirects) redirects in a row "
                    + "(a redirect loop?); \(fix)",
                retryAfter: nil)
        }
        return target
    }

    /// `true` when both URLs have the same scheme, host and port (default ports made explicit).
    static func sameOrigin(_ first: URL, _ second: URL) -> Bool {
        func origin(_ url: URL) -> (String, String, Int)? {
            guard let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased() else { return nil }
            let port = url.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : -1)
            return (scheme, host, port)
        }
        guard let first = origin(first), let second = origin(second) else { return false }
        return first == second
    }

    /// `true` when both URLs name the same resource: same origin, path (percent-decoded, as a
    /// platform may normalise its encoding in the answer's URL) and query.
    static func sameResource(_ first: URL, _ second: URL) -> Bool {
        sameOrigin(first, second) && first.path == second.path && first.query == second.query
    }

    /// Seconds as the messages show them: `2`, `0.5`.
    static func seconds(_ value: TimeInterval) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
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

/// The delegate of ``RESTRemote/makeSession(timeout:)``: refuses every redirect, so that the 3xx
/// answer reaches RESTRemote, which follows only those that keep the request intact. (On Linux,
/// FoundationNetworking turns a redirected POST into a GET for 301–303, and re-sends a 307 or 308
/// POST without its body.)
final class RedirectRefusal: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
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
