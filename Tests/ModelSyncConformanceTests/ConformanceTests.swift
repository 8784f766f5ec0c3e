import ChatModels
import Foundation
import ModelSync
import ModelSyncConformance
import ModelSyncGenerator
import ModelSyncReferenceServer
import ModelSyncTestSupport
import Testing

/// The package's root folder.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

let chatSpec = packageRoot.appendingPathComponent("Tests/Reference/Chat.modelsync.yaml")
let notesSpec = packageRoot.appendingPathComponent("Tests/ModelSyncConformanceTests/Fixtures/Notes.modelsync.yaml")

/// The models of a spec file, as the kit reads them.
func models(of spec: URL) throws -> [SpecModel] {
    try ModelSyncGenerator.models([SpecSource(contentsOf: spec.path)]).models
}

/// The folder of the build products (`.build/debug`), where the test bundle and the executables are.
func buildProducts() -> URL {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    while directory.path.contains(".xctest") { directory = directory.deletingLastPathComponent() }
    return directory
}

/// A reference server of the chat models, started; the caller stops it.
func startChatServer() async throws -> (ReferenceServer, URL) {
    let server = ReferenceServer(models: GeneratedModels.all)
    return (server, try await server.start())
}

/// Runs the kit with the chat spec against `url`.
func checkChat(at url: URL, token: String? = nil, secondTenantToken: String? = nil) async throws
    -> ConformanceReport
{
    let kit = ConformanceKit(
        models: try models(of: chatSpec), baseURL: url, token: token, secondTenantToken: secondTenantToken)
    return await kit.run()
}

/// The observations of one check's failed results, for messages.
func failures(_ report: ConformanceReport) -> String {
    report.results.filter { $0.outcome == .failed }.map { "\($0.check.rawValue) \($0.model ?? ""): \($0.observed)" }
        .joined(separator: "\n")
}

