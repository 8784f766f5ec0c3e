import Foundation

// Helpers shared by the sync and reliability test targets.

/// A fresh directory under the system's temporary folder; the caller removes it.
public func makeTemporaryDirectory(_ label: String = "test") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("modelsync-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A minimal lock for test bookkeeping shared between tasks.
public final class Mutex<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    public init(_ value: Value) {
        self.value = value
    }

    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Collects the elements of a stream in the background until stopped.
public final class EventRecorder<Element: Sendable>: Sendable {
    private let storage = Mutex<[Element]>([])
    private let task: Task<Void, Never>

    public init<S: AsyncSequence & Sendable>(_ sequence: S) where S.Element == Element {
        let storage = self.storage
        task = Task {
            do {
                for try await element in sequence { storage.withLock { $0.append(element) } }
            } catch {}
        }
    }

    public var elements: [Element] { storage.withLock { $0 } }

    public func stop() { task.cancel() }
}

/// Waits until `condition` holds, or returns its last value after `timeout`.
public func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// Runs `/usr/bin/env arguments…` to its end and returns its status and its output (standard output
/// and error together), waiting on a thread of its own: tests run on Swift's cooperative thread
/// pool (one thread per core), and a test that blocked one of them for a build would stall every
/// other test, deadline timers included.
public func runProcess(_ arguments: [String], in directory: URL? = nil) async throws -> (status: Int32, output: String)
{
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            do {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = arguments
                if let directory { process.currentDirectoryURL = directory }
                let pipe = Pipe()
                process.standardOutput = pipe
                process.standardError = pipe
                try process.run()
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, String(decoding: data, as: UTF8.self)))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

/// Waits for `process` to end on a thread of its own (see ``runProcess(_:in:)``).
public func waitForExit(_ process: Process) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let box = UncheckedSendableBox(process)
        Thread.detachNewThread {
            box.value.waitUntilExit()
            continuation.resume()
        }
    }
}

/// Carries a value that is used from one thread at a time across a `@Sendable` boundary.
public final class UncheckedSendableBox<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
