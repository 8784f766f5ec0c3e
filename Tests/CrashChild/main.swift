// modelsync-crash-child: real processes for the reliability tests.
//
//     modelsync-crash-child <database path> <server URL> <threads>
//         The process the crash-recovery test kills with SIGKILL. Opens the file-backed store,
//         creates chats (a user, a thread with server ID, two messages, one a reply) until the store
//         holds <threads> threads, pushing after each one, then pushes until the outbox is empty and
//         prints "converged". Killed at any moment and started again, it resumes.
//     modelsync-crash-child writer <database path> <server URL> <label> <rounds> <chats per round>
//         One of the two processes of the two-process test (see TwoProcessWriter.swift).
//     modelsync-crash-child hold-claims <database path>
//         Claims every ready outbox entry, prints "claimed <n>", and exits without recording any
//         outcome once its standard input closes (see ClaimHolder.swift).
//     modelsync-crash-child read-only-probe <database path>
//         Drops root privileges, opens the store, reads and tries a save (see ReadOnlyProbe.swift).
//     modelsync-crash-child pull <database path> <server URL>
//         Pulls every model and prints what the pull did (see PullChild.swift).
//     modelsync-crash-child large-pull <database path> <messages>
//         Pulls that many messages from a server of its own while saving on the main actor, and
//         prints the slowest save (see LargePullChild.swift).
//     modelsync-crash-child claim-push <database path> <server URL> <mode>
//         Pushes the outbox, stopped inside its first claim transaction (killed there, or let go
//         on while another process claims), for the claim-safety tests (see ClaimPushChild.swift).

import ChatModels
import Foundation
import GRDB
import ModelSync

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "writer":
    exit(await runTwoProcessWriter(Array(arguments.dropFirst(2))))
case "hold-claims":
    exit(await holdClaims(Array(arguments.dropFirst(2))))
case "read-only-probe":
    exit(await probeReadOnly(Array(arguments.dropFirst(2))))
case "pull":
    exit(await runPull(Array(arguments.dropFirst(2))))
case "large-pull":
    exit(await runLargePull(Array(arguments.dropFirst(2))))
case "claim-push":
    exit(await runClaimPush(Array(arguments.dropFirst(2))))
default:
    break
}

guard arguments.count == 4, let baseURL = URL(string: arguments[2]), let target = Int(arguments[3]) else {
    FileHandle.standardError.write(Data("usage: modelsync-crash-child <database> <server URL> <threads>\n".utf8))
    exit(2)
}
let store = try SyncStore(.file(URL(fileURLWithPath: arguments[1])), models: GeneratedModels.all)
let remote = RESTRemote(configuration: .init(baseURL: baseURL, timeout: 2), models: GeneratedModels.all)
let engine = SyncEngine(
    store: store, remote: remote,
    configuration: .init(
        maximumConcurrentRequests: 4, retry: RetryPolicy(initialDelay: 0.01, maximumDelay: 0.1), maximumRetryWait: 5))

while try await store.threads.count() < target {
    let index = try await store.threads.count()
    try await store.write { tx in
        let user = try tx.save(User(name: "user \(index)", email: "user\(index)-\(UUID().uuidString)@example.com"))
        let thread = try tx.save(
            ChatModels.Thread(
                title: "thread \(index)", createdAt: Date(timeIntervalSinceReferenceDate: Double(index)), tags: [],
                ownerId: user.id))
        let first = try tx.save(Message(role: .user, body: "hello \(index)", threadId: thread.id))
        try tx.save(Message(role: .assistant, body: "reply \(index)", threadId: thread.id, replyToId: first.id))
    }
    try await engine.push(waitForRetries: false)
}
while try await !store.outbox.entries().isEmpty {
    try await engine.push()
}
print("converged")
