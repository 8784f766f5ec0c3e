import Foundation
import Yams

/// Stage 1: reads the YAML of one spec file into a ``SpecFile``, checking its shape (known keys,
/// value kinds, option values, identifiers) and remembering where each value was written.
struct SpecParser {
    let path: String
    let text: String
    private(set) var diagnostics = DiagnosticCollector()

    init(path: String, text: String) {
        self.path = path
        self.text = text
    }

    /// Parses the file; `nil` when the YAML itself cannot be read (the reason is in `diagnostics`).
    mutating func parse() -> SpecFile? {
        let fileName = (path as NSString).lastPathComponent
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            reportYAMLError(error)
            return nil
        } catch {
            diagnostics.error("cannot read YAML: \(error)", at: location(line: 1, column: 1))
            return nil
        }
        guard let root, !isNull(root) else {
            diagnostics.error(
                "empty spec file; a spec starts with 'version: 1' and declares 'models:'",
                at: location(line: 1, column: 1))
            return nil
        }
        var file = SpecFile(path: path, fileName: fileName)
        guard let entries = mapping(root, what: "the spec file") else { return file }
        var sawVersion = false
        var sawModels = false
        for (key, keyNode, value) in entries {
            switch key {
            case "version":
                sawVersion = true
                if value.scalar == nil || value.string != "1" {
                    diagnostics.error(
                        "unsupported spec version '\(describe(value))'; the only version is 1", at: location(of: value))
                }
            case "options":
                for (optionKey, optionKeyNode, optionValue) in mapping(value, what: "'options'") ?? [] {
                    switch optionKey {
                    case "accessModifier":
                        if let modifier = choice(optionValue, AccessModifier.self, key: "accessModifier") {
                            file.accessModifier = modifier
                        }
                    case "templates":
                        if let folder = string(optionValue, what: "'templates' (a folder path)") {
                            file.templates = Located(value: folder, location: location(of: optionValue))
                        }
                    default: unknownKey(optionKey, at: optionKeyNode, in: "options", allowed: SpecKeys.options)
                    }
                }
            case "defaults":
                for (defaultKey, defaultKeyNode, defaultValue) in mapping(value, what: "'defaults'") ?? [] {
                    switch defaultKey {
                    case "idGeneration":
                        file.defaultIDGeneration = choice(defaultValue, IDGenerationValue.self, key: "idGeneration")
                    case "idFormat":
                        file.defaultIDFormat = choice(defaultValue, IDFormatValue.self, key: "idFormat")
                    default: unknownKey(defaultKey, at: defaultKeyNode, in: "defaults", allowed: SpecKeys.defaults)
                    }
                }
            case "remote":
                for (remoteKey, remoteKeyNode, remoteValue) in mapping(value, what: "'remote'") ?? [] {
                    switch remoteKey {
                    case "fieldNaming":
                        if let naming = choice(remoteValue, FieldNamingValue.self, key: "fieldNaming") {
                            file.fieldNaming = naming
                        }
                    default:
                        let allowed = SpecKeys.fileRemote
                        if SpecKeys.modelRemote.contains(remoteKey) {
                            diagnostics.error(
                                "'\(remoteKey)' belongs in a model's 'remote:' block; the file-level 'remote:' only "
                                    + "accepts 'fieldNaming'", at: location(of: remoteKeyNode))
                        } else {
                            unknownKey(remoteKey, at: remoteKeyNode, in: "remote", allowed: allowed)
                        }
                    }
                }
            case "models":
                sawModels = true
                for (modelName, modelKeyNode, modelNode) in mapping(value, what: "'models'") ?? [] {
                    file.models.append(parseModel(modelName, keyNode: modelKeyNode, node: modelNode))
                }
            default:
                unknownKey(key, at: keyNode, in: "the spec file", allowed: SpecKeys.file)
            }
        }
        if !sawVersion {
            diagnostics.error("missing 'version: 1' at the top of the spec", at: location(of: root))
        }
        if !sawModels {
            diagnostics.error("missing 'models:'; a spec declares at least one model", at: location(of: root))
        } else if file.models.isEmpty, !diagnostics.hasErrors {
            diagnostics.warning("'models:' is empty; this file generates no model", at: location(of: root))
        }
        return file
    }

    // MARK: Models

    private mutating func parseModel(_ name: String, keyNode: Node, node: Node) -> ModelSpec {
        let nameLocation = location(of: keyNode)
        checkIdentifier(name, at: keyNode, what: "model name")
        var model = ModelSpec(name: Located(value: name, location: nameLocation))
        var names: [String: SourceLocation] = [:]
        for (key, keyNode, value) in mapping(node, what: "model '\(name)'") ?? [] {
            switch key {
            case "idGeneration": model.idGeneration = choice(value, IDGenerationValue.self, key: "idGeneration")
            case "idFormat": model.idFormat = choice(value, IDFormatValue.self, key: "idFormat")
            case "idPrefix":
                if let prefix = string(value, what: "'idPrefix'") {
                    model.idPrefix = Located(value: prefix, location: location(of: value))
                }
            case "remote":
                for (remoteKey, remoteKeyNode, remoteValue) in mapping(value, what: "'remote'") ?? [] {
                    switch remoteKey {
                    case "path":
                        if let path = string(remoteValue, what: "'path'") {
                            model.remotePath = Located(value: path, location: location(of: remoteValue))
                        }
                    case "idType": model.remoteIDType = choice(remoteValue, RemoteIDTypeValue.self, key: "idType")
                    default:
                        if remoteKey == "fieldNaming" {
                            diagnostics.error(
                                "'fieldNaming' is set for the whole file, in the top-level 'remote:' block",
                                at: location(of: remoteKeyNode))
                        } else {
                            unknownKey(remoteKey, at: remoteKeyNode, in: "remote", allowed: SpecKeys.modelRemote)
                        }
                    }
                }
            case "fields":
                for (fieldName, fieldKeyNode, fieldNode) in mapping(value, what: "'fields'") ?? [] {
                    checkMemberName(fieldName, at: fieldKeyNode, model: name, names: &names)
                    if let field = parseField(fieldName, keyNode: fieldKeyNode, node: fieldNode) {
                        model.fields.append(field)
                    }
                }
            case "relationships":
                for (relName, relKeyNode, relNode) in mapping(value, what: "'relationships'") ?? [] {
                    checkMemberName(relName, at: relKeyNode, model: name, names: &names)
                    let reported = diagnostics.diagnostics.count
                    if let relationship = parseRelationship(relName, keyNode: relKeyNode, node: relNode) {
                        model.relationships.append(relationship)
                    } else if diagnostics.diagnostics.count > reported {
                        model.unreadableRelationships[relName] = diagnostics.diagnostics[reported].location
                    }
                }
            default:
                if SpecKeys.relationshipKinds.contains(key) || SpecKeys.field.contains(key) {
                    diagnostics.error(
                        "unknown key '\(key)' in model '\(name)'; declare it under 'fields:' or 'relationships:'",
                        at: location(of: keyNode))
                } else {
                    unknownKey(key, at: keyNode, in: "model '\(name)'", allowed: SpecKeys.model)
                }
            }
        }
        return model
    }

    private mutating func checkMemberName(
        _ name: String, at node: Node, model: String, names: inout [String: SourceLocation]
    ) {
        let here = location(of: node)
        checkIdentifier(name, at: node, what: "name")
        if let first = names[name] {
            diagnostics.error(
                "duplicate name '\(name)' in model '\(model)'; first declared at line \(first.line)", at: here)
        } else {
            names[name] = here
        }
    }

    // MARK: Fields

    private mutating func parseField(_ name: String, keyNode: Node, node: Node) -> FieldSpec? {
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
        return FieldSpec(
            name: nameLocated, kind: kind, isUnique: isUnique, defaultValue: defaultValue, defaultIsNull: defaultIsNull)
    }

    /// Reads a type as written (`String`, `Date?`, `[String]`, `[Int]?`); names are resolved later.
    private mutating func parseType(_ text: String, at node: Node) -> TypeSpec? {
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

    // MARK: Relationships

    private mutating func parseRelationship(_ name: String, keyNode: Node, node: Node) -> RelationshipSpec? {
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
            default: break
            }
        }
        return relationship
    }

    // MARK: Helpers

    private func location(of node: Node) -> SourceLocation {
        location(line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    private func location(line: Int, column: Int) -> SourceLocation {
        SourceLocation(path: path, line: line, column: column)
    }

    private func isNull(_ node: Node) -> Bool {
        guard let scalar = node.scalar, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    private func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): return scalar.string
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    private func kindName(_ node: Node) -> String {
        switch node {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The entries of a mapping node; a null node is an empty mapping. Reports other shapes.
    private mutating func mapping(_ node: Node, what: String) -> [(key: String, keyNode: Node, value: Node)]? {
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

    private mutating func string(_ node: Node, what: String) -> String? {
        guard let scalar = node.scalar, !isNull(node) else {
            diagnostics.error(
                "expected a value for \(what), found \(isNull(node) ? "nothing" : kindName(node))",
                at: location(of: node))
            return nil
        }
        return scalar.string
    }

    private mutating func bool(_ node: Node, key: String) -> Bool? {
        guard let scalar = node.scalar, scalar.string == "true" || scalar.string == "false" else {
            diagnostics.error("'\(key)' must be true or false, found '\(describe(node))'", at: location(of: node))
            return nil
        }
        return scalar.string == "true"
    }

    private mutating func choice<Value: RawRepresentable & CaseIterable>(
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

    private mutating func unknownKey(_ key: String, at node: Node, in context: String, allowed: [String]) {
        diagnostics.error(
            "unknown key '\(key)' in \(context)" + suggestion(for: key, among: allowed), at: location(of: node))
    }

    private mutating func checkIdentifier(_ name: String, at node: Node, what: String) {
        guard !Naming.isIdentifier(name) else { return }
        diagnostics.error(
            "invalid \(what) '\(name)'; names must be Swift identifiers (ASCII letters, digits and '_', not starting "
                + "with a digit)", at: location(of: node))
    }

    private mutating func reportYAMLError(_ error: YamlError) {
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
    private func yamlHint(for problem: String, line: Int) -> String? {
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
    private func secondOccurrence(of key: String, line: Int, column: Int) -> (line: Int, column: Int)? {
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
