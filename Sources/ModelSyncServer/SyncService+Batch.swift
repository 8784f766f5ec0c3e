import Foundation
import Hummingbird
import NIOCore
import PostgresNIO

// Batches (Docs/Protocol.md, "Batches"): `GET /_modelsync` advertises them; `POST /_modelsync/batch`
// applies many operations in one transaction, each in a savepoint of its own (a failed one is
// rolled back alone), or all together or none (`atomic`).
extension SyncService {
    /// The most operations one batch may hold.
    public static let maximumBatchOperations = 1000

    /// What `GET /_modelsync` answers.
    static let capabilities =
        #"{"protocol":1,"batch":{"path":"/_modelsync/batch","max_operations":\#(maximumBatchOperations)}}"#

    /// Mounts `GET /_modelsync` and `POST /_modelsync/batch`.
    public func addBatchRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("_modelsync") { request, context in
            // An app that speaks an earlier schema version (a grace period) is not offered batches: its
            // changes go one by one, where they are translated.
            await self.respond(request, context) { _, shape in
                Answer(status: 200, body: shape == .current ? Self.capabilities : #"{"protocol":1}"#)
            }
        }
        router.post("_modelsync/batch") { request, context in
            await self.respond(request, context) { identity, shape in
                guard shape == .current else {
                    throw SyncServerError(
                        status: 400,
                        message:
                            "a batch must be in the current schema version's shape; send each change alone (they are translated)"
                    )
                }
                return try await self.batch(
                    as: identity, body: try await Self.body(of: request),
                    idempotencyKey: request.headers[.idempotencyKey])
            }
        }
    }

    /// One operation of a batch, as read from the request.
    struct BatchStep: Sendable {
        var method: String
        var path: String
        var idempotencyKey: String?
        var ifMatch: String?
        /// The body as JSON text, as sent.
        var body: String?
        /// Wire key -> position of the earlier create whose ID it takes.
        var references: [String: Int]
    }

    /// Thrown inside an atomic batch: operation `position` failed (the transaction rolls back).
    struct AtomicFailure: Error {
        var answer: Answer
    }

    /// `POST /_modelsync/batch`: `{"atomic": bool, "operations": [...]}` ->
    /// `{"applied": bool, "results": [{"status": …, "body": …}]}`.
    public func batch(as identity: SyncIdentity, body: Data, idempotencyKey: String?) async throws -> Answer {
        let text = String(decoding: body, as: UTF8.self)
        guard let request = try? JSONDecoder().decode(BatchRequest.self, from: body) else {
            throw SyncServerError(status: 400, message: "a batch is a JSON object with an 'operations' array")
        }
        let atomic = request.atomic == true
        let steps = try Self.steps(of: request, text: text)
        do {
            return try await transaction { connection in
                try await self.setActor(identity, on: connection)
                if atomic, let idempotencyKey,
                    let replay = try await self.claim(
                        idempotencyKey, scope: "batch", request: text, identity: identity, on: connection)
                {
                    return replay
                }
                var results: [String] = []
                var createdIDs: [Int: String] = [:]
                var position = 0
                while position < steps.count {
                    // A run of creates of one model goes in one statement; when the database refuses any
                    // of them, the run goes again one operation at a time below, so that only the
                    // refused one fails (or, in an atomic batch, so that the answer names it).
                    let run = try self.createRun(of: steps, from: position, createdIDs: createdIDs)
                    if let run, let outcomes = try await self.applyRun(run, as: identity, on: connection) {
                        for (create, outcome) in zip(run.creates, outcomes) {
                            switch outcome {
                            case .success(let answer):
                                if let id = Self.createdID(answer) { createdIDs[create.position] = id }
                                results.append(Self.result(answer))
                            case .failure(let error):
                                guard !atomic else {
                                    throw AtomicFailure(
                                        answer: Self.notApplied(steps.count, failed: create.position, error: error))
                                }
                                results.append(Self.result(Answer(status: error.status, body: error.body)))
                            }
                        }
                        position += run.creates.count
                        continue
                    }
                    let end = position + max(run?.creates.count ?? 1, 1)
                    while position < end {
                        let step = steps[position]
                        if !atomic { try await connection.query("SAVEPOINT op", logger: self.logger) }
                        do {
                            let answer = try await self.apply(
                                step, position: position, createdIDs: &createdIDs, as: identity, on: connection)
                            if !atomic { try await connection.query("RELEASE SAVEPOINT op", logger: self.logger) }
                            results.append(Self.result(answer))
                        } catch let error as SyncServerError {
                            guard !atomic else {
                                throw AtomicFailure(
                                    answer: Self.notApplied(steps.count, failed: position, error: error))
                            }
                            try await connection.query("ROLLBACK TO SAVEPOINT op", logger: self.logger)
                            results.append(Self.result(Answer(status: error.status, body: error.body)))
                        }
                        position += 1
                    }
                }
                let answer = Answer(
                    status: 200, body: #"{"applied":true,"results":["# + results.joined(separator: ",") + "]}")
                if atomic, let idempotencyKey {
                    try await self.remember(
                        answer, key: idempotencyKey, scope: "batch", identity: identity, on: connection)
                }
                return answer
            }
        } catch let failure as AtomicFailure {
            return failure.answer
        }
    }

    /// A batch as read from the request (the bodies apart: their text is taken as sent).
    struct BatchRequest: Decodable {
        var atomic: Bool?
        var operations: [Operation]

        struct Operation: Decodable {
            var method: String?
            var path: String?
            var idempotencyKey: String?
            var ifMatch: String?
            /// `nil` when `refs` is absent or not an object of positions (then `referencesAreValid` is false).
            var references: [String: Int]?
            var referencesAreValid: Bool

            enum CodingKeys: String, CodingKey {
                case method, path, refs
                case idempotencyKey = "idempotency_key"
                case ifMatch = "if_match"
            }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                method = try? container.decodeIfPresent(String.self, forKey: .method)
                path = try? container.decodeIfPresent(String.self, forKey: .path)
                idempotencyKey = try? container.decodeIfPresent(String.self, forKey: .idempotencyKey)
                ifMatch =
                    (try? container.decodeIfPresent(String.self, forKey: .ifMatch))
                    ?? (try? container.decodeIfPresent(Int64.self, forKey: .ifMatch)).map(String.init)
                if (try? container.decodeNil(forKey: .refs)) ?? true {
                    references = nil
                    referencesAreValid = true
                } else {
                    references = try? container.decode([String: Int].self, forKey: .refs)
                    referencesAreValid = references != nil
                }
            }
        }
    }

