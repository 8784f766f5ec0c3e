import Foundation

/// ISO 8601 date-times (RFC 3339 profile, with ISO 8601 expanded years) that carry a `Date`
/// exactly: every finite time interval is written with as many fractional digits as its `Double`
/// needs and reads back to the same bits, at any year (`-010000-01-01T00:00:00Z`,
/// `+292277026596-12-04T15:30:07Z`, and far beyond). The calendar is the proleptic Gregorian
/// calendar with a year 0, as ISO 8601 defines it.
///
/// Foundation's `ISO8601FormatStyle` keeps only milliseconds and refuses years before 0; this codec
/// is exact and total.
enum WireDate {
    /// Seconds in 400 Gregorian years (146,097 days): the calendar repeats after them.
    private static let cycleSeconds: Int64 = 146_097 * 86_400
    /// Days from 1970-01-01 to 2001-01-01, the reference date of `Date`.
    private static let referenceDay: Int64 = 11_323

    // MARK: Formatting

    /// The date `seconds` after 2001-01-01T00:00:00Z in UTC (`Z`), with the shortest fraction that
    /// reads back to the same `Double`; `nil` for an infinite or NaN interval. Years 0 to 9999 have
    /// four digits; others a sign and at least six (`-000001`, `+010000`).
    static func format(_ seconds: Double) -> String? {
        guard seconds.isFinite else { return nil }
        var shortest = "\(seconds)"
        let parts = shortest.withUTF8 { DecimalParts($0) }
        // Split |seconds| into integer digits and fraction digits.
        var integerDigits: [UInt8]
        var fraction: [UInt8]
        if parts.exponent >= 0 {
            integerDigits = parts.digits + [UInt8](repeating: UInt8(ascii: "0"), count: parts.exponent)
            fraction = []
        } else {
            let point = parts.digits.count + parts.exponent
            if point > 0 {
                integerDigits = Array(parts.digits[..<point])
                fraction = Array(parts.digits[point...])
            } else {
                integerDigits = []
                fraction = [UInt8](repeating: UInt8(ascii: "0"), count: -point) + parts.digits
            }
        }
        // Before the reference date the time of day counts forward from the earlier second:
        // -0.25 is 23:59:59.75 of the day before.
        var wholeSeconds = BigInteger(negative: parts.negative, asciiDigits: integerDigits)
        if parts.negative, !fraction.isEmpty {
            wholeSeconds = wholeSeconds.adding(-1)
            fraction = complement(fraction)
        }
        let cycles: BigInteger
        let secondsInCycle: Int64
        if let small = wholeSeconds.int64Value {
            let quotient = small >= 0 ? small / cycleSeconds : -((-(small + 1)) / cycleSeconds) - 1
            cycles = BigInteger(quotient)
            secondsInCycle = small - quotient * cycleSeconds
        } else {
            let (quotient, remainder) = wholeSeconds.floorDivided(by: UInt64(cycleSeconds))
            cycles = quotient
            secondsInCycle = Int64(remainder)
        }
        let day = secondsInCycle / 86_400
        let secondOfDay = secondsInCycle % 86_400
        let (yearInCycle, month, dayOfMonth) = civil(daysSince1970: referenceDay + day)
        let year = cycles.multiplied(by: 400).adding(yearInCycle)

        var text = yearText(year)
        text += "-" + twoDigits(month) + "-" + twoDigits(dayOfMonth)
        text += "T" + twoDigits(secondOfDay / 3600) + ":" + twoDigits(secondOfDay / 60 % 60)
        text += ":" + twoDigits(secondOfDay % 60)
        if !fraction.isEmpty { text += "." + String(decoding: fraction, as: UTF8.self) }
        return text + "Z"
    }

    private static func yearText(_ year: BigInteger) -> String {
        if let small = year.int64Value, (0...9999).contains(small) {
            let digits = String(small)
            return String(repeating: "0", count: 4 - digits.count) + digits
        }
        let digits = year.magnitudeText
        return (year.isNegative ? "-" : "+") + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    private static func twoDigits(_ value: Int64) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }

