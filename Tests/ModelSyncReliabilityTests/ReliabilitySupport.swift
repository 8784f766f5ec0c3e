import Foundation
import ModelSyncReferenceServer
@_exported import ModelSyncTestSupport

/// The reference server's deterministic generator (SplitMix64): a run is reproducible from its
/// printed seed.
typealias SplitMix64 = SeededGenerator

extension SeededGenerator {
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

/// Prints a progress line at once (standard error is not buffered), for long runs.
func progress(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