    private static func result(_ answer: Answer) -> String {
        #"{"status":\#(answer.status)"# + (answer.body.isEmpty ? "" : #","body":"# + answer.body) + "}"
    }

    /// The answer to an atomic batch that was rolled back: the failed operation's error, `424` for
    /// every other one.
    private static func notApplied(_ count: Int, failed position: Int, error: SyncServerError) -> Answer {
        let other = SyncServerError(
            status: 424,
            message: "not applied: operation \(position) of this atomic batch failed (\(error.message))")
        let results = (0..<count).map { index in
            result(
                Answer(
                    status: index == position ? error.status : 424, body: index == position ? error.body : other.body))
        }
        return Answer(status: 200, body: #"{"applied":false,"results":["# + results.joined(separator: ",") + "]}")
    }

    /// The operations of a batch; each body is the text the client sent (every digit of its numbers,
    /// and the same idempotency hash as the body of a request of its own).
    static func steps(of request: BatchRequest, text: String) throws -> [BatchStep] {
        guard request.operations.count <= maximumBatchOperations else {
            throw SyncServerError(
                status: 413, message: "a batch holds \(maximumBatchOperations) operations at most; split it")
        }
        let rawBodies = Self.rawBodies(Array(text.utf8))
        guard rawBodies.count == request.operations.count else {
            throw SyncServerError(status: 400, message: "a batch is a JSON object with an 'operations' array")
        }
        var steps: [BatchStep] = []
        for (position, operation) in request.operations.enumerated() {
            guard let method = operation.method, let path = operation.path else {
                throw SyncServerError(status: 400, message: "operation \(position) needs a 'method' and a 'path'")
            }
            let references = operation.references ?? [:]
            guard operation.referencesAreValid, references.values.allSatisfy({ $0 >= 0 && $0 < position }) else {
                throw SyncServerError(
                    status: 400, message: "operation \(position): 'refs' must map fields to earlier operations")
            }
            steps.append(
                BatchStep(
                    method: method, path: path, idempotencyKey: operation.idempotencyKey,
                    ifMatch: operation.ifMatch.map(Self.unquotedETag), body: rawBodies[position],
                    references: references))
        }
        return steps
    }

    /// The raw text of the `body` of each operation of a batch, in order (`nil` for one without), or
    /// an empty array when the batch cannot be read this way.
    static func rawBodies(_ bytes: [UInt8]) -> [String?] {
        let scanner = RawJSONScanner(bytes: bytes)
        var bodies: [String?] = []
        guard
            (try? scanner.object { key in
                guard key == "operations" else { return try scanner.skipValue() }
                try scanner.array {
                    var body: String?
                    try scanner.object { field in
                        let start = scanner.position
                        try scanner.skipValue()
                        if field == "body" { body = String(decoding: bytes[start..<scanner.position], as: UTF8.self) }
                    }
                    bodies.append(body)
                }
            }) != nil
        else { return [] }
        return bodies
    }

    /// Applies one operation on `connection`; `createdIDs` gets a create's ID (JSON text).
    private func apply(
        _ step: BatchStep, position: Int, createdIDs: inout [Int: String], as identity: SyncIdentity,
        on connection: PostgresConnection
    ) async throws -> Answer {
        guard let (model, rawID) = servedModel(forPath: step.path) else {
            throw SyncServerError(status: 404, message: "operation \(position): no collection at \(step.path)")
        }
        let body = try Self.resolvingReferences(step, position: position, createdIDs: createdIDs)
        switch (step.method, rawID) {
        case ("POST", nil):
            try validate(try JSONShape.object(from: Data(body.utf8)), for: model, creating: true)
            let answer = try await create(
                model, as: identity, text: body, idempotencyKey: step.idempotencyKey, on: connection)
            if let id = Self.createdID(answer) { createdIDs[position] = id }
            return answer
        case ("PUT", let rawID?):
            try validate(try JSONShape.object(from: Data(body.utf8)), for: model, creating: false)
            return try await update(
                model, as: identity, id: try recordID(rawID, of: model), rawID: rawID, text: body,
                ifMatch: step.ifMatch, idempotencyKey: step.idempotencyKey, on: connection)
        case ("DELETE", let rawID?):
            return try await delete(
                model, as: identity, id: try recordID(rawID, of: model), rawID: rawID, on: connection)
        default:
            throw SyncServerError(
                status: 405, message: "operation \(position): \(step.method) is not allowed on \(step.path)")
        }
    }

    /// Consecutive creates of one model, from one position of a batch, that one statement can apply.
    struct CreateRun {
        struct Create {
            var position: Int
            var input: CreateInput
        }
        var model: ServerModel
        var creates: [Create]
    }

    /// The run of creates that starts at `start`: operations that create records of one model, whose
    /// references point before the run to creates that succeeded, whose bodies pass validation and
    /// whose keys differ. `nil` when the operation at `start` is not such a create (it goes alone).
    func createRun(of steps: [BatchStep], from start: Int, createdIDs: [Int: String]) throws -> CreateRun? {
        var run: CreateRun?
        var keys: Set<String> = []
        for position in start..<steps.count {
            let step = steps[position]
            guard step.method == "POST", let (model, rawID) = servedModel(forPath: step.path), rawID == nil,
                run == nil || run?.model.table == model.table,
                step.references.values.allSatisfy({ $0 < start && createdIDs[$0] != nil })
            else { break }
            if let key = step.idempotencyKey {
                guard keys.insert(key).inserted else { break }
            }
            guard let body = try? Self.resolvingReferences(step, position: position, createdIDs: createdIDs),
                let fields = try? JSONShape.object(from: Data(body.utf8)),
                (try? validate(fields, for: model, creating: true)) != nil
            else { break }
            let create = CreateRun.Create(
                position: position,
                input: CreateInput(
                    body: body, idempotencyKey: step.idempotencyKey, requestHash: Self.requestHash(body)))
            if run == nil { run = CreateRun(model: model, creates: []) }
            run?.creates.append(create)
        }
        return run
    }

    /// Applies a run of creates in one statement, in a savepoint; `nil` (and nothing applied) when the
    /// database refused one of them.
    func applyRun(_ run: CreateRun, as identity: SyncIdentity, on connection: PostgresConnection) async throws
        -> [Result<Answer, SyncServerError>]?
    {
        try await connection.query("SAVEPOINT run", logger: logger)
        do {
            let outcomes = try await createAll(run.creates.map(\.input), of: run.model, as: identity, on: connection)
            try await connection.query("RELEASE SAVEPOINT run", logger: logger)
            return outcomes
        } catch let error as PSQLError where error.serverInfo?[.sqlState] != nil {
            try await connection.query("ROLLBACK TO SAVEPOINT run", logger: logger)
            return nil
        }
    }

    /// The body of an operation with its references filled in (`refs`: wire key -> position of the
    /// earlier create whose ID it takes); `424` when that create created nothing.
    static func resolvingReferences(_ step: BatchStep, position: Int, createdIDs: [Int: String]) throws -> String {
        let body = step.body ?? "{}"
        guard !step.references.isEmpty else { return body }
        var values: [String: String] = [:]
        for (key, target) in step.references {
            guard let id = createdIDs[target] else {
                throw SyncServerError(
                    status: 424, message: "operation \(target), whose ID '\(key)' takes, created nothing")
            }
            values[key] = id
        }
        guard let patched = settingFields(body, to: values) else {
            throw SyncServerError(status: 400, message: "operation \(position): the body must be a JSON object")
        }
        return patched
    }

    /// `object` (JSON text) with each top-level field of `values` set to its JSON text: replaced where
    /// present, added at the end otherwise; `nil` when `object` is not a JSON object.
    static func settingFields(_ object: String, to values: [String: String]) -> String? {
        let bytes = Array(object.utf8)
        let scanner = RawJSONScanner(bytes: bytes)
        var replacements: [(range: Range<Int>, text: String)] = []
        var present: Set<String> = []
        var closing = 0
        var members = 0
        do {
            try scanner.object { key in
                members += 1
                let start = scanner.position
                try scanner.skipValue()
                if let value = values[key] {
                    replacements.append((start..<scanner.position, value))
                    present.insert(key)
                }
            }
            closing = scanner.position - 1
            scanner.skipSpace()
            guard scanner.position == bytes.count else { return nil }
        } catch {
            return nil
        }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 64)
        var cursor = 0
        for replacement in replacements {
            output += bytes[cursor..<replacement.range.lowerBound]
            output += Array(replacement.text.utf8)
            cursor = replacement.range.upperBound
        }
        output += bytes[cursor..<closing]
        var empty = members == 0
        for key in values.keys.sorted() where !present.contains(key) {
            output += Array(((empty ? "" : ",") + jsonString(key) + ":" + values[key]!).utf8)
            empty = false
        }
        output += bytes[closing...]
        return String(decoding: output, as: UTF8.self)
    }

