import Foundation

// Batches (Docs/Protocol.md, "Batches"): many changes in one request, to a server that says it
// takes them at `GET {baseURL}/_modelsync`.
extension RESTRemote {
    /// The path a server answers what it supports at.
    public static let capabilitiesPath = "/_modelsync"

    /// Asks the server once (`GET {baseURL}/_modelsync`) whether it takes batches, and remembers the
    /// answer. A server that answers it with a 4xx, or without a `batch` object, takes none; a
    /// transient failure is thrown, and a 401 or 403 answers `nil`: the question is then asked again
    /// next time.
    /// ``Configuration/usesBatches`` `false` never asks.
    public func batchSupport() async throws -> BatchSupport? {
        guard configuration.usesBatches else { return nil }
        if let known = batchSupportAnswer.withLock({ $0 }) { return known }
        var support: BatchSupport?
        do {
            let answer = try await send("GET", path: Self.capabilitiesPath, body: nil)
            if let batch = answer?.objectValue?["batch"]?.objectValue, let path = batch["path"]?.stringValue,
                path.hasPrefix("/")
            {
                let maximum = batch["max_operations"]?.idString.flatMap { Int($0) } ?? 100
                support = BatchSupport(path: path, maximumOperations: max(1, maximum))
            }
        } catch RemoteError.http(let status, _, _) where status == 401 || status == 403 {
            return nil  // credentials not accepted (yet): asked again next time
        } catch let error as RemoteError where !error.isTransient {
            support = nil
        }
        batchSupportAnswer.withLock { $0 = .some(support) }
        return support
    }

    /// Posts `operations` as one batch. Each result is the operation's record in local form (`nil`
    /// for a delete) or its error, as the operation alone would have had: ``RemoteError/conflict(message:serverCopy:)``
    /// for a stale update, `http` with the status and message otherwise; a delete of a record the
    /// server does not have counts as done. A failure of the whole request is thrown.
    public func send(_ operations: [BatchOperation], atomically: Bool, idempotencyKey: String?) async throws
        -> [Result<RecordFields?, RemoteError>]
    {
        guard let support = try await batchSupport() else {
            throw RemoteError.invalidResponse("the server does not take batches (GET \(Self.capabilitiesPath))")
        }
        let wire = try operations.map(wireOperation)
        var headers: [String: String] = [:]
        if let idempotencyKey { headers["Idempotency-Key"] = idempotencyKey }
        let response = try await send(
            "POST", path: support.path,
            body: .object(["atomic": .bool(atomically), "operations": .array(wire)]), headers: headers)
        let afterward =
            "Nothing of the batch is taken as done; the server may have applied some of it: a retry sends "
            + "the same idempotency keys."
        guard let results = response?.objectValue?["results"]?.arrayValue else {
            throw RemoteError.invalidResponse(
                "POST \(support.path) answered the batch of \(operations.count) operations without a 'results' "
                    + "array. \(afterward)")
        }
        guard results.count == operations.count else {
            throw RemoteError.invalidResponse(
                "POST \(support.path) answered the batch of \(operations.count) operations with \(results.count) "
                    + "results (one per operation, in order, expected). \(afterward)")
        }
        let outcomes = zip(operations, results).map { operation, result -> Result<RecordFields?, RemoteError> in
            do {
                return .success(try self.outcome(of: operation, result))
            } catch let error as RemoteError {
                return .failure(error)
            } catch {
                return .failure(.invalidResponse("\(error)"))
            }
        }
        // A result that names another operation's key (the result's `idempotency_key`, or the creation
        // key a created record echoes) means the results are out of order or answer other operations:
        // none of them can be matched to its operation.
        for position in operations.indices {
            let operation = operations[position]
            var named = results[position].objectValue?["idempotency_key"]?.stringValue
            if named == nil, operation.kind == .create, case .success(let record?) = outcomes[position] {
                named = record[RecordMetadata.creationKey]?.stringValue
            }
            if let named, named != operation.idempotencyKey {
                let answered =
                    operations.firstIndex { $0.idempotencyKey == named }.map { "operation \($0 + 1)" }
                    ?? "no operation of the batch"
                throw RemoteError.invalidResponse(
                    "POST \(support.path): result \(position + 1) of \(operations.count) carries the idempotency key "
                        + "'\(named)', which is \(answered)'s, not that of operation \(position + 1) "
                        + "(\(operation.kind.rawValue) of a \(operation.model.name), key '\(operation.idempotencyKey)'): "
                        + "the results are out of order or answer other operations. \(afterward)")
            }
        }
        return outcomes
    }

    private func wireOperation(_ operation: BatchOperation) throws -> JSONValue {
        let model = operation.model
        var object: [String: JSONValue] = ["idempotency_key": .string(operation.idempotencyKey)]
        switch operation.kind {
        case .create:
            object["method"] = .string("POST")
            object["path"] = .string(conventions(model).path)
            // A referenced field goes as null: the server fills it with the ID the create it names made.
            var fields = operation.fields
            var references: [String: JSONValue] = [:]
            for (field, position) in operation.references {
                fields[field] = .null
                references[conventions(model).fieldNaming.wireKey(for: field)] = .integer(Int64(position))
            }
            object["body"] = .object(try createBody(fields, model: model))
            if !references.isEmpty { object["refs"] = .object(references) }
        case .update:
            guard let id = operation.fields["id"]?.idString else {
                throw RemoteError.invalidResponse("an update of a \(model.name) has no id")
            }
            object["method"] = .string("PUT")
            object["path"] = .string(try itemPath(model, id: id))
            object["body"] = .object(try wireObject(operation.fields, model: model, includeID: true))
            if configuration.versionKey != nil, let version = operation.fields[RecordMetadata.version]?.idString {
                object["if_match"] = .string(version)
            }
        case .delete:
            guard let id = operation.fields["id"]?.idString else {
                throw RemoteError.invalidResponse("a delete of a \(model.name) has no id")
            }
            object["method"] = .string("DELETE")
            object["path"] = .string(try itemPath(model, id: id))
        }
        return .object(object)
    }

    private func outcome(of operation: BatchOperation, _ result: JSONValue) throws -> RecordFields? {
        guard let object = result.objectValue, let statusText = object["status"]?.idString,
            let status = Int(statusText)
        else {
            throw RemoteError.invalidResponse("a result of the batch has no 'status'")
        }
        let body = object["body"]
        guard (200..<300).contains(status) else {
            let message =
                body?.objectValue.flatMap { $0["error"]?.stringValue ?? $0["message"]?.stringValue }
                ?? "HTTP \(status)"
            if status == 409, operation.kind == .update, let current = body?.objectValue?["current"]?.objectValue {
                throw RemoteError.conflict(
                    message: message, serverCopy: try localFields(current, model: operation.model))
            }
            if operation.kind == .delete, status == 404 || status == 410 { return nil }
            throw RemoteError.http(status: status, message: message, retryAfter: nil)
        }
        switch operation.kind {
        case .create: return try createdRecord(body, sent: operation.fields, model: operation.model)
        case .update: return try body?.objectValue.map { try localFields($0, model: operation.model) }
        case .delete: return nil
        }
    }
}