@Suite struct ReferenceServerConformanceTests {
    @Test func theReferenceServerPassesEveryCheckAndIsLeftEmpty() async throws {
        let (server, url) = try await startChatServer()
        defer { Task { await server.stop() } }
        server.setAcceptingBatches(true)
        let report = try await checkChat(at: url)
        #expect(!report.hasFailures, "\(failures(report))")
        #expect(
            report.results.filter { $0.outcome == .warning || $0.outcome == .notSupported }.isEmpty, "\(report.text)")
        for check in ConformanceCheck.allCases where check != .tenantIsolation {
            #expect(report.results(of: check).contains { $0.outcome == .passed }, "\(check) never passed")
        }
        #expect(report.results(of: .tenantIsolation).map(\.outcome) == [.skipped])
        #expect(report.leftOnServer.isEmpty)
        #expect(report.deletedRecords > 0)
        let left = await server.records().filter { !$0.value.isEmpty }
        #expect(left.isEmpty, "the kit left records: \(left)")
    }

    @Test func aServerWithoutIdempotencyFailsOnlyTheIdempotentCreateCheck() async throws {
        let (server, url) = try await startChatServer()
        defer { Task { await server.stop() } }
        await server.setIgnoringIdempotencyKeys(true)
        let report = try await checkChat(at: url)
        #expect(report.failedChecks == [.idempotentCreate], "\(report.text)")
        let thread = try #require(report.results(of: .idempotentCreate).first { $0.model == "Thread" })
        #expect(
            thread.observed.hasPrefix("POST /threads with the same Idempotency-Key twice created two records (ids "))
        #expect(thread.fix == "store the key with the first answer and return that answer for a repeat")
        // A client-ID model: the repeat of the create collides with the record the first one made.
        let user = try #require(report.results(of: .idempotentCreate).first { $0.model == "User" })
        #expect(user.outcome == .failed)
        #expect(user.observed.contains("the repeat answered 409"), "\(user.observed)")
        #expect(report.leftOnServer.isEmpty)
    }

    @Test func aServerAnsweringForeignKeyViolationsWithAnHTML500FailsOnlyTheForeignKeyCheck() async throws {
        let (server, url) = try await startChatServer()
        defer { Task { await server.stop() } }
        let proxy = try ProtocolProxy { request, forward in
            let answer = forward(request, to: url)
            guard request.method == "POST", answer.status == 422, answer.bodyText.contains("references unknown") else {
                return answer
            }
            return ProxiedAnswer(
                status: 500, contentType: "text/html",
                body: Data("<html><body><h1>Internal Server Error</h1><p>IntegrityError</p></body></html>".utf8))
        }
        defer { proxy.stop() }
        let report = try await checkChat(at: proxy.baseURL)
        #expect(report.failedChecks == [.foreignKey], "\(report.text)")
        let message = try #require(report.results(of: .foreignKey).first { $0.model == "Message" })
        #expect(message.outcome == .failed)
        #expect(message.observed.contains("answered 500 text/html \"<html>"), "\(message.observed)")
        #expect(message.observed.contains("clients retry a 5xx forever"))
        #expect(message.fix?.contains("answer 422") == true)
    }

    @Test func aServerWhosePUTRecreatesAMissingRecordFailsOnlyTheUpdateMissingCheck() async throws {
        let (server, url) = try await startChatServer()
        defer { Task { await server.stop() } }
        let proxy = try ProtocolProxy { request, forward in
            let answer = forward(request, to: url)
            guard request.method == "PUT", answer.status == 404 else { return answer }
            // An upsert: the missing record is created from the update's body.
            var create = request
            create.method = "POST"
            create.target = String(request.path[..<request.path.lastIndex(of: "/")!])
            var created = forward(create, to: url)
            if created.status == 201 { created.status = 200 }
            return created
        }
        defer { proxy.stop() }
        let report = try await checkChat(at: proxy.baseURL)
        #expect(report.failedChecks == [.updateMissing], "\(report.text)")
        let thread = try #require(report.results(of: .updateMissing).first { $0.model == "Thread" })
        #expect(thread.observed.contains("of an unknown ID answered 200 and created the record"), "\(thread.observed)")
        #expect(thread.fix?.hasPrefix("answer 404 when the record does not exist") == true)
        #expect(report.leftOnServer.isEmpty)
        let left = await server.records().filter { !$0.value.isEmpty }
        #expect(left.isEmpty, "the records the PUTs created are cleaned up too: \(left)")
    }

    @Test func aServerThatIgnoresIfMatchFailsOnlyTheStaleUpdateCheck() async throws {
        let (server, url) = try await startChatServer()
        defer { Task { await server.stop() } }
        let proxy = try ProtocolProxy { request, forward in
            var request = request
            request.headers["if-match"] = nil
            return forward(request, to: url)
        }
        defer { proxy.stop() }
        let report = try await checkChat(at: proxy.baseURL)
        #expect(report.failedChecks == [.staleUpdate], "\(report.text)")
        let thread = try #require(report.results(of: .staleUpdate).first { $0.model == "Thread" })
        #expect(thread.observed.contains("answered 200"), "\(thread.observed)")
        #expect(thread.observed.contains("not 409: the stale change overwrote a newer one"))
    }

    @Test func aServerWithoutVersionsIsReportedAsLastWriterWinsNotAsAFailure() async throws {
        let (server, url) = try await startChatServer()
        defer { Task { await server.stop() } }
        let proxy = try ProtocolProxy { request, forward in
            var answer = forward(request, to: url)
            var text = answer.bodyText
            for pattern in [#""_version":[0-9]+,"#, #","_version":[0-9]+"#, #""_version":[0-9]+"#] {
                text = text.replacingOccurrences(of: pattern, with: "", options: .regularExpression)
            }
            answer.body = Data(text.utf8)
            return answer
        }
        defer { proxy.stop() }
        let report = try await checkChat(at: proxy.baseURL)
        #expect(!report.hasFailures, "\(report.text)")
        let results = report.results(of: .staleUpdate)
        #expect(results.count == 6)
        #expect(results.allSatisfy { $0.outcome == .notSupported })
        #expect(results.allSatisfy { $0.observed.hasPrefix("not supported: updates are last-writer-wins") })
        #expect(report.text.contains("N/A  stale-update Thread: not supported: updates are last-writer-wins"))
    }
}