    /// The ID (JSON text) of a create's answer.
    static func createdID(_ answer: Answer) -> String? {
        (try? JSONDecoder().decode(CreatedID.self, from: Data(answer.body.utf8)))?.id.json
    }

    /// The model a path addresses, and the record ID (percent-decoded) when it names one.
    func servedModel(forPath path: String) -> (ServerModel, String?)? {
        for model in schema.models {
            if path == model.path { return (model, nil) }
            if path.hasPrefix(model.path + "/") {
                let id = path.dropFirst(model.path.count + 1)
                if !id.isEmpty, !id.contains("/") { return (model, id.removingPercentEncoding ?? String(id)) }
            }
        }
        return nil
    }
}

/// The `id` of a create's answer.
private struct CreatedID: Decodable {
    var id: JSONID
}

/// An `id` of an answer, as JSON text (a number or a string), to fill a reference with.
private struct JSONID: Decodable {
    var json: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            json = String(number)
        } else {
            json = jsonString(try container.decode(String.self))
        }
    }
}

/// Walks JSON text without decoding it, to take the exact text of some values.
final class RawJSONScanner {
    struct Malformed: Error {}

    let bytes: [UInt8]
    var position = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    func skipSpace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    func expect(_ byte: UInt8) throws {
        skipSpace()
        guard position < bytes.count, bytes[position] == byte else { throw Malformed() }
        position += 1
    }

