import Foundation
import Yams

// Stage 1, reading values: locations, mappings, strings, Booleans, choices, identifiers.
extension SpecParser {
    // MARK: Helpers

    func location(of node: Node) -> SourceLocation {
        location(line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    func location(line: Int, column: Int) -> SourceLocation {
        SourceLocation(path: path, line: line, column: column)
    }

    func isNull(_ node: Node) -> Bool {
        guard let scalar = node.scalar, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): return scalar.string
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    func kindName(_ node: Node) -> String {
        switch node {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The entries of a mapping node; a null node is an empty mapping. Reports other shapes.
    mutating func mapping(_ node: Node, what: String) -> [(key: String, keyNode: Node, value: Node)]? {
        if isNull(node) { return [] }
        guard let mapping = node.mapping else {
            diagnostics.error("expected a mapping for \(what), found \(kindName(node))", at: location(of: node))
            return nil
        }
        var entries: [(key: String, keyNode: Node, value: Node)] = []
        for (key, value) in mapping {
            guard let keyText = key.scalar?.string else {
                diagnostics.error("keys must be plain names, found \(kindName(key))", at: location(of: key))
                continue
            }
            entries.append((keyText, key, value))
        }
        return entries
    }

    mutating func string(_ node: Node, what: String) -> String? {
        guard let scalar = node.scalar, !isNull(node) else {
            diagnostics.error(
                "expected a value for \(what), found \(isNull(node) ? "nothing" : kindName(node))",
                at: location(of: node))
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ node: Node, key: String) -> Bool? {
        guard let scalar = node.scalar, scalar.string == "true" || scalar.string == "false" else {
            diagnostics.error("'\(key)' must be true or false, found '\(describe(node))'", at: location(of: node))
            return nil
        }
        return scalar.string == "true"
    }

    mutating func choice<Value: RawRepresentable & CaseIterable>(
        _ node: Node, _ type: Value.Type, key: String
    ) -> Value? where Value.RawValue == String {
        let options = Value.allCases.map(\.rawValue)
        guard let text = node.scalar?.string, !isNull(node) else {
            diagnostics.error(
                "'\(key)' must be one of \(options.joined(separator: ", ")), found \(isNull(node) ? "nothing" : kindName(node))",
                at: location(of: node))
            return nil
        }
        if let value = Value(rawValue: text) { return value }
        diagnostics.error(
            "invalid \(key) '\(text)'; expected one of \(options.joined(separator: ", "))"
                + suggestion(for: text, among: options), at: location(of: node))
        return nil
    }

    mutating func unknownKey(_ key: String, at node: Node, in context: String, allowed: [String]) {
        diagnostics.error(
            "unknown key '\(key)' in \(context)" + suggestion(for: key, among: allowed), at: location(of: node))
    }

    mutating func checkIdentifier(_ name: String, at node: Node, what: String) {
        guard !Naming.isIdentifier(name) else { return }
        diagnostics.error(
            "invalid \(what) '\(name)'; names must be Swift identifiers (ASCII letters, digits and '_', not starting "
                + "with a digit)", at: location(of: node))
    }
}
