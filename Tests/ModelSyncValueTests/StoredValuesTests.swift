import Foundation
import GRDB
@_spi(Generated) import ModelSync
import Testing

@Suite("Column encodings refuse at save time what cannot travel")
struct StoredValuesTests {
    private func refusal(_ body: () throws -> Void) -> (field: String, reason: String)? {
        do {
            try body()
            return nil
        } catch let ModelSyncError.invalidValue(model, field, reason) {
            #expect(model == "Log")
            return (field, reason)
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test("an array holding NaN, an infinity or a NaN Decimal is refused naming the element")
    func arraysWithNonFiniteElementsAreRefused() throws {
        let nan = refusal { _ = try StoredJSON([1.0, .nan], model: "Log", field: "samples") }
        #expect(nan?.field == "samples")
        #expect(nan?.reason.contains("element 1 is nan") == true, "\(String(describing: nan))")
        let infinity = refusal { _ = try StoredJSON([Double.infinity], model: "Log", field: "samples") }
        #expect(infinity?.reason.contains("element 0 is inf") == true, "\(String(describing: infinity))")
        let dates = refusal {
            _ = try StoredJSON([Date(timeIntervalSinceReferenceDate: .nan)], model: "Log", field: "times")
        }
        #expect(dates?.field == "times")
        let decimals = refusal { _ = try StoredJSON([Decimal(1), .nan], model: "Log", field: "prices") }
        #expect(decimals?.reason.contains("a NaN Decimal cannot be sent") == true, "\(String(describing: decimals))")
        #expect(throws: Never.self) {
            _ = try StoredJSON([-0.0, .leastNonzeroMagnitude, 1e308], model: "Log", field: "samples")
        }
    }

    @Test("NaN, infinities and NaN Decimals are refused with a message that says what to do")
    func nonFiniteScalarsAreRefused() {
        let nan = refusal { _ = try StoredDouble(.nan, model: "Log", field: "ratio") }
        #expect(nan?.reason.hasPrefix("the value is NaN (not a number") == true)
        #expect(nan?.reason.contains("store a finite number, or make the field optional") == true)
        let negativeInfinity = refusal { _ = try StoredDouble(-.infinity, model: "Log", field: "ratio") }
        #expect(negativeInfinity?.reason.hasPrefix("the value is negative infinity") == true)
        let date = refusal {
            _ = try StoredDate(Date(timeIntervalSinceReferenceDate: .infinity), model: "Log", field: "at")
        }
        #expect(date?.field == "at")
        let decimal = refusal { _ = try StoredDecimal(.nan, model: "Log", field: "price") }
        #expect(decimal?.reason.hasPrefix("the Decimal is NaN") == true)
        #expect(
            ModelSyncError.invalidValue(model: "Log", field: "ratio", reason: "r").description
                == "cannot save Log.ratio: r")
    }

    @Test("-0.0, NUL-bearing text and extreme Decimals read back exactly from SQLite")
    func valuesReadBackExactly() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (d DOUBLE, s TEXT, m TEXT)")
            try db.execute(
                sql: "INSERT INTO t VALUES (?, ?, ?)",
                arguments: [
                    try StoredDouble(-0.0, model: "Log", field: "d"), StoredString("a\0b\0\0c"),
                    try StoredDecimal(.greatestFiniteMagnitude, model: "Log", field: "m"),
                ])
            try db.execute(sql: "INSERT INTO t VALUES (?, ?, ?)", arguments: [0.5, StoredString("plain"), nil])
        }
        try queue.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT d, s, m, typeof(s) AS type FROM t")
            #expect(try rows[0].decode(StoredDouble.self, forColumn: "d").value.bitPattern == (-0.0).bitPattern)
            #expect(try rows[0].decode(StoredString.self, forColumn: "s").string == "a\0b\0\0c")
            #expect(try rows[0].decode(Decimal.self, forColumn: "m") == .greatestFiniteMagnitude)
            #expect(try rows[1].decode(StoredDouble.self, forColumn: "d").value == 0.5)
            #expect(try rows[1].decode(StoredString.self, forColumn: "s").string == "plain")
            #expect(rows.map { $0["type"] as String } == ["blob", "text"])
            // Ordinary text stays TEXT: queries by value keep working.
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t WHERE s = 'plain'") == 1)
        }
    }
}
