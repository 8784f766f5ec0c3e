import Foundation
import ModelSyncGenerator

// Checks of batches and units (Docs/Protocol.md, "Batches and units"), made once per server when it
// advertises batches at `GET /_modelsync`; `notSupported` otherwise (the client then sends each change
// alone).
extension ConformanceRunner {
    /// What a batch check works with: a parent model whose create the kit can make fail (a body without
    /// its required fields), and a child referencing it when the spec has one.
    struct BatchPlan {
        var batchPath: String
        var parent: SpecModel
        var child: (model: SpecModel, wireKey: String)?
    }

    /// A plan, or the result to report without one.
    enum BatchPlanOutcome {
        case plan(BatchPlan)
        case report(ConformanceResult)
    }

    /// The batch path the server advertises, or the result to report without one.
    func batchPlan(_ check: ConformanceCheck) async throws -> BatchPlanOutcome {
        let answer = try await http.send("GET", "/_modelsync", token: kit.token)
        guard answer.isSuccess, let batch = answer.object?["batch"]?.objectValue,
            let path = batch["path"]?.stringValue
        else {
            return .report(
                ConformanceResult(
                    check: check, model: nil, outcome: .notSupported,
                    observed:
                        "GET /_modelsync answered \(answer.summary), no batch: the client sends each change in a "
                        + "request of its own (units are then not atomic)"))
        }
        // A parent whose empty body the server must refuse: a required field, or a client ID.
        func failable(_ model: SpecModel) -> Bool {
            model.idGeneration == .client || model.fields.contains { !$0.isOptional }
        }
        for model in kit.models where failable(model) {
            for child in kit.models {
                if let key = child.foreignKeys.first(where: { $0.targetModel == model.name && child.name != model.name }
                ) {
                    return .plan(BatchPlan(batchPath: path, parent: model, child: (child, key.wireKey)))
                }
            }
        }
        guard let parent = kit.models.first(where: failable) else {
            return .report(
                ConformanceResult(
                    check: check, model: nil, outcome: .skipped,
                    observed: "no model has a required field or client IDs, so no create can be made to fail"))
        }
        return .plan(BatchPlan(batchPath: path, parent: parent, child: nil))
    }

    /// A create operation of a batch.
    func createOperation(_ model: SpecModel, body: [String: WireJSON], refs: [String: Int] = [:]) -> WireJSON {
        var operation: [String: WireJSON] = [
            "method": .string("POST"), "path": .string(collectionPath(model)), "idempotency_key": .string(newKey()),
            "body": .object(body),
        ]
        if !refs.isEmpty { operation["refs"] = .object(refs.mapValues { .integer(Int64($0)) }) }
        return .object(operation)
    }

    /// The statuses of a batch answer's results, and their bodies; a failure when the answer is not one.
    func batchResults(_ answer: HTTPAnswer, count: Int) throws -> [(status: Int, body: [String: WireJSON]?)] {
        guard answer.status == 200, let results = answer.object?["results"]?.arrayValue else {
            throw CheckFailure(
                observed: "\(answer.request) answered \(answer.summary), not 200 with {\"results\": [...]}",
                fix: "answer a batch 200 with one result per operation: {\"applied\": …, \"results\": [...]}")
        }
        guard results.count == count else {
            throw CheckFailure(
                observed: "\(answer.request) with \(count) operations answered \(results.count) results",
                fix: "answer exactly one result per operation, in order")
        }
        return results.map { result in
            let object = result.objectValue
            let status = object?["status"]?.idText.flatMap { Int($0) } ?? 0
            return (status, object?["body"]?.objectValue)
        }
    }

    /// Remembers the records a batch created, to delete at the end.
    func keepCreated(_ results: [(status: Int, body: [String: WireJSON]?)], models: [SpecModel]) {
        for (result, model) in zip(results, models) where (200..<300).contains(result.status) {
            if let id = result.body?["id"]?.idText {
                created.append(CreatedRecord(model: model, id: id, token: kit.token))
            }
        }
    }

    /// A plain batch: one result per operation, a failed one alone, `424` for what references it.
    func checkBatchResults() async throws -> ConformanceResult {
        let plan: BatchPlan
        switch try await batchPlan(.batchResults) {
        case .plan(let value): plan = value
        case .report(let result): return result
        }
        let parent = plan.parent
        let (valid, _) = try await sampleBody(parent, token: kit.token)
        var operations = [createOperation(parent, body: valid), createOperation(parent, body: [:])]
        var models = [parent, parent]
        var expected = ["2xx", "4xx"]
        if let child = plan.child {
            let (body, _) = try await sampleBody(child.model, token: kit.token)
            operations.append(createOperation(child.model, body: body, refs: [child.wireKey: 1]))
            let (other, _) = try await sampleBody(child.model, token: kit.token)
            operations.append(createOperation(child.model, body: other, refs: [child.wireKey: 0]))
            models += [child.model, child.model]
            expected += ["424", "2xx"]
        }
        let answer = try await http.send(
            "POST", plan.batchPath, json: .object(["atomic": .bool(false), "operations": .array(operations)]),
            token: kit.token)
        let results = try batchResults(answer, count: operations.count)
        keepCreated(results, models: models)
        let statuses = results.map(\.status)
        let sent = "a batch of \(operations.count) creates (\(expected.joined(separator: ", ")) expected)"
        var matches = (200..<300).contains(statuses[0]) && (400..<500).contains(statuses[1])
        if let child = plan.child {
            let parentID = results[0].body?["id"]
            matches =
                matches && statuses[2] == 424 && (200..<300).contains(statuses[3])
                && results[3].body?[child.wireKey]?.idText == parentID?.idText
        }
        guard matches else {
            return ConformanceResult(
                check: .batchResults, model: nil, outcome: .failed,
                observed: "\(sent) answered statuses \(statuses): \(answer.body.count) bytes",
                fix:
                    "apply each operation of a plain batch alone (a savepoint each): a refused one fails alone, one "
                    + "whose refs name a failed create fails with 424, and refs take the ID the create made")
        }
        return ConformanceResult(
            check: .batchResults, model: nil, outcome: .passed, observed: "\(sent) answered statuses \(statuses)")
    }

