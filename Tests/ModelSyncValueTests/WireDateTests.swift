import Foundation
import Testing

@testable import ModelSync

@Suite("ISO 8601 dates on the wire")
struct WireDateTests {
    /// Seconds since 2001-01-01 of an ISO 8601 text, or why it is refused.
    private func seconds(_ text: String) -> Double? {
        RESTRemote.parseISO8601(text)?.timeIntervalSinceReferenceDate
    }

    private func reason(_ text: String) -> String? {
        if case .failure(let error) = WireDate.parse(text) { return error.reason }
        return nil
    }

    @Test("ordinary server dates parse: Z, offsets, with and without fractions")
    func ordinaryServerDatesParse() {
        // 2024-05-01T12:34:08Z is 1714566848 s after 1970, 978307200 s of which precede 2001.
        let base = 1_714_566_848.0 - 978_307_200
        #expect(seconds("2024-05-01T12:34:08Z") == base)
        #expect(seconds("2024-05-01T14:34:08+02:00") == base)
        #expect(seconds("2024-05-01T07:04:08-05:30") == base)
        #expect(seconds("2024-05-01T14:34:08+0200") == base)
        #expect(seconds("2024-05-01T14:34:08+02") == base)
        #expect(seconds("2024-05-01t12:34:08z") == base)
        #expect(seconds("2024-05-01 12:34:08Z") == base)
        #expect(seconds("2024-05-01T12:34Z") == base - 8)
        #expect(seconds("2024-05-01T12:34:08.508Z") == Double("736259648.508"))
        #expect(seconds("2024-05-01T12:34:08.508518Z") == Double("736259648.508518"))
        #expect(seconds("2024-05-01T12:34:08,5Z") == base + 0.5)
        #expect(seconds("2024-05-01T12:34:08.000000000Z") == base)
        #expect(seconds("2024-05-01T14:34:08.25+02:00") == base + 0.25)
    }

    @Test("formatting writes UTC with every fractional digit the date needs and no more")
    func formattingIsExactAndShort() {
        func text(_ seconds: Double) -> String { RESTRemote.iso8601(Date(timeIntervalSinceReferenceDate: seconds)) }
        #expect(text(0) == "2001-01-01T00:00:00Z")
        #expect(text(-0.0) == "2001-01-01T00:00:00Z")
        #expect(text(736_259_648) == "2024-05-01T12:34:08Z")
        #expect(text(Double("736259648.508518")!) == "2024-05-01T12:34:08.508518Z")
        #expect(text(800_000_000.123) == "2026-05-09T06:13:20.123Z")
        #expect(text(-0.25) == "2000-12-31T23:59:59.75Z")
        #expect(text(.leastNonzeroMagnitude) == "2001-01-01T00:00:00." + String(repeating: "0", count: 323) + "5Z")
        #expect(text(-.leastNonzeroMagnitude) == "2000-12-31T23:59:59." + String(repeating: "9", count: 323) + "5Z")
    }

