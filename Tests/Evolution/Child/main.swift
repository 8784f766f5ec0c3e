// modelsync-evolution-child: the two builds of the notes app the evolution tests upgrade.
//
//     modelsync-evolution-child v1 <database path> <server URL>
//         Version 1 of the app: opens the file-backed store with the v1 models, creates records and
//         pushes them to the (v1) server at <server URL>: synced records, a create the server refuses
//         (a failed entry), then, offline, creates with temporary and client IDs, an update and a
//         delete. Prints the IDs it made as one JSON object and exits.
//     modelsync-evolution-child v2-stop-in-migration <database path>
//         Version 2 of the app opening the v1 database: prints "migrating" from inside the migration
//         transaction, then waits there until it is killed (the SIGKILL test).

import EvolutionV1Models
import EvolutionV2Models
import Foundation
@_spi(Testing) import ModelSync

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "v1" where arguments.count == 4:
    do {
        let ids = try await runVersion1(
            database: URL(fileURLWithPath: arguments[2]), server: URL(string: arguments[3])!)
        let data = try JSONSerialization.data(withJSONObject: ids, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        exit(0)
    } catch {
        print("error \(error)")
        exit(1)
    }
case "v2-stop-in-migration" where arguments.count == 3:
    SchemaMigrationHooks.setWillMigrate { tables in
        FileHandle.standardOutput.write(Data("migrating \(tables.sorted().joined(separator: ","))\n".utf8))
        while true { sleep(60) }
    }
    do {
        _ = try SyncStore(
            .file(URL(fileURLWithPath: arguments[2])), models: EvolutionV2Models.GeneratedModels.all,
            removedModels: EvolutionV2Models.GeneratedModels.removedModels)
        print("opened without migrating")
        exit(1)
    } catch {
        print("error \(error)")
        exit(1)
    }
default:
    FileHandle.standardError.write(
        Data("usage: modelsync-evolution-child v1 <database> <server URL> | v2-stop-in-migration <database>\n".utf8))
    exit(2)
}

/// Version 1 of the app at work; returns the IDs of what it made, by role.
func runVersion1(database: URL, server: URL) async throws -> [String: String] {
    typealias Author = EvolutionV1Models.Author
    typealias Note = EvolutionV1Models.Note
    typealias Sketch = EvolutionV1Models.Sketch
    typealias Gadget = EvolutionV1Models.Gadget
    let models = EvolutionV1Models.GeneratedModels.all
    let store = try SyncStore(.file(database), models: models)
    let engine = SyncEngine(
        store: store, remote: RESTRemote(configuration: .init(baseURL: server, timeout: 10), models: models))
    var ids: [String: String] = [:]
    // Both versions' modules are imported: repositories by type, not by the store's accessors.
    let authors = store.repository(for: Author.self)
    let notes = store.repository(for: Note.self)
    let sketches = store.repository(for: Sketch.self)
    let gadgets = store.repository(for: Gadget.self)

    // Synced: an author, two notes, a sketch. The server refuses the note "refused by v1" (422).
    let author = try await authors.save(Author(name: "Ada"))
    _ = try await notes.save(
        Note(body: "first", status: "todo", priority: 3, legacyColor: "red", authorId: author.id))
    _ = try await notes.save(
        Note(body: "second", status: "finished", priority: 1, legacyColor: nil, authorId: author.id))
    let sketch = try await sketches.save(Sketch(caption: "a cat"))
    let gadget = try await gadgets.save(
        Gadget(label: "g1", nickname: nil, weight: 5, kind: "a", ownerId: author.id))
    let refused = try await notes.save(
        Note(body: "refused by v1", status: "todo", priority: 9, legacyColor: "blue", authorId: author.id))
    _ = try await engine.push()
    ids["author"] = author.id.rawValue
    ids["sketch"] = sketch.id.rawValue
    ids["gadget"] = gadget.id.rawValue
    ids["refusedTemporary"] = refused.id.rawValue
    let synced = try await notes.all()
    ids["first"] = synced.first { $0.body == "first" }?.id.rawValue
    ids["second"] = synced.first { $0.body == "second" }?.id.rawValue

    // Offline: creates (server IDs: temporary until pushed; client IDs), an update, a delete.
    let offlineNote = try await notes.save(
        Note(body: "offline", status: "someday", priority: 7, legacyColor: "green", authorId: author.id))
    let newAuthor = try await authors.save(Author(name: "Bob"))
    let bobsNote = try await notes.save(
        Note(body: "by bob", status: "finished", priority: 2, legacyColor: nil, authorId: newAuthor.id))
    var edited = try await notes.find(Note.ID(ids["first"]!))!
    edited.body = "first, edited"
    _ = try await notes.save(edited)
    _ = try await notes.delete(Note.ID(ids["second"]!))
    let offlineSketch = try await sketches.save(Sketch(caption: "a dog"))
    let offlineGadget = try await gadgets.save(
        Gadget(label: "g2", nickname: "twin", weight: 7, kind: "b", ownerId: author.id))
    ids["offlineGadget"] = offlineGadget.id.rawValue
    ids["offlineTemporary"] = offlineNote.id.rawValue
    ids["bob"] = newAuthor.id.rawValue
    ids["bobsNoteTemporary"] = bobsNote.id.rawValue
    ids["offlineSketch"] = offlineSketch.id.rawValue
    return ids
}