@Suite struct ConformanceCleanupTests {
    @Test func recordsTheServerWillNotDeleteAreListedAsLeftBehind() async throws {
        let (server, url) = try await startChatServer()
        defer { Task { await server.stop() } }
        let proxy = try ProtocolProxy { request, forward in
            guard request.method == "DELETE" else { return forward(request, to: url) }
            return ProxiedAnswer(
                status: 405, contentType: "application/json", body: Data(#"{"error":"deletes are disabled"}"#.utf8))
        }
        defer { proxy.stop() }
        let report = try await checkChat(at: proxy.baseURL)
        #expect(report.failedChecks == [.deleteTombstone], "\(report.text)")
        let stored = await server.records().values.reduce(0) { $0 + $1.count }
        #expect(stored > 0)
        #expect(report.leftOnServer.count == stored, "every record still on the server is named")
        #expect(report.text.contains("; left \(stored) on the server:\n  "))
        #expect(
            report.leftOnServer.contains {
                $0.hasPrefix("thread ") && $0.contains(": DELETE /threads/")
                    && $0.hasSuffix(#"answered 405 {"error":"deletes are disabled"}"#)
            }, "\(report.leftOnServer)")
    }

    @Test func aServerThatDoesNotAnswerIsReportedOnceWithWhatToDo() async throws {
        let (server, url) = try await startChatServer()
        await server.stop()
        let report = try await checkChat(at: url)
        #expect(report.hasFailures)
        #expect(report.results.isEmpty)
        let failure = try #require(report.connectionFailure)
        #expect(failure.hasPrefix("the server did not answer (GET /users got no answer: "), "\(failure)")
        #expect(report.text.contains("\nFAIL server: the server did not answer (GET /users got no answer: "))
        #expect(report.text.hasSuffix("\n     fix: start the server, or pass the URL it listens on as --base-url\n"))
    }
}

@Suite struct TenantIsolationConformanceTests {
    /// A server with two tenants, each in a store of its own (a reference server per token), or, with
    /// `leaking`, both tokens on one store.
    private func tenantServer(leaking: Bool) async throws -> (ProtocolProxy, [ReferenceServer]) {
        let (first, firstURL) = try await startChatServer()
        let (second, secondURL) = try await startChatServer()
        let proxy = try ProtocolProxy { request, forward in
            switch request.headers["authorization"] {
            case "Bearer tenant-a"?: return forward(request, to: firstURL)
            case "Bearer tenant-b"?: return forward(request, to: leaking ? firstURL : secondURL)
            default:
                return ProxiedAnswer(
                    status: 401, contentType: "application/json", body: Data(#"{"error":"unknown token"}"#.utf8))
            }
        }
        return (proxy, [first, second])
    }

    @Test func tenantsWithSeparateDataPassTheTenantIsolationCheck() async throws {
        let (proxy, servers) = try await tenantServer(leaking: false)
        defer {
            proxy.stop()
            Task { for server in servers { await server.stop() } }
        }
        let report = try await checkChat(at: proxy.baseURL, token: "tenant-a", secondTenantToken: "tenant-b")
        #expect(!report.hasFailures, "\(failures(report))")
        let results = report.results(of: .tenantIsolation)
        #expect(results.count == 6)
        #expect(results.allSatisfy { $0.outcome == .passed }, "\(report.text)")
        #expect(report.leftOnServer.isEmpty)
        for server in servers {
            let left = await server.records().filter { !$0.value.isEmpty }
            #expect(left.isEmpty, "the kit left records of one tenant: \(left)")
        }
    }

    @Test func tenantsSharingOneStoreFailOnlyTheTenantIsolationCheck() async throws {
        let (proxy, servers) = try await tenantServer(leaking: true)
        defer {
            proxy.stop()
            Task { for server in servers { await server.stop() } }
        }
        let report = try await checkChat(at: proxy.baseURL, token: "tenant-a", secondTenantToken: "tenant-b")
        #expect(report.failedChecks == [.tenantIsolation], "\(report.text)")
        let thread = try #require(report.results(of: .tenantIsolation).first { $0.model == "Thread" })
        #expect(thread.observed.hasPrefix("tenant B read tenant A's thread "), "\(thread.observed)")
        #expect(thread.observed.contains("tenant B created a Message whose thread_id references tenant A's thread"))
        #expect(thread.fix?.hasPrefix("scope every statement by the tenant of the token") == true)
    }
}

@Suite struct ConformanceProcessTests {
    @Test func theCLIPassesAReferenceServerAndExitsWith1ForOneWithoutIdempotency() async throws {
        let modelsync = buildProducts().appendingPathComponent("modelsync").path
        let (server, url) = try await startChatServer()
        defer { Task { await server.stop() } }
        let command = [modelsync, "conformance", "--base-url", url.absoluteString, chatSpec.path]

        let passing = try await runProcess(command)
        #expect(passing.status == 0, "\(passing.output)")
        #expect(
            passing.output.hasPrefix("checking \(url.absoluteString) against the ModelSync sync protocol (version 1)\n")
        )
        #expect(
            passing.output.contains("\nPASS idempotent-create Thread: the same key and body twice returned thread "))
        #expect(passing.output.contains("\nSKIP tenant-isolation: not run: give a second tenant's token"))
        #expect(passing.output.contains("\n42 passed, 0 failed, 0 warnings, 3 not supported, 8 skipped\n"))
        #expect(passing.output.hasSuffix("records the kit created; nothing left\n"))
        #expect(!passing.output.contains("shadows"), "spec warnings are about Swift code, not the server")

        await server.setIgnoringIdempotencyKeys(true)
        let failing = try await runProcess(command)
        #expect(failing.status == 1, "\(failing.output)")
        #expect(
            failing.output.contains(
                "\nFAIL idempotent-create Thread: POST /threads with the same Idempotency-Key twice created two "
                    + "records (ids "), "\(failing.output)")
        #expect(
            failing.output.contains(
                "\n     fix: store the key with the first answer and return that answer for a repeat\n"))
        #expect(failing.output.contains("\nthe server does not conform: idempotent-create (see Docs/Conformance.md)\n"))
    }

