import ChatModels
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer
import Observation
import Testing

/// Records each change of a value read from `@Observable` objects, as the main actor sees it.
@MainActor
final class ChangeRecorder<Value> {
    /// The value after each change, oldest first.
    private(set) var values: [Value] = []
    /// The last value recorded (after the last change seen, or when recording started).
    private(set) var latest: Value
    private let read: @MainActor () -> Value
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ read: @escaping @MainActor () -> Value) {
        self.read = read
        latest = read()
        track()
    }

    private func track() {
        withObservationTracking {
            _ = read()
        } onChange: { [weak self] in
            // Called before the property is set, on the main actor that sets it: read it afterwards.
            Task { @MainActor in self?.changed() }
        }
    }

    private func changed() {
        latest = read()
        values.append(latest)
        track()
        wakeWaiters()
    }

    private func wakeWaiters() {
        let waiting = waiters
        waiters = []
        for waiter in waiting { waiter.resume() }
    }

    /// Waits until the recorded value satisfies `condition`, at most `timeout`; `false` if it never
    /// did. (It checks what was recorded, so that ``values`` counts every change up to that value.)
    func waitUntil(timeout: Duration = .seconds(10), _ condition: (Value) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        let timer = Task { @MainActor [weak self] in
            try? await Task.sleep(until: deadline)
            self?.wakeWaiters()
        }
        defer { timer.cancel() }
        while !condition(latest) {
            if ContinuousClock.now >= deadline { return false }
            await withCheckedContinuation { waiters.append($0) }
        }
        return true
    }

    /// Lets `duration` pass on the main actor, so that a change that should not come has a chance to.
    func settle(for duration: Duration = .milliseconds(300)) async {
        try? await Task.sleep(for: duration)
    }
}

@Suite("Observation for SwiftUI apps")
@MainActor
struct LiveQueryTests {
    private static let createdAt = Date(timeIntervalSinceReferenceDate: 800_000_000.5)

    @Test("a live record updates once for an ID replacement, once for a save and once for a pull; nil once deleted")
    func liveRecordUpdatesOncePerChange() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let store = harness.store
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        let thread = try await store.threads.save(
            ChatThread(title: "Trip", createdAt: Self.createdAt, tags: ["t"], ownerId: user.id))
        #expect(TemporaryID.isTemporary(thread.id.rawValue))

        let live = store.threads.live(thread.id)
        #expect(live.value == thread)
        let changes = ChangeRecorder { live.value }

        // A push replaces the temporary ID by the server's: the query follows the record.
        try await harness.engine.push()
        #expect(await changes.waitUntil { $0.map { $0.id != thread.id } ?? false })
        let serverID = try #require(live.value?.id)
        #expect(!TemporaryID.isTemporary(serverID.rawValue))
        #expect(live.value?.title == "Trip")
        #expect(changes.values.count == 1)

        // A save.
        var renamed = try #require(live.value)
        renamed.title = "Trip to Lisbon"
        try await store.threads.save(renamed)
        #expect(await changes.waitUntil { $0?.title == "Trip to Lisbon" })
        #expect(changes.values.count == 2)
        try await harness.engine.push()

        // A pull of a change made on the server by another client.
        var serverThread = try #require(await harness.serverRecords(ChatThread.self)[serverID.rawValue])
        serverThread["title"] = .string("Renamed on the server")
        try await harness.server.update(serverThread, in: ChatThread.self, id: serverID.rawValue)
        try await harness.engine.pull(ChatThread.self)
        #expect(await changes.waitUntil { $0?.title == "Renamed on the server" })
        #expect(changes.values.count == 3)

