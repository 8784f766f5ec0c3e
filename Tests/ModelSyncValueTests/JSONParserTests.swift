import Foundation
import Testing

@testable import ModelSync

@Suite("JSON parser")
struct JSONParserTests {
    private func parse(_ text: String) throws -> JSONValue {
        try JSONValue.parse(Data(text.utf8))
    }

    private func parseError(_ bytes: [UInt8]) -> JSONValue.ParseError? {
        do {
            _ = try JSONValue.parse(Data(bytes))
            return nil
        } catch {
            return error as? JSONValue.ParseError
        }
    }

    private func parseError(_ text: String) -> JSONValue.ParseError? {
        parseError(Array(text.utf8))
    }

    @Test("integers that fit Int64 stay integers, to both extremes; -0 is the Double -0.0")
    func integersStayIntegers() throws {
        #expect(try parse("9223372036854775807") == .integer(.max))
        #expect(try parse("-9223372036854775808") == .integer(.min))
        #expect(try parse("[0, -1, 42]") == .array([.integer(0), .integer(-1), .integer(42)]))
        let negativeZero = try parse("-0")
        #expect(negativeZero.doubleValue?.bitPattern == (-0.0).bitPattern)
    }

    @Test("an integer beyond Int64 keeps its digits")
    func bigIntegersKeepTheirDigits() throws {
        #expect(try parse("9223372036854775808") == .decimal("9223372036854775808"))
        #expect(try parse("-9223372036854775809") == .decimal("-9223372036854775809"))
        #expect(try parse("123456789012345678901234567890").idString == "123456789012345678901234567890")
    }

    @Test("numbers a Double holds exactly become Doubles with the same bits")
    func exactDoublesBecomeDoubles() throws {
        let cases: [(String, Double)] = [
            ("0.30000000000000004", 0.1 + 0.2), ("-0.0", -0.0), ("5e-324", .leastNonzeroMagnitude),
            ("2.2250738585072014e-308", .leastNormalMagnitude), ("1.7976931348623157e308", .greatestFiniteMagnitude),
            ("1e-40", 1e-40), ("2e3", 2000), ("1.50", 1.5), ("0.1", 0.1), ("1E+16", 1e16),
        ]
        for (text, double) in cases {
            let value = try parse(text)
            guard case .number(let parsed) = value else {
                Issue.record("\(text) parsed as \(value)")
                continue
            }
            #expect(parsed.bitPattern == double.bitPattern, "\(text)")
        }
    }

    @Test("numbers with more digits than a Double holds, or beyond its range, keep their text")
    func inexactNumbersKeepTheirText() throws {
        for text in [
            "12345678901234567.89", "12345678901234567890123456789012345678", "0.12345678901234567890123456789",
            "4.9406564584124654e-324", "1e400", "-1e400", "1e-400", "0.1000000000000000055511151231257827",
            "1e99999999999999999999",
        ] {
            #expect(try parse(text) == .decimal(text), "\(text)")
        }
    }

    @Test("serialized numbers are the same decimal numbers as the parsed text")
    func numbersSerializeToTheSameDecimal() throws {
        let text = #"[12345678901234567.89,-0.0,-0,5e-324,1e-40,0.30000000000000004,9223372036854775808,1e400]"#
        let serialized = String(decoding: try parse(text).serialized(), as: UTF8.self)
        #expect(
            serialized
                == #"[12345678901234567.89,-0.0,-0.0,5e-324,1e-40,0.30000000000000004,9223372036854775808,1e400]"#)
        #expect(try parse(serialized) == parse(text))
        #expect(throws: EncodingError.self) { try JSONValue.decimal("12,5").serialized() }
        #expect(throws: EncodingError.self) { try JSONValue.number(.infinity).serialized() }
    }

    @Test("strings decode every escape, surrogate pairs, NUL and raw UTF-8")
    func stringsDecodeEscapes() throws {
        #expect(try parse(#""a\u0000b\"\\\/\b\f\n\r\t""#) == .string("a\0b\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try parse(#""\uD834\uDD1E \ud83e\uddf5""#) == .string("𝄞 🧵"))
        #expect(try parse("\"é𝄞\u{10FFFF}\u{7F}\"") == .string("é𝄞\u{10FFFF}\u{7F}"))
        #expect(try parse(#"{"k\u00e9y": "v"}"#) == .object(["kéy": .string("v")]))
    }

