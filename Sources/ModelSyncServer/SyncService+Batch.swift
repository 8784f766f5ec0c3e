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
        /// The body as JSON text (PostgreSQL's rendering of it: exact numbers).
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
        guard case .object(let shape) = (try? JSONDecoder().decode(JSONShape.self, from: body)) ?? .null,
            case .array? = shape["operations"]
        else {
            throw SyncServerError(status: 400, message: "a batch is a JSON object with an 'operations' array")
        }
        let atomic = (try? JSONDecoder().decode(AtomicFlag.self, from: body))?.atomic == true
        do {
            return try await transaction { connection in
                try await self.setActor(identity, on: connection)
                if atomic, let idempotencyKey,
                    let replay = try await self.claim(
                        idempotencyKey, scope: "batch", request: text, identity: identity, on: connection)
                {
                    return replay
                }
                let steps = try await self.steps(of: text, on: connection)
                var results: [String] = []
                var createdIDs: [Int: String] = [:]
                for (position, step) in steps.enumerated() {
                    if !atomic { try await connection.query("SAVEPOINT op", logger: self.logger) }
                    do {
                        let answer = try await self.apply(
                            step, position: position, createdIDs: &createdIDs, as: identity, on: connection)
                        if !atomic { try await connection.query("RELEASE SAVEPOINT op", logger: self.logger) }
                        results.append(Self.result(answer))
                    } catch let error as SyncServerError {
                        guard !atomic else {
                            throw AtomicFailure(answer: Self.notApplied(steps.count, failed: position, error: error))
                        }
                        try await connection.query("ROLLBACK TO SAVEPOINT op", logger: self.logger)
                        results.append(Self.result(Answer(status: error.status, body: error.body)))
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

    private struct AtomicFlag: Decodable {
        var atomic: Bool?
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

    /// The operations of a batch, read by PostgreSQL; each body is the text the client sent (every digit
    /// of its numbers, and the same idempotency hash as the body of a request of its own).
    private func steps(of text: String, on connection: PostgresConnection) async throws -> [BatchStep] {
        let rawBodies = Self.rawBodies(Array(text.utf8))
        var steps: [BatchStep] = []
        let rows = try await connection.query(
            """
            SELECT o.value ->> 'method', o.value ->> 'path', o.value ->> 'idempotency_key', o.value ->> 'if_match',
              (o.value -> 'body')::text, COALESCE((o.value -> 'refs')::text, '{}')
            FROM jsonb_array_elements(\(text)::jsonb -> 'operations') WITH ORDINALITY AS o(value, position)
            ORDER BY o.position
            """, logger: logger
        ).decode((String?, String?, String?, String?, String?, String).self)
        for try await (method, path, key, ifMatch, body, refs) in rows {
            let position = steps.count
            guard let method, let path else {
                throw SyncServerError(status: 400, message: "operation \(position) needs a 'method' and a 'path'")
            }
            guard let references = try? JSONDecoder().decode([String: Int].self, from: Data(refs.utf8)),
                references.values.allSatisfy({ $0 >= 0 && $0 < position })
            else {
                throw SyncServerError(
                    status: 400, message: "operation \(position): 'refs' must map fields to earlier operations")
            }
            steps.append(
                BatchStep(
                    method: method, path: path, idempotencyKey: key, ifMatch: ifMatch.map(Self.unquotedETag),
                    body: position < rawBodies.count ? rawBodies[position] ?? body : body, references: references))
        }
        guard steps.count <= Self.maximumBatchOperations else {
            throw SyncServerError(
                status: 413, message: "a batch holds \(Self.maximumBatchOperations) operations at most; split it")
        }
        return steps
    }

    /// The raw text of the `body` of each operation of a batch, in order (`nil` for one without), or
    /// an empty array when the batch cannot be read this way (the bodies then come from PostgreSQL).
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
        var body = step.body ?? "{}"
        for (key, target) in step.references.sorted(by: { $0.key < $1.key }) {
            guard let id = createdIDs[target] else {
                throw SyncServerError(
                    status: 424, message: "operation \(target), whose ID '\(key)' takes, created nothing")
            }
            for try await text in try await connection.query(
                "SELECT jsonb_set(\(body)::jsonb, ARRAY[\(key)], \(id)::jsonb)::text", logger: logger
            ).decode(String.self) {
                body = text
            }
        }
        switch (step.method, rawID) {
        case ("POST", nil):
            try validate(try JSONShape.object(from: Data(body.utf8)), for: model, creating: true)
            let answer = try await create(
                model, as: identity, text: body, idempotencyKey: step.idempotencyKey, on: connection)
            if let created = try? JSONDecoder().decode(CreatedID.self, from: Data(answer.body.utf8)) {
                createdIDs[position] = created.id.json
            }
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
