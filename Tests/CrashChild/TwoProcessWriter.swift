import ChatModels
import Foundation
import ModelSync

/// What one writer process did, printed as one JSON line when it ends.
struct WriterReport: Codable, Sendable {
    var label: String
    /// Times the store was opened, and how many of those opens threw.
    var opens = 0
    var openFailures = 0
    /// Write transactions (a chat, an edit or a delete) that committed, and those that threw.
    var saves = 0
    var saveFailures = 0
    /// Errors of any kind (open, save, push) whose message says `database is locked`.
    var lockedErrors = 0
    var pushes = 0
    var pushErrors = 0
    var sent = 0
    var retried = 0
    /// Whether the final phase saw the outbox empty, and what was left if not.
    var converged = false
    var leftInOutbox = 0
    var seconds = 0.0
    /// The first distinct error messages.
    var errors: [String] = []

    mutating func note(_ error: any Error) {
        let message = "\(error)"
        if message.contains("database is locked") { lockedErrors += 1 }
        if errors.count < 8, !errors.contains(message) { errors.append(message) }
    }
}

/// Set once the writer of a round is done, read by its pusher.
private actor RoundState {
    var writing = true
    func finish() { writing = false }
}

/// One process of the two-process test: `rounds` times, it opens the file-backed store anew (as an
/// app extension launched again does) and, at once, writes `chats` chats (a user, a server-ID
/// thread, two messages; every third chat also renames an earlier thread, every fourth deletes an
/// earlier reply, both written at least eight chats before) while an engine pushes in a loop. Then it pushes until the shared outbox is empty
/// (the other process's entries included) and prints a ``WriterReport``.
///
///     modelsync-crash-child writer <database path> <server URL> <label> <rounds> <chats per round>
func runTwoProcessWriter(_ arguments: [String]) async -> Int32 {
    guard arguments.count == 5, let baseURL = URL(string: arguments[1]), let rounds = Int(arguments[3]),
        let chats = Int(arguments[4])
    else {
        FileHandle.standardError.write(
            Data("usage: modelsync-crash-child writer <database> <server URL> <label> <rounds> <chats>\n".utf8))
        return 2
    }
    let database = URL(fileURLWithPath: arguments[0])
    let label = arguments[2]
    var report = WriterReport(label: label)
    let started = Date()
    var written = Written()
    for round in 0..<rounds {
        report.opens += 1
        let store: SyncStore
        do {
            store = try SyncStore(.file(database), models: GeneratedModels.all)
        } catch {
            report.openFailures += 1
            report.note(error)
            continue
        }
        let engine = makeWriterEngine(store: store, baseURL: baseURL)
        let state = RoundState()
        async let pushed = pushWhileWriting(engine, state: state)
        let counts = await writeChats(chats, round: round, label: label, store: store, written: &written)
        await state.finish()
        let pushReport = await pushed
        merge(counts, into: &report)
        merge(pushReport, into: &report)
    }
    // Everything written: push until the shared outbox is empty (the other process may still write).
    report.opens += 1
    do {
        let store = try SyncStore(.file(database), models: GeneratedModels.all)
        let engine = makeWriterEngine(store: store, baseURL: baseURL)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            report.pushes += 1
            do {
                let pushed = try await engine.push(waitForRetries: false)
                report.sent += pushed.sent
                report.retried += pushed.retried
            } catch {
                report.pushErrors += 1
                report.note(error)
            }
            report.leftInOutbox = try await store.outbox.entries().count
            if report.leftInOutbox == 0 {
                report.converged = true
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    } catch {
        report.openFailures += 1
        report.note(error)
    }
    report.seconds = Date().timeIntervalSince(started)
    let line = (try? JSONEncoder().encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    print(line)
    return report.converged ? 0 : 1
}

private func makeWriterEngine(store: SyncStore, baseURL: URL) -> SyncEngine {
    SyncEngine(
        store: store,
        remote: RESTRemote(configuration: .init(baseURL: baseURL, timeout: 10), models: GeneratedModels.all),
        configuration: .init(
            maximumConcurrentRequests: 4, retry: RetryPolicy(initialDelay: 0.01, maximumDelay: 0.2),
            maximumRetryWait: 5))
}

private struct WrittenCounts: Sendable {
    var saves = 0
    var failures: [String] = []
}

private struct PushCounts: Sendable {
    var pushes = 0
    var sent = 0
    var retried = 0
    var errors: [String] = []
}

/// Records this process wrote and has not edited or deleted yet, oldest first, kept across rounds so
/// that edits and deletes reach records whose creates were pushed long before.
private struct Written: Sendable {
    var threads: [ChatModels.Thread] = []
    var replies: [Message] = []
}

private func writeChats(_ count: Int, round: Int, label: String, store: SyncStore, written: inout Written) async
    -> WrittenCounts
{
    var counts = WrittenCounts()
    for index in 0..<count {
        let name = "\(label)-r\(round)-\(index)"
        do {
            let (thread, reply) = try await store.write { tx in
                let user = try tx.save(User(name: name, email: "\(name)@example.com"))
                let thread = try tx.save(
                    ChatModels.Thread(
                        title: "\(name) thread", createdAt: Date(timeIntervalSinceReferenceDate: Double(index)),
                        tags: [label], ownerId: user.id))
                let first = try tx.save(Message(role: .user, body: "\(name) hello", threadId: thread.id))
                let reply = try tx.save(
                    Message(role: .assistant, body: "\(name) reply", threadId: thread.id, replyToId: first.id))
                return (thread, reply)
            }
            counts.saves += 1
            written.threads.append(thread)
            written.replies.append(reply)
        } catch {
            counts.failures.append("\(error)")
        }
        if index % 3 == 2, written.threads.count > 8, var earlier = written.threads.first {
            written.threads.removeFirst()
            earlier.title += " edited"
            do {
                // A stale copy (its temporary ID may have been replaced since): the store follows the map.
                try await store.threads.save(earlier)
                counts.saves += 1
            } catch {
                counts.failures.append("\(error)")
            }
        }
        if index % 4 == 3, written.replies.count > 8, let reply = written.replies.first {
            written.replies.removeFirst()
            do {
                try await store.messages.delete(reply.id)
                counts.saves += 1
            } catch {
                counts.failures.append("\(error)")
            }
        }
        // A person types; the engine pushes in between.
        try? await Task.sleep(for: .milliseconds(2))
    }
    return counts
}

private func pushWhileWriting(_ engine: SyncEngine, state: RoundState) async -> PushCounts {
    var counts = PushCounts()
    var last = false
    while !last {
        last = await !state.writing
        counts.pushes += 1
        do {
            let report = try await engine.push(waitForRetries: false)
            counts.sent += report.sent
            counts.retried += report.retried
            if report.sent == 0 { try await Task.sleep(for: .milliseconds(5)) }
        } catch {
            counts.errors.append("\(error)")
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
    return counts
}

private func merge(_ written: WrittenCounts, into report: inout WriterReport) {
    report.saves += written.saves
    report.saveFailures += written.failures.count
    for failure in written.failures { report.note(ErrorText(text: failure)) }
}

private func merge(_ pushed: PushCounts, into report: inout WriterReport) {
    report.pushes += pushed.pushes
    report.sent += pushed.sent
    report.retried += pushed.retried
    report.pushErrors += pushed.errors.count
    for error in pushed.errors { report.note(ErrorText(text: error)) }
}

/// An error message carried as an error, to count it like the others.
private struct ErrorText: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}
