import ChatModels
import Foundation
import GRDB
import ModelSync
import Testing

@Suite("Schema derived from model metadata")
struct SchemaTests {
    @Test(
        "tables have checking foreign keys (the store applies delete rules), indexes on foreign keys, and unique constraints"
    )
    func tables() async throws {
        let store = try makeStore()
        try await store.read { db in
            let messageKeys = try db.foreignKeys(on: "message")
            #expect(Set(messageKeys.map { $0.mapping.first!.origin }) == ["threadId", "replyToId"])
            let actions = try Row.fetchAll(db, sql: "PRAGMA foreign_key_list(message)")
                .map { "\($0["from"] as String):\($0["on_delete"] as String)" }
            // Delete rules are applied by the store (which queues and reports them), never by SQLite.
            #expect(Set(actions) == ["threadId:NO ACTION", "replyToId:NO ACTION"])
            let linkActions = try Row.fetchAll(db, sql: "PRAGMA foreign_key_list(thread_artifact)")
                .map { "\($0["from"] as String):\($0["on_delete"] as String)" }
            #expect(Set(linkActions) == ["threadId:NO ACTION", "artifactId:NO ACTION"])
            let indexedColumns = try db.indexes(on: "message").flatMap(\.columns)
            #expect(indexedColumns.contains("threadId") && indexedColumns.contains("replyToId"))
            let uniqueUserIndexes = try db.indexes(on: "user").filter(\.isUnique).map(\.columns)
            #expect(uniqueUserIndexes.contains(["email"]))
            let columns = try db.columns(in: "thread").map(\.name)
            #expect(columns == ["id", "title", "createdAt", "tags", "ownerId"])
        }
    }

    @Test("reopening with a model that gained an optional field adds its column and keeps the rows")
    func additiveMigration() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("schema.sqlite")
        do {
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        }
        // Simulate the previous app version: the user table without its optional `bio` column.
        do {
            let queue = try DatabaseQueue(path: url.path)
            try await queue.write { db in try db.execute(sql: "ALTER TABLE user DROP COLUMN bio") }
        }
        let reopened = try SyncStore(.file(url), models: GeneratedModels.all)
        let user = try #require(try await reopened.users.all().first)
        #expect(user.name == "Ada" && user.bio == nil)
    }

    @Test("a required column missing from an existing table is a clear error, and the file is untouched")
    func incompatibleSchema() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("schema.sqlite")
        do {
            let queue = try DatabaseQueue(path: url.path)
            try await queue.write { db in
                try db.execute(sql: "CREATE TABLE user (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL)")
                try db.execute(sql: "INSERT INTO user VALUES ('usr_1', 'Ada')")
            }
        }
        #expect {
            _ = try SyncStore(.file(url), models: GeneratedModels.all)
        } throws: { error in
            guard let error = error as? ModelSyncError, case .incompatibleSchema(let table, let reason) = error else {
                return false
            }
            return table == "user" && reason.contains("'email'")
        }
        let queue = try DatabaseQueue(path: url.path)
        #expect(try await queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM user") } == ["Ada"])
    }
}
