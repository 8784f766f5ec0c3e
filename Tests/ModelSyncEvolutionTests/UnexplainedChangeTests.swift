import EvolutionV1Models
import EvolutionV2Models
import Foundation
import GRDB
import ModelSync
import Testing

/// A change the spec does not explain is an error that names the stored schema and says what to
/// write; the database is left as it was.
@Suite("Changes the spec does not explain")
struct UnexplainedChangeTests {
    @Test("a model the new spec neither declares nor lists under removed: is an error, and nothing is changed")
    func missingModelIsAnError() async throws {
        let fixture = try await VersionOneDatabase.make()
        defer { fixture.remove() }
        let before = try await VersionOneDatabase.snapshot(fixture.database)
        // Version 1 without Sketch: a spec that dropped the model without listing it under removed:
        // (version 2's generated models carry its removed: list, so they would drop the table).
        let withoutSketch = EvolutionV1Models.GeneratedModels.all.filter { $0.schema.tableName != "sketch" }
        #expect(withoutSketch.count == EvolutionV1Models.GeneratedModels.all.count - 1)
        #expect(withoutSketch.allSatisfy { $0.schema.removedModels.isEmpty })
        let reason = try openExpectingIncompatibleSchema(
            fixture.database, models: withoutSketch, removedModels: [], table: "sketch")
        #expect(reason.contains("model 'Sketch' (table 'sketch')"), "\(reason)")
        #expect(reason.contains("'renamedFrom: Sketch'") && reason.contains("'removed: [Sketch]'"), "\(reason)")
        #expect(reason.contains("'modelsync_schema': author(id, name: text); gadget("), "\(reason)")
        #expect(
            reason.contains("note(id, body: text, status: text, priority: integer, legacyColor: text?, authorId: text)")
        )
        #expect(try await VersionOneDatabase.snapshot(fixture.database) == before)
    }

    @Test("a field the stored schema has and the spec neither declares nor lists under removed: is an error")
    func missingFieldIsAnError() async throws {
        let fixture = try await VersionOneDatabase.make()
        defer { fixture.remove() }
        try editStoredSchema(
            fixture.database, table: "author",
            sql:
                "json_insert(schema, '$.fields[#]', json('{\"name\":\"nickname\",\"type\":\"text\",\"isOptional\":true,\"isUnique\":false}'))"
        )
        let before = try await VersionOneDatabase.snapshot(fixture.database)
        let reason = try openExpectingIncompatibleSchema(
            fixture.database, models: EvolutionV1Models.GeneratedModels.all, removedModels: [], table: "author")
        #expect(reason.contains("model 'Author' had field 'nickname' (text)"), "\(reason)")
        #expect(reason.contains("'renamedFrom: nickname'") && reason.contains("'removed: [nickname]'"), "\(reason)")
        #expect(reason.contains("author(id, name: text, nickname: text?)"), "\(reason)")
        #expect(try await VersionOneDatabase.snapshot(fixture.database) == before)
    }

    @Test("a new required field without a default is an error that asks for one")
    func newRequiredFieldWithoutDefaultIsAnError() async throws {
        let fixture = try await VersionOneDatabase.make()
        defer { fixture.remove() }
        try editStoredSchema(fixture.database, table: "author", sql: "json_remove(schema, '$.fields[0]')")
        let before = try await VersionOneDatabase.snapshot(fixture.database)
        let reason = try openExpectingIncompatibleSchema(
            fixture.database, models: EvolutionV1Models.GeneratedModels.all, removedModels: [], table: "author")
        #expect(reason.contains("field 'name' of model 'Author' is new and required"), "\(reason)")
        #expect(reason.contains("give it a 'default:'"), "\(reason)")
        #expect(try await VersionOneDatabase.snapshot(fixture.database) == before)
    }

    @Test("a stored value that no mapping turns into a case of the new enum is an error naming it")
    func unmappedEnumValueIsAnError() async throws {
        let fixture = try await VersionOneDatabase.make()
        defer { fixture.remove() }
        let queue = try DatabaseQueue(path: fixture.database.path)
        try await queue.write { db in try db.execute(sql: "UPDATE gadget SET kind = 'gamma' WHERE label = 'g1'") }
        try queue.close()
        let before = try await VersionOneDatabase.snapshot(fixture.database)
        let reason = try openExpectingIncompatibleSchema(
            fixture.database, models: EvolutionV2Models.GeneratedModels.all,
            removedModels: EvolutionV2Models.GeneratedModels.removedModels, table: "gadget")
        #expect(reason.contains("a record holds 'gamma', which is not one of its cases (alpha, beta)"), "\(reason)")
        #expect(reason.contains("add 'gamma: <case>' to its 'mapping:'"), "\(reason)")
        #expect(try await VersionOneDatabase.snapshot(fixture.database) == before)
    }

    private func openExpectingIncompatibleSchema(
        _ database: URL, models: [any SyncModel.Type], removedModels: [String], table expectedTable: String
    ) throws -> String {
        do {
            _ = try SyncStore(.file(database), models: models, removedModels: removedModels)
        } catch ModelSyncError.incompatibleSchema(let table, let reason) {
            #expect(table == expectedTable)
            #expect(reason.hasSuffix("Nothing was changed"), "\(reason)")
            return reason
        }
        Issue.record("the store opened")
        return ""
    }

    private func editStoredSchema(_ database: URL, table: String, sql: String) throws {
        let queue = try DatabaseQueue(path: database.path)
        try queue.write { db in
            try db.execute(sql: "UPDATE modelsync_schema SET schema = \(sql) WHERE tableName = ?", arguments: [table])
        }
        try queue.close()
    }
}
