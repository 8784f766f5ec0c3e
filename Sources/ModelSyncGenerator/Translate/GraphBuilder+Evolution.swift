import Foundation

// Stage 2, evolution: what the store needs to migrate a database built by an earlier version of the
// spec (renamed models and fields, removed ones, defaults for required fields, enum mappings).
extension GraphBuilder {
    /// Fills the models' evolution data and returns the tables of removed models.
    mutating func translateEvolution(_ models: inout [GraphModel], entries: [ModelEntry], files: [SpecFile]) -> [String]
    {
        let currentNames = Set(entries.map(\.spec.name.value))
        let currentTables = Set(models.map(\.tableName))
        var previousNames: [String: String] = [:]
        for (index, entry) in entries.enumerated() where index < models.count {
            let spec = entry.spec
            if let renamed = spec.renamedFrom {
                let table = Naming.snakeCase(renamed.value)
                if currentNames.contains(renamed.value) || currentTables.contains(table) {
                    diagnostics.error(
                        "model '\(spec.name.value)' is renamedFrom '\(renamed.value)', but a model of this version "
                            + "uses that name or its table '\(table)'; a renamed model's old name must be free",
                        at: renamed.location)
                } else if let other = previousNames[table] {
                    diagnostics.error(
                        "models '\(other)' and '\(spec.name.value)' are both renamedFrom '\(renamed.value)'",
                        at: renamed.location)
                } else {
                    previousNames[table] = spec.name.value
                    models[index].previousTableName = table
                }
            }
            translateFieldEvolution(&models[index], spec: spec)
        }
        var removedTables: [String] = []
        for file in files {
            for removed in file.removedModels {
                let table = Naming.snakeCase(removed.value)
                if currentNames.contains(removed.value) || currentTables.contains(table) {
                    diagnostics.error(
                        "model '\(removed.value)' is listed under 'removed:' but is declared in this version; "
                            + "remove it from one of them", at: removed.location)
                } else if previousNames[table] != nil {
                    diagnostics.error(
                        "model '\(removed.value)' is listed under 'removed:' and is the old name of model "
                            + "'\(previousNames[table]!)' (renamedFrom); a model is either renamed or removed",
                        at: removed.location)
                } else if !removedTables.contains(table) {
                    removedTables.append(table)
                }
            }
        }
        return removedTables.sorted()
    }

    private mutating func translateFieldEvolution(_ model: inout GraphModel, spec: ModelSpec) {
        let columns = Set(model.fields.map(\.name))
        var oldNames: [String: String] = [:]
        for field in spec.fields {
            guard let index = model.fields.firstIndex(where: { $0.name == field.name.value }) else { continue }
            if let renamed = field.renamedFrom {
                if columns.contains(renamed.value) {
                    diagnostics.error(
                        "field '\(field.name.value)' is renamedFrom '\(renamed.value)', but '\(renamed.value)' is a "
                            + "field of this version too; a renamed field's old name must be free",
                        at: renamed.location)
                } else if let other = oldNames[renamed.value] {
                    diagnostics.error(
                        "fields '\(other)' and '\(field.name.value)' are both renamedFrom '\(renamed.value)'",
                        at: renamed.location)
                } else {
                    oldNames[renamed.value] = field.name.value
                    model.fields[index].renamedFrom = renamed.value
                }
            }
            let graphField = model.fields[index]
            if let value = field.defaultValue, !graphField.isOptional {
                model.fields[index].runtimeDefault = Self.runtimeDefault(value.value, field: graphField)
                model.fields[index].defaultJSON = Self.defaultJSON(value.value, field: graphField)
            }
            if !field.mapping.isEmpty, let enumeration = graphField.enumeration {
                var pairs: [(from: String, to: String)] = []
                for pair in field.mapping {
                    if enumeration.cases.contains(pair.to.value) {
                        pairs.append((pair.from.value, pair.to.value))
                    } else {
                        diagnostics.error(
                            "mapping of field '\(field.name.value)' turns '\(pair.from.value)' into '\(pair.to.value)', "
                                + "which is not a case of the enum"
                                + suggestion(for: pair.to.value, among: enumeration.cases), at: pair.to.location)
                    }
                }
                model.fields[index].valueMapping = pairs.sorted { $0.from < $1.from }
            }
        }
        for relationship in spec.relationships where relationship.kind == .belongsTo {
            guard let renamed = relationship.renamedFrom,
                let index = model.fields.firstIndex(where: { $0.name == relationship.name.value + "Id" })
            else { continue }
            let oldColumn = renamed.value + "Id"
            if columns.contains(oldColumn) || oldNames[oldColumn] != nil {
                diagnostics.error(
                    "relationship '\(relationship.name.value)' is renamedFrom '\(renamed.value)', whose column "
                        + "'\(oldColumn)' is used by this version too", at: renamed.location)
            } else {
                oldNames[oldColumn] = relationship.name.value
                model.fields[index].renamedFrom = oldColumn
            }
        }
        let relationshipNames = Set(spec.relationships.map(\.name.value))
        var removed: [String] = []
        for name in spec.removed {
            // A removed belongsTo is named by its relationship name; its column is `<name>Id`.
            let column = columns.contains(name.value) || relationshipNames.contains(name.value) ? nil : name.value
            if column == nil {
                diagnostics.error(
                    "'\(name.value)' is listed under 'removed:' of model '\(spec.name.value)' but is declared in this "
                        + "version; remove it from one of them", at: name.location)
                continue
            }
            if oldNames[name.value] != nil || oldNames[name.value + "Id"] != nil {
                diagnostics.error(
                    "'\(name.value)' is listed under 'removed:' and is the old name of a renamed field; a field is "
                        + "either renamed or removed", at: name.location)
                continue
            }
            removed.append(name.value)
        }
        model.removedColumns = removed.sorted()
    }

    /// A checked `default:` value of a required field as JSON text (what the server fills in).
    static func defaultJSON(_ text: String, field: GraphField) -> String? {
        func string(_ value: String) -> String? {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
        }
        if field.enumeration != nil { return string(text) }
        switch field.columnType {
        case "text", "date": return string(text)
        case "integer": return Int64(text).map { String($0) }
        case "double", "decimal": return Double(text).map { _ in text }
        case "boolean": return text == "true" || text == "false" ? text : nil
        default: return nil
        }
    }

    /// The runtime's `FieldDefault` text for a checked `default:` value of a required field.
    static func runtimeDefault(_ text: String, field: GraphField) -> String? {
        if field.enumeration != nil { return ".text(\(Naming.stringLiteral(text)))" }
        switch field.columnType {
        case "text": return ".text(\(Naming.stringLiteral(text)))"
        case "integer": return Int64(text).map { ".integer(\($0))" }
        case "double": return Double(text).map { _ in ".double(\(text))" }
        case "boolean": return text == "true" || text == "false" ? ".boolean(\(text))" : nil
        case "decimal": return ".decimal(\(Naming.stringLiteral(text)))"
        default: return nil
        }
    }
}