    @Test("years before 0 and after 9999 carry a sign and at least six digits")
    func expandedYears() {
        // Proleptic Gregorian: 730,851 days from 0000-01-01 to 2001-01-01.
        let yearZero = -730_851.0 * 86_400
        #expect(RESTRemote.iso8601(Date(timeIntervalSinceReferenceDate: yearZero)) == "0000-01-01T00:00:00Z")
        #expect(seconds("0000-01-01T00:00:00Z") == yearZero)
        #expect(RESTRemote.iso8601(Date(timeIntervalSinceReferenceDate: yearZero - 1)) == "-000001-12-31T23:59:59Z")
        #expect(seconds("-000001-12-31T23:59:59Z") == yearZero - 1)
        // 2,921,574 days from 2001-01-01 to 10000-01-01: 19 cycles of 400 years (146,097 days each),
        // then 399 years with 96 leap days.
        let year10000 = Double(19 * 146_097 + 399 * 365 + 96) * 86_400
        #expect(seconds("9999-12-31T23:59:59Z") == year10000 - 1)
        #expect(RESTRemote.iso8601(Date(timeIntervalSinceReferenceDate: year10000)) == "+010000-01-01T00:00:00Z")
        #expect(seconds("+010000-01-01T00:00:00Z") == year10000)
        #expect(seconds("-010000-01-01T00:00:00Z") != nil)
        // Python's proleptic Gregorian calendar, with 400-year cycles for the years it cannot show.
        #expect(RESTRemote.iso8601(Date(timeIntervalSinceReferenceDate: -1e15)) == "-31686738-06-29T22:13:20Z")
        #expect(seconds("-31686738-06-29T22:13:20Z") == -1e15)
        #expect(RESTRemote.iso8601(Date(timeIntervalSinceReferenceDate: .greatestFiniteMagnitude)).count > 300)
        #expect(seconds("+99999999999999999999999999999999999999-01-01T00:00:00Z").map { $0 > 3e45 } == true)
    }

    @Test("whole seconds from 1600 to 9999 agree with Foundation's calendar both ways")
    func agreesWithFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        let style = Date.ISO8601FormatStyle()
        for _ in 0..<2000 {
            let seconds = Double(Int64.random(in: -12_600_000_000...252_000_000_000, using: &generator))
            let date = Date(timeIntervalSinceReferenceDate: seconds)
            let ours = RESTRemote.iso8601(date)
            #expect(ours == date.formatted(style))
            #expect(try style.parse(ours).timeIntervalSinceReferenceDate == seconds, "\(ours)")
            #expect(RESTRemote.parseISO8601(date.formatted(style))?.timeIntervalSinceReferenceDate == seconds)
        }
    }

    @Test("leap days follow the Gregorian rule at any year")
    func leapDays() {
        #expect(seconds("2000-02-29T00:00:00Z") != nil)
        #expect(seconds("2024-02-29T00:00:00Z") != nil)
        #expect(seconds("0000-02-29T00:00:00Z") != nil)
        #expect(seconds("-000400-02-29T00:00:00Z") != nil)
        #expect(reason("1900-02-29T00:00:00Z") == "day 29 does not exist in month 2 of year 1900")
        #expect(reason("-000100-02-29T00:00:00Z") == "day 29 does not exist in month 2 of year -100")
        #expect(reason("2023-04-31T00:00:00Z") == "day 31 does not exist in month 4 of year 2023")
    }

    @Test(
        "text that is not a date-time is refused with a reason",
        arguments: [
            ("yesterday", "expected the year needs at least four digits at character 1"),
            ("2024-13-01T00:00:00Z", "month 13 does not exist"),
            ("2024-05-01T12:34:08", "expected a time zone: 'Z' or an offset such as '+02:00' at character 20"),
            ("2024-05-01", "expected 'T' between the date and the time (a date-time is required) at character 11"),
            ("24-05-01T00:00:00Z", "expected the year needs at least four digits at character 3"),
            ("2024-05-01T24:00:00Z", "hour 24 does not exist (00 to 23)"),
            ("2024-05-01T12:60:00Z", "minute 60 does not exist (00 to 59)"),
            ("2024-05-01T12:34:08.Z", "expected digits after the decimal mark at character 21"),
            ("2024-05-01T12:34:08Z trailing", "expected the end of the date, found more text at character 21"),
            ("2024-05-01T12:34:08+24:00", "offset 24:0 is not a time zone offset"),
            (
                "+99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
                    + "9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
                    + "9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
                    + "-01-01T00:00:00Z", "is beyond the range of a Date"
            ),
        ])
    func malformedDatesAreRefused(text: String, expected: String) {
        #expect(RESTRemote.parseISO8601(text) == nil)
        let reason = reason(text) ?? "parsed"
        #expect(reason.contains(expected), "\(text): \(reason)")
    }
}
