import ArgumentParser
import Foundation
import ModelSync
import ModelSyncReferenceServer
import TodoModels

/// A to-do list used on two devices: this one goes offline, edits, and comes back.
@main
struct TodoOfflineDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "todo-offline",
        abstract:
            "Edits to-dos offline while another device edits the server, then pulls, pushes and shows each sync status."
    )

    @Option(help: "SQLite file to use and keep (default: a temporary file, deleted at the end).")
    var database: String?

    mutating func run() async throws {
        print("ModelSync demo: offline to-dos with client IDs, a conflict, and sync status")
        // The server rejects titles longer than 40 characters, as real APIs validate input.
        let server = ReferenceServer(models: GeneratedModels.all) { table, record in
            guard table == "todo", let title = record["title"]?.stringValue, title.count > 40 else { return nil }
            return "title must be at most 40 characters"
        }
        let baseURL = try await server.start()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("todo-offline-\(UUID())")
        let databaseURL = database.map { URL(fileURLWithPath: $0) } ?? folder.appendingPathComponent("todos.sqlite")
        defer { if database == nil { try? FileManager.default.removeItem(at: folder) } }
        let store = try SyncStore(.file(databaseURL), models: GeneratedModels.all)
        let remote = RESTRemote(configuration: .init(baseURL: baseURL, timeout: 10), models: GeneratedModels.all)
        let engine = SyncEngine(store: store, remote: remote)
        print("  server \(baseURL.absoluteString), database \(databaseURL.path)")

        // 1. Online: a list with three to-dos, synced.
        section("1. Online: create a list and sync it")
        let list = try await store.todoLists.save(TodoList(name: "Groceries"))
        var todos: [String: Todo] = [:]
        for title in ["Eggs", "Milk", "Apples"] {
            todos[title] = try await store.todos.save(Todo(title: title, updatedAt: Date(), listId: list.id))
        }
        try await engine.push()
        try await showStatuses(store, list: list)

        // 2. Offline: edits here, while another device changes the server.
        section("2. Offline: edit here; meanwhile another device edits the server")
        var eggs = todos["Eggs"]!
        eggs.done = true
        eggs.updatedAt = Date()
        try await store.todos.save(eggs)
        print("  here:  'Eggs' marked done")
        try await store.todos.save(Todo(title: "Bread", updatedAt: Date(), listId: list.id))
        print("  here:  'Bread' added")
        let longTitle = "Ingredients for the lemon tart from grandma's recipe book"
        try await store.todos.save(Todo(title: longTitle, updatedAt: Date(), listId: list.id))
        print("  here:  a to-do with a \(longTitle.count)-character title added")
        var serverEggs = await server.records(of: Todo.self).first { $0["title"]?.stringValue == "Eggs" }!
        serverEggs["title"] = .string("Eggs (free range)")
        try await server.update(serverEggs, in: Todo.self, id: eggs.id.rawValue)
        print("  other: 'Eggs' renamed to 'Eggs (free range)' on the server")
        try await server.insert(
            [
                "id": .string(Todo.newID().rawValue), "title": .string("Coffee"), "done": .bool(false),
                "updatedAt": .string(RESTRemote.iso8601(Date())), "listId": .string(list.id.rawValue),
            ], into: Todo.self)
        print("  other: 'Coffee' added on the server")
        try await showStatuses(store, list: list)

        // 3. Back online: pull first. 'Eggs' has a pending local edit: the default conflict policy
        //    keeps it (it is pushed next and wins); 'Coffee' arrives.
        section("3. Back online: pull (conflict on 'Eggs': the pending local edit is kept)")
        let pulled = try await engine.pull(Todo.self)
        print("  pull: \(pulled.inserted) inserted, \(pulled.updated) updated, \(pulled.keptLocal) kept local")

        // 4. Push: the edit and 'Bread' go through; the server refuses the long title.
        section("4. Push (the server refuses the long title: that record is failed, the rest synced)")
        let pushed = try await engine.push()
        print("  push: \(pushed.sent) sent, \(pushed.failed) failed")
        try await showStatuses(store, list: list)

        section("5. Server after sync")
        for record in await server.records(of: Todo.self) {
            let done = record["done"] == .bool(true) ? "x" : " "
            print("  [\(done)] \(record["title"]?.stringValue ?? "?")")
        }
        await server.stop()
        // The demo checks its own story: everything synced but the refused to-do.
        let failed = try await store.outbox.counts()[.failed, default: 0]
        let pending = try await store.outbox.counts()[.pending, default: 0]
        guard failed == 1, pending == 0, pulled.keptLocal == 1, pulled.inserted == 1, pulled.updated == 0 else {
            throw ExitCode.failure
        }
    }

    func section(_ title: String) {
        print("\n\(title)")
    }

    func showStatuses(_ store: SyncStore, list: TodoList) async throws {
        for todo in try await list.todos(in: store) {
            let status: String
            switch try await store.todos.syncStatus(of: todo.id) {
            case .synced: status = "synced"
            case .pending: status = "pending"
            case .failed(let reason): status = "failed: \(reason)"
            }
            let title = "[\(todo.done ? "x" : " ")] \(todo.title)"
            print("  \(title.padding(toLength: 64, withPad: " ", startingAt: 0)) \(status)")
        }
    }
}
