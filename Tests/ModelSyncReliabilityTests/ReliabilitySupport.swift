import Foundation

/// A small deterministic generator (SplitMix64): a run is reproducible from its printed seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }

    /// `true` with probability `probability`.
    mutating func chance(_ probability: Double) -> Bool {
        Double.random(in: 0..<1, using: &self) < probability
    }
}

/// Reads a seed from the environment (`name`), or draws one; the caller prints it.
func seed(fromEnvironment name: String) -> UInt64 {
    if let text = ProcessInfo.processInfo.environment[name], let value = UInt64(text) { return value }
    return UInt64.random(in: 1...UInt64(UInt32.max))
}

/// An integer from the environment, or `defaultValue`.
func integer(fromEnvironment name: String, default defaultValue: Int) -> Int {
    ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? defaultValue
}

/// The root of this package (this file is Tests/ModelSyncReliabilityTests/ReliabilitySupport.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func makeTemporaryDirectory(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("modelsync-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A minimal lock for test bookkeeping shared between tasks.
final class Mutex<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Collects the elements of a stream in the background until stopped.
final class EventRecorder<Element: Sendable>: Sendable {
    private let storage = Mutex<[Element]>([])
    private let task: Task<Void, Never>

    init<S: AsyncSequence & Sendable>(_ sequence: S) where S.Element == Element {
        let storage = self.storage
        task = Task {
            do {
                for try await element in sequence { storage.withLock { $0.append(element) } }
            } catch {}
        }
    }

    var elements: [Element] { storage.withLock { $0 } }

    func stop() { task.cancel() }
}

/// Waits until `condition` holds, or returns its last value after `timeout`.
func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// `ownerId` -> `owner_id`, the chat spec's wire naming.
func snakeCase(_ name: String) -> String {
    var result = ""
    for character in name {
        if character.isUppercase {
            result += "_" + character.lowercased()
        } else {
            result.append(character)
        }
    }
    return result
}

/// Prints a progress line at once (standard error is not buffered), for long runs.
func progress(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
