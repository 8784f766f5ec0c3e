import Foundation
import ModelSyncGenerator

// The checks of the conformance kit, one function per check and model: each sends its requests,
// compares the answers with Docs/Protocol.md, and returns what it saw and what to fix.
extension ConformanceRunner {
    func checkErrorsAreJSON() async throws -> ConformanceResult {
        guard let model = kit.models.first else {
            return ConformanceResult(check: .errorsAreJSON, model: nil, outcome: .skipped, observed: "no model")
        }
        let missing = try await http.send("GET", itemPath(model, id: missingID(model)), token: kit.token)
        let malformed = try await http.send(
            "POST", collectionPath(model), rawBody: Data("{not json".utf8), token: kit.token,
            headers: ["Idempotency-Key": newKey()])
        var problems: [String] = []
        if missing.isSuccess {
            problems.append("\(missing.request) of an unknown ID answered \(missing.summary), not 404")
        } else if !missing.isJSONError {
            problems.append("\(missing.request) answered \(missing.summary)")
        }
        if malformed.isSuccess {
            problems.append("POST \(collectionPath(model)) with a body that is not JSON answered \(malformed.summary)")
            if let id = malformed.object?["id"]?.idText {
                created.append(CreatedRecord(model: model, id: id, token: kit.token))
            }
        } else if !malformed.isJSONError {
            problems.append(
                "POST \(collectionPath(model)) with a body that is not JSON answered \(malformed.summary)")
        } else if malformed.status >= 500 {
            problems.append(
                "POST \(collectionPath(model)) with a body that is not JSON answered \(malformed.status) (a server "
                    + "error, which clients retry forever) instead of 400")
        }
        guard problems.isEmpty else {
            return ConformanceResult(
                check: .errorsAreJSON, model: nil, outcome: .failed, observed: problems.joined(separator: "; "),
                fix:
                    "answer every error with a JSON body {\"error\": \"what is wrong\"} (Content-Type: "
                    + "application/json), 404 for an unknown ID and 400 for a body that is not JSON: the client "
                    + "shows the message to the app and decides from the status whether to retry")
        }
        return ConformanceResult(
            check: .errorsAreJSON, model: nil, outcome: .passed,
            observed:
                "\(missing.request) answered \(missing.status) and a body that is not JSON answered "
                + "\(malformed.status), both as JSON with a message")
    }

    func checkIDType(_ model: SpecModel) async throws -> ConformanceResult {
        let (body, clientID) = try await sampleBody(model, token: kit.token)
        let answer = try await http.send(
            "POST", collectionPath(model), json: .object(body), token: kit.token, headers: ["Idempotency-Key": newKey()]
        )
        guard answer.isSuccess, let object = answer.object else {
            throw refusedSample(model, answer)
        }
        guard let idValue = object["id"], let id = idValue.idText else {
            throw CheckFailure(
                observed: "POST \(collectionPath(model)) answered \(answer.summary) without an \"id\"",
                fix: "answer a create with the stored record, including its id")
        }
        created.append(CreatedRecord(model: model, id: id, token: kit.token))
        var problems: [String] = []
        let hasSpecType: Bool
        switch (model.idType, idValue) {
        case (.int, .integer), (.string, .string): hasSpecType = true
        default: hasSpecType = false
        }
        if !hasSpecType {
            problems.append(
                "POST \(collectionPath(model)) answered the id \(idValue) (\(idValue.kind)); the spec says "
                    + "idType: \(model.idType.rawValue), so it must be \(model.idType == .int ? "an integer" : "a string")"
            )
        }
        if let clientID, id != clientID {
            problems.append(
                "the server replaced the client's id '\(clientID)' with '\(id)' (the spec says idGeneration: client)")
        }
        let read = try await http.send("GET", itemPath(model, id: id), token: kit.token)
        if !read.isSuccess {
            problems.append("GET \(itemPath(model, id: id)) of the record just created answered \(read.summary)")
        } else if read.object?["id"] != idValue {
            problems.append(
                "GET \(itemPath(model, id: id)) answered \(read.summary), not the record with id \(idValue)")
        }
        guard problems.isEmpty else {
            return ConformanceResult(
                check: .idType, model: model.name, outcome: .failed, observed: problems.joined(separator: "; "),
                fix:
                    model.idGeneration == .server
                    ? "make the id on the server (\(model.idType == .int ? "bigserial" : "text")) and send it as a JSON "
                        + "\(model.idType == .int ? "integer" : "string"); serve GET {path}/{id}"
                    : "store the id the client sends (idGeneration: client) as a JSON string and serve GET {path}/{id}")
        }
        let how = clientID != nil ? "kept the client's id" : "made the id"
        return ConformanceResult(
            check: .idType, model: model.name, outcome: .passed,
            observed: "POST \(collectionPath(model)) \(how) \(idValue) (\(idValue.kind)); GET of it answered the record"
        )
    }

