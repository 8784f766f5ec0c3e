import Foundation
import Testing

@testable import ModelSyncGenerator

/// Each fixture in Fixtures/Diagnostics is a malformed spec whose trailing `# expect:` comments list
/// the exact diagnostics (line:column: severity: message) the generator must report, in order.
/// A fixture whose whole content matters (the empty file) keeps its expectations in a sibling
/// `.expected` file instead.
@Suite struct DiagnosticsCorpusTests {
    static let folder = packageRoot.appending(path: "Tests/ModelSyncGeneratorTests/Fixtures/Diagnostics")

    static let fixtures: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".modelsync.yaml") }.sorted()
    }()

    @Test func corpusHasAtLeastFortyMalformedSpecs() {
        #expect(Self.fixtures.count >= 40)
    }

    @Test(arguments: fixtures)
    func reportsExactlyTheExpectedDiagnostics(fixture: String) throws {
        let url = Self.folder.appending(path: fixture)
        let text = try String(contentsOf: url, encoding: .utf8)
        let expectedFile = Self.folder.appending(
            path: fixture.replacingOccurrences(of: ".modelsync.yaml", with: ".expected"))
        let expectationText = (try? String(contentsOf: expectedFile, encoding: .utf8)) ?? ""
        let expected =
            text.split(separator: "\n").filter { $0.hasPrefix("# expect: ") }.map { String($0.dropFirst(10)) }
            + expectationText.split(separator: "\n").map(String.init)
        #expect(!expected.isEmpty, "\(fixture) declares no expected diagnostic")

        let diagnostics = ModelSyncGenerator.validate([SpecSource(path: fixture, text: text)])
        let actual = diagnostics.map {
            "\($0.location.line):\($0.location.column): \($0.severity.rawValue): \($0.message)"
        }
        #expect(actual == expected)
        #expect(diagnostics.allSatisfy { $0.location.path == fixture })

        // A spec with an error generates nothing; one with only warnings still generates.
        let hasErrors = diagnostics.contains { $0.severity == .error }
        let generated = Result { try ModelSyncGenerator.generate([SpecSource(path: fixture, text: text)]) }
        switch generated {
        case .success: #expect(!hasErrors)
        case .failure(let error):
            #expect(hasErrors)
            #expect((error as? GenerationFailed)?.diagnostics == diagnostics)
        }
    }
}
