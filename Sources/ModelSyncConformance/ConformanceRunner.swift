import Foundation
import ModelSyncGenerator

/// A check that cannot go on: what was seen, and what to change.
struct CheckFailure: Error {
    var observed: String
    var fix: String
}

/// One record the kit created, to delete at the end.
struct CreatedRecord: Sendable {
    var model: SpecModel
    var id: String
    var token: String?
    /// Deleted by a check already (its tombstone is the point).
    var deleted = false
}

/// A listing paged to its end.
struct Listing: Sendable {
    /// Every item of every page, in order.
    var items: [[String: WireJSON]]
    /// The cursor after the last page (`nil` when the server gave none).
    var cursor: String?
    var pages: Int

    /// The items about record `id`.
    func entries(for id: String) -> [[String: WireJSON]] { items.filter { $0["id"]?.idText == id } }
}

/// Runs the checks of one ``ConformanceKit`` run, in order, and keeps what they created.
actor ConformanceRunner {
    let kit: ConformanceKit
    let http: ConformanceHTTP
    /// Marks this run's sample values, so that two runs never collide on unique fields.
    let runTag: String
    /// A base for integer sample values, different in every run.
    let integerBase: Int64
    private var counter = 0
    var results: [ConformanceResult] = []
    var created: [CreatedRecord] = []
    /// One parent per model and tenant, shared by the records that need one.
    var sharedParents: [String: String] = [:]
    let modelsByName: [String: SpecModel]

    init(kit: ConformanceKit) {
        self.kit = kit
        http = ConformanceHTTP(baseURL: kit.baseURL, timeout: kit.timeout)
        runTag = String(UUID().uuidString.lowercased().prefix(8))
        integerBase = Int64.random(in: 1_000...9_000) * 1_000_000
        modelsByName = Dictionary(kit.models.map { ($0.name, $0) }) { first, _ in first }
    }

    func run() async -> ConformanceReport {
        if let first = kit.models.first {
            do {
                _ = try await http.send("GET", collectionPath(first), token: kit.token)
            } catch {
                var report = ConformanceReport(baseURL: kit.baseURL, results: [], deletedRecords: 0, leftOnServer: [])
                report.connectionFailure = "the server did not answer (\(error))"
                return report
            }
        }
        await runCheck(.errorsAreJSON, model: nil) { try await self.checkErrorsAreJSON() }
        for check in ConformanceCheck.allCases where check != .errorsAreJSON && !Self.serverChecks.contains(check) {
            if check == .tenantIsolation, kit.secondTenantToken == nil {
                results.append(
                    ConformanceResult(
                        check: check, model: nil, outcome: .skipped,
                        observed: "not run: give a second tenant's token (--second-tenant-token) to check it"))
                continue
            }
            for model in kit.models {
                await runCheck(check, model: model.name) { try await self.perform(check, on: model) }
            }
        }
        await runCheck(.batchResults, model: nil) { try await self.checkBatchResults() }
        await runCheck(.batchAtomic, model: nil) { try await self.checkBatchAtomic() }
        await runCheck(.batchReplay, model: nil) { try await self.checkBatchReplay() }
        let (deleted, left) = await cleanUp()
        return ConformanceReport(baseURL: kit.baseURL, results: results, deletedRecords: deleted, leftOnServer: left)
    }

    /// The checks made once for the whole server (not per model).
    static let serverChecks: Set<ConformanceCheck> = [.errorsAreJSON, .batchResults, .batchAtomic, .batchReplay]

    func perform(_ check: ConformanceCheck, on model: SpecModel) async throws -> ConformanceResult {
        switch check {
        case .idempotentCreate: return try await checkIdempotentCreate(model)
        case .foreignKey: return try await checkForeignKey(model)
        case .unique: return try await checkUnique(model)
        case .idType: return try await checkIDType(model)
        case .updateMissing: return try await checkUpdateMissing(model)
        case .deleteTombstone: return try await checkDeleteTombstone(model)
        case .cursorListing: return try await checkCursorListing(model)
        case .staleUpdate: return try await checkStaleUpdate(model)
        case .tenantIsolation: return try await checkTenantIsolation(model)
        case .errorsAreJSON: return try await checkErrorsAreJSON()
        case .batchResults: return try await checkBatchResults()
        case .batchAtomic: return try await checkBatchAtomic()
        case .batchReplay: return try await checkBatchReplay()
        }
    }

    func runCheck(
        _ check: ConformanceCheck, model: String?, _ body: () async throws -> ConformanceResult
    ) async {
        do {
            results.append(try await body())
        } catch let failure as CheckFailure {
            results.append(
                ConformanceResult(
                    check: check, model: model, outcome: .failed, observed: failure.observed, fix: failure.fix))
        } catch {
            results.append(
                ConformanceResult(
                    check: check, model: model, outcome: .failed, observed: "\(error)",
                    fix: "make sure the server answers every request of the protocol"))
        }
    }

    // MARK: Records

    func nextNumber() -> Int {
        counter += 1
        return counter
    }

    func newKey() -> String { "conformance-\(runTag)-\(UUID().uuidString.lowercased())" }

    /// A sample record of `model`, its required parents created (once per tenant) on the server.
    func sampleBody(_ model: SpecModel, token: String?) async throws -> (
        body: [String: WireJSON], clientID: String?
    ) {
        let number = nextNumber()
        var body: [String: WireJSON] = [:]
        for field in model.fields {
            if let target = field.referencedModel {
                guard !field.isOptional, let parent = modelsByName[target] else {
                    body[field.wireKey] = .null
                    continue
                }
                if parent.name == model.name {
                    body[field.wireKey] = .null
                    continue
                }
                body[field.wireKey] = wireID(parent, try await sharedParent(parent, token: token))
            } else {
                body[field.wireKey] = sampleValue(field, number: number)
            }
        }
        var clientID: String?
        if model.idGeneration == .client {
            let id = newClientID(model)
            body["id"] = wireID(model, id)
            clientID = id
        }
        return (body, clientID)
    }

    /// `body` with every field that is not a foreign key changed (same ID, same parents).
    func variation(of body: [String: WireJSON], model: SpecModel) -> [String: WireJSON] {
        var other = body
        let number = nextNumber()
        for field in model.fields where field.referencedModel == nil {
            if let cases = field.enumCases, let current = body[field.wireKey]?.stringValue,
                let index = cases.firstIndex(of: current)
            {
                other[field.wireKey] = .string(cases[(index + 1) % cases.count])
            } else if case .bool(let flag)? = body[field.wireKey] {
                other[field.wireKey] = .bool(!flag)
            } else {
                other[field.wireKey] = sampleValue(field, number: number)
            }
        }
        return other
    }

    func sampleValue(_ field: SpecModel.Field, number: Int) -> WireJSON {
        let value: WireJSON
        if let cases = field.enumCases, !cases.isEmpty {
            value = .string(cases[number % cases.count])
        } else {
            switch field.type {
            case "Int", "Int64": value = .integer(integerBase + Int64(number))
            case "Double": value = .number(Double(number) + 0.5)
            case "Decimal": value = .number(Double(number) + 0.25)
            case "Bool": value = .bool(number % 2 == 0)
            case "Date":
                let date = Date(timeIntervalSince1970: 1_767_225_600 + Double(number))
                value = .string(ISO8601DateFormatter().string(from: date))
            case "Data": value = .string(Data("conformance \(runTag) \(number)".utf8).base64EncodedString())
            case "UUID": value = .string(UUID().uuidString)
            case "URL": value = .string("https://example.com/conformance/\(runTag)/\(number)")
            default: value = .string("conformance \(runTag) \(number)")
            }
        }
        return field.isArray ? .array([value]) : value
    }

    func newClientID(_ model: SpecModel) -> String {
        let random: String
        switch model.idFormat {
        case "ulid":
            let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
            random = String((0..<26).map { _ in alphabet.randomElement()! })
        case "cuid2":
            let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
            random = "c" + String((0..<23).map { _ in alphabet.randomElement()! })
        default:
            random = UUID().uuidString.lowercased()
        }
        return model.idPrefix + random
    }

    /// An ID no record has: a large integer, or a string no client makes.
    func missingID(_ model: SpecModel) -> String {
        model.idType == .int
            ? String(Int64.random(in: 1_000_000_000_000...9_000_000_000_000))
            : model.idPrefix + "missing-\(runTag)-\(nextNumber())"
    }

    func wireID(_ model: SpecModel, _ id: String) -> WireJSON {
        if model.idType == .int, let number = Int64(id) { return .integer(number) }
        return .string(id)
    }

    /// Creates a sample record and returns its ID and the body sent.
    func createRecord(_ model: SpecModel, token: String?) async throws -> (
        id: String, body: [String: WireJSON]
    ) {
        let (body, _) = try await sampleBody(model, token: token)
        let answer = try await http.send(
            "POST", collectionPath(model), json: .object(body), token: token, headers: ["Idempotency-Key": newKey()])
        guard answer.isSuccess, let id = answer.object?["id"]?.idText else { throw refusedSample(model, answer) }
        created.append(CreatedRecord(model: model, id: id, token: token))
        return (id, body)
    }

    func sharedParent(_ model: SpecModel, token: String?) async throws -> String {
        let key = model.name + "\u{0}" + (token ?? "")
        if let id = sharedParents[key] { return id }
        let (id, _) = try await createRecord(model, token: token)
        sharedParents[key] = id
        return id
    }

    func refusedSample(_ model: SpecModel, _ answer: HTTPAnswer) -> CheckFailure {
        CheckFailure(
            observed:
                "could not create a sample \(model.name) to check with: \(answer.request) answered "
                + "\(answer.summary)",
            fix:
                "accept every record the spec allows (the kit fills each field with a value of its type) and "
                + "answer 2xx with the stored record, including its id")
    }

    func noCursor(_ model: SpecModel) -> CheckFailure {
        CheckFailure(
            observed: "GET \(collectionPath(model)) answered no next_cursor",
            fix:
                "answer listings as {\"data\": [...], \"next_cursor\": \"…\"}; without a cursor every pull "
                + "downloads the whole collection and deletes are never seen")
    }

    func markDeleted(_ model: SpecModel, _ id: String) {
        for index in created.indices where created[index].model.name == model.name && created[index].id == id {
            created[index].deleted = true
        }
    }

    /// Deletes what the kit created, children first; returns how many went and what stayed.
    func cleanUp() async -> (deleted: Int, left: [String]) {
        var deleted = 0
        var left: [String] = []
        var seen: Set<String> = []
        for record in created.reversed() {
            let key = record.model.name + "\u{0}" + record.id
            guard seen.insert(key).inserted else { continue }
            if record.deleted {
                deleted += 1
                continue
            }
            let path = itemPath(record.model, id: record.id)
            do {
                let answer = try await http.send("DELETE", path, token: record.token)
                if answer.isSuccess || answer.status == 404 || answer.status == 410 {
                    deleted += 1
                } else {
                    left.append("\(record.model.tableName) \(record.id): DELETE \(path) answered \(answer.summary)")
                }
            } catch {
                left.append("\(record.model.tableName) \(record.id): \(error)")
            }
        }
        return (deleted, left)
    }

    // MARK: Paths and listings

    func collectionPath(_ model: SpecModel) -> String {
        model.path.hasSuffix("/") ? String(model.path.dropLast()) : model.path
    }

    func itemPath(_ model: SpecModel, id: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return collectionPath(model) + "/" + (id.addingPercentEncoding(withAllowedCharacters: allowed) ?? id)
    }

    func listPath(_ model: SpecModel, cursor: String?) -> String {
        guard let cursor else { return collectionPath(model) }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return collectionPath(model) + "?cursor="
            + (cursor.addingPercentEncoding(withAllowedCharacters: allowed) ?? cursor)
    }

    func listedItems(_ answer: HTTPAnswer, model: SpecModel) throws -> [[String: WireJSON]] {
        guard answer.isSuccess else {
            throw CheckFailure(
                observed: "\(answer.request) answered \(answer.summary)",
                fix: "serve GET {path}?cursor=… as the protocol describes")
        }
        guard let object = answer.object, let data = object["data"]?.arrayValue else {
            throw CheckFailure(
                observed: "\(answer.request) answered \(answer.summary), not {\"data\": [...], \"next_cursor\": …}",
                fix: "answer listings as {\"data\": [records], \"next_cursor\": \"…\"}")
        }
        return data.compactMap(\.objectValue)
    }

    /// Pages `GET {path}?cursor=` from `cursor` until a page is empty or the cursor stays, as the client does.
    func pageToEnd(_ model: SpecModel, from cursor: String?, token: String?) async throws -> Listing {
        var listing = Listing(items: [], cursor: cursor, pages: 0)
        var seen: Set<String> = []
        while listing.pages < 100_000 {
            let answer = try await http.send("GET", listPath(model, cursor: listing.cursor), token: token)
            let items = try listedItems(answer, model: model)
            listing.pages += 1
            listing.items += items
            let next = answer.object?["next_cursor"]?.idText
            if items.isEmpty || next == nil || next == listing.cursor {
                if let next { listing.cursor = next }
                return listing
            }
            if !seen.insert(next!).inserted {
                throw CheckFailure(
                    observed: "paging \(collectionPath(model)) came back to cursor \(next!): the cursors cycle",
                    fix: "make next_cursor advance with every page (the last change listed)")
            }
            listing.cursor = next
        }
        throw CheckFailure(
            observed: "paging \(collectionPath(model)) did not end after 100000 pages",
            fix: "answer an empty page, or the same cursor, once there is nothing more")
    }

    /// `"7"` for If-Match.
    func etag(_ version: WireJSON) -> String { "\"\(version.idText ?? version.description)\"" }
}
