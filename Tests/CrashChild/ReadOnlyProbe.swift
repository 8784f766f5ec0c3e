import ChatModels
import Foundation
import ModelSync

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the read-only probe saw, printed as one JSON line.
struct ReadOnlyProbeReport: Codable, Sendable {
    /// The user the probe ran as (65534, `nobody`, when started as root).
    var uid: UInt32
    var openError: String?
    var users: Int?
    var saveError: String?
}

/// Opens a store the process may not write (root drops to `nobody` first, so that file permissions
/// apply), counts its users and tries to save one; prints a ``ReadOnlyProbeReport``.
///
///     modelsync-crash-child read-only-probe <database path>
func probeReadOnly(_ arguments: [String]) async -> Int32 {
    guard arguments.count == 1 else {
        FileHandle.standardError.write(Data("usage: modelsync-crash-child read-only-probe <database>\n".utf8))
        return 2
    }
    if getuid() == 0 {
        guard setgid(65534) == 0, setuid(65534) == 0 else {
            FileHandle.standardError.write(Data("could not drop root privileges (errno \(errno))\n".utf8))
            return 3
        }
    }
    var report = ReadOnlyProbeReport(uid: getuid())
    do {
        let store = try SyncStore(.file(URL(fileURLWithPath: arguments[0])), models: GeneratedModels.all)
        report.users = try await store.users.count()
        do {
            try await store.users.save(User(name: "intruder", email: "intruder@example.com"))
        } catch {
            report.saveError = "\(error)"
        }
    } catch {
        report.openError = "\(error)"
    }
    let line = (try? JSONEncoder().encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    print(line)
    return 0
}
