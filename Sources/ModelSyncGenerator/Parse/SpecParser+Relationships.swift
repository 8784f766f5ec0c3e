import Foundation
import Yams

// Stage 1, relationships: belongsTo, hasMany, hasOne, manyToMany and their options.
extension SpecParser {
    // MARK: Relationships

    mutating func parseRelationship(_ name: String, keyNode: Node, node: Node) -> RelationshipSpec? {
        let nameLocated = Located(value: name, location: location(of: keyNode))
        guard let entries = mapping(node, what: "relationship '\(name)'") else { return nil }
        let kindEntries = entries.filter { SpecKeys.relationshipKinds.contains($0.key) }
        guard let kindEntry = kindEntries.first, let kind = RelationshipSpec.Kind(rawValue: kindEntry.key) else {
            var hint = ""
            for (key, _, _) in entries {
                if let close = closest(to: key, among: SpecKeys.relationshipKinds) {
                    hint = "; did you mean '\(close)'?"
                    break
                }
            }
            diagnostics.error(
                "relationship '\(name)' needs one of belongsTo, hasMany, hasOne or manyToMany\(hint)",
                at: nameLocated.location)
            return nil
        }
        for extra in kindEntries.dropFirst() {
            diagnostics.error(
                "relationship '\(name)' is already a \(kindEntry.key); a relationship has exactly one kind",
                at: location(of: extra.keyNode))
        }
        guard let targetName = string(kindEntry.value, what: "'\(kindEntry.key)' (a model name)") else { return nil }
        var relationship = RelationshipSpec(
            name: nameLocated, kind: kind, target: Located(value: targetName, location: location(of: kindEntry.value)),
            isOptional: false)
        let allowed = SpecKeys.relationshipOptions(for: kind)
        for (key, keyNode, value) in entries where !SpecKeys.relationshipKinds.contains(key) {
            if !allowed.contains(key) {
                if SpecKeys.relationship.contains(key) {
                    diagnostics.error(
                        "'\(key)' does not apply to a \(kind.rawValue) relationship; it accepts "
                            + allowed.map { "'\($0)'" }.joined(separator: ", "), at: location(of: keyNode))
                } else {
                    unknownKey(key, at: keyNode, in: "relationship '\(name)'", allowed: allowed)
                }
                continue
            }
            switch key {
            case "optional": relationship.isOptional = bool(value, key: "optional") ?? false
            case "onDelete":
                if let rule = choice(value, DeleteRuleValue.self, key: "onDelete") {
                    relationship.onDelete = Located(value: rule, location: location(of: value))
                }
            case "inverse":
                if let inverse = string(value, what: "'inverse' (a relationship name)") {
                    relationship.inverse = Located(value: inverse, location: location(of: value))
                }
            case "through":
                if let through = string(value, what: "'through' (a join model name)") {
                    relationship.through = Located(value: through, location: location(of: value))
                }
            case "renamedFrom":
                relationship.renamedFrom = parseRenamedFrom(value, what: "relationship")
            default: break
            }
        }
        return relationship
    }
}
