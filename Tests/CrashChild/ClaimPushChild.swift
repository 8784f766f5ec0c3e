import ChatModels
import Foundation
@_spi(Testing) import ModelSync

/// A process that pushes the outbox of a file-backed store to the reference server, with a stop
/// inside its first claim transaction: the claim-safety tests kill it there, or let it go on while
/// another process claims from the same file.
///
///     modelsync-crash-child claim-push <database path> <server URL> <mode>
///
/// Modes:
/// - `stop-in-claim`: when the first claim transaction has marked its second entry in flight (and
///   written that entry's payload, never sent before), prints `claiming 2` and waits there, the
///   transaction open, until it is killed.
/// - `pause-in-claim`: the same stop, then waits for a line on its standard input, and goes on.
/// - `wait-then-push`: opens the store, prints `open`, and waits for a line on its standard input
///   before it pushes.
/// - `push`: pushes at once.
///
/// Then it pushes until the outbox is empty (entries in flight in another process included: it
/// waits for them) and prints `sent <n>`, how many changes the server accepted from this process.
func runClaimPush(_ arguments: [String]) async -> Int32 {
    let modes = ["stop-in-claim", "pause-in-claim", "wait-then-push", "push"]
    guard arguments.count == 3, let baseURL = URL(string: arguments[1]), modes.contains(arguments[2]) else {
        FileHandle.standardError.write(
            Data(
                "usage: modelsync-crash-child claim-push <database> <server URL> <\(modes.joined(separator: "|"))>\n"
                    .utf8))
        return 2
    }
    let mode = arguments[2]
    if mode == "stop-in-claim" || mode == "pause-in-claim" {
        let stopped = Locked(false)
        OutboxClaimHooks.setDidClaimEntry { claimedSoFar in
            guard claimedSoFar == 2,
                stopped.withLock({ done in
                    defer { done = true }
                    return !done
                })
            else { return }
            FileHandle.standardOutput.write(Data("claiming \(claimedSoFar)\n".utf8))
            if mode == "stop-in-claim" {
                while true { sleep(60) }
            }
            _ = readLine()
        }
    }
    do {
        // Waits for the other process's write transactions (a claim held open) instead of failing.
        let store = try SyncStore(
            .file(URL(fileURLWithPath: arguments[0])), models: GeneratedModels.all,
            configuration: .init(busyTimeout: 120))
        if mode == "wait-then-push" {
            FileHandle.standardOutput.write(Data("open\n".utf8))
            _ = readLine()
        }
        let engine = SyncEngine(
            store: store,
            remote: RESTRemote(configuration: .init(baseURL: baseURL, timeout: 60), models: GeneratedModels.all),
            configuration: .init(
                maximumConcurrentRequests: 8, retry: RetryPolicy(initialDelay: 0.01, maximumDelay: 0.1)))
        var sent = 0
        while try await !store.outbox.entries().isEmpty {
            sent += try await engine.push().sent
            // Entries the other process holds in flight: wait for its outcomes.
            try await Task.sleep(for: .milliseconds(10))
        }
        FileHandle.standardOutput.write(Data("sent \(sent)\n".utf8))
        return 0
    } catch {
        FileHandle.standardOutput.write(Data("error \(error)\n".utf8))
        return 1
    }
}

/// A lock-protected value, for the hook (called on the store's writer thread).
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
