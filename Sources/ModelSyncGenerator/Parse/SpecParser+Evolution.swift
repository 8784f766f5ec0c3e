import Foundation
import Yams

// Stage 1, evolution: how a spec says it changed since an earlier version (`renamedFrom:`,
// `removed:`, `mapping:`). See "Evolving your models" in TheSpecFormat.md.
extension SpecParser {
    /// Reads `renamedFrom: OldName` (a plain identifier).
    mutating func parseRenamedFrom(_ node: Node, what: String) -> Located<String>? {
        guard let name = string(node, what: "'renamedFrom' (the \(what)'s name in the earlier version)") else {
            return nil
        }
        checkIdentifier(name, at: node, what: "renamedFrom name")
        return Located(value: name, location: location(of: node))
    }

    /// Reads `removed: [a, b]` (a list of identifiers; a single name is accepted too).
    mutating func parseRemovedList(_ node: Node, what: String) -> [Located<String>] {
        let items: [Node]
        if let sequence = node.sequence {
            items = Array(sequence)
        } else if node.scalar != nil {
            items = [node]
        } else {
            diagnostics.error(
                "'removed' expects a list of \(what) names of the earlier version, such as [oldName]",
                at: location(of: node))
            return []
        }
        var names: [Located<String>] = []
        for item in items {
            guard let name = string(item, what: "a removed \(what) name") else { continue }
            checkIdentifier(name, at: item, what: "removed \(what) name")
            names.append(Located(value: name, location: location(of: item)))
        }
        return names
    }

    /// Reads `mapping: { oldValue: newCase }`: how stored text of an earlier version becomes a case.
    mutating func parseValueMapping(_ node: Node, field: String) -> [(from: Located<String>, to: Located<String>)] {
        var pairs: [(from: Located<String>, to: Located<String>)] = []
        for (key, keyNode, value) in mapping(node, what: "'mapping' of field '\(field)' (old value: new case)") ?? [] {
            guard let target = string(value, what: "the case that '\(key)' becomes") else { continue }
            pairs.append(
                (
                    from: Located(value: key, location: location(of: keyNode)),
                    to: Located(value: target, location: location(of: value))
                ))
        }
        return pairs
    }
}
