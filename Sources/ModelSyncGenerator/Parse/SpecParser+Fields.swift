import Foundation
import Yams

// Stage 1, fields: types, options, defaults and enums.
extension SpecParser {
    // MARK: Fields

    mutating func parseField(_ name: String, keyNode: Node, node: Node) -> FieldSpec? {
        let nameLocated = Located(value: name, location: location(of: keyNode))
        if node.scalar != nil {
            guard let typeText = string(node, what: "the type of field '\(name)'") else { return nil }
            guard let type = parseType(typeText, at: node) else { return nil }
            return FieldSpec(
                name: nameLocated, kind: .type(type), isUnique: false, defaultValue: nil, defaultIsNull: false)
        }
        if let sequence = node.sequence {
            // `tags: [String]` without quotes is a YAML list of one type name: read it as an array type.
            guard sequence.count == 1, let element = sequence.first, let elementName = element.scalar?.string else {
                diagnostics.error(
                    "field '\(name)' has a list where a type is expected; write an array type in quotes: \"[String]\"",
                    at: location(of: node))
                return nil
            }
            guard let type = parseType("[\(elementName)]", at: node) else { return nil }
            return FieldSpec(
                name: nameLocated, kind: .type(type), isUnique: false, defaultValue: nil, defaultIsNull: false)
        }
        guard let entries = mapping(node, what: "field '\(name)'") else { return nil }
        // `owner: { belongsTo: User }` under `fields:` is a relationship in the wrong block.
        if let kind = entries.first(where: { SpecKeys.relationshipKinds.contains($0.key) }) {
            diagnostics.error(
                "'\(kind.key)' is a relationship: move '\(name)' under 'relationships:'", at: location(of: kind.keyNode)
            )
            return nil
        }
        var type: TypeSpec?
        var cases: [Located<String>]?
        var isUnique = false
        var isOptional = false
        var optionalNode: Node?
        var defaultValue: Located<String>?
        var defaultIsNull = false
        var renamedFrom: Located<String>?
        var valueMapping: [(from: Located<String>, to: Located<String>)] = []
        for (key, keyNode, value) in entries {
            switch key {
            case "type":
                if let text = string(value, what: "'type'") { type = parseType(text, at: value) }
            case "enum":
                guard let sequence = value.sequence else {
                    diagnostics.error(
                        "'enum' expects a list of cases, such as [draft, published]", at: location(of: value))
                    cases = []
                    continue
                }
                var seen: Set<String> = []
                var parsed: [Located<String>] = []
                for caseNode in sequence {
                    guard let caseName = caseNode.scalar?.string else {
                        diagnostics.error("an enum case must be a plain name", at: location(of: caseNode))
                        continue
                    }
                    if !Naming.isIdentifier(caseName) {
                        diagnostics.error(
                            "invalid enum case '\(caseName)'; a case must be a Swift identifier (letters, digits, "
                                + "'_', not starting with a digit)", at: location(of: caseNode))
                    } else if !seen.insert(caseName).inserted {
                        diagnostics.error("duplicate enum case '\(caseName)'", at: location(of: caseNode))
                    } else {
                        parsed.append(Located(value: caseName, location: location(of: caseNode)))
                    }
                }
                if sequence.isEmpty {
                    diagnostics.error("'enum' needs at least one case", at: location(of: value))
                }
                cases = parsed
            case "unique":
                isUnique = bool(value, key: "unique") ?? false
            case "optional":
                isOptional = bool(value, key: "optional") ?? false
                optionalNode = keyNode
            case "default":
                if isNull(value) {
                    defaultIsNull = true
                } else if let text = string(value, what: "'default' (a literal value)") {
                    defaultValue = Located(value: text, location: location(of: value))
                }
            case "renamedFrom":
                renamedFrom = parseRenamedFrom(value, what: "field")
            case "mapping":
                valueMapping = parseValueMapping(value, field: name)
            default:
                unknownKey(key, at: keyNode, in: "field '\(name)'", allowed: SpecKeys.field)
            }
        }
        let kind: FieldSpec.Kind
        if let cases {
            if type != nil {
                diagnostics.error(
                    "field '\(name)' has both 'type' and 'enum'; an enum field declares only its cases",
                    at: nameLocated.location)
                return nil
            }
            kind = .enumeration(cases, isOptional: isOptional)
        } else if var type {
            if isOptional, let optionalNode {
                if type.isOptional {
                    diagnostics.warning(
                        "'optional: true' repeats the '?' of the type", at: location(of: optionalNode))
                }
                type.isOptional = true
            }
            kind = .type(type)
        } else {
            if entries.contains(where: { $0.key == "type" }) { return nil }  // the type was reported
            diagnostics.error(
                "field '\(name)' needs a 'type' (or an 'enum' list of cases)", at: nameLocated.location)
            return nil
        }
        if !valueMapping.isEmpty, case .type = kind {
            diagnostics.error(
                "'mapping' of field '\(name)' turns earlier values into enum cases; it applies to 'enum' fields only",
                at: location(of: node))
        }
        return FieldSpec(
            name: nameLocated, kind: kind, isUnique: isUnique, defaultValue: defaultValue, defaultIsNull: defaultIsNull,
            renamedFrom: renamedFrom, mapping: valueMapping)
    }

    /// Reads a type as written (`String`, `Date?`, `[String]`, `[Int]?`); names are resolved later.
    mutating func parseType(_ text: String, at node: Node) -> TypeSpec? {
        var body = text.trimmingCharacters(in: .whitespaces)
        let here = location(of: node)
        var isOptional = false
        if body.hasSuffix("?") {
            isOptional = true
            body.removeLast()
        }
        var isArray = false
        if body.hasPrefix("[") || body.hasSuffix("]") {
            guard body.hasPrefix("["), body.hasSuffix("]"), body.count > 2 else {
                diagnostics.error("malformed array type '\(text)'; write it as \"[String]\"", at: here)
                return nil
            }
            isArray = true
            body = String(body.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
            if body.hasSuffix("?") || body.hasPrefix("[") {
                diagnostics.error(
                    "unsupported type '\(text)'; arrays hold non-optional scalars, such as [String]", at: here)
                return nil
            }
        }
        guard Naming.isIdentifier(body) else {
            diagnostics.error(
                "malformed type '\(text)'; expected a type name such as String, Date? or [String]", at: here)
            return nil
        }
        return TypeSpec(name: body, isArray: isArray, isOptional: isOptional, location: here)
    }
}