    func checkIdempotentCreate(_ model: SpecModel) async throws -> ConformanceResult {
        let key = newKey()
        let (body, _) = try await sampleBody(model, token: kit.token)
        let path = collectionPath(model)
        let first = try await http.send(
            "POST", path, json: .object(body), token: kit.token, headers: ["Idempotency-Key": key])
        guard first.isSuccess, let firstID = first.object?["id"]?.idText else { throw refusedSample(model, first) }
        created.append(CreatedRecord(model: model, id: firstID, token: kit.token))
        let fix = "store the key with the first answer and return that answer for a repeat"
        let repeated = try await http.send(
            "POST", path, json: .object(body), token: kit.token, headers: ["Idempotency-Key": key])
        guard repeated.isSuccess else {
            return ConformanceResult(
                check: .idempotentCreate, model: model.name, outcome: .failed,
                observed:
                    "POST \(path) with the same Idempotency-Key and body twice: the repeat answered "
                    + "\(repeated.summary); a client whose first answer was lost sees its create fail",
                fix: fix + " (with its 2xx status)")
        }
        let repeatedID = repeated.object?["id"]?.idText
        if let repeatedID, repeatedID != firstID {
            created.append(CreatedRecord(model: model, id: repeatedID, token: kit.token))
            return ConformanceResult(
                check: .idempotentCreate, model: model.name, outcome: .failed,
                observed:
                    "POST \(path) with the same Idempotency-Key twice created two records (ids \(firstID) and "
                    + "\(repeatedID)); a client whose create answer was lost makes a duplicate on retry",
                fix: fix)
        }
        guard repeatedID == firstID else {
            return ConformanceResult(
                check: .idempotentCreate, model: model.name, outcome: .failed,
                observed: "the repeat of POST \(path) answered \(repeated.summary), without the record's id",
                fix: fix)
        }
        // The same key with another body: a client bug (or two clients sharing keys) must not pass silently.
        let other = variation(of: body, model: model)
        if other == body {
            return ConformanceResult(
                check: .idempotentCreate, model: model.name, outcome: .passed,
                observed:
                    "the same key and body twice returned \(model.tableName) \(firstID) both times (the model has no "
                    + "field the kit can vary to try the key with another body)")
        }
        let reused = try await http.send(
            "POST", path, json: .object(other), token: kit.token, headers: ["Idempotency-Key": key])
        let reuseFix =
            "keep a hash of the body with the key, and answer 422 when a key comes back with another body"
        if reused.isSuccess {
            let reusedID = reused.object?["id"]?.idText
            if let reusedID, reusedID != firstID {
                created.append(CreatedRecord(model: model, id: reusedID, token: kit.token))
                return ConformanceResult(
                    check: .idempotentCreate, model: model.name, outcome: .failed,
                    observed:
                        "POST \(path) with a used Idempotency-Key and another body created a new record "
                        + "(\(reusedID), the key's record is \(firstID))",
                    fix: reuseFix)
            }
            return ConformanceResult(
                check: .idempotentCreate, model: model.name, outcome: .failed,
                observed:
                    "POST \(path) with a used Idempotency-Key and another body answered \(reused.status) with the "
                    + "first record: a client that reuses a key by mistake loses its second create without an error",
                fix: reuseFix)
        }
        if reused.status >= 500 || !reused.isJSONError {
            return ConformanceResult(
                check: .idempotentCreate, model: model.name, outcome: .failed,
                observed: "POST \(path) with a used Idempotency-Key and another body answered \(reused.summary)",
                fix: reuseFix + ", as JSON")
        }
        let outcome: ConformanceResult.Outcome = reused.status == 422 ? .passed : .warning
        return ConformanceResult(
            check: .idempotentCreate, model: model.name, outcome: outcome,
            observed:
                "the same key and body twice returned \(model.tableName) \(firstID) both times; the same key with "
                + "another body got \(reused.status)",
            fix: outcome == .warning ? "answer 422 (the protocol's status for a key reused with another body)" : nil)
    }

