import ChatModels
import Foundation
import GRDB
import ModelSync
import Testing

/// The runtime's own reads select a model's columns in schema order and read them by index; rows of
/// any other shape (an app's custom SQL: other column order, extra columns, joins) are read by name.
/// Both give the same records.
@Suite("Reads by index for the model's own selection, by name for custom SQL")
struct OrderedReadTests {
    @Test("repository reads, finds and relationship reads give the records that were saved")
    func ownReadsGiveSavedRecords() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 4)
        #expect(try await store.messages.all() == fixture.messages)
        #expect(try await store.messages.find(fixture.messages[2].id) == fixture.messages[2])
        #expect(try await store.threads.all() == [fixture.thread])
        #expect(try await fixture.thread.messages(in: store) == fixture.messages)
        #expect(try await fixture.messages[1].thread(in: store) == fixture.thread)
    }

    @Test("rows from custom SQL with another column order, extra columns or a join read the same records")
    func customSQLRowsReadByName() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 3)
        let (reordered, extra, joined, threads) = try await store.read { db in
            (
                try Message.fetchAll(
                    db, sql: "SELECT replyToId, body, 'x' AS note, threadId, id, role FROM message ORDER BY rowid"),
                try Message.fetchAll(
                    db, sql: "SELECT 1 AS one, 'user' AS kind, * , 2 AS two FROM message ORDER BY rowid"),
                try Message.fetchAll(
                    db,
                    sql: """
                        SELECT thread.title AS threadTitle, thread.tags AS threadTags, message.*
                        FROM message JOIN thread ON thread.id = message.threadId ORDER BY message.rowid
                        """),
                try ChatThread.fetchAll(db, sql: "SELECT ownerId, tags, createdAt, title, id FROM thread")
            )
        }
        #expect(reordered == fixture.messages)
        #expect(extra == fixture.messages)
        #expect(joined == fixture.messages)
        #expect(threads == [fixture.thread])
        // Query-interface requests (GRDB's `SELECT *`) read by name too.
        #expect(try await store.messages.query(Message.order(Column("body").desc)) == fixture.messages.reversed())
    }
}
