import ChatModels
import Foundation
import GRDB
import ModelSync
@_exported import ModelSyncTestSupport

/// `Thread` is also a Foundation type; tests name the chat model explicitly.
typealias ChatThread = ChatModels.Thread

func makeStore() throws -> SyncStore {
    try SyncStore(.inMemory, models: GeneratedModels.all)
}

/// A date with whole milliseconds, so comparisons are not about floating-point noise.
let fixedDate = Date(timeIntervalSinceReferenceDate: 800_000_000.125)

/// A user, a thread of that user, and `count` messages in the thread, all saved offline.
struct ChatFixture {
    var user: User
    var thread: ChatThread
    var messages: [Message]

    static func make(in store: SyncStore, messageCount: Int = 3) async throws -> ChatFixture {
        try await store.write { tx in
            let user = try tx.save(User(name: "Ada", email: "ada-\(UUID().uuidString)@example.com"))
            let thread = try tx.save(ChatThread(createdAt: fixedDate, tags: ["trip"], ownerId: user.id))
            var messages: [Message] = []
            for index in 0..<messageCount {
                messages.append(
                    try tx.save(
                        Message(
                            role: .user, body: "message \(index)", threadId: thread.id,
                            replyToId: messages.last?.id)))
            }
            return ChatFixture(user: user, thread: thread, messages: messages)
        }
    }
}

/// Collects the first `count` elements of a stream, or fails after `timeout`.
func collect<S: AsyncSequence & Sendable>(_ count: Int, from sequence: S, timeout: Duration = .seconds(5))
    async throws -> [S.Element] where S.Element: Sendable
{
    try await withThrowingTaskGroup(of: [S.Element]?.self) { group in
        group.addTask {
            var elements: [S.Element] = []
            for try await element in sequence {
                elements.append(element)
                if elements.count == count { break }
            }
            return elements
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        guard let elements = first else { throw TimeoutError(expected: count) }
        return elements
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    var expected: Int
    var description: String { "timed out waiting for \(expected) element(s)" }
}

/// Outbox entries as (table, recordID, operation) triples, in queue order.
func outboxSummary(_ store: SyncStore) async throws -> [String] {
    try await store.outbox.entries().map { "\($0.tableName) \($0.operation.rawValue) \($0.recordID)" }
}

func payloadObject(_ entry: OutboxEntry) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data((entry.payload ?? "{}").utf8)) as? [String: Any] ?? [:]
}

/// The first element of a stream that satisfies `predicate`, or `nil` after `timeout`.
func firstElement<S: AsyncSequence & Sendable>(
    of sequence: S, timeout: Duration = .seconds(5), where predicate: @escaping @Sendable (S.Element) -> Bool
) async throws -> S.Element? where S.Element: Sendable {
    try await withThrowingTaskGroup(of: S.Element?.self) { group in
        group.addTask {
            for try await element in sequence where predicate(element) { return element }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
