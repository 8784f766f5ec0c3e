import Foundation
import GRDB
import Testing

@testable import ModelSync

@Suite("Statements run with values bound by position")
struct PositionalExecutionTests {
    static func database() throws -> DatabaseQueue {
        let queue = try DatabaseQueue()
        try queue.write { db in try db.execute(sql: "CREATE TABLE item (name TEXT, size INTEGER)") }
        return queue
    }

    @Test("values are bound in order, and each run binds only its own values")
    func bindsInOrder() throws {
        let queue = try Self.database()
        try queue.write { db in
            let insert = try db.cachedStatement(sql: "INSERT INTO item (name, size) VALUES (?, ?)")
            try insert.execute(binding: ["a".databaseValue, 1.databaseValue])
            try insert.execute(binding: ["b".databaseValue, .null])
        }
        let rows = try queue.read { db in try Row.fetchAll(db, sql: "SELECT name, size FROM item ORDER BY name") }
        #expect(rows == [["name": "a", "size": 1], ["name": "b", "size": nil]])
    }

    @Test("fewer or more values than the statement has parameters are refused, and nothing is written")
    func countMismatch() throws {
        let queue = try Self.database()
        try queue.write { db in
            let insert = try db.cachedStatement(sql: "INSERT INTO item (name, size) VALUES (?, ?)")
            let tooFew = #expect(throws: DatabaseError.self) { try insert.execute(binding: ["a".databaseValue]) }
            #expect(tooFew?.message?.contains("1 value for 2 parameters") == true, "\(String(describing: tooFew))")
            #expect(throws: DatabaseError.self) {
                try insert.execute(binding: ["a".databaseValue, 1.databaseValue, 2.databaseValue])
            }
        }
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM item") } == 0)
    }
}
