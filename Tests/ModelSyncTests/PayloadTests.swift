import ChatModels
import Foundation
import GRDB
import ModelSync
import Testing

@Suite("Outbox payloads")
struct PayloadTests {
    static let awkwardStrings = [
        "", "plain", "quote \" and backslash \\", "line\nbreak\ttab\r", "control \u{01}\u{1F}", "emoji 🧵👩‍💻",
        "ünïcödé", "slash / and </script>", "null", "{\"json\": true}",
    ]

    @Test("every payload decodes with JSONDecoder back to the saved record", arguments: awkwardStrings)
    func roundTrip(text: String) async throws {
        let store = try makeStore()
        let user = try await store.users.save(User(name: text, email: "\(text)@example.com", bio: text))
        let date = Date(timeIntervalSinceReferenceDate: 123_456_789.123_456)
        let thread = try await store.threads.save(
            ChatThread(title: text, createdAt: date, tags: [text, "b"], ownerId: user.id))
        let message = try await store.messages.save(Message(role: .system, body: text, threadId: thread.id))
        let draft = try await store.drafts.save(Draft(body: text, updatedAt: nil, threadId: thread.id))

        let payloads = Dictionary(
            uniqueKeysWithValues: try await store.outbox.entries().map { ($0.recordID, Data($0.payload!.utf8)) })
        let decoder = JSONDecoder()
        #expect(try decoder.decode(User.self, from: payloads[user.id.rawValue]!) == user)
        #expect(try decoder.decode(ChatThread.self, from: payloads[thread.id.rawValue]!) == thread)
        #expect(try decoder.decode(Message.self, from: payloads[message.id.rawValue]!) == message)
        #expect(try decoder.decode(Draft.self, from: payloads[draft.id.rawValue]!) == draft)
    }

    @Test("a payload lists id first, then every field in column order, with null for nil")
    func layout() async throws {
        let store = try makeStore()
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        let payload = try #require(try await store.outbox.entries().first?.payload)
        #expect(payload == #"{"id":"\#(user.id)","name":"Ada","email":"ada@example.com","bio":null}"#)
    }
}