    func checkForeignKey(_ model: SpecModel) async throws -> ConformanceResult {
        guard let foreignKey = model.foreignKeys.first(where: { !$0.isOptional }) ?? model.foreignKeys.first,
            let parent = modelsByName[foreignKey.targetModel]
        else {
            return ConformanceResult(
                check: .foreignKey, model: model.name, outcome: .skipped, observed: "the model has no belongsTo")
        }
        var (body, _) = try await sampleBody(model, token: kit.token)
        let missing = missingID(parent)
        body[foreignKey.wireKey] = wireID(parent, missing)
        let path = collectionPath(model)
        let answer = try await http.send(
            "POST", path, json: .object(body), token: kit.token, headers: ["Idempotency-Key": newKey()])
        let sent = "POST \(path) with \(foreignKey.wireKey): \(wireID(parent, missing)) (no such \(parent.name))"
        let fix =
            "enforce the foreign key (in the database) and answer 422 with {\"error\": \"'\(foreignKey.wireKey)' "
            + "references a missing \(parent.tableName)\"}"
        if answer.isSuccess {
            if let id = answer.object?["id"]?.idText {
                created.append(CreatedRecord(model: model, id: id, token: kit.token))
            }
            return ConformanceResult(
                check: .foreignKey, model: model.name, outcome: .failed,
                observed:
                    "\(sent) was stored (\(answer.status)): a dangling reference that clients cannot pull",
                fix: fix)
        }
        if answer.status >= 500 {
            return ConformanceResult(
                check: .foreignKey, model: model.name, outcome: .failed,
                observed:
                    "\(sent) answered \(answer.summary): clients retry a 5xx forever instead of reporting the "
                    + "failed change",
                fix: fix)
        }
        guard answer.isJSONError else {
            return ConformanceResult(
                check: .foreignKey, model: model.name, outcome: .failed,
                observed: "\(sent) answered \(answer.summary), not a JSON error: the app gets no readable message",
                fix: fix)
        }
        let message = answer.errorMessage ?? ""
        let namesField = message.contains(foreignKey.wireKey) || message.contains(foreignKey.column)
        if !namesField || answer.status != 422 {
            var notes: [String] = []
            if answer.status != 422 { notes.append("the protocol's status is 422") }
            if !namesField { notes.append("the message does not name the field '\(foreignKey.wireKey)'") }
            return ConformanceResult(
                check: .foreignKey, model: model.name, outcome: .warning,
                observed: "\(sent) answered \(answer.summary): \(notes.joined(separator: "; "))", fix: fix)
        }
        return ConformanceResult(
            check: .foreignKey, model: model.name, outcome: .passed, observed: "\(sent) answered \(answer.summary)")
    }

