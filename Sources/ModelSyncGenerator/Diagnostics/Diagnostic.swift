import Foundation

/// A position in a spec file: 1-based line and column (columns count Unicode scalars).
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The path of the spec file, as it was given to the generator.
    public var path: String
    public var line: Int
    public var column: Int

    public init(path: String, line: Int, column: Int) {
        self.path = path
        self.line = line
        self.column = column
    }

    public var description: String { "\(path):\(line):\(column)" }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.path, lhs.line, lhs.column) < (rhs.path, rhs.line, rhs.column)
    }
}

/// A problem found in a spec: an error (nothing is generated) or a warning.
///
/// Printed as `path:line:column: error: message`, the format compilers use, so that Xcode and
/// SwiftPM show it next to the offending line of the spec.
public struct Diagnostic: Hashable, Sendable, CustomStringConvertible {
    /// How serious a diagnostic is.
    public enum Severity: String, Hashable, Sendable {
        case error
        case warning
    }

    public var severity: Severity
    /// What is wrong, and what to do about it (a suggestion such as "did you mean 'String'?").
    public var message: String
    /// The YAML node the diagnostic is about.
    public var location: SourceLocation

    public init(_ severity: Severity, _ message: String, at location: SourceLocation) {
        self.severity = severity
        self.message = message
        self.location = location
    }

    public var description: String { "\(location): \(severity.rawValue): \(message)" }
}

/// Collects the diagnostics of one generation run.
///
/// A diagnostic may name its cause: the location of another diagnostic that explains it (an unknown
/// model, then the inverse that cannot match it). Causes come first: ``sorted`` places each
/// consequence right after its cause instead of at its own location.
struct DiagnosticCollector {
    private struct Entry {
        var diagnostic: Diagnostic
        /// The location of the diagnostic this one follows from, if any.
        var cause: SourceLocation?
    }

    private var entries: [Entry] = []

    /// The diagnostics in the order they were reported.
    var diagnostics: [Diagnostic] { entries.map(\.diagnostic) }

    var hasErrors: Bool { entries.contains { $0.diagnostic.severity == .error } }

    mutating func error(_ message: String, at location: SourceLocation, causedBy cause: SourceLocation? = nil) {
        entries.append(Entry(diagnostic: Diagnostic(.error, message, at: location), cause: cause))
    }

    mutating func warning(_ message: String, at location: SourceLocation) {
        entries.append(Entry(diagnostic: Diagnostic(.warning, message, at: location)))
    }

    /// Adds every diagnostic of `other`, keeping their causes.
    mutating func append(contentsOf other: DiagnosticCollector) {
        entries += other.entries
    }

    /// The diagnostics ordered by cause, then file, line and column (stable for equal positions): a
    /// diagnostic with a cause sorts right after the diagnostics at its cause's location.
    var sorted: [Diagnostic] {
        func key(_ entry: Entry) -> (SourceLocation, Int, SourceLocation) {
            (entry.cause ?? entry.diagnostic.location, entry.cause == nil ? 0 : 1, entry.diagnostic.location)
        }
        return entries.enumerated().sorted { lhs, rhs in
            let (left, right) = (key(lhs.element), key(rhs.element))
            if left.0 != right.0 { return left.0 < right.0 }
            if left.1 != right.1 { return left.1 < right.1 }
            if left.2 != right.2 { return left.2 < right.2 }
            return lhs.offset < rhs.offset
        }.map(\.element.diagnostic)
    }
}

/// Thrown when a spec has errors: nothing was generated and nothing was written.
public struct GenerationFailed: Error, CustomStringConvertible, Sendable {
    /// Every diagnostic of the run, errors and warnings, in file and line order.
    public let diagnostics: [Diagnostic]

    public init(diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// A phrase suggesting the closest candidate to a misspelled `word`, such as `; did you mean 'String'?`,
/// or an empty string when no candidate is close enough.
func suggestion(for word: String, among candidates: [String]) -> String {
    guard let best = closest(to: word, among: candidates) else { return "" }
    return "; did you mean '\(best)'?"
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
/// Ties go to the candidate sharing more characters with `word`; a candidate that is a prefix of
/// `word` (or the reverse, 3 characters at least) also counts as close: `integer` -> `int`.
func closest(to word: String, among candidates: [String]) -> String? {
    let lowered = word.lowercased()
    if let caseOnly = candidates.first(where: { $0.lowercased() == lowered }) { return caseOnly }
    var best: (candidate: String, distance: Int, shared: Int)?
    for candidate in candidates {
        let other = candidate.lowercased()
        var distance = editDistance(lowered, other)
        let limit = max(1, min(word.count, candidate.count) / 3)
        if min(lowered.count, other.count) >= 3, lowered.hasPrefix(other) || other.hasPrefix(lowered) {
            distance = min(distance, limit)
        }
        guard distance <= limit else { continue }
        let shared = sharedCharacters(lowered, other)
        if let current = best, (current.distance, -current.shared) <= (distance, -shared) { continue }
        best = (candidate, distance, shared)
    }
    return best?.candidate
}

/// How many characters two strings have in common, counted with multiplicity.
private func sharedCharacters(_ lhs: String, _ rhs: String) -> Int {
    var counts: [Character: Int] = [:]
    for character in lhs { counts[character, default: 0] += 1 }
    var shared = 0
    for character in rhs where counts[character, default: 0] > 0 {
        counts[character]! -= 1
        shared += 1
    }
    return shared
}

/// The edit distance between two strings: insertions, deletions, substitutions and swaps of two
/// neighbouring characters count one each (`nmae` is one edit from `name`, as typed).
func editDistance(_ lhs: String, _ rhs: String) -> Int {
    let left = Array(lhs.unicodeScalars)
    let right = Array(rhs.unicodeScalars)
    if left.isEmpty { return right.count }
    if right.isEmpty { return left.count }
    var beforePrevious = [Int](repeating: 0, count: right.count + 1)
    var previous = Array(0...right.count)
    var current = [Int](repeating: 0, count: right.count + 1)
    for i in 1...left.count {
        current[0] = i
        for j in 1...right.count {
            let cost = left[i - 1] == right[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, left[i - 1] == right[j - 2], left[i - 2] == right[j - 1] {
                current[j] = min(current[j], beforePrevious[j - 2] + 1)
            }
        }
        (beforePrevious, previous, current) = (previous, current, beforePrevious)
    }
    return previous[right.count]
}