    @Test func theCLIRefusesABaseURLThatIsNotHTTP() async throws {
        let modelsync = buildProducts().appendingPathComponent("modelsync").path
        let result = try await runProcess([modelsync, "conformance", "--base-url", "localhost:8080", chatSpec.path])
        #expect(result.status != 0)
        #expect(
            result.output.contains("--base-url 'localhost:8080' is not an http(s) URL such as http://127.0.0.1:8080"))
    }

    @Test func theReferenceServerExecutableServesANotesSpecThatPassesEveryCheck() async throws {
        let executable = buildProducts().appendingPathComponent("modelsync-reference-server")
        let (process, url) = try await startChild(executable, ["--spec", notesSpec.path])
        defer { process.terminate() }
        let kit = ConformanceKit(models: try models(of: notesSpec), baseURL: url)
        let report = await kit.run()
        #expect(!report.hasFailures, "\(report.text)")
        #expect(report.results.filter { $0.outcome == .passed }.count == 15, "\(report.text)")
        // It takes no batches: the batch checks say so, once each.
        for check in [ConformanceCheck.batchResults, .batchAtomic, .batchReplay] {
            #expect(report.results(of: check).map(\.outcome) == [.notSupported], "\(report.text)")
        }
        let ids = report.results(of: .idType).map(\.observed)
        #expect(ids.contains { $0.hasPrefix("POST /api/notebooks made the id ") && $0.contains("(a number)") })
        #expect(ids.contains { $0.hasPrefix("POST /notes kept the client's id \"note_") })
        process.terminate()
        await waitForExit(process)
    }

    @Test func theReferenceServerExecutableReportsASpecErrorWithItsLocation() async throws {
        let executable = buildProducts().appendingPathComponent("modelsync-reference-server").path
        let folder = try makeTemporaryDirectory("bad-spec")
        defer { try? FileManager.default.removeItem(at: folder) }
        let spec = folder.appendingPathComponent("Bad.modelsync.yaml")
        try "version: 1\nmodels:\n  Note:\n    fields: { title: Strin }\n".write(
            to: spec, atomically: true, encoding: .utf8)
        let result = try await runProcess([executable, "--spec", spec.path])
        #expect(result.status == 1)
        #expect(result.output == "\(spec.path):4:22: error: unknown type 'Strin'; did you mean 'String'?\n")

        let help = try await runProcess([executable, "--help"])
        #expect(help.status == 0)
        #expect(help.output.contains("Without --spec, the server serves the built-in chat example models"))
    }

    /// Starts `executable` and returns it with the URL it prints on its first line.
    private func startChild(_ executable: URL, _ arguments: [String]) async throws -> (Process, URL) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        let box = UncheckedSendableBox(output.fileHandleForReading)
        let line: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var bytes = Data()
                while true {
                    let chunk = box.value.availableData
                    if chunk.isEmpty { break }
                    bytes.append(chunk)
                    if bytes.contains(UInt8(ascii: "\n")) { break }
                }
                continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
            }
        }
        guard let url = URL(string: line.trimmingCharacters(in: .whitespacesAndNewlines)), url.port != nil else {
            process.terminate()
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "no URL printed: \(line)"])
        }
        return (process, url)
    }
}

