import Foundation

// Stage 2, models: names, ID options, remote conventions, fields and foreign keys.
extension GraphBuilder {
    mutating func translateModels(_ entries: [ModelEntry], modelNames: [String]) -> [GraphModel] {
        var models: [GraphModel] = []
        var tables: [String: String] = [:]
        var accessors: [String: String] = [:]
        for entry in entries {
            let spec = entry.spec
            let name = spec.name.value
            checkModelName(spec.name)
            let table = Naming.snakeCase(name)
            let accessor = Naming.plural(Naming.lowerCamel(name))
            if let other = tables[table] {
                diagnostics.error(
                    "model '\(name)' would use table '\(table)', already used by model '\(other)'; rename one",
                    at: spec.name.location)
            } else if let other = accessors[accessor] {
                diagnostics.error(
                    "model '\(name)' would use store accessor '\(accessor)', already used by model '\(other)'",
                    at: spec.name.location)
            }
            tables[table] = tables[table] ?? name
            accessors[accessor] = accessors[accessor] ?? name

            let idGeneration = spec.idGeneration ?? entry.file.defaultIDGeneration ?? .client
            let idPrefix = spec.idPrefix?.value ?? ""
            if let prefix = spec.idPrefix {
                if prefix.value.hasPrefix("tmp_") {
                    diagnostics.error(
                        "idPrefix '\(prefix.value)' starts with 'tmp_', the prefix of temporary IDs; choose another "
                            + "prefix", at: prefix.location)
                } else if idGeneration == .server {
                    diagnostics.warning(
                        "idPrefix has no effect on model '\(name)': its IDs come from the server (idGeneration: server)",
                        at: prefix.location)
                }
            }
            var remotePath = "/" + Naming.plural(table)
            if let path = spec.remotePath {
                if !path.value.hasPrefix("/") {
                    diagnostics.error(
                        "remote path '\(path.value)' must start with '/'; did you mean '/\(path.value)'?",
                        at: path.location)
                }
                remotePath = path.value
            }

            var fields: [GraphField] = []
            var nestedTypes: [String: SourceLocation] = [:]
            for field in spec.fields {
                if let resolved = resolveField(field, modelNames: modelNames, nestedTypes: &nestedTypes) {
                    fields.append(resolved)
                }
            }
            for relationship in spec.relationships where Self.reservedMemberNames.contains(relationship.name.value) {
                diagnostics.error(
                    "relationship name '\(relationship.name.value)' is reserved by the generated code",
                    at: relationship.name.location)
            }
            var foreignKeys: [GraphForeignKey] = []
            let memberNames = Set(spec.fields.map(\.name.value) + spec.relationships.map(\.name.value))
            for relationship in spec.relationships where relationship.kind == .belongsTo {
                guard let targetIndex = resolveModel(relationship.target, modelNames: modelNames) else { continue }
                let targetName = modelNames[targetIndex]
                let column = relationship.name.value + "Id"
                let targetFile = entries[targetIndex].file
                if targetFile.accessModifier < entry.file.accessModifier {
                    diagnostics.error(
                        "\(entry.file.accessModifier.rawValue) model '\(name)' cannot have a foreign key to "
                            + "\(targetFile.accessModifier.rawValue) model '\(targetName)' (\(targetFile.fileName)); give "
                            + "both spec files the same accessModifier", at: relationship.target.location)
                }
                if memberNames.contains(column) {
                    diagnostics.error(
                        "belongsTo '\(relationship.name.value)' adds the foreign key '\(column)', which clashes with "
                            + "another field or relationship of '\(name)'", at: relationship.name.location)
                }
                let onDelete = relationship.onDelete?.value ?? .restrict
                if onDelete == .nullify, !relationship.isOptional, let rule = relationship.onDelete {
                    diagnostics.error(
                        "onDelete: nullify needs an optional foreign key; add 'optional: true' to '\(relationship.name.value)' "
                            + "or use cascade or restrict", at: rule.location)
                }
                if targetName == name, !relationship.isOptional {
                    diagnostics.error(
                        "required belongsTo '\(relationship.name.value)' points to its own model '\(name)': no first "
                            + "record could be created; add 'optional: true'", at: relationship.target.location)
                }
                foreignKeys.append(
                    GraphForeignKey(
                        column: column, relationship: relationship.name.value, targetModel: targetName,
                        targetTable: Naming.snakeCase(targetName), isOptional: relationship.isOptional,
                        onDelete: onDelete))
                fields.append(
                    GraphField(
                        name: column, swiftType: "\(targetName).ID", columnType: "text",
                        isOptional: relationship.isOptional, isUnique: false,
                        defaultLiteral: relationship.isOptional ? "nil" : nil, enumeration: nil))
            }
            models.append(
                GraphModel(
                    name: name, fileIndex: entry.fileIndex, tableName: table, accessor: accessor,
                    idGeneration: idGeneration, idFormat: spec.idFormat ?? entry.file.defaultIDFormat ?? .uuidv7,
                    idPrefix: idPrefix, remotePath: remotePath, remoteIDType: spec.remoteIDType ?? .string,
                    fieldNaming: entry.file.fieldNaming, fields: fields, foreignKeys: foreignKeys))
        }

        return models
    }

    // MARK: Checks