    func checkUnique(_ model: SpecModel) async throws -> ConformanceResult {
        guard let field = model.fields.first(where: { $0.isUnique && $0.referencedModel == nil }) else {
            return ConformanceResult(
                check: .unique, model: model.name, outcome: .skipped, observed: "the model has no unique field")
        }
        let (body, _) = try await sampleBody(model, token: kit.token)
        let path = collectionPath(model)
        let first = try await http.send(
            "POST", path, json: .object(body), token: kit.token, headers: ["Idempotency-Key": newKey()])
        guard first.isSuccess, let firstID = first.object?["id"]?.idText else { throw refusedSample(model, first) }
        created.append(CreatedRecord(model: model, id: firstID, token: kit.token))
        var second = try await sampleBody(model, token: kit.token).body
        second[field.wireKey] = body[field.wireKey]
        let answer = try await http.send(
            "POST", path, json: .object(second), token: kit.token, headers: ["Idempotency-Key": newKey()])
        let sent = "a second POST \(path) with \(field.wireKey): \(body[field.wireKey] ?? .null)"
        let fix =
            "declare the column UNIQUE and answer a violation with 422 {\"error\": \"'\(field.wireKey)' must be unique\"}"
        if answer.isSuccess {
            if let id = answer.object?["id"]?.idText {
                created.append(CreatedRecord(model: model, id: id, token: kit.token))
            }
            return ConformanceResult(
                check: .unique, model: model.name, outcome: .failed,
                observed: "\(sent) was stored too (\(answer.status)): two records share a unique value", fix: fix)
        }
        if answer.status >= 500 || !answer.isJSONError {
            return ConformanceResult(
                check: .unique, model: model.name, outcome: .failed,
                observed:
                    "\(sent) answered \(answer.summary)\(answer.status >= 500 ? ": clients retry a 5xx forever" : "")",
                fix: fix)
        }
        let message = answer.errorMessage ?? ""
        let namesField = message.contains(field.wireKey) || message.contains(field.name)
        guard answer.status == 422, namesField else {
            var notes: [String] = []
            if answer.status != 422 { notes.append("the protocol's status is 422") }
            if !namesField { notes.append("the message does not name the field '\(field.wireKey)'") }
            return ConformanceResult(
                check: .unique, model: model.name, outcome: .warning,
                observed: "\(sent) answered \(answer.summary): \(notes.joined(separator: "; "))", fix: fix)
        }
        return ConformanceResult(
            check: .unique, model: model.name, outcome: .passed, observed: "\(sent) answered \(answer.summary)")
    }

    func checkUpdateMissing(_ model: SpecModel) async throws -> ConformanceResult {
        let missing = missingID(model)
        var (body, _) = try await sampleBody(model, token: kit.token)
        body["id"] = wireID(model, missing)
        let path = itemPath(model, id: missing)
        let answer = try await http.send(
            "PUT", path, json: .object(body), token: kit.token, headers: ["Idempotency-Key": newKey()])
        let fix =
            "answer 404 when the record does not exist (or was deleted); create only through POST, "
            + "so that an update never brings back a record another device deleted"
        if answer.isSuccess {
            created.append(CreatedRecord(model: model, id: answer.object?["id"]?.idText ?? missing, token: kit.token))
            return ConformanceResult(
                check: .updateMissing, model: model.name, outcome: .failed,
                observed:
                    "PUT \(path) of an unknown ID answered \(answer.status) and created the record (a PUT that "
                    + "re-creates)",
                fix: fix)
        }
        if answer.status == 404 || answer.status == 410 {
            return ConformanceResult(
                check: .updateMissing, model: model.name, outcome: .passed,
                observed: "PUT \(path) of an unknown ID answered \(answer.status)")
        }
        if answer.status >= 500 || !answer.isJSONError {
            return ConformanceResult(
                check: .updateMissing, model: model.name, outcome: .failed,
                observed: "PUT \(path) of an unknown ID answered \(answer.summary)", fix: fix)
        }
        return ConformanceResult(
            check: .updateMissing, model: model.name, outcome: .warning,
            observed: "PUT \(path) of an unknown ID answered \(answer.summary), not 404", fix: fix)
    }

