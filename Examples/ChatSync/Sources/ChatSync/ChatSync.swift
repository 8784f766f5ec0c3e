import ArgumentParser
import ChatSyncModels
import Foundation
import ModelSync
import ModelSyncReferenceServer

/// The ModelSync demo: a chat used offline, then synced. Prints every step.
@main
struct ChatSyncDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-sync",
        abstract:
            "Creates a chat offline, syncs it to a server that assigns its own IDs, and shows each ID replacement.")

    @Option(
        help: "Base URL of a server speaking the reference server's REST conventions (default: start one on loopback).")
    var server: String?

    @Option(help: "SQLite file to use and keep (default: a temporary file, deleted at the end).")
    var database: String?

    @Option(help: "How many messages to write while offline.")
    var messages: Int = 3

    @Flag(help: "Only start the reference server for these models, print its URL, and serve until stopped.")
    var serve = false

    @Option(help: "Port for --serve (default: any free port).")
    var port: UInt16 = 0

    mutating func run() async throws {
        if serve {
            let reference = ReferenceServer(models: GeneratedModels.all)
            reference.setAcceptingBatches(true)
            let url = try await reference.start(port: port)
            FileHandle.standardOutput.write(Data("\(url.absoluteString)\n".utf8))
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        let transcript = Transcript()
        transcript.title("ModelSync demo: an offline chat meets a server that assigns IDs")

        // The server: the embedded reference server, or the one given.
        var embedded: ReferenceServer?
        let baseURL: URL
        if let server {
            guard let url = URL(string: server) else { throw ValidationError("'\(server)' is not a URL") }
            baseURL = url
            transcript.line("Server: \(url.absoluteString)")
        } else {
            let reference = ReferenceServer(models: GeneratedModels.all)
            reference.setAcceptingBatches(true)
            baseURL = try await reference.start()
            embedded = reference
            transcript.line(
                "Server: reference server on \(baseURL.absoluteString) (threads get integer IDs; takes batches)")
        }

        // The local store.
        let temporaryFolder = FileManager.default.temporaryDirectory.appendingPathComponent("chat-sync-\(UUID())")
        let databaseURL =
            database.map { URL(fileURLWithPath: $0) }
            ?? temporaryFolder.appendingPathComponent("chat.sqlite")
        defer { if database == nil { try? FileManager.default.removeItem(at: temporaryFolder) } }
        let store = try SyncStore(.file(databaseURL), models: GeneratedModels.all)
        transcript.line("Database: \(databaseURL.path)\(database == nil ? " (temporary)" : "")")

        // Every ID replacement, as the store announces it.
        let replacements = ReplacementLog()
        let watchers = [
            Task {
                for await change in store.chatThreads.changes() { replacements.record(change, model: "ChatThread") }
            },
            Task { for await change in store.messages.changes() { replacements.record(change, model: "Message") } },
        ]
        defer { for watcher in watchers { watcher.cancel() } }

        // 1. Offline: everything is stored at once, with temporary IDs where the server decides.
        transcript.section("1. Offline: write a chat (the UI shows it at once)")
        let count = messages
        let created = try await store.write { tx in
            let author = try tx.save(Author(name: "Ada"))
            let thread = try tx.save(ChatThread(title: "Trip to Lisbon", createdAt: Date(), authorId: author.id))
            var written: [Message] = []
            for index in 0..<count {
                let (role, body) = Self.line(index)
                written.append(
                    try tx.save(Message(role: role, body: body, threadId: thread.id, replyToId: written.last?.id)))
            }
            let artifacts = [Artifact(title: "Itinerary", kind: "doc"), Artifact(title: "Map", kind: "image")]
            try tx.save(artifacts)
            for artifact in artifacts {
                try tx.save(ThreadArtifact(threadId: thread.id, artifactId: artifact.id))
            }
            return (author: author, thread: thread, messages: written, artifacts: artifacts)
        }
        transcript.line("thread   \(created.thread.id)  \"\(created.thread.title)\"")
        for message in created.messages {
            let reply = message.replyToId.map { "  (reply to \($0))" } ?? ""
            transcript.line("message  \(message.id)  \(message.role.rawValue): \(message.body)\(reply)")
        }
        for artifact in try await created.thread.artifacts(in: store) {
            transcript.line(
                "artifact \(artifact.id)  \(artifact.title) (linked both ways: "
                    + "\(try await artifact.chatThreads(in: store).count) thread)")
        }
        let queued = try await store.outbox.entries()
        transcript.line("outbox: \(queued.count) changes queued, in one transaction with the rows")
        let temporaryCount = 1 + created.messages.count

        // 2. Online: push, children after their parents, with progress.
        transcript.section("2. Online: sync")
        let remote = RESTRemote(configuration: .init(baseURL: baseURL, timeout: 10), models: GeneratedModels.all)
        let engine = SyncEngine(store: store, remote: remote)
        let progressTask = Task {
            var last: SyncProgress?
            for await progress in engine.progress() where progress != last {
                last = progress
                transcript.line(
                    "progress: \(progress.queued) queued, \(progress.inFlight) in flight, "
                        + "\(progress.sent) sent, \(progress.failed) failed")
            }
        }
        let report = try await engine.push()
        try await Task.sleep(for: .milliseconds(100))
        progressTask.cancel()
        transcript.line("pushed: \(report.sent) sent, \(report.failed) failed, \(report.remaining) left")

        // 3. Every temporary ID replaced: rows, foreign keys, queued entries; each announced once.
        transcript.section("3. ID replacements (old -> new)")
        _ = await replacements.waitFor(temporaryCount)
        for entry in replacements.entries {
            transcript.line(
                "\(entry.model.padding(toLength: 10, withPad: " ", startingAt: 0)) \(entry.old) -> \(entry.new)")
        }

        // 4. Client and server side by side.
        transcript.section("4. Final state: client | server")
        let serverThreads = try await remote.list(ChatThread.schema, after: nil).records
        let serverMessages = try await remote.list(Message.schema, after: nil).records
        let threads = try await store.chatThreads.all()
        for thread in threads {
            let onServer = serverThreads.first { $0["id"]?.idString == thread.id.rawValue }
            transcript.row(
                "thread \(thread.id) \"\(thread.title)\"",
                onServer.map { "thread \($0["id"]!.idString!) \"\($0["title"]?.stringValue ?? "")\"" } ?? "missing")
        }
        for message in try await store.messages.all() {
            let onServer = serverMessages.first { $0["id"]?.idString == message.id.rawValue }
            let local = "message \(message.id) in thread \(message.threadId)"
            let server = onServer.map {
                "message \($0["id"]!.idString!) in thread \($0["threadId"]?.idString ?? "?")"
            }
            transcript.row(local, server ?? "missing")
        }
        // 5. The seed's operation: a new chat about an artifact, its first message and the link, saved
        // offline as one unit; the server applies all three or none, and a retry changes nothing.
        transcript.section("5. One unit: a chat about an artifact, its first message and the link")
        let artifact = created.artifacts[1]
        let unit = try await Self.startChat(
            about: artifact, by: created.author, saying: "Is this map current?", in: store)
        transcript.line(
            "saved offline as one unit: thread \(unit.id) with its message and its link to \(artifact.title)")
        let unitReport = try await engine.push()
        let batches = await embedded?.batchCounts
        transcript.line(
            "pushed: \(unitReport.sent) sent, \(unitReport.failed) failed"
                + (batches.map { " (the server applied \($0.batches) batches, \($0.operations) operations in all)" }
                    ?? ""))
        let unitThread = try await store.chatThreads.find(unit.id)
        transcript.line("the unit's thread \(unit.id) is now \(unitThread.map { "\($0.id)" } ?? "missing")")
        _ = await replacements.waitFor(temporaryCount + 2)

        let remaining =
            try await store.messages.all().filter(\.id.isTemporary).count
            + store.chatThreads.all().filter(\.id.isTemporary).count
        let stillFindable = try await store.chatThreads.find(created.thread.id) != nil
        transcript.section("Result")
        transcript.line(
            "\(replacements.entries.count) of \(temporaryCount + 2) temporary IDs replaced, \(remaining) left; "
                + "the old thread ID \(created.thread.id) still finds the thread: \(stillFindable)")
        await embedded?.stop()
        if remaining > 0 || report.failed > 0 || unitReport.failed > 0 || unitReport.sent != 3
            || replacements.entries.count != temporaryCount + 2
        {
            throw ExitCode.failure
        }
    }

    /// Ensures a chat for `artifact` and sends its first message: the thread, the message and the
    /// link are saved as one unit, which the server applies all together or not at all.
    static func startChat(about artifact: Artifact, by author: Author, saying text: String, in store: SyncStore)
        async throws -> ChatThread
    {
        try await store.writeAsOneUnit { tx in
            let thread = try tx.save(ChatThread(title: artifact.title, createdAt: Date(), authorId: author.id))
            try tx.save(Message(role: .user, body: text, threadId: thread.id))
            try tx.save(ThreadArtifact(threadId: thread.id, artifactId: artifact.id))
            return thread
        }
    }

    static func line(_ index: Int) -> (Message.Role, String) {
        let lines: [(Message.Role, String)] = [
            (.user, "Plan three days in Lisbon?"), (.assistant, "Day 1: Alfama and the castle."),
            (.user, "And day 2?"), (.assistant, "Belém: the tower and pastéis."),
        ]
        return lines[index % lines.count]
    }
}

/// The ID replacements announced by the store, in order.
final class ReplacementLog: @unchecked Sendable {
    struct Entry {
        var model: String
        var old: String
        var new: String
    }

    private let lock = NSLock()
    private var storage: [Entry] = []

    var entries: [Entry] { lock.withLock { storage } }

    func record<Model: SyncModel>(_ change: ModelChange<Model>, model: String) {
        guard case .idChanged(let old, let new) = change else { return }
        lock.withLock { storage.append(Entry(model: model, old: old.rawValue, new: new.rawValue)) }
    }

    /// Waits (up to two seconds) until `count` replacements were announced.
    func waitFor(_ count: Int) async -> Bool {
        for _ in 0..<200 {
            if entries.count >= count { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return entries.count >= count
    }
}

/// Prints the demo's transcript.
final class Transcript: Sendable {
    func title(_ text: String) {
        print(text)
        print(String(repeating: "=", count: text.count))
    }

    func section(_ text: String) {
        print("\n\(text)")
    }

    func line(_ text: String) {
        print("  \(text)")
    }

    func row(_ left: String, _ right: String) {
        print("  \(left.padding(toLength: 58, withPad: " ", startingAt: 0)) | \(right)")
    }
}