    /// A unit (`atomic`): all or nothing.
    func checkBatchAtomic() async throws -> ConformanceResult {
        let plan: BatchPlan
        switch try await batchPlan(.batchAtomic) {
        case .plan(let value): plan = value
        case .report(let result): return result
        }
        let parent = plan.parent
        let before = try await pageToEnd(parent, from: nil, token: kit.token)
        let (valid, _) = try await sampleBody(parent, token: kit.token)
        let answer = try await http.send(
            "POST", plan.batchPath,
            json: .object([
                "atomic": .bool(true),
                "operations": .array([createOperation(parent, body: valid), createOperation(parent, body: [:])]),
            ]), token: kit.token, headers: ["Idempotency-Key": newKey()])
        let results = try batchResults(answer, count: 2)
        keepCreated(results, models: [parent, parent])
        let after = try await pageToEnd(parent, from: before.cursor, token: kit.token)
        let newItems = after.items.filter { $0["deleted"] != .bool(true) }
        let statuses = results.map(\.status)
        let sent = "a unit of a valid and an invalid \(parent.name) create"
        guard answer.object?["applied"] == .bool(false), statuses[0] == 424, (400..<500).contains(statuses[1]),
            newItems.isEmpty
        else {
            return ConformanceResult(
                check: .batchAtomic, model: nil, outcome: .failed,
                observed:
                    "\(sent) answered applied \(answer.object?["applied"]?.description ?? "nil"), statuses \(statuses); "
                    + "\(newItems.count) new records listed after it",
                fix:
                    "apply an atomic batch in one transaction: when an operation fails, roll back everything, answer "
                    + "\"applied\": false, its own status for it and 424 for every other operation")
        }
        return ConformanceResult(
            check: .batchAtomic, model: nil, outcome: .passed,
            observed: "\(sent) answered applied false, statuses \(statuses), and nothing was listed after it")
    }

    /// A unit sent again with its key answers the same and applies nothing twice.
    func checkBatchReplay() async throws -> ConformanceResult {
        let plan: BatchPlan
        switch try await batchPlan(.batchReplay) {
        case .plan(let value): plan = value
        case .report(let result): return result
        }
        let parent = plan.parent
        let (valid, _) = try await sampleBody(parent, token: kit.token)
        var operations = [createOperation(parent, body: valid)]
        var models = [parent]
        if let child = plan.child {
            let (body, _) = try await sampleBody(child.model, token: kit.token)
            operations.append(createOperation(child.model, body: body, refs: [child.wireKey: 0]))
            models.append(child.model)
        }
        let unit = WireJSON.object(["atomic": .bool(true), "operations": .array(operations)])
        let key = newKey()
        let before = try await pageToEnd(parent, from: nil, token: kit.token)
        let first = try await http.send(
            "POST", plan.batchPath, json: unit, token: kit.token, headers: ["Idempotency-Key": key])
        let firstResults = try batchResults(first, count: operations.count)
        keepCreated(firstResults, models: models)
        guard first.object?["applied"] == .bool(true) else {
            throw CheckFailure(
                observed: "a unit of valid creates answered \(first.summary)",
                fix: "apply a unit whose operations are all valid and answer \"applied\": true")
        }
        let again = try await http.send(
            "POST", plan.batchPath, json: unit, token: kit.token, headers: ["Idempotency-Key": key])
        let againResults = try batchResults(again, count: operations.count)
        keepCreated(againResults, models: models)
        let after = try await pageToEnd(parent, from: before.cursor, token: kit.token)
        let listed = after.items.filter { $0["deleted"] != .bool(true) }.count
        let sameIDs = zip(firstResults, againResults).allSatisfy { $0.body?["id"] == $1.body?["id"] }
        guard again.object?["applied"] == .bool(true), sameIDs, listed == 1 else {
            return ConformanceResult(
                check: .batchReplay, model: nil, outcome: .failed,
                observed:
                    "a unit sent twice with the same Idempotency-Key: the second answer \(again.summary); same IDs: "
                    + "\(sameIDs); \(listed) \(parent.name) records listed after it (1 expected)",
                fix:
                    "store a unit's answer under its Idempotency-Key in the unit's transaction and return it for a "
                    + "repeat: a client whose answer was lost sends the unit again")
        }
        return ConformanceResult(
            check: .batchReplay, model: nil, outcome: .passed,
            observed: "a unit sent twice with its key answered the same records, and one \(parent.name) was created")
    }
}