    func checkDeleteTombstone(_ model: SpecModel) async throws -> ConformanceResult {
        let start = try await pageToEnd(model, from: nil, token: kit.token)
        guard let cursor = start.cursor else { throw noCursor(model) }
        let (id, _) = try await createRecord(model, token: kit.token)
        let path = itemPath(model, id: id)
        let deleted = try await http.send("DELETE", path, token: kit.token)
        guard deleted.isSuccess else {
            return ConformanceResult(
                check: .deleteTombstone, model: model.name, outcome: .failed,
                observed: "DELETE \(path) of a record just created answered \(deleted.summary)",
                fix: "delete the record and answer 2xx")
        }
        markDeleted(model, id)
        let after = try await pageToEnd(model, from: cursor, token: kit.token)
        let entries = after.entries(for: id)
        let fix =
            "keep a tombstone (the id, a deleted flag and a change sequence) and list it after the cursor as "
            + "{\"id\": …, \"deleted\": true}: without it, clients that pulled the record keep it forever"
        guard let last = entries.last else {
            return ConformanceResult(
                check: .deleteTombstone, model: model.name, outcome: .failed,
                observed:
                    "after DELETE \(path), the listing from the cursor before the create (\(cursor)) does not "
                    + "mention \(model.tableName) \(id) at all", fix: fix)
        }
        guard last["deleted"] == .bool(true) else {
            return ConformanceResult(
                check: .deleteTombstone, model: model.name, outcome: .failed,
                observed:
                    "after DELETE \(path), the listing from cursor \(cursor) shows \(model.tableName) \(id) "
                    + "as live (\(WireJSON.object(last))), not as {\"id\": …, \"deleted\": true}", fix: fix)
        }
        let missing = itemPath(model, id: missingID(model))
        let again = try await http.send("DELETE", missing, token: kit.token)
        if !(again.isSuccess || again.status == 404 || again.status == 410) {
            return ConformanceResult(
                check: .deleteTombstone, model: model.name, outcome: .failed,
                observed:
                    "the tombstone is listed, but DELETE \(missing) of an unknown ID answered \(again.summary): "
                    + "a client whose delete answer was lost retries it and must see it done",
                fix: "answer a delete of an unknown or deleted record with 404, 410 or 2xx")
        }
        return ConformanceResult(
            check: .deleteTombstone, model: model.name, outcome: .passed,
            observed:
                "DELETE answered \(deleted.status), the listing shows {\"id\": \(wireID(model, id)), \"deleted\": true}; "
                + "DELETE of an unknown ID answered \(again.status)")
    }

    func checkCursorListing(_ model: SpecModel) async throws -> ConformanceResult {
        let start = try await pageToEnd(model, from: nil, token: kit.token)
        guard let cursor = start.cursor else { throw noCursor(model) }
        var ids: [String] = []
        var bodies: [String: [String: WireJSON]] = [:]
        for _ in 0..<3 {
            let (id, body) = try await createRecord(model, token: kit.token)
            ids.append(id)
            bodies[id] = body
        }
        let listed = try await pageToEnd(model, from: cursor, token: kit.token)
        let fix =
            "list changes in commit order after the cursor (a change sequence assigned when the change becomes "
            + "visible), and answer next_cursor = the last change listed"
        let unseen = ids.filter { listed.entries(for: $0).isEmpty }
        let twice = ids.filter { listed.entries(for: $0).count > 1 }
        if !unseen.isEmpty || !twice.isEmpty {
            var problems: [String] = []
            if !unseen.isEmpty {
                problems.append(
                    "paging from cursor \(cursor) did not list \(model.tableName) \(unseen.joined(separator: ", ")) "
                        + "created after it")
            }
            if !twice.isEmpty {
                problems.append("\(model.tableName) \(twice.joined(separator: ", ")) listed more than once")
            }
            return ConformanceResult(
                check: .cursorListing, model: model.name, outcome: .failed,
                observed: problems.joined(separator: "; ") + " (\(listed.pages) pages)", fix: fix)
        }
        guard let end = listed.cursor else { throw noCursor(model) }
        let beyond = try await http.send("GET", listPath(model, cursor: end), token: kit.token)
        let repeatedIDs = try listedItems(beyond, model: model).compactMap { $0["id"]?.idText }.filter(ids.contains)
        if !repeatedIDs.isEmpty {
            return ConformanceResult(
                check: .cursorListing, model: model.name, outcome: .failed,
                observed:
                    "GET \(listPath(model, cursor: end)) (the cursor after the last page) listed "
                    + "\(model.tableName) \(repeatedIDs.joined(separator: ", ")) again", fix: fix)
        }
        // A change after the cursor: an update of the first record and one more create.
        var update = variation(of: bodies[ids[0]]!, model: model)
        update["id"] = wireID(model, ids[0])
        let updated = try await http.send(
            "PUT", itemPath(model, id: ids[0]), json: .object(update), token: kit.token,
            headers: ["Idempotency-Key": newKey()])
        let (extra, _) = try await createRecord(model, token: kit.token)
        let later = try await pageToEnd(model, from: end, token: kit.token)
        var missing: [String] = []
        if updated.isSuccess, later.entries(for: ids[0]).isEmpty {
            missing.append("the update of \(model.tableName) \(ids[0])")
        }
        if later.entries(for: extra).isEmpty { missing.append("the create of \(model.tableName) \(extra)") }
        guard missing.isEmpty else {
            return ConformanceResult(
                check: .cursorListing, model: model.name, outcome: .failed,
                observed:
                    "paging from cursor \(end) did not list \(missing.joined(separator: " and ")), made after it: "
                    + "clients that synced up to that cursor never see the change", fix: fix)
        }
        let updateNote =
            updated.isSuccess ? "an update and a create" : "a create (the update answered \(updated.status))"
        return ConformanceResult(
            check: .cursorListing, model: model.name, outcome: .passed,
            observed:
                "3 creates listed once each after cursor \(cursor); the cursor after the last page listed none "
                + "again; \(updateNote) after it were listed")
    }

