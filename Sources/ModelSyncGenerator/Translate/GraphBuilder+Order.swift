import Foundation

// Stage 2, dependency order: parents before children; cycles of required belongsTo are errors.
extension GraphBuilder {
    // MARK: Dependency order

    /// Kahn's algorithm over required belongsTo edges (self-references and optional edges ignored),
    /// ties broken by declaration order. Reports cycles, naming them.
    mutating func dependencyOrder(_ specs: [ModelSpec], indexByName: [String: Int]) -> [Int] {
        var parents: [[Int]] = Array(repeating: [], count: specs.count)
        var children: [[Int]] = Array(repeating: [], count: specs.count)
        for (index, spec) in specs.enumerated() {
            for relationship in spec.relationships where relationship.kind == .belongsTo && !relationship.isOptional {
                guard let target = indexByName[relationship.target.value], target != index else { continue }
                parents[index].append(target)
                children[target].append(index)
            }
        }
        var remaining = parents.map(\.count)
        var ready = Set(remaining.indices.filter { remaining[$0] == 0 })
        var order: [Int] = []
        while let next = ready.min() {
            ready.remove(next)
            order.append(next)
            for child in children[next] {
                remaining[child] -= 1
                if remaining[child] == 0 { ready.insert(child) }
            }
        }
        if order.count < specs.count {
            reportCycle(specs, parents: parents, placed: Set(order))
        }
        return order
    }

    mutating func reportCycle(_ specs: [ModelSpec], parents: [[Int]], placed: Set<Int>) {
        // Walk parent edges from the first unplaced model until a model repeats: that loop is a cycle.
        guard let start = specs.indices.first(where: { !placed.contains($0) }) else { return }
        var path: [Int] = []
        var current = start
        while !path.contains(current) {
            path.append(current)
            guard let next = parents[current].first(where: { !placed.contains($0) }) else { return }
            current = next
        }
        var cycle = Array(path[path.firstIndex(of: current)!...])
        // Start the cycle at its first-declared model, so the message does not depend on the walk.
        let first = cycle.min()!
        let rotation = cycle.firstIndex(of: first)!
        cycle = Array(cycle[rotation...] + cycle[..<rotation])
        let names = (cycle + [cycle[0]]).map { specs[$0].name.value }
        let nextModel = specs[cycle.count > 1 ? cycle[1] : cycle[0]].name.value
        let edge = specs[first].relationships.first {
            $0.kind == .belongsTo && !$0.isOptional && $0.target.value == nextModel
        }
        diagnostics.error(
            "required belongsTo relationships form a cycle: \(names.joined(separator: " -> ")); no record of these "
                + "models could be created first; make one of them 'optional: true'",
            at: edge?.name.location ?? specs[first].name.location)
    }
}
