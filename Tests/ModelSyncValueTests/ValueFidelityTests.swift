import Foundation
import ModelSync
import ModelSyncReferenceServer
import PluginChatModels
import Testing

/// The values issue 9 found changed or blocking sync, each sent through save -> push (SyncEngine,
/// RESTRemote) -> reference server over loopback HTTP -> pull into a fresh store.
@Suite("Values travel exactly")
struct ValueFidelityTests {
    @Test("Decimals with more digits than a Double holds come back with every digit")
    func decimalsKeepEveryDigit() async throws {
        let harness = try await RoundTripHarness.start()
        defer { Task { await harness.stop() } }
        let amounts = [
            Decimal(string: "12345678901234567.89")!,
            Decimal(string: "12345678901234567890123456789012345678")!,
            Decimal(string: "-0.12345678901234567890123456789012345678")!,
            Decimal(sign: .plus, exponent: -40, significand: 1),
        ]
        let samples = amounts.map { amount in
            var sample = Sample.ordinary()
            sample.amount = amount
            sample.maybeAmount = -amount
            return sample
        }
        let (pulled, _) = try await harness.roundTrip(samples)
        for sample in samples {
            #expect(pulled[sample.id]?.amount == sample.amount, "amount \(sample.amount)")
            #expect(pulled[sample.id]?.maybeAmount == sample.maybeAmount, "maybeAmount \(sample.amount)")
        }
    }

    @Test("the extreme Decimals are carried exactly")
    func decimalExtremesAreCarried() async throws {
        let harness = try await RoundTripHarness.start()
        defer { Task { await harness.stop() } }
        let amounts: [Decimal] = [
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
            .leastFiniteMagnitude,
        ]
        let samples = amounts.map { amount in
            var sample = Sample.ordinary()
            sample.amount = amount
            return sample
        }
        let (pulled, push) = try await harness.roundTrip(samples)
        #expect(push.failed == 0)
        for sample in samples {
            #expect(pulled[sample.id]?.amount == sample.amount, "amount \(sample.amount)")
        }
    }

    @Test("Doubles come back bit for bit: 0.1 + 0.2, -0.0, subnormals, the largest finite")
    func doublesKeepTheirBits() async throws {
        let harness = try await RoundTripHarness.start()
        defer { Task { await harness.stop() } }
        let ratios: [Double] = [
            0.1 + 0.2, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude.nextDown,
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e16, 123_456_789.012_345_68,
        ]
        let samples = ratios.map { ratio in
            var sample = Sample.ordinary()
            sample.ratio = ratio
            return sample
        }
        let (pulled, _) = try await harness.roundTrip(samples)
        for sample in samples {
            #expect(pulled[sample.id]?.ratio.bitPattern == sample.ratio.bitPattern, "ratio \(sample.ratio)")
        }
    }

    @Test("Int64.min and Int64.max in Int fields and in an [Int] array are pulled")
    func extremeIntegersArePulled() async throws {
        let harness = try await RoundTripHarness.start()
        defer { Task { await harness.stop() } }
        var sample = Sample.ordinary()
        sample.count = Int.min
        sample.big = Int64.min
        sample.maybeCount = Int.max
        sample.maybeNumbers = [Int.min, Int.max, 0, -1]
        let (pulled, _) = try await harness.roundTrip([sample])
        #expect(pulled[sample.id] == sample)
    }

    @Test("dates keep every digit and travel for years far before 0 and far after 9999")
    func datesKeepEveryDigitAtAnyYear() async throws {
        let harness = try await RoundTripHarness.start()
        defer { Task { await harness.stop() } }
        let seconds: [Double] = [
            800_000_000.123_456_7, 736_302_848.508_518, -70_000_000_000, -1e15, 1e15, -63_000_000_000.5,
            .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 0.000_001, 1e18 + 2048,
        ]
        let samples = seconds.map { value in
            var sample = Sample.ordinary()
            sample.when = Date(timeIntervalSinceReferenceDate: value)
            sample.maybeWhen = Date(timeIntervalSinceReferenceDate: -value)
            return sample
        }
        let (pulled, push) = try await harness.roundTrip(samples)
        #expect(push.failed == 0)
        for sample in samples {
            let back = try #require(pulled[sample.id], "date \(sample.when.timeIntervalSinceReferenceDate)")
            #expect(sameBits(back, sample), "date \(sample.when.timeIntervalSinceReferenceDate)")
        }
    }

    @Test("a date pulled with microseconds goes back to the server with the same digits")
    func pulledMicrosecondsGoBackUnchanged() async throws {
        let harness = try await RoundTripHarness.start()
        defer { Task { await harness.stop() } }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let id = UUID().uuidString.lowercased()
        var wire = try JSONValue.parse(try JSONEncoder().encode(Sample.ordinary())).objectValue!
        wire["id"] = .string(id)
        wire["when"] = .string("2024-05-01T12:34:08.508518Z")
        try await harness.server.insert(wire, into: Sample.self)
        let engine = harness.engine(for: store)
        _ = try await engine.pull(Sample.self)
        var local = try #require(try await store.samples.find(Sample.ID(id)))
        local.text = "edited"
        try await store.samples.save(local)
        #expect(try await engine.push().sent == 1)
        let onServer = await harness.server.records(of: Sample.self).first { $0["id"] == .string(id) }
        #expect(onServer?["when"] == .string("2024-05-01T12:34:08.508518Z"))
        #expect(onServer?["text"] == .string("edited"))
    }

