import Foundation
import GRDB
import PluginChatModels
import PropertyBased
import Testing

@_spi(Generated) @testable import ModelSync

/// One codec per model: the row's stored values, the outbox payload written from them, the wire
/// form `RESTRemote` sends, and the record generated `init(fields:)` reads back agree for every
/// field type at the edges of its type; a record whose field does not fit its type is refused with
/// an error naming the model, the field and the value, and changes nothing.
@Suite("Record codec: row, payload, wire and decoded record agree")
struct RecordCodecTests {
    private static let remote = RESTRemote(
        configuration: .init(baseURL: URL(string: "http://127.0.0.1:9")!), models: GeneratedModels.all)

    /// row -> payload -> wire (JSON text) -> local form -> decoded record -> row.
    private static func travel(_ sample: Sample) throws -> (
        record: Sample, rowBefore: [DatabaseValue], rowAfter: [DatabaseValue]
    ) {
        let row = try sample.databaseValues()
        let payload = try PayloadWriter.payload(values: row, schema: Sample.schema)
        let parsed = try #require(try JSONValue.parse(Data(payload.utf8)).objectValue)
        // The payload's text and the codec's values are the same local form.
        #expect(try PayloadWriter.fields(values: row, schema: Sample.schema) == parsed)
        let wire = try remote.wireObject(parsed, model: Sample.schema, includeID: true)
        let wireText = try JSONValue.object(wire).serialized()
        let received = try #require(try JSONValue.parse(wireText).objectValue)
        let local = try remote.listedFields(received, model: Sample.schema)
        let record = try Sample(fields: local)
        return (
            record, row.map { $0?.databaseValue ?? .null },
            try record.databaseValues().map { $0?.databaseValue ?? .null }
        )
    }

    @Test("every field type at the edges of its type comes back identical: row -> payload -> wire -> record -> row")
    func edgesRoundTrip() throws {
        var samples = SampleGenerators.edgeSamples().filter { SampleGenerators.expectedRefusal($0) == nil }
        // Every enum case, required and optional, and every optional as nil.
        for (index, mood) in Sample.Mood.allCases.enumerated() {
            var sample = Sample.ordinary()
            sample.mood = mood
            sample.maybeMood = Sample.MaybeMood.allCases[index % Sample.MaybeMood.allCases.count]
            samples.append(sample)
        }
        samples.append(Sample.ordinary())
        #expect(samples.count > 10)
        for sample in samples {
            let (record, before, after) = try Self.travel(sample)
            let expected = SampleGenerators.asStored(sample)
            #expect(sameBits(record, expected), "\(SampleGenerators.differences(expected, record))")
            #expect(before == after)
        }
    }

    @Test("random records (seeded) come back identical through the codec, bit for bit")
    func randomRoundTrip() async throws {
        await propertyCheck(count: 400, input: Gen<UInt64>.uint64()) { seed in
            var random = Xoshiro(seed: SampleGenerators.expand(seed))
            let sample = SampleGenerators.sample(&random)
            guard SampleGenerators.expectedRefusal(sample) == nil else { return }
            let (record, before, after) = try Self.travel(sample)
            let expected = SampleGenerators.asStored(sample)
            #expect(sameBits(record, expected), "\(SampleGenerators.differences(expected, record))")
            #expect(before == after)
        }
    }

    @Test("a field that does not fit its type is refused naming the model, the field and the value")
    func misfitsAreNamed() throws {
        let fields = try PayloadWriter.fields(values: Sample.ordinary().databaseValues(), schema: Sample.schema)
        let cases: [(field: String, value: JSONValue, words: [String])] = [
            ("count", .decimal("9223372036854775808"), ["9223372036854775808", "integer"]),
            ("count", .number(1.5), ["'1.5'", "integer"]),
            ("big", .string("12"), ["the string '12'", "not an integer"]),
            ("flag", .string("yes"), ["the string 'yes'", "true or false"]),
            ("ratio", .decimal("1e400"), ["'1e400'", "Double"]),
            ("when", .string("yesterday"), ["'yesterday'", "ISO 8601"]),
            ("amount", .decimal("1e300"), ["'1e300'", "Decimal"]),
            ("blob", .string("***"), ["'***'", "base64"]),
            ("token", .string("not-a-uuid"), ["'not-a-uuid'", "UUID"]),
            ("words", .array([.string("a"), .integer(3)]), ["element 1", "'3'", "string"]),
            ("mood", .string("furious"), ["'furious'", "'calm'"]),
            ("text", .null, ["null", "not optional"]),
        ]
        for (field, value, words) in cases {
            var record = fields
            record[field] = value
            let error = #expect(throws: FieldDecodingError.self) { try Sample(fields: record) }
            #expect(error?.model == "Sample")
            #expect(error?.field == field)
            for word in words {
                #expect(error?.reason.contains(word) == true, "\(field): \(error?.reason ?? "no error")")
            }
        }
        var missing = fields
        missing["text"] = nil
        let error = #expect(throws: FieldDecodingError.self) { try Sample(fields: missing) }
        #expect(error?.description == "Sample.text is missing and the field is not optional")
    }

    @Test("saves around a pulled record in one transaction each store their own values, as does the pulled record")
    func savesAroundPulledRecordKeepTheirValues() async throws {
        // A save binds its insert by position on a statement prepared once per transaction; the pull
        // runs the same statement in between with GRDB arguments of its own, which GRDB keeps for its
        // next run (a statement of at most 20 parameters, as Tag's).
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let (first, pulled, second) = (Tag(label: "saved first"), Tag(label: "pulled"), Tag(label: "saved second"))
        let fields = try PayloadWriter.fields(values: pulled.databaseValues(), schema: Tag.schema)
        try await store.write { tx in
            try tx.save(first)
            _ = try tx.applyRemote(fields, model: Tag.self, policy: .keepLocalChanges)
            try tx.save(second)
        }
        for expected in [first, pulled, second] {
            #expect(try await store.tags.find(expected.id) == expected, "\(expected.label)")
        }
        #expect(try await store.outbox.entries().map(\.recordID) == [first.id.rawValue, second.id.rawValue])
    }

    @Test(
        "a pulled record with an out-of-range or wrongly typed field is rejected with a clear reason and changes nothing"
    )
    func misfitPulledRecordChangesNothing() async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let original = Sample.ordinary()
        let fields = try PayloadWriter.fields(values: original.databaseValues(), schema: Sample.schema)
        _ = try await store.write { tx in try tx.applyRemote(fields, model: Sample.self, policy: .keepLocalChanges) }
        let misfits: [(field: String, value: JSONValue, word: String)] = [
            ("count", .decimal("9223372036854775808"), "9223372036854775808"),
            ("flag", .string("yes"), "'yes'"),
        ]
        for (field, value, word) in misfits {
            var changed = fields
            changed["text"] = .string("changed")
            changed[field] = value
            let misfit = changed
            let reason = try await store.write { tx -> String? in
                do {
                    _ = try tx.applyRemote(misfit, model: Sample.self, policy: .keepLocalChanges)
                    return nil
                } catch let error as UnreadableRecord {
                    return error.reason
                }
            }
            let text = try #require(reason)
            #expect(text.contains("Sample.\(field)"), "\(text)")
            #expect(text.contains(word), "\(text)")
            let stored = try #require(try await store.samples.find(original.id))
            #expect(sameBits(stored, SampleGenerators.asStored(original)))
            #expect(try await store.outbox.entries().isEmpty)
        }
    }
}
