import Foundation
import Yams

// Stage 1, YAML errors: libyaml's message (searchable), located, with a hint saying what to do.
extension SpecParser {
    mutating func reportYAMLError(_ error: YamlError) {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text) " } ?? ""
            let message = "invalid YAML: \(detail)\(problem)".trimmingCharacters(in: .whitespaces)
            let hint = yamlHint(for: problem, line: mark.line).map { "; \($0)" } ?? ""
            diagnostics.error(message + hint, at: location(line: mark.line, column: mark.column))
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? ""
            let first = context.mark
            let second = secondOccurrence(of: key, line: first.line, column: first.column)
            diagnostics.error(
                "duplicate key '\(key)'; first declared at line \(first.line)",
                at: location(line: second?.line ?? first.line, column: second?.column ?? first.column))
        default:
            diagnostics.error("invalid YAML: \(error)", at: location(line: 1, column: 1))
        }
    }

    /// What to do about a libyaml error at `line` (1-based), whose messages name the grammar rule
    /// that failed rather than the mistake: tabs, keys at the wrong depth, a key without ':', an
    /// unclosed list.
    func yamlHint(for problem: String, line: Int) -> String? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard line >= 1, line <= lines.count else { return nil }
        let current = lines[line - 1]
        func indentation(_ text: String) -> Int { text.prefix { $0 == " " }.count }
        if current.prefix(while: { $0 == " " || $0 == "\t" }).contains("\t") {
            return "YAML does not allow tabs for indentation; use spaces"
        }
        // The closest line above that holds something other than a comment.
        let above = lines[..<(line - 1)].indices.last {
            let trimmed = lines[$0].trimmingCharacters(in: .whitespaces)
            return !trimmed.isEmpty && !trimmed.hasPrefix("#")
        }
        if problem.contains("mapping values are not allowed") {
            guard let above else { return "a value that contains ': ' needs quotes" }
            let previous = lines[above]
            let content = previous.split(separator: "#", maxSplits: 1).first.map(String.init) ?? previous
            if !content.contains(":"), !content.trimmingCharacters(in: .whitespaces).hasPrefix("-") {
                return "check line \(above + 1): a key needs ':' after it"
            }
            if indentation(current) > indentation(previous) {
                return "check the indentation: line \(line) is deeper than line \(above + 1), a key at the wrong depth"
            }
            return "check the indentation of the line above: a key at the wrong depth (or quote a value that "
                + "contains ': ')"
        }
        if problem.contains("did not find expected key") || problem.contains("did not find expected '-' indicator") {
            return "check the indentation of line \(line): the keys of one mapping start in the same column"
        }
        if problem.contains("could not find expected ':'") {
            return "a key needs ':' after it (check this line and the one above)"
        }
        if problem.contains("did not find expected ',' or ']'") {
            return "a list opened with '[' is not closed: close it on the same line, or quote an array type: "
                + "\"[String]\""
        }
        if problem.contains("did not find expected ',' or '}'") {
            return "a mapping opened with '{' is not closed: close it with '}' on the same line"
        }
        return nil
    }

    /// Where a duplicated key appears again at the same indentation (Yams reports the first one).
    func secondOccurrence(of key: String, line: Int, column: Int) -> (line: Int, column: Int)? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard line - 1 < lines.count, line >= 1 else { return nil }
        let firstLine = Array(lines[line - 1].unicodeScalars)
        let flowStart = column - 1
        for index in line..<lines.count {
            let scalars = Array(lines[index].unicodeScalars)
            guard scalars.count > flowStart else { continue }
            let rest = String(String.UnicodeScalarView(scalars[flowStart...]))
            let prefix = String(String.UnicodeScalarView(scalars[..<flowStart]))
            if prefix.allSatisfy({ $0 == " " }), rest.hasPrefix(key + ":") {
                return (index + 1, column)
            }
        }
        // Flow mappings (`{ a: 1, a: 2 }`): look further on the first line.
        let rest = String(String.UnicodeScalarView(firstLine[min(flowStart + key.count, firstLine.count)...]))
        if let range = rest.range(of: " \(key):") ?? rest.range(of: "{\(key):") {
            let offset = rest.unicodeScalars.distance(from: rest.unicodeScalars.startIndex, to: range.lowerBound)
            return (line, column + key.count + offset + 1)
        }
        return nil
    }
}
