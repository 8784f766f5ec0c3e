import Foundation
import Yams

/// Stage 1: reads the YAML of one spec file into a ``SpecFile``, checking its shape (known keys,
/// value kinds, option values, identifiers) and remembering where each value was written.
struct SpecParser {
    let path: String
    let text: String
    var diagnostics = DiagnosticCollector()

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
                    case "schemaVersion":
                        if let text = optionValue.scalar?.string, let version = Int(text), version >= 1 {
                            file.schemaVersion = version
                        } else {
                            diagnostics.error(
                                "'schemaVersion' expects a whole number from 1 (raise it with each release whose "
                                    + "models change shape), found '\(describe(optionValue))'",
                                at: location(of: optionValue))
                        }
                    case "oldestClientSchemaVersion":
                        if let text = optionValue.scalar?.string, let version = Int(text), version >= 1 {
                            file.oldestClientSchemaVersion = Located(
                                value: version, location: location(of: optionValue))
                        } else {
                            diagnostics.error(
                                "'oldestClientSchemaVersion' expects a whole number from 1 (the oldest app version whose "
                                    + "requests the server still accepts), found '\(describe(optionValue))'",
                                at: location(of: optionValue))
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
            case "removed":
                file.removedModels = parseRemovedList(value, what: "model")
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

    mutating func parseModel(_ name: String, keyNode: Node, node: Node) -> ModelSpec {
        let nameLocation = location(of: keyNode)
        checkIdentifier(name, at: keyNode, what: "model name")
        var model = ModelSpec(name: Located(value: name, location: nameLocation))
        var names: [String: SourceLocation] = [:]
        for (key, keyNode, value) in mapping(node, what: "model '\(name)'") ?? [] {
            switch key {
            case "idGeneration": model.idGeneration = choice(value, IDGenerationValue.self, key: "idGeneration")
            case "idFormat": model.idFormat = choice(value, IDFormatValue.self, key: "idFormat")
            case "renamedFrom": model.renamedFrom = parseRenamedFrom(value, what: "model")
            case "removed": model.removed = parseRemovedList(value, what: "field or relationship")
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

    mutating func checkMemberName(
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
}
