import ChatModels
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer
import Testing

/// Concurrent saves, deletes, ID replacements and an engine push on one file-backed store. Run
/// under ThreadSanitizer by CI (`swift test --sanitize=thread`): the assertions check the outcome,
/// the sanitizer checks the way there.
@Suite("Races")
struct RaceTests {
    @Test("concurrent saves, deletes, ID replacements and a push on one file-backed store stay consistent")
    func concurrentWritersAndPush() async throws {
        let directory = try makeTemporaryDirectory("races")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SyncStore(.file(directory.appendingPathComponent("races.sqlite")), models: GeneratedModels.all)
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        let engine = SyncEngine(
            store: store,
            remote: RESTRemote(configuration: .init(baseURL: baseURL, timeout: 5), models: GeneratedModels.all),
            configuration: .init(maximumConcurrentRequests: 4, retry: RetryPolicy(initialDelay: 0.01)))
        let idChanges = EventRecorder(
            store.messages.changes().compactMap { change -> String? in
                if case .idChanged(let old, _) = change { return old.rawValue }
                return nil
            })
        let owner = try await store.users.save(User(name: "Ada", email: "ada@example.com"))

        // Writers: each creates threads with messages and deletes some of its own messages.
        // Replacer: gives local-only threads a server-style ID by hand (as a pull-less sync would).
        // Pusher: pushes while all of that happens.
        let writers = 4
        let rounds = 12
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for round in 0..<rounds {
                        let (_, messages) = try await store.write { tx in
                            let thread = try tx.save(
                                ChatModels.Thread(
                                    title: "w\(writer) r\(round)", createdAt: Date(timeIntervalSinceReferenceDate: 0),
                                    tags: [], ownerId: owner.id))
                            var messages: [Message] = []
                            for index in 0..<3 {
                                messages.append(
                                    try tx.save(
                                        Message(
                                            role: .user, body: "w\(writer) r\(round) m\(index)", threadId: thread.id,
                                            replyToId: messages.last?.id)))
                            }
                            return (thread, messages)
                        }
                        if round.isMultiple(of: 3) { try await store.messages.delete(messages[2].id) }
                        var edited = messages[0]
                        edited.body += " (edited)"
                        try await store.messages.save(edited)
                    }
                }
            }
            group.addTask {
                for round in 0..<rounds {
                    let candidate = try await store.read { db in
                        try String.fetchOne(
                            db,
                            sql: """
                                SELECT id FROM thread WHERE id LIKE ? AND id NOT IN (
                                    SELECT recordID FROM modelsync_outbox WHERE state = 'inFlight')
                                ORDER BY rowid DESC LIMIT 1
                                """,
                            arguments: [TemporaryID.prefix + "%"])
                    }
                    if let candidate {
                        // A replacement racing with the engine: either wins, neither corrupts.
                        _ = try? await store.threads.replaceTemporaryID(
                            ChatModels.Thread.ID(candidate), with: ChatModels.Thread.ID("local-\(round)"))
                    }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            group.addTask {
                for _ in 0..<3 {
                    try await engine.push(waitForRetries: false)
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            try await group.waitForAll()
        }

        let (violations, integrity, threads, messages, outboxStates) = try await store.read { db in
            (
                try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count,
                try String.fetchOne(db, sql: "PRAGMA integrity_check"),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM thread") ?? 0,
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message") ?? 0,
                try String.fetchAll(db, sql: "SELECT DISTINCT state FROM modelsync_outbox")
            )
        }
        #expect(violations == 0)
        #expect(integrity == "ok")
        #expect(threads == writers * rounds)
        #expect(messages == writers * rounds * 3 - writers * ((rounds + 2) / 3))
        #expect(!outboxStates.contains("inFlight"))
        // Every message references a thread that exists, under its current ID.
        let orphans = try await store.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message WHERE threadId NOT IN (SELECT id FROM thread)")
        }
        #expect(orphans == 0)
        // A replaced thread ID appears nowhere any more.
        let stale = try await store.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM message WHERE threadId IN (
                        SELECT oldID FROM modelsync_id_map WHERE tableName = 'thread')
                    """)
        }
        #expect(stale == 0)
        let messageReplacements = try await store.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM modelsync_id_map WHERE tableName = 'message'") ?? 0
        }
        #expect(try await eventually { idChanges.elements.count == messageReplacements })
        #expect(Set(idChanges.elements).count == idChanges.elements.count)
        idChanges.stop()
    }
}
