import ArgumentParser
import Foundation
import ModelSyncConformance
import ModelSyncGenerator

struct Conformance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Checks a running server against the ModelSync sync protocol, for the models of the given specs.",
        discussion: """
            For teams with a server of their own: finds out whether it gives a ModelSync client what it \
            needs (Docs/Protocol.md, Docs/Conformance.md). For each model of the specs, the kit creates \
            sample records built from the field types (and the parents they need), then checks:

              idempotent-create
                  The same Idempotency-Key and body twice make one record; the same key
                  with another body gets 422.
              foreign-key
                  A reference to a missing parent is a JSON 4xx (422) naming the field.
              unique
                  A duplicate value of a unique field is a 422.
              id-type
                  IDs have the spec's idType; the server makes them for idGeneration:
                  server and keeps the client's for client; GET {path}/{id} works.
              update-missing
                  PUT of an unknown ID is a 404, never a re-create.
              delete-tombstone
                  A delete leaves {"id": ..., "deleted": true} in the listing; a delete
                  of an unknown ID is a 404, 410 or 2xx.
              cursor-listing
                  Paging with ?cursor= lists every change once, and a change made
                  after a cursor after it.
              stale-update
                  If-Match with an old _version gets 409 with "current". Reported as
                  N/A when records carry no _version (updates are last-writer-wins).
              tenant-isolation
                  With --second-tenant-token: tenant A's records are invisible,
                  unreferenceable and indistinguishable from missing ones for B.
              errors-are-json
                  Error answers are JSON {"error": "..."}.

            Each result is printed as PASS, FAIL (what was seen, and a "fix:" line), WARN (works, but \
            not as the protocol recommends), N/A (an optional part not implemented) or SKIP. At the \
            end, the kit deletes the records it created and lists any it could not delete (deleted \
            records leave tombstones, as the protocol asks). Point it at a test deployment, not at \
            production data.

            Exit status: 0 when no check failed, 1 when one did (or a spec has an error).
            """
    )

    @Argument(help: "Spec files or folders (the models whose collections the server serves).")
    var paths: [String]

    @Option(help: "The server's base URL; a model's collection is <base-url><path>, e.g. http://127.0.0.1:8080.")
    var baseURL: String

    @Option(help: "Sent as 'Authorization: Bearer <token>' with every request.")
    var token: String?

    @Option(
        help: "A token of another tenant: checks that tenants cannot see or reference each other's records.")
    var secondTenantToken: String?

    @Option(help: "The idle timeout of one request, in seconds.")
    var timeout: Double = 30

    func validate() throws {
        guard let url = URL(string: baseURL), let scheme = url.scheme, ["http", "https"].contains(scheme),
            url.host != nil
        else {
            throw ValidationError("--base-url '\(baseURL)' is not an http(s) URL such as http://127.0.0.1:8080")
        }
    }

    func run() async throws {
        let sources = try readSpecs(paths)
        let models: [SpecModel]
        do {
            // Warnings are about the generated Swift code (names that shadow Foundation types), not
            // about the server: `modelsync validate` shows them.
            models = try ModelSyncGenerator.models(sources).models
        } catch let failure as GenerationFailed {
            report(failure.diagnostics)
            throw ExitCode.failure
        }
        let kit = ConformanceKit(
            models: models, baseURL: URL(string: baseURL)!, token: token, secondTenantToken: secondTenantToken,
            timeout: timeout)
        let result = await kit.run()
        print(result.text, terminator: "")
        if result.hasFailures { throw ExitCode.failure }
    }
}
