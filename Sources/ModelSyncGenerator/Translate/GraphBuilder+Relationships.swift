import Foundation

// Stage 2, relationships: one resolver per declared relationship, then the other side of each
// many-to-many relationship that was declared on one side only.
extension GraphBuilder {
    mutating func resolveRelationships(_ models: inout [GraphModel], entries: [ModelEntry], modelNames: [String]) {
        var synthesized: [[GraphResolver]] = Array(repeating: [], count: models.count)
        for (modelIndex, entry) in entries.enumerated() {
            let spec = entry.spec
            for relationship in spec.relationships {
                guard
                    let targetIndex = resolveModel(
                        relationship.target, modelNames: modelNames, report: relationship.kind != .belongsTo)
                else { continue }
                switch relationship.kind {
                case .belongsTo:
                    models[modelIndex].resolvers.append(
                        .belongsTo(
                            name: relationship.name.value, target: targetIndex, column: relationship.name.value + "Id",
                            isOptional: relationship.isOptional))
                case .hasMany, .hasOne:
                    guard
                        let inverse = checkInverse(
                            relationship, owner: spec, target: entries[targetIndex].spec, modelNames: modelNames)
                    else {
                        continue
                    }
                    let column = inverse + "Id"
                    models[modelIndex].resolvers.append(
                        relationship.kind == .hasMany
                            ? .hasMany(
                                name: relationship.name.value, target: targetIndex, inverse: inverse, column: column)
                            : .hasOne(
                                name: relationship.name.value, target: targetIndex, inverse: inverse, column: column))
                case .manyToMany:
                    guard let through = relationship.through else {
                        diagnostics.error(
                            "manyToMany '\(relationship.name.value)' needs 'through:', the join model with a belongsTo "
                                + "to '\(spec.name.value)' and one to '\(relationship.target.value)'",
                            at: relationship.name.location)
                        continue
                    }
                    guard let joinIndex = resolveModel(through, modelNames: modelNames) else { continue }
                    guard
                        let (from, to) = joinColumns(
                            join: entries[joinIndex].spec, owner: spec.name.value, target: modelNames[targetIndex],
                            at: through.location, modelNames: modelNames)
                    else { continue }
                    models[modelIndex].resolvers.append(
                        .manyToMany(
                            name: relationship.name.value, target: targetIndex, through: through.value, from: from,
                            to: to))
                    let targetSpec = entries[targetIndex].spec
                    let declaredBack = targetSpec.relationships.contains {
                        $0.kind == .manyToMany && $0.target.value == spec.name.value
                            && $0.through?.value == through.value
                    }
                    if !declaredBack, targetIndex != modelIndex {
                        let backName = Naming.plural(Naming.lowerCamel(spec.name.value))
                        if targetSpec.fields.contains(where: { $0.name.value == backName })
                            || targetSpec.relationships.contains(where: { $0.name.value == backName })
                        {
                            diagnostics.error(
                                "manyToMany '\(relationship.name.value)' adds '\(backName)' to '\(targetSpec.name.value)', "
                                    + "which already has a member named '\(backName)'; declare the other side explicitly "
                                    + "with 'manyToMany: \(spec.name.value), through: \(through.value)'",
                                at: relationship.name.location)
                        } else {
                            synthesized[targetIndex].append(
                                .manyToMany(
                                    name: backName, target: modelIndex, through: through.value, from: to, to: from))
                        }
                    }
                }
            }
        }
        for index in models.indices { models[index].resolvers += synthesized[index] }

    }

    // MARK: Inverses and join models

    /// Checks a hasMany/hasOne `inverse:` and returns the inverse belongsTo's name.
    ///
    /// An inverse that fails only because of another error (its belongsTo names an unknown model, or
    /// its declaration could not be read) is reported as that error's consequence, after it.
    mutating func checkInverse(
        _ relationship: RelationshipSpec, owner: ModelSpec, target: ModelSpec, modelNames: [String]
    ) -> String? {
        let candidates = target.relationships.filter { $0.kind == .belongsTo && $0.target.value == owner.name.value }
        guard let inverse = relationship.inverse else {
            var hint = ""
            if candidates.count == 1 { hint = "; did you mean 'inverse: \(candidates[0].name.value)'?" }
            diagnostics.error(
                "\(relationship.kind.rawValue) '\(relationship.name.value)' needs 'inverse:', the belongsTo of "
                    + "'\(target.name.value)' that points to '\(owner.name.value)'\(hint)",
                at: relationship.name.location)
            return nil
        }
        guard let match = target.relationships.first(where: { $0.name.value == inverse.value }) else {
            if let broken = target.unreadableRelationships[inverse.value] {
                diagnostics.error(
                    "inverse '\(inverse.value)' is not a usable relationship of '\(target.name.value)' (follows from the "
                        + "error in its declaration at line \(broken.line))", at: inverse.location, causedBy: broken)
                return nil
            }
            let hint = suggestion(for: inverse.value, among: candidates.map(\.name.value))
            diagnostics.error(
                "inverse '\(inverse.value)' is not a relationship of '\(target.name.value)'\(hint)",
                at: inverse.location)
            return nil
        }
        guard match.kind == .belongsTo else {
            diagnostics.error(
                "inverse '\(inverse.value)' of '\(target.name.value)' is a \(match.kind.rawValue); the inverse of a "
                    + "\(relationship.kind.rawValue) must be a belongsTo", at: inverse.location)
            return nil
        }
        guard match.target.value == owner.name.value else {
            let message = "inverse '\(inverse.value)' belongs to '\(match.target.value)', not to '\(owner.name.value)'"
            if modelNames.contains(match.target.value) {
                diagnostics.error(message, at: inverse.location)
            } else {
                diagnostics.error(
                    message
                        + " (follows from the unknown model '\(match.target.value)' at line \(match.target.location.line))",
                    at: inverse.location, causedBy: match.target.location)
            }
            return nil
        }
        return inverse.value
    }

    /// The join model's foreign keys (owner side, target side) of a manyToMany.
    ///
    /// When the join model has a belongsTo to an unknown model, a missing link is reported as that
    /// error's consequence, after it.
    mutating func joinColumns(
        join: ModelSpec, owner: String, target: String, at location: SourceLocation, modelNames: [String]
    ) -> (String, String)? {
        let belongsTo = join.relationships.filter { $0.kind == .belongsTo }
        let toOwner = belongsTo.first { $0.target.value == owner }
        let toTarget = belongsTo.first { $0.target.value == target && $0.name.value != toOwner?.name.value }
        guard let toOwner, let toTarget else {
            let missing = [toOwner == nil ? owner : nil, toTarget == nil ? target : nil].compactMap { $0 }
            let message =
                "join model '\(join.name.value)' needs a belongsTo to "
                + missing.map { "'\($0)'" }.joined(separator: " and ") + " to link '\(owner)' and '\(target)'"
            if let unknown = belongsTo.first(where: { !modelNames.contains($0.target.value) })?.target {
                diagnostics.error(
                    message + " (follows from the unknown model '\(unknown.value)' at line \(unknown.location.line))",
                    at: location, causedBy: unknown.location)
            } else {
                diagnostics.error(message, at: location)
            }
            return nil
        }
        return (toOwner.name.value + "Id", toTarget.name.value + "Id")
    }
}
