import Foundation
import PostgresNIO

// Older clients during a grace period (`options.oldestClientSchemaVersion`): a client whose
// `ModelSync-Schema-Version` is older than the spec's `schemaVersion` but not older than the oldest
// version served sends and receives the earlier shape of the models (the one `renamedFrom:`,
// `removed:`, `default:` and `mapping:` describe); an older one gets `426 Upgrade Required`.
extension SyncService {
    /// The wire shape a client speaks.
    public enum ClientShape: Sendable, Hashable {
        /// The spec's shape (the client's schema version is the spec's, or newer).
        case current
        /// The earlier version's shape: a client inside the grace period.
        case earlier
    }

    /// The shape of a client that sends `header` as its `ModelSync-Schema-Version` (no header is
    /// version 1).
    ///
    /// - Throws: ``SyncServerError`` `426` (`client_too_old`) when the version is older than the
    ///   schema's ``ServerSchema/oldestClientSchemaVersion``.
    public func clientShape(schemaVersionHeader header: String?) throws -> ClientShape {
        let version = header.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 1
        if version >= schema.schemaVersion { return .current }
        guard version >= schema.oldestClientSchemaVersion else {
            throw SyncServerError(
                status: 426,
                message:
                    "this app version is too old: it sends schema version \(version), and this server accepts "
                    + "\(schema.oldestClientSchemaVersion) or later; update the app (its queued changes are kept and "
                    + "sent after the update)", code: "client_too_old",
                minimumSchemaVersion: schema.oldestClientSchemaVersion)
        }
        return .earlier
    }

    /// A request body of the earlier shape in the current one (see ``EarlierShapeSQL``); `stored` is
    /// the record an update replaces (its values fill the keys the earlier shape lacks).
    func currentBody(
        _ body: Data, of model: ServerModel, storedRecord stored: String?, on connection: PostgresConnection? = nil
    ) async throws -> Data {
        _ = try JSONShape.object(from: body)
        var binds = PostgresBindings()
        binds.append(String(decoding: body, as: UTF8.self))
        if let stored { binds.append(stored) }
        let query = PostgresQuery(
            unsafeSQL: EarlierShapeSQL.request(model, fillingDefaults: stored == nil), binds: binds)
        return Data(try await singleText(query, on: connection, model: model).utf8)
    }

    /// A JSON array of records in the earlier shape.
    func earlierRecords(_ array: String, of model: ServerModel, on connection: PostgresConnection? = nil)
        async throws -> String
    {
        var binds = PostgresBindings()
        binds.append(array)
        return try await singleText(
            PostgresQuery(unsafeSQL: EarlierShapeSQL.answers(model), binds: binds), on: connection, model: model)
    }

    /// One record (JSON object text) in the earlier shape.
    func earlierRecord(_ record: String, of model: ServerModel, on connection: PostgresConnection? = nil)
        async throws -> String
    {
        let array = try await earlierRecords("[" + record + "]", of: model, on: connection)
        return String(array.dropFirst().dropLast())
    }

    /// An answer in `shape`: records of a `200`/`201` translated for an earlier client.
    func answer(_ answer: Answer, in shape: ClientShape, of model: ServerModel) async throws -> Answer {
        guard shape == .earlier, answer.status == 200 || answer.status == 201, answer.body.hasPrefix("{") else {
            return answer
        }
        return Answer(status: answer.status, body: try await earlierRecord(answer.body, of: model))
    }

    private func singleText(_ query: PostgresQuery, on connection: PostgresConnection?, model: ServerModel)
        async throws -> String
    {
        do {
            var result = ""
            if let connection {
                for try await text in try await connection.query(query, logger: logger).decode(String.self) {
                    result = text
                }
            } else {
                for try await text in try await database.query(query, logger: logger).decode(String.self) {
                    result = text
                }
            }
            return result
        } catch let error as PSQLError {
            throw mapped(error, model: model, operation: "read")
        }
    }
}