    @Test("a lone surrogate escape is refused with its byte offset")
    func loneSurrogatesAreRefused() {
        let high = parseError(#""ab\uD800""#)
        #expect(high?.offset == 3)
        #expect(high?.reason.contains(#"lone surrogate \uD800"#) == true, "\(String(describing: high))")
        let low = parseError(#""\uDC00x""#)
        #expect(low?.offset == 1)
        #expect(low?.reason.contains("a low surrogate must follow a high one") == true)
        let unpaired = parseError(#""\uD800\u0041""#)
        #expect(unpaired?.reason.contains(#"followed by \u0041"#) == true)
    }

    @Test(
        "malformed JSON is refused naming the problem and its byte offset",
        arguments: [
            ("", 0, "holds no JSON value"),
            ("   ", 3, "holds no JSON value"),
            ("[1,]", 3, "']' cannot start a JSON value"),
            (#"{"a" 1}"#, 5, #"expected ':' after the member name "a""#),
            (#"{"a":1,}"#, 7, "expected a member name in quotes, found '}'"),
            ("{1:2}", 1, "expected a member name in quotes"),
            ("01", 0, "leading zeros are not allowed"),
            ("1.", 0, "a digit must follow the decimal point"),
            ("-", 0, "a digit must follow '-'"),
            ("1e+", 0, "the exponent needs digits"),
            ("NaN", 0, "'N' cannot start a JSON value"),
            ("[1] x", 4, "unexpected 'x' after the JSON value"),
            ("tru", 0, "expected 'true'"),
            ("\"a\nb\"", 2, "unescaped control character U+000A in a string"),
            (#""\x""#, 1, #"invalid escape '\x'"#),
            (#""\u12G4""#, 1, "four hexadecimal digits"),
            ("[1, 2", 5, "the text ends inside an array"),
            (#"{"a": "b"#, 8, "the text ends inside a string that starts at byte 6"),
        ])
    func malformedJSONIsRefused(text: String, offset: Int, reason: String) {
        let error = parseError(text)
        #expect(error?.offset == offset, "\(text.debugDescription): \(String(describing: error))")
        #expect(error?.reason.contains(reason) == true, "\(text.debugDescription): \(String(describing: error))")
        #expect(error?.description.hasPrefix("invalid JSON at byte \(offset): ") == true)
    }

    @Test("bytes that are not UTF-8 are refused with their offset")
    func invalidUTF8IsRefused() {
        let truncated = parseError([0x22, 0x61, 0xC3, 0x28, 0x22])
        #expect(truncated?.offset == 3)
        #expect(truncated?.reason.contains("byte 0x28 is not valid UTF-8") == true, "\(String(describing: truncated))")
        let overlong = parseError([0x22, 0xC0, 0x80, 0x22])
        #expect(overlong?.offset == 1)
        let encodedSurrogate = parseError([0x22, 0xED, 0xA0, 0x80, 0x22])
        #expect(encodedSurrogate?.offset == 2)
        let beyondUnicode = parseError([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22])
        #expect(beyondUnicode?.offset == 2)
    }

    @Test("nesting up to the depth limit parses; one level deeper is refused")
    func nestingIsLimited() throws {
        let limit = JSONValue.maximumNestingDepth
        let deepest = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect(throws: Never.self) { try parse(deepest) }
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        let error = parseError(tooDeep)
        #expect(error?.offset == limit)
        #expect(error?.reason == "arrays and objects are nested deeper than \(limit) levels")
        let objects = String(repeating: #"{"a":"#, count: limit + 1) + "1" + String(repeating: "}", count: limit + 1)
        #expect(parseError(objects)?.reason.contains("nested deeper") == true)
    }

    @Test("a byte order mark, whitespace and a repeated member name are accepted")
    func leniencies() throws {
        #expect(try JSONValue.parse(Data([0xEF, 0xBB, 0xBF] + Array(" \t\r\n1 ".utf8))) == .integer(1))
        #expect(try parse(#"{"a": 1, "a": 2}"#) == .object(["a": .integer(2)]))
        #expect(try parse("[ ]") == .array([]))
        #expect(try parse("{ }") == .object([:]))
    }

    @Test("a huge string with escapes parses whole and quickly")
    func hugeStringsParse() throws {
        let piece = #"abc\n\u00e9\ud83e\uddf5 "#
        let text = "\"" + String(repeating: piece, count: 200_000) + "\""
        let start = ContinuousClock.now
        let value = try parse(text)
        let elapsed = ContinuousClock.now - start
        #expect(value.stringValue == String(repeating: "abc\né🧵 ", count: 200_000))
        #expect(elapsed < .seconds(5), "parsing \(text.utf8.count) bytes took \(elapsed)")
    }

    @Test("parsing matches Foundation on ordinary documents")
    func matchesFoundation() throws {
        let text = #"{"user": {"name": "Ada", "tags": ["a", "b"], "age": 36, "score": 9.5, "active": true, "x": null}}"#
        let value = try parse(text)
        let reference = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        let user = try #require(reference?["user"] as? [String: Any])
        #expect(value.objectValue?["user"]?.objectValue?["name"] == .string(user["name"] as! String))
        #expect(value.objectValue?["user"]?.objectValue?["age"] == .integer(36))
        #expect(value.objectValue?["user"]?.objectValue?["score"] == .number(9.5))
        #expect(value.objectValue?["user"]?.objectValue?["active"] == .bool(true))
        #expect(value.objectValue?["user"]?.objectValue?["x"] == .null)
        #expect(value.objectValue?["user"]?.objectValue?["tags"] == .array([.string("a"), .string("b")]))
    }
}