    /// `10^n - fraction` as `n` digits (`n` = the fraction's length), without trailing zeros:
    /// the fraction of `1 - 0.fraction`.
    private static func complement(_ fraction: [UInt8]) -> [UInt8] {
        var result = [UInt8](repeating: UInt8(ascii: "0"), count: fraction.count)
        var borrow = 0
        for index in fraction.indices.reversed() {
            var digit = -Int(fraction[index] - UInt8(ascii: "0")) - borrow
            if index == fraction.count - 1 { digit += 10 } else { digit += 9 }
            // 10^n - f = (99…9 - f) + 1: the last digit takes the +1 (no borrow since it is not 0).
            borrow = 0
            result[index] = UInt8(ascii: "0") + UInt8(digit)
        }
        while result.last == UInt8(ascii: "0") { result.removeLast() }
        return result
    }

    // MARK: Parsing

    /// The interval since 2001-01-01T00:00:00Z of an ISO 8601 date-time: `YYYY-MM-DDTHH:MM:SS`
    /// (seconds optional), a fraction of any length after `.` or `,`, and `Z` or an offset
    /// (`+02:00`, `+0200`, `+02`); the year may be expanded with a sign (`-010000`, `+12345`); `t`,
    /// `z` and a space instead of `T` are accepted.
    ///
    /// - Returns: The interval, or why the text is not such a date.
    static func parse(_ text: String) -> Result<Double, DateError> {
        var text = text
        return text.withUTF8 { bytes in
            var reader = Reader(bytes: bytes)
            do throws(DateError) {
                return .success(try reader.read())
            } catch {
                return .failure(error)
            }
        }
    }