    mutating func checkModelName(_ name: Located<String>) {
        let value = name.value
        guard Naming.isIdentifier(value) else { return }  // reported by the parser
        if Naming.swiftKeywords.contains(value) || SpecKeys.scalarTypes.contains(value)
            || Self.reservedTypeNames.contains(value)
        {
            diagnostics.error(
                "model name '\(value)' clashes with a Swift or ModelSync type used by the generated code; rename the model",
                at: name.location)
        } else if let shadowing = ShadowedTypeNames.warning(forModel: value, moduleName: moduleName) {
            diagnostics.warning(shadowing, at: name.location)
        } else if let first = value.first, !first.isUppercase {
            diagnostics.warning(
                "model name '\(value)' should start with an uppercase letter; did you mean '\(Naming.upperFirst(value))'?",
                at: name.location)
        }
    }

    mutating func resolveModel(
        _ name: Located<String>, modelNames: [String], report: Bool = true
    ) -> Int? {
        if let index = modelNames.firstIndex(of: name.value) { return index }
        if report {
            let hint = suggestion(for: name.value, among: modelNames)
            diagnostics.error("unknown model '\(name.value)'\(hint)", at: name.location)
        }
        return nil
    }

    mutating func resolveField(
        _ field: FieldSpec, modelNames: [String], nestedTypes: inout [String: SourceLocation]
    ) -> GraphField? {
        let name = field.name.value
        if Self.reservedMemberNames.contains(name) {
            let extra = name == "id" ? " (every model has an 'id'; set its kind with idGeneration)" : ""
            diagnostics.error("field name '\(name)' is reserved by the generated code\(extra)", at: field.name.location)
            return nil
        }
        switch field.kind {
        case .enumeration(let cases, let isOptional):
            let typeName = Naming.upperFirst(name)
            if SpecKeys.scalarTypes.contains(typeName) || modelNames.contains(typeName)
                || Self.reservedTypeNames.contains(typeName)
            {
                diagnostics.error(
                    "enum field '\(name)' would declare a nested type '\(typeName)' that hides the type of the same "
                        + "name; rename the field", at: field.name.location)
                return nil
            }
            nestedTypes[typeName] = field.name.location
            var defaultLiteral: String? = isOptional ? "nil" : nil
            if let value = field.defaultValue {
                if cases.contains(where: { $0.value == value.value }) {
                    defaultLiteral = "." + Naming.escaped(value.value)
                } else {
                    diagnostics.error(
                        "default '\(value.value)' is not a case of enum field '\(name)'"
                            + suggestion(for: value.value, among: cases.map(\.value)), at: value.location)
                }
            } else if field.defaultIsNull, !isOptional {
                diagnostics.error("default: null needs an optional field", at: field.name.location)
            }
            return GraphField(
                name: name, swiftType: typeName, columnType: "text", isOptional: isOptional, isUnique: field.isUnique,
                defaultLiteral: defaultLiteral, enumeration: GraphEnum(typeName: typeName, cases: cases.map(\.value)))
        case .type(let type):
            guard SpecKeys.scalarTypes.contains(type.name) else {
                if modelNames.contains(type.name) {
                    diagnostics.error(
                        "'\(type.name)' is a model, not a field type; declare a relationship instead: "
                            + "'\(name): { belongsTo: \(type.name) }' under 'relationships:'", at: type.location)
                } else {
                    diagnostics.error(
                        "unknown type '\(type.name)'" + suggestion(for: type.name, among: SpecKeys.scalarTypes),
                        at: type.location)
                }
                return nil
            }
            let columnType: String
            if type.isArray {
                columnType = "json"
            } else {
                switch type.name {
                case "String", "URL", "UUID": columnType = "text"
                case "Int", "Int64": columnType = "integer"
                case "Double": columnType = "double"
                case "Bool": columnType = "boolean"
                case "Date": columnType = "date"
                case "Data": columnType = "blob"
                default: columnType = "decimal"
                }
            }
            let swiftType = type.isArray ? "[\(type.name)]" : type.name
            var defaultLiteral: String? = type.isOptional ? "nil" : nil
            if let value = field.defaultValue {
                defaultLiteral = literal(value, for: type, field: name) ?? defaultLiteral
            } else if field.defaultIsNull, !type.isOptional {
                diagnostics.error(
                    "default: null needs an optional type; did you mean '\(type.name)?'", at: field.name.location)
            }
            return GraphField(
                name: name, swiftType: swiftType, columnType: columnType, isOptional: type.isOptional,
                isUnique: field.isUnique, defaultLiteral: defaultLiteral, enumeration: nil)
        }
    }

    /// The Swift literal of a `default:` value, checked against the field type.
    mutating func literal(_ value: Located<String>, for type: TypeSpec, field: String) -> String? {
        let text = value.value
        func invalid(_ expected: String) -> String? {
            diagnostics.error(
                "default '\(text)' of field '\(field)' is not \(expected)", at: value.location)
            return nil
        }
        if type.isArray {
            diagnostics.error(
                "default values are not supported for array fields such as '\(field)'", at: value.location)
            return nil
        }
        switch type.name {
        case "String":
            return Naming.stringLiteral(text)
        case "Int", "Int64":
            return Int64(text) != nil ? text : invalid("an integer")
        case "Double":
            return Double(text) != nil && !text.contains(where: \.isLetter) ? text : invalid("a number")
        case "Bool":
            return text == "true" || text == "false" ? text : invalid("true or false")
        case "Decimal":
            return Decimal(string: text) != nil && !text.contains(where: \.isLetter)
                ? "Decimal(string: \(Naming.stringLiteral(text)))!" : invalid("a decimal number")
        default:
            diagnostics.error(
                "default values are supported for String, Int, Int64, Double, Bool, Decimal and enum fields, not "
                    + "'\(type.name)'", at: value.location)
            return nil
        }
    }
}
