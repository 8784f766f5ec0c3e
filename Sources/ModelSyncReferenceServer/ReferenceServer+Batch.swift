import FlyingFox
import Foundation
import ModelSync

// Batches (Docs/Protocol.md, "Batches"): `GET /_modelsync` says they are taken, `POST
// /_modelsync/batch` applies many operations in order, each alone or all together (`atomic`).
extension ReferenceServer {
    /// The most operations one batch may hold.
    public static let maximumBatchOperations = 1000

    /// Answers the capabilities and batch requests; `nil` for any other path.
    func routeBatches(_ request: HTTPRequest) async throws -> HTTPResponse? {
        let path = request.target.path(percentEncoded: true)
        switch (request.method.rawValue, path) {
        case ("GET", "/_modelsync"):
            guard acceptsBatches.withLock({ $0 }) else {
                throw ServerError(status: 404, message: "no collection at /_modelsync")
            }
            return try Self.json(
                200,
                .object([
                    "protocol": .integer(1),
                    "batch": .object([
                        "path": .string("/_modelsync/batch"),
                        "max_operations": .integer(Int64(Self.maximumBatchOperations)),
                    ]),
                ]))
        case ("POST", "/_modelsync/batch"):
            guard acceptsBatches.withLock({ $0 }) else {
                throw ServerError(status: 404, message: "no collection at /_modelsync/batch")
            }
            let body = try await Self.body(request)
            let answer = try await store.applyBatch(
                body, idempotencyKey: request.headers[HTTPHeader("Idempotency-Key")])
            return try Self.json(200, .object(answer))
        default:
            return nil
        }
    }

    /// Whether the server takes batches. `false` by default: `GET /_modelsync` is a 404, as on most
    /// servers, and clients send every change alone; `true` advertises and applies batches.
    public func setAcceptingBatches(_ accepting: Bool) {
        acceptsBatches.withLock { $0 = accepting }
    }

    /// How many batches the server applied so far, and how many operations they held.
    public var batchCounts: (batches: Int, operations: Int) {
        get async { await store.batchCounts }
    }
}

extension ServerStore {
    /// One operation of a batch, read from the request.
    struct BatchStep {
        var method: String
        var table: String
        var id: String?
        var body: [String: JSONValue]
        var idempotencyKey: String?
        var ifMatch: String?
        /// Wire key -> position of the earlier create whose ID it takes.
        var references: [String: Int]
    }

    /// Thrown inside an atomic batch: operation `position` failed.
    struct StepFailure: Error {
        var position: Int
        var error: ServerError
    }

    /// Applies a batch: `{"atomic": bool, "operations": [...]}` -> `{"applied": bool, "results": [...]}`.
    func applyBatch(_ request: [String: JSONValue], idempotencyKey: String?) throws -> [String: JSONValue] {
        let atomic = request["atomic"] == .bool(true)
        guard let operations = request["operations"]?.arrayValue else {
            throw ServerError(status: 400, message: "a batch is an object with an 'operations' array")
        }
        guard operations.count <= ReferenceServer.maximumBatchOperations else {
            throw ServerError(
                status: 413,
                message: "a batch holds \(ReferenceServer.maximumBatchOperations) operations at most; split it")
        }
        if atomic, let idempotencyKey, let previous = batchAnswers[idempotencyKey] {
            guard previous.body == .object(request) else {
                throw ServerError(
                    status: 422,
                    message: "the Idempotency-Key '\(idempotencyKey)' was used before with another batch")
            }
            return previous.answer
        }
        let steps = try operations.enumerated().map { try step($1, position: $0) }
        batchCount.batches += 1
        batchCount.operations += steps.count
        var results: [JSONValue] = []
        var createdIDs: [Int: JSONValue] = [:]
        if atomic {
            do {
                try undoingOnFailure {
                    for (position, step) in steps.enumerated() {
                        do {
                            let (status, answer) = try apply(step, position: position, createdIDs: &createdIDs)
                            results.append(Self.result(status, answer.map(JSONValue.object)))
                        } catch let error as ServerError {
                            throw StepFailure(position: position, error: error)
                        }
                    }
                }
            } catch let failure as StepFailure {
                let notApplied = ServerError(
                    status: 424,
                    message:
                        "not applied: operation \(failure.position) of this atomic batch failed (\(failure.error.message))"
                )
                results = steps.indices.map { position in
                    let error = position == failure.position ? failure.error : notApplied
                    return Self.result(error.status, Self.errorBody(error))
                }
                return ["applied": .bool(false), "results": .array(results)]
            }
            let answer: [String: JSONValue] = ["applied": .bool(true), "results": .array(results)]
            if let idempotencyKey { batchAnswers[idempotencyKey] = (.object(request), answer) }
            return answer
        }
        for (position, step) in steps.enumerated() {
            do {
                let (status, answer) = try apply(step, position: position, createdIDs: &createdIDs)
                results.append(Self.result(status, answer.map(JSONValue.object)))
            } catch let error as ServerError {
                results.append(Self.result(error.status, Self.errorBody(error)))
            }
        }
        return ["applied": .bool(true), "results": .array(results)]
    }

    private static func result(_ status: Int, _ body: JSONValue?) -> JSONValue {
        var object: [String: JSONValue] = ["status": .integer(Int64(status))]
        if let body { object["body"] = body }
        return .object(object)
    }

    private static func errorBody(_ error: ServerError) -> JSONValue {
        var object: [String: JSONValue] = ["error": .string(error.message)]
        if let current = error.current { object["current"] = .object(current) }
        return .object(object)
    }

    private func step(_ value: JSONValue, position: Int) throws -> BatchStep {
        guard let object = value.objectValue, let method = object["method"]?.stringValue,
            let path = object["path"]?.stringValue
        else {
            throw ServerError(status: 400, message: "operation \(position) needs a 'method' and a 'path'")
        }
        guard let (collection, id) = collection(forPath: path) else {
            throw ServerError(status: 400, message: "operation \(position): no collection at \(path)")
        }
        var references: [String: Int] = [:]
        for (key, target) in object["refs"]?.objectValue ?? [:] {
            guard let index = target.idString.flatMap({ Int($0) }), index >= 0, index < position else {
                throw ServerError(
                    status: 400, message: "operation \(position): 'refs.\(key)' must name an earlier operation")
            }
            references[key] = index
        }
        return BatchStep(
            method: method, table: collection.table, id: id, body: object["body"]?.objectValue ?? [:],
            idempotencyKey: object["idempotency_key"]?.stringValue,
            ifMatch: object["if_match"]?.idString.map(ReferenceServer.unquotedETag), references: references)
    }

    private func apply(_ step: BatchStep, position: Int, createdIDs: inout [Int: JSONValue]) throws
        -> (Int, [String: JSONValue]?)
    {
        var body = step.body
        for (key, target) in step.references {
            guard let id = createdIDs[target] else {
                throw ServerError(
                    status: 424, message: "operation \(target), whose ID '\(key)' takes, created nothing")
            }
            body[key] = id
        }
        switch (step.method, step.id) {
        case ("POST", nil):
            let created = try create(body, in: step.table, idempotencyKey: step.idempotencyKey)
            createdIDs[position] = created["id"]
            return (201, created)
        case ("PUT", let id?):
            return (
                200,
                try update(body, in: step.table, id: id, ifMatch: step.ifMatch, idempotencyKey: step.idempotencyKey)
            )
        case ("DELETE", let id?):
            try delete(in: step.table, id: id)
            return (204, nil)
        default:
            throw ServerError(status: 405, message: "operation \(position): \(step.method) is not allowed there")
        }
    }
}
