/// A change to one record of `Model`, delivered by ``Repository/changes()`` after its transaction
/// commits (never for a transaction that rolls back).
public enum ModelChange<Model: SyncModel>: Sendable {
    /// A record was inserted.
    case created(Model)
    /// A record was saved again, or changed by a delete rule (`nullify`).
    case updated(Model)
    /// A record was deleted (directly, or by a `cascade` delete rule).
    case deleted(Model.ID)
    /// A temporary ID was replaced by the server's ID: in the row, in every foreign key that
    /// referenced it, and in every queued outbox entry. Emitted exactly once per replacement.
    case idChanged(old: Model.ID, new: Model.ID)
}

/// A committed change, untyped: what the store broadcasts to repositories.
enum StoreEvent: Sendable {
    case created(table: String, record: any SyncModel)
    case updated(table: String, record: any SyncModel)
    case deleted(table: String, id: String)
    case idChanged(table: String, old: String, new: String)

    var table: String {
        switch self {
        case .created(let table, _), .updated(let table, _), .deleted(let table, _), .idChanged(let table, _, _):
            return table
        }
    }
}

/// Fans committed changes out to every live `changes()` stream.
final class ChangeBroadcaster: Sendable {
    private let subscribers = Locked([Int: @Sendable (StoreEvent) -> Void]())
    private let nextToken = Locked(0)

    var hasSubscribers: Bool { subscribers.withLock { !$0.isEmpty } }

    func subscribe(_ handler: @escaping @Sendable (StoreEvent) -> Void) -> Int {
        let token = nextToken.withLock { value -> Int in
            value += 1
            return value
        }
        subscribers.withLock { $0[token] = handler }
        return token
    }

    func unsubscribe(_ token: Int) {
        _ = subscribers.withLock { $0.removeValue(forKey: token) }
    }

    func publish(_ events: [StoreEvent]) {
        guard !events.isEmpty else { return }
        let handlers = subscribers.withLock { Array($0.values) }
        for event in events {
            for handler in handlers { handler(event) }
        }
    }
}