    func checkStaleUpdate(_ model: SpecModel) async throws -> ConformanceResult {
        let (id, body) = try await createRecord(model, token: kit.token)
        let path = itemPath(model, id: id)
        let read = try await http.send("GET", path, token: kit.token)
        guard let firstVersion = read.object?["_version"], firstVersion != .null else {
            return ConformanceResult(
                check: .staleUpdate, model: model.name, outcome: .notSupported,
                observed:
                    "not supported: updates are last-writer-wins (GET \(path) answered no `_version`); a late "
                    + "or repeated update can overwrite a newer one. Add `_version` to records and honour If-Match "
                    + "to get conflicts handed to the client's ConflictPolicy")
        }
        var update = body
        update["id"] = wireID(model, id)
        let fresh = try await http.send(
            "PUT", path, json: .object(update), token: kit.token,
            headers: ["Idempotency-Key": newKey(), "If-Match": etag(firstVersion)])
        let fix =
            "compare If-Match with the record's _version and answer 409 {\"error\": …, \"current\": <the "
            + "server's record, with its _version>} when they differ; give every change a new _version"
        guard fresh.isSuccess, let secondVersion = fresh.object?["_version"] else {
            return ConformanceResult(
                check: .staleUpdate, model: model.name, outcome: .failed,
                observed:
                    "PUT \(path) with If-Match: \(etag(firstVersion)) (the current version) answered "
                    + "\(fresh.summary)", fix: fix)
        }
        guard secondVersion != firstVersion else {
            return ConformanceResult(
                check: .staleUpdate, model: model.name, outcome: .failed,
                observed: "PUT \(path) answered the same _version \(firstVersion) as before the update", fix: fix)
        }
        let stale = try await http.send(
            "PUT", path, json: .object(update), token: kit.token,
            headers: ["Idempotency-Key": newKey(), "If-Match": etag(firstVersion)])
        let sent = "PUT \(path) with If-Match: \(etag(firstVersion)) while the record is at \(secondVersion)"
        guard stale.status == 409 else {
            return ConformanceResult(
                check: .staleUpdate, model: model.name, outcome: .failed,
                observed: "\(sent) answered \(stale.summary), not 409: the stale change overwrote a newer one",
                fix: fix)
        }
        guard let current = stale.object?["current"]?.objectValue, current["_version"] == secondVersion else {
            return ConformanceResult(
                check: .staleUpdate, model: model.name, outcome: .failed,
                observed:
                    "\(sent) answered 409 without the server's copy at version \(secondVersion) under \"current\" "
                    + "(\(stale.summary)): the client cannot hand it to its ConflictPolicy", fix: fix)
        }
        return ConformanceResult(
            check: .staleUpdate, model: model.name, outcome: .passed,
            observed: "\(sent) answered 409 with the server's copy (_version \(secondVersion)) under \"current\"")
    }

