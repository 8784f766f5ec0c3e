import ChatModels
import Foundation
import GRDB
import ModelSync

typealias ChatThread = ChatModels.Thread

let recordCount = 10_000

/// A store holding one user and one thread, ready for messages.
struct ChatDatabase {
    var store: SyncStore
    var thread: ChatThread
    var messages: [Message]

    /// A fresh store in memory, or (`onFile`) in a file in WAL mode, which is what apps use.
    static func make(messages count: Int, saved: Bool = false, onFile: Bool = false) async throws -> ChatDatabase {
        let store = try onFile ? makeFileStore("store").0 : SyncStore(.inMemory, models: GeneratedModels.all)
        let thread = try await store.write { tx in
            let user = try tx.save(User(name: "Ada", email: "ada@example.com"))
            return try tx.save(ChatThread(createdAt: Date(), tags: ["bench"], ownerId: user.id))
        }
        let messages = (0..<count).map { index in
            Message(role: .user, body: "Message number \(index) of the benchmark thread", threadId: thread.id)
        }
        if saved { try await store.messages.save(messages) }
        return ChatDatabase(store: store, thread: thread, messages: messages)
    }
}

private let payloadEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

/// Hand-written GRDB: the same rows with a cached INSERT statement, and (when `withOutbox`) the
/// same outbox rows an offline-first app must write, in one transaction.
func handWrittenInsert(_ fixture: ChatDatabase, withOutbox: Bool) async throws {
    let messages = fixture.messages
    try await fixture.store.writeBypassingSync { db in
        let insert = try db.cachedStatement(
            sql: "INSERT INTO message (id, role, body, threadId, replyToId) VALUES (?, ?, ?, ?, ?)")
        let queue = try db.cachedStatement(
            sql: """
                INSERT INTO modelsync_outbox (tableName, recordID, operation, payload, idempotencyKey, createdAt)
                VALUES ('message', ?, 'create', ?, ?, ?)
                """)
        for message in messages {
            try insert.execute(arguments: [
                message.id.rawValue, message.role.rawValue, message.body, message.threadId.rawValue,
                message.replyToId?.rawValue,
            ])
            if withOutbox {
                let payload = String(decoding: try payloadEncoder.encode(message), as: UTF8.self)
                try queue.execute(arguments: [
                    message.id.rawValue, payload, UUID().uuidString.lowercased(), Date().timeIntervalSinceReferenceDate,
                ])
            }
        }
    }
}

func runStoreBenchmarks() async throws {
    for (suffix, onFile) in [("", false), ("-wal", true)] {
        try await runStoreBenchmarks(suffix: suffix, onFile: onFile)
    }
}

/// The store cases, on an in-memory database (`suffix` "") or on a file in WAL mode ("-wal").
func runStoreBenchmarks(suffix: String, onFile: Bool) async throws {
    // Saving: ModelSync stores each row and queues its outbox entry in the same transaction.
    try await compare(
        "save10k" + suffix, setUp: { try await ChatDatabase.make(messages: recordCount, onFile: onFile) },
        ours: { fixture in try await fixture.store.messages.save(fixture.messages) },
        baseline: { fixture in try await handWrittenInsert(fixture, withOutbox: true) })
    // For context: the same save against inserting the rows alone, with no outbox at all.
    try await compare(
        "save10k-vs-rows-only" + suffix,
        setUp: { try await ChatDatabase.make(messages: recordCount, onFile: onFile) },
        ours: { fixture in try await fixture.store.messages.save(fixture.messages) },
        baseline: { fixture in try await handWrittenInsert(fixture, withOutbox: false) })

    // Fetching 10,000 records: the repository against the fastest hand-written GRDB path (a
    // statement cursor reading columns by index, values decoded straight from the statement).
    try await compare(
        "fetch10k" + suffix,
        setUp: { try await ChatDatabase.make(messages: recordCount, saved: true, onFile: onFile) },
        ours: { fixture in
            let messages = try await fixture.store.messages.all()
            precondition(messages.count == recordCount)
        },
        baseline: { fixture in
            let messages = try await fixture.store.reader.read { db in
                let rows = try Row.fetchCursor(db, sql: "SELECT id, role, body, threadId, replyToId FROM message")
                var messages: [Message] = []
                while let row = try rows.next() {
                    messages.append(
                        Message(
                            id: Message.ID(row[0] as String), role: Message.Role(rawValue: row[1] as String)!,
                            body: row[2], threadId: ChatThread.ID(row[3] as String),
                            replyToId: (row[4] as String?).map { Message.ID($0) }))
                }
                return messages
            }
            precondition(messages.count == recordCount)
        })
    // The earlier baseline, for comparison with earlier figures: `Row.fetchAll` plus subscripts.
    try await compare(
        "fetch10k-vs-fetchAll" + suffix,
        setUp: { try await ChatDatabase.make(messages: recordCount, saved: true, onFile: onFile) },
        ours: { fixture in
            let messages = try await fixture.store.messages.all()
            precondition(messages.count == recordCount)
        },
        baseline: { fixture in
            let messages = try await fixture.store.reader.read { db in
                try Row.fetchAll(db, sql: "SELECT id, role, body, threadId, replyToId FROM message").map { row in
                    Message(
                        id: Message.ID(row[0] as String), role: Message.Role(rawValue: row[1])!, body: row[2],
                        threadId: ChatThread.ID(row[3] as String),
                        replyToId: (row[4] as String?).map { Message.ID($0) })
                }
            }
            precondition(messages.count == recordCount)
        })

    // Replacing a parent's temporary ID with 10,000 children and 10,000 queued entries.
    try await compare(
        "replace10k" + suffix,
        setUp: { try await ChatDatabase.make(messages: recordCount, saved: true, onFile: onFile) },
        ours: { fixture in try await fixture.store.threads.replaceTemporaryID(fixture.thread.id, with: "1") },
        baseline: { fixture in
            let old = fixture.thread.id.rawValue
            try await fixture.store.writeBypassingSync { db in
                try db.execute(sql: "PRAGMA defer_foreign_keys = ON")
                try db.execute(sql: "UPDATE thread SET id = '1' WHERE id = ?", arguments: [old])
                try db.execute(sql: "UPDATE message SET threadId = '1' WHERE threadId = ?", arguments: [old])
                try db.execute(sql: "UPDATE thread_artifact SET threadId = '1' WHERE threadId = ?", arguments: [old])
                try db.execute(sql: "UPDATE draft SET threadId = '1' WHERE threadId = ?", arguments: [old])
                try db.execute(
                    sql: """
                        UPDATE modelsync_outbox SET recordID = '1', payload = json_set(payload, '$.id', '1')
                        WHERE tableName = 'thread' AND recordID = ?
                        """, arguments: [old])
                try db.execute(
                    sql: """
                        UPDATE modelsync_outbox SET payload = json_set(payload, '$.threadId', '1')
                        WHERE tableName = 'message' AND json_extract(payload, '$.threadId') = ?
                        """, arguments: [old])
                try db.execute(
                    sql:
                        "INSERT INTO modelsync_id_map (tableName, oldID, newID, replacedAt) VALUES ('thread', ?, '1', 0)",
                    arguments: [old])
            }
        })
}