    /// Why a text is not an ISO 8601 date-time.
    struct DateError: Error, Hashable, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        mutating func read() throws(DateError) -> Double {
            // Year: four digits, or a sign and four or more.
            var yearNegative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                yearNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            let yearDigits = digits()
            guard yearDigits.count >= 4 else { throw fail("the year needs at least four digits") }
            let year = BigInteger(negative: yearNegative, asciiDigits: Array(yearDigits))
            try expect("-", "'-' after the year")
            let month = try number(2, "a two-digit month")
            try expect("-", "'-' after the month")
            let day = try number(2, "a two-digit day")
            guard index < bytes.count, "Tt ".utf8.contains(bytes[index]) else {
                throw fail("'T' between the date and the time (a date-time is required)")
            }
            index += 1
            let hour = try number(2, "a two-digit hour")
            try expect(":", "':' after the hour")
            let minute = try number(2, "two-digit minutes")
            var second: Int64 = 0
            var fraction: [UInt8] = []
            if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
                index += 1
                second = try number(2, "two-digit seconds")
                if index < bytes.count, bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    fraction = Array(digits())
                    guard !fraction.isEmpty else { throw fail("digits after the decimal mark") }
                    while fraction.last == UInt8(ascii: "0") { fraction.removeLast() }
                }
            }
            let offset = try zoneOffset()
            guard index == bytes.count else { throw fail("the end of the date, found more text") }

            guard (1...12).contains(month) else { throw DateError(reason: "month \(month) does not exist") }
            let yearInCycle = year.floorDivided(by: 400).remainder
            guard day >= 1, day <= daysIn(month: month, yearModulo400: Int64(yearInCycle)) else {
                throw DateError(reason: "day \(day) does not exist in month \(month) of year \(year.description)")
            }
            guard hour <= 23 else { throw DateError(reason: "hour \(hour) does not exist (00 to 23)") }
            guard minute <= 59 else { throw DateError(reason: "minute \(minute) does not exist (00 to 59)") }
            guard second <= 60 else { throw DateError(reason: "second \(second) does not exist (00 to 60)") }

            // Seconds since 2001-01-01: whole 400-year cycles, then the rest within one cycle.
            let (cycles, cycleYear) = year.adding(-2001).floorDivided(by: 400)
            let dayInCycle =
                days(year: 2001 + Int64(cycleYear), month: month, day: day) - days(year: 2001, month: 1, day: 1)
            let rest = dayInCycle * 86_400 + hour * 3600 + minute * 60 + second - offset
            let whole = cycles.multiplied(by: UInt64(WireDate.cycleSeconds)).adding(rest)
            var decimal: String
            if whole.isNegative, !fraction.isEmpty {
                // whole + 0.f = -((|whole| - 1) + (1 - 0.f))
                decimal =
                    "-" + whole.adding(1).magnitudeText + "." + String(decoding: complement(fraction), as: UTF8.self)
            } else {
                decimal = whole.description
                if !fraction.isEmpty { decimal += "." + String(decoding: fraction, as: UTF8.self) }
            }
            guard let seconds = Double(decimal), seconds.isFinite else {
                throw DateError(reason: "year \(year.description) is beyond the range of a Date")
            }
            return seconds
        }

        private mutating func zoneOffset() throws(DateError) -> Int64 {
            guard index < bytes.count else {
                throw fail("a time zone: 'Z' or an offset such as '+02:00'")
            }
            let byte = bytes[index]
            if byte == UInt8(ascii: "Z") || byte == UInt8(ascii: "z") {
                index += 1
                return 0
            }
            guard byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") else {
                throw fail("a time zone: 'Z' or an offset such as '+02:00'")
            }
            index += 1
            let hours = try number(2, "a two-digit offset hour")
            var minutes: Int64 = 0
            if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
                index += 1
                minutes = try number(2, "two-digit offset minutes")
            } else if index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                minutes = try number(2, "two-digit offset minutes")
            }
            guard hours <= 23, minutes <= 59 else {
                throw DateError(reason: "offset \(hours):\(minutes) is not a time zone offset")
            }
            let seconds = hours * 3600 + minutes * 60
            return byte == UInt8(ascii: "-") ? -seconds : seconds
        }

        private mutating func digits() -> Slice<UnsafeBufferPointer<UInt8>> {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            return bytes[start..<index]
        }

        private mutating func number(_ count: Int, _ what: String) throws(DateError) -> Int64 {
            var value: Int64 = 0
            for _ in 0..<count {
                guard index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else {
                    throw fail(what)
                }
                value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                index += 1
            }
            return value
        }

        private mutating func expect(_ character: Unicode.Scalar, _ what: String) throws(DateError) {
            guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { throw fail(what) }
            index += 1
        }

        private func fail(_ expected: String) -> DateError {
            DateError(reason: "expected \(expected) at character \(index + 1)")
        }
    }

    // MARK: Calendar

    private static func isLeap(yearModulo400 year: Int64) -> Bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    private static func daysIn(month: Int64, yearModulo400: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(yearModulo400: yearModulo400) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`), for
    /// years within a few thousand of 1970.
    private static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
    private static func civil(daysSince1970 days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// A signed integer of any size in decimal digits, for the few operations dates far from the
/// present need (years and seconds beyond `Int64`). Small values take the same path.
struct BigInteger: Hashable {
    /// Digit values 0–9, most significant first, no leading zeros; empty for zero.
    private var digits: [UInt8]
    private(set) var isNegative: Bool

    init(_ value: Int64) {
        self.init(negative: value < 0, asciiDigits: Array(String(value.magnitude).utf8))
    }

    init(negative: Bool, asciiDigits: some Collection<UInt8>) {
        var values = asciiDigits.map { $0 - UInt8(ascii: "0") }
        if let first = values.firstIndex(where: { $0 != 0 }) {
            values.removeFirst(first)
        } else {
            values = []
        }
        digits = values
        isNegative = negative && !values.isEmpty
    }

    private init(negative: Bool, values: [UInt8]) {
        var values = values
        if let first = values.firstIndex(where: { $0 != 0 }) {
            values.removeFirst(first)
        } else {
            values = []
        }
        digits = values
        isNegative = negative && !values.isEmpty
    }

    var int64Value: Int64? {
        guard digits.count <= 18 else { return nil }
        var value: Int64 = 0
        for digit in digits { value = value * 10 + Int64(digit) }
        return isNegative ? -value : value
    }

    /// The digits of the absolute value (`"0"` for zero).
    var magnitudeText: String {
        digits.isEmpty ? "0" : String(decoding: digits.map { $0 + UInt8(ascii: "0") }, as: UTF8.self)
    }

    var description: String { (isNegative ? "-" : "") + magnitudeText }

    /// The quotient rounded toward negative infinity and the remainder in `0..<divisor`.
    func floorDivided(by divisor: UInt64) -> (quotient: BigInteger, remainder: UInt64) {
        var quotient: [UInt8] = []
        quotient.reserveCapacity(digits.count)
        var remainder: UInt64 = 0
        for digit in digits {
            remainder = remainder * 10 + UInt64(digit)
            quotient.append(UInt8(remainder / divisor))
            remainder %= divisor
        }
        var result = BigInteger(negative: isNegative, values: quotient)
        if isNegative, remainder != 0 {
            result = result.adding(-1)
            remainder = divisor - remainder
        }
        return (result, remainder)
    }

    /// This value times `factor` (at most about 10^17).
    func multiplied(by factor: UInt64) -> BigInteger {
        var result = [UInt8](repeating: 0, count: digits.count + 20)
        var carry: UInt64 = 0
        var position = result.count - 1
        for digit in digits.reversed() {
            let product = UInt64(digit) * factor + carry
            result[position] = UInt8(product % 10)
            carry = product / 10
            position -= 1
        }
        while carry > 0 {
            result[position] = UInt8(carry % 10)
            carry /= 10
            position -= 1
        }
        return BigInteger(negative: isNegative, values: result)
    }

    /// This value plus a small signed `value`.
    func adding(_ value: Int64) -> BigInteger {
        let other = BigInteger(value)
        if isNegative == other.isNegative {
            return BigInteger(negative: isNegative, values: Self.add(digits, other.digits))
        }
        // Opposite signs: subtract the smaller magnitude from the larger.
        if Self.compare(digits, other.digits) >= 0 {
            return BigInteger(negative: isNegative, values: Self.subtract(digits, other.digits))
        }
        return BigInteger(negative: other.isNegative, values: Self.subtract(other.digits, digits))
    }

    private static func add(_ first: [UInt8], _ second: [UInt8]) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: max(first.count, second.count) + 1)
        var carry: UInt8 = 0
        for offset in 0..<result.count {
            let a = offset < first.count ? first[first.count - 1 - offset] : 0
            let b = offset < second.count ? second[second.count - 1 - offset] : 0
            let sum = a + b + carry
            result[result.count - 1 - offset] = sum % 10
            carry = sum / 10
        }
        return result
    }

    /// `larger - smaller`, magnitudes.
    private static func subtract(_ larger: [UInt8], _ smaller: [UInt8]) -> [UInt8] {
        var result = larger
        var borrow: Int = 0
        for offset in 0..<larger.count {
            let position = larger.count - 1 - offset
            var difference =
                Int(larger[position]) - borrow - (offset < smaller.count ? Int(smaller[smaller.count - 1 - offset]) : 0)
            borrow = difference < 0 ? 1 : 0
            if difference < 0 { difference += 10 }
            result[position] = UInt8(difference)
        }
        return result
    }

    private static func compare(_ first: [UInt8], _ second: [UInt8]) -> Int {
        if first.count != second.count { return first.count < second.count ? -1 : 1 }
        for (a, b) in zip(first, second) where a != b { return a < b ? -1 : 1 }
        return 0
    }
}