    func checkTenantIsolation(_ model: SpecModel) async throws -> ConformanceResult {
        let other = kit.secondTenantToken
        let (id, _) = try await createRecord(model, token: kit.token)
        let path = itemPath(model, id: id)
        let missingPath = itemPath(model, id: missingID(model))
        var leaks: [String] = []
        var differences: [String] = []
        let fix =
            "scope every statement by the tenant of the token (reads, writes and foreign-key lookups), and "
            + "answer another tenant's ID exactly as a missing one (404)"

        let read = try await http.send("GET", path, token: other)
        let readMissing = try await http.send("GET", missingPath, token: other)
        if read.isSuccess {
            leaks.append("tenant B read tenant A's \(model.tableName) \(id) (GET answered \(read.status))")
        }
        if read.status != readMissing.status {
            differences.append("GET answers \(read.status) for A's record but \(readMissing.status) for a missing one")
        }
        let listing = try await pageToEnd(model, from: nil, token: other)
        if !listing.entries(for: id).isEmpty {
            leaks.append("tenant B's listing of \(collectionPath(model)) shows tenant A's \(model.tableName) \(id)")
        }
        // References: a child of tenant B pointing at tenant A's record must fail like a missing parent.
        for child in kit.models {
            for foreignKey in child.foreignKeys where foreignKey.targetModel == model.name {
                var childBody = try await sampleBody(child, token: other).body
                childBody[foreignKey.wireKey] = wireID(model, id)
                let answer = try await http.send(
                    "POST", collectionPath(child), json: .object(childBody), token: other,
                    headers: ["Idempotency-Key": newKey()])
                if answer.isSuccess {
                    if let childID = answer.object?["id"]?.idText {
                        created.append(CreatedRecord(model: child, id: childID, token: other))
                    }
                    leaks.append(
                        "tenant B created a \(child.name) whose \(foreignKey.wireKey) references tenant A's "
                            + "\(model.tableName) \(id)")
                }
            }
        }
        // Writes last: a leaking server may change or delete the record.
        let before = try await http.send("GET", path, token: kit.token).object
        var update = try await sampleBody(model, token: other).body
        update["id"] = wireID(model, id)
        let write = try await http.send(
            "PUT", path, json: .object(update), token: other, headers: ["Idempotency-Key": newKey()])
        if write.isSuccess {
            leaks.append("tenant B updated tenant A's \(model.tableName) \(id) (PUT answered \(write.status))")
        }
        let remove = try await http.send("DELETE", path, token: other)
        let removeMissing = try await http.send("DELETE", missingPath, token: other)
        if remove.status != removeMissing.status {
            differences.append(
                "DELETE answers \(remove.status) for A's record but \(removeMissing.status) for a missing one")
        }
        let still = try await http.send("GET", path, token: kit.token)
        if !still.isSuccess {
            leaks.append("tenant B's DELETE removed tenant A's \(model.tableName) \(id) (A now gets \(still.status))")
            markDeleted(model, id)
        } else if !write.isSuccess, let before, let after = still.object, before != after {
            let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
            leaks.append(
                "tenant B's refused PUT still changed tenant A's \(model.tableName) \(id) "
                    + "(\(changed.joined(separator: ", ")))")
        }
        if !leaks.isEmpty {
            return ConformanceResult(
                check: .tenantIsolation, model: model.name, outcome: .failed,
                observed: leaks.joined(separator: "; "), fix: fix)
        }
        if !differences.isEmpty {
            return ConformanceResult(
                check: .tenantIsolation, model: model.name, outcome: .failed,
                observed:
                    "tenant B can tell that tenant A's \(model.tableName) \(id) exists: "
                    + differences.joined(separator: "; "), fix: fix)
        }
        return ConformanceResult(
            check: .tenantIsolation, model: model.name, outcome: .passed,
            observed:
                "tenant B's GET, PUT and DELETE of tenant A's record answered \(read.status), \(write.status) and "
                + "\(remove.status), as for a missing one; B's listing and references do not see it")
    }
}