@Suite struct SpecModelTests {
    @Test func wireKeysFollowTheRuntimesRule() {
        for name in ["title", "threadId", "createdAt", "replyToId", "aURLValue", "x"] {
            #expect(SpecModel.FieldNaming.snakeCase.wireKey(for: name) == FieldNaming.snakeCase.wireKey(for: name))
            #expect(SpecModel.FieldNaming.camelCase.wireKey(for: name) == FieldNaming.camelCase.wireKey(for: name))
        }
    }

    @Test func theChatSpecDescribesTheCompiledChatSchemas() throws {
        let described = Dictionary(uniqueKeysWithValues: try models(of: chatSpec).map { ($0.tableName, $0) })
        #expect(described.count == GeneratedModels.all.count)
        for model in GeneratedModels.all {
            let schema = model.schema
            let spec = try #require(described[schema.tableName])
            #expect(spec.name == schema.name)
            #expect(spec.idGeneration.rawValue == schema.idGeneration.rawValue)
            #expect(spec.idFormat == schema.idFormat.rawValue)
            #expect(spec.idPrefix == schema.idPrefix)
            #expect(spec.path == schema.remote.path)
            #expect(spec.idType.rawValue == schema.remote.idType.rawValue)
            #expect(spec.fields.map(\.name) == schema.fields.map(\.name))
            #expect(spec.fields.map(\.columnType) == schema.fields.map(\.type.rawValue))
            #expect(spec.fields.map(\.isOptional) == schema.fields.map(\.isOptional))
            #expect(spec.fields.map(\.isUnique) == schema.fields.map(\.isUnique))
            #expect(spec.foreignKeys.map(\.column) == schema.foreignKeys.map(\.column))
            #expect(spec.foreignKeys.map(\.targetTable) == schema.foreignKeys.map(\.table))
            #expect(spec.foreignKeys.map(\.onDelete.rawValue) == schema.foreignKeys.map(\.onDelete.rawValue))
            #expect(spec.referencedBy.map(\.table) == schema.referencedBy.map(\.table))
            #expect(spec.referencedBy.map(\.column) == schema.referencedBy.map(\.column))
        }
        // Parents come before children.
        let order = try models(of: chatSpec).map(\.name)
        #expect(order.firstIndex(of: "User")! < order.firstIndex(of: "Thread")!)
        #expect(order.firstIndex(of: "Thread")! < order.firstIndex(of: "Message")!)
    }
}