        // A delete.
        try await store.threads.delete(serverID)
        #expect(await changes.waitUntil { $0 == nil })
        await changes.settle()
        #expect(changes.values.count == 4)
        #expect(live.error == nil)
        #expect(live.isObserving)
    }

    @Test("a live list updates once for a save, once for an ID replacement and once for a pull")
    func liveListUpdatesOncePerChange() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let store = harness.store
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))

        let live = store.threads.live()
        #expect(live.value.isEmpty)
        let changes = ChangeRecorder { live.value }

        let thread = try await store.threads.save(
            ChatThread(title: "Trip", createdAt: Self.createdAt, tags: [], ownerId: user.id))
        #expect(await changes.waitUntil { $0 == [thread] })
        #expect(changes.values.count == 1)

        try await harness.engine.push()
        #expect(await changes.waitUntil { $0.count == 1 && $0[0].id != thread.id })
        #expect(changes.values.count == 2)
        let serverID = try #require(live.value.first?.id)

        var serverThread = try #require(await harness.serverRecords(ChatThread.self)[serverID.rawValue])
        serverThread["title"] = .string("Renamed on the server")
        try await harness.server.update(serverThread, in: ChatThread.self, id: serverID.rawValue)
        try await harness.engine.pull(ChatThread.self)
        #expect(await changes.waitUntil { $0.first?.title == "Renamed on the server" })
        await changes.settle()
        #expect(changes.values.count == 3)
    }

    @Test("a write that leaves the result equal does not touch the live value")
    func unchangedResultDoesNotUpdate() async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        let live = store.users.live(User.filter(User.Columns.name == "Ada"))
        let changes = ChangeRecorder { live.value }
        // Another user (not selected), then the same values saved again.
        try await store.users.save(User(name: "Grace", email: "grace@example.com"))
        try await store.users.save(user)
        var renamed = user
        renamed.bio = "counts"
        try await store.users.save(renamed)
        #expect(await changes.waitUntil { $0.first?.bio == "counts" })
        await changes.settle()
        #expect(changes.values.count == 1)
    }

    @Test("a stopped live query no longer updates, and its observation does not keep it alive")
    func stoppedQueryStopsUpdating() async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let live = store.users.live()
        let changes = ChangeRecorder { live.value }
        try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        #expect(await changes.waitUntil { $0.count == 1 })
        live.stop()
        #expect(!live.isObserving)
        try await store.users.save(User(name: "Grace", email: "grace@example.com"))
        await changes.settle()
        #expect(changes.values.count == 1)
        #expect(live.value.count == 1)

        // Released: its observation ends (a weak reference to it becomes nil, nothing retains it).
        weak var released: LiveQuery<[User]>?
        do {
            let another = store.users.live()
            released = another
            #expect(another.value.count == 2)
        }
        #expect(released == nil)
    }

    @Test("a live sync status follows a record from queued to synced across its ID replacement")
    func liveSyncStatus() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let store = harness.store
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        let thread = try await store.threads.save(
            ChatThread(title: "Trip", createdAt: Self.createdAt, tags: [], ownerId: user.id))
        let status = store.threads.liveSyncStatus(of: thread.id)
        #expect(status.value == .queued)
        let changes = ChangeRecorder { status.value }
        try await harness.engine.push()
        #expect(await changes.waitUntil { $0 == .synced })
        #expect(status.error == nil)
    }

    @Test("sync activity counts queued changes, shows a running sync, and counts what it sent")
    func syncActivityCountsAndRuns() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let activity = SyncActivity(engine: harness.engine)
        #expect(activity.queued == 0)
        #expect(!activity.isSyncing)
        let syncing = ChangeRecorder { activity.isSyncing }
        let queued = ChangeRecorder { activity.queued }

        // A user, a thread, 2 messages, 2 artifacts and their 2 links: 8 changes.
        _ = try await makeChat(in: harness.store, messageCount: 2)
        #expect(await queued.waitUntil { $0 == 8 })

        await activity.sync()
        #expect(activity.lastError == nil)
        #expect(activity.lastSyncDate != nil)
        #expect(await queued.waitUntil { $0 == 0 })
        let sent = ChangeRecorder { activity.sent }
        #expect(await sent.waitUntil { $0 == 8 })
        #expect(await syncing.waitUntil { $0 == false })
        #expect(syncing.values.first == true)
        #expect(activity.failed == 0)
        #expect(activity.inFlight == 0)
    }

    @Test("sync activity shows each model's pull progress, with the server's total")
    func syncActivityShowsPullProgress() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let (_, thread) = try await harness.seedServerThread()
        for index in 0..<120 {
            try await harness.server.insert(
                ["role": .string("user"), "body": .string("m\(index)"), "thread_id": thread["id"]!], into: Message.self)
        }
        let activity = SyncActivity(engine: harness.engine)
        let pulls = ChangeRecorder { activity.pulls[Message.schema.name] }
        await activity.sync()
        #expect(activity.lastError == nil)
        #expect(
            await pulls.waitUntil { $0 == PullProgress(received: 120, applied: 120, total: 120, isFinished: true) })
        #expect(activity.pulls[ChatThread.schema.name]?.applied == 1)
    }

    @Test("sync activity keeps the error of a sync that could not reach the server, and the change stays queued")
    func syncActivityKeepsTheError() async throws {
        let harness = try await SyncHarness.start()
        await harness.server.stop()
        // Not the stopped server's port: with the whole suite running, another test's server can be
        // given that port meanwhile (it happened: the change was sent there). Nothing listens on port 1.
        let unreachable = URL(string: "http://127.0.0.1:1")!
        let engine = SyncEngine(
            store: harness.store,
            remote: RESTRemote(
                configuration: .init(baseURL: unreachable, timeout: 1), models: GeneratedModels.all),
            configuration: .init(
                retry: RetryPolicy(initialDelay: 0.05, maximumDelay: 0.1, jitter: 0), maximumRetryWait: 0.3))
        let activity = SyncActivity(engine: engine)
        try await harness.store.users.save(User(name: "Grace", email: "grace@example.com"))
        let queued = ChangeRecorder { activity.queued }
        #expect(await queued.waitUntil { $0 == 1 })

        await activity.sync()
        #expect(activity.lastError != nil)
        #expect(activity.lastSyncDate == nil)
        #expect(activity.queued == 1)
        #expect(!activity.isSyncing)
    }

    @Test("a slow observer of a stream gets the latest state, not every intermediate one")
    func streamKeepsOnlyTheNewest() async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        var iterator = store.users.observeAll().makeAsyncIterator()
        #expect(try await iterator.next()?.isEmpty == true)
        for index in 0..<20 {
            try await store.users.save(User(name: "User \(index)", email: "user\(index)@example.com"))
        }
        // The observer is busy while the store changes (and the observation delivers its values).
        try await Task.sleep(for: .milliseconds(200))
        var received = 0
        while let users = try await iterator.next() {
            received += 1
            if users.count == 20 { break }
        }
        #expect(received <= 3, "the stream buffered \(received) states for an observer that wanted the latest")
    }
}