    @Test("a string with NUL characters is stored locally with its full length")
    func nulCharactersAreStored() async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        var sample = Sample.ordinary()
        sample.text = "a\0b\0\0c"
        sample.maybeText = "\0"
        try await store.samples.save(sample)
        let stored = try await store.samples.find(sample.id)
        #expect(stored?.text == "a\0b\0\0c")
        #expect(stored?.maybeText == "\0")
    }

    @Test("strings with NUL, control characters and non-BMP characters travel whole")
    func unusualStringsTravel() async throws {
        let harness = try await RoundTripHarness.start()
        defer { Task { await harness.stop() } }
        let texts = ["a\0b\0\0c", "\u{1}\u{1F}\u{7F}\t\r\n\"\\/", "𝄞🧵👩‍👩‍👧", "\u{FEFF}\u{2028}\u{2029}", ""]
        let samples = texts.map { text in
            var sample = Sample.ordinary()
            sample.text = text
            sample.maybeText = text + text
            sample.words = [text, "x"]
            return sample
        }
        let (pulled, _) = try await harness.roundTrip(samples)
        for sample in samples {
            #expect(pulled[sample.id] == sample, "text \(sample.text.debugDescription)")
        }
    }

    @Test("NaN in a Double is refused at save time with a message naming NaN, the model and the field")
    func nanIsRefusedWithAClearMessage() async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        var sample = Sample.ordinary()
        sample.ratio = .nan
        let error = await #expect(throws: (any Error).self) { try await store.samples.save(sample) }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains("NaN"), "\(message)")
        #expect(message.contains("Sample"), "\(message)")
        #expect(message.contains("ratio"), "\(message)")
        #expect(try await store.samples.count() == 0)
        #expect(try await store.outbox.entries().isEmpty)
    }

    @Test("a listing with one unreadable record still returns the others")
    func oneUnreadableRecordDoesNotFailTheListing() async throws {
        let harness = try await RoundTripHarness.start()
        defer { Task { await harness.stop() } }
        let good = Sample.ordinary()
        var wire = try JSONValue.parse(try JSONEncoder().encode(good)).objectValue!
        wire["when"] = .string(RESTRemote.iso8601(good.when))
        try await harness.server.insert(wire, into: Sample.self)
        wire["id"] = .string("bad-one")
        wire["when"] = .string("yesterday")
        try await harness.server.insert(wire, into: Sample.self)
        let remote = RESTRemote(configuration: .init(baseURL: harness.baseURL), models: GeneratedModels.all)
        let page = try await remote.list(Sample.schema, after: nil)
        #expect(page.records.map { $0["id"] } == [.string(good.id.rawValue)])
        #expect(page.rejected.map(\.id) == ["bad-one"])
        let reason = try #require(page.rejected.first?.reason)
        #expect(reason.hasPrefix("Sample 'bad-one': field 'when' is not an ISO 8601 date"), "\(reason)")
        #expect(reason.hasSuffix("'yesterday'"), "\(reason)")
    }

    @Test("each listed record that cannot be stored is rejected naming the model, the record and the field")
    func unstorableRecordsAreRejectedOneByOne() async throws {
        let harness = try await RoundTripHarness.start()
        defer { Task { await harness.stop() } }
        let good = Sample.ordinary()
        var base = try JSONValue.parse(try JSONEncoder().encode(good)).objectValue!
        base["when"] = .string(RESTRemote.iso8601(good.when))
        try await harness.server.insert(base, into: Sample.self)
        let broken: [(String, JSONValue?, String)] = [
            ("count", .string("seven"), "field 'count' is the string 'seven', not an integer"),
            (
                "big", .decimal("9223372036854775808"),
                "field 'big' is the number '9223372036854775808', which is not "
                    + "an integer from Int64.min to Int64.max"
            ),
            ("amount", .decimal("1e200"), "field 'amount' is the number '1e+200', which a Decimal cannot hold exactly"),
            ("amount", .decimal("1.000000000000000000000000000000000000001"), "which a Decimal cannot hold exactly"),
            ("ratio", .decimal("1e400"), "field 'ratio' is the number '1e400', beyond the range of a Double"),
            ("flag", nil, "field 'flag' is missing and the field is not optional"),
            ("text", .null, "field 'text' is null and the field is not optional"),
            ("blob", .string("%%%"), "field 'blob' is not valid base64: '%%%'"),
            ("words", .string("w"), "field 'words' is the string 'w', not an array"),
            (
                "maybeWhen", .string("2024-02-30T00:00:00Z"),
                "field 'maybeWhen' is not an ISO 8601 date: day 30 does not "
                    + "exist in month 2 of year 2024: '2024-02-30T00:00:00Z'"
            ),
        ]
        for (index, (key, value, _)) in broken.enumerated() {
            var record = base
            record["id"] = .string("bad-\(index)")
            record[key] = value
            try await harness.server.insert(record, into: Sample.self)
        }
        let remote = RESTRemote(configuration: .init(baseURL: harness.baseURL), models: GeneratedModels.all)
        let page = try await remote.list(Sample.schema, after: nil)
        #expect(page.records.map { $0["id"] } == [.string(good.id.rawValue)])
        #expect(page.rejected.map(\.id) == broken.indices.map { "bad-\($0)" })
        for (index, rejected) in page.rejected.enumerated() {
            #expect(rejected.reason.hasPrefix("Sample 'bad-\(index)': "), "\(rejected.reason)")
            #expect(rejected.reason.contains(broken[index].2), "\(rejected.reason)")
        }
    }
}
