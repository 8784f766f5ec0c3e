import Foundation
import Logging
import ModelSync
import ModelSyncServer
import PostgresNIO
import Testing

/// Sequence values are taken before commit: a transaction that took a lower value can commit after
/// a reader has seen a higher one. The listing only returns changes of finished transactions
/// (Docs/Server.md), so a cursor never passes a change that is still to come.
@Suite("Cursor completeness under concurrent writers")
struct CursorCompletenessTests {
    @Test(
        "8 concurrent writers (2 of them keep their transactions open a while), 3 paging readers, 10,000 creates: every reader sees every record exactly once"
    )
    func everyChangeSeenExactlyOnce() async throws {
        let (server, api) = try await GeneratedServer.startWithClient()
        defer { Task { await server.stop() } }
        let writers = 8
        let perWriter = 1250
        let finished = Mutex(false)
        // Two writers commit late on purpose: their transactions take their change stamps, then wait
        // before committing, as a slow request would.
        let database = PostgresClient(configuration: try DatabaseURL.configuration(server.databaseURL))
        let databaseTask = Task { await database.run() }
        defer { databaseTask.cancel() }
        let insert = server.service.sql.models["artifact"]!.insert

        let seen = try await withThrowingTaskGroup(of: [String]?.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for index in 0..<perWriter where writer >= 6 {
                        let id = "w\(writer)-\(index)"
                        try await database.withConnection { connection in
                            try await connection.query("BEGIN", logger: Logger(label: "test"))
                            var binds = PostgresBindings()
                            binds.append("acme")
                            binds.append(#"{"id":"\#(id)","title":"\#(id)","kind":"k"}"#)
                            binds.append(id)
                            try await connection.query(
                                PostgresQuery(unsafeSQL: insert, binds: binds), logger: Logger(label: "test"))
                            try await connection.query("SELECT pg_sleep(0.003)", logger: Logger(label: "test"))
                            try await connection.query("COMMIT", logger: Logger(label: "test"))
                        }
                    }
                    for index in 0..<perWriter where writer < 6 {
                        let id = "w\(writer)-\(index)"
                        let answer = try await api.send(
                            "POST", "/artifacts",
                            .object(["id": .string(id), "title": .string(id), "kind": .string("k")]),
                            headers: ["Idempotency-Key": id])
                        guard answer.status == 201 else {
                            throw TestFailure(description: "create \(id): \(answer.text)")
                        }
                    }
                    return nil
                }
            }
            for _ in 0..<3 {
                group.addTask {
                    var ids: [String] = []
                    var cursor = "0-0"
                    while true {
                        // Read whether the writers were done *before* the page: an empty page after that is the end.
                        let writersDone = finished.withLock { $0 }
                        let page = try await api.send("GET", "/artifacts?limit=1000&cursor=\(cursor)")
                        guard page.status == 200, let items = page.object["data"]?.arrayValue,
                            case .string(let next)? = page.object["next_cursor"]
                        else { throw TestFailure(description: "listing: \(page.text)") }
                        ids += items.compactMap { $0.objectValue?["id"]?.idString }
                        cursor = next
                        if items.isEmpty, writersDone { return ids }
                    }
                }
            }
            var readers: [[String]] = []
            var writersLeft = writers
            while let result = try await group.next() {
                if let ids = result {
                    readers.append(ids)
                } else {
                    writersLeft -= 1
                    if writersLeft == 0 { finished.withLock { $0 = true } }
                }
            }
            return readers
        }
        #expect(seen.count == 3)
        let expected = Set((0..<writers).flatMap { writer in (0..<perWriter).map { "w\(writer)-\($0)" } })
        for ids in seen {
            #expect(ids.count == writers * perWriter)
            #expect(Set(ids) == expected)
        }
    }
}