    /// `true` (and consumed) when the next byte is `byte`.
    func next(is byte: UInt8) -> Bool {
        skipSpace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// A string, decoded.
    func string() throws -> String {
        skipSpace()
        let start = position
        try skipString()
        return try JSONDecoder().decode(String.self, from: Data(bytes[start..<position]))
    }

    func skipString() throws {
        try expect(UInt8(ascii: "\""))
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "\\"): position += 2
            case UInt8(ascii: "\""):
                position += 1
                return
            default: position += 1
            }
        }
        throw Malformed()
    }

    /// An object: `member` is called with each key, positioned at its value, and must consume it.
    func object(_ member: (String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        if next(is: UInt8(ascii: "}")) { return }
        repeat {
            let key = try string()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            try member(key)
        } while next(is: UInt8(ascii: ","))
        try expect(UInt8(ascii: "}"))
    }

    /// An array: `element` is called positioned at each element, and must consume it.
    func array(_ element: () throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        if next(is: UInt8(ascii: "]")) { return }
        repeat {
            skipSpace()
            try element()
        } while next(is: UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
    }

    func skipValue() throws {
        skipSpace()
        guard position < bytes.count else { throw Malformed() }
        switch bytes[position] {
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "{"): try object { _ in try skipValue() }
        case UInt8(ascii: "["): try array { try skipValue() }
        default:
            let start = position
            while position < bytes.count, ![0x20, 0x09, 0x0A, 0x0D, 0x2C, 0x5D, 0x7D].contains(bytes[position]) {
                position += 1
            }
            if position == start { throw Malformed() }
        }
    }
}
